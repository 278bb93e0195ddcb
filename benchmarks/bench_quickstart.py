"""`instructrec quickstart` end to end (issue 20: <= 4 min on the idle 2-core box), base vs
this checkout, alternating, in one run.

Each round runs the whole quickstart (train the shipped configuration, seed 0; evaluate every
protocol at the validation stage) in a fresh interpreter, once with the code of a base commit
(a `git worktree` of it on PYTHONPATH) and once with this checkout, base first. Records the
wall time, the seconds the quickstart itself prints (total and training), the stage lines'
times (the stacked SASRec, the reranker), and whether the validation summary table is the same
as the base's (it is not when the shipped configuration changed: then the paired per-user
differences of the reranker on every protocol are reported instead).

    python benchmarks/bench_quickstart.py                          # base c722a41, 1 round
    python benchmarks/bench_quickstart.py --base-commit HEAD~3 --rounds 2

Writes benchmarks/results/quickstart_time.json and quickstart_time.md (machine, load average).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli_load import ROOT, base_tree, run_facts, write_results  # noqa: E402

# the results record the git state of the tree this measures (not of an installed checkout)
sys.path.insert(0, str(ROOT / "src"))

PROTOCOLS = [
    ("seen", "cand10", "HR@1"),
    ("seen", "full", "NDCG@10"),
    ("seen", "search", "HR@1"),
    ("seen", "vague", "HR@1"),
    ("seen", "vague-para", "HR@1"),
    ("seen", "search-para", "HR@1"),
    ("heldout", "cand10", "HR@1"),
    ("heldout", "vague", "HR@1"),
]


def run_once(src: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "instructrec", "quickstart", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{src}: exit {p.returncode}\n{p.stderr[-2000:]}")
    text = p.stdout + p.stderr
    m = re.search(r"quickstart: (\d+) s \(training (\d+) s\)", text)
    stacked = re.search(r"stacked copy fitted in a second process \(([\d.]+) s wall\)", text)
    rr = re.search(r"reranker: trained in ([\d.]+) s", text)
    return {
        "wall_s": round(wall, 1),
        "printed_s": int(m.group(1)) if m else None,
        "training_s": int(m.group(2)) if m else None,
        "stacked_sasrec_aside_s": float(stacked.group(1)) if stacked else None,
        "reranker_s": float(rr.group(1)) if rr else None,
        "summary": (out / "eval" / "summary.md").read_text(),
    }


def paired(base: Path, new: Path) -> list[dict]:
    """The reranker's per-user difference (new - base) on each protocol, with a bootstrap CI."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for group, proto, metric in PROTOCOLS:
        vals = []
        for run in (new, base):
            df = pd.read_csv(run / "eval" / group / "seed-0" / proto / "per_user.csv")
            vals.append(df[df.model == "instructrec"].set_index("user")[metric])
        d = (vals[0] - vals[1].loc[vals[0].index]).to_numpy()
        boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
        rows.append(
            {
                "protocol": f"{proto} ({group} templates)",
                "metric": metric,
                "base": round(float(vals[1].mean()), 4),
                "new": round(float(vals[0].mean()), 4),
                "diff": round(float(d.mean()), 4),
                "ci": [round(float(np.quantile(boot, q)), 4) for q in (0.025, 0.975)],
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-commit", default="c722a41")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--name", default="quickstart_time")
    a = ap.parse_args()
    base_src = base_tree(a.base_commit, ROOT.parent / f"bench-base-{a.base_commit}")
    trees = {"before (" + a.base_commit + ")": base_src, "after (this checkout)": ROOT / "src"}
    work = Path(tempfile.mkdtemp(prefix="bench-quickstart-"))
    load0 = os.getloadavg()
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    for r in range(a.rounds):
        for name, src in trees.items():
            out = work / f"{'base' if name.startswith('before') else 'new'}-{r}"
            runs[name].append(run_once(src, out))
            print(f"round {r}: {name}: {runs[name][-1]['printed_s']} s", flush=True)
    load1 = os.getloadavg()
    diffs = paired(work / "base-0", work / "new-0")
    same = runs[list(trees)[0]][0]["summary"] == runs[list(trees)[1]][0]["summary"]
    shutil.rmtree(work, ignore_errors=True)
    result = {
        **run_facts(a.rounds, load0, load1),
        "base_commit": a.base_commit,
        "runs": {
            k: [{x: v for x, v in r.items() if x != "summary"} for r in rs]
            for k, rs in runs.items()
        },
        "same_validation_summary": same,
        "paired_new_minus_base": diffs,
    }
    lines = [
        "# `instructrec quickstart` end to end, before vs after (issue 20: <= 240 s)",
        "",
        f"`python benchmarks/bench_quickstart.py --base-commit {a.base_commit} --rounds "
        f"{a.rounds}`; machine: {result['machine']}; load average "
        f"{load0[0]:.1f} at start, {load1[0]:.1f} at end; git {result['git']}.",
        "",
        "| variant | printed s (median) | training s | stacked SASRec aside s | reranker s | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for name, rs in runs.items():

        def med(key, rs=rs):
            vals = [r[key] for r in rs if r[key] is not None]
            return round(statistics.median(vals), 1) if vals else "-"

        cells = [
            med(k)
            for k in ("printed_s", "training_s", "stacked_sasrec_aside_s", "reranker_s", "wall_s")
        ]
        lines.append("| " + " | ".join([name, *map(str, cells)]) + " |")
    lines += [
        "",
        f"Validation summary table identical to the base's: {'yes' if same else 'no'}. "
        "The reranker, after minus before, paired over the 943 validation users (round 0):",
        "",
        "| protocol | metric | before | after | diff [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for d in diffs:
        lines.append(
            f"| {d['protocol']} | {d['metric']} | {d['base']} | {d['new']} | "
            f"{d['diff']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}] |"
        )
    write_results(a.name, result, lines)


if __name__ == "__main__":
    main()
