"""Ablation of the reciprocating recurrent head (issue 8): plain reranker vs RR head, T = 1, 2, 4.

One run, one split (ML-100K leave-one-out, seed 0), one set of retrievers (SASRec first stage,
priors SASRec + item-kNN + Pop), one candidate file; every variant trains the same encoder
reranker (MiniLM + LoRA, listwise CE, stacked priors) with the same instances, seed, steps and
learning rate, and differs only in its head: ``linear`` (plain) or ``rr`` with T passes.

Quality on the test users (mean, 95% bootstrap CI, paired bootstrap and sign test vs plain,
all on one shared resampling plan per setting):

- cand10       history only, target + 9 saved negatives, seen templates       HR@1, NDCG@5
- search       cand10 + a specific intention (I2) of the target, seen templates HR@1, NDCG@5
- cand10-ho    cand10 with HELD-OUT templates (instruction wording never trained on)
- search-ho    search with HELD-OUT templates
- full         all unseen items, SASRec's top 20 reranked                        NDCG@10, Recall@10

Cost: training wall time, parameters (head, trainable), rerank latency (one request of 20
candidates, median of repeats; and users/s for batches of 256).

    python benchmarks/bench_rr_ablation.py --steps 200 --device cpu      # small CPU budget
    python benchmarks/bench_rr_ablation.py --steps 400 --device cuda --variants plain,rr1,rr2,rr4,rr2p
    ... --prior-in   # RR variants also feed the prior scores into the block (as first measured)

Variants: ``plain`` (linear head), ``rrT`` (RR head, T passes, starting from the prior alone),
``rrTp`` (RR head starting exactly at the plain head's score: plain + a zero RR residual).

Writes benchmarks/results/rr_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SETTINGS = {  # name -> (candidate file or "full", intention kind, templates)
    "cand10": ("cand10", None, "seen"),
    "search": ("cand10", "I2", "seen"),
    "cand10-ho": ("cand10", None, "held_out"),
    "search-ho": ("cand10", "I2", "held_out"),
    "full": ("full", None, "seen"),
}
METRICS = {"cand10": ("HR@1", "NDCG@5"), "full": ("NDCG@10", "Recall@10")}


def variants(
    names: list[str], width: int, heads: int, prior_in: bool = False
) -> dict[str, tuple[str, dict]]:
    """name -> (head, head_options). ``rrT``: RR head, T passes, starting from the prior alone;
    ``rrTp``: starting exactly where the plain head starts (plain + a zero RR residual)."""
    import inspect

    from instructrec.models.heads import LinearHead

    q_init = inspect.signature(LinearHead.__init__).parameters.get("q_init")
    q_init = float(q_init.default) if q_init is not None else 1.0
    out = {}
    for n in names:
        if n == "plain":
            out[n] = ("linear", {})
        elif n.startswith("rr"):  # rrT: from the prior alone; rrTp: from plain's start
            plain_start = n.endswith("p")
            opts = {"T": int(n[2:].rstrip("p")), "width": width, "heads": heads}
            opts["prior_in"] = prior_in
            out[n] = ("rr", {**opts, "direct_init": q_init if plain_start else 0.0})
        else:
            raise SystemExit(f"unknown variant {n!r} (plain, rr1, rr2, rr4, rr4p, ...)")
    return out


def per_user(model, rows, split, dataset, setting: str, seed: int) -> dict[str, np.ndarray]:
    """Per-user metric values of ``model`` in ``setting`` (see SETTINGS)."""
    from instructrec.evaluation import metrics as M
    from instructrec.evaluation import protocols as P
    from instructrec.instructions.derive import derive_intentions

    cand_name, intent, templates = SETTINGS[setting]
    if cand_name == "full":
        ranks = P.full_ranks(model, rows, templates=templates)
        names = METRICS["full"]
    else:
        cands = P.candidate_file(split, cand_name)
        intentions = None
        if intent is not None:
            intentions, _ = derive_intentions(dataset, rows.targets, kind=intent, seed=seed)
        scores = P.score_candidates(model, rows, cands, intentions=intentions, templates=templates)
        ranks = M.ranks_from_scores(scores)
        names = METRICS["cand10"]
    return {k: np.asarray(v, np.float64) for k, v in M.compute(ranks, list(names)).items()}


def latency(model, rows, split, n_batch: int = 256, repeats: int = 20) -> dict[str, float]:
    """Rerank cost: one request of 20 candidates (median ms) and batch throughput (users/s)."""
    from instructrec.evaluation import protocols as P

    cands = P.candidate_file(split, "cand20")
    one = []
    for r in range(repeats + 2):
        i = r % len(rows.users)
        t0 = time.perf_counter()
        model.score_candidates(rows.users[i : i + 1], cands[i : i + 1], rows.histories[i : i + 1])
        one.append(time.perf_counter() - t0)
    n = min(n_batch, len(rows.users))
    t0 = time.perf_counter()
    model.score_candidates(rows.users[:n], cands[:n], rows.histories[:n])
    dt = time.perf_counter() - t0
    return {"request_ms": 1000 * float(np.median(one[2:])), "batch_users_per_s": n / dt}


def summarise(values: dict[str, dict[str, dict[str, np.ndarray]]], seed: int) -> dict:
    """CI per (variant, setting, metric) and paired tests vs plain, one plan per setting."""
    from instructrec import stats as S

    out: dict = {}
    for setting in SETTINGS:
        some = next(v[setting] for v in values.values() if setting in v)
        n = len(next(iter(some.values())))
        idx = S.resample_indices(n, seed=seed)
        for var, per_setting in values.items():
            if setting not in per_setting:
                continue
            for metric, arr in per_setting[setting].items():
                lo, hi = S.bootstrap_ci(arr, idx)
                cell = {"mean": float(arr.mean()), "ci": [lo, hi], "n": int(n)}
                base = values.get("plain", {}).get(setting, {}).get(metric)
                if base is not None and var != "plain":
                    cell["vs_plain"] = {
                        **S.paired_bootstrap(arr, base, idx),
                        **S.sign_test(arr, base),
                    }
                out.setdefault(var, {}).setdefault(setting, {})[metric] = cell
    return out


def markdown(result: dict) -> str:
    a = result["args"]
    lines = [
        "# RR head ablation (issue 8)",
        "",
        f"ML-100K leave-one-out (seed {a['seed']}), {result['n_test_users']} test users; "
        f"first stage SASRec, priors {', '.join(result['priors'])}; every variant: MiniLM + "
        f"LoRA r={a['lora_r']}, {a['steps']} steps x batch {a['batch_size']}, lr {a['lr']}, "
        f"same instances and seed; RR width {a['width']}, heads {a['heads']}.",
        f"Machine: {result['machine']}",
        "",
        "Mean [95% bootstrap CI]; Δ = paired difference vs plain (p: paired bootstrap / sign "
        "test). `-ho` = held-out instruction templates.",
        "",
    ]
    q = result["quality"]
    for setting in SETTINGS:
        metrics = METRICS["full" if setting == "full" else "cand10"]
        lines += [
            f"### {setting}",
            "",
            "| variant | " + " | ".join(metrics) + " |",
            "|---|" + "---|" * len(metrics),
        ]
        for var in q:
            cells = []
            for m in metrics:
                c = q[var].get(setting, {}).get(m)
                if c is None:
                    cells.append("-")
                    continue
                s = f"{c['mean']:.4f} [{c['ci'][0]:.4f}, {c['ci'][1]:.4f}]"
                if "vs_plain" in c:
                    d = c["vs_plain"]
                    s += f" Δ {d['diff']:+.4f} (p {d['p_bootstrap']:.3f} / {d['p_sign']:.3f})"
                cells.append(s)
            lines.append(f"| {var} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "### cost",
        "",
        "| variant | train s | steps | head params | trainable params | "
        "request ms (20 cand.) | users/s (batch 256) |",
        "|---|---|---|---|---|---|---|",
    ]
    for var, c in result["cost"].items():
        lines.append(
            f"| {var} | {c['train_s']:.1f} | {c.get('steps', '-')} | "
            f"{c.get('head_params', 0):,} | {c.get('trainable_params', 0):,} | "
            f"{c['request_ms']:.1f} | {c['batch_users_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="plain,rr1,rr2,rr4")
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps per variant")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--prior-in", action="store_true", help="RR: feed priors into the states")
    ap.add_argument("--max-instances", type=int, default=None)
    ap.add_argument("--valid-rows", type=int, default=200)
    ap.add_argument("--n-hard", type=int, default=None, help="hard negatives per instance")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--users", type=int, default=None, help="evaluate on the first N test users")
    ap.add_argument("--sasrec-epochs", type=int, default=60)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--name", default="rr_ablation")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.evaluation import protocols as P
    from instructrec.models.encoder_config import EncoderConfig
    from instructrec.recommender import Recommender
    from instructrec.rerank.reranker import RerankerConfig
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.retrieval.pop import Pop
    from instructrec.retrieval.sasrec import SASRec, SASRecConfig
    from instructrec.training.config import TrainConfig
    from instructrec.training.fit_reranker import fit_reranker

    t0 = time.perf_counter()
    dataset = load_movielens_100k()
    split = make_split(dataset, seed=args.seed)
    sasrec = SASRec(
        SASRecConfig(
            max_epochs=args.sasrec_epochs, device=args.device, seed=args.seed, threads=args.threads
        )
    )
    priors = [sasrec, ItemKNN(), Pop()]
    for r in priors:
        r.fit(split.train, dataset.n_users, dataset.n_items)
    rows = P.test_rows(split)
    if args.users:
        keep = np.arange(min(args.users, len(rows.users)))
        split.test = split.test.iloc[keep].reset_index(drop=True)
        for name in split.candidates:
            split.candidates[name]["test"] = split.candidates[name]["test"][keep]
        rows = P.test_rows(split)
    print(f"data + retrievers: {time.perf_counter() - t0:.1f}s", flush=True)

    values: dict = {"SASRec": {}}
    base = Recommender(dataset, sasrec, priors=priors)
    for setting in SETTINGS:
        values["SASRec"][setting] = per_user(base, rows, split, dataset, setting, args.seed)
    cost: dict = {}
    chosen = variants(args.variants.split(","), args.width, args.heads, args.prior_in)
    for var, (head, opts) in chosen.items():
        torch.manual_seed(args.seed)
        enc = EncoderConfig(head=head, head_options=opts, lora_r=args.lora_r)
        rcfg = RerankerConfig(
            max_instances=args.max_instances, valid_rows=args.valid_rows, seed=args.seed
        )
        with tempfile.TemporaryDirectory() as tmp:
            tc = TrainConfig(
                output_dir=tmp,
                lr=args.lr,
                max_steps=args.steps,
                batch_size=args.batch_size,
                eval_every=args.eval_every,
                patience=0,
                metric="mix",
                greater_is_better=True,
                seed=args.seed,
                device=args.device,
                progress=False,
                resume=False,
            )
            t1 = time.perf_counter()
            rr = fit_reranker(dataset, split, priors, enc, rcfg, tc)
            train_s = time.perf_counter() - t1
        model = rr.scorer.model.to("cpu")  # evaluate and time on the CPU (the serving path)
        res = rr.train_result
        cost[var] = {
            "head": head,
            "head_options": opts,
            "train_s": train_s,
            "steps": getattr(res, "steps", None),
            "engine_s": getattr(res, "wall_time", None),
            "best_valid_mix": getattr(res, "best_metric", None),
            "head_params": sum(p.numel() for p in model.head.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        }
        rec = Recommender(dataset, sasrec, reranker=rr, priors=priors)
        values[var] = {}
        for setting in SETTINGS:
            values[var][setting] = per_user(rec, rows, split, dataset, setting, args.seed)
            print(
                var,
                setting,
                {k: round(float(v.mean()), 4) for k, v in values[var][setting].items()},
                flush=True,
            )
        cost[var].update(latency(rec, rows, split))
        print(var, cost[var], flush=True)
        result = write(args, rows, values, cost, t0)  # after every variant: partial results
    print(markdown(result))
    return result


def write(args, rows, values: dict, cost: dict, t0: float) -> dict:
    """Summarise what has been measured so far into <out>/<name>.{json,md}."""
    from instructrec.evaluation.manifest import machine

    result = {
        "args": vars(args),
        "machine": machine("torch", device=args.device),
        "n_test_users": int(len(rows.users)),
        "priors": ["SASRec", "ItemKNN", "Pop"],
        "quality": summarise(values, args.seed),
        "cost": cost,
        "total_s": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=float))
    (out / f"{args.name}.md").write_text(markdown(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
