"""Fit a retriever in a second process while this one does other work.

The reranker's stacked priors (`fit_reranker`, step 1) are the same retrievers re-fitted
without each user's last training items. SASRec trains on one CPU thread (its default: a tiny
model, where a second thread buys little), so on a machine with two or more cores its stacked
twin can train beside the first-stage fit instead of after it. ``FitAside.start`` writes the
retriever's registry name, config and training rows to a temporary folder and starts
``python -m instructrec.training.fit_aside FOLDER``; the child fits the same class with the
same config and seed, and saves it as data (`Retriever.save`); ``result()`` waits and loads it
(`Retriever.load`). The child runs the same code on one thread with its own RNG, so the
weights equal those of an in-process fit (tests/training/test_fit_aside.py checks it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

SPEC = "spec.json"
ROWS = "train.parquet"
MODEL = "model"
LOG = "child.log"
CAP = "epochs.json"  # the first-stage fit's selected epoch, for a twin that follows it


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fits_aside(retriever) -> bool:
    """Worth a second process: a torch retriever on the CPU with one thread, two usable
    cores, and no distributed run (every rank would start one)."""
    from ..retrieval.sasrec import SASRec

    if not isinstance(retriever, SASRec):
        return False
    cfg = retriever.config
    if cfg.threads != 1 or cfg.device not in ("cpu", "auto") or usable_cpus() < 2:
        return False
    if cfg.device == "auto":
        import torch

        if torch.cuda.is_available():
            return False
    return int(os.environ.get("WORLD_SIZE", "1")) <= 1


class FitAside:
    """One retriever fitting in a child process; ``result()`` returns it fitted."""

    def __init__(
        self, proc: subprocess.Popen, folder: Path, name: str, t0: float, follow: bool = False
    ) -> None:
        self.proc, self.folder, self.name, self.t0 = proc, folder, name, t0
        self.follow, self.capped = follow, False

    @classmethod
    def start(
        cls, retriever, train: pd.DataFrame, n_users: int, n_items: int, follow: bool = False
    ) -> FitAside:
        """Start fitting an unfitted copy of ``retriever`` (same class and config) on ``train``.
        ``follow``: the child trains no more epochs than `cap` later says (it waits for it
        before choosing its weights; ``result`` sends "no limit" if nobody did)."""
        import instructrec

        from ..data.runfiles import json_ready, write_json
        from ..retrieval.registry import registry_name

        folder = Path(tempfile.mkdtemp(prefix="instructrec-aside-"))
        name = registry_name(retriever)
        config = dataclasses.asdict(retriever.config)
        write_json(
            folder / SPEC,
            {
                "name": name,
                "config": json_ready(config),
                "n_users": n_users,
                "n_items": n_items,
                "follow": bool(follow),
            },
        )
        train.to_parquet(folder / ROWS, index=False)
        env = dict(os.environ)
        src = str(Path(instructrec.__file__).resolve().parents[1])  # the code this process runs
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
        with open(folder / LOG, "wb") as err:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "instructrec.training.fit_aside",
                    str(folder),
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                env=env,
            )
        log.info("%s: fitting a stacked copy in a second process (pid %d)", name, proc.pid)
        return cls(proc, folder, name, time.perf_counter(), follow)

    def cap(self, epochs: int | None) -> None:
        """Tell a following child the most epochs it may train (None: its own stopping)."""
        from ..data.runfiles import write_json

        if self.follow and not self.capped:
            tmp = self.folder / (CAP + ".tmp")
            write_json(tmp, {"epochs": None if epochs is None else max(int(epochs), 1)})
            os.replace(tmp, self.folder / CAP)
            self.capped = True

    def running(self) -> bool:
        return self.proc.poll() is None

    def result(self):
        """Wait for the child; the fitted retriever (a RuntimeError with the child's last log
        line if it failed). The temporary folder is removed either way."""
        from ..retrieval.base import Retriever

        try:
            self.cap(None)  # a following child nobody capped would wait for ever
            rc = self.proc.wait()
            if rc != 0:
                lines = (self.folder / LOG).read_text(errors="replace").strip().splitlines()
                last = lines[-1] if lines else "no output"
                raise RuntimeError(f"fitting {self.name} in a second process failed ({last})")
            fitted = Retriever.load(self.folder / MODEL)
            log.info(
                "%s: stacked copy fitted in a second process (%.1f s wall)",
                self.name,
                time.perf_counter() - self.t0,
            )
            return fitted
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def cancel(self) -> None:
        """Stop the child (an error elsewhere) and remove its folder."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _watch_parent(folder: Path, parent: int, every: float = 1.0) -> None:
    """Exit (removing ``folder``) as soon as process ``parent`` is no longer this one's parent:
    a parent killed with SIGKILL cannot stop its child, and an orphan would train for minutes
    (``parent`` comes from the command line: the parent may die before this runs)."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                shutil.rmtree(folder, ignore_errors=True)
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def _child(folder: Path, parent: int) -> None:
    _watch_parent(folder, parent)
    from ..data.runfiles import read_json
    from ..retrieval.registry import make_retriever

    spec = read_json(folder / SPEC)
    train = pd.read_parquet(folder / ROWS)
    r = make_retriever(spec["name"], spec["config"])
    kw = {"epoch_cap": lambda wait: _read_cap(folder, wait)} if spec.get("follow") else {}
    r.fit(train, int(spec["n_users"]), int(spec["n_items"]), **kw)
    r.save(folder / MODEL)


def _read_cap(folder: Path, wait: bool, every: float = 0.1) -> int | None:
    """The cap `FitAside.cap` wrote (None while there is none, unless ``wait``)."""
    from ..data.runfiles import read_json

    while True:
        if (folder / CAP).exists():
            return read_json(folder / CAP)["epochs"]
        if not wait:
            return None
        time.sleep(every)


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]))
