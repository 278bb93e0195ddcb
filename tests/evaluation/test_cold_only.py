"""`cold-only` (every candidate a cold item) and the `new-first` rule on `cold`: what the
`cold` protocol's mostly-warm negatives give away, and a protocol where they give nothing."""

import numpy as np
import pytest

import instructrec.evaluation.protocols as P
from instructrec.data import DataError, make_split
from instructrec.data.negatives import seen_keys
from instructrec.evaluation import evaluate_all, fit_baselines, run
from instructrec.evaluation.adapters import NewFirstModel
from instructrec.evaluation.hard_negatives import make_cold_candidates
from instructrec.evaluation.rival_models import Rivals, applicable_rivals
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def setup():
    ds = synthetic_dataset(n_users=150, n_items=200, per_user=12, seed=3)
    split = make_split(ds, seed=0, cold_fraction=0.1)
    models = fit_baselines(ds, split, ["pop", "itemknn"])
    return ds, split, models


def _cold_rows(split, stage):
    frame = split.frame(stage)
    return frame[np.isin(frame["item"], split.cold_items)]


def test_cold_only_negatives_are_distinct_unseen_cold_items(setup):
    ds, split, models = setup
    split = make_split(ds, seed=0, cold_fraction=0.1)  # its own copy: the file is added to it
    keys = set(seen_keys(ds).tolist())
    cold = set(split.cold_items.tolist())
    for stage in ("valid", "test"):
        rep = run("cold-only", ds, split, models, stage=stage)
        rows = _cold_rows(split, stage)
        assert len(rows) > 0
        assert list(rep.per_user["pop"].index) == list(ds.user_ids[rows["user"]])
        cands = split.candidates["cold-only"][stage]
        targets = split.frame(stage)["item"].to_numpy()
        assert (cands[:, 0] == targets).all() and cands.shape[1] == 10
        for u, row in zip(split.frame(stage)["user"], cands, strict=True):
            negs = [int(i) for i in row[1:]]
            assert set(negs) <= cold and len(set(negs)) == 9 and row[0] not in negs
            assert not any(int(u) * ds.n_items + i in keys for i in negs)
        # every candidate is new: popularity has nothing to rank by (ties count against)
        assert rep.mean("pop", "HR@1") == 0.0
    assert split.notes["cold-only"]["test"]["cold_items"] == len(cold)
    again = make_split(ds, seed=0, cold_fraction=0.1)
    np.testing.assert_array_equal(
        make_cold_candidates(ds, again, "test", seed=0), split.candidates["cold-only"]["test"]
    )
    other = make_cold_candidates(ds, again, "test", seed=1)
    assert not np.array_equal(other, split.candidates["cold-only"]["test"])


def test_cold_only_needs_ten_cold_items(setup):
    ds, _, models = setup
    few = make_split(ds, seed=0, cold_fraction=0.03)
    assert 0 < len(few.cold_items) < 10
    with pytest.raises(DataError, match="unseen cold items"):
        run("cold-only", ds, few, models)
    with pytest.warns(UserWarning, match="'cold-only' left out"):
        reps = evaluate_all("all", ds, few, models, n_boot=20)
    assert "cold" in reps and "cold-only" not in reps


def test_new_first_on_cold_is_the_share_of_rows_without_a_cold_negative(setup):
    ds, split, models = setup
    rule = NewFirstModel(split.cold_items, ds.n_items)  # no content order: new items tied
    rep = run("cold", ds, split, {**models, "new-first": rule}, stage="test")
    rows = P.select_rows(P.get_protocol("cold"), split, P.stage_rows(split, "test"))
    cands = split.candidates["cand10"]["test"][rows.index]
    is_cold = np.isin(cands, split.cold_items)
    assert is_cold[:, 0].all()
    alone = (~is_cold[:, 1:]).all(axis=1)  # the target is the only new candidate
    assert 0 < alone.mean() < 1
    np.testing.assert_allclose(rep.per_user["new-first"]["HR@1"].to_numpy(), alone.astype(float))
    # with a content order among new items it ranks them by it; on cold-only it is that order
    knn = models["itemknn"]
    ordered = NewFirstModel(split.cold_items, ds.n_items, knn)
    s = ordered.score_candidates(rows.users, cands, rows.histories)
    base = knn.score(rows.users, cands, rows.histories)
    lo_new = np.where(is_cold, s, np.inf).min(axis=1)
    hi_warm = np.where(is_cold, -np.inf, s).max(axis=1)
    assert (lo_new > hi_warm).all()  # every new candidate above every warm one, per row
    span = base.max(axis=1, keepdims=True) - base.min(axis=1, keepdims=True) + 1.0
    np.testing.assert_allclose(s - base, is_cold * span)  # within a group: the content order
    only = run("cold-only", ds, split, {"itemknn": knn, "new-first": ordered}, stage="test")
    np.testing.assert_allclose(
        only.per_user["new-first"]["HR@1"].to_numpy(), only.per_user["itemknn"]["HR@1"].to_numpy()
    )


def test_rivals_on_cold_and_cold_only(setup):
    ds, split, models = setup
    names = ["score-mix", "sasrec+filter", "new-first"]
    assert applicable_rivals("cold", names) == ["score-mix", "new-first"]
    assert applicable_rivals("cold-only", names) == ["score-mix"]
    assert "new-first" not in applicable_rivals("cand10", names)
    factory = Rivals(ds, split, {"titleknn": models["itemknn"]}, None, 0, names)
    got = factory.for_protocol("cold", "test")
    assert set(got) == {"score-mix", "new-first"}
    assert got["new-first"].content is models["itemknn"]
    # score-mix fits cold-only on its own rows (cold targets, cold negatives), cold on the rest
    factory.base = {"pop": models["pop"]}
    users, cands, _, _ = factory._fit_rows(P.get_protocol("cold-only"), [])
    assert np.isin(cands, split.cold_items).all() and len(users) > 0
    users, cands, _, _ = factory._fit_rows(P.get_protocol("cold"), [])
    assert not np.isin(cands[:, 0], split.cold_items).any()
