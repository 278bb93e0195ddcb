"""The rivals of the evaluation tables: score-mix, the learned filter, the rating models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.data.split import Split
from instructrec.evaluation.learned_filter import LearnedFilter
from instructrec.evaluation.rating_models import BiasModel, RatingMF
from instructrec.evaluation.rivals import ScoreMix
from instructrec.instructions import item_attributes
from instructrec.retrieval.base import Retriever
from instructrec.testing.datasets import synthetic_dataset


class TableRetriever(Retriever):
    """Scores read from a fixed (n_users, n_items) table (a stand-in for a fitted prior)."""

    def __init__(self, table: np.ndarray, name: str) -> None:
        self.table, self.name, self.n_items = table.astype(np.float32), name, table.shape[1]

    def fit(self, train, n_users, n_items):
        return self

    def score_all(self, users, histories=None):
        return self.table[np.asarray(users, np.int64)]


@pytest.fixture(scope="module")
def mix_setup():
    """Rows whose target is, among 10 candidates, the one the ``signal`` prior scores highest;
    ``noise`` is an unrelated prior."""
    ds = synthetic_dataset(n_users=240, n_items=60, per_user=12, seed=1)
    split = make_split(ds, seed=0)
    rng = np.random.default_rng(0)
    signal = TableRetriever(rng.random((ds.n_users, ds.n_items)), "signal")
    noise = TableRetriever(rng.random((ds.n_users, ds.n_items)), "noise")
    users = np.arange(ds.n_users)
    cands = np.stack([rng.choice(ds.n_items, 10, replace=False) for _ in users])
    best = np.argmax(signal.table[users[:, None], cands], axis=1)
    cands[users, 0], cands[users, best] = cands[users, best], cands[users, 0].copy()
    hists = [rng.choice(ds.n_items, 5, replace=False) for _ in users]
    priors = {"signal": signal, "noise": noise}
    return ds, split, priors, users, cands, hists


def _hr1(scores: np.ndarray) -> float:
    return float(((scores[:, 1:] >= scores[:, :1]).sum(1) == 0).mean())


# ---------------------------------------------------------------------- ScoreMix
def test_score_mix_learns_the_informative_prior_and_ignores_noise(mix_setup):
    ds, split, priors, users, cands, hists = mix_setup
    mix = ScoreMix(ds, split.train, priors, kind="linear").fit(
        users[:180], cands[:180], hists[:180]
    )
    held = mix.score_candidates(users[180:], cands[180:], hists[180:])
    assert held.shape == (60, 10)
    assert _hr1(held) >= 0.95  # the other features (popularity...) are chance-correlated
    w = mix.describe()["weights"]
    assert w["prior:signal"] > 0
    assert abs(w["prior:noise"]) < 0.1 * w["prior:signal"]
    # a shuffled candidate order gives the same scores per item
    perm = np.random.default_rng(1).permutation(10)
    again = mix.score_candidates(users[180:], cands[180:, perm], hists[180:])
    np.testing.assert_allclose(again, held[:, perm])


def test_score_mix_auto_records_both_kinds_and_gbdt_learns(mix_setup):
    ds, split, priors, users, cands, hists = mix_setup
    mix = ScoreMix(ds, split.train, priors, kind="auto", folds=3).fit(users, cands, hists)
    d = mix.describe()
    assert set(d["cv"]) == {"linear", "gbdt"} and d["kind"] in ("linear", "gbdt")
    best = max(d["cv"].values(), key=lambda m: m["ndcg"])["ndcg"]
    assert d["cv"][d["kind"]]["ndcg"] == best
    tree = ScoreMix(ds, split.train, priors, kind="gbdt").fit(users[:180], cands[:180], hists[:180])
    assert _hr1(tree.score_candidates(users[180:], cands[180:], hists[180:])) > 0.8
    imp = tree.describe()["importances"]
    assert imp["prior:signal"] > imp["prior:noise"]


def test_score_mix_reads_the_parsed_intention(mix_setup):
    """Target = the only candidate with the genre the intention text names; priors are noise."""
    ds, split, priors, users, cands, hists = mix_setup
    a = item_attributes(ds)
    g = a.genre_names.index("Horror")
    horror = np.flatnonzero(a.genre_matrix[:, g])
    other = np.flatnonzero(~a.genre_matrix[:, g])
    rng = np.random.default_rng(2)
    c = np.stack([np.r_[rng.choice(horror), rng.choice(other, 9, replace=False)] for _ in users])
    texts = ["a horror movie"] * len(users)
    noise = {"noise": priors["noise"]}
    mix = ScoreMix(ds, split.train, noise, kind="linear").fit(users, c, hists, intentions=texts)
    w = mix.describe()["weights"]
    assert w["intent_match"] > 1.0 and w["intent_match"] > 10 * abs(w["prior:noise"])
    assert _hr1(mix.score_candidates(users, c, hists, intentions=texts)) == 1.0
    # without an intention the channel is silent: no longer solved
    assert _hr1(mix.score_candidates(users, c, hists)) < 0.5


def test_cross_fit_never_scores_a_row_with_a_model_fitted_on_it(mix_setup):
    ds, split, priors, users, cands, hists = mix_setup
    n = 120
    mix = ScoreMix(ds, split.train, priors, kind="linear")
    oof = mix.cross_fit_scores(users[:n], cands[:n], hists[:n], folds=4)
    fold = mix.cross_folds_
    assert oof.shape == (n, 10) and sorted(np.unique(fold)) == [0, 1, 2, 3]
    assert mix.model_ is None  # cross-fitting leaves the model unfitted
    for f in range(4):
        out, inside = fold == f, np.flatnonzero(fold != f)
        other = ScoreMix(ds, split.train, priors, kind="linear").fit(
            users[inside], cands[inside], [hists[i] for i in inside]
        )
        rows = np.flatnonzero(out)
        expect = other.score_candidates(users[rows], cands[rows], [hists[i] for i in rows])
        np.testing.assert_allclose(oof[rows], expect, rtol=1e-6, atol=1e-8)


def test_cross_fitted_scores_the_same_rows_once(mix_setup, monkeypatch):
    from instructrec.evaluation.rival_models import CrossFitted

    ds, split, priors, users, cands, hists = mix_setup
    n = 80
    mix = ScoreMix(ds, split.train, priors, kind="linear")
    calls = []
    real = mix.cross_fit_scores
    monkeypatch.setattr(mix, "cross_fit_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    cf = CrossFitted(mix, folds=4)
    first = cf.score_candidates(users[:n], cands[:n], hists[:n], templates="seen")
    first[:] = -1.0  # the caller owns what it gets back
    again = cf.score_candidates(users[:n], cands[:n], hists[:n], templates="held_out")
    assert len(calls) == 1 and not (again == -1.0).all()
    np.testing.assert_array_equal(again, real(users[:n], cands[:n], hists[:n], folds=4))
    other = cands[:n].copy()
    other[0, [0, 1]] = other[0, [1, 0]]  # different rows: scored anew
    cf.score_candidates(users[:n], other, hists[:n])
    assert len(calls) == 2


def test_score_mix_rejects_bad_input(mix_setup):
    ds, split, priors, users, cands, hists = mix_setup
    with pytest.raises(DataError, match="kind"):
        ScoreMix(ds, split.train, priors, kind="forest")
    mix = ScoreMix(ds, split.train, priors, kind="linear")
    with pytest.raises(ValueError, match="not fitted"):
        mix.score_candidates(users[:3], cands[:3], hists[:3])
    with pytest.raises(DataError, match="candidates must be"):
        mix.fit(users, cands[:, 0], hists)
    with pytest.raises(DataError, match="histories"):
        mix.fit(users, cands, hists[:-1])
    with pytest.raises(DataError, match="intentions"):
        mix.fit(users, cands, hists, intentions=["x"])
    bad = cands.copy()
    bad[0, 1] = ds.n_items
    with pytest.raises(DataError, match="candidate ids"):
        mix.fit(users, bad, hists)
    with pytest.raises(DataError, match="at least 2 candidates"):
        mix.fit(users, cands[:, :1], hists)


# ---------------------------------------------------------------------- LearnedFilter
@pytest.fixture(scope="module")
def filter_setup():
    ds = synthetic_dataset(n_users=60, n_items=80, seed=3)
    a = item_attributes(ds)
    genre = {g: a.genre_matrix[:, a.genre_names.index(g)] for g in ("Comedy", "Horror")}
    texts, items = [], []
    for j in range(ds.n_items):
        if genre["Comedy"][j]:
            texts.append("something funny please")
            items.append(j)
        if genre["Horror"][j]:
            texts.append("something scary tonight")
            items.append(j)
        texts.append("something good")
        items.append(j)
    rng = np.random.default_rng(0)
    base = TableRetriever(rng.random((ds.n_users, ds.n_items)), "base")
    filt = LearnedFilter(base).fit(ds, texts, np.array(items))
    users = np.arange(20)
    cands = np.stack([rng.choice(ds.n_items, 10, replace=False) for _ in users])
    hists = [np.empty(0, np.int64)] * len(users)
    return ds, filt, base, genre, users, cands, hists


def test_filter_learns_phrases_and_keeps_retriever_order_within_ties(filter_setup):
    ds, filt, base, genre, users, cands, hists = filter_setup
    want, avoid = filt.predict("something funny")
    assert "genre:Comedy" in want and "genre:Horror" not in want and not avoid
    s = filt.score_candidates(users, cands, hists, intentions=["something funny"] * len(users))
    b = base.score(users, cands)
    comedy = genre["Comedy"][cands]
    for r in range(len(users)):
        if comedy[r].any() and (~comedy[r]).any():
            assert s[r, comedy[r]].min() > s[r, ~comedy[r]].max()
        for group in (comedy[r], ~comedy[r]):
            assert (np.argsort(s[r, group]) == np.argsort(b[r, group])).all()


def test_filter_falls_back_to_retriever_order_on_unseen_words(filter_setup):
    ds, filt, base, genre, users, cands, hists = filter_setup
    assert filt.predict("something hilarious") == ({}, {})
    s = filt.score_candidates(users, cands, hists, intentions=["something hilarious"] * 20)
    assert (np.argsort(s, axis=1) == np.argsort(base.score(users, cands), axis=1)).all()


def test_filter_negation_sinks_excluded_candidates(filter_setup):
    ds, filt, base, genre, users, cands, hists = filter_setup
    want, avoid = filt.predict("anything, just nothing scary")
    assert "genre:Horror" in avoid and "genre:Horror" not in want
    s = filt.score_candidates(users, cands, hists, intentions=["nothing scary"] * 20)
    horror = genre["Horror"][cands]
    for r in range(len(users)):
        if horror[r].any() and (~horror[r]).any():
            assert s[r, horror[r]].max() < s[r, ~horror[r]].min()


def test_filter_never_reads_attrs(filter_setup):
    ds, filt, base, genre, users, cands, hists = filter_setup

    class Untouchable(list):
        def __getitem__(self, i):
            raise AssertionError("attrs read")

        def __iter__(self):
            raise AssertionError("attrs read")

        def __len__(self):
            raise AssertionError("attrs read")

    texts = ["something funny"] * 20
    a = filt.score_candidates(users, cands, hists, intentions=texts)
    b = filt.score_candidates(users, cands, hists, intentions=texts, attrs=Untouchable())
    np.testing.assert_array_equal(a, b)


def test_filter_from_training_learns_the_generators_words():
    ds = synthetic_dataset(n_users=80, n_items=50, seed=4)
    split = make_split(ds, seed=0)
    base = TableRetriever(np.zeros((ds.n_users, ds.n_items)), "zero")
    filt = LearnedFilter.from_training(base, ds, split, kinds=("I2",), per_user=6)
    want, _ = filt.predict("a comedy movie")
    assert max(want, key=want.get) == "genre:Comedy"
    with pytest.raises(DataError, match="pair up"):
        LearnedFilter(base).fit(ds, ["a"], np.array([1, 2]))


# ---------------------------------------------------------------------- rating models
def _ratings_split(rank: int, seed: int = 0, n_users: int = 150, n_items: int = 90):
    """Planted ratings: 3.5 + b_u + b_i (+ a rank-``rank`` interaction) + noise; each user
    rates 40 items; rows go 80/10/10 to train/valid/test at random."""
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    p, q = rng.normal(0, 1, (n_users, max(rank, 1))), rng.normal(0, 1, (n_items, max(rank, 1)))
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, 40, replace=False):
            inter = p[u] @ q[i] if rank else 0.0
            rows.append((u, i, 3.5 + bu[u] + bi[i] + inter + rng.normal(0, 0.3)))
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
    part = rng.random(len(frame))
    split = Split(
        train=frame[part < 0.8].reset_index(drop=True),
        valid=frame[(part >= 0.8) & (part < 0.9)].reset_index(drop=True),
        test=frame[part >= 0.9].reset_index(drop=True),
        n_items=n_items,
    )
    return split, bu, bi


def _rmse(model, frame) -> float:
    pred = model.score_pointwise(frame["user"].to_numpy(), frame["item"].to_numpy(), None)
    return float(np.sqrt(np.mean((pred - frame["rating"].to_numpy()) ** 2)))


def test_bias_model_recovers_planted_biases():
    split, bu, bi = _ratings_split(rank=0)
    m = BiasModel().fit(split, 150, 90)
    assert np.corrcoef(m.bi, bi)[0, 1] > 0.95 and np.corrcoef(m.bu, bu)[0, 1] > 0.95
    assert m.reg in m.regs and len(m.valid_rmse) == len(m.regs)
    users = split.test["user"].to_numpy()
    cands = np.tile(np.argsort(-bi)[:5], (len(users), 1))
    s = m.score_candidates(users, cands, None)
    assert s.shape == cands.shape
    np.testing.assert_allclose(s[:, 0], m.score_pointwise(users, cands[:, 0]))


def test_rating_mf_beats_bias_on_a_low_rank_interaction_and_is_deterministic():
    split, _, _ = _ratings_split(rank=2, seed=1)
    bias = BiasModel().fit(split, 150, 90)
    mf = RatingMF(factors=(2, 8), regs=(0.02, 0.1), sweeps=10, seed=0).fit(split, 150, 90)
    assert _rmse(mf, split.test) < 0.8 * _rmse(bias, split.test)
    again = RatingMF(factors=(2, 8), regs=(0.02, 0.1), sweeps=10, seed=0).fit(split, 150, 90)
    np.testing.assert_array_equal(
        mf.predict(np.arange(150)[:, None], np.arange(90)),
        again.predict(np.arange(150)[:, None], np.arange(90)),
    )
    assert mf.chosen["valid_rmse"] == min(g["valid_rmse"] for g in mf.grid)
    # unknown users get the item's biased prediction, not an error
    assert np.isfinite(mf.score_pointwise(np.array([-1, 999]), np.array([0, 1]))).all()


def test_rating_models_need_ratings():
    split, _, _ = _ratings_split(rank=0)
    split.train = split.train.assign(rating=np.nan)
    for model in (BiasModel(), RatingMF()):
        with pytest.raises(DataError, match="no ratings"):
            model.fit(split, 150, 90)


def test_score_mix_cf_similarity_reads_item_embeddings(mix_setup):
    ds, split, priors, users, cands, hists = mix_setup
    emb = np.random.default_rng(5).normal(size=(ds.n_items, 4))

    class Embedded(TableRetriever):
        def item_embeddings(self):
            return emb

    prior = Embedded(priors["noise"].table, "emb")
    mix = ScoreMix(ds, split.train, {"emb": prior}, kind="linear")
    assert "cf_sim:emb" in mix.feature_names
    x = mix.features(users[:3], cands[:3], hists[:3])
    col = mix.feature_names.index("cf_sim:emb")
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    h = unit[hists[0]].mean(0)
    expect = unit[cands[0]] @ (h / np.linalg.norm(h))
    np.testing.assert_allclose(x[0, :, col], expect, rtol=1e-6)


def test_score_mix_cold_feature_and_dropout_fitting(mix_setup):
    """cold_dropout > 0 (as the reranker, `rerank.cold`): a 'cold' feature set exactly for
    items with no training interactions, their collaborative features neutral (0), and a
    model fitted on rows where targets and negatives are made cold at the same rate."""
    ds, split, priors, users, cands, hists = mix_setup
    plain = ScoreMix(ds, split.train, priors, kind="linear")
    mix = ScoreMix(ds, split.train, priors, kind="linear", cold_dropout=0.3)
    assert "cold" not in plain.feature_names and mix.feature_names[-1] == "cold"
    assert mix.feature_names[:-1] == plain.feature_names
    cold_items = np.bincount(split.train["item"], minlength=ds.n_items) == 0
    assert cold_items.sum() >= len(split.cold_items) > 0
    x = mix.features(users, cands, hists)
    is_cold = cold_items[cands]
    assert is_cold.any()
    np.testing.assert_array_equal(x[..., -1], is_cold.astype(float))
    collab = [
        j
        for j, f in enumerate(mix.feature_names)
        if f.split(":")[0] in ("prior", "cf_sim", "log_pop", "item_rating")
    ]
    assert (x[..., collab][is_cold] == 0).all()
    warm_rows = ~is_cold.any(1)  # lists without a cold item: the same features as before
    np.testing.assert_allclose(
        x[warm_rows][..., :-1], plain.features(users, cands, hists)[warm_rows], atol=1e-5
    )
    xf = mix._fit_x(users, cands, hists, None, None, x)
    flag = xf[..., -1] > 0.5
    assert flag[is_cold].all()
    assert abs(flag[:, 0].mean() - 0.3) < 0.1 and abs(flag[:, 1:].mean() - 0.3) < 0.06
    mix.fit(users[:180], cands[:180], hists[:180])
    assert mix.describe()["cold_dropout"] == 0.3 and "cold" in mix.describe()["weights"]
    with pytest.raises(DataError, match="cold_dropout"):
        ScoreMix(ds, split.train, priors, cold_dropout=2.0)


def test_score_mix_cold_fill_gives_a_cold_candidate_an_average_items_prior(mix_setup):
    """cold_fill "catalogue" (as the reranker's): a cold candidate's prior features are the
    row's mean score over the warm catalogue, z-scored with the warm candidates (not 0);
    every warm candidate's features are those of cold_fill "list"."""
    ds, split, priors, users, cands, hists = mix_setup
    lst = ScoreMix(ds, split.train, priors, kind="linear", cold_dropout=0.3)
    cat = ScoreMix(ds, split.train, priors, kind="linear", cold_dropout=0.3, cold_fill="catalogue")
    x_l, x_c = lst.features(users, cands, hists), cat.features(users, cands, hists)
    is_cold = cat.cold_items[cands]
    assert is_cold.any()
    np.testing.assert_allclose(x_c[~is_cold], x_l[~is_cold], atol=1e-6)
    r, c = map(int, np.argwhere(is_cold)[0])
    warm_cols = ~is_cold[r]
    for j, (name, p) in enumerate(cat.priors.items()):
        full = p.score_all(users[r : r + 1], [hists[r]])[0]
        mean = full[: ds.n_items][~cat.cold_items].mean()
        row = p.score(users[r : r + 1], cands[r : r + 1], histories=[hists[r]])[0][warm_cols]
        want = (mean - row.mean()) / max(row.std(), 1e-6)
        assert cat.feature_names[j] == f"prior:{name}"
        assert x_c[r, c, j] == pytest.approx(np.clip(want, -5, 5), rel=1e-4, abs=1e-5)
    assert cat.describe()["cold_fill"] == "catalogue"
    with pytest.raises(DataError, match="cold_fill"):
        ScoreMix(ds, split.train, priors, cold_fill="median")


def test_score_mix_cold_content_features(mix_setup):
    """With the reranker's ``cold_content``: one more feature per content-based prior, its
    feature times ``cold`` (0 on warm candidates, the content score on cold ones)."""
    ds, split, priors, users, cands, hists = mix_setup

    class TextTable(TableRetriever):
        content_based = True  # scores from item content: a cold item keeps its score

    text = TextTable(priors["signal"].table, "text")
    both = {"text": text, "noise": priors["noise"]}
    mix = ScoreMix(
        ds, split.train, both, kind="linear", cold_dropout=0.3, cold_fill="catalogue",
        cold_content=True,
    )  # fmt: skip
    assert mix.feature_names[-2:] == ["cold", "cold_x:text"]
    x = mix.features(users, cands, hists)
    is_cold = mix.cold_items[cands]
    assert is_cold.any() and (~is_cold).any()
    np.testing.assert_allclose(x[..., -1], x[..., 0] * is_cold)
    assert (x[..., -1][is_cold] != 0).any()
    assert mix.fit(users, cands, hists).describe()["cold_content"] is True
    assert "cold_x:text" in mix.describe()["weights"]
    with pytest.raises(DataError, match="cold_content"):
        ScoreMix(ds, split.train, both, cold_content=True)


# ---------------------------------------------------------------------- score-mix+lm
class _Oracle:
    """A stand-in reranker that knows the target (column 0) on rows asked in ``wording``
    ("held_out" by default: None, the fitting rows' wording, reads nothing) and records
    what it was asked."""

    def __init__(self, wording=None) -> None:
        self.wording, self.calls = wording, []

    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        self.calls.append(templates)
        out = np.zeros(np.shape(candidates))
        if templates == self.wording:
            out[:, 0] = 1.0
        return out


def test_score_mix_lm_adds_the_extra_scorer_as_a_feature(mix_setup):
    """Priors are noise; the extra scorer knows the target: score-mix+lm learns to trust it
    and solves the rows, score-mix alone cannot."""
    ds, split, priors, users, cands, hists = mix_setup
    noise = {"noise": priors["noise"]}
    oracle = _Oracle()
    plain = ScoreMix(ds, split.train, noise, kind="linear").fit(users, cands, hists)
    mix = ScoreMix(ds, split.train, noise, kind="linear", extra={"instructrec": oracle})
    mix.fit(users[:180], cands[:180], hists[:180])
    assert mix.name == "score-mix+lm" and plain.name == "score-mix"
    assert mix.feature_names[-1] == "lm:instructrec"
    assert mix.describe()["weights"]["lm:instructrec"] > 1.0
    assert _hr1(mix.score_candidates(users[180:], cands[180:], hists[180:])) == 1.0
    assert _hr1(plain.score_candidates(users[180:], cands[180:], hists[180:])) < 0.5
    # the wording reaches the extra scorer: an oracle blind to it is no help
    assert oracle.calls[-1] is None
    mix.score_candidates(users[180:], cands[180:], hists[180:], templates="held_out")
    assert oracle.calls[-1] == "held_out"
    assert _hr1(mix.score_candidates(users[180:], cands[180:], hists[180:], templates="x")) < 0.5


def test_cross_fitted_stack_scores_each_wording_anew(mix_setup):
    """score-mix alone reads no template (one cross-fit for every wording); with the
    reranker's score it does, so each wording is cross-fitted on its own scores."""
    from instructrec.evaluation.rival_models import CrossFitted

    ds, split, priors, users, cands, hists = mix_setup
    n = 80
    oracle = _Oracle(wording="held_out")
    mix = ScoreMix(ds, split.train, priors, kind="linear", extra={"instructrec": oracle})
    cf = CrossFitted(mix, folds=4)
    assert cf.name == "score-mix+lm"
    seen = cf.score_candidates(users[:n], cands[:n], hists[:n], templates=None)
    held = cf.score_candidates(users[:n], cands[:n], hists[:n], templates="held_out")
    assert _hr1(held) == 1.0 and _hr1(seen) < 1.0
    asked = len(oracle.calls)
    cf.score_candidates(users[:n], cands[:n], hists[:n], templates="held_out")
    assert len(oracle.calls) == asked  # the same rows and wording: memoised


def test_stacked_measurement_is_never_a_rival():
    from instructrec.evaluation.rival_models import applicable_rivals
    from instructrec.evaluation.study import expected_models

    names = ["score-mix", "score-mix+lm", "sasrec+filter", "bias"]
    assert applicable_rivals("vague", names) == ["score-mix", "score-mix+lm", "sasrec+filter"]
    assert applicable_rivals("cand10", ["score-mix"]) == ["score-mix"]
    assert applicable_rivals("pointwise", names) == ["bias"]
    # without a run's model neither mix applies (both read the run's priors / reranker)
    assert expected_models("cand10", ["sasrec"], names, has_model=False) == {"sasrec"}
