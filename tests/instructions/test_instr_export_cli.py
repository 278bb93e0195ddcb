from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.instructions import export


def test_exports_round_trip(ml_test, tmp_path):
    f = ml_test.head(50)
    p = export(f, tmp_path / "a.jsonl", "jsonl")
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    assert len(rows) == 50 and rows[0]["instruction"] == f["instruction"].iloc[0]
    assert rows[0]["candidates"] == f["candidates"].iloc[0].tolist()
    assert all(
        (r["label"] is None) == np.isnan(lab) for r, lab in zip(rows, f["label"], strict=True)
    )
    a = json.loads(export(f, tmp_path / "a.json", "alpaca").read_text())
    assert a[3] == {
        "instruction": f["instruction"].iloc[3],
        "input": "",
        "output": f["answer"].iloc[3],
    }
    lines = export(f, tmp_path / "a.tsv", "tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50 and lines[7].split("\t") == [
        f["instruction"].iloc[7],
        f["answer"].iloc[7],
    ]


def test_cli_build_and_show(tmp_path):
    runner = CliRunner()
    out = tmp_path / "train.jsonl"
    res = runner.invoke(
        main,
        [
            "instructions",
            "build",
            "--set",
            "stage=train",
            "--out",
            str(out),
            "--set",
            "slots=[[P1, I0, T3], [P0, I2, T2]]",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["P"], r["I"], r["T"]) for r in rows} == {("P1", "I0", "T3"), ("P0", "I2", "T2")}
    res = runner.invoke(main, ["instructions", "show", "--n", "1"])
    assert res.exit_code == 0, res.output
    assert res.output.count("=== ") >= 20 and "=== P1 I0 T3" in res.output
    assert "=== P1 I0 T1" in res.output and "->" in res.output


def test_cli_errors(tmp_path):
    runner = CliRunner()
    out = str(tmp_path / "x.jsonl")
    res = runner.invoke(main, ["instructions", "build", "--out", out, "--set", "slots=[[P1, I2]]"])
    assert res.exit_code == 2 and "('P1', 'I2')" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(main, ["instructions", "build", "--out", out, "--set", "stage=later"])
    assert res.exit_code == 2 and "stage must be" in res.output
    res = runner.invoke(
        main,
        [
            "instructions",
            "build",
            "--out",
            str(tmp_path / "x.jsonl"),
            "--data",
            str(tmp_path / "missing.csv"),
        ],
    )
    assert res.exit_code == 2 and "missing.csv" in res.output


def test_instruction_config_from_yaml(tmp_path, tiny_dataset):
    import pytest

    from instructrec.data import make_split
    from instructrec.data.errors import DataError
    from instructrec.instructions.config import InstructionConfig

    p = tmp_path / "i.yaml"
    p.write_text(
        "stage: valid\nslots: [[P1, I2, T3]]\nseed: 4\n"
        "teacher: {url: 'http://127.0.0.1:9', api_key: secret}\n"
    )
    cfg = InstructionConfig.from_yaml(p)
    assert cfg.teacher.url == "http://127.0.0.1:9" and cfg.to_dict()["teacher"]["api_key"] == "***"
    cfg.teacher = None
    f = cfg.build(tiny_dataset, make_split(tiny_dataset))
    assert set(f["stage"]) == {"valid"} and set(f["I"]) == {"I2"}
    p.write_text("stagee: valid\n")
    with pytest.raises(DataError, match="unknown setting.*stagee"):
        InstructionConfig.from_yaml(p)


@pytest.mark.parametrize(
    "flag",
    [
        ["--stage", "test"],
        ["--slots", "P1I0T3"],
        ["--templates", "all"],
        ["--candidates", "cand20"],
        ["--per-user", "2"],
        ["--seed", "1"],
        ["--context"],
    ],
)
def test_build_has_one_override_style(tmp_path, flag):
    """The config's keys are set with --set only: a per-key flag is click's usage error."""
    out = tmp_path / "x.jsonl"
    res = CliRunner().invoke(main, ["instructions", "build", "--out", str(out), *flag])
    assert res.exit_code == 2 and f"No such option '{flag[0]}'" in res.output
    assert not out.exists()


def test_build_set_and_config_choose_the_settings(tmp_path):
    """--set on top of --config: the stage from the file, the per-user count from --set."""
    cfg = tmp_path / "i.yaml"
    cfg.write_text("stage: train\nslots: [[P1, I0, T3]]\nper_user: 1\n")
    out = tmp_path / "t.jsonl"
    args = ["instructions", "build", "--config", str(cfg), "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    one = [json.loads(line) for line in out.read_text().splitlines()]
    res = CliRunner().invoke(main, [*args, "--set", "per_user=2"])
    assert res.exit_code == 0, res.output
    two = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["stage"] for r in two} == {"train"} and {(r["P"], r["I"]) for r in two} == {
        ("P1", "I0")
    }
    assert len(two) > len(one)
