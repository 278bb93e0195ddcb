"""Serving benchmark: throughput and latency of POST /v1/recommendations on loopback.

Starts the real service (`instructrec serve`, one uvicorn worker, SQLite WAL store with
synchronous=FULL unless --db says otherwise) in a child process, then drives it with 1, 8 and
32 concurrent clients (asyncio + httpx, one connection per client, keep-alive) for
``--duration`` seconds each. Every request asks for 10 items for a random ML-100K user, half
of them with an instruction. Reports requests/s, p50/p90/p99 latency, errors and the server's
RSS at start and end.

    python benchmarks/bench_serving.py                   # 60 s per level (about 3.5 minutes)
    python benchmarks/bench_serving.py --duration 10     # a quick check
    python benchmarks/bench_serving.py --model runs/x    # a trained run (with a reranker)

Writes benchmarks/results/serving.json and serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"
KEY = "bench-key"
INSTRUCTIONS = ["a light comedy", "something scary for tonight", "a classic drama", None, None]


def default_model(directory: Path) -> Path:
    """ML-100K, item-kNN retriever, no reranker: the retrieval-only serving path."""
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.recommender import Recommender
    from instructrec.retrieval.itemknn import ItemKNN

    ds = load_movielens_100k()
    return Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0)).save(directory / "ml100k-knn")


def start(run_dir: Path, db: str) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from instructrec.cli import main; main()",
            "serve",
            "--model",
            str(run_dir),
            "--db",
            db,
            "--port",
            str(port),
            "--api-key",
            KEY,
            "--seed",
            "0",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def client(base: str, users: list[str], stop_at: float, lat: list, errors: list, seed: int):
    import random

    import httpx

    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as c:
        while time.perf_counter() < stop_at:
            body = {"user_id": rng.choice(users), "n": 10}
            instr = rng.choice(INSTRUCTIONS)
            if instr:
                body["instruction"] = instr
            t0 = time.perf_counter()
            try:
                r = await c.post("/v1/recommendations", json=body)
                ok = r.status_code == 200
            except Exception:  # noqa: BLE001 - counted as an error
                ok = False
            (lat if ok else errors).append(time.perf_counter() - t0)


async def level(base: str, users: list[str], clients: int, duration: float) -> dict:
    import numpy as np

    lat: list[float] = []
    errors: list[float] = []
    t0 = time.perf_counter()
    stop_at = t0 + duration
    await asyncio.gather(*[client(base, users, stop_at, lat, errors, i) for i in range(clients)])
    wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000 if lat else np.zeros(1)
    return {
        "clients": clients,
        "requests": len(lat),
        "errors": len(errors),
        "seconds": round(wall, 2),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per concurrency level")
    ap.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    ap.add_argument("--model", type=Path, default=None, help="saved run (default: ML-100K kNN)")
    ap.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    run_dir = args.model or default_model(tmp)
    db = args.db or f"sqlite:///{tmp / 'bench.db'}"
    from instructrec.recommender import Recommender

    users = [str(u) for u in Recommender.load(run_dir).dataset.user_ids]
    from instructrec.evaluation.manifest import machine

    info = machine("torch")
    proc, base = start(run_dir, db)
    try:
        rss_start = rss_mb(proc.pid)
        asyncio.run(level(base, users, 4, 2.0))  # warm-up, not reported
        results = [
            asyncio.run(level(base, users, int(c), args.duration)) for c in args.clients.split(",")
        ]
        rss_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    report = {
        "benchmark": "serving",
        "endpoint": "POST /v1/recommendations",
        "model": str(run_dir),
        "store": db.split(":")[0],
        "duration_s": args.duration,
        "machine": info,
        "server_rss_mb": {"start": round(rss_start, 1), "end": round(rss_end, 1)},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(report, indent=2))
    md = [
        f"Serving benchmark: {report['endpoint']}, 10 items, retrieval model "
        f"`{Path(str(run_dir)).name}`, store {report['store']}, {args.duration:.0f} s per level.",
        f"Machine: {info['cpu_count']} CPUs, {info['platform']}, Python {info['python']}, "
        f"torch {info['torch']}, load average at start {info['load_avg']}.",
        f"Server RSS: {rss_start:.0f} MiB at start, {rss_end:.0f} MiB at end.",
        "",
        "| clients | requests | req/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['clients']} | {r['requests']} | {r['rps']} | {r['p50_ms']} | {r['p90_ms']} | "
        f"{r['p99_ms']} | {r['errors']} |"
        for r in results
    ]
    (args.out / "serving.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
