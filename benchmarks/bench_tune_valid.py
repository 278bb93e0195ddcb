"""Validation sweep for the text-only Yes/No task of `bench_tune` (issue 16): each
configuration is one real `tune` run (MiniLM + label head, early stopping on the 200 pool
validation examples, as the benchmark trains) scored on 1,000 development-validation examples
from the same 150 pool users, disjoint from the 256 training and the 200 early-stopping
examples. The fixed test set is never scored here (`bench_tune.build` checks its hash).

    python benchmarks/bench_tune_valid.py --configs base ep8 --seeds 0 [--threads 2]

Appends every run to benchmarks/results/tune_valid.json and rewrites tune_valid.md, with the
machine and its load average at the start and end of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import bench_tune as bt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BASE = {"epochs": 4, "lr": 1e-3, "batch": 16, "lora": {"r": 8}, "layout": "rated"}
ALL_LINEAR = ["query", "key", "value", "dense"]
# name -> changes from BASE (the benchmark's configuration before this sweep)
CONFIGS: dict[str, dict] = {
    "base": {},
    "ep8": {"epochs": 8},
    "ep15": {"epochs": 15},
    "lr3e-4": {"lr": 3e-4},
    "lr3e-3": {"lr": 3e-3},
    "r16-all": {"lora": {"r": 16, "alpha": 32, "target_modules": ALL_LINEAR}},
    "full-1e-4": {"lora": "full", "lr": 1e-4},
    "full-5e-5": {"lora": "full", "lr": 5e-5},
    "tallrec": {"layout": "tallrec"},
    "cls": {"pooling": "cls"},
    "drop0.1": {"head_dropout": 0.1},
    # rotation augmentation (`bench_tune.rotate`): k more questions per example from its own text
    "rot3": {"rotations": 3},
    "rot10": {"rotations": 10},
    "rot3-ep2": {"rotations": 3, "epochs": 2},
    # the label head reads the question's own vector beside the mean (`pooling`)
    "last-line": {"pooling": "mean+last-line"},
    "last-line-rot3": {"pooling": "mean+last-line", "rotations": 3},
    # plus questions generated from the ratings of users in neither the pool nor the test set
    # (`bench_tune.build`'s "logs"): the product's instruction tuning on interaction logs
    "logs-ep1": {"log_rows": 10000, "epochs": 1},
    "logs2k-ep2": {"log_rows": 2000, "epochs": 2},
    "logs-ep2": {"log_rows": 10000, "epochs": 2},
    # 20,000 log questions: the free users' and the test users' rows without a test target
    "logs-wide20k-ep1": {"wide_log_rows": 20000, "epochs": 1},
    # the log questions with the question line's own vector, or with every weight trained
    "logs-ep1-last-line": {"log_rows": 10000, "epochs": 1, "pooling": "mean+last-line"},
    "logs-ep1-full": {"log_rows": 10000, "epochs": 1, "lora": "full", "lr": 1e-4},
    # the same from the product's command (`instructions yesno`, its wording and titles) over
    # the same users: what a user running it on their data gets
    "product-logs-full": {"product_log_rows": 10000, "epochs": 1, "lora": "full", "lr": 1e-4},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="*", default=["base"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], help="extra KEY=JSON for every config")
    ap.add_argument("--out", default=str(RESULTS / "tune_valid"))
    ap.add_argument("--probe", action="store_true", help="also the frozen title-vector probe")
    ap.add_argument("--probe-logs", type=int, default=0,
                    help="the probe also reads this many log questions' (title, mark) pairs")  # fmt: skip
    args = ap.parse_args()
    import torch

    from instructrec.evaluation.manifest import machine

    torch.set_num_threads(args.threads)
    path = Path(args.out)
    log = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() \
        else {"rows": []}  # fmt: skip
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    data = {lay: bt.build(0, layout=lay) for lay in ("rated", "tallrec")}
    dev = data["rated"]["dev"]
    y = np.array([e["output"] == "Yes" for e in dev])
    # development rows whose (user, item) no training example's text rates: the clean subset,
    # where rotated training examples cannot have asked the same question (`bench_tune.seen_in`)
    clean = ~bt.seen_in(data["rated"]["train"][: args.n_train], dev)
    if not any(r["model"] == "liked-fraction" and "auc_clean" in r for r in log["rows"]):
        d = data["rated"]
        bias = bt.bias_scores(d["ratings"], d["test"] + d["valid"] + dev, dev)
        for name, s in (("liked-fraction", [e["liked_fraction"] for e in dev]), ("bias", bias)):
            s = np.asarray(s)
            log["rows"].append({"model": name, "config": None, "seed": 0, "n_train": 0,
                                **bt.auc_ci(s, y), "auc_clean": clean_auc(s, y, clean),
                                "dev_scores": s.tolist()})  # fmt: skip
    if args.probe:
        d = data["rated"]
        lf = np.array([e["liked_fraction"] for e in dev])
        alphas = [1.0, 10.0]
        probe_rows = d["train"][: args.n_train]
        if args.probe_logs:
            probe_rows = probe_rows + d["logs"](args.probe_logs, 0)
        logs_note = f", + {args.probe_logs} log questions" if args.probe_logs else ""
        for alpha, q in zip(alphas, bt.title_probe(probe_rows, dev, alphas), strict=True):
            s = lf + q
            log["rows"].append({"model": "title probe", "config": f"ridge alpha {alpha:g}{logs_note}",
                                "seed": 0, "n_train": args.n_train, **bt.auc_ci(s, y),
                                "auc_clean": clean_auc(s, y, clean), "dev_scores": s.tolist()})  # fmt: skip
            print(json.dumps(log["rows"][-1]["auc_clean"]), flush=True)
    for seed in args.seeds:
        for name in args.configs:
            cfg = {**BASE, **CONFIGS[name], **extra}
            layout = cfg.pop("layout")
            d = data[layout]
            train = d["train"][: args.n_train]
            if cfg.get("rotations"):
                train = train + bt.rotate(train, cfg.pop("rotations"), seed, layout)
            for key, logs in (("log_rows", "logs"), ("wide_log_rows", "logs_wide")):
                if cfg.get(key):
                    train = train + d[logs](cfg.pop(key), seed)
            if cfg.get("product_log_rows"):
                train = train + product_questions(d["free_users"], cfg.pop("product_log_rows"),
                                                  seed)  # fmt: skip
            start = machine("torch")
            r = bt.run_tune("all-minilm-l6-v2", train, d["valid"], d["dev"],
                            seed, cfg.pop("epochs"), cfg.pop("lr"), cfg.pop("batch"),
                            lora=cfg.pop("lora"), **cfg)  # fmt: skip
            scores = r.pop("scores")
            row = {"model": "minilm head", "config": name, "settings": {**BASE, **CONFIGS[name],
                   **extra}, "seed": seed, "n_train": args.n_train, "n_rows": len(train),
                   **bt.auc_ci(scores, y), "auc_clean": clean_auc(scores, y, clean), **r,
                   "machine": start, "load_end": [round(x, 2) for x in os.getloadavg()],
                   "dev_scores": np.asarray(scores).tolist()}  # fmt: skip
            log["rows"].append(row)
            print(json.dumps({k: row[k] for k in ("config", "seed", "auc", "auc_ci", "auc_clean",
                                                  "train_s")}),
                  flush=True)  # fmt: skip
            path.with_suffix(".json").write_text(json.dumps(log, indent=1))
            write_md(log, path.with_suffix(".md"))
    path.with_suffix(".json").write_text(json.dumps(log, indent=1))
    write_md(log, path.with_suffix(".md"))


def product_questions(users: list[int], n: int, seed: int) -> list[dict]:
    """``n`` questions from `instructrec instructions yesno`'s builder (`rated_questions`) over
    ``users`` (internal ids of the benchmark's split: ML-100K, `make_split` seed 0)."""
    from instructrec.data import load_movielens_100k
    from instructrec.data.split import make_split
    from instructrec.instructions.yesno import rated_questions

    ds = load_movielens_100k()
    q = rated_questions(ds, make_split(ds, seed=0), n=n, seed=seed, users=np.asarray(users))
    return [{"instruction": i, "output": a} for i, a in zip(q["instruction"], q["answer"],
                                                            strict=True)]  # fmt: skip


def clean_auc(scores, y: np.ndarray, clean: np.ndarray) -> dict:
    """AUC with its CI on the clean development rows (see `main`)."""
    r = bt.auc_ci(np.asarray(scores)[clean], y[clean])
    return {"auc": r["auc"], "auc_ci": r["auc_ci"], "n": r["n"]}


def write_md(log: dict, path: Path) -> None:
    lines = [
        "# Text-only Yes/No: validation sweep (MiniLM + label head, 256 training examples)",
        "",
        "Development validation: 1,000 examples from the 150 pool users, disjoint from the 256 "
        "training and the 200 early-stopping examples; the test set is not scored here. "
        "AUC with 95% bootstrap CIs. Load: the 1-minute load average at the start and end of "
        "each run (2 CPUs, shared with other jobs).",
        "",
        "The clean column (rows added with rotation augmentation): AUC on the development rows "
        "whose (user, movie) is rated nowhere in the 256 training examples' text; a model "
        "trained on rotated questions could otherwise have been asked the same question.",
        "",
        "| model | config | settings | seed | AUC [95% CI] | clean AUC [95% CI] (n) | "
        "best step / steps | train s | load |",
        "|---|---|---|---:|---|---|---|---:|---|",
    ]
    for r in log["rows"]:
        load = ""
        if "machine" in r:
            load = f"{r['machine']['load_avg'][0]} -> {r['load_end'][0]}"
        steps = f"{r['best_step']} / {r['steps']}" if "steps" in r else ""
        c = r.get("auc_clean")
        cl = f"{c['auc']:.3f} [{c['auc_ci'][0]:.3f}, {c['auc_ci'][1]:.3f}] ({c['n']})" if c else ""
        lines.append(
            f"| {r['model']} | {r['config'] or ''} | {json.dumps(r.get('settings', '')) if r.get('settings') else ''} "
            f"| {r['seed']} | {r['auc']:.3f} [{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}] | "
            f"{cl} | {steps} | {r.get('train_s', '')} | {load} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
