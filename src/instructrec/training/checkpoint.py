"""Checkpoints for exact resume: trainable weights, optimizer, scheduler, RNG states, position.

A checkpoint is a directory ``output_dir/checkpoints/step-N`` holding ``model.pt`` (only the
parameters that require grad, plus buffers: for a LoRA run that is the adapter), ``optimizer.pt``
(tensors and numbers only), ``scheduler.json``, per process ``rng-<rank>.json`` (python and
numpy generator states) with ``rng-<rank>.safetensors`` (torch and CUDA generator states), and
``state.json`` (step, epoch, batches consumed in the epoch, early-stopping state, history).
Restoring all of them makes a resumed run bit-identical to an uninterrupted one on CPU.
Everything is read as data: ``torch.load(weights_only=True)``, JSON, safetensors.
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
    """Every generator's state: python/numpy as JSON-able lists, torch/CUDA as tensors."""
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_rng(directory: Path, process_index: int) -> None:
    from safetensors.torch import save_file

    state = rng_state()
    tensors = {"torch": state["torch"]}
    tensors.update({f"cuda.{i}": t for i, t in enumerate(state.get("cuda", []))})
    save_file(tensors, str(directory / f"rng-{process_index}.safetensors"))
    (directory / f"rng-{process_index}.json").write_text(
        json.dumps({"python": state["python"], "numpy": state["numpy"]})
    )


def _load_rng(directory: Path, process_index: int) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not (directory / f"rng-{process_index}.json").exists():
        process_index = 0  # resumed with more processes than saved: fall back to rank 0
    state = json.loads((directory / f"rng-{process_index}.json").read_text())
    tensors = load_file(str(directory / f"rng-{process_index}.safetensors"))
    state["torch"] = tensors["torch"]
    cuda = sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))
    if cuda:
        state["cuda"] = [tensors[k] for k in cuda]
    return state


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
    _save_rng(directory, process_index)
    if not is_main:
        return
    torch.save(trainable_state(model), directory / "model.pt")
    torch.save(optimizer.state_dict(), directory / "optimizer.pt")
    (directory / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    (directory / "state.json").write_text(json.dumps(state, indent=1))


def load_checkpoint(
    directory: Path, *, model: torch.nn.Module, optimizer, scheduler, process_index: int = 0
) -> dict[str, Any]:
    """Restore a checkpoint written by `save_checkpoint`; returns its ``state.json``.

    Nothing is unpickled beyond tensors (``weights_only=True``). A checkpoint of an older
    instructrec (``scheduler.pt``, ``rng-*.pt``) is a `DataError`: remove it, or train with
    ``resume: false``."""
    if not (directory / "scheduler.json").exists():
        from instructrec.data.errors import DataError

        raise DataError(
            "checkpoint written by an older instructrec (pickled scheduler/RNG state); "
            "delete it or train with resume: false",
            source=str(directory),
        )
    load_trainable_state(
        model, torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    )
    optimizer.load_state_dict(
        torch.load(directory / "optimizer.pt", map_location="cpu", weights_only=True)
    )
    scheduler.load_state_dict(json.loads((directory / "scheduler.json").read_text()))
    set_rng_state(_load_rng(directory, process_index))
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
