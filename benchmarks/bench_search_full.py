"""Benchmark: which parts of the instruction-aware candidate path carry `search-full`.

On a saved run (``--run``: a `train` run directory holding ``model/`` and ``split/``), at the
validation stage (derived I2 intentions, seed 0), the run's Recommender ranks the target among
all unseen items through four variants of its serving path (`rerank.candidates`):

- ``top200``: the retriever's top 200 reordered by the reranker (the path before the change);
- ``union-model-order``: + catalogue items matching the parsed intention + dense retrieval,
  ordered by the reranker alone;
- ``union-no-dense``: matching items, no dense channel, match grade first;
- ``serving``: all three channels, match grade first (what `Recommender.answer` serves).

    python benchmarks/bench_search_full.py --run runs/ml100k/seed-0 --out OUT

Writes OUT/search_full_paths.{json,md}: Recall@10 and NDCG@10 with 95% bootstrap CIs, mean
candidate-set size and how often the target is in it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

VARIANTS = {  # name -> (n_match, n_dense, match_first); None: the serving value
    "top200": (0, 0, False),
    "union-model-order": (None, None, False),
    "union-no-dense": (None, 0, True),
    "serving": (None, None, True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stage", default="valid")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from instructrec import stats as S
    from instructrec.data import load_split
    from instructrec.evaluation import metrics as M
    from instructrec.evaluation.intentions import protocol_intentions
    from instructrec.evaluation.protocols import PROTOCOLS, stage_rows
    from instructrec.evaluation.search_full import candidate_path_ranks
    from instructrec.recommender import Recommender

    torch.set_num_threads(1)
    rec = Recommender.load(Path(args.run) / "model")
    split = load_split(Path(args.run) / "split", rec.dataset)
    rows = stage_rows(split, args.stage)
    texts, _, _ = protocol_intentions(
        PROTOCOLS["search-full"], rec.dataset, rows.targets, args.seed
    )
    idx = S.resample_indices(len(rows.users), S.N_BOOT, args.seed)
    out: dict = {"run": str(args.run), "stage": args.stage, "rows": len(rows.users)}
    for name, (n_match, n_dense, first) in VARIANTS.items():
        t0 = time.perf_counter()
        ranks, sizes, inside = candidate_path_ranks(
            rec, rec.dataset, rows, texts, n_match=n_match, n_dense=n_dense, match_first=first
        )
        vals = M.compute(ranks, ["Recall@10", "NDCG@10"])
        out[name] = {
            **{m: [float(v.mean()), *S.bootstrap_ci(v, idx)] for m, v in vals.items()},
            "candidates": float(sizes.mean()),
            "target_in_candidates": float(inside.mean()),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(name, out[name], flush=True)
    out["machine"] = {"platform": platform.platform(), "torch_threads": 1}
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "search_full_paths.json").write_text(json.dumps(out, indent=1))
    lines = [
        f"search-full, {args.stage} stage, {out['rows']} rows, run {args.run}",
        "",
        "| variant | Recall@10 [95% CI] | NDCG@10 [95% CI] | candidates | target in them |",
        "|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        r = out[name]
        cell = {
            m: f"{r[m][0]:.4f} [{r[m][1]:.4f}, {r[m][2]:.4f}]" for m in ("Recall@10", "NDCG@10")
        }
        lines.append(
            f"| {name} | {cell['Recall@10']} | {cell['NDCG@10']} | {r['candidates']:.0f} | "
            f"{r['target_in_candidates']:.3f} |"
        )
    (dest / "search_full_paths.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
