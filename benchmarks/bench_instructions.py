"""Benchmark: instructions built per second by `instructrec.instructions.build`.

Two workloads (issue 3): the embedded MovieLens-100K, and a synthetic log of 10M
interactions (1M users x 10, 100k items with titles, genres and years) built with
`Dataset.from_frames` and `leave_one_out`. Writes benchmarks/results/instructions.{json,md}.

    python benchmarks/bench_instructions.py                 # both workloads
    python benchmarks/bench_instructions.py --users 100000  # a smaller synthetic log
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from instructrec.data import Dataset, leave_one_out, load_movielens_100k, make_split
from instructrec.instructions import build

OUT = Path(__file__).parent / "results"
GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
WORDS = [
    "night",
    "day",
    "river",
    "city",
    "king",
    "queen",
    "love",
    "war",
    "star",
    "dream",
    "house",
    "road",
    "storm",
    "heart",
    "game",
    "ghost",
    "summer",
    "winter",
    "secret",
    "last",
    "first",
    "little",
    "big",
    "lost",
    "return",
]


def synthetic(n_users: int, n_items: int, per_user: int, seed: int = 0) -> Dataset:
    """A log of n_users * per_user interactions with item titles, genres and years."""
    rng = np.random.default_rng(seed)
    w = np.array(WORDS, dtype=object)
    a, b = rng.integers(0, len(w), n_items), rng.integers(0, len(w), n_items)
    titles = (
        pd.Series(w[a]).str.title()
        + " "
        + pd.Series(w[b])
        + " "
        + pd.Series(np.arange(n_items)).astype(str)
    )
    g1 = rng.integers(0, len(GENRES), n_items)
    g2 = rng.integers(0, len(GENRES), n_items)
    gen = np.array(GENRES, dtype=object)
    genres = [(gen[x],) if x == y else (gen[x], gen[y]) for x, y in zip(g1, g2, strict=True)]
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "title": titles,
            "genres": genres,
            "year": pd.array(rng.integers(1930, 2020, n_items), dtype="Int64"),
        }
    )
    n = n_users * per_user
    pop = rng.zipf(1.3, n) % n_items  # a long tail, as in real logs
    inter = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(n_users), per_user),
            "item_id": pop,
            "rating": rng.integers(1, 6, n).astype(np.float32),
            "timestamp": np.tile(np.arange(per_user), n_users).astype(np.float64),
        }
    )
    return Dataset.from_frames("synthetic-10m", inter, items)


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def run(args) -> dict:
    rows = []
    ds = load_movielens_100k()
    split = make_split(ds, seed=0)
    build(ds, split, "train", slots=[("P1", "I0", "T3")])  # warm caches (titles, attributes)
    cases = [
        ("ml-100k", "train", "all seen slots", dict()),
        ("ml-100k", "train", "all seen slots, per_user=5", dict(per_user=5)),
        ("ml-100k", "test", "all seen slots (cand10)", dict()),
        (
            "ml-100k",
            "train",
            "P1 I0 T3, per_user=50",
            dict(slots=[("P1", "I0", "T3")], per_user=50),
        ),
    ]
    for name, stage, what, kw in cases:
        f, s = timed(lambda stage=stage, kw=kw: build(ds, split, stage, **kw), args.repeats)
        rows.append(
            {
                "data": name,
                "stage": stage,
                "what": what,
                "instructions": len(f),
                "seconds": round(s, 3),
                "per_second": round(len(f) / s),
            }
        )
        print(rows[-1], flush=True)
    if args.users:
        t = time.perf_counter()
        big = synthetic(args.users, args.items, args.per_user)
        t_data = time.perf_counter() - t
        t = time.perf_counter()
        bsplit = leave_one_out(big, seed=0)
        t_split = time.perf_counter() - t
        print(
            f"synthetic: {len(big.interactions):,} interactions in {t_data:.1f}s, "
            f"split {t_split:.1f}s",
            flush=True,
        )
        label = f"synthetic {len(big.interactions) / 1e6:.0f}M"
        for stage, what, kw in [
            ("train", "P1 I0 T3 (history + 10 candidates)", dict(slots=[("P1", "I0", "T3")])),
            (
                "train",
                "P1 I2 T3 + P2 I0 T2 + P0 I1 T3",
                dict(slots=[("P1", "I2", "T3"), ("P2", "I0", "T2"), ("P0", "I1", "T3")]),
            ),
            (
                "test",
                "P1 I0 T3 (sampled cand10)",
                dict(slots=[("P1", "I0", "T3")], candidates=None),
            ),
        ]:
            f, s = timed(lambda stage=stage, kw=kw: build(big, bsplit, stage, **kw), 1)
            rows.append(
                {
                    "data": label,
                    "stage": stage,
                    "what": what,
                    "instructions": len(f),
                    "seconds": round(s, 3),
                    "per_second": round(len(f) / s),
                }
            )
            print(rows[-1], flush=True)
            del f
    from instructrec.evaluation.manifest import machine

    return {"machine": machine("torch", "numpy", "pandas"), "results": rows}


def write(result: dict, out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "instructions.json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    lines = [
        "# Instruction builder throughput",
        "",
        f"Machine: {m['cpu_count']} CPUs ({m['cpus_usable']} usable), {m['platform']}, "
        f"Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}, pandas {m['pandas']}; "
        f"1-minute load average at the end: {m['load_avg'][0]:.1f}. {m.get('note', '')}",
        "",
        "| data | stage | slots | instructions | seconds | instructions/s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in result["results"]:
        lines.append(
            f"| {r['data']} | {r['stage']} | {r['what']} | {r['instructions']:,} | "
            f"{r['seconds']:.2f} | {r['per_second']:,} |"
        )
    (out / "instructions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000, help="synthetic users (0: skip)")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--per-user", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT, help="directory for the JSON and table")
    ap.add_argument("--note", default="", help="a line about the machine, for the table")
    a = ap.parse_args()
    res = run(a)
    res["machine"]["note"] = a.note
    write(res, a.out)
