"""SASRec fit time with 1 vs 2 torch threads (issues 14 and 20: where the Games run and the
quickstart spend their time), one process, alternating, on the runs' own splits.

    python benchmarks/bench_sasrec_threads.py [--games-epochs 1] [--ml-epochs 0] [--games-split DIR]

ML-100K: the shipped SASRec (early stopping as shipped, unless --ml-epochs caps it); Amazon Games
(when ../shared/data/amazon-games exists): --games-epochs epochs. Writes
benchmarks/results/sasrec_threads.{json,md} with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"
GAMES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "amazon-games"


def fit_once(ds, split, threads: int, max_epochs: int | None) -> dict:
    from instructrec.retrieval.sasrec import SASRec, SASRecConfig

    kw = {"threads": threads, "seed": 0}
    if max_epochs:
        kw["max_epochs"] = max_epochs
    t0 = time.perf_counter()
    m = SASRec(SASRecConfig(**kw)).fit(split.train, ds.n_users, ds.n_items, valid=split.valid)
    wall = time.perf_counter() - t0
    h = m.history_
    return {"threads": threads, "wall_s": round(wall, 1), "epochs": len(h),
            "s_per_epoch": round(wall / max(len(h), 1), 1),
            "best_valid_ndcg@10": round(float(m.best_valid_ndcg_), 4)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--games-epochs", type=int, default=1)
    ap.add_argument("--ml-epochs", type=int, default=0, help="0: early stopping as shipped")
    ap.add_argument("--games-split", default=None, help="a saved Games split folder to reuse")
    args = ap.parse_args()
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.data.spec import load_data_spec
    from instructrec.data.split_files import load_split
    from instructrec.evaluation.manifest import git_commit, machine

    rows = []
    sets = [("ml-100k", lambda: load_movielens_100k(), args.ml_epochs)]
    if GAMES.exists():
        sets.append(("amazon-games", lambda: load_data_spec(str(GAMES)), args.games_epochs))
    for name, load, epochs in sets:
        ds = load()
        saved = args.games_split if name == "amazon-games" else None
        split = load_split(saved, ds) if saved else make_split(ds, seed=0)
        for threads in (1, 2):
            r = {"data": name, **fit_once(ds, split, threads, epochs or None),
                 "load_avg": list(os.getloadavg())}  # fmt: skip
            rows.append(r)
            print(json.dumps(r), flush=True)
    out = {"machine": machine(), "git": git_commit(), "rows": rows}
    (OUT / "sasrec_threads.json").write_text(json.dumps(out, indent=1))
    lines = ["# SASRec fit: 1 vs 2 torch threads", "",
             f"Machine: {out['machine']}; git {out['git']}. Same split, seed 0, one process.", "",
             "| data | threads | epochs | wall s | s / epoch | best valid NDCG@10 | load avg |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['data']} | {r['threads']} | {r['epochs']} | {r['wall_s']} | "
                     f"{r['s_per_epoch']} | {r['best_valid_ndcg@10']} | {r['load_avg'][0]:.2f} |")  # fmt: skip
    (OUT / "sasrec_threads.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
