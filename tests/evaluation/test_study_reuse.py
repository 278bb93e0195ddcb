"""Seeds scored in separate runs combine into one table: a saved report reads back whole, and
`run_study(reuse=True)` reads a seed's saved protocols instead of scoring them again, only
when the seed, stage, split and models match."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from instructrec.data import make_split
from instructrec.evaluation.report import Report
from instructrec.evaluation.study import run_study
from instructrec.recommender import Recommender
from instructrec.retrieval.itemknn import ItemKNN

run_module = importlib.import_module("instructrec.evaluation.run")


@pytest.fixture(scope="module")
def setting():
    from instructrec.testing.datasets import synthetic_dataset

    ds = synthetic_dataset()
    split = make_split(ds, seed=0)
    models = {s: Recommender(ds, ItemKNN()).fit(split) for s in (0, 1)}
    return ds, split, models


def _study(setting, seeds, out, reuse=False, baselines=("pop",), split=None, echo=None):
    ds, split0, models = setting
    return run_study(
        ds,
        split if split is not None else split0,
        ["cand10", "full"],
        list(seeds),
        run_models={s: models[s] for s in seeds},
        baselines=list(baselines),
        rivals=[],
        out_dir=out,
        n_boot=50,
        echo=echo or (lambda _: None),
        reuse=reuse,
    )


def _no_scoring(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a protocol was scored again")

    monkeypatch.setattr(run_module, "run", refuse)


def test_saved_report_reads_back_whole(setting, tmp_path):
    reports, _ = _study(setting, [0], tmp_path)
    rep = reports[0]["cand10"]
    back = Report.load(tmp_path / "seed-0" / "cand10")
    assert back.protocol == "cand10" and back.metrics == rep.metrics
    pd.testing.assert_frame_equal(back.table, rep.table, check_names=False)
    assert set(back.per_user) == set(rep.per_user)
    for name, df in rep.per_user.items():
        got = back.per_user[name]
        assert list(got.index) == [str(u) for u in df.index]  # raw ids, as strings
        np.testing.assert_array_equal(got[rep.metrics].to_numpy(), df[rep.metrics].to_numpy())
    assert back.manifest["seed"] == 0 and back.manifest["config"]["stage"] == "valid"
    assert len(back.comparisons) == len(rep.comparisons)


def test_separate_seed_runs_combine_like_one_run(setting, tmp_path, monkeypatch):
    _, together = _study(setting, [0, 1], tmp_path / "together")
    _study(setting, [0], tmp_path / "apart")
    _study(setting, [1], tmp_path / "apart")
    said = []
    _no_scoring(monkeypatch)
    _, combined = _study(setting, [0, 1], tmp_path / "apart", reuse=True, echo=said.append)
    assert any("seed 0: reusing cand10, full" in s for s in said)
    pd.testing.assert_frame_equal(combined.means, together.means)
    cols = ["protocol", "model", "rival", "diff", "diff_low", "diff_high", "p"]
    pd.testing.assert_frame_equal(combined.tests[cols], together.tests[cols])


def test_reports_of_another_split_or_missing_models_are_scored_again(setting, tmp_path):
    ds, _, _ = setting
    _study(setting, [0], tmp_path)
    calls = []
    real = run_module.run

    def counting(proto, *a, **k):
        calls.append(proto)
        return real(proto, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(run_module, "run", counting)
    try:
        _study(setting, [0], tmp_path, reuse=True, baselines=("pop", "itemknn"))
        assert calls == ["cand10", "full"]  # the saved reports lack itemknn
        calls.clear()
        _study(setting, [0], tmp_path, reuse=True, baselines=("pop", "itemknn"))
        assert calls == []  # now they have it
        _study(setting, [0], tmp_path, reuse=True, split=make_split(ds, seed=1))
        assert calls == ["cand10", "full"]  # the split files differ: nothing is reused
    finally:
        mp.undo()


def test_a_broken_saved_report_is_named(setting, tmp_path):
    _study(setting, [0], tmp_path)
    (tmp_path / "seed-0" / "full" / "report.json").write_text("{not json")
    from instructrec.data.errors import DataError

    with pytest.raises(DataError, match=r"seed-0/full: cannot read the saved report"):
        _study(setting, [0], tmp_path, reuse=True)


def test_candidate_files_built_later_are_kept_with_the_split(setting, tmp_path):
    """`add_candidate_files` writes only what the folder lacks; a later load has it, hashes
    verified; the files already there are untouched."""
    from instructrec.data.split import set_candidates
    from instructrec.data.split_files import add_candidate_files, load_split, save_split

    ds, _, _ = setting
    split = make_split(ds, seed=0)
    save_split(split, tmp_path / "split", ds)
    before = {p.name: p.read_bytes() for p in (tmp_path / "split").iterdir()}
    loaded = load_split(tmp_path / "split", ds)
    test = loaded.frame("test")
    arr = np.stack([test["item"].to_numpy(), (test["item"].to_numpy() + 1) % ds.n_items], 1)
    set_candidates(loaded, "extra", "test", arr, note={"made": "here"})
    assert add_candidate_files(loaded, tmp_path / "split") == ["extra.test.npy"]
    assert add_candidate_files(loaded, tmp_path / "split") == []  # nothing new the second time
    again = load_split(tmp_path / "split", ds)
    np.testing.assert_array_equal(again.candidates["extra"]["test"], arr)
    assert again.notes["extra"] == {"test": {"made": "here"}}
    for name, data in before.items():
        if name != "split.json":
            assert (tmp_path / "split" / name).read_bytes() == data


def test_a_report_scored_with_candidates_the_split_lacks_is_scored_again(
    setting, tmp_path, monkeypatch
):
    import json

    from instructrec.data.split import set_candidates

    ds, split0, _ = setting
    _study(setting, [0], tmp_path)
    rj = tmp_path / "seed-0" / "full" / "report.json"
    d = json.loads(rj.read_text())
    split = make_split(ds, seed=0)  # same files as split0, and one more candidate file
    test = split.frame("test")
    set_candidates(split, "extra", "test", np.stack([test["item"].to_numpy()] * 2, 1))
    d["manifest"]["split_files"]["extra.test.npy"] = "not the same file"
    rj.write_text(json.dumps(d))
    calls = []
    real = run_module.run
    monkeypatch.setattr(run_module, "run", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    _study(setting, [0], tmp_path, reuse=True, split=split)
    assert calls == ["full"]  # cand10 is reused; full named a file this split has otherwise
    d["manifest"]["split_files"]["extra.test.npy"] = split.hashes["extra.test.npy"]
    rj.write_text(json.dumps(d))
    calls.clear()
    _study(setting, [0], tmp_path, reuse=True, split=split)
    assert calls == []


def test_rivals_fitted_before_the_study_are_reused(setting, monkeypatch):
    """The quickstart fits the rating models and the filter while its reranker waits for the
    stacked SASRec (`prefit_rivals`); `run_study` must use those, not fit them again."""
    from instructrec.evaluation import rival_models
    from instructrec.evaluation.study import prefit_rivals

    ds, split, models = setting
    rec = models[0]
    fitted: dict = {}
    factory = prefit_rivals(fitted, ds, split, rec, 0, ["pop", "itemknn"], ["bias", "mf"])
    ratings = factory._ratings
    assert set(ratings) == {"bias", "mf"}

    def refuse(*a, **k):
        raise AssertionError("the rating models were fitted again")

    monkeypatch.setattr(rival_models.Rivals, "__init__", refuse)
    reports, _ = run_study(
        ds,
        split,
        ["pointwise"],
        [0],
        run_models={0: rec},
        baselines=["pop", "itemknn"],
        rivals=["bias", "mf"],
        n_boot=20,
        echo=lambda _: None,
        fitted=fitted,
    )
    assert fitted[0]["rivals"] is factory and factory._ratings is ratings
    assert {"bias", "mf"} <= set(reports[0]["pointwise"].table.index)
