"""The feedback loop through the real service on ML-100K: control vs loop, paired CIs.

Issue 17, item 4, at benchmark size (tests/feedback/test_loop_http.py is the small test).
A trained run (default /work/runs/ml100k/seed-0/model) has its first stage and priors
refitted on the replay's *known* part (`replay_report.refit_priors`; the run's were fitted
on the whole training split, hidden future included) and is saved under ``--work``/models;
`instructrec serve` serves it on a fresh SQLite store. Replayed users
(`feedback.replay_http`, the same users in both arms) ask over HTTP:

    control  the same request every round (known history; a new user's instruction in
             round 1 only); posts no feedback; played first, so the store holds no feedback
    loop     posts every answer (POST /v1/feedback: the server's template bandit learns),
             keeps a session (liked items into the history it sends, the instruction
             re-sent, nothing shown twice); after each round of ``--tune-after``,
             `instructrec feedback tune` on the store (from the base run, everything
             logged so far) and POST /v1/admin/model swap the tuned version in

    python benchmarks/bench_feedback_http.py --users 40 --new-users 10

Writes benchmarks/results/NAME.{json,md} with the machine. The reranker itself was trained
on the whole training split (the hidden future included), as in bench_feedback_replay.py.
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
API, ADMIN = "bench-key", "bench-admin-key"


def main() -> None:
    import httpx
    import torch

    from instructrec.data.split_files import load_split
    from instructrec.evaluation.manifest import machine
    from instructrec.feedback.mechanisms import Mechanisms
    from instructrec.feedback.replay import ReplayConfig, replay_users, split_known_hidden
    from instructrec.feedback.replay_http import ReplayClient, play, tune_and_swap
    from instructrec.feedback.replay_report import refit_priors
    from instructrec.feedback.replay_run import ReplayRun, summarise
    from instructrec.recommender import Recommender
    from instructrec.testing.server import start_serve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=RUN / "model", help="a trained run (read only)")
    ap.add_argument("--split", type=Path, default=RUN / "split")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_feedback_http"))
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--new-users", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune-after", type=int, nargs="*", default=[2, 4])
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--sasrec-epochs", type=int, default=15, help="cap SASRec's refit")
    ap.add_argument(
        "--reuse-base", action="store_true", help="reuse --work's refitted base run if there"
    )
    ap.add_argument("--name", default="feedback_http")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    say = lambda m: print(f"{m} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)  # noqa: E731
    root = args.work / "models"
    reuse = args.reuse_base and (root / "base" / "recommender.json").exists()
    rec = Recommender.load(root / "base" if reuse else args.model)
    split = load_split(args.split, rec.dataset)
    cfg = ReplayConfig(
        rounds=args.rounds, users=args.users, new_users=args.new_users, n=args.n, seed=args.seed
    )
    known, hidden = split_known_hidden(split.train, cfg.hidden_frac)
    if reuse:  # refitted by an earlier run of this script on the same split and cut
        refitted = ["SASRec", "ItemKNN", "Pop"]
        for p in [args.work / "feedback.db", *root.glob("tuned-*")]:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    else:
        refitted = refit_priors(rec, known, device="cpu", max_epochs=args.sasrec_epochs)
        shutil.rmtree(args.work, ignore_errors=True)
        rec.save(root / "base")
    say(f"first stage refitted on the known part: {refitted} (reused: {reuse})")
    ds = rec.dataset
    users = replay_users(known, hidden, cfg, ds.items["genres"].tolist())
    del rec
    db = f"sqlite:///{args.work / 'feedback.db'}"
    serve = ["--model", str(root / "base"), "--db", db, "--api-key", API, "--admin-key", ADMIN]
    serve += ["--model-root", str(root), "--seed", str(args.seed), "--log-level", "warning"]
    proc, base = start_serve(serve, timeout=300)
    say(f"serving {base}")
    arms = {"control": Mechanisms(), "loop": Mechanisms(session=True, bandit=True, tuning=True)}
    swaps, timings = [], {}
    tune_args = ["--set", "min_examples=1", "--set", f"lam={args.lam}", "--set", "device=cpu"]
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": API}, timeout=300) as http:
            clients = [
                ReplayClient("control", http, ds, users, arms["control"], args.n, False),
                ReplayClient("loop", http, ds, users, arms["loop"], args.n, True),
            ]

            def after(client, rnd):
                say(f"{client.name} round {rnd}")
                if client.name == "loop" and rnd in args.tune_after and rnd < args.rounds:
                    t = time.perf_counter()
                    out = tune_and_swap(http, ADMIN, root / "base", db, root, f"tuned-{rnd}",
                                        tune_args)  # fmt: skip
                    swaps.append({"after_round": rnd, **out})
                    timings[f"tune_swap_after_{rnd}_s"] = round(time.perf_counter() - t, 1)
                    say(f"tuned and swapped in {out['swap']['version']}")

            rows = play(clients, args.rounds, after)
            final_version = http.get("/v1/model").json()["version"]
            n_feedback = clients[1].feedback_posted
    finally:
        proc.kill()
        proc.wait(30)
    run = ReplayRun(cfg, [args.seed], arms, rows.drop(columns=["items"]).assign(seed=args.seed))
    sums = {s: summarise(run, subset=s) for s in ("all", "warm", "new")}
    meta = {
        "model": str(args.model),
        "split": str(args.split),
        "refitted_on_known": refitted,
        "sasrec_epochs": args.sasrec_epochs,
        "tune_after": args.tune_after,
        "lam": args.lam,
        "final_version": final_version,
        "feedback_rows": n_feedback,
        "swaps": swaps,
        "timings": timings,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    write(args, run, sums, meta)


def write(args, run, sums: dict, meta: dict) -> None:
    """benchmarks/results/NAME.json (settings, per-round summaries) and NAME.md."""
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "feedback_http",
        "config": asdict(run.config),
        "arms": {k: v.on() for k, v in run.arms.items()},
        **meta,
        "summary": {k: v.to_dict(orient="records") for k, v in sums.items()},
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    cfg, m = run.config, meta["machine"]
    lines = [
        "# The feedback loop through the real service (ML-100K)",
        "",
        f"Run {meta['model']} (first stage and priors refitted on the known part: "
        f"{', '.join(meta['refitted_on_known'])}), served by `instructrec serve` on SQLite; "
        f"{cfg.users} warm + {cfg.new_users} new users (seed {cfg.seed}), {cfg.rounds} rounds of "
        f"{cfg.n} items, hidden share {cfg.hidden_frac}. Control: the same request every "
        "round, no feedback. Loop: feedback posted over HTTP (server bandit), session kept by "
        f"the client, `feedback tune` (lambda {meta['lam']}) + hot swap after round(s) "
        f"{meta['tune_after']}; served at the end: `{meta['final_version']}`; "
        f"{meta['feedback_rows']} feedback rows. CIs: paired bootstrap over users (2,000).",
        f"Machine: {m['cpu_count']} CPUs (shared), {m['platform']}, Python {meta['python']}, "
        f"torch {meta['torch']} ({m.get('torch_threads')} thread); {meta['seconds']} s wall; "
        f"tune + swap: {meta['timings']}.",
        "",
    ]
    for subset, title in (("all", "all users"), ("warm", "warm users"), ("new", "new users")):
        s = sums[subset]
        s = s[s["arm"] == "loop"]
        if s.empty:
            continue
        lines += [f"### Loop vs control, {title} (n = {int(s['n'].iloc[0])})", ""]
        lines += ["| round | metric | control | loop | difference [95% CI] | ratio [95% CI] |"]
        lines += ["|---|---|---|---|---|---|"]
        for _, r in s.sort_values(["metric", "round"]).iterrows():
            lines.append(
                f"| {r['round']} | {r['metric']} | {r['control']:.3f} | {r['treated']:.3f} | "
                f"{r['diff']:+.3f} [{r['diff_lo']:+.3f}, {r['diff_hi']:+.3f}] | "
                + (
                    f"{r['ratio']:.2f}x [{r['ratio_lo']:.2f}, {r['ratio_hi']:.2f}] |"
                    if r["ratio"] == r["ratio"]  # no ratio where control's mean is 0
                    else "- |"
                )
            )
        lines.append("")
    (args.out / f"{args.name}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
