"""Checkpoints for exact resume: trainable weights, optimizer, scheduler, RNG states, position.

A checkpoint is a directory ``output_dir/checkpoints/step-N`` holding ``model.pt`` (only the
parameters that require grad, plus buffers: for a LoRA run that is the adapter), ``optimizer.pt``,
``scheduler.pt``, ``rng.pt`` (python, numpy, torch and CUDA generator states, per process) and
``state.json`` (step, epoch, batches consumed in the epoch, early-stopping state, history).
Restoring all of them makes a resumed run bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters that require grad, plus all buffers (detached CPU copies)."""
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    keep |= {n for n, _ in model.named_buffers()}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in keep}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a `trainable_state` back into ``model`` (strict about the saved names)."""
    missing = set(state) - set(model.state_dict())
    if missing:
        raise KeyError(f"checkpoint has weights the model lacks: {sorted(missing)[:5]}")
    model.load_state_dict(state, strict=False)


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path,
    *,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    state: dict[str, Any],
    process_index: int = 0,
    is_main: bool = True,
) -> None:
    """Write one checkpoint. Every process writes its RNG state; the main one writes the rest."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), directory / f"rng-{process_index}.pt")
    if not is_main:
        return
    torch.save(trainable_state(model), directory / "model.pt")
    torch.save(optimizer.state_dict(), directory / "optimizer.pt")
    torch.save(scheduler.state_dict(), directory / "scheduler.pt")
    (directory / "state.json").write_text(json.dumps(state, indent=1))


def load_checkpoint(
    directory: Path, *, model: torch.nn.Module, optimizer, scheduler, process_index: int = 0
) -> dict[str, Any]:
    """Restore a checkpoint written by `save_checkpoint`; returns its ``state.json``."""
    load_trainable_state(model, torch.load(directory / "model.pt", map_location="cpu"))
    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", map_location="cpu"))
    scheduler.load_state_dict(torch.load(directory / "scheduler.pt", weights_only=False))
    rng = directory / f"rng-{process_index}.pt"
    if not rng.exists():  # resumed with more processes than saved: fall back to rank 0
        rng = directory / "rng-0.pt"
    set_rng_state(torch.load(rng, weights_only=False))
    return json.loads((directory / "state.json").read_text())


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a state.json), oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def prune_checkpoints(output_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for p in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
