from __future__ import annotations

import json

import numpy as np
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
            "--stage",
            "train",
            "--out",
            str(out),
            "--slots",
            "P1I0T3,P0I2T2",
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
    res = runner.invoke(
        main, ["instructions", "build", "--out", str(tmp_path / "x.jsonl"), "--slots", "P1I2"]
    )
    assert res.exit_code == 2 and "--slots" in res.output
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
