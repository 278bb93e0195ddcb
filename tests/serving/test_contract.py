"""What the published OpenAPI promises and the rules it documents: error models per status,
API-key security schemes, duplicate candidates ranked once, user_id + history appended, a
feedback replay with any field different is a 409."""

from __future__ import annotations


def test_openapi_documents_errors_and_security(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["AdminKey"]["name"] == "X-Admin-Key"
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's, not ours
    ops = spec["paths"]
    ref = "#/components/schemas/"
    expect = {
        ("/v1/recommendations", "post"): {"401", "404", "413", "422", "503"},
        ("/v1/feedback", "post"): {"401", "404", "409", "413", "422", "503"},
        ("/v1/admin/model", "post"): {"401", "403", "404", "409", "413", "422", "503"},
        ("/v1/items/{item_id}", "get"): {"404"},
    }
    for (path, method), codes in expect.items():
        op = ops[path][method]
        assert codes <= set(op["responses"]), (path, set(op["responses"]))
        for code in codes:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            model = {"422": "ValidationErrorBody", "503": "UnavailableBody"}.get(code, "ErrorBody")
            assert schema == {"$ref": ref + model}, (path, code, schema)
        assert "503" not in codes or "Retry-After" in op["responses"]["503"]["headers"]
    assert ops["/v1/recommendations"]["post"]["security"] == [{"ApiKey": []}]
    assert ops["/v1/admin/model"]["post"]["security"] == [{"AdminKey": []}]
    assert set(spec["components"]["schemas"]["ModelInfo"]["properties"]) == {
        "version",
        "dataset",
        "items",
    }


def test_open_server_declares_no_security(small_rec, tmp_path):
    from fastapi.testclient import TestClient

    from instructrec.feedback.store import Store
    from instructrec.serving.app import ServeSettings, create_app

    app = create_app(small_rec, Store(f"sqlite:///{tmp_path / 'o.db'}"), ServeSettings())
    with TestClient(app) as c:
        spec = c.get("/openapi.json").json()
    assert "security" not in spec["paths"]["/v1/recommendations"]["post"]
    assert "401" not in spec["paths"]["/v1/recommendations"]["post"]["responses"]


def test_duplicate_candidates_are_ranked_once(client):
    r = client.post(
        "/v1/recommendations", json={"user_id": "u1", "candidates": ["i1", "i1", "i2", "i1"]}
    )
    assert r.status_code == 200, r.text
    assert sorted(it["item_id"] for it in r.json()["items"]) == ["i1", "i2"]


def test_user_and_history_are_merged_by_the_documented_rule(client, small_rec):
    """history is appended to the user's stored history: the user's seen items stay excluded,
    and the added ones are excluded too."""
    seen = {str(small_rec.dataset.item_ids[j]) for j in small_rec.history_of("u1")[1]}
    extra = next(f"i{j}" for j in range(30) if f"i{j}" not in seen)
    r = client.post("/v1/recommendations", json={"user_id": "u1", "history": [extra], "n": 10})
    assert r.status_code == 200, r.text
    shown = {it["item_id"] for it in r.json()["items"]}
    assert shown and not shown & (seen | {extra})
    merged = small_rec.recommend(user="u1", history=[*map(str, _raw(small_rec, "u1")), extra], n=10)
    assert [it["item_id"] for it in r.json()["items"]] == list(merged["item_id"])


def _raw(rec, user):
    return rec.dataset.item_ids[rec.history_of(user)[1]]


def test_feedback_replay_with_other_text_is_409(client):
    out = client.post("/v1/recommendations", json={"user_id": "u1", "n": 2}).json()
    body = {
        "request_id": out["request_id"],
        "item_id": out["items"][0]["item_id"],
        "signal": "like",
        "text": "loved it",
        "idempotency_key": "t-1",
    }
    assert client.post("/v1/feedback", json=body).status_code == 200
    again = client.post("/v1/feedback", json=body)
    assert again.status_code == 200 and again.json()["replayed"]
    for change in ({"text": "hated it"}, {"text": None}, {"signal": "click"}):
        r = client.post("/v1/feedback", json={**body, **change})
        assert r.status_code == 409 and "idempotency_key" in r.json()["detail"], (change, r.text)


def test_405_names_the_allowed_methods(client):
    r = client.delete("/v1/recommendations")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert isinstance(r.json()["detail"], str)
