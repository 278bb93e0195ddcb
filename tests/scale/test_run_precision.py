"""`training.mixed_precision` in a run file (`instructrec train --config`): it loads, round-trips,
is checked when read (the error names the key), and reaches the training engine, where bf16
autocast runs on CPU too."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.config import RunConfig
from instructrec.data.errors import DataError
from instructrec.training.config import TrainConfig


def test_mixed_precision_loads_and_round_trips(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("training:\n  mixed_precision: bf16\n  device: cpu\n")
    cfg = RunConfig.from_yaml(p)
    assert cfg.training.mixed_precision == "bf16" and cfg.training.device == "cpu"
    cfg.to_yaml(tmp_path / "again.yaml")
    assert RunConfig.from_yaml(tmp_path / "again.yaml") == cfg
    assert RunConfig().training.mixed_precision == "no"  # the default: full precision


@pytest.mark.parametrize("text", ["mixed_precision: no", "mixed_precision: 'no'"])
def test_bare_no_means_no(tmp_path, text):
    """YAML 1.1 reads a bare `no` as false; it means "no mixed precision" all the same."""
    p = tmp_path / "run.yaml"
    p.write_text(f"training:\n  {text}\n")
    assert RunConfig.from_yaml(p).training.mixed_precision == "no"
    p.write_text(f"output_dir: x\n{text}\n")
    assert TrainConfig.from_yaml(p).mixed_precision == "no"


@pytest.mark.parametrize(
    "line,key", [("mixed_precision: fp8", "mixed_precision"), ("device: gpu", "device")]
)
def test_bad_value_is_an_error_naming_the_key(tmp_path, line, key):
    p = tmp_path / "run.yaml"
    p.write_text(f"training:\n  {line}\n")
    with pytest.raises(DataError, match=rf"run\.yaml.*training\.{key} must be one of") as e:
        RunConfig.from_yaml(p)
    assert e.value.column == f"training.{key}"
    res = CliRunner().invoke(main, ["train", "--config", str(p), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and f"training.{key}" in res.output


@pytest.mark.slow
def test_train_command_runs_bf16_autocast_on_cpu(tiny_dataset, tmp_path):
    """`instructrec train --config` with training.mixed_precision: bf16, on CPU: the value
    reaches TrainConfig, the reranker's forward passes compute in bfloat16 (accelerate's CPU
    autocast), and training finishes with a finite loss. About 10 s."""
    from instructrec.data import write_atomic

    write_atomic(tiny_dataset, tmp_path / "data", name="tiny")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"data:\n  source: {tmp_path / 'data'}\n"
        "retriever: itemknn\npriors: [itemknn, pop]\n"
        "backbone: {lora_r: 4, max_query_len: 32, cf_dim: 0}\n"
        "reranker: {n_random: 4, n_hard: 2, hard_pool: 10, valid_rows: 20, copies: 1, "
        "slots: [P1I0]}\n"
        "training:\n  batch_size: 16\n  eval_every: 2\n  progress: false\n  device: cpu\n"
        "  mixed_precision: bf16\n"
    )
    dtypes: set[torch.dtype] = set()

    def hook(module, args, out):
        if isinstance(module, torch.nn.Linear) and torch.is_tensor(out) and out.requires_grad:
            dtypes.add(out.dtype)  # training forward passes only (evaluation has no grad)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        out = tmp_path / "run"
        res = CliRunner().invoke(
            main,
            ["train", "--config", str(cfg), "--out", str(out), "--set", "training.max_steps=2"],
        )
    finally:
        handle.remove()
    assert res.exit_code == 0, res.output
    assert not (out / "training" / "config.yaml").exists()  # the run holds one config
    # the model folder (servable on its own) keeps a copy: the same bytes, nothing derived
    assert (out / "model" / "config.yaml").read_bytes() == (out / "config.yaml").read_bytes()
    assert dtypes == {torch.bfloat16}
    training = json.loads((out / "manifest.json").read_text())["training"]
    assert training["steps"] == 2
    assert math.isfinite(training["history"][-1]["train_loss"])
    assert RunConfig.from_yaml(out / "config.yaml").training.mixed_precision == "bf16"
