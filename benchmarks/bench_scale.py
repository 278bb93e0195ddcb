"""Scale benchmark: multi-process training throughput and batch-scoring throughput.

CPU (default; this machine has few, shared cores, so expect no speed-up from 2 processes):

- training: the loss-trajectory probe (`instructrec.scale.invariant`) with the shape of
  all-MiniLM-L6-v2 (6 layers, d=384, LoRA r=8 on query/value, random weights) through the
  real engine, 1 process vs 2 processes (DDP over gloo via `accelerate launch` and
  configs/accelerate/cpu_ddp_2proc.yaml), batch 16 per process, in child processes;
- batch scoring: synthetic user and item vectors (d=384, 1M items), top-100 per user, the
  local executor (torch threads) vs Ray Data with 2 workers.

GPU (``--gpu``; self-contained, needs only torch + transformers + peft + accelerate + pandas,
no model download, finishes in a few minutes on one H100):

- training: the same MiniLM-shaped probe on CUDA, fp32 vs bf16, batch 32 / 128 / 256;
- batch scoring on CUDA: 10k and 100k users x 1M items (d=384), top-100, fp32 vs bf16.

    python benchmarks/bench_scale.py                       # CPU, ~5 min on 2 busy cores
    python benchmarks/bench_scale.py --users 128 --items 200000 --steps 4   # quick
    PYTHONPATH=src python benchmarks/bench_scale.py --gpu --out-dir "$OUT"

Writes <out-dir>/scale.{json,md} (CPU) or scale_gpu.{json,md} (GPU); default out-dir is
benchmarks/results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- training
def probe_args(batch: int, steps: int, precision: str = "no", device: str = "auto") -> list[str]:
    return [
        "-m",
        "instructrec.scale.invariant",
        "--model=minilm",
        f"--batch-size={batch}",
        f"--steps={steps}",
        "--lora-r=8",
        "--min-len=24",
        "--max-len=48",
        f"--n-examples={max(64, batch * (steps + 2) * 2)}",
        "--save-params=false",
        f"--mixed-precision={precision}",
        f"--device={device}",
    ]


def train_cpu(steps: int) -> list[dict]:
    """1 process (all threads, then one) vs 2 processes (one thread each), batch 16 each."""
    rows = []
    runs = [
        ("1 process, all threads", [sys.executable], {}),
        ("1 process, 1 thread", [sys.executable], {"OMP_NUM_THREADS": "1"}),
        (
            "2 processes (DDP, gloo)",
            [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--config_file",
                str(ROOT / "configs/accelerate/cpu_ddp_2proc.yaml"),
                "--main_process_port",
                "29561",
            ],
            {"OMP_NUM_THREADS": "1"},
        ),
    ]
    for name, prefix, extra_env in runs:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "probe.json"
            cmd = [*prefix, *probe_args(16, steps), f"--out={out}"]
            env = {**os.environ, **extra_env, "TOKENIZERS_PARALLELISM": "false"}
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
            res = json.loads(out.read_text())
        rows.append(
            {
                "run": name,
                "world": res["world"],
                "batch_per_process": 16,
                "effective_batch": res["effective_batch"],
                "steps": res["steps"],
                "examples_per_s": round(res["examples_per_s"], 1),
                "process_wall_s": round(wall, 1),
                "final_loss": round(res["losses"][-1], 4),
            }
        )
        print(rows[-1], flush=True)
    return rows


def _peak_gib(device: str) -> float | None:
    import torch

    if device != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def train_gpu(steps: int, batches: tuple[int, ...], device: str = "cuda") -> list[dict]:
    """In-process probe on CUDA: a short warm-up run, then the measured run."""
    import torch

    from instructrec.scale.invariant import ProbeConfig, run_probe

    rows = []
    for precision in ("no", "bf16"):
        for batch in batches:
            cfg = dict(
                model="minilm",
                batch_size=batch,
                lora_r=8,
                min_len=24,
                max_len=48,
                save_params=False,
                mixed_precision=precision,
                device=device,
                n_examples=batch * (steps + 2) * 2,
            )
            with tempfile.TemporaryDirectory() as tmp:
                run_probe(ProbeConfig(steps=2, **cfg), Path(tmp) / "warm")
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                res = run_probe(ProbeConfig(steps=steps, **cfg), Path(tmp) / "run")
            rows.append(
                {
                    "precision": "fp32" if precision == "no" else precision,
                    "batch": batch,
                    "steps": res["steps"],
                    "examples_per_s": round(res["examples_per_s"], 1),
                    "peak_gpu_mem_gib": _peak_gib(device),
                    "final_loss": round(res["losses"][-1], 4),
                }
            )
            print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------- scoring
def synthetic_vectors(n_users: int, n_items: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    items = rng.standard_normal((n_items, d), dtype=np.float32)
    users = rng.standard_normal((n_users, d), dtype=np.float32)
    return users, items


def scoring_cpu(n_users: int, n_items: int, d: int, k: int, workers: int) -> list[dict]:
    import numpy as np

    from instructrec.scale.batch_scoring import BatchScoringConfig, batch_score

    users, items = synthetic_vectors(n_users, n_items, d)
    rng = np.random.default_rng(1)
    seen = [rng.integers(0, n_items, 20) for _ in range(n_users)]
    cfg = BatchScoringConfig(k=k, user_block=128, item_block=65536, num_workers=workers)
    rows = []
    t0 = time.perf_counter()
    local = batch_score(users, items, cfg, seen=seen)
    dt = time.perf_counter() - t0
    rows.append(
        {
            "backend": "local (torch, all threads)",
            "users": n_users,
            "items": n_items,
            "d": d,
            "k": k,
            "seconds": round(dt, 1),
            "users_per_s": round(n_users / dt, 1),
            "M_pairs_per_s": round(n_users * n_items / dt / 1e6, 1),
        }
    )
    print(rows[-1], flush=True)
    try:
        import ray
    except ImportError:
        rows.append({"backend": "ray", "note": 'not installed (pip install "instructrec[ray]")'})
        return rows
    t_init = time.perf_counter()
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=int(items.nbytes * 1.5) + 2**28,
    )
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    init_s = time.perf_counter() - t_init
    t0 = time.perf_counter()
    remote = batch_score(users, items, cfg, seen=seen, backend="ray")
    dt = time.perf_counter() - t0
    ray.shutdown()
    same = bool((remote["item_id"].to_numpy() == local["item_id"].to_numpy()).all())
    rows.append(
        {
            "backend": f"ray data ({workers} workers, 1 thread each)",
            "users": n_users,
            "items": n_items,
            "d": d,
            "k": k,
            "seconds": round(dt, 1),
            "users_per_s": round(n_users / dt, 1),
            "M_pairs_per_s": round(n_users * n_items / dt / 1e6, 1),
            "ray_init_s": round(init_s, 1),
            "same_top_k_as_local": same,
        }
    )
    print(rows[-1], flush=True)
    return rows


def scoring_gpu(
    user_counts: tuple[int, ...], n_items: int, d: int, k: int, device: str = "cuda"
) -> list[dict]:
    import numpy as np
    import torch

    from instructrec.scale.batch_scoring import BatchScoringConfig, batch_score

    rows = []
    users_all, items = synthetic_vectors(max(user_counts), n_items, d)
    for dtype in ("float32", "bfloat16"):
        cfg = BatchScoringConfig(
            k=k, user_block=4096, item_block=262144, device=device, dtype=dtype
        )
        batch_score(users_all[:256], items, cfg)  # warm-up: CUDA context, kernels
        ref = None
        for n in user_counts:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            df = batch_score(users_all[:n], items, cfg)
            dt = time.perf_counter() - t0
            if ref is None:
                ref = df
            rows.append(
                {
                    "dtype": dtype,
                    "users": n,
                    "items": n_items,
                    "d": d,
                    "k": k,
                    "seconds": round(dt, 2),
                    "users_per_s": round(n / dt, 0),
                    "M_pairs_per_s": round(n * n_items / dt / 1e6, 0),
                    "peak_gpu_mem_gib": _peak_gib(device),
                }
            )
            print(rows[-1], flush=True)
    # how much of the bf16 top-k agrees with fp32 (first user count)
    n = user_counts[0]
    a = batch_score(
        users_all[:n],
        items,
        BatchScoringConfig(k=k, user_block=4096, item_block=262144, device=device),
    )
    b = batch_score(
        users_all[:n],
        items,
        BatchScoringConfig(
            k=k, user_block=4096, item_block=262144, device=device, dtype="bfloat16"
        ),
    )
    ia = a["item_id"].to_numpy().reshape(n, k)
    ib = b["item_id"].to_numpy().reshape(n, k)
    overlap = np.mean([len(np.intersect1d(x, y)) / k for x, y in zip(ia, ib, strict=True)])
    rows.append({"dtype": "bf16 vs fp32", "users": n, "top_k_overlap": round(float(overlap), 4)})
    print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(c for r in rows for c in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpu", action="store_true", help="the CUDA benchmark (see docstring)")
    p.add_argument("--users", type=int, default=512, help="CPU scoring: users")
    p.add_argument("--items", type=int, default=1_000_000, help="catalogue size")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="CPU scoring: Ray workers")
    p.add_argument("--steps", type=int, default=8, help="training steps per measurement")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-scoring", action="store_true")
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument(
        "--device",
        default="cuda",
        help="--gpu on another device (a CPU smoke test of the GPU code path)",
    )
    p.add_argument("--gpu-users", default="10000,100000", help="--gpu scoring: user counts")
    p.add_argument("--gpu-batches", default="32,128,256", help="--gpu training: batch sizes")
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    from instructrec.evaluation.manifest import machine

    result: dict = {"machine": machine("torch", "ray"), "args": vars(args)}
    if args.gpu:
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            sys.exit("--gpu: no CUDA device")
        batches = tuple(int(b) for b in args.gpu_batches.split(","))
        user_counts = tuple(int(u) for u in args.gpu_users.split(","))
        if not args.skip_train:
            result["training"] = train_gpu(max(args.steps, 10), batches, args.device)
        if not args.skip_scoring:
            result["scoring"] = scoring_gpu(user_counts, args.items, args.dim, args.k, args.device)
        name = "scale_gpu" if args.device == "cuda" else f"scale_gpu_{args.device}"
    else:
        if not args.skip_train:
            result["training"] = train_cpu(args.steps)
        if not args.skip_scoring:
            result["scoring"] = scoring_cpu(args.users, args.items, args.dim, args.k, args.workers)
        name = "scale"
    result["total_s"] = round(time.perf_counter() - t0, 1)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1))
    m = result["machine"]
    md = [
        f"# Scale benchmark ({'GPU' if args.gpu else 'CPU'})",
        "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs (load average {m['load_avg'][0]}"
        f" at start), torch {m['torch']}"
        + (f", {m['gpu']}" if m.get("gpu") else "")
        + (f", ray {m['ray']}" if m.get("ray") else "")
        + ".",
        "",
    ]
    if "training" in result:
        md += [
            "## Training throughput (MiniLM-L6 shape + LoRA r=8, engine `fit`)",
            "",
            table(result["training"]),
            "",
        ]
    if "scoring" in result:
        md += ["## Batch scoring (dot product, top-k per user)", "", table(result["scoring"]), ""]
    md.append(f"Total {result['total_s']} s.")
    (out_dir / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
