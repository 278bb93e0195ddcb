"""CPU inference settings of the served reranker, chosen by measurement (issue 20, item 2).

On a saved run (the shipped model: SASRec + MiniLM/LoRA reranker), times the query tower and
whole batched answers (`rerank.batched`, query cache off so the tower runs) under:

- torch threads 1 vs 2 (the box's cores; the other rows use ``--threads``);
- ``torch.no_grad`` vs ``torch.inference_mode``;
- fp32 vs bf16 autocast of the tower;
- fp32 vs int8 dynamic quantisation of the tower's Linear layers (LoRA merged first);
- the tower in ONNX Runtime (``--onnx``: exported from the LoRA-merged torch tower; needs
  ``pip install onnxruntime onnx``, not a dependency) and in the NumPy runtime
  (`models.np_encoder`, what ``instructrec recommend`` runs), with the largest difference of
  their query vectors from torch's;

each variant timed in alternation with fp32 (``--reps`` rounds, medians), and for bf16 and
int8 the quality on VALIDATION cand10 (HR@1, NDCG@10, all users, `evaluation.run`) against
fp32. Writes benchmarks/results/inference.json and .md.

    python benchmarks/bench_inference.py --model runs/quickstart
    python benchmarks/bench_inference.py --model runs/quickstart --onnx --no-quality --name inference_onnx
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import statistics
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"
TEXTS = [
    f"a {g}{d}"
    for g in ("comedy", "drama", "thriller", "romance", "horror", "western", "war film")
    for d in ("", " from the 80s", " from the 90s", " from the 70s")
]


def requests(rec, n: int, seed: int = 0):
    from instructrec.rerank.batched import Request

    rng = random.Random(seed)
    users = [str(u) for u in rec.dataset.user_ids]
    return [
        Request(user=rng.choice(users), instruction=rng.choice([*TEXTS, None, None]), n=10)
        for _ in range(n)
    ]


def reset(rec) -> None:
    """Drop the batched path's caches (so every query runs the tower)."""
    rec.reranker.__dict__.pop("_batched", None)


def time_answers(rec, reqs, batch: int, grad_ctx) -> float:
    """ms per request of batched answers, caches off."""
    import instructrec.rerank.batch_cache as C
    import instructrec.rerank.batched as B

    old = B.QueryCache, B.DENSE_CACHE_SIZE
    B.QueryCache = lambda scorer: C.QueryCache(scorer, size=0)
    B.DENSE_CACHE_SIZE = 0
    try:
        reset(rec)
        t = time.perf_counter()
        with grad_ctx():
            for s in range(0, len(reqs), batch):
                rec.answer_many(reqs[s : s + batch])
        return 1000 * (time.perf_counter() - t) / len(reqs)
    finally:
        B.QueryCache, B.DENSE_CACHE_SIZE = old
        reset(rec)


def time_tower(model, tok, grad_ctx, autocast=None, reps: int = 5) -> float:
    """ms per tower pass over a batch of the tokenized texts (median of ``reps``)."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        with grad_ctx(), autocast() if autocast else contextlib.nullcontext():
            model.encode_query(tok["input_ids"], tok["attention_mask"])
        out.append(1000 * (time.perf_counter() - t))
    return statistics.median(out)


def onnx_tower(model, tok, threads: int, where: Path):
    """(encode(ids, mask) -> unit query vectors as NumPy, the session): the model's tower
    exported to ONNX (LoRA merged, `bert_lite`'s torch tower) and run by ONNX Runtime."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from instructrec.np_ops import mean_pool, normalize

    class Hidden(torch.nn.Module):
        def __init__(self, tower) -> None:
            super().__init__()
            self.tower = tower

        def forward(self, ids, mask):
            return self.tower(ids, mask).last_hidden_state

    path = where / "tower.onnx"
    axes = {"ids": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "h": {0: "b", 1: "t"}}
    with torch.no_grad():
        torch.onnx.export(
            Hidden(model.tower).eval(),
            (tok["input_ids"], tok["attention_mask"]),
            str(path),
            input_names=["ids", "mask"],
            output_names=["h"],
            dynamic_axes=axes,
            dynamo=False,
        )
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def encode(ids, mask):
        ids, mask = np.asarray(ids), np.asarray(mask)
        return normalize(mean_pool(sess.run(None, {"ids": ids, "mask": mask})[0], mask))

    return encode


def time_call(fn, reps: int = 5) -> float:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t))
    return statistics.median(out)


def quantized(rec):
    """A copy of ``rec`` whose query tower is LoRA-merged and int8 dynamically quantised."""
    import torch

    q = copy.copy(rec)
    rr = copy.copy(rec.reranker)
    rr.__dict__.pop("_batched", None)
    scorer = copy.copy(rr.scorer)
    model = copy.deepcopy(rr.scorer.model)
    tower = model.tower
    if hasattr(tower, "merge_and_unload"):
        tower = tower.merge_and_unload()
    model.tower = torch.ao.quantization.quantize_dynamic(
        tower, {torch.nn.Linear}, dtype=torch.qint8
    )
    scorer.model = model
    rr.scorer = scorer
    q.reranker = rr
    return q


class Scoring:
    """Only ``score_candidates`` of a recommender (what evaluation calls; a quantised model's
    packed weights are not hashable tensors for the run manifest)."""

    def __init__(self, rec) -> None:
        self.rec = rec

    def score_candidates(self, *a, **kw):
        return self.rec.score_candidates(*a, **kw)


class Bf16(Scoring):
    """Wraps a recommender: its reranker's tower runs under bf16 autocast."""

    def __init__(self, rec) -> None:
        import torch

        self.rec = copy.copy(rec)
        rr = copy.copy(rec.reranker)
        scorer = copy.copy(rr.scorer)
        model = copy.copy(rr.scorer.model)
        inner = model.encode_query

        def encode(ids, mask):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return inner(ids, mask).float()

        model.encode_query = encode
        scorer.model = model
        rr.scorer = scorer
        self.rec.reranker = rr


def quality(run_dir: Path, rec, variants: dict) -> dict:
    """The validation cand10 table (all validation users) of each variant, and its markdown."""
    from instructrec.data import load_split
    from instructrec.evaluation.run import run
    from instructrec.runs import run_split_dir

    split = load_split(run_split_dir(run_dir), rec.dataset)
    rep = run("cand10", rec.dataset, split, variants, stage="valid", baselines=[], n_boot=200)
    return {"table": rep.table.round(4).to_dict(), "markdown": rep.to_markdown()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a saved run (the shipped model)")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the other rows")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--onnx", action="store_true", help="also ONNX Runtime and NumPy towers")
    ap.add_argument("--name", default="inference", help="results file name (json, md)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import torch

    from instructrec.cli.common import model_path
    from instructrec.evaluation.manifest import machine
    from instructrec.recommender import Recommender

    rec = Recommender.load(model_path(args.model))
    reqs = requests(rec, args.requests)
    info = {**machine(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}
    model = rec.reranker.scorer.model
    model.eval()
    tok = rec.reranker.scorer.tokenize(TEXTS[: args.batch])
    int8 = quantized(rec)
    rows: dict[str, list[float]] = {}
    extra: dict[str, float] = {}
    if args.onnx:
        import tempfile

        import numpy as np
        from threadpoolctl import threadpool_limits

        from instructrec.models.np_encoder import NumpyEncoderScorer

        run = Path(model_path(args.model))
        ort_encode = onnx_tower(model, tok, args.threads, Path(tempfile.mkdtemp()))
        np_model = NumpyEncoderScorer.load(run / "reranker" / "encoder").model
        ids, mask = tok["input_ids"].numpy(), tok["attention_mask"].numpy()
        with torch.inference_mode():
            ref = model.encode_query(tok["input_ids"], tok["attention_mask"]).numpy()
        extra["onnxruntime max |q - q_torch|"] = float(np.abs(ort_encode(ids, mask) - ref).max())
        texts = TEXTS[: args.batch]
        extra["numpy max |q - q_torch|"] = float(np.abs(np_model.encode_queries(texts) - ref).max())

    def add(name, value):
        rows.setdefault(name, []).append(round(value, 2))

    rec.answer_many(reqs[:4])  # warm
    for _ in range(args.reps):  # variants in alternation: the box's load hits all alike
        for threads in (1, 2):
            torch.set_num_threads(threads)
            add(f"answers, threads {threads}", time_answers(rec, reqs, args.batch, torch.no_grad))
        torch.set_num_threads(args.threads)
        add("tower, no_grad", time_tower(model, tok, torch.no_grad))
        add("tower, inference_mode", time_tower(model, tok, torch.inference_mode))
        bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
        add("tower, bf16 autocast", time_tower(model, tok, torch.inference_mode, bf16))
        add(
            "tower, int8 dynamic", time_tower(int8.reranker.scorer.model, tok, torch.inference_mode)
        )
        add("answers, int8 tower", time_answers(int8, reqs, args.batch, torch.inference_mode))
        add("answers, fp32 tower", time_answers(rec, reqs, args.batch, torch.inference_mode))
        if args.onnx:
            add("tower, onnxruntime", time_call(lambda: ort_encode(ids, mask)))
            with threadpool_limits(args.threads):
                add("tower, numpy runtime", time_call(lambda: np_model.encode_queries(texts)))
    timings = {k: {"median_ms": statistics.median(v), "runs_ms": v} for k, v in rows.items()}
    report = {
        "benchmark": "CPU inference settings (issue 20, item 2)",
        "model": str(args.model),
        "batch": args.batch,
        "requests": args.requests,
        "machine": {**info, "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "timings": timings,
        "vector_differences": extra,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    if not args.no_quality:
        t = time.perf_counter()
        report["quality_valid_cand10"] = quality(
            args.model, rec, {"fp32": Scoring(rec), "int8": Scoring(int8), "bf16": Bf16(rec)}
        )
        report["quality_s"] = round(time.perf_counter() - t, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str))
    md = [
        f"CPU inference settings, model `{args.model}`, {args.requests} requests in batches of "
        f"{args.batch} (caches off), {args.reps} alternating rounds, medians; rows other than "
        f"the threads rows with {args.threads} torch thread(s).",
        f"Machine: {info['cpu_count']} CPUs, load average {info['load_avg_at_start']} at start, "
        f"{report['machine']['load_avg_at_end']} at end (shared box: read the ratios).",
        "",
        "| variant | median ms | runs |",
        "|---|---|---|",
    ]
    md += [f"| {k} | {v['median_ms']} | {v['runs_ms']} |" for k, v in timings.items()]
    md += [f"\n{k}: {v:.2e}" for k, v in extra.items()]
    if "quality_valid_cand10" in report:
        md += ["", "Validation cand10 (all users):", "", report["quality_valid_cand10"]["markdown"]]
    (args.out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
