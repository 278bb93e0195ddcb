"""`instructrec tune` -> `instructrec predict` through the real CLI, with a tiny model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from instructrec.cli import main

TITLES = [
    "Toy Story (1995) - Animation, Comedy",
    "Heat (1995) - Action, Crime",
    "Casino (1995) - Drama, Crime",
    "Babe (1995) - Comedy",
    "Jumanji (1995) - Adventure",
    "Scream (1996) - Horror",
    "Emma (1996) - Romance, Comedy",
    "Fargo (1996) - Crime, Drama",
]
ROWS = [
    {"instruction": f"Is {t} a comedy?", "output": "Yes." if "Comedy" in t else "no"}
    for t in TITLES
]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    import torch

    from instructrec.testing.tiny import tiny_causal

    torch.set_num_threads(1)
    return tiny_causal(tmp_path_factory.mktemp("gpt2"), [r["instruction"] for r in ROWS])


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tune_args(tmp_path, model, out, *extra):
    return [
        "tune", "--data", tmp_path / "train.json", "--backbone", model, "--out", out,
        "--set", "train.epochs=1", "--set", "train.batch_size=4", "--set", "train.device=cpu",
        "--no-progress", "--set", "train.lr=0.01",
        *extra,
    ]  # fmt: skip


def test_tune_then_predict_round_trip(tmp_path, tiny_gpt2):
    (tmp_path / "train.json").write_text(json.dumps(ROWS))
    (tmp_path / "valid.json").write_text(json.dumps(ROWS[:4]))
    (tmp_path / "test.tsv").write_text(
        "\n".join(f"{r['instruction']}\t{r['output']}" for r in ROWS)
    )
    out = tmp_path / "run"
    r = run(*tune_args(tmp_path, tiny_gpt2, out, "--valid-data", tmp_path / "valid.json",
                       "--test-data", tmp_path / "test.tsv"))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "valid: accuracy" in r.output and "test: accuracy" in r.output and "auc" in r.output
    assert "max length:" in r.output
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["n_train"] == 8 and summary["n_valid"] == 4 and summary["n_test"] == 8
    preds = tmp_path / "preds.jsonl"
    r = run("predict", "--model", out, "--data", tmp_path / "test.tsv", "--out", preds)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 8 and set(rows[0]["probs"]) == {"Yes", "no"}
    assert all(abs(sum(x["probs"].values()) - 1) < 1e-5 for x in rows)
    assert rows[0]["label"] == "Yes." and isinstance(rows[0]["correct"], bool)
    m = json.loads((tmp_path / "preds.metrics.json").read_text())
    assert {"accuracy", "accuracy_ci", "auc", "auc_ci", "exact_match"} <= set(m)
    test_preds = [json.loads(x) for x in (out / "test_predictions.jsonl").read_text().splitlines()]
    got, want = [x["probs"]["Yes"] for x in test_preds], [x["probs"]["Yes"] for x in rows]
    assert got == pytest.approx(want, abs=1e-5)
    # unlabelled file: answers and probabilities, no metrics
    (tmp_path / "u.json").write_text(json.dumps([{"instruction": r["instruction"]} for r in ROWS]))
    r = run("predict", "--model", out / "model", "--data", tmp_path / "u.json", "--out",
            tmp_path / "u.jsonl")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "accuracy" not in r.output
    first = json.loads((tmp_path / "u.jsonl").read_text().splitlines()[0])
    assert "label" not in first and first["answer"] in ("Yes", "no")


def test_valid_fraction_zero_and_existing_out(tmp_path, tiny_gpt2):
    (tmp_path / "train.json").write_text(json.dumps(ROWS))
    out = tmp_path / "run"
    r = run(*tune_args(tmp_path, tiny_gpt2, out, "--set", "valid_fraction=0"))
    assert r.exit_code == 0, r.output
    assert "valid rows: 0" in r.output and "steps: 2" in r.output
    r = run(*tune_args(tmp_path, tiny_gpt2, out, "--set", "valid_fraction=0"))
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = run(*tune_args(tmp_path, tiny_gpt2, out, "--set", "valid_fraction=0", "--overwrite"))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "content,suffix,needle",
    [
        ("", ".tsv", "empty"),
        ("instruction\tanswer\nIs Heat good?\tyes\textra\n", ".tsv", "line 2"),
        ('[{"instruction": "x"}]', ".json", "output"),
        ('[{"instruction": "x", "output": "yes"}, {"instruction": null, "output": "no"}]',
         ".json", "record 1"),
    ],
)  # fmt: skip
def test_bad_training_file_exits_2(tmp_path, tiny_gpt2, content, suffix, needle):
    data = tmp_path / f"bad{suffix}"
    data.write_text(content)
    r = run("tune", "--data", data, "--backbone", tiny_gpt2, "--out", tmp_path / "run")
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_hub_id_offline_and_bad_model_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "train.json").write_text(json.dumps(ROWS))
    r = run("tune", "--data", tmp_path / "train.json", "--backbone", "nobody/nothing-here",
            "--out", tmp_path / "o")  # fmt: skip
    assert r.exit_code == 2 and "offline" in r.output and "Traceback" not in r.output
    r = run("predict", "--model", tmp_path, "--data", tmp_path / "train.json")
    assert r.exit_code == 2 and "tuned.json" in r.output
