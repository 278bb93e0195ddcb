"""The HTTP API: happy paths, idempotent feedback, auth, limits, metrics, and a table of
malformed requests that must all get a 4xx with a message (never a 500)."""

from __future__ import annotations

import json

import pytest


def _recommend(client, **body):
    body.setdefault("user_id", "u1")
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_recommend_for_user_and_history(client, small_rec):
    out = _recommend(client, n=5)
    assert len(out["items"]) == 5 and [it["rank"] for it in out["items"]] == [1, 2, 3, 4, 5]
    expected = small_rec.recommend(user="u1", n=5)
    assert [it["item_id"] for it in out["items"]] == list(expected["item_id"])
    assert out["template_id"] and out["model_version"] == "v1"
    by_hist = client.post("/v1/recommendations", json={"history": ["i1", "i2"], "n": 3}).json()
    assert len(by_hist["items"]) == 3
    assert not {"i1", "i2"} & {it["item_id"] for it in by_hist["items"]}  # seen excluded
    cands = _recommend(client, candidates=["i3", "i4", "i5"], n=10, instruction="something fun")
    assert sorted(it["item_id"] for it in cands["items"]) == ["i3", "i4", "i5"]
    assert cands["template_id"].startswith("p1i2t3") or cands["template_id"].endswith("default")


def test_request_is_stored(client):
    out = _recommend(client, n=3, instruction="a comedy")
    stored = client.app.state.store.get_request(out["request_id"])
    assert stored["instruction"] == "a comedy" and stored["template_id"] == out["template_id"]
    assert [it["item_id"] for it in stored["items"]] == [it["item_id"] for it in out["items"]]


def test_feedback_idempotent_and_counted(client):
    out = _recommend(client, n=3)
    item = out["items"][0]["item_id"]
    body = {
        "request_id": out["request_id"],
        "item_id": item,
        "signal": "like",
        "idempotency_key": "k-1",
    }
    a = client.post("/v1/feedback", json=body)
    b = client.post("/v1/feedback", json=body)
    assert a.status_code == b.status_code == 200
    assert a.json()["feedback_id"] == b.json()["feedback_id"]
    assert not a.json()["replayed"] and b.json()["replayed"]
    assert len(client.app.state.store.feedback_frame()) == 1
    clash = client.post("/v1/feedback", json={**body, "signal": "dislike"})
    assert clash.status_code == 409
    r = client.post(
        "/v1/feedback",
        json={
            "request_id": out["request_id"],
            "item_id": item,
            "signal": "rating",
            "rating": 5,
            "idempotency_key": "k-2",
        },
    )
    assert r.status_code == 200 and r.json()["reward"] == 1.0
    metrics = client.get("/metrics").text
    assert 'instructrec_feedback_total{signal="like"} 1' in metrics
    assert 'instructrec_feedback_total{signal="rating"} 1' in metrics
    assert 'endpoint="/v1/feedback",method="POST",status="200"} 3' in metrics
    assert 'endpoint="/v1/feedback",method="POST",status="409"} 1' in metrics
    assert "instructrec_http_request_seconds_bucket" in metrics


def test_api_key_required_for_writes(client, admin):
    for path, body in [
        ("/v1/recommendations", {"user_id": "u1"}),
        (
            "/v1/feedback",
            {"request_id": "x", "item_id": "i1", "signal": "like", "idempotency_key": "k"},
        ),
    ]:
        for headers in (
            {"X-API-Key": ""},
            {"X-API-Key": "wrong"},
            {"X-API-Key": admin["X-Admin-Key"]},
        ):
            r = client.post(path, json=body, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert "X-API-Key" in r.json()["detail"]
    assert client.get("/healthz", headers={"X-API-Key": "wrong"}).status_code == 200


def test_admin_needs_its_own_key(client, admin):
    """The client key never opens the admin endpoint; the admin key does."""
    body = {"run_dir": "v2", "version": "v2"}
    for headers in ({}, {"X-Admin-Key": ""}, {"X-Admin-Key": "wrong"}, {"X-Admin-Key": "test-key"}):
        r = client.post("/v1/admin/model", json=body, headers=headers)
        assert r.status_code == 401 and "X-Admin-Key" in r.json()["detail"], (headers, r.text)
    assert client.get("/v1/model").json()["version"] == "v1"
    r = client.post("/v1/admin/model", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"version": "v2", "previous_version": "v1", "run_dir": "v2"}


@pytest.mark.parametrize("admin_key,root", [(None, True), ("admin", False), (None, False)])
def test_admin_disabled_without_admin_key_and_root(
    small_rec, model_root, tmp_path, admin_key, root
):
    from fastapi.testclient import TestClient

    from instructrec.feedback.store import Store
    from instructrec.serving.app import ServeSettings, create_app

    settings = ServeSettings(
        api_key="k", admin_key=admin_key, model_root=str(model_root) if root else None
    )
    app = create_app(small_rec, Store(f"sqlite:///{tmp_path / 'd.db'}"), settings)
    with TestClient(app) as c:
        for key in ("k", "admin", None):
            headers = {"X-API-Key": "k"} | ({"X-Admin-Key": key} if key else {})
            r = c.post("/v1/admin/model", json={"run_dir": "v2"}, headers=headers)
            assert r.status_code == 403 and "disabled" in r.json()["detail"], r.text
        assert c.get("/v1/model").json()["version"] == "v0"


def test_admin_key_must_differ_from_client_key():
    from pydantic import ValidationError

    from instructrec.serving.app import ServeSettings

    with pytest.raises(ValidationError, match="differ"):
        ServeSettings(api_key="same", admin_key="same")


def test_reads(client):
    h = client.get("/healthz").json()
    assert h == {"status": "ok", "model_version": "v1", "database": True, "detail": None}
    items = client.get("/v1/items", params={"query": "movie 1"}).json()["items"]
    assert items and all("movie 1" in it["title"].lower() for it in items)
    assert client.get("/v1/items/i3").json() == {"item_id": "i3", "title": "Movie 3"}
    assert client.get("/v1/items/nope").status_code == 404
    assert "u1" in client.get("/v1/users", params={"prefix": "u1"}).json()["users"]
    info = client.get("/v1/model").json()
    assert info["version"] == "v1" and "run_dir" not in info  # no server path
    assert client.get("/openapi.json").json()["paths"]["/v1/feedback"]
    page = client.get("/")
    assert page.status_code == 200 and "instructrec" in page.text
    assert client.get("/static/app.js").status_code == 200


BIG = "x" * 5000
BAD_REQUESTS = [
    # (description, path, raw body or json, expected status)
    ("not json", "/v1/recommendations", b"{user_id: 1", 422),
    ("json list", "/v1/recommendations", [1, 2], 422),
    ("empty object", "/v1/recommendations", {}, 422),
    ("unknown user", "/v1/recommendations", {"user_id": "ghost"}, 404),
    ("unknown history item", "/v1/recommendations", {"history": ["nope"]}, 404),
    ("unknown candidate", "/v1/recommendations", {"user_id": "u1", "candidates": ["zz"]}, 404),
    ("user with unknown history", "/v1/recommendations", {"user_id": "u1", "history": ["x"]}, 404),
    ("user true", "/v1/recommendations", {"user_id": True}, 422),
    ("user null", "/v1/recommendations", {"user_id": None}, 422),
    ("user float", "/v1/recommendations", {"user_id": 1.5}, 422),
    ("history item true", "/v1/recommendations", {"history": [True]}, 422),
    ("n true", "/v1/recommendations", {"user_id": "u1", "n": True}, 422),
    ("n numeric string", "/v1/recommendations", {"user_id": "u1", "n": "3"}, 422),
    ("n float", "/v1/recommendations", {"user_id": "u1", "n": 3.5}, 422),
    ("instruction number", "/v1/recommendations", {"user_id": "u1", "instruction": 7}, 422),
    ("empty user id", "/v1/recommendations", {"user_id": ""}, 422),
    ("empty candidates", "/v1/recommendations", {"user_id": "u1", "candidates": []}, 422),
    ("n zero", "/v1/recommendations", {"user_id": "u1", "n": 0}, 422),
    ("n huge", "/v1/recommendations", {"user_id": "u1", "n": 10**9}, 422),
    ("n string", "/v1/recommendations", {"user_id": "u1", "n": "ten"}, 422),
    ("history not list", "/v1/recommendations", {"history": "i1"}, 422),
    ("history nested", "/v1/recommendations", {"history": [["i1"]]}, 422),
    ("user is object", "/v1/recommendations", {"user_id": {"a": 1}}, 422),
    ("extra field", "/v1/recommendations", {"user_id": "u1", "evil": 1}, 422),
    (
        "instruction too long",
        "/v1/recommendations",
        {"user_id": "u1", "instruction": "y" * 2001},
        422,
    ),
    ("body too large", "/v1/recommendations", {"user_id": "u1", "instruction": BIG}, 413),
    (
        "feedback unknown request",
        "/v1/feedback",
        {"request_id": "nope", "item_id": "i1", "signal": "like", "idempotency_key": "a"},
        404,
    ),
    (
        "feedback bad signal",
        "/v1/feedback",
        {"request_id": "r", "item_id": "i1", "signal": "love", "idempotency_key": "a"},
        422,
    ),
    (
        "rating without value",
        "/v1/feedback",
        {"request_id": "r", "item_id": "i1", "signal": "rating", "idempotency_key": "a"},
        422,
    ),
    (
        "rating out of range",
        "/v1/feedback",
        {
            "request_id": "r",
            "item_id": "i1",
            "signal": "rating",
            "rating": 9,
            "idempotency_key": "a",
        },
        422,
    ),
    (
        "rating with like",
        "/v1/feedback",
        {"request_id": "r", "item_id": "i1", "signal": "like", "rating": 4, "idempotency_key": "a"},
        422,
    ),
    (
        "no idempotency key",
        "/v1/feedback",
        {"request_id": "r", "item_id": "i1", "signal": "like"},
        422,
    ),
    (
        "feedback item true",
        "/v1/feedback",
        {"request_id": "r", "item_id": True, "signal": "like", "idempotency_key": "a"},
        422,
    ),
    (
        "feedback rating bool",
        "/v1/feedback",
        {
            "request_id": "r",
            "item_id": "i1",
            "signal": "rating",
            "rating": True,
            "idempotency_key": "a",
        },
        422,
    ),
    ("swap to missing dir", "/v1/admin/model", {"run_dir": "not/here"}, 404),
    ("swap outside the root", "/v1/admin/model", {"run_dir": "/tmp"}, 403),
    ("swap up and out", "/v1/admin/model", {"run_dir": "../.."}, 403),
    ("swap to the root itself", "/v1/admin/model", {"run_dir": "."}, 404),
    ("swap to a non-run folder", "/v1/admin/model", {"run_dir": "v2/dataset"}, 404),
    ("swap component too long", "/v1/admin/model", {"run_dir": "a" * 256}, 422),
    ("swap absolute too long", "/v1/admin/model", {"run_dir": "/" + "a" * 300 + "/b"}, 422),
    ("swap component over 255 bytes", "/v1/admin/model", {"run_dir": "é" * 200}, 404),
    ("swap empty", "/v1/admin/model", {"run_dir": ""}, 422),
    ("swap run_dir number", "/v1/admin/model", {"run_dir": 5}, 422),
    ("NUL in user id", "/v1/recommendations", {"user_id": "u\x001"}, 422),
    ("NUL in run_dir", "/v1/admin/model", {"run_dir": "/tmp/\x00x"}, 422),
    ("wrong method", "/v1/items", {}, 405),
    ("unknown path", "/v2/nothing", {}, 404),
]


@pytest.mark.parametrize("desc,path,body,status", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_4xx_with_message(client, admin, desc, path, body, status):
    headers = admin if path.startswith("/v1/admin") else {}
    if isinstance(body, bytes):
        headers = {**headers, "Content-Type": "application/json"}
        r = client.post(path, content=body, headers=headers)
    else:
        r = client.post(path, json=body, headers=headers)
    assert r.status_code == status, (desc, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    if status == 422:  # the documented ValidationErrorBody
        assert isinstance(r.json()["errors"], list)
    if status == 405:
        assert r.headers["allow"] == "GET"
    assert client.get("/v1/model").json()["version"] == "v1"  # nothing served changed


def test_feedback_for_item_not_shown(client):
    out = _recommend(client, n=2)
    shown = {it["item_id"] for it in out["items"]}
    other = next(f"i{j}" for j in range(30) if f"i{j}" not in shown)
    r = client.post(
        "/v1/feedback",
        json={
            "request_id": out["request_id"],
            "item_id": other,
            "signal": "click",
            "idempotency_key": "z",
        },
    )
    assert r.status_code == 404 and "not shown" in r.json()["detail"]


def test_bad_query_params(client):
    assert client.get("/v1/items", params={"limit": "many"}).status_code == 422
    assert client.get("/v1/items", params={"query": "q" * 500}).status_code == 422
    assert client.get("/v1/users", params={"limit": 0}).status_code == 422


def test_chunked_body_over_limit_is_413(client):
    def gen():
        for _ in range(10):
            yield json.dumps({"pad": "x" * 1000}).encode()

    r = client.post(
        "/v1/recommendations", content=gen(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_hot_swap_keeps_serving(client, admin):
    before = _recommend(client, n=3)
    r = client.post("/v1/admin/model", json={"run_dir": "v2", "version": "v2"}, headers=admin)
    assert r.status_code == 200, r.text
    after = _recommend(client, n=3)
    assert before["model_version"] == "v1" and after["model_version"] == "v2"
    assert [i["item_id"] for i in before["items"]] == [i["item_id"] for i in after["items"]]
    store = client.app.state.store
    assert store.active_model()["version"] == "v2" and store.active_model()["parent"] == "v1"
    assert 'instructrec_model_info{version="v2"} 1' in client.get("/metrics").text
    # feedback on a request served by the old version still lands
    fb = client.post(
        "/v1/feedback",
        json={
            "request_id": before["request_id"],
            "item_id": before["items"][0]["item_id"],
            "signal": "click",
            "idempotency_key": "old",
        },
    )
    assert fb.status_code == 200


def test_open_when_no_key_configured(small_rec, tmp_path):
    from fastapi.testclient import TestClient

    from instructrec.feedback.store import Store
    from instructrec.serving.app import ServeSettings, create_app

    app = create_app(small_rec, Store(f"sqlite:///{tmp_path / 'o.db'}"), ServeSettings())
    with TestClient(app) as c:
        assert c.post("/v1/recommendations", json={"user_id": "u2"}).status_code == 200


class _RecordingReranker:
    """Duck-typed reranker: reverses the retriever's order and records what it was asked."""

    def __init__(self) -> None:
        self.calls = []

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, prior=None
    ):
        self.calls.append({"intentions": intentions, "templates": templates})
        import numpy as np

        return np.tile(np.arange(candidates.shape[1], dtype=np.float32), (len(candidates), 1))


def test_bandit_template_reaches_reranker(small_rec, tmp_path):
    import copy

    from fastapi.testclient import TestClient

    from instructrec.feedback.store import Store
    from instructrec.serving.app import ServeSettings, create_app

    rec = copy.copy(small_rec)
    rec.reranker = _RecordingReranker()
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    app = create_app(rec, store, ServeSettings(seed=0))
    with TestClient(app) as c:
        out = c.post(
            "/v1/recommendations", json={"user_id": "u1", "n": 5, "instruction": "a comedy"}
        ).json()
        plain = small_rec.recommend(user="u1", n=30)
    call = rec.reranker.calls[-1]
    assert call["intentions"] == ["a comedy"] and call["templates"] == out["template_id"]
    assert out["template_id"].startswith("p1i2t3-")
    # the reranker's order (reversed retriever order within the reranked head) was served
    assert out["items"][0]["item_id"] != plain["item_id"].iloc[0]
    assert store.arms("P1I2T3")["P1I2T3"][out["template_id"]]["pulls"] == 1


def test_in_flight_request_finishes_on_old_version(small_rec, model_root, tmp_path):
    import threading

    from fastapi.testclient import TestClient

    from instructrec.feedback.store import Store
    from instructrec.serving.app import ServeSettings, create_app

    started, release = threading.Event(), threading.Event()

    class Slow:
        """The old version: its recommend blocks until the swap is done."""

        dataset = small_rec.dataset

        def recommend(self, **kw):
            started.set()
            release.wait(10)
            return small_rec.recommend(**kw)

    settings = ServeSettings(model_version="old", admin_key="a", model_root=str(model_root))
    app = create_app(Slow(), Store(f"sqlite:///{tmp_path / 's.db'}"), settings)
    out = {}
    with TestClient(app) as c:
        t = threading.Thread(
            target=lambda: out.setdefault(
                "old", c.post("/v1/recommendations", json={"user_id": "u1", "n": 3})
            )
        )
        t.start()
        assert started.wait(10)
        swap = c.post(
            "/v1/admin/model",
            json={"run_dir": "v2", "version": "new"},
            headers={"X-Admin-Key": "a"},
        )
        assert swap.status_code == 200  # the swap did not wait for the in-flight request
        new = c.post("/v1/recommendations", json={"user_id": "u1", "n": 3}).json()
        release.set()
        t.join(10)
    assert out["old"].status_code == 200 and out["old"].json()["model_version"] == "old"
    assert new["model_version"] == "new"


def test_swapping_in_a_tuned_run_registers_no_second_version(client, model_root, admin):
    """`feedback tune` registers its run (inactive); swapping it in activates that version."""
    store = client.app.state.store
    store.register_model("tuned-7", str((model_root / "v2").resolve()), parent="v1", activate=False)
    n = len(store.model_versions())
    r = client.post("/v1/admin/model", json={"run_dir": "v2"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "tuned-7"
    assert len(store.model_versions()) == n and store.active_model()["version"] == "tuned-7"
