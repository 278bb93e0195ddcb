"""Output folders written atomically: built under a temporary sibling, renamed on success.

    with staged_output("runs/x", resume=False, overwrite=False) as work:
        ...  # write everything under `work`

A command's ``--out`` that already holds files is refused (a `DataError`, exit code 2) unless
``overwrite`` (the new run replaces it once it has succeeded) or ``resume`` (continue it). The
new folder is built in ``.NAME.partial`` beside ``NAME`` and renamed to ``NAME`` only when the
block ends without error, so a failure never leaves a half-made ``NAME``. A failure removes the
partial folder unless it holds training checkpoints (or was being resumed): a run killed (or
failed) after its first checkpoint is continued by the same command with ``resume``, which picks
up ``.NAME.partial`` (or, for a finished run, continues ``NAME`` in place); `resume` refuses
settings other than the run's own (`refuse_changed_settings`).

Under ``torchrun`` / ``accelerate launch`` every process writes into the same folders; only the
main process (``RANK`` 0) checks, cleans and renames, after a barrier.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from instructrec.data.errors import DataError

PARTIAL = ".partial"  # suffix of the hidden sibling a run is built in


def is_main_process() -> bool:
    """True outside distributed runs and on rank 0 of one."""
    return int(os.environ.get("RANK", "0")) == 0


def holds_files(path: str | Path) -> bool:
    """True when ``path`` is a folder with anything in it (or a file)."""
    path = Path(path)
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def partial_of(out: str | Path) -> Path:
    """The hidden sibling ``.NAME.partial`` a run for ``out`` is built in."""
    out = Path(os.path.abspath(out))
    return out.with_name(f".{out.name}{PARTIAL}")


def has_checkpoints(folder: Path) -> bool:
    """True when a training checkpoint (``checkpoints/step-N``) lies anywhere in ``folder``."""
    return folder.is_dir() and any(p.parent.name == "checkpoints" for p in folder.rglob("step-*"))


def check_output(out: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse (`DataError`) an ``out`` that holds files, or an interrupted run's partial
    folder, unless ``resume`` or ``overwrite`` says what to do with it."""
    if resume and overwrite:
        raise DataError("choose one of --overwrite (start over) and --resume (continue)")
    if resume or overwrite:
        return
    if holds_files(out):
        raise DataError(
            "already holds a run; pass --overwrite to replace it or --resume to continue it",
            source=str(out),
        )
    if partial_of(out).exists():
        raise DataError(
            f"an interrupted run left {partial_of(out).name} beside it; pass --resume to "
            "continue it or --overwrite to start over",
            source=str(out),
        )


def work_dir(out: str | Path, resume: bool = False) -> Path:
    """Where a run for ``out`` writes: ``out`` itself when resuming a finished run, else
    its partial sibling (the same on every process)."""
    if resume and holds_files(out):
        return Path(out)
    return partial_of(out)


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory's entries) to disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # directories cannot be opened on some platforms (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomically(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` (a file, or a folder and every file in it), rename it to ``final``
    (replacing a file; a folder already there is removed first), fsync the parent."""
    if tmp.is_dir():
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                fsync_path(f)
        fsync_path(tmp)
        if final.exists():
            shutil.rmtree(final)
    else:
        fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


RESUMABLE_CHANGES = ("max_steps", "epochs", "progress", "output_dir", "resume")  # may differ


def refuse_changed_settings(saved: Path, settings: dict[str, Any]) -> None:
    """With ``--resume``: a `DataError` when the run's saved settings (YAML ``saved``) differ
    from ``settings`` in anything but `RESUMABLE_CHANGES` (a longer budget is fine; another
    learning rate or model is another run: use ``--overwrite``). Nothing to compare: fine."""
    if not saved.is_file():
        return
    from instructrec.data.yamlfile import read_yaml_mapping

    old, new = _flat(read_yaml_mapping(saved, "saved run settings")), _flat(settings)
    changed = sorted(
        k
        for k in set(old) | set(new)
        if old.get(k) != new.get(k) and k.rsplit(".", 1)[-1] not in RESUMABLE_CHANGES
    )
    if changed:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:3])
        raise DataError(
            f"--resume with other settings than the run was started with ({shown}); use "
            "--overwrite to start a new run",
            source=str(saved),
        )


def _wait_for_folder(folder: Path, timeout: float = 600.0) -> None:
    """Wait until the main process has made ``folder`` (a `DataError` after ``timeout`` s:
    the main process stopped before making it, e.g. on a refused --out)."""
    import time

    deadline = time.monotonic() + timeout
    while not folder.is_dir():
        if time.monotonic() > deadline:
            raise DataError("the main process never created the run folder", source=str(folder))
        time.sleep(0.05)


def _barrier() -> None:
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _fsync_tree(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            fsync_path(f)
    fsync_path(folder)


def publish(work: Path, out: str | Path) -> Path:
    """fsync ``work`` and rename it to ``out``; a folder already at ``out`` is moved aside
    first and removed only once the new one is in place."""
    out = Path(out)
    _fsync_tree(work)
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(work, out)
    fsync_path(out.parent)
    shutil.rmtree(old, ignore_errors=True)
    return out


@contextmanager
def staged_output(
    out: str | Path, *, resume: bool = False, overwrite: bool = False, keep_checkpoints=True
) -> Iterator[Path]:
    """Yield the folder to write a run for ``out`` into; publish it as ``out`` on success
    (see the module docstring for the rules). ``keep_checkpoints`` False: a failure removes
    the partial folder even when it holds checkpoints (a command that cannot resume)."""
    out = Path(out)
    main = is_main_process()
    if main:
        check_output(out, resume=resume, overwrite=overwrite)
    work = work_dir(out, resume)
    if main:
        if work != out and not resume:
            shutil.rmtree(work, ignore_errors=True)  # --overwrite: a stale partial run goes too
        work.mkdir(parents=True, exist_ok=True)
    else:  # rank 0 checks --out and makes the folder: another rank must not make it first
        _wait_for_folder(work)
    try:
        yield work
    except Exception:
        kept = resume or (keep_checkpoints and has_checkpoints(work))  # to be resumed
        if main and work != out and not kept:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if work != out:
        _barrier()
        if main:
            out.parent.mkdir(parents=True, exist_ok=True)
            publish(work, out)


@contextmanager
def staged_file(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path (``.partial.NAME``) to write one file (or a folder of
    parts) into; renamed to ``out`` on success, removed on failure."""
    out = Path(os.path.abspath(out))
    tmp = out.with_name(f".partial.{out.name}")  # keeps the suffixes writers infer from
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if tmp.is_dir():
        publish(tmp, out)
    else:
        replace_atomically(tmp, out)
