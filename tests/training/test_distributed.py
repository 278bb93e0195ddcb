"""`fit` under torchrun with 2 CPU processes (DDP over gloo): replicas stay in sync, resume works."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from instructrec.training.config import TrainConfig
    from instructrec.training.loop import fit

    out = sys.argv[1]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    data = [(x[i], y[i]) for i in range(64)]

    def collate(rows):
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])

    def mse(m, b):
        return torch.nn.functional.mse_loss(m(b[0]).squeeze(-1), b[1])

    losses = []  # this process's micro-batch losses, in order

    def loss_fn(m, b):
        loss = mse(m, b)
        losses.append(float(loss.detach()))
        return loss

    import os
    import torch.distributed as dist
    rank = int(os.environ.get("RANK", "0"))  # the process group starts inside fit()
    cfg = TrainConfig(output_dir=out, lr=2e-2, batch_size=4, epochs=3, eval_every=4,
                      log_every=3, warmup_ratio=0.0, progress=False, device="cpu")
    # "rank" differs between processes on purpose: the engine must log and decide on the mean
    full = lambda m: {"loss": float(mse(m, collate(data))), "rank": float(rank)}
    res = fit(model, data, collate, loss_fn, cfg, evaluate=full)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"weights": flat.tolist(), "steps": res.steps,
                   "world": dist.get_world_size() if dist.is_initialized() else 1,
                   "first": res.history[0]["loss"], "best": res.best_metric,
                   "best_step": res.best_step, "losses": losses, "history": res.history,
                   "final_loss": res.final_loss}, f)
    from instructrec.training.distributed import end_distributed
    end_distributed()
""")


def _tb_scalars(directory, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(script),
        str(out),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert r0["weights"] == r1["weights"]  # gradients were all-reduced
    assert r0["steps"] == 3 * 8  # 16 batches of 4 per epoch, 8 per process
    assert r0["best"] < r0["first"]
    assert_logs_are_pooled_over_processes(out, r0, r1)


def assert_logs_are_pooled_over_processes(out, r0, r1):
    """What is logged is the mean over both processes, not rank 0's view: the train loss in
    TensorBoard (every log_every=3 steps: the steps since the previous log), in the history
    (every eval_every=4 steps: the steps since the previous evaluation) and as final_loss,
    and evaluate()'s metrics. Tolerance 1e-6 relative: TensorBoard stores float32; the
    history's float64 means agree to ~1e-12."""
    import numpy as np

    per_step = (np.asarray(r0["losses"]) + np.asarray(r1["losses"])) / 2  # 1 micro-batch/step
    assert len(per_step) == 24 and r0["losses"] != r1["losses"]  # the ranks really differ

    def mean(first, last):  # steps first..last, 1-based
        return float(per_step[first - 1 : last].mean())

    tb = _tb_scalars(out / "tb", "train/loss")
    assert sorted(tb) == list(range(3, 25, 3))
    for step, value in tb.items():
        assert value == pytest.approx(mean(step - 2, step), rel=1e-6)
    assert r0["history"] == r1["history"]  # every rank logged the same rows
    rows = r0["history"]
    assert [r["step"] for r in rows] == list(range(4, 25, 4))
    for row in rows:
        assert row["train_loss"] == pytest.approx(mean(row["step"] - 3, row["step"]), rel=1e-9)
        assert row["rank"] == 0.5  # evaluate() said 0 on rank 0 and 1 on rank 1
    assert r0["final_loss"] == r1["final_loss"] == rows[-1]["train_loss"]
    assert (r0["best"], r0["best_step"]) == (r1["best"], r1["best_step"])
    eval_tb = _tb_scalars(out / "tb", "eval/rank")
    assert set(eval_tb.values()) == {0.5}


SCORER_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    import torch.distributed as dist
    from instructrec.models.lora import LoraSettings
    from instructrec.models.seq2seq import Seq2SeqScorer
    from instructrec.testing.scorer import contract_examples
    from instructrec.training.config import TrainConfig
    from instructrec.training.loop import fit

    model_dir, out = sys.argv[1], sys.argv[2]
    scorer = Seq2SeqScorer.from_pretrained(model_dir, lora=LoraSettings(r=4, dropout=0.0))
    data = contract_examples() * 2
    cfg = TrainConfig(output_dir=out, lr=2e-2, batch_size=2, max_steps=4, warmup_ratio=0.0,
                      progress=False, device="cpu")
    fit(scorer.model, data, list, scorer.rank_loss, cfg)
    flat = torch.cat([p.detach().flatten() for n, p in scorer.model.named_parameters()
                      if "lora_B" in n])
    with open(f"{out}/rank{dist.get_rank()}.json", "w") as f:
        json.dump({"lora": flat.tolist()}, f)
""")


@pytest.mark.slow
def test_two_process_ddp_trains_a_seq2seq_scorer(tmp_path):
    """The scorer's encoder-once path (encoder called outside the DDP wrapper) still syncs."""
    from instructrec.testing.scorer import ITEM_TEXTS, contract_examples
    from instructrec.testing.tiny import tiny_t5

    model_dir = tiny_t5(tmp_path / "t5", ITEM_TEXTS + [e.instruction for e in contract_examples()])
    script = tmp_path / "train.py"
    script.write_text(SCORER_SCRIPT)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29518",
        str(script),
        str(model_dir),
        str(out),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "rank0.json").read_text())["lora"]
    r1 = json.loads((out / "rank1.json").read_text())["lora"]
    assert r0 == r1 and any(abs(v) > 0 for v in r0)  # B starts at 0: it trained, in sync
