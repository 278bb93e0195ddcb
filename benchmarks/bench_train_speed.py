"""Training throughput of the quickstart's two models against the machine's fp32 matmul rate.

Measures, in one process of the code on PYTHONPATH:
- the machine: fp32 matmul GFLOP/s (torch, n x n x n, best of several, torch's threads);
- SASRec (the quickstart's retriever, its default config, ML-100K training split): seconds per
  optimisation step over whole epochs (`SASRec.fit`, validation included), FLOPs per step
  (`torch.utils.flop_counter`, forward + backward), achieved GFLOP/s and its fraction of the
  matmul rate;
- the reranker (quickstart config: MiniLM + LoRA r 8, batch 64, 15 candidates, 48 query
  tokens): steps of the shared engine (`training.loop.fit`, no evaluation) on the real
  training instances (priors from a 1-epoch SASRec, item-kNN, Pop: their quality does not
  change the cost of a step), FLOPs per step, fraction of the matmul rate, and how many of the
  tower's tokens are padding.

``--compare SRC`` runs this script once with SRC (e.g. the src/ of a base commit's worktree)
and once with this checkout, alternately ``--rounds`` times, and writes one table:

    python benchmarks/bench_train_speed.py --compare /tmp/fastcli-base/src --rounds 2

Writes benchmarks/results/train_speed.json and train_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up (thread pool, allocator)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def flops_of(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def bench_sasrec(dataset, split, epochs: int) -> dict:
    import torch

    from instructrec.retrieval.sasrec import SASRec, _net, training_windows

    m = SASRec(max_epochs=epochs, patience=epochs + 1)
    t0 = time.perf_counter()
    m.fit(split.train, dataset.n_users, dataset.n_items, split.valid)
    wall = time.perf_counter() - t0
    cfg = m.config
    seqs = [s for s in (m._train_items or []) if len(s) > 1]
    x, y = training_windows(seqs, cfg.max_len, cfg.stride)
    steps_per_epoch = -(-len(x) // cfg.batch_size)
    net = _net(dataset.n_items, cfg)
    xb, yb = torch.from_numpy(x[: cfg.batch_size]), torch.from_numpy(y[: cfg.batch_size])

    def step():
        h = net(xb)[yb > 0]
        loss = torch.nn.functional.cross_entropy(h @ net.item.weight[1:].T, yb[yb > 0] - 1)
        loss.backward()

    flops = flops_of(step)
    s_per_step = sum(h["seconds"] for h in m.history_) / (len(m.history_) * steps_per_epoch)
    return {
        "epochs": len(m.history_),
        "steps_per_epoch": steps_per_epoch,
        "s_per_step": s_per_step,
        "fit_wall_s": wall,
        "gflop_per_step": flops / 1e9,
        "threads": cfg.threads,
    }


def bench_reranker(dataset, split, steps: int) -> dict:
    import tempfile

    import numpy as np
    import torch

    from instructrec.cli.quickstart import quickstart_config
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.rerank.instances import TextSide, build_instances
    from instructrec.rerank.rerank_features import attribute_matrix, item_texts, stacked_frame
    from instructrec.rerank.reranker import InstructionReranker
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.retrieval.pop import Pop
    from instructrec.retrieval.sasrec import SASRec
    from instructrec.training.config import TrainConfig
    from instructrec.training.loop import fit as engine_fit
    from instructrec.training.losses import listwise_ce

    cfg = quickstart_config(fast=False)
    enc, rcfg = cfg.backbone, cfg.reranker
    fit_part, _ = stacked_frame(split.train, rcfg.holdout)
    stacked = [SASRec(max_epochs=1, patience=2), ItemKNN(), Pop()]
    for p in stacked:
        p.fit(fit_part, dataset.n_users, dataset.n_items)
    enc.n_prior = len(stacked) + int(bool(rcfg.intent_match))
    cf = stacked[0].item_embeddings()
    cf = cf[-dataset.n_items :] if len(cf) > dataset.n_items else cf
    enc.cf_dim = int(cf.shape[1])
    torch.manual_seed(0)
    scorer = EncoderScorer.build(
        item_texts(dataset),
        enc,
        cf_vecs=cf,
        history_len=rcfg.history_len,
        attr_vecs=attribute_matrix(dataset),
    )
    rr = InstructionReranker(scorer, TextSide.of(dataset), rcfg, ["sasrec", "itemknn", "pop"])
    rr.dataset = dataset
    train = build_instances(rr, dataset, split, stacked, rcfg)
    model = scorer.model

    def loss_fn(m, batch):
        scores = m(
            batch["input_ids"],
            batch["attention_mask"],
            batch["cands"],
            batch["hist"],
            batch["prior"],
            q_index=batch["q_index"],
        )
        return listwise_ce(scores, batch["label"])

    bs = cfg.training.batch_size
    rng = np.random.default_rng(0)
    rows = [rng.choice(len(train.label), bs, replace=False).tolist() for _ in range(8)]
    ids = [train.collate(r)["attention_mask"] for r in rows]
    real = sum(int(m.sum()) for m in ids)
    padded = sum(m.numel() for m in ids)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_length_groups import length_groups  # (what length groups would leave)

    grouped = sum(sum(len(g) * w for g, w in length_groups(m.sum(1))) for m in ids)
    model.train()
    flops = flops_of(lambda: loss_fn(model, train.collate(rows[0])).backward())
    model.zero_grad(set_to_none=True)
    tc = TrainConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-train-"),
        lr=cfg.training.lr,
        max_steps=steps,
        batch_size=bs,
        eval_every=10**9,
        seed=0,
        progress=False,
        device="cpu",
    )
    res = engine_fit(model, train, train.collate, loss_fn, tc, evaluate=None)
    return {
        "instances": len(train.label),
        "batch_size": bs,
        "steps": res.steps,
        "s_per_step": bs / res.examples_per_s,
        "gflop_per_step": flops / 1e9,
        "tower_tokens_real_fraction": real / padded,
        "tower_tokens_per_batch": padded / len(ids),
        "tower_tokens_real_fraction_if_grouped": real / grouped,
    }


def measure(a) -> dict:
    import torch

    from instructrec.data import load_movielens_100k, make_split
    from instructrec.evaluation.manifest import git_state, machine

    rate = matmul_gflops()
    ds = load_movielens_100k()
    split = make_split(ds, seed=0)
    out = {"torch_threads": torch.get_num_threads(), "matmul_gflops": rate}
    out["sasrec"] = bench_sasrec(ds, split, a.sasrec_epochs)
    out["reranker"] = bench_reranker(ds, split, a.steps)
    out["matmul_gflops_end"] = matmul_gflops()
    for k in ("sasrec", "reranker"):
        r = out[k]
        r["gflops"] = r["gflop_per_step"] / r["s_per_step"]
        r["fraction_of_matmul"] = r["gflops"] / max(rate, out["matmul_gflops_end"])
    out["machine"], out["git"] = machine(), git_state()
    out["src"] = str(Path(sys.modules["instructrec"].__file__).parent.parent)
    return out


def table(results: dict[str, list[dict]]) -> str:
    lines = [
        "| code | matmul GFLOP/s | SASRec s/step | SASRec GFLOP/s (fraction) | reranker s/step "
        "| reranker GFLOP (per step) | reranker GFLOP/s (fraction) | real tower tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():

        def med(f, runs=runs):
            return statistics.median(f(r) for r in runs)

        lines.append(
            f"| {name} | {med(lambda r: r['matmul_gflops']):.0f} | "
            f"{med(lambda r: r['sasrec']['s_per_step']):.3f} | "
            f"{med(lambda r: r['sasrec']['gflops']):.1f} "
            f"({med(lambda r: r['sasrec']['fraction_of_matmul']):.0%}) | "
            f"{med(lambda r: r['reranker']['s_per_step']):.2f} | "
            f"{med(lambda r: r['reranker']['gflop_per_step']):.1f} | "
            f"{med(lambda r: r['reranker']['gflops']):.1f} "
            f"({med(lambda r: r['reranker']['fraction_of_matmul']):.0%}) | "
            f"{med(lambda r: r['reranker']['tower_tokens_real_fraction']):.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="reranker engine steps timed")
    ap.add_argument("--sasrec-epochs", type=int, default=2)
    ap.add_argument("--compare", default=None, help="src/ of the code to compare against")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json-out", default=None, help="(internal) write one measurement here")
    ap.add_argument("--name", default="train_speed")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(measure(a), indent=1))
        return
    trees = {"this checkout": str(ROOT / "src")}
    if a.compare:
        trees = {f"base ({a.compare})": a.compare, **trees}
    results: dict[str, list[dict]] = {k: [] for k in trees}
    load0 = os.getloadavg()
    for rnd in range(a.rounds):
        for name, src in trees.items():
            tmp = Path(f"/tmp/bench_train_speed_{os.getpid()}.json")
            env = dict(os.environ, PYTHONPATH=src)
            argv = [sys.executable, __file__, "--json-out", str(tmp), "--steps", str(a.steps)]
            argv += ["--sasrec-epochs", str(a.sasrec_epochs)]
            subprocess.run(argv, env=env, check=True)
            results[name].append(json.loads(tmp.read_text()))
            tmp.unlink()
            print(f"round {rnd}: {name}: {json.dumps(results[name][-1])}", flush=True)
    load1 = os.getloadavg()
    md = [
        "# Training throughput vs the machine's fp32 matmul rate (quickstart models)",
        "",
        f"Median of {a.rounds} round(s), alternating; machine: "
        f"{next(iter(results.values()))[0]['machine']}; load average {load0[0]:.1f} at "
        f"start, {load1[0]:.1f} at end (a shared box: read ratios). FLOPs by "
        "torch.utils.flop_counter (forward + backward); fraction = achieved / matmul rate.",
        "",
        table(results),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{a.name}.json").write_text(
        json.dumps({"loadavg": [load0, load1], "results": results}, indent=1) + "\n"
    )
    (OUT / f"{a.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
