"""`instructrec recommend`: explained output, a new visitor's request, JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data import make_split
from instructrec.recommender import Recommender
from instructrec.retrieval import ItemKNN
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    ds = synthetic_dataset(n_users=30, n_items=40, per_user=10, seed=4)
    return (
        Recommender(ds, ItemKNN())
        .fit(make_split(ds, seed=0))
        .save(tmp_path_factory.mktemp("run") / "model")
    )


def test_recommend_prints_the_explanation(run_dir):
    out = CliRunner().invoke(
        main, ["recommend", "--model", str(run_dir), "--user", "u2", "-n", "3", "a horror movie"]
    )
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("understood: Horror (")
    assert sum(line.lstrip().startswith(("1.", "2.", "3.")) for line in lines) == 3
    assert out.output.count("matches Horror") == 3


def test_new_visitor_and_json(run_dir):
    out = CliRunner().invoke(
        main, ["recommend", "--model", str(run_dir), "--json", "-n", "2", "a comedy"]
    )
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    assert answer["understood"] == "Comedy" and len(answer["items"]) == 2
    assert all("Comedy" in it["genres"] and "popular" in it["reason"] for it in answer["items"])
    bad = CliRunner().invoke(main, ["recommend", "--model", str(run_dir)])
    assert bad.exit_code == 2 and "instruction" in bad.output
