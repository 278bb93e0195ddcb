"""Micro-batching in the service (`serving.batcher`): concurrent requests share model passes,
bounded by the window and the batch size, and each gets exactly the answer it gets alone; a
failing request fails alone."""

from __future__ import annotations

import asyncio

import pytest

from instructrec.data.errors import DataError
from instructrec.feedback.bandit import catalogue_templates
from instructrec.feedback.store import Store
from instructrec.serving.app import ServeSettings, create_app
from instructrec.serving.batcher import Batcher
from instructrec.testing.shipped import shipped_like

KEY = "k"
SLOTS = ("P1I2T3", "P1I0T3", "P0I2T3", "P0I0T3")


@pytest.fixture(scope="module")
def rec():
    import torch

    torch.set_num_threads(1)
    return shipped_like()


def app_for(rec, tmp_path, name: str, **batching):
    """An app whose bandit has one template per slot, so responses do not depend on the order
    requests reach it."""
    templates = {s: catalogue_templates(s)[:1] for s in SLOTS}
    settings = ServeSettings(api_key=KEY, seed=0, templates=templates, **batching)
    return create_app(rec, Store(f"sqlite:///{tmp_path / name}.db"), settings)


def bodies(rec) -> list[dict]:
    ids = [str(i) for i in rec.dataset.item_ids]
    return [
        {"user_id": "u3", "n": 5},
        {"user_id": "u3", "n": 7, "instruction": "a comedy from the 80s"},
        {"user_id": "u5", "n": 4, "instruction": "something scary, no drama"},
        {"user_id": "u7", "n": 3, "instruction": "a light comedy", "candidates": ids[:12]},
        {"history": ids[:4], "n": 6, "instruction": "an action movie"},
        {"instruction": "a romantic film", "n": 5},
        {"user_id": "nobody", "n": 3},  # 404
        {"user_id": "u3", "n": 0},  # 422
        {"user_id": "u9", "n": 30},
        {"user_id": "u12", "n": 4, "instruction": "fun"},
        {"user_id": "u11", "candidates": [ids[5], ids[5], ids[6]], "n": 2},
        {"user_id": "u2", "history": ids[7:9], "n": 4},
    ]


async def post_all(app, payloads: list[dict], concurrent: bool = True) -> list:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-API-Key": KEY}
    ) as client:

        async def one(body):
            return await client.post("/v1/recommendations", json=body)

        if concurrent:
            return await asyncio.gather(*(one(b) for b in payloads))
        return [await one(b) for b in payloads]


def comparable(resp) -> tuple:
    out = resp.json()
    if resp.status_code != 200:
        return resp.status_code, out["detail"]
    items = [
        (it["item_id"], it["rank"], it["title"], it["reason"], it["genres"], it["year"])
        for it in out["items"]
    ]
    scores = [(it["score"], it["raw_score"]) for it in out["items"]]
    fields = (out["template_id"], out["understood"], out["n_matching"], out["message"])
    return 200, items, fields, scores


def test_concurrent_batched_responses_equal_unbatched(rec, tmp_path):
    payloads = bodies(rec) * 3
    plain = app_for(rec, tmp_path, "plain", batch_window_ms=0)
    assert plain.app.state.batcher is None  # 0 disables batching: the unbatched path
    want = [comparable(r) for r in asyncio.run(post_all(plain, payloads, concurrent=False))]
    assert [w[0] for w in want[:12]] == [200] * 6 + [404, 422] + [200] * 4
    batched = app_for(rec, tmp_path, "batched", batch_window_ms=50, max_batch=8)
    got = [comparable(r) for r in asyncio.run(post_all(batched, payloads))]
    batcher = batched.app.state.batcher
    assert batcher.batches >= 1 and 1 < batcher.largest <= 8  # requests shared passes
    assert batcher.requests == sum(1 for w in want if w[0] == 200)  # 404/422 never reach it
    for g, w in zip(got, want, strict=True):
        assert g[:3] == w[:3]
        if g[0] == 200:
            for (gs, gr), (ws, wr) in zip(g[3], w[3], strict=True):
                assert abs(gs - ws) <= 1e-6 and abs(gr - wr) <= 1e-6


class Flaky:
    """The real recommender, except that a request whose instruction is "boom" fails."""

    def __init__(self, rec) -> None:
        self.rec = rec

    def __getattr__(self, name):
        return getattr(self.rec, name)

    def answer_many(self, requests):
        good = [r for r in requests if r.instruction != "boom"]
        answers = iter(self.rec.answer_many(good))
        return [
            DataError("boom: this request fails") if r.instruction == "boom" else next(answers)
            for r in requests
        ]


def test_one_failing_request_does_not_fail_its_batch(rec, tmp_path):
    app = app_for(Flaky(rec), tmp_path, "flaky", batch_window_ms=100, max_batch=16)
    payloads = [{"user_id": f"u{i}", "n": 3} for i in range(1, 7)]
    payloads[2] = payloads[4] = {"user_id": "u3", "n": 3, "instruction": "boom"}
    out = asyncio.run(post_all(app, payloads))
    assert [r.status_code for r in out] == [200, 200, 422, 200, 422, 200]
    assert "boom" in out[2].json()["detail"]
    assert app.app.state.batcher.largest == 6  # all in one pass


def test_batch_run_that_raises_fails_only_its_requests():
    def run(key, items):
        if key == "bad":
            raise RuntimeError("model down")
        return [i * 2 for i in items]

    async def go():
        b = Batcher(run, window_ms=50, max_batch=4)
        futs = [b.submit("ok", 1), b.submit("bad", 2), b.submit("ok", 3)]
        return await asyncio.gather(*futs, return_exceptions=True), b

    (a, bad, c), b = asyncio.run(go())
    assert (a, c) == (2, 6) and isinstance(bad, RuntimeError) and b.batches == 2
    b.close()


@pytest.mark.parametrize("max_batch", [1, 3, 5])
def test_batches_never_exceed_max_batch(max_batch):
    sizes = []

    def run(key, items):
        sizes.append(len(items))
        return items

    async def go():
        b = Batcher(run, window_ms=20, max_batch=max_batch)
        out = await asyncio.gather(*(b.submit(0, i) for i in range(11)))
        b.close()
        return out

    assert asyncio.run(go()) == list(range(11))  # each caller gets its own result
    assert sum(sizes) == 11 and max(sizes) == max_batch
    assert len(sizes) == -(-11 // max_batch)  # all queued at once: full batches


def test_window_groups_requests_that_arrive_within_it():
    """Requests arriving within the window share a pass; one arriving after it has run
    starts a new batch (timings are generous: no test asserts a latency)."""
    sizes = []

    def run(key, items):
        sizes.append(len(items))
        return items

    async def go():
        b = Batcher(run, window_ms=300, max_batch=32)

        async def late(i, delay):
            await asyncio.sleep(delay)
            return await b.submit(0, i)

        first = await asyncio.gather(*(late(i, 0.01 * i) for i in range(4)))
        second = await b.submit(0, 9)
        b.close()
        return first, second

    assert asyncio.run(go()) == ([0, 1, 2, 3], 9)
    assert sizes == [4, 1]


def test_settings_bounds():
    with pytest.raises(ValueError):
        ServeSettings(batch_window_ms=-1)
    with pytest.raises(ValueError):
        ServeSettings(max_batch=0)
    with pytest.raises(ValueError):
        Batcher(lambda k, i: i, window_ms=-1)
