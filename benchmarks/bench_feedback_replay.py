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
from pathlib import Path

OUT = Path(__file__).parent / "results"


def main() -> None:
    import torch

    from instructrec.feedback.mechanisms import ProfileConfig
    from instructrec.feedback.replay import ReplayConfig, split_known_hidden
    from instructrec.feedback.replay_report import (
        plot,
        refit_priors,
        replay_study,
        standard_summaries,
        to_json,
        to_markdown,
    )
    from instructrec.feedback.tuning import TuneConfig

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
        "--ablate-lam",
        type=float,
        default=None,
        help="also replay control + tuning with this lambda (e.g. 0), same users",
    )
    ap.add_argument("--like", type=float, default=ProfileConfig.like)
    ap.add_argument("--dislike", type=float, default=ProfileConfig.dislike)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--name", default="feedback_replay")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec, refitted = None, []
    if args.model is not None:
        from instructrec.recommender import Recommender

        rec = Recommender.load(args.model)
        dataset = rec.dataset
    else:
        from instructrec.data import load_movielens_100k

        dataset = load_movielens_100k()
    if args.split is not None:
        from instructrec.data.split import load_split

        split = load_split(args.split, dataset)
    else:
        from instructrec.data.split import leave_one_out

        split = leave_one_out(dataset, seed=0)
    cfg = ReplayConfig(
        rounds=args.rounds, users=args.users, new_users=args.new_users, n=args.n, noise=args.noise
    )
    if rec is not None:
        known, _ = split_known_hidden(split.train, cfg.hidden_frac)
        refitted = refit_priors(rec, known, device=args.device)
        print(f"refitted on the known part: {refitted} ({time.perf_counter() - t0:.0f} s)")
    run = replay_study(
        dataset,
        split.train,
        cfg,
        args.seeds,
        args.arms,
        recommender=rec,
        tune_every=args.tune_every,
        tune_config=TuneConfig(lam=args.lam, device=args.device),
        profile=ProfileConfig(like=args.like, dislike=args.dislike),
        progress=lambda m: print(m, f"{time.perf_counter() - t0:.0f} s", file=sys.stderr),
    )
    sums = standard_summaries(run)
    ablation = None
    if args.ablate_lam is not None and rec is not None:
        from instructrec.feedback.replay_run import summarise

        abl = replay_study(
            dataset,
            split.train,
            cfg,
            args.seeds,
            ["tuning"],
            recommender=rec,
            tune_every=args.tune_every,
            tune_config=TuneConfig(lam=args.ablate_lam, device=args.device),
        )
        ablation = {"lam": args.ablate_lam, "run": abl, "summary": summarise(abl)}
    seconds = time.perf_counter() - t0
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "feedback_replay",
        "seconds": round(seconds, 1),
        "machine": info,
        "model": str(args.model) if args.model else None,
        "split": str(args.split) if args.split else "leave_one_out(ml-100k, seed 0)",
        "refitted_on_known": refitted,
        "tune": {"every": args.tune_every, "lam": args.lam},
        "profile": {"like": args.like, "dislike": args.dislike},
        **to_json(run, sums),
    }
    if ablation is not None:
        report["lam_ablation"] = {
            "lam": ablation["lam"],
            "summary": ablation["summary"].to_dict(orient="records"),
            "tuning": ablation["run"].tuning,
        }
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    pngs = plot(run, sums["vs control"], args.out / args.name)
    what = f"reranker run {args.model}" if args.model else "item-kNN first stage only"
    head = (
        f"# Replay of ML-100K users' hidden future ({what})\n\n"
        f"Seeds {args.seeds}; per seed {cfg.users} warm + {cfg.new_users} new users drawn "
        f"among those with a hidden like; {cfg.rounds} rounds of {cfg.n} items; hidden share "
        f"{cfg.hidden_frac} of each user's training interactions (split {report['split']}); "
        f"noise {cfg.noise}; tuning every {args.tune_every} rounds (lambda {args.lam}). Means "
        "over (seed, user) pairs; CIs: paired bootstrap over those pairs (2,000 resamples).\n"
        f"Machine: {info['cpu_count']} CPUs (shared), {info['platform']}, Python "
        f"{info['python']}, torch {info['torch']} ({info['threads']} thread, {args.device}); "
        f"{seconds:.0f} s. Plots: {', '.join(p.name for p in pngs) or 'none (no matplotlib)'}."
        "\n\n"
    )
    body = to_markdown(run, sums)
    if ablation is not None:
        s = ablation["summary"]
        x = s[(s["arm"] == "tuning") & (s["round"] == cfg.rounds)].set_index("metric")
        body += (
            f"\n### Lambda ablation: the tuning arm with lambda = {ablation['lam']} "
            f"(same users; vs control, round {cfg.rounds})\n\n"
            "| metric | control | tuning | difference [95% CI] |\n|---|---|---|---|\n"
        )
        for m, r in x.iterrows():
            body += (
                f"| {m} | {r['control']:.3f} | {r['treated']:.3f} | {r['diff']:+.3f} "
                f"[{r['diff_lo']:+.3f}, {r['diff_hi']:+.3f}] |\n"
            )
    (args.out / f"{args.name}.md").write_text(head + body)
    print(head + body)


if __name__ == "__main__":
    main()
