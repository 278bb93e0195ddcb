"""Benchmark: the baseline table for every protocol of EVALUATION.md on ML-100K.

Fits Pop, item-kNN, BPR and SASRec on the training part of the seed-0 leave-one-out split and
runs `instructrec.evaluation.evaluate_all` (cand10, cand20, full, search with the
"SASRec + attribute filter" rival, vague, pointwise), with 95% bootstrap CIs.

    python benchmarks/bench_baselines.py [--models pop,itemknn,bpr,sasrec] [--seed 0]

Writes benchmarks/results/baselines.{json,md} (and the full reports under
benchmarks/out/baselines/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="pop,itemknn,bpr,sasrec")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()

    import torch

    from instructrec.data import load_movielens_100k, make_split
    from instructrec.evaluation import evaluate_all, fit_baselines

    ds = load_movielens_100k()
    split = make_split(ds, seed=args.seed)
    names = [m for m in args.models.split(",") if m]
    fit_seconds = {}
    models = {}
    for name in names:
        t0 = time.perf_counter()
        models.update(fit_baselines(ds, split, [name], seed=args.seed))
        fit_seconds[name] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    reports = evaluate_all(
        "all",
        ds,
        split,
        models,
        seed=args.seed,
        out_dir=HERE / "out" / "baselines",
        n_boot=args.n_boot,
    )
    eval_seconds = round(time.perf_counter() - t0, 1)
    machine = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "loadavg_1min_at_end": os.getloadavg()[0],
    }
    out = {
        "machine": machine,
        "seed": args.seed,
        "fit_seconds": fit_seconds,
        "eval_seconds": eval_seconds,
        "split_files": split.hashes,
        "protocols": {p: r.to_dict() for p, r in reports.items()},
    }
    for p in out["protocols"].values():
        p.pop("manifest", None)
    res = HERE / "results"
    res.mkdir(exist_ok=True)
    (res / "baselines.json").write_text(json.dumps(out, indent=2, default=str))
    (res / "baselines.md").write_text(markdown(out, [r.to_markdown() for r in reports.values()]))
    print((res / "baselines.md").read_text())


def markdown(out: dict, per_protocol: list[str]) -> str:
    """The results page: one compact table (protocol x metric rows, model columns), then the
    per-protocol tables with CIs and paired tests."""
    m = out["machine"]
    lines = [
        "# Baselines on ML-100K (leave-one-out, seed 0), every protocol",
        "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}; fit seconds "
        f"{out['fit_seconds']}; evaluation {out['eval_seconds']} s; 1-min load average at "
        f"the end {m['loadavg_1min_at_end']:.1f} (shared).",
        "",
    ]
    models: list[str] = []
    for p in out["protocols"].values():
        models += [x for x in p["table"] if x not in models]
    lines += [
        "| protocol | metric | " + " | ".join(models) + " |",
        "|" + "---|" * (len(models) + 2),
    ]
    for name, p in out["protocols"].items():
        for metric in p["metrics"]:
            cells = [f"{p['table'][x][metric]:.4f}" if x in p["table"] else "" for x in models]
            lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    lines += ["", "Per protocol, with 95% bootstrap CIs and paired tests:", "", *per_protocol]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
