"""Cold items (`rerank.cold`, issue 15): the indicator channel, neutral collaborative inputs,
DropoutNet-style training instances, and the same treatment in the score-mix rival."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.models.encoder_config import EncoderConfig, zscore
from instructrec.rerank.cold import (
    FILL_CLIP,
    catalogue_means,
    cold_dropout_mask,
    cold_priors,
    content_channels,
    fill_cold,
    list_priors,
    zero_interaction_items,
)
from instructrec.rerank.rerank_features import score_priors, stacked_frame
from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop
from instructrec.testing.datasets import synthetic_dataset
from instructrec.training.config import TrainConfig
from instructrec.training.fit_reranker import fit_reranker


@pytest.fixture(scope="module")
def world():
    ds = synthetic_dataset(n_users=50, n_items=40, per_user=12, seed=1)
    split = make_split(ds, seed=0)
    assert len(split.cold_items) > 0
    priors = [
        ItemKNN().fit(split.train, ds.n_users, ds.n_items),
        Pop().fit(split.train, ds.n_users, ds.n_items),
    ]
    return ds, split, priors


def _config(**kw) -> RerankerConfig:
    base = dict(n_random=5, n_hard=2, hard_pool=10, valid_rows=30, copies=2)
    base.update(slots=["P1I0", "P1I2"], intent_match=True, cold_dropout=0.0, intent_dropout=0.0)
    return RerankerConfig(**{**base, **kw})


def _train(world, out, config, **train_kw):
    ds, split, priors = world
    tc = TrainConfig(
        output_dir=str(out),
        lr=3e-3,
        batch_size=32,
        patience=0,
        metric="mix",
        progress=False,
        device="cpu",
        **train_kw,
    )
    enc = EncoderConfig(lora_r=4, max_query_len=40, cf_dim=0)
    return fit_reranker(ds, split, priors, enc, config, tc)


@pytest.fixture(scope="module")
def cold_trained(world, tmp_path_factory):
    return _train(world, tmp_path_factory.mktemp("cold"), _config(cold_dropout=0.3), max_steps=2)


def _instances(world, rr, config):
    from instructrec.rerank.instances import build_instances

    ds, split, priors = world
    fit_part, _ = stacked_frame(split.train, config.holdout)
    stacked = [type(p)().fit(fit_part, ds.n_users, ds.n_items) for p in priors]
    return build_instances(rr, ds, split, stacked, config), stacked


# ---------------------------------------------------------------------- the pieces
def test_zero_interaction_items_and_cold_priors():
    import pandas as pd

    frame = pd.DataFrame({"item": [0, 0, 2, 4]})
    np.testing.assert_array_equal(
        zero_interaction_items(frame, 6), [False, True, False, True, False, True]
    )
    raw = np.array([[[3.0], [1.0], [-50.0], [2.0]]], np.float32)
    cold = np.array([[False, False, True, False]])
    z = cold_priors(raw, cold)
    assert z[0, 2, 0] == 0.0  # cold: neutral, whatever its raw score
    np.testing.assert_allclose(z[0, [0, 1, 3], 0], zscore(raw[:, [0, 1, 3]])[0, :, 0], atol=1e-6)
    # nothing cold: exactly the plain z-score
    np.testing.assert_allclose(cold_priors(raw, ~cold & False), zscore(raw), atol=1e-6)


def test_a_content_channel_keeps_the_cold_candidates_score():
    """titleknn's channel reads item texts, not interactions: coldness does not neutralise it,
    while the collaborative channels of the same cold candidate go to 0."""
    from instructrec.retrieval.titleknn import TitleKNN

    raw = np.array([[[3.0, 0.1], [1.0, 0.2], [-50.0, 0.9], [2.0, 0.3]]], np.float32)
    cold = np.array([[False, False, True, False]])
    z = list_priors(raw, cold, [False, True])
    assert z[0, 2, 0] == 0.0
    np.testing.assert_allclose(z[..., 1], zscore(raw[..., 1:])[..., 0], atol=1e-6)
    assert z[0, 2, 1] == z[0, :, 1].max()  # the cold candidate's text match still leads
    np.testing.assert_allclose(list_priors(raw, cold), cold_priors(raw, cold))
    assert content_channels(["sasrec", "titleknn", "pop", "no-such"]) == [0, 1, 0, 0]
    assert content_channels([Pop(), TitleKNN()]) == [False, True]


class _Fixed:
    """A retriever whose every row scores the items as ``row`` says (score_all / score)."""

    content_based = False

    def __init__(self, row):
        self.row = np.asarray(row, np.float32)

    def score_all(self, users, histories=None):
        return np.tile(self.row, (len(users), 1))

    def score(self, users, items, histories=None):
        return self.row[np.asarray(items)]


def test_catalogue_fill_is_an_average_warm_items_score_whatever_the_list():
    """cold_fill "catalogue": a cold candidate's collaborative value is the row's mean over
    the warm catalogue, z-scored with the list's warm candidates: low in a list of strong
    candidates, about 0 in a random one; its own raw score and the cold items' scores play
    no part; content channels are left as scored."""
    from instructrec.retrieval.titleknn import TitleKNN

    rng = np.random.default_rng(0)
    row = np.r_[rng.exponential(1.0, 200), np.full(5, 99.0)]  # skewed; 5 cold, scored absurdly
    warm = np.r_[np.ones(200, bool), np.zeros(5, bool)]
    ret = _Fixed(row)
    means = catalogue_means([ret, TitleKNN()], np.arange(3), None, warm)
    np.testing.assert_allclose(means[:, 0], row[:200].mean(), rtol=1e-6)
    assert (means[:, 1] == 0).all()  # content-based: no fill needed
    strong = np.r_[200, np.argsort(-row[:200])[:9]]  # a cold item among the 9 best warm ones
    random = np.r_[201, rng.choice(200, 9, replace=False)]
    cands = np.stack([strong, random])
    raw = np.stack([ret.score(None, cands), np.full(cands.shape, 0.5, np.float32)], -1)
    raw[:, 0, 1] = 0.9  # the cold candidate's text score
    cold = ~warm[cands]
    filled = fill_cold(raw, cold, [ret, TitleKNN()], np.arange(2), None, warm)
    assert (filled[:, 0, 0] == np.float32(row[:200].mean())).all()
    np.testing.assert_array_equal(filled[:, 1:], raw[:, 1:])  # warm candidates untouched
    np.testing.assert_array_equal(filled[..., 1], raw[..., 1])  # the content channel too
    z = list_priors(filled, cold, [False, True], filled=True)
    for r in range(2):
        w = raw[r, 1:, 0]
        want = np.clip((row[:200].mean() - w.mean()) / w.std(), -FILL_CLIP, FILL_CLIP)
        assert z[r, 0, 0] == pytest.approx(want, rel=1e-4)
    assert z[0, 0, 0] < -1.0 and abs(z[1, 0, 0]) < 1.0  # low among the strong; about average
    assert z[0, 0, 1] == z[0, :, 1].max()  # its text score still leads its channel
    np.testing.assert_allclose(z[:, 1:, 0], list_priors(raw, cold, [False, True])[:, 1:, 0])
    np.testing.assert_allclose(  # "list" (not filled): 0 whatever was filled in
        list_priors(filled, cold, [False, True])[:, 0, 0], 0.0
    )
    # bounded when the warm candidates barely differ
    flat = np.array([[[1.0], [1.0], [1.0 + 1e-9], [50.0]]], np.float32)
    zc = cold_priors(flat, np.array([[False, False, False, True]]), keep_cold=True)
    assert zc[0, 3, 0] == FILL_CLIP
    # nothing cold: unchanged, no catalogue scored
    np.testing.assert_array_equal(fill_cold(raw, np.zeros_like(cold), [None, None], [0, 1],
                                            None, warm), raw)  # fmt: skip


def test_cold_fill_is_checked():
    with pytest.raises(DataError, match="cold_fill"):
        RerankerConfig(cold_fill="median")
    assert RerankerConfig().cold_fill == "list"


def test_dropout_hits_targets_and_negatives_at_the_same_rate():
    rng = np.random.default_rng(0)
    n, k, p = 20000, 10, 0.2
    label = rng.integers(k, size=n)
    natural = rng.random((n, k)) < 0.05  # some negatives are cold already ...
    natural[np.arange(n), label] = False  # ... targets never (they have interactions)
    cold = cold_dropout_mask(natural, label, p, np.random.default_rng(1))
    assert cold[natural].all()  # the naturally cold stay cold
    is_t = np.zeros((n, k), bool)
    is_t[np.arange(n), label] = True
    rt, rn = cold[is_t].mean(), cold[~is_t].mean()
    se = np.sqrt(p * (1 - p) / n)  # the targets' binomial s.e. (the negatives' is smaller)
    assert abs(rt - p) < 4 * se and abs(rn - p) < 4 * se
    assert abs(rt - rn) < 4 * se
    assert not cold_dropout_mask(np.zeros((5, 3), bool), np.zeros(5, int), 0.0, rng).any()
    with pytest.raises(ValueError, match="cold_dropout"):
        cold_dropout_mask(natural, label, 1.5, rng)


# ---------------------------------------------------------------------- the reranker
def test_indicator_is_set_exactly_for_zero_interaction_items(world, cold_trained):
    ds, split, priors = world
    rr = cold_trained
    expected = np.bincount(split.train["item"], minlength=ds.n_items) == 0
    np.testing.assert_array_equal(rr.cold_items, expected)
    assert expected.sum() >= len(split.cold_items) > 0
    assert rr.scorer.model.config.cold_channel and rr.scorer.model.config.n_prior == 4
    cands = np.tile(np.arange(ds.n_items), (3, 1))
    users = np.arange(3)
    raw = score_priors(priors, users, cands, [np.empty(0, np.int64)] * 3)
    z = rr.prior_features(cands, ["a comedy"] * 3, raw)
    np.testing.assert_array_equal(z[:, :, -1], np.tile(expected, (3, 1)).astype(np.float32))
    assert (z[:, expected, :2] == 0).all()  # cold: neutral retriever channels


def test_save_load_keeps_the_cold_channel(world, cold_trained, tmp_path):
    ds, split, priors = world
    u = split.valid["user"].to_numpy()[:8]
    c = split.candidates["cand10"]["valid"][:8]
    seqs = split.sequences("valid")
    h = [seqs[int(x)] for x in u]
    p = np.stack([r.score(u, c, histories=h) for r in priors], -1)
    before = cold_trained.score_candidates(u, c, h, prior=p)
    back = InstructionReranker.load(cold_trained.save(tmp_path / "rr"))
    back.dataset = ds
    np.testing.assert_array_equal(back.cold_items, cold_trained.cold_items)
    np.testing.assert_allclose(back.score_candidates(u, c, h, prior=p), before, atol=1e-5)


def test_dropout_zero_builds_todays_instances(world, cold_trained):
    """Rate 0: no cold channel, plain z-scored priors (no extra draws); rate > 0 keeps the
    same candidates, labels and texts, and hits targets and negatives alike."""
    ds, split, priors = world
    rr = cold_trained
    base, stacked = _instances(world, rr, _config())
    again, _ = _instances(world, rr, _config(cold_dropout=0.0))
    for a in ("cands", "label", "hist", "prior"):
        np.testing.assert_array_equal(getattr(base, a), getattr(again, a))
    assert base.texts == again.texts and base.prior.shape[-1] == 3
    users, hists = _rows_of(split, ds, _config())
    raw = score_priors(stacked, users, base.cands, hists)
    np.testing.assert_allclose(base.prior[..., :2], zscore(raw), atol=1e-6)

    cold, _ = _instances(world, rr, _config(cold_dropout=0.5))
    np.testing.assert_array_equal(cold.cands, base.cands)
    np.testing.assert_array_equal(cold.label, base.label)
    assert cold.texts == base.texts and cold.prior.shape[-1] == 4
    flag = cold.prior[..., -1] > 0.5
    n = len(flag)
    is_t = np.zeros(flag.shape, bool)
    is_t[np.arange(n), cold.label] = True
    assert abs(flag[is_t].mean() - 0.5) < 0.1 and abs(flag[~is_t].mean() - 0.5) < 0.05
    assert (cold.prior[..., :2][flag] == 0).all()


@pytest.fixture(scope="module")
def fill_trained(world, tmp_path_factory):
    cfg = _config(cold_dropout=0.3, cold_fill="catalogue")
    return _train(world, tmp_path_factory.mktemp("fill"), cfg, max_steps=2)


def test_catalogue_fill_in_training_instances_validation_and_serving(world, fill_trained, tmp_path):
    """cold_fill "catalogue" reaches every place priors are read: training instances (the
    dropped and the naturally cold candidates get the stacked priors' warm-catalogue mean),
    the validation rows, `Recommender.prior_scores` (serving, evaluation), and it survives
    save/load; warm candidates are scored as with "list"."""
    from instructrec.recommender import Recommender
    from instructrec.rerank.instances import Validation

    ds, split, priors = world
    rr = fill_trained
    assert rr.config.cold_fill == "catalogue"
    lst, _ = _instances(world, rr, _config(cold_dropout=0.3))
    cat, stacked = _instances(world, rr, _config(cold_dropout=0.3, cold_fill="catalogue"))
    for a in ("cands", "label", "hist"):
        np.testing.assert_array_equal(getattr(cat, a), getattr(lst, a))
    flag = cat.prior[..., -1] > 0.5
    np.testing.assert_array_equal(flag, lst.prior[..., -1] > 0.5)
    assert flag.any() and (lst.prior[..., :2][flag] == 0).all()
    np.testing.assert_allclose(cat.prior[~flag], lst.prior[~flag], atol=1e-6)
    assert (cat.prior[..., :2][flag] != 0).any()
    users, hists = _rows_of(split, ds, _config())
    fit_part, _ = stacked_frame(split.train, 2)
    warm = ~zero_interaction_items(fit_part, ds.n_items)
    r, c = map(int, np.argwhere(flag)[0])
    raw = score_priors(stacked, users[r : r + 1], cat.cands[r : r + 1], [hists[r]])[0, :, 0]
    mean = stacked[0].score_all(users[r : r + 1], [hists[r]])[0][warm].mean()
    w = raw[~flag[r]]
    assert cat.prior[r, c, 0] == pytest.approx((mean - w.mean()) / w.std(), rel=1e-3, abs=1e-4)

    cfg = _config(cold_dropout=0.3, cold_fill="catalogue")
    v_cat = Validation(rr, ds, split, priors, cfg)
    v_lst = Validation(rr, ds, split, priors, _config(cold_dropout=0.3))
    vcold = rr.cold_items[v_cat.cands]
    assert vcold.any()
    np.testing.assert_allclose(v_cat.prior[~vcold], v_lst.prior[~vcold], atol=1e-6)
    assert (v_lst.prior[..., :2][vcold] == 0).all() and (v_cat.prior[..., :2][vcold] != 0).any()

    rec = Recommender(ds, priors[0], reranker=rr, priors=priors)
    u = split.valid["user"].to_numpy()[:6]
    seqs = split.sequences("valid")
    h = [seqs[int(x)] for x in u]
    cands = np.stack([np.r_[np.flatnonzero(rr.cold_items)[:1], np.arange(9)] for _ in u])
    cands[:, 1:] = np.stack([np.flatnonzero(~rr.cold_items)[:9]] * len(u))
    got = rec.prior_scores(u, cands, h)
    for p, ret in enumerate(priors):
        allsc = ret.score_all(u, h)[:, ~rr.cold_items].mean(1)
        np.testing.assert_allclose(got[:, 0, p], allsc, rtol=1e-5)
        np.testing.assert_allclose(
            got[:, 1:, p], ret.score(u, cands[:, 1:], histories=h), rtol=1e-5, atol=1e-6
        )
    # one score_all per prior, gathered: what scoring, then fill_cold, gives (mixed rows)
    mixed = cands.copy()
    mixed[::2, 0] = np.flatnonzero(~rr.cold_items)[20]  # half the rows without a cold item
    slow = fill_cold(
        score_priors(priors, u, mixed, h), rr.cold_items[mixed], priors, u, h, ~rr.cold_items
    )
    np.testing.assert_allclose(rec.prior_scores(u, mixed, h), slow, rtol=1e-5, atol=1e-5)
    raw_none = np.stack([r.score(u, mixed) for r in priors], -1)
    slow_none = fill_cold(raw_none, rr.cold_items[mixed], priors, u, None, ~rr.cold_items)
    np.testing.assert_allclose(rec.prior_scores(u, mixed, None), slow_none, rtol=1e-5, atol=1e-5)
    assert rec.score_candidates(u, cands, h).shape == cands.shape
    back = InstructionReranker.load(rr.save(tmp_path / "rr"))
    assert back.config.cold_fill == "catalogue"
    import json

    meta = json.loads((tmp_path / "rr" / "reranker.json").read_text())
    del meta["config"]["cold_fill"]  # saved before the setting existed: it was "list"
    (tmp_path / "rr" / "reranker.json").write_text(json.dumps(meta))
    assert InstructionReranker.load(tmp_path / "rr").config.cold_fill == "list"


def _rows_of(split, ds, cfg):
    """(users, histories) of the training instances, in `build_instances`' order."""
    from instructrec.rerank.instances import user_sequences

    seqs, *_ = user_sequences(split.train, ds.n_users)
    users, hists = [], []
    for u, s in enumerate(seqs):
        if len(s) < cfg.holdout + 2:
            continue
        for t in range(len(s) - cfg.holdout, len(s)):
            users.extend([u] * cfg.copies)
            hists.extend([s[:t]] * cfg.copies)
    return np.asarray(users, np.int64), hists


def test_a_cold_candidate_is_scored_by_its_text_not_its_collaborative_inputs(world, cold_trained):
    """Trained with dropout: whatever the retrievers say about a cold item changes no score
    in its list (its channels are neutral, the others are z-scored without it), while what
    the request says about it does."""
    from instructrec.instructions.derive import derive_intentions

    ds, split, priors = world
    rr = cold_trained
    cold_ids = np.flatnonzero(rr.cold_items)
    warm = np.flatnonzero(~rr.cold_items)
    rng = np.random.default_rng(0)
    n = 12
    u = split.valid["user"].to_numpy()[:n]
    seqs = split.sequences("valid")
    h = [seqs[int(x)] for x in u]
    c = np.stack([np.r_[rng.choice(cold_ids), rng.choice(warm, 9, replace=False)] for _ in u])
    p = score_priors(priors, u, c, h)
    intents, _ = derive_intentions(ds, c[:, 0], kind="I2", seed=0)
    s = rr.score_candidates(u, c, h, intentions=intents, prior=p)
    p2 = p.copy()
    p2[:, 0] = rng.normal(scale=100.0, size=p2[:, 0].shape)  # any collaborative score
    np.testing.assert_allclose(rr.score_candidates(u, c, h, intentions=intents, prior=p2), s)
    other, _ = derive_intentions(ds, c[:, 1], kind="I2", seed=0)  # a warm item's intention
    s_other = rr.score_candidates(u, c, h, intentions=other, prior=p)
    assert not np.allclose(s_other[:, 0], s[:, 0])
    assert (s[:, 0] - s[:, 1:].mean(1)).mean() > (s_other[:, 0] - s_other[:, 1:].mean(1)).mean()


def test_intent_dropout_zeroes_the_match_channel_of_a_share_of_instances(world, cold_trained):
    """`intent_dropout` (issue 15): whole instances lose the intent-match channel, as a request
    the parser cannot read has it; every other array, and the instances kept, stay as at 0."""
    rr = cold_trained
    base, _ = _instances(world, rr, _config())
    drop, _ = _instances(world, rr, _config(intent_dropout=0.5))
    for a in ("cands", "label", "hist"):
        np.testing.assert_array_equal(getattr(base, a), getattr(drop, a))
    assert drop.texts == base.texts and drop.prior.shape == base.prior.shape
    np.testing.assert_array_equal(drop.prior[..., :-1], base.prior[..., :-1])
    matched = (base.prior[..., -1] != 0).any(1)  # rows whose intention matched something
    assert matched.sum() > 20
    zeroed = (drop.prior[..., -1] == 0).all(1)
    kept = ~zeroed & matched
    np.testing.assert_array_equal(drop.prior[kept], base.prior[kept])
    assert 0.3 < zeroed[matched].mean() < 0.7
    assert RerankerConfig().intent_dropout == 0.5  # the shipped default (docs/reranker.md)
    with pytest.raises(DataError, match="intent_dropout"):
        RerankerConfig(intent_dropout=1.5)


# ---------------------------------------------------------------------- cold_content
def test_cold_content_weight_moves_only_cold_candidates():
    """``cold_content``: the content channels get a second weight on cold candidates (the
    last channel); warm candidates score as without it; starts at 0; set from a fit of
    P + len(cold_content) weights."""
    import torch

    from instructrec.models.heads import LinearHead

    torch.manual_seed(0)
    head = LinearHead(8, 4, cold_content=[2])
    assert head.cold_w.shape == (1,) and float(head.cold_w.detach()[0]) == 0.0
    q, cands, hist = torch.randn(3, 8), torch.randn(3, 5, 8), torch.randn(3, 4, 8)
    mask = torch.ones(3, 4, dtype=torch.bool)
    prior = torch.randn(3, 5, 4)
    prior[..., -1] = (torch.rand(3, 5) < 0.4).float()
    cold = prior[..., -1] > 0.5
    assert cold.any() and (~cold).any()
    base = head(q, cands, hist, mask, prior)
    head.init_prior_weights(torch.tensor([1.0, 1.0, 1.0, 1.0, 2.5]))
    assert float(head.cold_w.detach()[0]) == 2.5 and torch.equal(head.prior_w.data, torch.ones(4))
    moved = head(q, cands, hist, mask, prior)
    torch.testing.assert_close(moved[~cold], base[~cold])
    torch.testing.assert_close(moved[cold], base[cold] + 2.5 * prior[..., 2][cold])
    with pytest.raises(ValueError, match="cold_content"):
        LinearHead(8, 4, cold_content=[3])  # the cold channel itself


def test_cold_content_is_checked_where_it_is_set():
    from instructrec.config import RetrieverSpec, RunConfig

    with pytest.raises(DataError, match="cold_dropout"):
        RerankerConfig(cold_content=True)
    on = RerankerConfig(cold_dropout=0.1, cold_content=True)
    with pytest.raises(DataError, match="content-based prior"):
        RunConfig(priors=[RetrieverSpec("sasrec"), RetrieverSpec("pop")], reranker=on)
    with pytest.raises(DataError, match="linear head"):
        RunConfig(backbone=EncoderConfig(head="rr"), reranker=on)
    assert RunConfig(reranker=on).reranker.cold_content  # the shipped priors have titleknn
    with pytest.raises(DataError, match="reranker.cold_content"):
        RunConfig(backbone=EncoderConfig(head_options={"cold_content": [0]}))


@pytest.fixture(scope="module")
def content_trained(world, tmp_path_factory):
    """Trained with a titleknn prior (MiniLM vectors of the synthetic titles) and
    ``cold_content``."""
    from instructrec.models.text_encoder import item_text_vectors
    from instructrec.rerank.rerank_features import item_texts
    from instructrec.retrieval.titleknn import TitleKNN

    ds, split, priors = world
    tk = TitleKNN()
    tk.item_texts, tk.text_encoder = item_texts(ds), item_text_vectors
    tk.fit(split.train, ds.n_users, ds.n_items)
    cfg = _config(cold_dropout=0.3, cold_fill="catalogue", cold_content=True)
    out = tmp_path_factory.mktemp("content")
    return _train((ds, split, [*priors, tk]), out, cfg, max_steps=2), [*priors, tk]


def test_cold_content_is_trained_saved_and_scored_the_same(world, content_trained, tmp_path):
    """The titleknn channel (index 2) gets the cold weight, warm-started from the
    priors-only fit; a save/load and the NumPy runtime give the same scores; dropping the
    weight changes cold candidates only."""
    from instructrec.models.np_encoder import NumpyEncoderScorer
    from instructrec.recommender import Recommender

    ds, split, _ = world
    rr, priors = content_trained
    model = rr.scorer.model
    assert model.config.head_options == {"cold_content": [2]}
    assert len(rr.prior_mixture) == model.config.n_prior + 1
    assert float(model.head.cold_w.detach()[0]) != 0.0
    rec = Recommender(ds, priors[0], reranker=rr, priors=priors)
    u = split.valid["user"].to_numpy()[:8]
    seqs = split.sequences("valid")
    h = [seqs[int(x)] for x in u]
    cold_ids, warm_ids = np.flatnonzero(rr.cold_items), np.flatnonzero(~rr.cold_items)
    cands = np.stack([np.r_[cold_ids[:2], warm_ids[i : i + 8]] for i in range(len(u))])
    s = rec.score_candidates(u, cands, h)
    back = InstructionReranker.load(rr.save(tmp_path / "rr"))
    assert back.config.cold_content and back.scorer.model.config.head_options["cold_content"]
    back.dataset = ds
    rec2 = Recommender(ds, priors[0], reranker=back, priors=priors)
    np.testing.assert_allclose(rec2.score_candidates(u, cands, h), s, rtol=1e-5, atol=1e-5)
    back.scorer = NumpyEncoderScorer.load(tmp_path / "rr" / "encoder")
    np.testing.assert_allclose(rec2.score_candidates(u, cands, h), s, rtol=1e-4, atol=1e-4)
    import torch

    with torch.no_grad():
        model.head.cold_w.zero_()
    off = rec.score_candidates(u, cands, h)
    np.testing.assert_allclose(off[:, 2:], s[:, 2:], rtol=1e-5, atol=1e-5)
    assert np.abs(off[:, :2] - s[:, :2]).max() > 1e-4
