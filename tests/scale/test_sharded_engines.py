"""FSDP and DeepSpeed under the training engine. accelerate 1.x sets up neither on CPU: asked
for FSDP it fails ("no available devices") or quietly runs DDP; asked for DeepSpeed it counts one
process while DeepSpeed runs N (see docs/scale.md). The engine must refuse, naming the reason,
rather than train something other than what the launcher asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.training.config import TrainConfig
from instructrec.training.loop import fit

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def _fit(tmp_path, **kw):
    model = torch.nn.Linear(2, 1)
    data = [torch.randn(2) for _ in range(8)]
    cfg = TrainConfig(output_dir=str(tmp_path), batch_size=4, max_steps=1, progress=False, **kw)
    return fit(model, data, torch.stack, lambda m, b: m(b).pow(2).mean(), cfg)


def test_fsdp_request_is_refused_not_replaced(tmp_path, monkeypatch):
    """What `accelerate launch` with fsdp.yaml sets; refused on CPU and, for now, on GPUs."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(DataError, match=r"(?i)fsdp") as e:
        _fit(tmp_path, device="cpu")
    assert e.value.column == "distributed_type"
    assert not (tmp_path / "checkpoints").exists()  # refused before any work


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU refusal")
def test_deepspeed_request_on_cpu_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(DataError, match="deepspeed, which accelerate does not run on CPU"):
        _fit(tmp_path)


def test_plain_runs_are_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    assert _fit(tmp_path, device="cpu").steps == 1


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")
def test_accelerate_launch_with_the_shipped_fsdp_config_fails_fast_on_cpu(tmp_path):
    """The real launcher with configs/accelerate/fsdp.yaml and 2 processes: both ranks stop
    with the engine's message (about 15 s), instead of running DDP while calling it FSDP."""
    out = tmp_path / "two.json"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(CONFIGS / "fsdp.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        "29551",
        "-m",
        "instructrec.scale.invariant",
        "--steps=2",
        "--n-examples=32",
        "--batch-size=8",
        f"--out={out}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0 and not out.exists()
    message = "the launcher asked for fsdp, which accelerate does not run on CPU"
    # each rank that gets to report says it; the launcher may SIGTERM the second rank first
    assert proc.stderr.count(message) >= 1, proc.stderr[-3000:]
