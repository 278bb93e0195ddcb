"""Checkpoints for exact resume: trainable weights, optimizer, scheduler, RNG states, position.

A checkpoint is a directory ``output_dir/checkpoints/step-N`` holding ``model.safetensors``
(only the parameters that require grad, plus buffers: for a LoRA run that is the adapter),
``optimizer.pt`` (tensors and numbers only), ``scheduler.json``, per process ``rng-<rank>.json``
(python and numpy generator states) with ``rng-<rank>.safetensors`` (torch and CUDA generator
states), ``state.json`` (step, epoch, batches consumed in the epoch, early-stopping state,
history) and ``files.json`` (size and SHA-256 of every other file).
Restoring all of them makes a resumed run bit-identical to an uninterrupted one on CPU.
Everything is read as data: ``torch.load(weights_only=True)``, JSON, safetensors.

Writing is atomic: the files go into ``step-N.partial``, are fsynced, and the folder is renamed
to ``step-N`` (then its parent is fsynced), so a killed run never leaves a ``step-N`` that looks
complete. `resume_latest` verifies ``files.json`` and falls back to the newest checkpoint that
reads back whole, with a warning naming the broken one.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instructrec.data.errors import DataError
from instructrec.training.rundir import replace_atomically

CHECKPOINTS = "checkpoints"
PARTIAL = ".partial"  # suffix of a checkpoint folder being written
FILES = "files.json"  # {name: [size, sha256]} of every other file, written last


class BrokenCheckpoint(DataError):
    """A checkpoint that does not read back whole (truncated, corrupt, missing a file)."""


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write a `trainable_state` as safetensors, atomically (temp name, fsync, rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + PARTIAL)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    replace_atomically(tmp, path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read what `save_weights` wrote (a ``.pt`` of an older checkpoint: ``weights_only``)."""
    if path.suffix == ".pt":
        return torch.load(path, map_location="cpu", weights_only=True)
    from safetensors.torch import load_file

    return load_file(str(path))


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


def partial_dir(directory: Path) -> Path:
    """Where `save_checkpoint` writes ``directory`` before `commit_checkpoint` renames it."""
    return directory.with_name(directory.name + PARTIAL)


def save_checkpoint(
    directory: Path,
    *,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    state: dict[str, Any],
    process_index: int = 0,
    is_main: bool = True,
    commit: bool = True,
) -> None:
    """Write one checkpoint into ``directory.partial``. Every process writes its RNG state;
    the main one writes the rest and, with ``commit`` (one process), renames it into place.
    Several processes pass ``commit=False``, wait for each other, then the main process calls
    `commit_checkpoint`."""
    work = partial_dir(directory)
    work.mkdir(parents=True, exist_ok=True)
    _save_rng(work, process_index)
    if not is_main:
        return
    save_weights(trainable_state(model), work / "model.safetensors")
    torch.save(optimizer.state_dict(), work / "optimizer.pt")
    (work / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    (work / "state.json").write_text(json.dumps(state, indent=1))
    if commit:
        commit_checkpoint(directory)


def _digest(path: Path) -> list:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return [path.stat().st_size, h.hexdigest()]


def commit_checkpoint(directory: Path) -> None:
    """Record sizes and hashes of ``directory.partial``'s files, fsync, rename to
    ``directory`` (main process only)."""
    work = partial_dir(directory)
    files = {p.name: _digest(p) for p in sorted(work.iterdir()) if p.is_file() and p.name != FILES}
    (work / FILES).write_text(json.dumps(files, indent=1))
    replace_atomically(work, directory)


def _verify(directory: Path) -> None:
    """A `BrokenCheckpoint` when a file listed in ``files.json`` is missing or differs."""
    if not (directory / FILES).exists():
        return  # written before files.json existed: the loaders alone judge it
    try:
        files = json.loads((directory / FILES).read_text())
    except (OSError, ValueError) as e:
        raise BrokenCheckpoint(f"unreadable {FILES} ({e})", source=str(directory)) from None
    for name, expected in files.items():
        path = directory / name
        if not path.is_file() or _digest(path) != list(expected):
            raise BrokenCheckpoint(f"{name} is missing or changed", source=str(directory))


def read_checkpoint(directory: Path, process_index: int = 0) -> dict[str, Any]:
    """Everything a checkpoint holds, read and checked but not yet applied: ``model``,
    ``optimizer``, ``scheduler``, ``rng`` and ``state``. A `BrokenCheckpoint` when a file is
    missing, truncated or corrupt; a `DataError` for an older instructrec's pickled one."""
    if not (directory / "scheduler.json").exists() and (directory / "scheduler.pt").exists():
        raise DataError(
            "checkpoint written by an older instructrec (pickled scheduler/RNG state); "
            "delete it or train with resume: false",
            source=str(directory),
        )
    _verify(directory)
    weights = directory / "model.safetensors"
    if not weights.exists() and (directory / "model.pt").exists():
        weights = directory / "model.pt"
    try:
        return {
            "model": load_weights(weights),
            "optimizer": torch.load(
                directory / "optimizer.pt", map_location="cpu", weights_only=True
            ),
            "scheduler": json.loads((directory / "scheduler.json").read_text()),
            "rng": _load_rng(directory, process_index),
            "state": json.loads((directory / "state.json").read_text()),
        }
    except Exception as e:  # noqa: BLE001  (any reader's error means: not whole)
        raise BrokenCheckpoint(
            f"cannot read it back ({type(e).__name__}: {str(e)[:200]})", source=str(directory)
        ) from None


def apply_checkpoint(
    parts: dict[str, Any], *, model: torch.nn.Module, optimizer, scheduler
) -> dict[str, Any]:
    """Load what `read_checkpoint` returned into the objects; returns its ``state``."""
    load_trainable_state(model, parts["model"])
    optimizer.load_state_dict(parts["optimizer"])
    scheduler.load_state_dict(parts["scheduler"])
    set_rng_state(parts["rng"])
    return parts["state"]


def load_checkpoint(
    directory: Path, *, model: torch.nn.Module, optimizer, scheduler, process_index: int = 0
) -> dict[str, Any]:
    """Restore a checkpoint written by `save_checkpoint`; returns its ``state.json``.

    Nothing is unpickled beyond tensors (``weights_only=True``). A checkpoint of an older
    instructrec (``scheduler.pt``, ``rng-*.pt``) is a `DataError`: remove it, or train with
    ``resume: false``. Nothing is changed when it does not read back whole."""
    parts = read_checkpoint(Path(directory), process_index)
    return apply_checkpoint(parts, model=model, optimizer=optimizer, scheduler=scheduler)


def resume_latest(
    output_dir: str | Path, *, model: torch.nn.Module, optimizer, scheduler, process_index: int = 0
) -> tuple[Path, dict[str, Any]] | None:
    """Restore the newest checkpoint of ``output_dir`` that reads back whole, warning about
    each newer one that does not; (its path, its state), or None when there is none."""
    for ckpt in reversed(list_checkpoints(output_dir)):
        try:
            parts = read_checkpoint(ckpt, process_index)
        except BrokenCheckpoint as e:
            warnings.warn(f"skipping a broken checkpoint: {e}", stacklevel=2)
            continue
        state = apply_checkpoint(parts, model=model, optimizer=optimizer, scheduler=scheduler)
        return ckpt, state
    return None


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Committed checkpoints (``step-N`` folders with a state.json), oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.glob("step-*")
        if p.name[5:].isdigit() and p.is_dir() and (p / "state.json").exists()
    ]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest committed checkpoint (not checked: `resume_latest` checks)."""
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def prune_checkpoints(output_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (and unfinished ``.partial`` folders)."""
    for p in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    root = Path(output_dir) / CHECKPOINTS
    for p in root.glob(f"step-*{PARTIAL}") if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)
