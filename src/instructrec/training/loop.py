"""The generic fine-tuning loop: one `fit` for every backbone and every loss.

In the spirit of nanoGPT's ``train.py``: AdamW over the trainable parameters only (so a LoRA
model trains its adapters), linear warm-up then linear decay, gradient accumulation and
clipping, periodic evaluation with early stopping and best-model restore, checkpoints that make
resume exact, TensorBoard logs and a tqdm bar. It is built on `accelerate.Accelerator`, so the
same code runs in one process (CPU or GPU, fp32/bf16/fp16) and under ``accelerate launch`` or
``torchrun`` with DDP (gloo on CPU). InstructRec (Zhang et al. 2023) instruction-tunes its
backbone with exactly such a loop; what varies between tasks is only ``collate`` and ``loss_fn``.

Data order (`training.schedule.epoch_batches`): epoch ``e`` visits the examples in
``randperm(n, seed + e)``, each process taking every ``world``-th batch, so the position
(epoch, batches consumed) fully determines the rest of the run and a resumed run is identical
to an uninterrupted one.

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
from instructrec.training.schedule import (
    batches_per_epoch,
    epoch_batches,
    warmup_then_linear_decay,
)

log = logging.getLogger(__name__)  # one line per evaluation (the CLI shows it)

__all__ = ["TrainResult", "fit", "move_to_device"]

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


def _new_state() -> dict[str, Any]:
    """The loop's position and early-stopping record (what a checkpoint saves)."""
    return {
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "best_metric": None,
        "best_step": None,
        "bad_evals": 0,
        "history": [],
        "stopped": False,
    }


def _resume(acc, config: TrainConfig, out_dir: Path, raw, optimizer, scheduler, st: dict):
    """The state of the latest checkpoint under ``out_dir`` (weights, optimizer, scheduler
    and RNG restored in place) when ``config.resume`` and one exists; else ``st``."""
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
            out_dir,
            model=raw,
            optimizer=optimizer,
            scheduler=scheduler,
            process_index=acc.process_index,
        )
        if found is not None:
            ckpt, st = found
            acc.print(f"resumed from {ckpt} (step {st['step']})")
    return st


class _Loop:
    """What the steps of one `fit` share: the prepared model (``raw`` unwrapped), optimizer,
    scheduler, the state ``st``, the loss windows, TensorBoard and the progress bar."""

    def __init__(self, acc, config, model, params, optimizer, scheduler, st, total_steps):
        self.acc, self.config, self.model, self.params = acc, config, model, params
        self.raw = acc.unwrap_model(model)
        self.optimizer, self.scheduler, self.st = optimizer, scheduler, st
        self.total_steps = total_steps
        self.out_dir = Path(config.output_dir)
        self.rank, self.world, self.main = acc.process_index, acc.num_processes, acc.is_main_process
        self.writer = None
        if self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tb"))
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total_steps,
            initial=st["step"],
            disable=not (config.progress and self.main),
            desc="train",
            dynamic_ncols=True,
        )
        self.window: list[float] = []  # this process's micro-batch losses since the last eval
        self.log_window: list[float] = []  # ... and since the last log line
        self.last_logged_loss: float | None = None
        self.seen = 0  # training examples processed, all processes

    def step(self, group: list[list[int]], train_data: Sequence, collate, loss_fn) -> dict:
        """One optimizer step over the micro-batches ``group`` (gradient accumulation, DDP
        gradient sync on the last one only, clipping); the last micro-batch's extras."""
        acc, config = self.acc, self.config
        extras: dict[str, float] = {}
        for j, idx in enumerate(group):
            batch = move_to_device(collate([train_data[k] for k in idx]), acc.device)
            sync = j == len(group) - 1
            ctx = acc.no_sync(self.model) if (self.world > 1 and not sync) else nullcontext()
            with ctx, acc.autocast():
                loss, extras = _loss_of(loss_fn(self.model, batch))
                acc.backward(loss / len(group))
            self.window.append(float(loss.detach()))
            self.log_window.append(self.window[-1])
            self.seen += len(idx) * self.world
        if config.max_grad_norm > 0:
            acc.clip_grad_norm_(self.params, config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.st["step"] += 1
        self.bar.update(1)
        return extras

    def log_train(self, extras: dict) -> None:
        """The train loss since the last log line, pooled over processes (a collective),
        to the bar and TensorBoard."""
        acc, step = self.acc, self.st["step"]
        self.last_logged_loss = _mean_over_processes(acc, self.log_window)
        extras = _metrics_over_processes(acc, extras)
        self.log_window = []
        self.bar.set_postfix(loss=f"{self.last_logged_loss:.4f}")
        if self.writer is not None:
            self.writer.add_scalar("train/loss", self.last_logged_loss, step)
            self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], step)
            for k, v in extras.items():
                self.writer.add_scalar(f"train/{k}", v, step)

    def evaluate(self, evaluate) -> None:
        """One history row (train loss since the last one, ``evaluate``'s metrics), the best
        weights kept, early stopping decided, a checkpoint written."""
        acc, config, st = self.acc, self.config, self.st
        row: dict[str, Any] = {
            "step": st["step"],
            "epoch": st["epoch"],
            "lr": self.scheduler.get_last_lr()[0],
        }
        if self.window:
            row["train_loss"] = _mean_over_processes(acc, self.window)
        if evaluate is not None:
            row.update(self._metrics(evaluate))
        st["history"].append(row)
        if self.main:
            shown = ", ".join(
                f"{k} {v:.4f}"
                for k, v in row.items()
                if k not in ("step", "epoch", "lr") and isinstance(v, int | float)
            )
            log.info("train step %d/%d: %s", st["step"], self.total_steps, shown or "no metrics")
        if config.patience and st["bad_evals"] >= config.patience:
            st["stopped"] = True
        self._checkpoint()
        if self.window:  # pooled over processes into the history row
            self.last_logged_loss = st["history"][-1]["train_loss"]
        self.window = []

    def _metrics(self, evaluate) -> dict[str, float]:
        """``evaluate``'s metrics (eval mode, no grad, averaged over processes); the best
        weights saved when ``config.metric`` improved."""
        acc, config, st = self.acc, self.config, self.st
        self.model.eval()
        with torch.no_grad(), acc.autocast():
            metrics = _metrics_over_processes(acc, evaluate(self.raw))
        self.model.train()
        if config.metric not in metrics:
            raise KeyError(
                f"evaluate() returned {sorted(metrics)}, not the early-stopping "
                f"metric {config.metric!r}"
            )
        value = float(metrics[config.metric])
        if _improved(value, st["best_metric"], config.greater_is_better):
            st.update(best_metric=value, best_step=st["step"], bad_evals=0)
            if self.main:
                (self.out_dir / "best").mkdir(exist_ok=True)
                save_weights(trainable_state(self.raw), self.out_dir / BEST)
        else:
            st["bad_evals"] += 1
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"eval/{k}", v, st["step"])
        return metrics

    def _checkpoint(self) -> None:
        """Every process's state to ``checkpoints/step-N``, committed once all are on disk."""
        acc = self.acc
        acc.wait_for_everyone()
        ckpt_dir = self.out_dir / "checkpoints" / f"step-{self.st['step']}"
        save_checkpoint(
            ckpt_dir,
            model=self.raw,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            state=self.st,
            process_index=self.rank,
            is_main=self.main,
            commit=False,
        )
        acc.wait_for_everyone()  # every process's RNG state is on disk
        if self.main:
            commit_checkpoint(ckpt_dir)
            prune_checkpoints(self.out_dir, self.config.save_total_limit)
        acc.wait_for_everyone()

    def close(self, evaluate) -> None:
        """The best weights back into the model (when an evaluation saved them); logs shut."""
        self.bar.close()
        best = self.out_dir / BEST
        if evaluate is not None and self.st["best_step"] is not None and best.exists():
            self.acc.wait_for_everyone()
            load_trainable_state(self.raw, load_weights(best))
        if self.writer is not None:
            self.writer.close()
        self.model.eval()


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
    rank, world = acc.process_index, acc.num_processes
    if acc.is_main_process:  # the config is the caller's to record (run's config.yaml, ...)
        out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)

    # the schedule: max_steps, or epochs x optimizer steps per epoch
    n = len(train_data)
    n_batches = batches_per_epoch(n, config, rank, world)
    total_steps = config.max_steps or math.ceil(n_batches / config.grad_accum) * config.epochs
    warmup = math.ceil(config.warmup_ratio * total_steps)

    # AdamW over the trainable parameters only (a LoRA model trains its adapters)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_then_linear_decay(warmup, total_steps)
    )
    model, optimizer = acc.prepare(model, optimizer)
    st = _resume(acc, config, out_dir, acc.unwrap_model(model), optimizer, scheduler, _new_state())
    loop = _Loop(acc, config, model, params, optimizer, scheduler, st, total_steps)

    model.train()
    t_train = time.perf_counter()
    done = st["stopped"] or st["step"] >= total_steps
    while not done:  # max_steps (or epochs x steps_per_epoch) bounds the loop
        batches = epoch_batches(n, config.batch_size, config.seed, st["epoch"], rank, world)
        i = st["batch_in_epoch"]
        while i < len(batches) and not done:
            group = batches[i : i + config.grad_accum]
            extras = loop.step(group, train_data, collate, loss_fn)
            i += len(group)
            st["batch_in_epoch"] = i
            if st["step"] % config.log_every == 0 and loop.log_window:
                loop.log_train(extras)
            end_of_epoch = i >= len(batches)
            if end_of_epoch:
                st["epoch"] += 1
                st["batch_in_epoch"] = 0
            done = st["step"] >= total_steps
            if st["step"] % config.eval_every == 0 or end_of_epoch or done:
                loop.evaluate(evaluate)
                done = done or st["stopped"]
    train_time = time.perf_counter() - t_train
    loop.close(evaluate)
    return TrainResult(
        best_metric=st["best_metric"],
        best_step=st["best_step"],
        history=st["history"],
        steps=st["step"],
        wall_time=time.perf_counter() - t0,
        examples_per_s=loop.seen / train_time if train_time > 0 else 0.0,
        final_loss=loop.last_logged_loss,
        stopped_early=bool(st["stopped"]),
        output_dir=str(out_dir),
    )
