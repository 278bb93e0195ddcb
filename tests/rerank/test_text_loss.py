"""`reranker.text_loss`: an auxiliary listwise loss on the head's text term alone, every CF
term left out, so the query tower learns to rank by item text (what a new item has)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.models.encoder_config import EncoderConfig
from instructrec.rerank.reranker import RerankerConfig
from instructrec.retrieval.bpr import BPR
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop
from instructrec.testing.datasets import synthetic_dataset
from instructrec.training.config import TrainConfig
from instructrec.training.fit_reranker import fit_reranker


@pytest.fixture(scope="module")
def world():
    ds = synthetic_dataset(n_users=50, n_items=40, per_user=12, seed=1)
    split = make_split(ds, seed=0)
    priors = [
        BPR(dim=8, max_epochs=2).fit(split.train, ds.n_users, ds.n_items),  # CF vectors
        ItemKNN().fit(split.train, ds.n_users, ds.n_items),
        Pop().fit(split.train, ds.n_users, ds.n_items),
    ]
    return ds, split, priors


def _train(world, out, text_loss: float):
    ds, split, priors = world
    cfg = RerankerConfig(
        n_random=5, n_hard=2, hard_pool=10, valid_rows=30, copies=2, slots=["P1I0", "P1I2"],
        cold_dropout=0.3, intent_dropout=0.0, text_loss=text_loss, seed=0,
    )  # fmt: skip
    tc = TrainConfig(
        output_dir=str(out), lr=3e-3, batch_size=32, patience=0, metric="mix",
        progress=False, device="cpu", max_steps=3, seed=0,
    )  # fmt: skip
    enc = EncoderConfig(lora_r=4, max_query_len=40, cf_dim=8)
    return fit_reranker(ds, split, priors, enc, cfg, tc, cf_retriever=priors[0])


@pytest.fixture(scope="module")
def pair(world, tmp_path_factory):
    return (
        _train(world, tmp_path_factory.mktemp("t0"), 0.0),
        _train(world, tmp_path_factory.mktemp("t1"), 2.0),
    )


def test_content_scores_ignore_cf_vectors_and_priors(pair):
    model = pair[1].scorer.model
    assert model.cf_proj is not None
    torch.manual_seed(0)
    b, k, h, d = 4, 6, 5, model.item_vecs.shape[1]
    n = model.item_vecs.shape[0]
    cands = torch.randint(0, n, (b, k))
    hist = torch.randint(0, n, (b, h))
    hist[0, -2:] = -1  # padding
    prior = torch.randn(b, k, model.config.n_prior)
    prior[..., -1] = 0.0  # every candidate warm: their CF terms are in the scores
    q = torch.randn(b, d)
    with torch.no_grad():
        s, c = model(None, None, cands, hist, prior, query=q, with_content=True)
        assert torch.equal(s, model(None, None, cands, hist, prior, query=q))
        prior2 = prior.clone()
        prior2[..., 0] += 3.0
        s2, c2 = model(None, None, cands, hist, prior2, query=q, with_content=True)
        torch.testing.assert_close(c2, c)
        assert not torch.allclose(s2, s)
        saved = model.cf_vecs.clone()
        model.cf_vecs.copy_(torch.randn_like(saved))
        s3, c3 = model(None, None, cands, hist, prior, query=q, with_content=True)
        model.cf_vecs.copy_(saved)
    torch.testing.assert_close(c3, c)  # the content scores read no CF vector
    assert not torch.allclose(s3, s)  # the scores do
    q2 = q + torch.randn_like(q)
    with torch.no_grad():
        _, c4 = model(None, None, cands, hist, prior, query=q2, with_content=True)
    assert not torch.allclose(c4, c)  # and the query is what they read


def test_text_loss_changes_training_and_is_checked(pair):
    plain, aux = pair
    a = plain.scorer.model.trainable_state()
    b = aux.scorer.model.trainable_state()
    assert a.keys() == b.keys()
    moved = [k for k in a if not torch.allclose(a[k], b[k], atol=1e-4)]
    assert any("lora" in k for k in moved) and "head.q_proj.weight" in moved
    assert np.isfinite(aux.train_result.best_metric)
    assert RerankerConfig().text_loss == 0.0
    with pytest.raises(DataError, match="text_loss"):
        RerankerConfig(text_loss=-0.5)
    from instructrec.config import RunConfig

    with pytest.raises(DataError, match="linear head"):
        RunConfig(backbone=EncoderConfig(head="rr"), reranker=RerankerConfig(text_loss=0.5))
