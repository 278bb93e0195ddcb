"""Data room benchmark: load + leave-one-out split + candidate files (cand10, cand20) + save.

Two inputs: the embedded MovieLens-100K, and a synthetic log generated here (default 10M
interactions, 1M users, 100k items, integer ids, Zipf-like item popularity, timestamps with
ties) written to Parquet first. Each measurement runs in a fresh child process so its peak
RSS (``resource.getrusage``) covers only load + split + candidates + save.

    python benchmarks/bench_data.py                      # full run (about a minute of CPU)
    python benchmarks/bench_data.py --interactions 1e6 --users 1e5 --items 1e4   # quick

Writes benchmarks/results/data.json and data.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def generate(path: Path, n_users: int, n_items: int, n_inter: int, seed: int = 0) -> int:
    """A synthetic log with integer ids, >= 3 interactions per user, rows in random order."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    counts = 3 + rng.poisson(max(0.0, n_inter / n_users - 3), n_users)
    counts = np.maximum(3, np.round(counts * n_inter / counts.sum()).astype(np.int64))
    n = int(counts.sum())
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=n, p=pop / pop.sum()).astype(np.int64)
    ts = 1_500_000_000 + rng.integers(0, 10_000_000, n) // 60 * 60  # minute resolution: ties
    perm = rng.permutation(n)
    frame = pd.DataFrame(
        {
            "user_id": users[perm] + 1,
            "item_id": items[perm] + 1,
            "rating": rng.integers(1, 6, n).astype(np.float32),
            "timestamp": ts[perm],
        }
    )
    frame.to_parquet(path, index=False)
    return n


def child(spec: str, out: str) -> dict:
    """Load ``spec``, split, draw candidates, save; stage times and peak RSS."""
    from instructrec.data import load_movielens_100k
    from instructrec.data.readers import read_any
    from instructrec.data.split import add_candidates, leave_one_out
    from instructrec.data.split_files import save_split

    times = {}
    t0 = t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        times[name] = round(now - t, 2)
        t = now

    if spec == "ml-100k":
        ds = load_movielens_100k()
    elif spec.startswith("ml-100k="):  # the atomic files copied elsewhere (no recbole there)
        ds = read_any(spec.split("=", 1)[1])
    else:
        ds = read_any(spec)
    lap("load")
    split = leave_one_out(ds, seed=0)
    lap("leave_one_out")
    add_candidates(ds, split)
    lap("candidates")
    save_split(split, out, ds)
    lap("save")
    seqs = split.sequences("test")
    lap("sequences(test)")
    times["total (load+split+candidates+save)"] = round(
        sum(times[k] for k in ("load", "leave_one_out", "candidates", "save")), 2
    )
    return {
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": len(ds.interactions),
        "test_rows": len(split.test),
        "sequences": len(seqs),
        "seconds": times,
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        # CPU seconds (user + system): on a shared host, wall time also counts waiting
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
    }


def run_child(spec: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", spec, "--split-out", out],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode:
        print(f"child failed on {spec}:\n{proc.stderr}", file=sys.stderr)
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--items", type=float, default=1e5)
    ap.add_argument("--interactions", type=float, default=1e7)
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--ml100k", default=None, help="ML-100K atomic directory (default: embedded)")
    ap.add_argument("--workdir", default=None, help="keep the generated Parquet here")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--tag", default="", help="results go to data.TAG.json / data.TAG.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--split-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.split_out)))
        return

    from instructrec.evaluation.manifest import machine

    results = {"machine": machine("numpy", "pandas", "pyarrow", "torch"), "runs": {}}
    results["runs"]["ml-100k"] = run_child(f"ml-100k={args.ml100k}" if args.ml100k else "ml-100k")
    print("ml-100k", results["runs"]["ml-100k"], flush=True)
    if not args.skip_synthetic:
        n_users, n_items, n_inter = int(args.users), int(args.items), int(args.interactions)
        work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_data_"))
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"synthetic_{n_inter}.parquet"
        if not path.exists():
            t = time.perf_counter()
            generate(path, n_users, n_items, n_inter)
            print(f"generated {path} in {time.perf_counter() - t:.1f}s", flush=True)
        key = f"synthetic {n_inter / 1e6:g}M ({n_users:,} users, {n_items:,} items)"
        results["runs"][key] = run_child(str(path))
        print(key, results["runs"][key], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"data.{args.tag}" if args.tag else "data"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (out / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs (load average at start "
        f"{m['load_avg'][0]}), python {m['python']}, numpy {m['numpy']}, "
        f"pandas {m['pandas']}, pyarrow {m['pyarrow']}, torch {m['torch']}.",
        "",
        "| data | interactions | users | items | load s | split s | candidates s | save s "
        "| total s | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["runs"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |")
            continue
        s = r["seconds"]
        lines.append(
            f"| {name} | {r['interactions']:,} | {r['users']:,} | {r['items']:,} | "
            f"{s['load']} | {s['leave_one_out']} | {s['candidates']} | {s['save']} | "
            f"{s['total (load+split+candidates+save)']} | {r['peak_rss_gib']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
