"""Property-based fuzzing of every endpoint from the OpenAPI schema (schemathesis +
hypothesis): whatever the generated request, with or without the API key, no 5xx."""

from __future__ import annotations

import pytest

from instructrec.serving.app import ServeSettings, create_app

pytestmark = pytest.mark.slow
KEY = "fuzz-key"


def test_no_server_errors(small_rec, store, tmp_path):
    import schemathesis  # the dev extra
    from hypothesis import HealthCheck, given, settings

    app = create_app(small_rec, store, ServeSettings(api_key=KEY, seed=0, model_root=str(tmp_path)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen = []
    for result in schema.get_all_operations():
        op = result.ok()
        seen.append(f"{op.method.upper()} {op.path}")

        @given(case=op.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            for headers in ({"X-API-Key": KEY}, {}):
                r = case.call(headers=headers)
                assert r.status_code < 500, (
                    case.method,
                    case.path,
                    case.query,
                    case.body,
                    r.status_code,
                    r.text[:300],
                )

        check()
    assert "POST /v1/recommendations" in seen and "POST /v1/feedback" in seen
