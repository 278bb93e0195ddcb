"""InstructionReranker: instances, training with the engine, scoring, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.data import make_split
from instructrec.models.encoder_config import EncoderConfig
from instructrec.rerank.rerank_features import item_texts, ranking_metrics, stacked_frame
from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop
from instructrec.testing.datasets import synthetic_dataset
from instructrec.training.config import TrainConfig
from instructrec.training.fit_reranker import fit_pointwise, fit_reranker


@pytest.fixture(scope="module")
def world():
    ds = synthetic_dataset(n_users=50, n_items=40, per_user=12, seed=1)
    split = make_split(ds, seed=0)
    priors = [
        ItemKNN().fit(split.train, ds.n_users, ds.n_items),
        Pop().fit(split.train, ds.n_users, ds.n_items),
    ]
    return ds, split, priors


def _train(world, out, **train_kw):
    ds, split, priors = world
    cfg = RerankerConfig(
        n_random=5,
        n_hard=2,
        hard_pool=10,
        valid_rows=30,
        copies=2,
        slots=["P1I0", "P1I2"],
        intent_match=True,
    )
    tc = TrainConfig(
        output_dir=str(out),
        lr=3e-3,
        batch_size=32,
        patience=0,
        metric="mix",
        greater_is_better=True,
        progress=False,
        device="cpu",
        **train_kw,
    )
    return fit_reranker(ds, split, priors, EncoderConfig(lora_r=4, max_query_len=40), cfg, tc)


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """A few optimizer steps: enough to exercise every stage, not to learn."""
    return _train(world, tmp_path_factory.mktemp("rr"), max_steps=2, eval_every=2)


def _test_inputs(split, priors):
    u = split.test["user"].to_numpy()
    c = split.candidates["cand10"]["test"]
    seqs = split.sequences("test")
    h = [seqs[int(x)] for x in u]
    p = np.stack([r.score(u, c, histories=h) for r in priors], -1)
    return u, c, h, p


def test_item_texts_and_stacked_frame(world):
    ds, split, _ = world
    texts = item_texts(ds)
    assert len(texts) == ds.n_items and all(ds.titles[0] in texts[0] for _ in [0])
    assert any("Comedy" in t or "Drama" in t for t in texts)
    kept, held = stacked_frame(split.train, 2)
    assert len(kept) + len(held) == len(split.train)
    # the held rows are each user's last two training interactions
    last = split.train.sort_values(["user", "timestamp", "order"]).groupby("user").tail(2)
    assert set(map(tuple, held[["user", "item"]].to_numpy())) == set(
        map(tuple, last[["user", "item"]].to_numpy())
    )


def test_ranking_metrics_counts_ties_against_target():
    s = np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    m = ranking_metrics(s)
    assert m["hr@1"] == 0.5 and m["hr@3"] == 1.0


def test_training_ran_with_the_engine(trained):
    tr = trained.train_result
    assert tr.steps > 0 and tr.history and "hr@1" in tr.history[-1]
    # warm start and validation re-fit of the prior weights (one weight per prior, plus the
    # intent-match channel, which I2 training rows make clearly positive)
    assert len(trained.prior_mixture) == 3 and len(trained.calibrated_prior_w) == 3
    assert trained.prior_mixture[-1] > 0
    head_w = trained.scorer.model.head.prior_w.detach().numpy()
    np.testing.assert_allclose(head_w, trained.calibrated_prior_w, rtol=1e-6)


def test_prior_mixture_recovers_the_informative_prior():
    from instructrec.rerank.rerank_features import fit_prior_mixture

    rng = np.random.default_rng(0)
    prior = rng.normal(size=(400, 6, 2)).astype(np.float32)
    label = prior[:, :, 0].argmax(1)  # feature 0 decides, feature 1 is noise
    w = fit_prior_mixture(prior, label)
    assert w[0] > 3 * abs(w[1])


@pytest.mark.slow
def test_learns_to_follow_intentions(world, tmp_path):
    """Search rows (intention derived from the target's genres/decade) must beat history-only
    rows and chance: the planted pattern is 'the target matches the stated intention'."""
    from instructrec.instructions.derive import derive_intentions

    ds, split, priors = world
    trained = _train(world, tmp_path, epochs=3, eval_every=10)
    u, c, h, p = _test_inputs(split, priors)
    intents, _ = derive_intentions(ds, c[:, 0], kind="I2", seed=0)
    with_i = ranking_metrics(trained.score_candidates(u, c, h, intentions=intents, prior=p))
    without = ranking_metrics(trained.score_candidates(u, c, h, prior=p))
    assert with_i["hr@1"] > without["hr@1"]
    assert with_i["hr@1"] >= 0.4  # chance is 0.1


def test_scores_shape_and_templates(world, trained):
    _, split, priors = world
    u, c, h, p = _test_inputs(split, priors)
    s = trained.score_candidates(u, c, h, prior=p)
    assert s.shape == c.shape and np.isfinite(s).all()
    s_ho = trained.score_candidates(u, c, h, prior=p, templates="held_out")
    assert s_ho.shape == c.shape and not np.allclose(s, s_ho)  # other wording, other query


def test_save_load_round_trip(world, trained, tmp_path):
    _, split, priors = world
    u, c, h, p = _test_inputs(split, priors)
    trained.save(tmp_path / "rr")
    loaded = InstructionReranker.load(tmp_path / "rr")
    np.testing.assert_allclose(
        loaded.score_candidates(u, c, h, prior=p),
        trained.score_candidates(u, c, h, prior=p),
        rtol=1e-5,
        atol=1e-5,
    )
    assert loaded.prior_names == trained.prior_names
    # the Yes/No head travels with the model
    items = c[:, 0]
    np.testing.assert_allclose(
        loaded.score_pointwise(u, items, h),
        trained.score_pointwise(u, items, h),
        rtol=1e-5,
        atol=1e-5,
    )


def test_pointwise_head_and_cf_from_the_stacked_retriever(world, trained):
    """The reranker fits a Yes/No head after training (the synthetic log has ratings), and
    the CF item embeddings come from the stacked retriever, not the one that saw the targets."""
    ds, split, priors = world
    u, c, h, _ = _test_inputs(split, priors)
    s = trained.score_pointwise(u, c[:, 0], h)
    assert s.shape == (len(u),) and np.isfinite(s).all() and np.std(s) > 0
    assert trained.config.cf_stacked and trained.config.pointwise
    trained.pointwise = None
    try:
        with pytest.raises(ValueError, match="pointwise head"):
            trained.score_pointwise(u, c[:, 0], h)
    finally:
        fit_pointwise(trained, ds, split)


def test_load_rejects_a_non_run(tmp_path):
    from instructrec.data.errors import DataError

    with pytest.raises(DataError, match="reranker.json"):
        InstructionReranker.load(tmp_path)


@pytest.mark.parametrize("cf_stacked", [True, False])
def test_cf_embeddings_come_from_the_stacked_twin(world, tmp_path, cf_stacked):
    """With cf_stacked (default) the cached CF item vectors are the stacked retriever's: the
    one fitted on all training data has seen the reranker's training targets (a leak)."""
    from instructrec.retrieval.bpr import BPR

    ds, split, _ = world
    full = BPR(dim=8, max_epochs=2).fit(split.train, ds.n_users, ds.n_items)
    kept, _ = stacked_frame(split.train, 2)
    twin = BPR(dim=8, max_epochs=2, seed=1).fit(kept, ds.n_users, ds.n_items)
    assert not np.allclose(full.item_embeddings(), twin.item_embeddings())
    given = EncoderConfig(lora_r=0, max_query_len=24, cf_dim=4)
    rr = fit_reranker(
        ds,
        split,
        [full],
        given,
        RerankerConfig(valid_rows=20, slots=["P1I0"], copies=1, cf_stacked=cf_stacked),
        TrainConfig(
            output_dir=str(tmp_path), max_steps=1, metric="hr@1", progress=False, device="cpu"
        ),
        cf_retriever=full,
        stacked=[twin],
    )
    want = (twin if cf_stacked else full).item_embeddings()
    np.testing.assert_allclose(rr.scorer.model.cf_vecs.numpy(), want, rtol=1e-6)
    # the derived sizes are the model's; the caller's config is as it was given
    assert (rr.scorer.model.config.n_prior, rr.scorer.model.config.cf_dim) == (
        2,
        8,
    )  # one retriever + the intent-match channel
    assert given == EncoderConfig(lora_r=0, max_query_len=24, cf_dim=4)
    rr.save(tmp_path / "rr")
    back = InstructionReranker.load(tmp_path / "rr").scorer.model.config
    assert (back.n_prior, back.cf_dim) == (2, 8)  # one retriever + the intent-match channel
