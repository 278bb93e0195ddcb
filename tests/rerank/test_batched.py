"""Batched answers (`rerank.batched`) equal unbatched ones request by request: the same items
in the same order, scores within 1e-6, the same explanations; a bad request fails alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.recommender import Recommender
from instructrec.rerank.batch_cache import QueryCache
from instructrec.rerank.batched import Request
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop
from instructrec.testing.shipped import shipped_like


@pytest.fixture(scope="module")
def rec():
    torch.set_num_threads(1)
    return shipped_like()


def mixed_requests(rec) -> list[Request]:
    ids = [str(i) for i in rec.dataset.item_ids]
    return [
        Request(user="u3", n=5),
        Request(user="u3", instruction="a comedy from the 80s", n=7),
        Request(user="u5", instruction="something scary, no drama", n=4, template=None),
        Request(user="u7", instruction="a light comedy", n=3, candidates=ids[:12]),
        Request(history=ids[:4], instruction="an action movie", n=6),
        Request(instruction="a romantic film", n=5),  # a new visitor
        Request(user="nobody", n=3),  # unknown user: fails alone
        Request(user="u3", n=0),  # bad n: fails alone
        Request(user="u9", n=30),  # more than the rerank depth
        Request(user="u3", instruction="a comedy from the 80s", n=7, exclude_seen=False),
        Request(user="u11", candidates=[ids[5], ids[5], ids[6]], n=2),
        Request(user="u12", instruction="fun", n=4),  # nothing parsed
    ]


def assert_same(batched, single) -> None:
    if isinstance(single, Exception):
        assert type(batched) is type(single) and str(batched) == str(single)
        return
    assert not isinstance(batched, Exception), batched
    assert [r.item_id for r in batched.items] == [r.item_id for r in single.items]
    np.testing.assert_allclose(
        [r.raw_score for r in batched.items], [r.raw_score for r in single.items], atol=1e-6
    )
    np.testing.assert_allclose(
        [r.score for r in batched.items], [r.score for r in single.items], atol=1e-6
    )
    assert [r.reason for r in batched.items] == [r.reason for r in single.items]
    assert (batched.understood, batched.n_matching, batched.message) == (
        single.understood,
        single.n_matching,
        single.message,
    )


def single(rec, req: Request):
    try:
        return req.answer(rec)
    except Exception as e:
        return e


def test_batched_equals_unbatched_per_request(rec, monkeypatch):
    reqs = mixed_requests(rec)
    want = [single(rec, r) for r in reqs]
    assert isinstance(want[6], DataError) and isinstance(want[7], DataError)

    def no_fallback(self, rec):
        raise AssertionError("the shared path fell back to request-by-request answers")

    monkeypatch.setattr(Request, "answer", no_fallback)
    got = rec.answer_many(reqs)
    assert len(got) == len(reqs)
    for b, s in zip(got, want, strict=True):
        assert_same(b, s)
    # the batch's composition does not matter: reversed, and one request alone
    for b, s in zip(rec.answer_many(reqs[::-1]), want[::-1], strict=True):
        assert_same(b, s)
    assert_same(rec.answer_many([reqs[1]])[0], want[1])


def test_batched_path_is_the_shared_one(rec):
    """The linear-head encoder reranker takes the shared path (no fallback): its query cache
    sees every query text and hits on repeats."""
    reqs = [Request(user="u3", instruction="a light comedy", n=3)] * 4
    assert not any(isinstance(a, Exception) for a in rec.answer_many(reqs))
    cache = rec.reranker.__dict__["_batched"]["cache"]
    assert isinstance(cache, QueryCache) and cache.hits >= 3


def test_recommend_many_gives_the_frames_of_recommend(rec):
    frames = rec.recommend_many([{"user": "u3", "n": 4}, {"user": "nobody"}])
    want = rec.recommend(user="u3", n=4)
    assert frames[0]["item_id"].tolist() == want["item_id"].tolist()
    assert isinstance(frames[1], DataError)


def test_query_cache_is_bounded(rec):
    cache = QueryCache(rec.reranker.scorer, size=3)
    with torch.inference_mode():
        a = cache([f"text {i}" for i in range(5)])
        assert a.shape[0] == 5 and len(cache._vecs) == 3
        again = cache(["text 4"])
    assert cache.hits == 1
    torch.testing.assert_close(again[0], a[4], atol=1e-6, rtol=0)


def test_other_rerankers_answer_request_by_request(tiny_dataset):
    """A reranker without the shared path (any ``score_candidates``) gives the same answers."""

    class ById:
        def score_candidates(self, users, candidates, histories, **kw):
            return np.asarray(candidates, np.float32)

    split = make_split(tiny_dataset, seed=0)
    knn = ItemKNN()
    r = Recommender(tiny_dataset, knn, ById(), priors=[knn, Pop()]).fit(split)
    reqs = [Request(user="u3", n=4), Request(user="u4", instruction="a comedy", n=3)]
    for b, s in zip(r.answer_many(reqs), [single(r, q) for q in reqs], strict=True):
        assert_same(b, s)


def test_first_stage_scores_are_computed_once_per_user_and_history(rec):
    """The memo that lets the retriever's catalogue scores serve again as its prior: the
    same scores as the retriever, one underlying call per distinct (user, history)."""
    from instructrec.rerank.batch_cache import MemoScores

    calls = []

    class Counting:
        def score_all(self, users, histories=None):
            calls.append(len(users))
            return rec.retriever.score_all(users, histories)

    memo = MemoScores(Counting())
    users = np.array([3, 5, 3])
    hists = [np.array([1, 2]), np.array([4]), np.array([1, 2])]
    want = rec.retriever.score_all(users, hists)
    np.testing.assert_allclose(memo.score_all(users, hists), want, rtol=0, atol=1e-6)
    assert calls == [2]  # users 3 and 5 once each
    items = np.array([[0, 7], [1, 2], [9, 9]])
    got = memo.score(users, items, hists)
    np.testing.assert_allclose(got, np.take_along_axis(want, items, axis=1), atol=1e-6)
    assert calls == [2]  # served from the memo
    other = memo.score_all(np.array([3]), [np.array([2, 1])])  # another history: scored
    assert calls == [2, 1] and other.shape == (1, rec.dataset.n_items)
