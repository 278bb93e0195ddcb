"""Reproducible, resumable, atomic runs through the real CLI (issue 18, point 7).

Same-seed `tune` and `train` give bit-identical weights; an ``--out`` holding a run is refused
unless ``--overwrite`` or ``--resume``; a `train` killed with SIGKILL after its first
checkpoint and re-run with ``--resume`` ends with the weights and metrics of an uninterrupted
run; a command that fails leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data.errors import DataError

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    {"instruction": f"Is {t} a comedy?", "output": "Yes" if "Comedy" in t else "No"}
    for t in [
        "Toy Story (1995) - Animation, Comedy",
        "Heat (1995) - Action, Crime",
        "Casino (1995) - Drama, Crime",
        "Babe (1995) - Comedy",
        "Jumanji (1995) - Adventure",
        "Scream (1996) - Horror",
        "Emma (1996) - Romance, Comedy",
        "Fargo (1996) - Crime, Drama",
    ]
]
TINY_RUN = """data:
  source: {data}
retriever: itemknn
priors: [itemknn, pop]
backbone:
  lora_r: 4
  max_query_len: 32
reranker:
  n_random: 5
  n_hard: 2
  hard_pool: 10
  valid_rows: 20
  copies: 1
  slots: [P1I0, P1I2]
  max_instances: 64
training:
  lr: 0.01
  max_steps: 8
  eval_every: 1
  batch_size: 16
  patience: 0
  metric: ndcg@5
  device: cpu
  progress: false
"""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tensors(folder: Path) -> dict[str, bytes]:
    """Every safetensors file under ``folder`` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.safetensors")}


def leftovers(out: Path) -> list[str]:
    """Anything a run for ``out`` left beside it (the partial folder, a moved-aside old run)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# ---------------------------------------------------------------------------- tune
@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    import torch

    from instructrec.testing.tiny import tiny_causal

    torch.set_num_threads(1)
    return tiny_causal(tmp_path_factory.mktemp("gpt2"), [r["instruction"] for r in ROWS])


def tune_args(data, model, out, seed, *extra):
    return [
        "tune", "--data", data, "--backbone", model, "--out", out, "--set", f"train.seed={seed}",
        "--set", "train.epochs=2", "--set", "train.batch_size=4", "--set", "train.device=cpu",
        "--no-progress", "--set", "train.lr=0.05", "--set", "valid_fraction=0.25", *extra,
    ]  # fmt: skip


def test_same_seed_tune_runs_are_bit_identical(tmp_path, tiny_gpt2):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(ROWS))
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        r = run(*tune_args(data, tiny_gpt2, tmp_path / name, seed))
        assert r.exit_code == 0, r.output
    a, b, c = (tensors(tmp_path / n / "model") for n in "abc")
    assert a and a == b  # LoRA adapters are created after the seed is set
    assert a.keys() == c.keys() and a != c  # the seed matters
    metrics = [json.loads((tmp_path / n / "metrics.json").read_text())["valid"] for n in "ab"]
    assert metrics[0] == metrics[1]


def test_tune_refuses_a_run_in_out_unless_told(tmp_path, tiny_gpt2):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(ROWS))
    out = tmp_path / "run"
    assert run(*tune_args(data, tiny_gpt2, out, 1)).exit_code == 0
    before = tensors(out / "model")
    r = run(*tune_args(data, tiny_gpt2, out, 2, "--set", "train.lr=0.5"))
    assert r.exit_code == 2 and "--overwrite" in r.output and "--resume" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert tensors(out / "model") == before  # untouched
    r = run(*tune_args(data, tiny_gpt2, out, 2, "--overwrite", "--resume"))
    assert r.exit_code == 2 and "choose one" in r.output
    r = run(*tune_args(data, tiny_gpt2, out, 1, "--set", "train.lr=0.5", "--resume"))  # another run
    assert r.exit_code == 2 and "lr: 0.05 -> 0.5" in r.output and "--overwrite" in r.output
    r = run(*tune_args(data, tiny_gpt2, out, 1, "--resume"))  # the same run: nothing left
    assert r.exit_code == 0, r.output
    assert tensors(out / "model") == before and leftovers(out) == []
    r = run(*tune_args(data, tiny_gpt2, out, 2, "--overwrite"))
    assert r.exit_code == 0, r.output
    assert tensors(out / "model") != before and leftovers(out) == []


def test_a_failed_tune_leaves_nothing(tmp_path, tiny_gpt2, monkeypatch):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(ROWS))

    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("instructrec.training.tune.fit", broken)
    out = tmp_path / "run"
    r = run(*tune_args(data, tiny_gpt2, out, 1))
    assert r.exit_code != 0 and not out.exists() and leftovers(out) == []


# ---------------------------------------------------------------------------- train
@pytest.fixture()
def tiny_config(tmp_path):
    from instructrec.data import write_atomic
    from instructrec.testing.datasets import synthetic_dataset

    write_atomic(synthetic_dataset(), tmp_path / "data", name="tiny")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(TINY_RUN.format(data=tmp_path / "data"))
    return cfg


def train_cmd(cfg: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "instructrec.cli", "train", "--config", str(cfg),
            "--out", str(out), *extra]  # fmt: skip


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env.update(TOKENIZERS_PARALLELISM="false")
    return env


def train_ok(cfg: Path, out: Path, *extra) -> str:
    p = subprocess.run(
        train_cmd(cfg, out, *extra), env=subprocess_env(), capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout + p.stderr


def outcome(out: Path) -> tuple[dict, dict, dict]:
    """(weights of the saved model, of the last checkpoint, the training record)."""
    last = sorted((out / "training" / "checkpoints").glob("step-*"), key=lambda p: p.name)[-1]
    training = json.loads((out / "manifest.json").read_text())["training"]
    record = {k: training[k] for k in ("best_metric", "best_step", "steps", "history")}
    return tensors(out / "model"), tensors(last), record


@pytest.mark.slow
def test_train_same_seed_identical_and_sigkill_resume_matches(tmp_path, tiny_config):
    straight = tmp_path / "a"
    for name in "ab":  # one process after the other: the seed, not a fresh process, decides
        r = run("train", "--config", tiny_config, "--out", tmp_path / name)
        assert r.exit_code == 0, r.output
    expected = outcome(straight)
    assert expected[0] and expected[2]["steps"] == 8
    assert outcome(tmp_path / "b") == expected  # same seed, bit-identical
    # the killed run is a subprocess with OMP_NUM_THREADS=1: compare it with a straight run of
    # the same process settings (a different thread count may round differently: AMD EPYC)
    train_ok(tiny_config, tmp_path / "sub")
    expected = outcome(tmp_path / "sub")
    assert expected[2]["steps"] == 8

    out = tmp_path / "killed"
    partial = tmp_path / ".killed.partial"
    proc = subprocess.Popen(
        train_cmd(tiny_config, out),
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 900
    checkpoints = partial / "training" / "checkpoints"
    while not any(p.name[5:].isdigit() for p in checkpoints.glob("step-*")):
        assert proc.poll() is None, "train ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and partial.exists()  # nothing half-made under the real name
    p = subprocess.run(train_cmd(tiny_config, out), env=subprocess_env(), capture_output=True)
    assert p.returncode == 2 and b"--resume" in p.stderr + p.stdout  # the leftover is named
    log = train_ok(tiny_config, out, "--resume")
    resumed = re.search(r"resumed from \S*step-(\d+) \(step (\d+)\)", log)
    assert resumed and 1 <= int(resumed[2]) < 8, log[-2000:]  # it continued mid-training
    assert not partial.exists()
    assert outcome(out) == expected


def test_train_refuses_an_existing_run(tmp_path, tiny_config):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    r = run("train", "--config", tiny_config, "--out", out)
    assert r.exit_code == 2 and "--overwrite" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert (out / "manifest.json").read_text() == "{}" and leftovers(out) == []


def test_quickstart_refuses_an_existing_run(tmp_path):
    out = tmp_path / "qs"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = run("quickstart", "--fast", "--out", out)
    assert r.exit_code == 2 and "--overwrite" in r.output and "--resume" in r.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and leftovers(out) == []


@pytest.mark.slow
def test_quickstart_resumes_a_crashed_run_to_the_same_model(tmp_path, tiny_config, monkeypatch):
    """quickstart's wiring (train into the partial folder, evaluate there, rename): a crash
    after the third checkpoint, then ``resume``, gives the uninterrupted run's model."""
    import instructrec.cli.quickstart as qs
    import instructrec.data
    import instructrec.training.loop as loop
    from instructrec.config import RunConfig
    from instructrec.testing.datasets import synthetic_dataset

    monkeypatch.setattr(
        qs,
        "quickstart_config",
        lambda fast=False, overrides=(): RunConfig.from_yaml(tiny_config, overrides),
    )
    monkeypatch.setattr(instructrec.data, "load_movielens_100k", synthetic_dataset)

    def evaluate(rec, cfg, dataset, split, work, fast, echo, fitted=None):
        (work / "eval").mkdir()
        return {}

    monkeypatch.setattr(qs, "_evaluate", evaluate)
    qs.run_quickstart(str(tmp_path / "a"), fast=True, echo=lambda *_: None)
    prune, calls = loop.prune_checkpoints, []

    def crash_on_third(*args):
        prune(*args)
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")

    monkeypatch.setattr(loop, "prune_checkpoints", crash_on_third)
    out = tmp_path / "b"
    with pytest.raises(RuntimeError, match="power cut"):
        qs.run_quickstart(str(out), fast=True, echo=lambda *_: None)
    monkeypatch.setattr(loop, "prune_checkpoints", prune)
    assert not out.exists() and (tmp_path / ".b.partial" / "training" / "checkpoints").is_dir()
    with pytest.raises(DataError, match="--resume"):
        qs.run_quickstart(str(out), fast=True, echo=lambda *_: None)
    res = qs.run_quickstart(str(out), fast=True, echo=lambda *_: None, resume=True)
    assert (out / "eval").is_dir() and leftovers(out) == []
    assert res["manifest"]["training"]["steps"] == 8
    assert outcome(out) == outcome(tmp_path / "a")
