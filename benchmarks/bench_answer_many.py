"""The service's model step in-process: `Recommender.answer_many` on batches of 8 requests,
this checkout vs a base commit, alternating fresh interpreters so both see the same box.

What the micro-batcher hands the model thread under 8 clients: 8 requests for random users, 3
in 5 with an instruction (as `bench_serving`). Each repeat loads the model, answers one warm-up
batch, then times ``--batches`` batches (wall and process CPU per batch, one torch thread) and
records the items it returned; both trees must return the same items.

    python benchmarks/bench_answer_many.py --model runs/quickstart/model --base-commit HEAD~3

Writes benchmarks/results/answer_many.json and .md (``--name``), with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from instructrec.recommender import Recommender
model, n_batches = sys.argv[1], int(sys.argv[2])
rec = Recommender.load(model, inference_only=True)
rng = np.random.default_rng(0)
ids = [str(u) for u in rec.dataset.user_ids]
users = [ids[j] for j in rng.integers(0, len(ids), size=8 * (n_batches + 1))]
texts = ["a light comedy", "something scary for tonight", "a classic drama", None, None]
batches = [[dict(user=users[8 * b + i], instruction=texts[(8 * b + i) % 5], n=10)
            for i in range(8)] for b in range(n_batches + 1)]
rec.answer_many(batches[0])
items = []
t0, c0 = time.perf_counter(), time.process_time()
for reqs in batches[1:]:
    for a in rec.answer_many(reqs):
        items.append(str(a) if isinstance(a, Exception) else [it.item_id for it in a.items])
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall_ms": 1000 * wall / n_batches, "cpu_ms": 1000 * cpu / n_batches,
                  "items": items}))
"""


def run_child(src: Path, model: str, n_batches: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    p = subprocess.run(
        [sys.executable, "-c", CHILD, model, str(n_batches)],
        capture_output=True,
        text=True,
        env=env,
    )
    if p.returncode != 0:
        raise SystemExit(f"{src}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a saved model (with a reranker)")
    ap.add_argument("--base-commit", required=True)
    ap.add_argument("--base-tree", default="/tmp/answer-many-base")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--name", default="answer_many")
    a = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from bench_cli_load import base_tree, run_facts, table_row, write_results

    trees = {
        f"before ({a.base_commit})": base_tree(a.base_commit, Path(a.base_tree)),
        "after": ROOT / "src",
    }
    load0 = os.getloadavg()
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    for i in range(a.repeats):
        for name, src in trees.items():
            r = run_child(src, a.model, a.batches)
            runs[name].append(r)
            print(f"repeat {i}: {name}: {r['cpu_ms']:.1f} ms CPU per batch of 8", flush=True)
    load1 = os.getloadavg()
    ref = runs[next(iter(trees))][0]["items"]
    rows = {
        name: {
            "cpu_ms_per_batch_median": round(statistics.median(r["cpu_ms"] for r in rs), 2),
            "wall_ms_per_batch_median": round(statistics.median(r["wall_ms"] for r in rs), 2),
            "cpu_ms_per_batch": [round(r["cpu_ms"], 2) for r in rs],
            "same_items_as_before": all(r["items"] == ref for r in rs),
        }
        for name, rs in runs.items()
    }
    result = {
        "model": a.model,
        "batches": a.batches,
        **run_facts(a.repeats, load0, load1),
        "results": rows,
    }
    lines = [
        f"# `Recommender.answer_many`, batches of 8 ({a.batches} batches x {a.repeats} repeats, "
        "alternating)",
        "",
        f"Model `{a.model}`; machine: {result['machine']}; load average {load0[0]:.1f} at "
        f"start, {load1[0]:.1f} at end (a shared box: read ratios).",
        "",
        "| tree | CPU ms per batch (median) | wall ms per batch (median) | CPU per repeat | "
        "same items |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        per = ", ".join(map(str, r["cpu_ms_per_batch"]))
        cells = [r["cpu_ms_per_batch_median"], r["wall_ms_per_batch_median"], per]
        lines.append(table_row(name, cells, r["same_items_as_before"]))
    write_results(a.name, result, lines)


if __name__ == "__main__":
    main()
