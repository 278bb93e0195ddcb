"""Schemathesis over the whole HTTP API: every check, thousands of requests, no 5xx allowed.

Starts the real service (`instructrec serve`, SQLite store) over a small item-kNN model
(`instructrec.testing.datasets.synthetic_dataset`) with a client key, an admin key and a model
root holding two runs (``v1`` served, ``v2`` swappable), then runs ``schemathesis run
--checks all`` (examples, coverage, fuzzing and stateful phases) with both keys as headers,
repeating with new seeds until the server has answered at least ``--min-requests`` requests.
The request and status counts come from the server's own /metrics; failures from
schemathesis' JSON report.

    python benchmarks/bench_schemathesis.py                       # >= 3,000 requests
    python benchmarks/bench_schemathesis.py --min-requests 300    # a quick check

Writes benchmarks/results/schemathesis.json and schemathesis.md (with the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"
KEY, ADMIN_KEY = "fuzz-client-key", "fuzz-admin-key"
CONFIG = Path(__file__).parent / "schemathesis.toml"  # 413 counts as rejecting bad data


def build_models(root: Path) -> Path:
    """Two copies of a small fitted item-kNN run under ``root`` (v1 is served)."""
    from instructrec.data import make_split
    from instructrec.recommender import Recommender
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.testing.datasets import synthetic_dataset

    ds = synthetic_dataset()
    run = Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0)).save(root / "v1")
    shutil.copytree(run, root / "v2")
    return run


def start(run: Path, root: Path, db: str) -> tuple[subprocess.Popen, str]:
    from instructrec.testing.server import start_serve

    args = ["--model", str(run), "--model-root", str(root), "--db", db]
    args += ["--api-key", KEY, "--admin-key", ADMIN_KEY, "--seed", "0", "--log-level", "error"]
    return start_serve(args + ["--db-timeout", "2"], timeout=60.0)


def server_counts(base: str) -> dict[str, int]:
    """{status: requests} over every endpoint, from the server's /metrics."""
    import httpx

    counts: dict[str, int] = {}
    pattern = re.compile(r'^instructrec_http_requests_total\{.*status="(\d+)"\} (\d+)$')
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        m = pattern.match(line)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
    return counts


def run_schemathesis(base: str, seed: int, max_examples: int, report: Path) -> dict:
    """One ``schemathesis run --checks all``; returns its exit code, summary and failures."""
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe) if exe.exists() else "schemathesis", "--config-file", str(CONFIG)]
    cmd += ["run", f"{base}/openapi.json"]
    cmd += ["--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed)]
    cmd += ["-H", f"X-API-Key: {KEY}", "-H", f"X-Admin-Key: {ADMIN_KEY}", "--workers", "1"]
    cmd += ["--suppress-health-check", "all", "--report", "json", "--report-json-path"]
    cmd += [str(report), "--no-color"]
    t0 = time.perf_counter()
    env = {**os.environ, "NO_COLOR": "1"}  # its crash cache goes to the temporary folder:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=report.parent)
    out = done.stdout + done.stderr
    failures = _failures(report)
    return {
        "seed": seed,
        "max_examples": max_examples,
        "exit_code": done.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "failures": failures,
        "summary": "\n".join(out.strip().splitlines()[-14:]),
    }


def _failures(report: Path) -> list[dict]:
    """Failures and errors of schemathesis' JSON report (code, title, operations, count)."""
    if not report.exists():
        return [{"code": "-", "title": "no JSON report written", "operations": [], "count": 1}]
    data = json.loads(report.read_text())
    found = [
        {
            "code": str(f.get("code")),
            "title": str(f.get("title")),
            "operations": list(f.get("operations") or []),
            "count": int(f.get("count") or 1),
        }
        for f in data.get("failures") or []
    ]
    found += [
        {"code": "error", "title": str(e)[:300], "operations": [], "count": 1}
        for e in data.get("errors") or []
    ]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-requests", type=int, default=3000, help="keep fuzzing until then")
    ap.add_argument("--max-examples", type=int, default=150, help="per operation and run")
    ap.add_argument("--max-runs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-schemathesis-"))
    root = tmp / "models"
    run = build_models(root)
    from instructrec.evaluation.manifest import machine

    info = machine("schemathesis")
    proc, base = start(run, root, f"sqlite:///{tmp / 'fuzz.db'}")
    runs = []
    try:
        for i in range(args.max_runs):
            runs.append(run_schemathesis(base, i, args.max_examples, tmp / f"report-{i}.json"))
            counts = server_counts(base)
            print(f"run {i}: {sum(counts.values())} requests so far {counts}", file=sys.stderr)
            if sum(counts.values()) >= args.min_requests:
                break
    finally:
        proc.terminate()
        proc.wait(10)
    total = sum(counts.values())
    server_errors = sum(v for k, v in counts.items() if k.startswith("5"))
    failures = [f for r in runs for f in r["failures"]]
    n_failures = sum(f["count"] for f in failures)
    report = {
        "benchmark": "schemathesis",
        "command": "schemathesis run --checks all (examples, coverage, fuzzing, stateful)",
        "model": "item-kNN on synthetic_dataset(), store SQLite",
        "machine": info,
        "requests": total,
        "by_status": dict(sorted(counts.items())),
        "server_errors_5xx": server_errors,
        "check_failures": n_failures,
        "failures": failures,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "schemathesis.json").write_text(json.dumps(report, indent=2))
    md = [
        "Schemathesis over the whole API (`--checks all`, admin endpoint reachable with a model "
        f"root), {len(runs)} run(s), seeds 0-{len(runs) - 1}.",
        f"Machine: {info['cpu_count']} CPUs, {info['platform']}, Python {info['python']}, "
        f"schemathesis {info['schemathesis']}.",
        "",
        "| requests (server count) | 5xx | check failures | by status |",
        "|---|---|---|---|",
        f"| {total} | {server_errors} | {n_failures} | "
        + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        + " |",
    ]
    if failures:
        md += ["", "| code | failure | operations | count |", "|---|---|---|---|"]
        md += [
            f"| {f['code']} | {f['title']} | {', '.join(f['operations'])} | {f['count']} |"
            for f in failures[:50]
        ]
    (args.out / "schemathesis.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures or server_errors else 0)


if __name__ == "__main__":
    main()
