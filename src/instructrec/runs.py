"""A training run as one function: config in, run directory out.

    rec, manifest = train_run(RunConfig.from_yaml("configs/quickstart.yaml"), "runs/qs")

The run directory holds the saved `Recommender` (loadable with `Recommender.load`), the split
with its hashed candidate files (``split/``), ``config.yaml`` and ``manifest.json`` (config,
seeds, package versions, git commit, data and candidate-file hashes, timings, training curve).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from .config import RunConfig, load_data
from .evaluation.manifest import git_commit, package_versions


def machine_info() -> dict[str, Any]:
    import os

    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def train_run(config: RunConfig, out_dir: str | Path, dataset=None, split=None):
    """Build, fit and save a `Recommender` as ``config`` says. Returns (recommender, manifest)."""
    from .data import make_split, save_split
    from .recommender import Recommender

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dataset = dataset if dataset is not None else load_data(config.data.source)
    if split is None:
        split = make_split(dataset, seed=config.data.seed)
    save_split(split, out / "split", dataset)
    config.to_yaml(out / "config.yaml")
    rec = Recommender.from_config(config, dataset=dataset)
    rec.fit(split, output_dir=out)
    rec.save(out / "model")
    manifest = run_manifest(config, dataset, split, rec, time.perf_counter() - t0)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return rec, manifest


def run_manifest(config: RunConfig, dataset, split, rec, seconds: float) -> dict[str, Any]:
    """What makes a run repeatable and its numbers checkable."""
    tr = getattr(rec.reranker, "train_result", None)
    training = {}
    if tr is not None:
        training = {
            "best_metric": tr.best_metric,
            "best_step": tr.best_step,
            "steps": tr.steps,
            "examples_per_s": tr.examples_per_s,
            "wall_time": tr.wall_time,
            "history": tr.history,
            "stopped_early": tr.stopped_early,
        }
    return {
        "config": config.to_dict(),
        "seed": config.data.seed,
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "users": dataset.n_users,
            "items": dataset.n_items,
        },
        "split_files": split.hashes,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "machine": machine_info(),
        "fit_seconds": rec.fit_info,
        "total_seconds": seconds,
        "training": training,
    }
