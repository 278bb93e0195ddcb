"""Invariants of data-parallel training, through the real engine (TRL tests/invariant style):
2 processes x batch 8 == 1 process x batch 16, and batch 1 x 8 accumulation == batch 8 x 1.

The multi-process runs start `accelerate launch` / `torchrun` as subprocesses on CPU (DDP over
gloo), so the same code path as multi-GPU training is exercised here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from instructrec.scale.invariant import ProbeConfig, compare_trajectories, run_probe
from instructrec.training.schedule import epoch_batches

# Tolerance of the loss trajectories: float32 sums in a different order (gloo all-reduce of two
# half-batch gradients, padded vs unpadded micro-batches) differ by ~1e-7; a real divergence
# (unsynchronised replicas, a wrong loss scale, a misdealt batch) is > 1e-3 after one step.
RTOL, ATOL = 1e-4, 1e-5
STEPS = 5
PROBE = dict(steps=STEPS, lr=1e-2, n_examples=96)


def test_two_processes_see_the_batches_of_one():
    """The data-order basis of the invariant: ranks 0 and 1 at batch 8 together take exactly
    the examples of one process at batch 16, step by step."""
    one = epoch_batches(100, 16, seed=3, epoch=0)
    r0 = epoch_batches(100, 8, seed=3, epoch=0, rank=0, world=2)
    r1 = epoch_batches(100, 8, seed=3, epoch=0, rank=1, world=2)
    for step, (a, b) in enumerate(zip(r0, r1, strict=True)):
        assert a + b == one[step]


def test_accumulation_1x8_equals_8x1(tmp_path):
    big = run_probe(ProbeConfig(batch_size=8, grad_accum=1, **PROBE), tmp_path / "a")
    acc = run_probe(ProbeConfig(batch_size=1, grad_accum=8, **PROBE), tmp_path / "b")
    assert big["steps"] == acc["steps"] == STEPS
    assert len(set(big["losses"])) > 1  # the trajectory moves
    diff = compare_trajectories(big, acc, RTOL, ATOL)
    assert diff["max_abs_param_diff"] < 1e-4


def test_comparison_detects_a_different_run(tmp_path):
    """The check can fail: batch 8 is not batch 16, and says at which step they part."""
    a = run_probe(ProbeConfig(batch_size=8, **PROBE), tmp_path / "a")
    b = run_probe(ProbeConfig(batch_size=16, **PROBE), tmp_path / "b")
    with pytest.raises(AssertionError, match="loss differs at step 1"):
        compare_trajectories(a, b, RTOL, ATOL)


def _launch(cmd: list[str], out) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("ACCELERATE_USE_CPU", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def _probe_args(out, **kw) -> list[str]:
    args = {**PROBE, **kw}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in args.items()]
    return ["-m", "instructrec.scale.invariant", *flags, f"--out={out}"]


@pytest.mark.slow
def test_accelerate_launch_2x8_equals_1x16(tmp_path):
    config = os.path.join(
        os.path.dirname(__file__), "..", "..", "configs", "accelerate", "cpu_ddp_2proc.yaml"
    )
    out = tmp_path / "two.json"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        config,
        "--main_process_port",
        "29531",
        *_probe_args(out, batch_size=8),
    ]
    two = _launch(cmd, out)
    assert two["world"] == two["env_world_size"] == 2  # really two processes in one group
    one = run_probe(ProbeConfig(batch_size=16, **PROBE), tmp_path / "one")
    assert one["world"] == 1
    diff = compare_trajectories(one, two, RTOL, ATOL)
    assert diff["max_abs_param_diff"] < 1e-4


@pytest.mark.slow
def test_torchrun_2x4_accumulation_2_equals_1x16(tmp_path):
    """Data parallelism and accumulation together: 2 processes x batch 4 x 2 micro-batches."""
    out = tmp_path / "two.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        *_probe_args(out, batch_size=4, grad_accum=2),
    ]
    two = _launch(cmd, out)
    assert two["world"] == 2 and two["effective_batch"] == 16
    one = run_probe(ProbeConfig(batch_size=16, **PROBE), tmp_path / "one")
    compare_trajectories(one, two, RTOL, ATOL)
