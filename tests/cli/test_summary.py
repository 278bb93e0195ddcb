"""The quickstart's closing table: one row per protocol and template set, the model's mean
with its CI, the strongest rival with its CI, the paired difference and the verdict."""

from __future__ import annotations

import pytest

from instructrec.cli.summary import summary_rows, summary_table
from instructrec.data import make_split
from instructrec.evaluation.study import run_study
from instructrec.recommender import Recommender
from instructrec.retrieval.itemknn import ItemKNN


@pytest.fixture(scope="module")
def study():
    from instructrec.testing.datasets import synthetic_dataset

    ds = synthetic_dataset()
    split = make_split(ds, seed=0)
    rec = Recommender(ds, ItemKNN()).fit(split)
    return run_study(
        ds,
        split,
        ["cand10", "cand20"],
        [0],
        run_models={0: rec},
        baselines=["pop", "itemknn"],
        rivals=[],
        n_boot=50,
        echo=lambda _: None,
    )


def test_one_row_per_protocol_with_cis_rival_and_verdict(study):
    reports, combined = study
    rows = summary_rows([("seen", reports, combined)])
    assert [r[0] for r in rows] == ["cand10", "cand20"]
    for proto, label, metric, model, rival, diff, _p, verdict in rows:
        assert label == "seen" and metric
        mean = reports[0][proto].mean("instructrec", metric)
        assert model.startswith(f"{mean:.4f} [")  # the model's mean and its 95% CI
        best = combined.strongest_rival(proto)
        assert rival.startswith(best + " ")
        assert diff.startswith(("+", "-")) and "[" in diff and verdict
    table = summary_table([("seen", reports, combined), ("held-out", reports, combined)])
    lines = table.splitlines()
    assert len(lines) == 2 + 4 and "strongest rival [95% CI]" in lines[0]
