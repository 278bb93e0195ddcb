"""`--model` takes a run folder or its `model/`; a multi-seed run names a seed folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.cli.common import model_path
from instructrec.data import DataError


@pytest.fixture()
def run(tiny_dataset, tmp_path):
    from instructrec.data import write_atomic

    write_atomic(tiny_dataset, tmp_path / "data", name="tiny")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"data: {{source: {tmp_path / 'data'}}}\nretriever: pop\npriors: [pop]\nrerank: false\n"
    )
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["-q", "train", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_recommend_takes_the_run_folder_or_its_model(run):
    outs = []
    for folder in (run, run / "model"):
        res = CliRunner().invoke(
            main, ["recommend", "--model", str(folder), "--user", "u1", "-n", "3"]
        )
        assert res.exit_code == 0, res.output
        outs.append(res.stdout)
    ranked = [ln for ln in outs[0].splitlines() if ln.lstrip()[:2] in ("1.", "2.", "3.")]
    assert outs[0] == outs[1] and len(ranked) == 3, outs[0]


def test_a_multi_seed_run_names_a_seed_folder(tmp_path):
    (tmp_path / "seed-0" / "model").mkdir(parents=True)
    (tmp_path / "seeds.json").write_text(json.dumps({"seeds": [0], "runs": {"0": "seed-0"}}))
    with pytest.raises(DataError, match="seed-0"):
        model_path(tmp_path)
