"""Schemathesis over the whole API, in process: every check (`--checks all` of the CLI), with
the client and admin keys and a model root, positive and negative data. Any 5xx, any response
that contradicts the published schema, any schema-valid request refused with 422 or any
schema-violating one accepted fails the test. benchmarks/bench_schemathesis.py is the long run
(>= 3,000 requests against a live server); this is the few-hundred-request version for CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructrec.serving.app import ServeSettings, create_app

KEY, ADMIN_KEY = "fuzz-key", "fuzz-admin-key"
CONFIG = Path(__file__).parents[2] / "benchmarks" / "schemathesis.toml"
EXAMPLES = 150  # per generation mode: about 300 requests in all


@pytest.fixture()
def fuzz_schema(small_rec, model_root, tmp_path):
    import schemathesis  # the dev extra
    from schemathesis.config import SchemathesisConfig

    from instructrec.feedback.store import Store

    store = Store(f"sqlite:///{tmp_path / 'fuzz.db'}", timeout=2.0)
    settings = ServeSettings(
        api_key=KEY, admin_key=ADMIN_KEY, model_root=str(model_root), seed=0, model_version="v1"
    )
    app = create_app(small_rec, store, settings)
    config = SchemathesisConfig.from_path(CONFIG)
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    store.close()


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_check_passes(fuzz_schema, mode):
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    headers = {"X-API-Key": KEY, "X-Admin-Key": ADMIN_KEY}
    strategy = fuzz_schema.as_strategy(generation_mode=GenerationMode(mode), headers=headers)
    seen: dict[str, set[int]] = {}

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case):
        response = case.call_and_validate()  # raises on any failed check
        seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

    check()
    assert {"POST /v1/recommendations", "POST /v1/feedback", "POST /v1/admin/model"} <= set(seen)
    assert all(code < 500 for codes in seen.values() for code in codes), seen
