"""Is the feedback-tuned model worse on the standard protocols? Paired, on validation.

Issue 17's target: "the feedback-tuned model, evaluated on the standard protocols
(validation), is not worse than the model it started from". Steps:

1. copy a trained run's model (default /work/runs/ml100k/seed-0/model; never written) to
   ``--work``/base and serve it in-process (`serving.app.create_app` over a SQLite store,
   FastAPI's TestClient: the service's own code path, no socket);
2. replayed users (`feedback.replay`, the loop client of `feedback.replay_http`: session on,
   every answer posted) log requests and feedback into the store;
3. `feedback.tuning.tune_from_feedback` (what ``instructrec feedback tune`` runs) builds the tuned run from
   the store (``--work``/tuned);
4. both runs are evaluated on the same validation rows and candidate files
   (`evaluation.run`, ``stage="valid"``) under each protocol; the paired bootstrap
   difference tuned - base over users (and the sign test) comes from the same call.

    python benchmarks/bench_feedback_tuned_valid.py --users 100 --new-users 25

Writes benchmarks/results/NAME.{json,md} with the machine. Validation rows only (the test
stage is for the README's one run). The replay's hidden future lies inside the training
part, so no validation target is ever shown as feedback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

OUT = Path(__file__).parent / "results"
RUN = Path("/work/runs/ml100k/seed-0")
KEY = "bench-key"


def log_feedback(rec, store, users, cfg, base_dir: Path):
    """Play the replayed ``users`` against ``rec`` served in-process; returns the rows and
    how many feedback rows were posted."""
    from fastapi.testclient import TestClient

    from instructrec.feedback.mechanisms import Mechanisms
    from instructrec.feedback.replay_http import ReplayClient, play
    from instructrec.serving.app import ServeSettings, create_app

    settings = ServeSettings(
        api_key=KEY, seed=cfg.seed, model_version="base", run_dir=str(base_dir)
    )
    app = create_app(rec, store, settings)
    with TestClient(app) as http:
        http.headers["X-API-Key"] = KEY
        client = ReplayClient("loop", http, rec.dataset, users, Mechanisms(session=True), cfg.n)
        rows = play([client], cfg.rounds)
    return rows, client.feedback_posted


def main() -> None:
    import torch

    from instructrec.data.split_files import load_split
    from instructrec.evaluation.manifest import machine
    from instructrec.evaluation.run import run
    from instructrec.feedback.replay import ReplayConfig, replay_users, split_known_hidden
    from instructrec.feedback.store import Store
    from instructrec.feedback.tuning import FeedbackTuneConfig, tune_from_feedback
    from instructrec.recommender import Recommender

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=RUN / "model", help="a trained run (read only)")
    ap.add_argument("--split", type=Path, default=RUN / "split")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_feedback_tuned_valid"))
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--new-users", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocols", nargs="+", default=["cand10", "search", "vague"])
    ap.add_argument("--lam", type=float, default=FeedbackTuneConfig.lam)
    ap.add_argument("--lr", type=float, default=FeedbackTuneConfig.lr)
    ap.add_argument("--epochs", type=int, default=FeedbackTuneConfig.epochs)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument(
        "--reuse-log", action="store_true", help="reuse --work's logged feedback if there"
    )
    ap.add_argument("--name", default="feedback_tuned_valid")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    say = lambda m: print(f"{m} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)  # noqa: E731
    reuse = args.reuse_log and (args.work / "feedback.db").exists()
    if reuse:  # the store of an earlier run (its feedback): tune and evaluate again
        shutil.rmtree(args.work / "tuned", ignore_errors=True)
        base_dir = args.work / "base"
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        base_dir = shutil.copytree(args.model, args.work / "base")
    rec = Recommender.load(base_dir)
    ds = rec.dataset
    split = load_split(args.split, ds)
    cfg = ReplayConfig(
        rounds=args.rounds, users=args.users, new_users=args.new_users, n=args.n, seed=args.seed
    )
    known, hidden = split_known_hidden(split.train, cfg.hidden_frac)
    users = replay_users(known, hidden, cfg, ds.items["genres"].tolist())
    store = Store(f"sqlite:///{args.work / 'feedback.db'}")
    if reuse:
        frame = store.feedback_frame()
        n_requests, posted, cum_hits = frame["request_id"].nunique(), len(frame), None
    else:
        rows, posted = log_feedback(rec, store, users, cfg, base_dir)
        n_requests = len(rows)
        cum_hits = float(rows.loc[rows["round"] == cfg.rounds, "cum_hits"].mean())
    say(f"logged {posted} feedback rows from {n_requests} requests (reused: {reuse})")
    tc = FeedbackTuneConfig(
        lam=args.lam, lr=args.lr, epochs=args.epochs, device="cpu", min_examples=1
    )
    summary = tune_from_feedback(
        rec, store, args.work / "tuned", tc, parent_version="base", overwrite=True
    )
    store.close()
    say(f"tuned: {summary}")
    tuned = Recommender.load(args.work / "tuned")
    reports = {}
    for proto in args.protocols:
        t = time.perf_counter()
        rep = run(
            proto,
            ds,
            split,
            {"base": rec, "tuned": tuned},
            seed=0,
            baselines=["base"],
            n_boot=args.n_boot,
            stage="valid",
        )
        reports[proto] = (rep, round(time.perf_counter() - t, 1))
        say(f"{proto} evaluated")
    meta = {
        "model": str(args.model),
        "split": str(args.split),
        "replay": asdict(cfg),
        "requests": n_requests,
        "log_reused": reuse,
        "feedback_rows": posted,
        "replay_cum_hits_last_round": cum_hits,
        "tune_config": asdict(tc),
        "tune": summary,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    write(args, reports, meta)


def write(args, reports: dict, meta: dict) -> None:
    """NAME.json (per protocol and metric: both means with CIs, the paired difference) and
    NAME.md."""
    out = {"benchmark": "feedback_tuned_valid", **meta, "protocols": {}}
    lines = [
        "# The feedback-tuned model on the standard protocols (validation, ML-100K)",
        "",
        f"Base: {meta['model']}. Feedback: {meta['replay']['users']} warm + "
        f"{meta['replay']['new_users']} new replayed users x {meta['replay']['rounds']} rounds "
        f"of {meta['replay']['n']} items (session on, served in-process), "
        f"{meta['feedback_rows']} feedback rows on {meta['requests']} requests. Tuned by "
        f"`feedback.tuning.tune_from_feedback` (lambda {meta['tune_config']['lam']}, lr "
        f"{meta['tune_config']['lr']}, {meta['tune_config']['epochs']} epoch: "
        f"{meta['tune'].get('steps')} steps on {meta['tune'].get('examples')} lists). Both "
        "models on the same validation rows and candidate files, all users; difference tuned "
        f"- base with its paired bootstrap 95% CI ({args.n_boot} resamples) and the sign test "
        "(wins/losses over users).",
        f"Machine: {meta['machine']['cpu_count']} CPUs (shared), {meta['machine']['platform']}, "
        f"Python {meta['python']}, torch {meta['torch']} (1 thread); {meta['seconds']} s wall.",
        "",
        "| protocol | metric | rows | base | tuned | tuned - base [95% CI] | wins/losses | p (sign) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for proto, (rep, secs) in reports.items():
        iv = rep.intervals.set_index(["model", "metric"])
        cmp = rep.comparisons
        cmp = cmp[(cmp["model"] == "tuned") & (cmp["baseline"] == "base")].set_index("metric")
        out["protocols"][proto] = {"seconds": secs, "rows": rep.manifest.get("rows"), "metrics": {}}
        for m in rep.metrics:
            b, t, c = iv.loc[("base", m)], iv.loc[("tuned", m)], cmp.loc[m]
            out["protocols"][proto]["metrics"][m] = {
                "base": [float(b["mean"]), float(b["ci_low"]), float(b["ci_high"])],
                "tuned": [float(t["mean"]), float(t["ci_low"]), float(t["ci_high"])],
                "diff": [float(c["diff"]), float(c["diff_low"]), float(c["diff_high"])],
                "wins": int(c["wins"]),
                "losses": int(c["losses"]),
                "p_sign": float(c["p_sign"]),
                "p_bootstrap": float(c["p_bootstrap"]),
            }
            lines.append(
                f"| {proto} | {m} | {int(b['n'])} | {b['mean']:.4f} | {t['mean']:.4f} | "
                f"{c['diff']:+.4f} [{c['diff_low']:+.4f}, {c['diff_high']:+.4f}] | "
                f"{int(c['wins'])}/{int(c['losses'])} | {c['p_sign']:.3g} |"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(out, indent=2, default=str))
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
