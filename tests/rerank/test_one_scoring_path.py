"""One scoring path: serving (`Recommender.answer`), the evaluation harness, the `Scorer`
contract, the training loss and validation all call the model through
`instructrec.models.scoring.score_batch`, and give the same scores for the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

import instructrec.models.scoring as scoring
from instructrec.data import make_split
from instructrec.evaluation import protocols
from instructrec.models.base import RerankExample
from instructrec.models.encoder_config import EncoderConfig
from instructrec.models.encoder_scorer import EncoderScorer
from instructrec.recommender import Recommender
from instructrec.rerank.instances import TextSide, Validation
from instructrec.rerank.rerank_features import item_texts
from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def world():
    import torch

    ds = synthetic_dataset(n_users=30, n_items=40, per_user=8, seed=3)
    split = make_split(ds, seed=0)
    knn = ItemKNN()
    rec = Recommender(ds, knn, priors=[knn, Pop()]).fit(split)
    cfg = EncoderConfig(lora_r=2, n_prior=2, max_query_len=32)
    scorer = EncoderScorer.build(item_texts(ds), cfg, history_len=20)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # away from the initialisation, so scores differ between items
        for p in scorer.model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    # priors only (no intent-match channel): the test feeds the contract rec.prior_scores
    cfg_rr = RerankerConfig(intent_match=False)
    rr = InstructionReranker(scorer, TextSide.of(ds), cfg_rr, ["itemknn", "pop"])
    rr.dataset = ds
    rec.reranker = rr
    return ds, split, rec


@pytest.fixture()
def calls(monkeypatch):
    """Every call of `score_batch`, with the rows it scored; the scores pass through."""
    seen: list[int] = []
    real = scoring.score_batch

    def counting(model, batch):
        out = real(model, batch)
        seen.append(int(out.shape[0]))
        return out

    monkeypatch.setattr(scoring, "score_batch", counting)
    return seen


def _rows(ds, split, n=6):
    users = split.test["user"].to_numpy(np.int64)[:n]
    seqs = split.sequences("test")
    hists = [seqs.get(int(u), np.empty(0, np.int64)) for u in users]
    cands = split.candidates["cand10"]["test"][:n].astype(np.int64)
    return users, hists, cands


def test_serving_goes_through_score_batch(world, calls):
    ds, _, rec = world
    user = str(ds.user_ids[0])
    got = rec.answer(user=user, instruction="a comedy", n=5)
    assert calls, "Recommender.answer did not score through score_batch"
    assert len(got.items) == 5


def test_evaluation_and_the_contract_score_alike_through_score_batch(world, calls):
    ds, split, rec = world
    users, hists, cands = _rows(ds, split)
    rows = protocols.TestRows(users, cands[:, 0], hists, np.full(len(users), np.nan))
    evaluated = protocols.score_candidates(rec, rows, cands)
    assert sum(calls) == len(users), "the evaluation harness scored outside score_batch"
    # the contract's entry point, fed what the reranker feeds itself, gives the same scores
    rr = rec.reranker
    texts = rr.queries(hists)
    prior = rec.prior_scores(users, cands, hists)  # raw: both z-score within each list
    examples = [
        RerankExample(
            instruction=texts[i],
            candidate_texts=[str(j) for j in cands[i]],
            candidate_ids=cands[i],
            prior=prior[i],
            history_ids=hists[i],
        )
        for i in range(len(users))
    ]
    calls.clear()
    contract = rr.scorer.score(examples)
    assert sum(calls) == len(users), "EncoderScorer.score scored outside score_batch"
    np.testing.assert_allclose(np.stack(contract), evaluated, atol=1e-5)


def test_validation_scores_through_score_batch(world, calls):
    ds, split, rec = world
    rr = rec.reranker
    valid = Validation(rr, ds, split, rec.priors, RerankerConfig(valid_rows=8, intent_match=False))
    m = valid.metrics(rr.scorer.model)
    assert 0.0 <= m["hr@1"] <= 1.0
    assert sum(calls) == 2 * 8  # the I0 and the I2 rows


def test_batched_serving_goes_through_score_batch(world, calls):
    """The service's micro-batches (`rerank.batched.answer_many`) score every request in one
    `score_batch` call, with the items of the unbatched answers and their scores."""
    from instructrec.rerank.batched import Request, answer_many

    ds, _, rec = world
    users = [str(u) for u in ds.user_ids[:5]]
    ids = [str(i) for i in ds.item_ids]
    requests = [
        Request(user=users[0], n=5),
        Request(user=users[1], instruction="a comedy", n=4),
        Request(user=users[2], instruction="something scary", n=6),
        Request(user=users[3], candidates=ids[:8], n=3),
        Request(history=ids[10:14], instruction="an action movie", n=5),
    ]
    alone = [r.answer(rec) for r in requests]
    calls.clear()
    together = answer_many(rec, requests)
    assert calls == [len(requests)], f"the batched path scored as {calls}, not in one call"
    for a, b in zip(alone, together, strict=True):
        assert not isinstance(b, Exception), b
        assert [it.item_id for it in b.items] == [it.item_id for it in a.items]
        np.testing.assert_allclose(
            [it.raw_score for it in b.items], [it.raw_score for it in a.items], atol=1e-6
        )
        np.testing.assert_allclose(
            [it.score for it in b.items], [it.score for it in a.items], atol=1e-6
        )
