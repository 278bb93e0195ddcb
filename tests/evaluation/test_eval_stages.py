"""Validation stage, the `hard`, `cold` and `search-hard` protocols, intention-match stats and
the model's own rerank depth in `full`."""

import json

import numpy as np
import pytest

import instructrec.evaluation.protocols as P
from instructrec.data import DataError, load_split, make_split, save_split
from instructrec.evaluation import evaluate_all, fit_baselines, run
from instructrec.evaluation.hard_negatives import make_search_hard_candidates, match_degree
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def setup():
    ds = synthetic_dataset(n_users=120, n_items=200, per_user=12, seed=0)
    split = make_split(ds, seed=0, cold_fraction=0.1)
    models = fit_baselines(ds, split, ["pop", "itemknn"])
    return ds, split, models


class StageOracle:
    """Knows the target of one stage; ranks it first among any candidates."""

    def __init__(self, frame, retriever=None, rerank_depth=None):
        self.target = dict(zip(frame["user"], frame["item"], strict=True))
        self.retriever, self.rerank_depth = retriever, rerank_depth

    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        t = np.array([self.target[int(u)] for u in users])
        return (np.asarray(candidates) == t[:, None]).astype(np.float32)


def test_valid_stage_scores_the_valid_rows(setup, tmp_path):
    ds, split, models = setup
    rep = run("cand10", ds, split, {**models, "o": StageOracle(split.valid)}, stage="valid")
    assert list(rep.per_user["pop"].index) == list(ds.user_ids[split.valid["user"]])
    assert rep.mean("o", "HR@1") == 1.0  # column 0 of the valid file is the valid target
    assert rep.manifest["config"]["stage"] == "valid"
    test = run("cand10", ds, split, {"o": StageOracle(split.valid)}, stage="test")
    assert test.mean("o", "HR@1") < 1.0  # the valid target is not the test target
    rows = P.stage_rows(split, "valid")
    seqs = split.sequences("valid")
    assert all(
        np.array_equal(h, seqs.get(int(u), h[:0]))
        for u, h in zip(rows.users, rows.histories, strict=True)
    )
    with pytest.raises(DataError, match="stage"):
        run("cand10", ds, split, models, stage="train")


def test_full_at_valid_excludes_training_items_only(setup):
    ds, split, models = setup
    rep = run("full", ds, split, {"pop": models["pop"]}, stage="valid")
    rows = P.stage_rows(split, "valid")
    from instructrec.evaluation.metrics import ranks_full

    r = ranks_full(
        models["pop"].score_all(rows.users, rows.histories), rows.targets, rows.histories
    )
    np.testing.assert_allclose(rep.per_user["pop"]["MRR"].to_numpy(), 1 / (r + 1))


def test_cold_protocol_scores_exactly_the_cold_target_rows(setup):
    ds, split, models = setup
    for stage in ("valid", "test"):
        rep = run("cold", ds, split, models, stage=stage)
        frame = split.frame(stage)
        cold_rows = frame[np.isin(frame["item"], split.cold_items)]
        assert len(cold_rows) > 0
        assert list(rep.per_user["pop"].index) == list(ds.user_ids[cold_rows["user"]])
        # no training interaction: popularity cannot lift the target above any negative
        assert rep.mean("pop", "HR@1") == 0.0
    warm = make_split(ds, seed=0, cold_fraction=0.0)
    with pytest.raises(DataError, match="no cold items"):
        run("cold", ds, warm, models)
    with pytest.warns(UserWarning, match="'cold' left out"):
        reps = evaluate_all("all", ds, warm, models, n_boot=20)
    assert "cold" not in reps and "hard" not in reps and "cand10" in reps


def test_hard_file_is_built_from_sasrec_saved_and_reused(setup, tmp_path):
    ds, _, models = setup
    split = make_split(ds, seed=0, cold_fraction=0.1)
    with pytest.raises(DataError, match="sasrec"):
        run("hard", ds, split, models)
    knn = models["itemknn"]  # stands in for SASRec (fast)
    rep = run("hard", ds, split, {"sasrec": knn, "pop": models["pop"]}, stage="valid")
    assert set(split.candidates["hard"]) == {"valid", "test"}
    assert "ItemKNN" in split.notes["hard"]["test"]["retriever"]
    for stage in ("valid", "test"):
        rows = P.stage_rows(split, stage)
        top = knn.candidates(rows.users, 50, histories=rows.histories, seen=rows.histories)[0]
        cands = split.candidates["hard"][stage]
        assert (cands[:, 0] == rows.targets).all()
        assert all(
            set(c[1:]) <= set(t) - {g} for c, t, g in zip(cands, top, rows.targets, strict=True)
        )
    assert rep.manifest["split_files"]["hard.valid.npy"] == split.hashes["hard.valid.npy"]
    save_split(split, tmp_path, ds)
    back = load_split(tmp_path, ds)
    assert (tmp_path / "hard.note.json").exists()
    again = run("hard", ds, back, {"pop": models["pop"]}, stage="valid")  # no sasrec needed now
    assert again.table.loc["pop"].equals(rep.table.loc["pop"])


def test_search_hard_negatives_match_the_intention_like_the_target(ml100k, ml100k_split):
    from instructrec.instructions import derive_intentions

    split = make_split(ml100k, seed=0)
    cands = make_search_hard_candidates(ml100k, split, "test", seed=0)
    _, attrs = derive_intentions(ml100k, split.test["item"].to_numpy(), kind="I2", seed=0)
    deg = match_degree(ml100k, attrs, cands)
    target, negs = deg[:, :1], deg[:, 1:]
    full = (negs >= target).all(axis=1)
    assert full.mean() > 0.8  # most rows: every negative matches as fully as the target
    assert (~full).sum() == split.notes["search-hard"]["test"]["rows_short"]
    # unseen, distinct, and different from the random cand10 negatives
    seen = set(zip(ml100k.interactions["user"], ml100k.interactions["item"], strict=True))
    users = split.test["user"].to_numpy()
    assert not any((u, i) in seen for u, row in zip(users, cands[:, 1:], strict=True) for i in row)
    assert all(len(set(r)) == 10 for r in cands)
    assert np.array_equal(cands, make_search_hard_candidates(ml100k, split, "test", seed=0))


def test_search_reports_unique_match_rate_and_hr_on_multi_match_rows(setup, tmp_path):
    ds, split, models = setup
    from instructrec.instructions import derive_intentions, intention_matches

    rep = run("search", ds, split, models, stage="valid", out_dir=tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())["manifest"]["intention_match"]
    _, attrs = derive_intentions(ds, split.valid["item"].to_numpy(), kind="I2", seed=0)
    match = intention_matches(ds, attrs, split.candidates["cand10"]["valid"])
    multi = match.sum(axis=1) >= 2
    assert saved["unique_match_rate"] == pytest.approx((match.sum(axis=1) == 1).mean())
    assert 0 < multi.sum() < len(multi)
    for name in ("pop", "itemknn"):
        hr = rep.per_user[name]["HR@1"].to_numpy()[multi].mean()
        assert saved["HR@1|>=2match"][name] == pytest.approx(hr)
    assert any("unique-match rate" in n for n in rep.notes)


def test_full_uses_the_models_rerank_depth(setup):
    ds, split, models = setup
    knn = models["itemknn"]
    deep = StageOracle(split.test, knn, rerank_depth=40)
    shallow = StageOracle(split.test, knn, rerank_depth=3)
    rep = run("full", ds, split, {"deep": deep, "shallow": shallow})
    rows = P.test_rows(split)
    head = knn.candidates(rows.users, 40, histories=rows.histories, seen=rows.histories)[0]
    pos = np.argmax(head == rows.targets[:, None], axis=1)
    found = (head == rows.targets[:, None]).any(axis=1)
    mrr_deep = rep.per_user["deep"]["MRR"].to_numpy()
    mrr_shallow = rep.per_user["shallow"]["MRR"].to_numpy()
    np.testing.assert_array_equal(mrr_deep[found], 1.0)
    np.testing.assert_array_equal(mrr_shallow[found & (pos < 3)], 1.0)
    assert (mrr_shallow[found & (pos >= 3)] < 1.0).all() and (found & (pos >= 3)).any()
