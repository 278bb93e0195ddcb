"""Serving benchmark: throughput and latency of POST /v1/recommendations on loopback,
micro-batched vs unbatched in one run.

Starts the real service (`instructrec serve`, one uvicorn worker, SQLite WAL store with
synchronous=FULL unless --db says otherwise) in a child process per mode: ``batched``
(``--batch-window-ms 2 --max-batch 32``, `serving.batcher`) and ``unbatched``
(``--batch-window-ms 0``: each request runs its own passes, as before). Both stay up; for each
level of 1, 8 and 32 concurrent clients (asyncio + httpx, one keep-alive connection per
client) each mode gets ``--duration`` seconds in turn, so both see the same box. Every request
asks for 10 items for a random ML-100K user, 3 in 5 with an instruction (``--varied``: drawn
from 150 genre x decade phrasings, so that few query texts repeat). Reports requests/s,
p50/p90/p99 latency, errors, and the server's RSS sampled every second.

    python benchmarks/bench_serving.py --model runs/quickstart   # the shipped model
    python benchmarks/bench_serving.py --model runs/quickstart --duration 10 --clients 8
    python benchmarks/bench_serving.py                          # item-kNN, no reranker

The shipped model: ``instructrec train --config configs/quickstart.yaml --out runs/quickstart``
(SASRec + MiniLM/LoRA reranker; the quickstart trains the same). Writes
benchmarks/results/serving_batched.json and .md (``--name``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"
KEY = "bench-key"
INSTRUCTIONS = ["a light comedy", "something scary for tonight", "a classic drama", None, None]
GENRES = ["comedy", "drama", "thriller", "romance", "horror", "action", "western", "musical"]
GENRES += ["crime", "war", "animated film", "documentary", "mystery", "sci-fi", "adventure"]
DECADES = ["", " from the 50s", " from the 60s", " from the 70s", " from the 80s", " from the 90s"]
DECADES += [" from the 40s", " from the 30s", " that is recent", " from the 20s"]
VARIED = [f"a {g}{d}" for g in GENRES for d in DECADES] + [None] * 100  # 150 texts, 2 in 5 none


def default_model(directory: Path) -> Path:
    """ML-100K, item-kNN retriever, no reranker: the retrieval-only serving path."""
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.recommender import Recommender
    from instructrec.retrieval.itemknn import ItemKNN

    ds = load_movielens_100k()
    return Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0)).save(directory / "ml100k-knn")


def start(run_dir: Path, db: str, extra: tuple = ()) -> tuple[subprocess.Popen, str]:
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
            *extra,
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


async def client(
    base: str, users: list[str], stop_at: float, lat: list, errors: list, seed: int, mix: list
):
    import random

    import httpx

    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as c:
        while time.perf_counter() < stop_at:
            body = {"user_id": rng.choice(users), "n": 10}
            instr = rng.choice(mix)
            if instr:
                body["instruction"] = instr
            t0 = time.perf_counter()
            try:
                r = await c.post("/v1/recommendations", json=body)
                ok = r.status_code == 200
            except Exception:  # noqa: BLE001 - counted as an error
                ok = False
            (lat if ok else errors).append(time.perf_counter() - t0)


async def sample_rss(pid: int, stop_at: float, out: list) -> None:
    while time.perf_counter() < stop_at:
        out.append(rss_mb(pid))
        await asyncio.sleep(1.0)


async def level(
    base: str, users: list[str], clients: int, duration: float, mix: list, pid: int | None = None
) -> dict:
    import numpy as np

    lat: list[float] = []
    errors: list[float] = []
    rss: list[float] = []
    t0 = time.perf_counter()
    stop_at = t0 + duration
    jobs = [client(base, users, stop_at, lat, errors, i, mix) for i in range(clients)]
    if pid is not None:
        jobs.append(sample_rss(pid, stop_at, rss))
    await asyncio.gather(*jobs)
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
        "rss_mb": [round(x, 1) for x in (rss[0], max(rss), rss[-1])] if rss else None,
    }


MODES = {  # mode -> serve flags
    "unbatched": ("--batch-window-ms", "0"),
    "batched": ("--batch-window-ms", "2", "--max-batch", "32"),
    "batched-int8": ("--batch-window-ms", "2", "--max-batch", "32", "--int8"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per level and mode")
    ap.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    ap.add_argument("--model", type=Path, default=None, help="saved run (default: ML-100K kNN)")
    ap.add_argument("--modes", default="unbatched,batched", help=f"of {sorted(MODES)}")
    ap.add_argument("--varied", action="store_true", help="150 instruction texts, not 3")
    ap.add_argument("--db", default=None, help="store URL (default: fresh SQLite files)")
    ap.add_argument("--name", default="serving_batched", help="results file stem")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import torch  # noqa: F401  (machine() reports its threads)

    from instructrec.evaluation.manifest import machine

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    run_dir = args.model or default_model(tmp)
    from instructrec.recommender import Recommender

    rec = Recommender.load(run_dir)
    users = [str(u) for u in rec.dataset.user_ids]
    reranker = type(rec.reranker).__name__ if rec.reranker is not None else None
    del rec
    mix = VARIED if args.varied else INSTRUCTIONS
    info = machine("torch")
    info["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    modes = [m.strip() for m in args.modes.split(",")]
    servers = {}
    try:
        for m in modes:
            db = args.db or f"sqlite:///{tmp / (m + '.db')}"
            servers[m] = start(run_dir, db, MODES[m])
        rss_start = {m: round(rss_mb(p.pid), 1) for m, (p, _) in servers.items()}
        for _, base in servers.values():  # warm-up, not reported
            asyncio.run(level(base, users, 4, 3.0, mix))
        results = []
        for c in args.clients.split(","):
            for m, (proc, base) in servers.items():
                r = asyncio.run(level(base, users, int(c), args.duration, mix, proc.pid))
                results.append({"mode": m, **r})
                print(json.dumps(results[-1]), flush=True)
        rss_end = {m: round(rss_mb(p.pid), 1) for m, (p, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    info["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "benchmark": "serving, batched vs unbatched",
        "endpoint": "POST /v1/recommendations",
        "model": str(run_dir),
        "reranker": reranker,
        "instructions": "varied (150 texts)" if args.varied else "3 texts",
        "modes": {m: " ".join(MODES[m]) for m in modes},
        "store": "sqlite" if args.db is None else args.db.split(":")[0],
        "duration_s": args.duration,
        "machine": info,
        "server_rss_mb": {"start": rss_start, "end": rss_end},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    md = [
        f"Serving benchmark: {report['endpoint']}, 10 items, model `{Path(str(run_dir)).name}` "
        f"(reranker: {reranker}), instructions: {report['instructions']}, store "
        f"{report['store']}, {args.duration:.0f} s per level and mode, modes in turn on one box.",
        f"Machine: {info['cpu_count']} CPUs, {info['platform']}, Python {info['python']}, "
        f"torch threads {info.get('torch_threads')}, load average {info['load_avg_at_start']} "
        f"at start, {info['load_avg_at_end']} at end (a shared box: read the ratios).",
        "",
        "| clients | mode | requests | req/s | p50 ms | p90 ms | p99 ms | errors "
        "| RSS MiB (first / max / last) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rss = " / ".join(f"{x:.0f}" for x in r["rss_mb"]) if r["rss_mb"] else "-"
        md.append(
            f"| {r['clients']} | {r['mode']} | {r['requests']} | {r['rps']} | {r['p50_ms']} "
            f"| {r['p90_ms']} | {r['p99_ms']} | {r['errors']} | {rss} |"
        )
    by = {(r["clients"], r["mode"]): r for r in results}
    md.append("")
    for c in args.clients.split(","):
        a, b = by.get((int(c), "unbatched")), by.get((int(c), "batched"))
        if a and b and a["rps"]:
            md.append(
                f"{c} clients: batched {b['rps'] / a['rps']:.2f}x the unbatched req/s, "
                f"p99 {a['p99_ms']:.0f} -> {b['p99_ms']:.0f} ms."
            )
    (args.out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
