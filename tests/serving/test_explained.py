"""The API explains its answers: readable fields per item, what the instruction was read as,
and requests from a new visitor (an instruction, no user, no history)."""

from __future__ import annotations


def test_items_carry_explanations(client):
    r = client.post("/v1/recommendations", json={"user_id": "u1", "n": 4, "instruction": "fun"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["understood"] == "nothing understood" and "no attribute" in out["message"]
    scores = [it["score"] for it in out["items"]]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    for it in out["items"]:
        assert it["reason"] and it["raw_score"] is not None and it["genres"] == []
    plain = client.post("/v1/recommendations", json={"user_id": "u1", "n": 2}).json()
    assert plain["understood"] is None and plain["message"] is None


def test_instruction_only_request(client):
    r = client.post("/v1/recommendations", json={"instruction": "a light comedy", "n": 3})
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["items"]) == 3 and all("popular" in it["reason"] for it in out["items"])
    stored = client.app.state.store.get_request(out["request_id"])
    assert stored["instruction"] == "a light comedy"
    r = client.post("/v1/recommendations", json={"n": 3})
    assert r.status_code == 422 and "instruction" in r.text
