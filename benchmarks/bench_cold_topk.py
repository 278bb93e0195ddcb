"""Where cold items land in `search-full` (docs/reranker.md, "The cold candidates' place in a
long list"): per trained run, on the validation rows of one seed, the mean number of cold
items (no training interaction) in each row's instruction-aware candidate set and in its top
10 as the reranker orders it, the share of rows with any cold item in the top 10, and the
protocol's NDCG@10.

    python benchmarks/bench_cold_topk.py --runs runs/A runs/B --labels a b --seed 0 \
        --name cold_topk_ml100k_valid

Writes benchmarks/results/NAME.{json,md}. Validation only (development).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def cold_topk(run_dir: str, seed: int) -> dict:
    """The counts for one run's ``seed`` model (module docstring)."""
    import instructrec.rerank.candidates as C
    from instructrec.data import load_split
    from instructrec.rerank.cold import zero_interaction_items
    from instructrec.runs import load_seed_models, run_split_dir

    runmod = importlib.import_module("instructrec.evaluation.run")
    rec = load_seed_models(run_dir)[seed]
    ds = rec.dataset
    split = load_split(run_split_dir(run_dir), ds)
    cold_items = zero_interaction_items(split.train, ds.n_items)
    seen: dict = {}
    top, inset, size = [], [], []
    orig_ic, orig_ro = C.instruction_candidates, C.rank_order

    def ic(*a, **k):
        cs = orig_ic(*a, **k)
        seen["items"], seen["valid"] = cs.items, cs.valid
        return cs

    def ro(sc, grade, valid, match_first=True):
        order = orig_ro(sc, grade, valid, match_first=match_first)
        items = np.take_along_axis(seen["items"], order, 1)[:, :10]
        ok = np.take_along_axis(valid, order, 1)[:, :10]
        top.extend((cold_items[items] & ok).sum(1).tolist())
        inset.extend((cold_items[seen["items"]] & seen["valid"]).sum(1).tolist())
        size.extend(seen["valid"].sum(1).tolist())
        return order

    C.instruction_candidates, C.rank_order = ic, ro
    try:
        rep = runmod.run(
            "search-full", ds, split, {"instructrec": rec}, seed=seed, stage="valid", n_boot=10
        )
    finally:
        C.instruction_candidates, C.rank_order = orig_ic, orig_ro
    top_a = np.asarray(top)
    fill = getattr(rec.reranker.config, "cold_fill", "list") if rec.reranker else None
    return {
        "run": str(run_dir),
        "seed": seed,
        "cold_dropout": getattr(rec.reranker.config, "cold_dropout", 0.0) if rec.reranker else None,
        "cold_fill": fill,
        "cold_items": int(cold_items.sum()),
        "rows": len(top_a),
        "candidates_per_row": float(np.mean(size)),
        "cold_in_candidates_per_row": float(np.mean(inset)),
        "cold_in_top10_per_row": float(top_a.mean()),
        "rows_with_cold_in_top10": float((top_a > 0).mean()),
        "ndcg@10": rep.mean("instructrec", "NDCG@10"),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", required=True)
    ap.add_argument("--note", default="")
    a = ap.parse_args(argv)
    from instructrec.evaluation.manifest import git_commit, machine

    labels = a.labels or [Path(r).name for r in a.runs]
    t0 = time.perf_counter()
    rows = {lab: cold_topk(r, a.seed) for lab, r in zip(labels, a.runs, strict=True)}
    out = {
        "machine": machine("torch", "numpy"),
        "seconds": time.perf_counter() - t0,
        "note": a.note,
        "commit": git_commit(),
        "runs": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{a.name}.json").write_text(json.dumps(out, indent=2))
    md = [
        f"# Cold items in the top 10 of `search-full` (validation, seed {a.seed})",
        "",
        f"Machine: {json.dumps(out['machine'])}; code at {out['commit']}; "
        f"{out['seconds']:.0f} s. {a.note}",
        "",
        "| run | cold_dropout | cold_fill | candidates / row | cold in candidates / row "
        "| cold in top 10 / row | rows with a cold item in the top 10 | NDCG@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lab, r in rows.items():
        md.append(
            f"| {lab} | {r['cold_dropout']} | {r['cold_fill']} | {r['candidates_per_row']:.0f} "
            f"| {r['cold_in_candidates_per_row']:.2f} | {r['cold_in_top10_per_row']:.2f} "
            f"| {r['rows_with_cold_in_top10']:.3f} | {r['ndcg@10']:.4f} |"
        )
    (RESULTS / f"{a.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return out


if __name__ == "__main__":
    main()
