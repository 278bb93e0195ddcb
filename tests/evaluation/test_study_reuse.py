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
