"""A training run as one function: config in, run directory out.

    rec, manifest = train_run(RunConfig.from_yaml("configs/quickstart.yaml"), "runs/qs")

The run directory holds the saved `Recommender` (loadable with `Recommender.load`), the split
with its hashed candidate files (``split/``), ``config.yaml`` and ``manifest.json`` (config,
seeds, package versions, git commit, data and candidate-file hashes, timings, training curve).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from .config import RunConfig
from .data.spec import load_data_spec
from .evaluation.manifest import git_commit, machine, package_versions

log = logging.getLogger(__name__)  # stage lines (the CLI shows them; instructrec.cli.progress)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (every device): called before any weight is created."""
    from accelerate.utils import set_seed

    set_seed(int(seed))


def train_run(
    config: RunConfig,
    out_dir: str | Path,
    dataset=None,
    split=None,
    *,
    resume: bool = False,
    overwrite: bool = False,
):
    """Build, fit and save a `Recommender` as ``config`` says. Returns (recommender, manifest).

    The run is built in ``.NAME.partial`` beside ``out_dir`` and renamed on success; an
    ``out_dir`` holding files is refused unless ``overwrite`` (replace it) or ``resume``
    (continue it, or the partial folder a killed run left, from its newest checkpoint)."""
    from .training.rundir import check_output, is_main_process, staged_output

    if is_main_process():
        check_output(out_dir, resume=resume, overwrite=overwrite)
    git_commit()  # recorded as the run starts (cached), not when its manifest is written
    dataset = dataset if dataset is not None else _load_logged(config)
    with staged_output(out_dir, resume=resume, overwrite=overwrite) as work:
        return train_into(config, work, dataset, split, resume=resume)


def _load_logged(config: RunConfig):
    """The run's data, with its one progress line (before any output folder exists)."""
    t0 = time.perf_counter()
    dataset = load_data_spec(config.data, where="data")
    log.info(
        "data: %s, %d users, %d items, %d interactions (%.1f s)",
        dataset.name,
        dataset.n_users,
        dataset.n_items,
        len(dataset.interactions),
        time.perf_counter() - t0,
    )
    return dataset


def train_into(
    config: RunConfig, work: Path, dataset, split=None, *, resume: bool = False, on_wait=None
):
    """`train_run`'s body: write the run into the folder ``work`` as it is (no staging).
    ``resume`` continues the reranker's training from the newest checkpoint in ``work``;
    ``on_wait``: see `Recommender.fit`."""
    from .data import make_split, save_split
    from .recommender import Recommender
    from .training.rundir import is_main_process, refuse_changed_settings

    t0 = time.perf_counter()
    main = is_main_process()
    if resume and main:
        refuse_changed_settings(work / "config.yaml", config.to_dict())
    seed_everything(config.training.seed)
    if dataset is None:
        dataset = _load_logged(config)
    if split is None:
        t1 = time.perf_counter()
        split = make_split(dataset, seed=config.data.seed)
        log.info(
            "split: leave-one-out, seed %d (%.1f s)", config.data.seed, time.perf_counter() - t1
        )
    if main:
        save_split(split, work / "split", dataset)
        config.to_yaml(work / "config.yaml")
    rec = Recommender.from_config(config, dataset=dataset)
    rec.fit(split, output_dir=work, resume=resume, on_wait=on_wait)
    manifest = run_manifest(config, dataset, split, rec, time.perf_counter() - t0)
    if main:
        rec.save(work / "model")
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return rec, manifest


def with_seed(config: RunConfig, seed: int) -> RunConfig:
    """A copy of ``config`` whose model seeds (retriever, priors, reranker instances, training)
    are ``seed``; the split seed (``data.seed``) is kept, so every seed sees the same split and
    candidate files (EVALUATION.md: 3 seeds on the same split)."""
    import copy

    cfg = copy.deepcopy(config)
    cfg.retriever.options = {**cfg.retriever.options, "seed": seed}
    for p in cfg.priors:
        p.options = {**p.options, "seed": seed}
    cfg.reranker.seed = seed
    cfg.training.seed = seed
    return cfg


SEEDS_FILE = "seeds.json"  # a multi-seed run: {"seeds": [...], "runs": {seed: sub-directory}}


def train_seeds(
    config: RunConfig,
    out_dir: str | Path,
    seeds: list[int],
    echo=print,
    *,
    resume: bool = False,
    overwrite: bool = False,
):
    """`train_run` once per seed on one split: ``out_dir/split`` is shared, each seed's run
    (model, config, manifest) goes into ``out_dir/seed-N`` and ``seeds.json`` lists them.
    Staged and refused as `train_run`; ``resume`` keeps the seeds already finished.
    Returns {seed: manifest}."""
    from .training.rundir import check_output, is_main_process, staged_output

    if is_main_process():
        check_output(out_dir, resume=resume, overwrite=overwrite)
    git_commit()
    dataset = _load_logged(config)
    with staged_output(out_dir, resume=resume, overwrite=overwrite) as work:
        return _seeds_into(config, work, dataset, seeds, echo, resume)


def _seeds_into(config: RunConfig, work: Path, dataset, seeds: list[int], echo, resume: bool):
    from .data import make_split, save_split
    from .training.rundir import is_main_process

    split = make_split(dataset, seed=config.data.seed)
    if is_main_process():
        save_split(split, work / "split", dataset)
    manifests, runs = {}, {}
    for s in seeds:
        t0 = time.perf_counter()
        done = work / f"seed-{s}" / "manifest.json"
        if resume and done.exists():
            echo(f"seed {s}: already trained ({done})")
            manifests[s] = json.loads(done.read_text())
        else:
            echo(f"seed {s}: training ({len(runs) + 1} of {len(seeds)})")
            (work / f"seed-{s}").mkdir(exist_ok=True)
            cfg = with_seed(config, s)
            _, manifests[s] = train_into(cfg, work / f"seed-{s}", dataset, split, resume=resume)
            echo(f"seed {s}: done in {time.perf_counter() - t0:.0f} s")
        runs[str(s)] = f"seed-{s}"
        if is_main_process():
            listing = {"seeds": list(seeds)[: len(runs)], "runs": runs}
            (work / SEEDS_FILE).write_text(json.dumps(listing))
    return manifests


def load_seed_models(run_dir: str | Path) -> dict[int, Any]:
    """{seed: Recommender} of a run directory: a multi-seed run (``seeds.json``), a single run
    (``model/`` inside), or a model directory itself. The seed is read from each model's
    config (``training.seed``), never from a directory name."""
    from .data.errors import DataError
    from .recommender import Recommender

    root = Path(run_dir)
    if (root / SEEDS_FILE).exists():
        meta = json.loads((root / SEEDS_FILE).read_text())
        dirs = [root / d / "model" for d in meta["runs"].values()]
    elif (root / "model" / "recommender.json").exists():
        dirs = [root / "model"]
    elif (root / "recommender.json").exists():
        dirs = [root]
    else:
        raise DataError(
            "not a run directory (no seeds.json, model/recommender.json or recommender.json)",
            source=str(root),
        )
    out: dict[int, Any] = {}
    for d in dirs:
        rec = Recommender.load(d)
        rec.source_dir = str(d)
        seed = rec.config.training.seed if rec.config is not None else 0
        if seed in out:
            raise DataError(f"two models with training seed {seed}", source=str(d))
        out[seed] = rec
    return out


def run_split_dir(run_dir: str | Path) -> Path | None:
    """The saved split of a run directory (multi-seed, single run or a model's parent)."""
    root = Path(run_dir)
    for cand in (root / "split", root.parent / "split"):
        if (cand / "split.json").exists():
            return cand
    return None


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
        "machine": machine("torch"),
        "fit_seconds": rec.fit_info,
        "total_seconds": seconds,
        "training": training,
    }
