"""int8 dynamic quantisation of the query tower: a serving option that keeps the scores."""

from __future__ import annotations

import copy

import numpy as np
import torch

from instructrec.models.quantize import quantize_query_tower
from instructrec.rerank.batched import Request
from instructrec.testing.shipped import shipped_like


def test_int8_tower_keeps_scores_and_the_batched_path():
    torch.set_num_threads(1)
    rec = shipped_like()
    users = np.arange(6)
    cands = np.stack([np.arange(10) + 3 * i for i in range(6)])
    hists = [rec.sequences.get(int(u), np.empty(0, np.int64)) for u in users]
    texts = ["a comedy from the 80s", "something scary", None, "a drama", None, "fun"]
    before = rec.score_candidates(users, cands, hists, texts)
    q = copy.copy(rec)
    q.reranker = copy.deepcopy(rec.reranker)
    assert quantize_query_tower(q.reranker)
    linear = [m for m in q.reranker.scorer.model.tower.modules() if type(m) is torch.nn.Linear]
    assert not linear  # every Linear of the tower is the quantised kind
    after = q.score_candidates(users, cands, hists, texts)
    assert not np.allclose(before, after)  # it did change the arithmetic
    assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.99
    reqs = [Request(user="u3", instruction="a light comedy", n=4), Request(user="u5", n=3)]
    # dynamic int8 scales activations per batch, so a batch of several requests computes
    # slightly other scores than each request alone: near ties may swap, nothing more
    for b, r in zip(q.answer_many(reqs), reqs, strict=True):
        alone = r.answer(q).items
        one = {i.item_id: i.score for i in alone}
        got = {i.item_id: i.score for i in b.items}
        assert b.items[0].item_id == alone[0].item_id
        assert len(got.keys() & one.keys()) >= len(one) - 1
        assert all(abs(got[i] - one[i]) < 0.02 for i in got.keys() & one.keys())


def test_nothing_to_quantise():
    assert quantize_query_tower(None) is False
