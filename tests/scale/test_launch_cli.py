"""The real CLI under `accelerate launch` with 2 CPU processes (TRL style: drive the command,
not a re-implementation): `python -m instructrec.cli tune` on a tiny T5, DDP over gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "accelerate" / "cpu_ddp_2proc.yaml"


@pytest.mark.slow
def test_accelerate_launch_tune_two_processes(tmp_path):
    from instructrec.models.lm_load import load_scorer
    from instructrec.testing.tiny import tiny_t5

    backbone = tiny_t5(tmp_path / "t5")
    rows = [
        (
            f"Is movie {i} a comedy? Genre: {'Comedy' if i % 2 else 'Drama'}",
            "yes" if i % 2 else "no",
        )
        for i in range(40)
    ]
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{q}\t{a}\n" for q, a in rows))
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(CONFIG),
        "--main_process_port",
        "29541",
        "-m",
        "instructrec.cli",
        "tune",
        "--data",
        str(data),
        "--backbone",
        str(backbone),
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.device=cpu",
        "--out",
        str(out),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # 36 training rows in batches of 4 = 9 batches; 2 processes take 4 steps of 2 x 4 rows
    # (one process would take 9): the run really was data-parallel.
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 36 and metrics["steps"] == 4
    assert sorted(p.name for p in (out / "checkpoints" / "step-4").glob("rng-*")) == [
        "rng-0.json",
        "rng-0.safetensors",
        "rng-1.json",
        "rng-1.safetensors",
    ]
    scorer = load_scorer(out / "model" / "lm")  # rank 0 saved a loadable model
    assert scorer is not None
