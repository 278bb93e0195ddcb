"""The generic fine-tuning loop: one `fit` for every backbone and every loss.

In the spirit of nanoGPT's ``train.py``: AdamW over the trainable parameters only (so a LoRA
model trains its adapters), linear warm-up then linear decay, gradient accumulation and
clipping, periodic evaluation with early stopping and best-model restore, checkpoints that make
resume exact, TensorBoard logs and a tqdm bar. It is built on `accelerate.Accelerator`, so the
same code runs in one process (CPU or GPU, fp32/bf16/fp16) and under ``accelerate launch`` or
``torchrun`` with DDP (gloo on CPU). InstructRec (Zhang et al. 2023) instruction-tunes its
backbone with exactly such a loop; what varies between tasks is only ``collate`` and ``loss_fn``.

Data order: epoch ``e`` visits the examples in ``randperm(n, seed + e)``, each process taking
every ``world``-th batch, so the position (epoch, batches consumed) fully determines the rest
of the run and a resumed run is identical to an uninterrupted one.

With several processes, what is logged (TensorBoard, progress bar, ``history``, ``final_loss``)
is pooled over all of them: the train loss is the mean of every process's micro-batch losses,
and ``evaluate``'s metrics are averaged over processes before early stopping looks at them, so
every rank logs the same numbers and takes the same decisions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from instructrec.training.checkpoint import (
    commit_checkpoint,
    latest_checkpoint,
    load_trainable_state,
    load_weights,
    prune_checkpoints,
    resume_latest,
    save_checkpoint,
    save_weights,
    trainable_state,
)
from instructrec.training.config import TrainConfig
from instructrec.training.distributed import (
    _make_accelerator,
    _mean_over_processes,
    _metrics_over_processes,
)

log = logging.getLogger(__name__)  # one line per evaluation (the CLI shows it)

__all__ = ["TrainResult", "fit", "epoch_batches", "move_to_device"]

BEST = "best/model.safetensors"  # the best evaluation's trainable weights (written atomically)
LossFn = Callable[[torch.nn.Module, Any], "torch.Tensor | dict[str, torch.Tensor]"]


@dataclass
class TrainResult:
    """What `fit` reports. ``history`` has one dict per evaluation: step, epoch, lr,
    ``train_loss`` (mean micro-batch loss since the previous evaluation, pooled over all
    processes) and the metrics of ``evaluate`` (averaged over processes)."""

    best_metric: float | None  # best value of config.metric (None without evaluate)
    best_step: int | None  # step at which it was reached
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0  # optimizer steps done in total (including before a resume)
    wall_time: float = 0.0  # seconds spent in this call
    examples_per_s: float = 0.0  # training examples processed per second (all processes)
    final_loss: float | None = None  # mean train loss since the last evaluation, all processes
    stopped_early: bool = False
    output_dir: str = ""


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """Index batches of one epoch for one process: a seeded permutation, cut into batches,
    dealt round-robin to processes (a trailing batch that not every process gets is dropped
    when world > 1, so all processes take the same number of steps)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    order = torch.randperm(n, generator=g).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if world > 1:
        batches = batches[: len(batches) // world * world]
    return batches[rank::world]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Recursively move tensors in dicts/lists/tuples (and objects with ``.to``) to device."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not isinstance(batch, str):
        return type(batch)(move_to_device(v, device) for v in batch)
    if hasattr(batch, "to") and callable(batch.to) and hasattr(batch, "keys"):  # BatchEncoding
        return batch.to(device)
    return batch


def _loss_of(out: Any) -> tuple[torch.Tensor, dict[str, float]]:
    if isinstance(out, dict):
        extras = {
            k: float(v.detach()) if torch.is_tensor(v) else float(v)
            for k, v in out.items()
            if k != "loss"
        }
        return out["loss"], extras
    return out, {}


def _improved(value: float, best: float | None, greater: bool) -> bool:
    if best is None:
        return True
    return value > best if greater else value < best


def fit(
    model: torch.nn.Module,
    train_data: Sequence,
    collate: Callable[[list], Any],
    loss_fn: LossFn,
    config: TrainConfig,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``model`` in place; return a `TrainResult`.

    ``collate(list_of_examples)`` builds a batch (tensors are moved to the device);
    ``loss_fn(model, batch)`` returns a scalar loss or a dict with ``"loss"`` (other entries are
    logged). ``evaluate(model)`` (optional, called in eval mode under no_grad) returns metrics,
    of which ``config.metric`` drives early stopping and the best-model restore. Without it,
    checkpoints are still written every ``eval_every`` steps but nothing stops early.
    """
    from accelerate.utils import set_seed

    t0 = time.perf_counter()
    out_dir = Path(config.output_dir)
    acc = _make_accelerator(config)
    rank, world, main = acc.process_index, acc.num_processes, acc.is_main_process
    if main:  # the config is the caller's to record (a run's config.yaml, tune.yaml)
        out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)

    n = len(train_data)
    if n == 0:
        from instructrec.data.errors import DataError

        raise DataError("no training examples")
    n_batches = len(epoch_batches(n, config.batch_size, config.seed, 0, rank, world))
    if n_batches == 0:
        from instructrec.data.errors import DataError

        raise DataError(
            f"{n} training examples are too few for {world} processes x batch {config.batch_size}"
        )
    steps_per_epoch = math.ceil(n_batches / config.grad_accum)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    warmup = math.ceil(config.warmup_ratio * total_steps)

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    model, optimizer = acc.prepare(model, optimizer)
    raw = acc.unwrap_model(model)

    st: dict[str, Any] = {
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "best_metric": None,
        "best_step": None,
        "bad_evals": 0,
        "history": [],
        "stopped": False,
    }
    ckpt = latest_checkpoint(out_dir) if config.resume else None
    if ckpt is not None and str(acc.distributed_type).endswith("DEEPSPEED"):
        from instructrec.data.errors import DataError

        raise DataError(
            f"cannot resume from {ckpt} under DeepSpeed (ZeRO partitions the optimizer state "
            "across processes; checkpoints hold rank 0's): set resume: false or remove it",
            column="resume",
        )
    if ckpt is not None:
        found = resume_latest(
            out_dir, model=raw, optimizer=optimizer, scheduler=scheduler, process_index=rank
        )
        if found is not None:
            ckpt, st = found
            acc.print(f"resumed from {ckpt} (step {st['step']})")

    writer = None
    if main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"))
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total_steps,
        initial=st["step"],
        disable=not (config.progress and main),
        desc="train",
        dynamic_ncols=True,
    )

    def run_eval() -> None:
        """Evaluate (if possible), update early stopping, checkpoint."""
        row: dict[str, Any] = {
            "step": st["step"],
            "epoch": st["epoch"],
            "lr": scheduler.get_last_lr()[0],
        }
        if window:
            row["train_loss"] = _mean_over_processes(acc, window)
        if evaluate is not None:
            model.eval()
            with torch.no_grad(), acc.autocast():
                metrics = _metrics_over_processes(acc, evaluate(raw))
            model.train()
            row.update(metrics)
            if config.metric not in metrics:
                raise KeyError(
                    f"evaluate() returned {sorted(metrics)}, not the early-stopping "
                    f"metric {config.metric!r}"
                )
            value = float(metrics[config.metric])
            if _improved(value, st["best_metric"], config.greater_is_better):
                st.update(best_metric=value, best_step=st["step"], bad_evals=0)
                if main:
                    (out_dir / "best").mkdir(exist_ok=True)
                    save_weights(trainable_state(raw), out_dir / BEST)
            else:
                st["bad_evals"] += 1
            if writer is not None:
                for k, v in metrics.items():
                    writer.add_scalar(f"eval/{k}", v, st["step"])
        st["history"].append(row)
        if main:
            shown = ", ".join(
                f"{k} {v:.4f}"
                for k, v in row.items()
                if k not in ("step", "epoch", "lr") and isinstance(v, int | float)
            )
            log.info("train step %d/%d: %s", st["step"], total_steps, shown or "no metrics")
        if config.patience and st["bad_evals"] >= config.patience:
            st["stopped"] = True
        acc.wait_for_everyone()
        ckpt_dir = out_dir / "checkpoints" / f"step-{st['step']}"
        save_checkpoint(
            ckpt_dir,
            model=raw,
            optimizer=optimizer,
            scheduler=scheduler,
            state=st,
            process_index=rank,
            is_main=main,
            commit=False,
        )
        acc.wait_for_everyone()  # every process's RNG state is on disk
        if main:
            commit_checkpoint(ckpt_dir)
            prune_checkpoints(out_dir, config.save_total_limit)
        acc.wait_for_everyone()

    model.train()
    window: list[float] = []  # this process's micro-batch losses since the last evaluation
    log_window: list[float] = []  # ... and since the last log line
    last_logged_loss: float | None = None
    seen = 0
    t_train = time.perf_counter()
    done = st["stopped"] or st["step"] >= total_steps
    while not done:  # max_steps (or epochs x steps_per_epoch) bounds the loop
        batches = epoch_batches(n, config.batch_size, config.seed, st["epoch"], rank, world)
        i = st["batch_in_epoch"]
        while i < len(batches) and not done:
            group = batches[i : i + config.grad_accum]
            for j, idx in enumerate(group):
                batch = move_to_device(collate([train_data[k] for k in idx]), acc.device)
                sync = j == len(group) - 1
                ctx = acc.no_sync(model) if (world > 1 and not sync) else nullcontext()
                with ctx, acc.autocast():
                    loss, extras = _loss_of(loss_fn(model, batch))
                    acc.backward(loss / len(group))
                window.append(float(loss.detach()))
                log_window.append(window[-1])
                seen += len(idx) * world
            if config.max_grad_norm > 0:
                acc.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            i += len(group)
            st["step"] += 1
            st["batch_in_epoch"] = i
            bar.update(1)
            if st["step"] % config.log_every == 0 and log_window:
                # mean over all processes' micro-batches since the last log (a collective)
                last_logged_loss = _mean_over_processes(acc, log_window)
                extras = _metrics_over_processes(acc, extras)
                log_window = []
                bar.set_postfix(loss=f"{last_logged_loss:.4f}")
                if writer is not None:
                    writer.add_scalar("train/loss", last_logged_loss, st["step"])
                    writer.add_scalar("train/lr", scheduler.get_last_lr()[0], st["step"])
                    for k, v in extras.items():
                        writer.add_scalar(f"train/{k}", v, st["step"])
            end_of_epoch = i >= len(batches)
            if end_of_epoch:
                st["epoch"] += 1
                st["batch_in_epoch"] = 0
            done = st["step"] >= total_steps
            if st["step"] % config.eval_every == 0 or end_of_epoch or done:
                run_eval()
                if window:  # run_eval pooled it over processes into the history row
                    last_logged_loss = st["history"][-1]["train_loss"]
                window = []
                done = done or st["stopped"]
    train_time = time.perf_counter() - t_train
    bar.close()

    if evaluate is not None and st["best_step"] is not None and (out_dir / BEST).exists():
        acc.wait_for_everyone()
        load_trainable_state(raw, load_weights(out_dir / BEST))
    if writer is not None:
        writer.close()
    model.eval()
    return TrainResult(
        best_metric=st["best_metric"],
        best_step=st["best_step"],
        history=st["history"],
        steps=st["step"],
        wall_time=time.perf_counter() - t0,
        examples_per_s=seen / train_time if train_time > 0 else 0.0,
        final_loss=last_logged_loss,
        stopped_early=bool(st["stopped"]),
        output_dir=str(out_dir),
    )
