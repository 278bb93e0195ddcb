"""What a larger instruction tower costs at inference: query encoding time per backbone.

Each backbone (offline registry keys or directories; default: the shipped MiniLM and
all-mpnet-base-v2) encodes the same instruction texts (the quickstart's I1 requests rendered at
up to ``--max-len`` tokens) at batch 1 (one request, what `recommend` pays) and at batch 32 (the
service's micro-batches), and the ML-100K item texts once (what training and a cold load pay).
Backbones alternate within each repeat, so a box whose load drifts hurts them alike; the table
gives the median over repeats and each backbone's time relative to the first.

    python benchmarks/bench_tower_cost.py --name tower_cost

Writes benchmarks/results/NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _texts(n: int) -> tuple[list[str], list[str]]:
    from instructrec.data import load_movielens_100k
    from instructrec.rerank.rerank_features import item_texts

    ds = load_movielens_100k()
    items = item_texts(ds)
    base = "I have watched {a}, {b} and {c}. I'd like something funny and light, maybe from the "
    base += "nineties, nothing too violent; what should I watch next?"
    queries = [base.format(a=items[i], b=items[i + 1], c=items[i + 2]) for i in range(0, 3 * n, 3)]
    return queries, items


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", default="all-minilm-l6-v2,all-mpnet-base-v2")
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--max-len", type=int, default=48, help="tokens per query (the reranker's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="tower_cost")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from instructrec.models.text_encoder import encode_texts, load_encoder

    torch.set_num_threads(args.threads)
    queries, items = _texts(args.queries)
    names = [b.strip() for b in args.backbones.split(",") if b.strip()]
    loaded = {}
    for name in names:
        t0 = time.perf_counter()
        loaded[name] = load_encoder(name)
        params = sum(p.numel() for p in loaded[name][1].parameters())
        loaded[name] = (*loaded[name], time.perf_counter() - t0, params)
    times: dict[str, dict[str, list[float]]] = {
        n: {"b1": [], "b32": [], "items": []} for n in names
    }
    for _ in range(args.repeats):
        for name in names:
            tok, model = loaded[name][:2]
            t0 = time.perf_counter()
            for q in queries:
                encode_texts(tok, model, [q], max_len=args.max_len, batch_size=1)
            times[name]["b1"].append((time.perf_counter() - t0) / len(queries))
            t0 = time.perf_counter()
            encode_texts(tok, model, queries, max_len=args.max_len, batch_size=32)
            times[name]["b32"].append((time.perf_counter() - t0) / len(queries))
            t0 = time.perf_counter()
            encode_texts(tok, model, items, max_len=64)
            times[name]["items"].append(time.perf_counter() - t0)
    rows = {}
    for name in names:
        med = {k: statistics.median(v) for k, v in times[name].items()}
        rows[name] = {
            "parameters": loaded[name][3],
            "load_s": round(loaded[name][2], 2),  # the first includes importing torch/transformers
            "query_ms_batch1": round(1000 * med["b1"], 2),
            "query_ms_batch32": round(1000 * med["b32"], 2),
            "items_s": round(med["items"], 2),
            "raw": times[name],
        }
    first = rows[names[0]]
    for r in rows.values():
        r["x_batch1"] = round(r["query_ms_batch1"] / first["query_ms_batch1"], 2)
        r["x_batch32"] = round(r["query_ms_batch32"] / first["query_ms_batch32"], 2)
    result = {
        "command": "python benchmarks/bench_tower_cost.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "rows": rows,
        "n_items": len(items),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "torch": torch.__version__,
            "threads": args.threads,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    md = [
        "# Query-tower cost per backbone (inference, CPU)",
        "",
        f"`{result['command']}`; {result['machine']['platform']}, {result['machine']['cpus']} "
        f"CPUs, torch {torch.__version__} on {args.threads} threads, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in result['machine']['load_avg'])}. {args.queries} "
        f"requests of up to {args.max_len} tokens; medians of {args.repeats} alternated repeats.",
        "",
        "| backbone | parameters | query ms, batch 1 | x | query ms each, batch 32 | x "
        f"| {len(items)} item texts, s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['parameters'] / 1e6:.1f}M | {r['query_ms_batch1']} "
            f"| {r['x_batch1']} | {r['query_ms_batch32']} | {r['x_batch32']} | {r['items_s']} |"
        )
    (RESULTS / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
