"""`instructrec train`, `recommend` and `quickstart` driven through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.cli.quickstart import quickstart_config
from instructrec.config import RunConfig

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_yaml_matches_the_code():
    """configs/quickstart.yaml documents exactly what `quickstart` runs: RunConfig()."""
    assert RunConfig.from_yaml(REPO / "configs" / "quickstart.yaml") == quickstart_config(False)
    assert quickstart_config(False) == RunConfig()
    fast = quickstart_config(True, ["training.lr=5e-4"])
    assert fast.training.max_steps == 4 and fast.training.lr == 5e-4
    assert fast.priors[0].options == fast.retriever.options == {"max_epochs": 2, "patience": 1}


@pytest.fixture()
def tiny_run(tiny_dataset, tmp_path):
    from instructrec.data import write_atomic

    write_atomic(tiny_dataset, tmp_path / "data", name="tiny")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"data:\n  source: {tmp_path / 'data'}\nretriever: itemknn\n"
        "priors: [itemknn, pop]\nrerank: false\n"
    )
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_train_writes_a_run_directory(tiny_run):
    assert (tiny_run / "model" / "recommender.json").exists()
    assert (tiny_run / "split" / "split.json").exists()
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["config"]["retriever"]["name"] == "itemknn"
    assert manifest["dataset"]["fingerprint"] and manifest["versions"]["torch"]
    assert RunConfig.from_yaml(tiny_run / "config.yaml").rerank is False


def test_recommend_prints_a_table_and_rejects_unknown_users(tiny_run):
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "recommend",
            "--model",
            str(tiny_run / "model"),
            "--user",
            "u1",
            "-n",
            "4",
            "something funny",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("understood:")  # what the instruction was read as
    assert [
        ln.lstrip().split(".")[0] for ln in lines if ln.lstrip()[:2] in ("1.", "2.", "3.", "4.")
    ] == ["1", "2", "3", "4"]
    res = runner.invoke(main, ["recommend", "--model", str(tiny_run / "model"), "--user", "zz"])
    assert res.exit_code == 2 and "unknown user id 'zz'" in res.output
    res = runner.invoke(
        main, ["recommend", "--model", str(tiny_run / "model"), "--history", "i1,i2", "-n", "2"]
    )
    ranks = [ln for ln in res.output.splitlines() if ln.lstrip()[:2] in ("1.", "2.", "3.")]
    assert res.exit_code == 0 and len(ranks) == 2, res.output


def test_train_rejects_a_bad_config(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("backbone:\n  lora_rank: 8\n")
    res = CliRunner().invoke(main, ["train", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "backbone.lora_rank" in res.output


@pytest.mark.slow
def test_quickstart_fast_end_to_end(tmp_path):
    out = tmp_path / "qs"
    res = CliRunner().invoke(main, ["quickstart", "--fast", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = res.output.split("## validation stage: instructrec against")[1]
    table = [
        ln
        for ln in summary.split("## sample recommendations")[0].splitlines()
        if ln.startswith("|")
    ]
    rows = [ln for ln in table if "---" not in ln][1:]
    protos = {r.split("|")[1].strip() for r in rows}
    assert {"cand10", "full", "search", "vague-para", "pointwise"} <= protos
    assert any("held-out" in r for r in rows) and any("seen" in r for r in rows)
    for r in rows:  # the model's mean with its CI, the strongest rival, and a verdict
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert "[" in cells[3] and cells[4] and cells[7], r
    assert "sample recommendations" in res.output
    assert f"summary table:  {out}/eval/summary.md" in res.output
    assert (out / "eval" / "summary.md").read_text().strip() == "\n".join(table)
    assert (out / "model" / "reranker" / "reranker.json").exists()
    assert (out / "eval" / "seen" / "seed-0" / "cand10").is_dir()
    assert (out / "eval" / "seen" / "combined.md").exists()
