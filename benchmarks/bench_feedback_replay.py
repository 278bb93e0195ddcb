"""Replay benchmark on ML-100K: control vs each feedback mechanism vs all, several seeds.

Users answer from their own hidden future (`instructrec.feedback.replay`): the last 30% of
each user's *training* interactions of the saved split (no validation/test target is used).
Without ``--model`` the arms run on the item-kNN first stage alone (mechanisms (a) session,
(d) profile and the norepeat reference); with ``--model RUN`` the run's reranker reorders
each round's top 20 and the bandit (b) and scheduled feedback tuning (c) arms are added (the
run's retriever and priors are refitted on the known part first).

    python benchmarks/bench_feedback_replay.py --name feedback_replay_knn
    python benchmarks/bench_feedback_replay.py --model /work/runs/ml100k/seed-0/model \
        --split /work/runs/ml100k/seed-0/split --users 100 --new-users 25 \
        --name feedback_replay_model

Writes benchmarks/results/<name>.{json,md} and <name>_<metric>.png, with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

OUT = Path(__file__).parent / "results"


def main() -> None:
    import torch

    from instructrec.feedback.mechanisms import ARMS, ProfileConfig
    from instructrec.feedback.replay import ReplayConfig, split_known_hidden
    from instructrec.feedback.replay_report import (
        refit_priors,
        replay_study,
    )
    from instructrec.feedback.tuning import FeedbackTuneConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a saved run with a reranker")
    ap.add_argument("--split", type=Path, default=None, help="saved split (default: seed 0)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--new-users", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--arms", nargs="+", default=None)
    ap.add_argument("--tune-every", type=int, default=2)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument(
        "--lam-arm",
        type=float,
        default=None,
        help="add an arm tuning_lam<value>: the tuning arm with this lambda (same users)",
    )
    ap.add_argument(
        "--sasrec-epochs", type=int, default=None, help="cap SASRec's refit on the known part"
    )
    ap.add_argument("--suffix", default="", help="appended to the non-control arm names")
    ap.add_argument("--rows", type=Path, default=None, help="save per-user rows (Parquet)")
    ap.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="report on saved --rows files"
    )
    ap.add_argument("--like", type=float, default=ProfileConfig.like)
    ap.add_argument("--dislike", type=float, default=ProfileConfig.dislike)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--name", default="feedback_replay")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if args.merge:
        run, meta = merge_rows(args.merge)
        write_report(args, run, meta, time.perf_counter() - t0)
        return
    rec, refitted = None, []
    if args.model is not None:
        from instructrec.recommender import Recommender

        rec = Recommender.load(args.model)
        dataset = rec.dataset
    else:
        from instructrec.data import load_movielens_100k

        dataset = load_movielens_100k()
    if args.split is not None:
        from instructrec.data.split_files import load_split

        split = load_split(args.split, dataset)
    else:
        from instructrec.data.split import leave_one_out

        split = leave_one_out(dataset, seed=0)
    cfg = ReplayConfig(
        rounds=args.rounds, users=args.users, new_users=args.new_users, n=args.n, noise=args.noise
    )
    if rec is not None:
        known, _ = split_known_hidden(split.train, cfg.hidden_frac)
        refitted = refit_priors(rec, known, device=args.device, max_epochs=args.sasrec_epochs)
        print(f"refitted on the known part: {refitted} ({time.perf_counter() - t0:.0f} s)")
    lam_name = f"tuning_lam{args.lam_arm:g}" if args.lam_arm is not None and rec else None
    run = replay_study(
        dataset,
        split.train,
        cfg,
        args.seeds,
        args.arms,
        recommender=rec,
        tune_every=args.tune_every,
        tune_config=FeedbackTuneConfig(lam=args.lam, device=args.device, min_examples=1),
        profile=ProfileConfig(like=args.like, dislike=args.dislike),
        progress=lambda m: print(m, f"{time.perf_counter() - t0:.0f} s", file=sys.stderr),
        extra_arms={lam_name: ARMS["tuning"]} if lam_name else None,
        arm_tune_configs=(
            {lam_name: FeedbackTuneConfig(lam=args.lam_arm, device=args.device, min_examples=1)}
            if lam_name
            else None
        ),
    )
    meta = {
        "model": str(args.model) if args.model else None,
        "split": str(args.split) if args.split else "leave_one_out(ml-100k, seed 0)",
        "refitted_on_known": refitted,
        "tune": {"every": args.tune_every, "lam": args.lam, "lam_arm": args.lam_arm},
        "sasrec_epochs": args.sasrec_epochs,
        "profile": {"like": args.like, "dislike": args.dislike},
        "device": args.device,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.suffix:
        run.rows["arm"] = run.rows["arm"].where(
            run.rows["arm"] == "control", run.rows["arm"] + args.suffix
        )
        run.arms = {(k if k == "control" else k + args.suffix): v for k, v in run.arms.items()}
    if args.rows is not None:
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        run.rows.to_parquet(args.rows)
        side = {
            **meta,
            "config": asdict(run.config),
            "arms": {k: v.on() for k, v in run.arms.items()},
        }
        side["tuning"] = run.tuning
        args.rows.with_suffix(".rows.json").write_text(json.dumps(side, indent=2, default=str))
    write_report(args, run, meta, time.perf_counter() - t0)


def merge_rows(paths: list[Path]):
    """One `ReplayRun` from saved rows (a (seed, arm, round, user) row present in several
    files is kept once: the same users and seeds give the same control); the metadata of every
    file, by path (its ``.rows.json`` sidecar, else the report ``.json`` of the same stem)."""
    import pandas as pd

    from instructrec.feedback.mechanisms import Mechanisms
    from instructrec.feedback.replay import ReplayConfig
    from instructrec.feedback.replay_run import ReplayRun

    frames, arms, meta, tuning, cfg = [], {}, {}, [], None
    for p in paths:
        r = pd.read_parquet(p)
        sidecar = p.with_suffix(".rows.json")
        side = json.loads((sidecar if sidecar.exists() else p.with_suffix(".json")).read_text())
        frames.append(r)
        for name, on in side["arms"].items():
            arms.setdefault(name, Mechanisms(**{m: True for m in on}))
        cfg = cfg or ReplayConfig(**side["config"])
        tuning += side.get("tuning", [])
        keep = ("model", "split", "refitted_on_known", "tune", "sasrec_epochs", "profile")
        meta[str(p)] = {k2: side.get(k2) for k2 in (*keep, "device", "seconds")}
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(
        ["seed", "arm", "round", "user"], ignore_index=True
    )
    seeds = sorted(int(x) for x in rows["seed"].unique())
    return ReplayRun(cfg, seeds, arms, rows, tuning), {"merged": meta}


def write_report(args, run, meta: dict, seconds: float) -> None:
    import torch

    from instructrec.feedback.replay_report import plot, standard_summaries, to_json, to_markdown

    cfg = run.config
    sums = standard_summaries(run)
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "feedback_replay",
        "seconds": round(seconds, 1),
        "machine": info,
        **meta,
        **to_json(run, sums),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    pngs = plot(run, sums["vs control"], args.out / args.name)
    model = meta.get("model") or next(iter(meta.get("merged", {}).values()), {}).get("model")
    what = f"reranker run {model}" if model else "item-kNN first stage only"
    head = (
        f"# Replay of ML-100K users' hidden future ({what})\n\n"
        f"Seeds {run.seeds}; per seed {cfg.users} warm + {cfg.new_users} new users drawn "
        f"among those with a hidden like; {cfg.rounds} rounds of {cfg.n} items; hidden share "
        f"{cfg.hidden_frac} of each user's training interactions of the saved split; "
        f"noise {cfg.noise}; settings per part in the JSON. Means "
        "over (seed, user) pairs; CIs: paired bootstrap over those pairs (2,000 resamples).\n"
        f"Machine: {info['cpu_count']} CPUs (shared), {info['platform']}, Python "
        f"{info['python']}, torch {info['torch']} ({info['threads']} thread, cpu); "
        f"{_timing(meta, seconds)}. Plots: {', '.join(p.name for p in pngs) or 'none (no matplotlib)'}."
        "\n\n"
    )
    body = to_markdown(run, sums)
    (args.out / f"{args.name}.md").write_text(head + body)
    print(head + body)


def _timing(meta: dict, seconds: float) -> str:
    parts = meta.get("merged")
    if not parts:
        return f"{seconds:.0f} s"
    each = ", ".join(f"{v.get('seconds', '?')} s" for v in parts.values())
    return f"merged from {len(parts)} parts run side by side ({each} wall, shared CPU)"


if __name__ == "__main__":
    main()
