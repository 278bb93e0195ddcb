"""Feedback-loop simulation on MovieLens-100K: feedback arm vs no-feedback control.

Runs `instructrec.feedback.simulate` (simulated users answer from their held-out late
ratings; see that module) and writes the per-round table with 95% bootstrap CIs, the paired
difference, a PNG plot and the machine it ran on.

    python benchmarks/bench_feedback_sim.py                      # 5 rounds, 200 users
    python benchmarks/bench_feedback_sim.py --users 50 --rounds 3
    python benchmarks/bench_feedback_sim.py --model RUN --tune-every 1 --name feedback_sim_rr

Writes benchmarks/results/<name>.{json,md,png} (default name: feedback_sim).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"


def main() -> None:
    import torch

    from instructrec.data import load_movielens_100k
    from instructrec.feedback.simulate import SimConfig, simulate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--retriever", default="itemknn", choices=["itemknn", "pop"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=None, help="a saved run with a reranker")
    ap.add_argument("--instruction", default=None, help="request text of every simulated user")
    ap.add_argument("--tune-every", type=int, default=0, help="feedback tuning every k rounds")
    ap.add_argument("--name", default="feedback_sim", help="output file stem")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    cfg = SimConfig(
        rounds=args.rounds,
        users=args.users,
        n=args.n,
        retriever=args.retriever,
        seed=args.seed,
        instruction=args.instruction,
        tune_every=args.tune_every,
    )
    rec, store, tuner = None, None, None
    if args.model is not None:
        import tempfile

        from instructrec.feedback.store import Store
        from instructrec.feedback.tuning import FeedbackTuneConfig, tune_from_feedback
        from instructrec.recommender import Recommender

        rec = Recommender.load(args.model)
        work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
        store = Store(f"sqlite:///{work / 'feedback.db'}")
        calls = []

        def tuner(r, st):
            out = work / f"tuned-{len(calls)}"
            calls.append(
                tune_from_feedback(r, st, out, FeedbackTuneConfig(lr=1e-4, epochs=1, device="cpu"))
            )
            return Recommender.load(out)

    t0 = time.perf_counter()
    res = simulate(
        rec.dataset if rec is not None else load_movielens_100k(),
        cfg,
        recommender=rec,
        store=store,
        tuner=tuner if cfg.tune_every else None,
    )
    seconds = time.perf_counter() - t0
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "feedback_sim",
        "seconds": round(seconds, 1),
        "machine": info,
        **res.to_json(),
    }
    if args.model is not None:
        report["model"] = str(args.model)
        report["tuning"] = calls
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    res.plot(args.out / f"{args.name}.png")
    what = f"reranker run {args.model}" if args.model else f"retriever {cfg.retriever}"
    head = (
        f"Simulated ML-100K users ({cfg.users}, seed {cfg.seed}), {cfg.rounds} rounds of "
        f"{cfg.n} items, {what}, tune every {cfg.tune_every or 'never'}, instruction "
        f"{cfg.instruction!r}, held-out share {cfg.heldout_frac}; "
        f"mean [95% bootstrap CI]; difference = feedback - control, paired by user.\n"
        f"Machine: {info['cpu_count']} CPUs, {info['platform']}, Python {info['python']}, "
        f"torch {info['torch']}; {seconds:.1f} s.\n\n"
    )
    (args.out / f"{args.name}.md").write_text(head + res.to_markdown())
    print(head + res.to_markdown())


if __name__ == "__main__":
    main()
