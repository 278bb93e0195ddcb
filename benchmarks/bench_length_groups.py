"""The reranker's query tower, forward + backward, with and without length groups, interleaved.

Length groups: a batch's rows sorted by token count and cut into up to 4 groups, each run
through the tower trimmed to its own longest row (the same vectors: padding is masked). It
removes 12% of the tower's tokens (and FLOPs) of a quickstart batch, but on the 2-core box it
made the pass 1.6x SLOWER (more, smaller tower passes), so the library does not do it; this
script is the evidence.

The quickstart's training texts (`build_instances`, its slots/templates/intentions; no priors:
they do not change the texts' lengths), batches of 64 rows deduplicated as `Instances.collate`
does, LoRA r 8 on MiniLM. Each repeat runs the same batch both ways (alternating which goes
first), so a busy shared machine slows both alike; reports median wall and CPU seconds per
batch, the tower's tokens each way, and the ratio.

    python benchmarks/bench_length_groups.py --batches 8

Writes benchmarks/results/length_groups.json and length_groups.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"


GROUP_OVERHEAD_TOKENS = 96  # a tower pass costs about this many tokens' work beyond its rows'


def length_groups(lengths, max_groups: int = 4):
    """[(row indices, width)]: rows sorted by token count, cut into 1..``max_groups``
    equal-count groups, the cut minimising padded tokens + ``GROUP_OVERHEAD_TOKENS`` a group."""
    import torch

    n = len(lengths)
    order = torch.argsort(lengths, stable=True)
    srt = lengths[order].tolist()
    best, best_cost = [(order, int(srt[-1]))], n * srt[-1] + GROUP_OVERHEAD_TOKENS
    for g in range(2, max_groups + 1):
        cuts = [round(i * n / g) for i in range(g + 1)]
        pairs = list(zip(cuts, cuts[1:], strict=False))
        cost = sum((b - a) * srt[b - 1] + GROUP_OVERHEAD_TOKENS for a, b in pairs)
        if cost < best_cost:
            best, best_cost = [(order[a:b], int(srt[b - 1])) for a, b in pairs], cost
    return best


def grouped_query(model, input_ids, attention_mask):
    """`EncoderReranker.encode_query` run group by group, rows put back in order."""
    import torch

    groups = length_groups(attention_mask.sum(1))
    parts = [model.encode_query(input_ids[g, :w], attention_mask[g, :w]) for g, w in groups]
    order = torch.cat([g for g, _ in groups])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return torch.cat(parts)[inverse]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=8)
    a = ap.parse_args()

    import numpy as np
    import torch

    from instructrec.cli.quickstart import quickstart_config
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.evaluation.manifest import machine
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.rerank.instances import TextSide, build_instances
    from instructrec.rerank.rerank_features import item_texts
    from instructrec.rerank.reranker import InstructionReranker

    cfg = quickstart_config()
    ds = load_movielens_100k()
    split = make_split(ds, seed=0)
    torch.manual_seed(0)
    scorer = EncoderScorer.build(item_texts(ds), cfg.backbone)
    rr = InstructionReranker(scorer, TextSide.of(ds), cfg.reranker)
    rr.dataset = ds
    train = build_instances(rr, ds, split, [], cfg.reranker)
    model = scorer.model
    model.eval()  # no LoRA dropout: both ways compute the same numbers
    params = [p for p in model.tower.parameters() if p.requires_grad]
    rng = np.random.default_rng(0)
    res = {"grouped": {"wall": [], "cpu": []}, "one padded pass": {"wall": [], "cpu": []}}
    tokens = {"grouped": 0, "one padded pass": 0}
    for b in range(a.batches):
        rows = rng.choice(len(train.label), cfg.training.batch_size, replace=False).tolist()
        batch = train.collate(rows)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        tokens["one padded pass"] += mask.numel()
        tokens["grouped"] += sum(len(g) * w for g, w in length_groups(mask.sum(1)))
        ways = [
            ("grouped", lambda i, m: grouped_query(model, i, m)),
            ("one padded pass", model.encode_query),
        ]
        for name, fn in ways if b % 2 == 0 else ways[::-1]:
            t0, c0 = time.perf_counter(), time.process_time()
            q = fn(ids, mask)
            torch.autograd.grad(q.sum(), params)
            res[name]["wall"].append(time.perf_counter() - t0)
            res[name]["cpu"].append(time.process_time() - c0)
    out = {
        name: {
            "wall_median_s": statistics.median(r["wall"]),
            "cpu_median_s": statistics.median(r["cpu"]),
            "tokens_per_batch": tokens[name] / a.batches,
        }
        for name, r in res.items()
    }
    ratio_w = out["grouped"]["wall_median_s"] / out["one padded pass"]["wall_median_s"]
    ratio_c = out["grouped"]["cpu_median_s"] / out["one padded pass"]["cpu_median_s"]
    import os

    info = {
        "batches": a.batches,
        "machine": machine(),
        "loadavg": os.getloadavg(),
        "results": out,
        "grouped_over_padded_wall": ratio_w,
        "grouped_over_padded_cpu": ratio_c,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "length_groups.json").write_text(json.dumps(info, indent=1) + "\n")
    lines = [
        "# Reranker query tower (forward + backward): length groups vs one padded pass",
        "",
        f"{a.batches} quickstart training batches of 64 rows, interleaved; machine "
        f"{info['machine']}, load average {info['loadavg'][0]:.1f} (shared box: read the ratio).",
        "",
        "| way | tokens per batch | wall median (s) | CPU median (s) |",
        "|---|---|---|---|",
    ]
    for name, r in out.items():
        lines.append(
            f"| {name} | {r['tokens_per_batch']:.0f} | {r['wall_median_s']:.2f} | "
            f"{r['cpu_median_s']:.2f} |"
        )
    lines += ["", f"grouped / padded: wall {ratio_w:.2f}, CPU {ratio_c:.2f}"]
    (OUT / "length_groups.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
