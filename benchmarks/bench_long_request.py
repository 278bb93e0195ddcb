"""What one long request costs a micro-batch of short ones, in the query tower of a saved model.

Since session 23 scoring and serving read a request whole (up to 256 tokens; a training step
reads `max_query_len`), so a batch holding one long request could pad every short one to its
length. `models.scoring.encode_queries` encodes texts in passes of similar length
(`encoder_config.length_passes`); this measures 31 short requests + 1 long one (~160 tokens)
encoded together that way ("split"), in one pass padded to the long one ("one pass", what a
plain padded batch costs), the 31 short ones alone, and the same 32 with the long one cut at
the training length (what was paid before, when its end was not read). Variants alternate
within each repeat; the table gives medians. Torch runtime (the service's).

    python benchmarks/bench_long_request.py --model runs/ml100k/seed-0/model

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
SHORT = "I have watched the movies in the history. Right now I'm in the mood for a light comedy "
SHORT += "number {i}. Which movie fits best?"
LONG = (
    "I have watched the movies in the history. Right now I'm in the mood for "
    + "after a long week I finally have a quiet evening to myself and would like " * 9
    + "a musical. Which movie fits best?"
)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a saved run's model directory")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="long_request")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from instructrec.models import scoring
    from instructrec.models.encoder_config import length_passes
    from instructrec.recommender import Recommender

    torch.set_num_threads(args.threads)
    scorer = Recommender.load(args.model, runtime="torch").reranker.scorer
    model, tok = scorer.model, scorer.tokenizer
    model.eval()
    short = [SHORT.format(i=i) for i in range(31)]
    cut = tok.decode(tok(LONG)["input_ids"][1 : model.config.max_query_len - 1])
    variants = {
        "split (shipped)": (short + [LONG], length_passes),
        "one pass": (short + [LONG], lambda lens, b, spread=None: length_passes(lens, b, None)),
        "31 short alone": (short, length_passes),
        "long one cut at max_query_len (before)": (short + [cut], length_passes),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for _ in range(args.repeats):
            for name, (texts, rule) in variants.items():
                scoring.length_passes = rule
                t0 = time.perf_counter()
                scoring.encode_queries(model, tok, texts)
                times[name].append(time.perf_counter() - t0)
    scoring.length_passes = length_passes
    res = {
        "model": str(args.model),
        "long_tokens": len(tok(LONG)["input_ids"]),
        "max_query_len": model.config.max_query_len,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg()[0],
        },
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "all_s": times,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(res, indent=2) + "\n")
    base = res["median_s"]["split (shipped)"]
    lines = [
        "# One long request in a micro-batch of 32: query tower time",
        "",
        f"Model `{args.model}` (torch runtime, {args.threads} threads); long request "
        f"{res['long_tokens']} tokens, training length {res['max_query_len']}; "
        f"{args.repeats} repeats, variants alternating. Machine: {res['machine']['platform']}, "
        f"{res['machine']['cpus']} CPUs, load average at the end {res['machine']['load_avg']:.2f}.",
        "",
        "| variant | median s | vs split |",
        "|---|---:|---:|",
        *(f"| {k} | {v:.3f} | {v / base:.2f}x |" for k, v in res["median_s"].items()),
    ]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return res


if __name__ == "__main__":
    main()
