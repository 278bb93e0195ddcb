"""The engine's multi-process side: building the `Accelerator` from a `TrainConfig`, refusing
launchers it would silently replace (FSDP / DeepSpeed on CPU, sharded checkpoints), pooling
losses and metrics over processes, and leaving torch.distributed cleanly. (Split out of
`training.loop`, which re-exports `end_distributed`.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from instructrec.training.config import TrainConfig


def end_distributed() -> None:
    """Leave torch.distributed cleanly at the end of a launched program (`instructrec tune`,
    `train`, the invariant probe): a barrier, then destroy the default process group. A gloo
    group still alive at interpreter exit can abort a rank ("terminate called without an
    active exception", SIGABRT) after all the work is done. No-op outside torch.distributed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _launcher_backend() -> str | None:
    """The engine `accelerate launch` was asked for ("fsdp" or "deepspeed"), else None."""
    import os

    for name in ("deepspeed", "fsdp"):
        if os.environ.get(f"ACCELERATE_USE_{name.upper()}", "false").lower() in ("1", "true"):
            return name
    return None


def _make_accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    from instructrec.data.errors import DataError

    if config.device == "cuda" and not torch.cuda.is_available():
        raise DataError("device 'cuda' requested but no CUDA device is available", column="device")
    _check_launcher(_launcher_backend(), config)
    # A second fit() in the same single process may ask for another precision: start afresh.
    if PartialState._shared_state and not PartialState().use_distributed:
        AcceleratorState._reset_state(reset_partial_state=True)
    # cpu=True also when "auto" finds no GPU: under torchrun / accelerate launch, accelerate
    # only sets up gloo DDP when told cpu=True; otherwise each process trains alone (world 1).
    cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    acc = Accelerator(mixed_precision=config.mixed_precision, cpu=cpu)
    if str(acc.distributed_type).endswith("DEEPSPEED"):
        plugin = acc.state.deepspeed_plugin
        if plugin.zero_stage == 3:
            raise DataError(
                "DeepSpeed ZeRO-3 shards the weights, and this engine saves checkpoints and the "
                "best model from whole (unsharded) weights: not supported yet. Use "
                "configs/accelerate/multi_gpu.yaml (DDP; the right choice for LoRA) or "
                "deepspeed_zero2.yaml",
                column="zero_stage",
            )
        # No dataloader goes through prepare(), so DeepSpeed cannot read the batch size from
        # one (accelerate then refuses to start): the engine deals the batches, so say them.
        ds = plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = config.batch_size
        ds["train_batch_size"] = config.batch_size * acc.num_processes
    return acc


def _check_launcher(backend: str | None, config: TrainConfig) -> None:
    """Refuse what accelerate would silently replace by something else, or what this engine
    cannot do yet, before any work is done."""
    from instructrec.data.errors import DataError

    if backend is None:
        return
    if not torch.cuda.is_available():
        # accelerate 1.x sets up FSDP only over GPUs (XPU, NPU, ...): on CPU its plugin fails
        # ("no available devices") or, with sync_module_states off, it quietly runs DDP over
        # gloo. DeepSpeed on CPU: accelerate counts 1 process while DeepSpeed runs N.
        raise DataError(
            f"the launcher asked for {backend}, which accelerate does not run on CPU (it would "
            "silently train something else): use configs/accelerate/cpu_ddp_2proc.yaml here",
            column="distributed_type",
        )
    if backend == "fsdp":
        raise DataError(
            "FSDP shards the weights, and this engine saves checkpoints and the best model from "
            "whole (unsharded) weights: not supported yet. Use configs/accelerate/multi_gpu.yaml "
            "(DDP; the right choice for LoRA) or deepspeed_zero2.yaml",
            column="distributed_type",
        )
    if config.grad_accum != 1:
        raise DataError(
            f"grad_accum must be 1 under {backend} (got {config.grad_accum}): raise batch_size "
            "instead (DeepSpeed steps on its own accumulation count, 1 in the shipped configs)",
            column="grad_accum",
        )


def _mean_over_processes(acc, values: Sequence[float]) -> float:
    """Mean of ``values`` pooled over all processes (a collective: every rank must call it,
    with the same number of values, as every rank does one micro-batch per batch)."""
    t = torch.tensor([float(sum(values)), float(len(values))], dtype=torch.float64)
    if acc.num_processes > 1:
        t = acc.reduce(t.to(acc.device), reduction="sum").cpu()
    return float(t[0] / t[1])


def _metrics_over_processes(acc, metrics: dict[str, Any]) -> dict[str, float]:
    """``metrics`` averaged over processes (same keys on every rank): every rank then takes the
    same early-stopping and best-model decisions, whether ``evaluate`` scored the whole
    validation set on each rank (identical values, unchanged by the mean) or its own shard."""
    out = {k: float(v) for k, v in metrics.items()}
    if acc.num_processes == 1 or not out:
        return out
    keys = sorted(out)
    t = torch.tensor([out[k] for k in keys], dtype=torch.float64).to(acc.device)
    t = acc.reduce(t, reduction="sum").cpu() / acc.num_processes
    return {k: float(t[i]) for i, k in enumerate(keys)}
