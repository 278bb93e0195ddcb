"""Instruction tuning on a TALLRec-style Yes/No task from ML-100K, every offline backbone,
against the liked-fraction heuristic and a user/item bias model (TALLRec: Bao et al. 2023).

Data (all from the TRAINING split of ``make_split(ml-100k, seed=0)``): per example, a user's 10
most recent rated movies before a target, each marked liked (rating >= 4) or disliked, and the
target title; answer Yes when the target's rating is > 3. Users are split in two: training and
validation examples come from 150 users, a fixed 1,000-example test set (at most 2 per user)
from the others. Models:

- ``liked-fraction``: the share of liked movies in the history (no training);
- ``bias``: rating = mu + b_user + b_item (ridge, alternating updates) fitted on the training
  split's ratings minus every test and validation target (it still sees the test users'
  other ratings, which the language models do not);
- ``minilm``: all-MiniLM-L6-v2 + LoRA + a Yes/No classification head (`instructrec tune`);
- ``smollm2``: SmolLM2-135M-Instruct + LoRA, Yes/No scored by answer likelihood;
- ``title probe`` (``--probe-logs N``): the no-tuning text rival: frozen MiniLM vectors of
  single titles, a ridge of the liked/disliked mark on every (title, mark) pair of the training
  examples and N log questions, read at the target, added to the liked fraction.

Plus one non-recommendation task: synthetic number comparison ("Is 47 greater than 52?").

    python benchmarks/bench_tune.py [--sizes 16 64 256] [--seeds 0 1 2] [--smollm-sizes 256]
        [--smollm-test 300] [--skip-numbers] [--threads 2]

Writes benchmarks/results/tune.json and tune.md (AUC with 95% bootstrap CIs over examples,
paired bootstrap differences against both rivals); rows of models a run leaves out are kept
from the previous file and marked "earlier run". MiniLM's settings (`MINILM`) were chosen on a
separate development validation set (`bench_tune_valid.py`); the test set is scored once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).parent / "results"
HISTORY = 10
# MiniLM's configuration, chosen on the development validation set (bench_tune_valid.py,
# results/tune_valid.md): `run_tune` arguments and the prompt layout.
MINILM = {"epochs": 4, "lr": 1e-3, "batch": 16, "lora": {"r": 8}, "layout": "rated"}
SMALL_EPOCHS = {16: 10, 64: 6}  # more passes over the tiny training sets
# the probe rival's ridge (validation, session 16: clean AUC 0.738 at alpha 1, 0.737 at 10)
PROBE_ALPHA = 1.0
# changes to MINILM for the run with log questions (`--logs`), chosen on validation
LOGS = {"epochs": 1, "lora": "full", "lr": 1e-4}


def title(items, i: int) -> str:
    import pandas as pd

    row = items.iloc[i]
    year = row.get("year")
    return f"{row['title']}" + ("" if pd.isna(year) else f" ({int(year)})")


def prompt(history: list[str], liked: list[bool], target: str, layout: str = "rated") -> str:
    """The question. ``rated``: the history in order, each title marked liked/disliked;
    ``tallrec``: TALLRec's layout, liked and disliked titles grouped."""
    if layout == "tallrec":
        pos = ", ".join(f'"{t}"' for t, ok in zip(history, liked, strict=True) if ok)
        neg = ", ".join(f'"{t}"' for t, ok in zip(history, liked, strict=True) if not ok)
        return (
            f"User Preference: {pos or 'none'}.\nUser Unpreference: {neg or 'none'}.\n"
            f'Will the user like the movie "{target}"? Answer Yes or No.'
        )
    lines = [f"{k + 1}. {t} - {'liked' if ok else 'disliked'}" for k, (t, ok) in
             enumerate(zip(history, liked, strict=True))]  # fmt: skip
    return (
        "A user rated these movies, oldest first (liked: 4-5 stars, disliked: 1-3 stars):\n"
        + "\n".join(lines)
        + f'\nWill the user like the movie "{target}"? Answer Yes or No.'
    )


# SHA-256 of the fixed test set's (user, item, rating, answer, rated-layout prompt) rows: the
# larger validation set must leave the test set as it was (checked by `build`).
TEST_SHA256 = "3cdd7fbbb4c4741730ae8d404b252fde09d078267398bac4c0cba3eb13283376"


def test_hash(test: list[dict]) -> str:
    import hashlib

    key = [[e["user"], e["item"], e["rating"], e["output"], e["rated_prompt"]] for e in test]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def build(
    seed: int = 0,
    n_pool_users: int = 150,
    n_test: int = 1000,
    n_dev: int = 1000,
    layout: str = "rated",
) -> dict:
    """Train pool (256 train + 200 early-stopping valid + ``n_dev`` development validation,
    disjoint, all from the pool users) and the fixed 1,000-example test set from other users.
    The pool draws come from one permutation, so the test draws (after it) do not depend on
    ``n_dev``; the test rows are checked against `TEST_SHA256`."""
    from instructrec.data import load_movielens_100k
    from instructrec.data.split import make_split

    ds = load_movielens_100k()
    train = make_split(ds, seed=0).frame("train").sort_values(["user", "timestamp", "order"])
    items = ds.items.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    users = rng.permutation(train["user"].unique())
    pool, rest = set(users[:n_pool_users].tolist()), users[n_pool_users:]
    seqs = {u: (g["item"].to_numpy(), g["rating"].to_numpy()) for u, g in train.groupby("user")}

    def example(u, t):
        it, r = seqs[u]
        h = it[t - HISTORY : t]
        liked = (r[t - HISTORY : t] >= 4).tolist()
        titles, target = [title(items, i) for i in h], title(items, it[t])
        return {
            "user": int(u), "item": int(it[t]), "rating": float(r[t]),
            "instruction": prompt(titles, liked, target, layout),
            "rated_prompt": prompt(titles, liked, target, "rated"),
            "output": "Yes" if r[t] > 3 else "No", "liked_fraction": float(np.mean(liked)),
            "history": h.tolist(), "titles": titles, "liked": liked, "target": target,
        }  # fmt: skip

    pool_rows = [(u, t) for u in sorted(pool) for t in range(HISTORY, len(seqs[u][0]))]
    pick = rng.permutation(len(pool_rows))[: 256 + 200 + n_dev]
    pool_ex = [example(*pool_rows[i]) for i in pick]
    test_ex = []
    for u in rest:
        n = len(seqs[u][0])
        if n > HISTORY:
            for t in rng.choice(np.arange(HISTORY, n), size=min(2, n - HISTORY), replace=False):
                test_ex.append((u, int(t)))
    order = rng.permutation(len(test_ex))[:n_test]
    test = [example(*test_ex[i]) for i in order]
    if n_test == 1000 and test_hash(test) != TEST_SHA256:
        raise AssertionError("the fixed test set changed")
    # users in neither the pool nor the test set: their ratings can become extra training
    # questions ("logs") without any development or test user's text in them
    free = sorted(set(rest.tolist()) - {e["user"] for e in test})
    log_pairs = [(u, t) for u in free for t in range(HISTORY, len(seqs[u][0]))]
    # and the test users' other rows whose text does not hold a test target (index t0 outside
    # the question's window [t - HISTORY, t]), as the bias model reads their other ratings
    t0s: dict = {}
    for i in order:
        t0s.setdefault(test_ex[i][0], []).append(test_ex[i][1])
    wide_pairs = log_pairs + [(u, t) for u, ts in sorted(t0s.items())
                              for t in range(HISTORY, len(seqs[u][0]))
                              if not any(t - HISTORY <= t0 <= t for t0 in ts)]  # fmt: skip

    def draw(pairs):
        """(n, seed) -> n questions from ``pairs``, in a seeded order."""
        return lambda n, s: [example(*pairs[i])
                             for i in np.random.default_rng(s + 4099).permutation(len(pairs))[:n]]  # fmt: skip

    return {
        "train": pool_ex[:256], "valid": pool_ex[256:456], "dev": pool_ex[456:],
        "test": test, "ratings": train, "free_users": free,
        "logs": draw(log_pairs), "logs_wide": draw(wide_pairs),
    }  # fmt: skip


def rotate(examples: list[dict], k: int, seed: int, layout: str = "rated") -> list[dict]:
    """Rotation augmentation: for each example, ``k`` more questions built from its own text,
    each asking about one of its history titles (label: its liked/disliked mark) with the
    other nine and the original target (marked by its answer) as the history, in their order.
    No rating outside the examples is read: the marks are already in their prompts."""
    rng = np.random.default_rng(seed + 7919)
    out = []
    for e in examples:
        titles = e["titles"] + [e["target"]]
        liked = e["liked"] + [e["output"] == "Yes"]
        for j in sorted(rng.choice(HISTORY, size=min(k, HISTORY), replace=False).tolist()):
            rest = [i for i in range(HISTORY + 1) if i != j]
            out.append({
                "instruction": prompt([titles[i] for i in rest], [liked[i] for i in rest],
                                      titles[j], layout),
                "output": "Yes" if liked[j] else "No",
            })  # fmt: skip
    return out


def seen_in(train: list[dict], rows: list[dict]) -> np.ndarray:
    """Whether each row's (user, item) is rated anywhere in the training examples' text (a
    history title or a target): those rows leak their label to a model trained on rotations."""
    seen = {(e["user"], i) for e in train for i in e["history"] + [e["item"]]}
    return np.array([(e["user"], e["item"]) in seen for e in rows])


def bias_scores(ratings, exclude: list[dict], rows: list[dict], lam: float = 10.0) -> np.ndarray:
    """mu + b_u + b_i fitted without the ``exclude`` targets; the predicted rating of rows."""
    drop = {(e["user"], e["item"]) for e in exclude}
    keep = [(u, i) not in drop for u, i in zip(ratings["user"], ratings["item"], strict=True)]
    r = ratings[keep]
    mu = r["rating"].mean()
    bu, bi = {}, {}
    for _ in range(10):
        res = r["rating"] - mu - r["user"].map(bu).fillna(0)
        g = res.groupby(r["item"])
        bi = (g.sum() / (g.count() + lam)).to_dict()
        res = r["rating"] - mu - r["item"].map(bi).fillna(0)
        g = res.groupby(r["user"])
        bu = (g.sum() / (g.count() + lam)).to_dict()
    return np.array([mu + bu.get(e["user"], 0) + bi.get(e["item"], 0) for e in rows])


def auc_ci(scores: np.ndarray, labels: np.ndarray, seed: int = 0, against: dict | None = None
           ) -> dict:  # fmt: skip
    """AUC with its 95% bootstrap CI; ``against`` {name: scores}: the paired bootstrap of the
    AUC difference (same resamples) with its CI and two-sided p."""
    from instructrec.stats import (
        bootstrap_stat,
        paired_bootstrap_p,
        percentile_ci,
        resample_indices,
    )
    from instructrec.training.tune_config import auc

    idx = resample_indices(len(labels), seed=seed)
    boot = bootstrap_stat(lambda r: auc(scores[r], labels[r]), len(labels), idx)
    lo, hi = percentile_ci(boot)
    out = {"auc": auc(scores, labels), "auc_ci": [lo, hi], "n": int(len(labels))}
    for name, other in (against or {}).items():
        diff = boot - bootstrap_stat(lambda r, o=other: auc(o[r], labels[r]), len(labels), idx)
        obs = out["auc"] - auc(other, labels)
        out[f"vs {name}"] = {"diff": obs, "ci": list(percentile_ci(diff)),
                             "p": paired_bootstrap_p(diff, obs)}  # fmt: skip
    return out


def run_tune(
    backbone,
    train,
    valid,
    test,
    seed,
    epochs,
    lr,
    batch,
    valid_fraction=0.0,
    lora: dict | None = None,
    **settings,
) -> dict:
    """One `tune` run through the product's API; ``lora``: `LoraSettings` fields (default r 8)
    or "full" (full fine-tuning); ``settings``: other `TuneConfig` fields."""
    from instructrec.models.lora import LoraSettings
    from instructrec.training.config import TrainConfig
    from instructrec.training.tune import tune
    from instructrec.training.tune_config import TuneConfig

    lora = {"r": 8} if lora is None else lora
    strip = [{"instruction": e["instruction"], "output": e["output"]} for e in train]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TuneConfig(
            train=TrainConfig(output_dir=f"{tmp}/run", lr=lr, epochs=epochs, batch_size=batch,
                              seed=seed, progress=False, device="cpu", eval_every=10**6,
                              patience=2, save_total_limit=1),
            lora=None if lora == "full" else LoraSettings(**lora), valid_fraction=valid_fraction,
            **settings,
        )  # fmt: skip
        t0 = time.perf_counter()
        valid_rows = [{"instruction": e["instruction"], "output": e["output"]} for e in valid]
        res = tune(strip, backbone, cfg, valid_data=valid_rows or None)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        preds = res.model.predict([{"instruction": e["instruction"]} for e in test])
        t_test = time.perf_counter() - t0
    yes = next(k for k in preds[0]["probs"] if k.lower() == "yes")
    return {
        "scores": np.array([p["probs"][yes] for p in preds]), "steps": res.train.steps,
        "best_step": res.train.best_step, "train_s": round(t_train, 1),
        "test_s": round(t_test, 1), "max_length": res.max_length, "truncated": res.truncated,
        "valid": res.valid_metrics,
    }  # fmt: skip


def title_probe(train: list[dict], rows: list[dict], alphas: list[float]) -> list[np.ndarray]:
    """A probe, no tuning: frozen MiniLM vectors (mean-pooled, unit length) of single titles,
    a ridge regression of the liked/disliked mark on them over every (title, mark) pair the
    training examples show (history titles and targets), read at each row's target title (one
    score array per ridge ``alphas``; the titles are encoded once). Added to the liked
    fraction, it says how much a title's own vector knows of whether a movie is liked, from the
    same 256 examples."""
    from instructrec.models.text_encoder import encode_texts, load_encoder

    pairs = [(t, m) for e in train for t, m in zip(e["titles"] + [e["target"]],
             e["liked"] + [e["output"] == "Yes"], strict=True)]  # fmt: skip
    titles = sorted({t for t, _ in pairs} | {e["target"] for e in rows})
    v = encode_texts(*load_encoder(), titles).astype(np.float64)
    at = {t: i for i, t in enumerate(titles)}
    x = v[[at[t] for t, _ in pairs]]
    yv = np.array([float(m) for _, m in pairs])
    xm, ym = x.mean(0), yv.mean()
    xc, q = x - xm, v[[at[e["target"]] for e in rows]] - xm
    return [q @ np.linalg.solve(xc.T @ xc + a * np.eye(x.shape[1]), xc.T @ (yv - ym)) + ym
            for a in alphas]  # fmt: skip


def number_task(seed: int = 0, n_train: int = 256, n_test: int = 300) -> tuple[list, list]:
    """Synthetic, offline: "Is A greater than B?" with two-digit numbers."""
    rng = np.random.default_rng(seed + 100)
    rows = []
    for _ in range(n_train + n_test):
        a, b = rng.choice(np.arange(10, 100), size=2, replace=False)
        rows.append({"instruction": f"Is {a} greater than {b}? Answer Yes or No.",
                     "output": "Yes" if a > b else "No"})  # fmt: skip
    return rows[:n_train], rows[n_train:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--smollm-sizes", type=int, nargs="*", default=[256])
    ap.add_argument("--smollm-test", type=int, default=300, help="SmolLM2 test examples")
    ap.add_argument("--smollm-epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--skip-numbers", action="store_true", help="no number-comparison task")
    ap.add_argument("--rotations", type=int, default=0, help="also train MiniLM with K rotated "
                    "questions per example (`rotate`), at the --sizes given")  # fmt: skip
    ap.add_argument("--logs", type=int, default=0, help="also train MiniLM on the 256 examples "
                    "+ N Yes/No questions from the logs of users in neither the pool nor the test "
                    "set (`build`'s logs), at the largest --sizes only")  # fmt: skip
    ap.add_argument("--logs-set", nargs="*", default=[], help="KEY=JSON changes to MiniLM's "
                    "settings for the --logs run (chosen on validation: LOGS)")  # fmt: skip
    ap.add_argument("--probe-logs", type=int, default=None, help="also the no-tuning rival: "
                    "frozen MiniLM title vectors + a ridge (alpha PROBE_ALPHA) on the largest "
                    "--sizes examples' and N log questions' (title, mark) pairs, read at the "
                    "target, + the liked fraction (deterministic: one row)")  # fmt: skip
    ap.add_argument("--out", default=str(RESULTS / "tune"))
    ap.add_argument(
        "--combine",
        nargs="+",
        default=None,
        help="JSON files of runs split by seed (one process each): merge into --out",
    )
    ap.add_argument("--earlier", default=None, help="result JSON whose rows not rerun are kept "
                    "(default: --out's)")  # fmt: skip
    args = ap.parse_args()
    if args.combine:
        return combine(args.combine, Path(args.out))
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from instructrec.evaluation.manifest import machine

    cfg = dict(MINILM)
    data = build(0, layout=cfg.pop("layout"))
    test, valid = data["test"], data["valid"]
    y = np.array([e["output"] == "Yes" for e in test])
    path = Path(args.out)
    # rows of models this run does not measure are kept from the previous file, marked
    earlier = Path(args.earlier) if args.earlier else path.with_suffix(".json")
    old = json.loads(earlier.read_text()) if earlier.exists() else {"rows": []}
    out = {"machine": machine("torch"), "n_test": len(test), "positive_rate": float(y.mean()),
           "minilm": MINILM, "rows": [], "args": vars(args)}  # fmt: skip
    rerun = set()
    if args.smollm_sizes:
        rerun.add(("smollm2-135m+lora", "ML-100K Yes/No"))
    if not args.skip_numbers:
        rerun.add(("minilm+lora head", "number comparison"))
    # (model name, rotated questions per example) of the MiniLM runs
    minilm_variants = [] if args.skip_minilm else [("minilm+lora head", 0)]
    if args.rotations:
        minilm_variants.append((f"minilm+lora head, {args.rotations} rotations", args.rotations))
    logs_cfg = {**cfg, **LOGS, **{k: json.loads(v) for k, v in
                                  (a.split("=", 1) for a in args.logs_set)}}  # fmt: skip
    logs_name = f"minilm+lora head, + {args.logs} log questions"
    if args.logs:
        minilm_variants.append((logs_name, 0))
    rerun |= {(name, "ML-100K Yes/No") for name, _ in minilm_variants}
    probe_name = f"title probe + liked fraction, + {args.probe_logs} log questions"
    if args.probe_logs is not None:
        rerun.add((probe_name, "ML-100K Yes/No"))
    # earlier_run: "same" = the current test set (its hash is checked), True = an older one
    kept = [
        {**r, "earlier_run": r.get("earlier_run", "same")}
        for r in old["rows"]
        if r["n_train"] and (r["model"], r.get("task", "ML-100K Yes/No")) not in rerun
    ]
    kept += [r for r in old.get("rows_earlier", [])
             if (r["model"], r.get("task", "ML-100K Yes/No")) not in rerun]  # fmt: skip

    path.parent.mkdir(parents=True, exist_ok=True)

    def save():
        out["rows_earlier"] = kept
        path.with_suffix(".json").write_text(json.dumps(out, indent=1))
        write_md(out, path.with_suffix(".md"))

    liked = np.array([e["liked_fraction"] for e in test])
    bias = bias_scores(data["ratings"], test + valid, test)
    rivals = {"liked-fraction": liked, "bias": bias}

    def record(name, n, seed, scores, extra=None, subset=None):
        ys = y if subset is None else y[:subset]
        against = {k: v if subset is None else v[:subset] for k, v in rivals.items()} if n else {}
        row = {"model": name, "n_train": n, "seed": seed,
               **auc_ci(np.asarray(scores), ys, against=against)}  # fmt: skip
        row.update(extra or {})
        # kept so that later rows can be compared with this one, paired, without a rerun
        row["test_scores"] = [round(float(x), 6) for x in np.asarray(scores)]
        out["rows"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "test_scores"}), flush=True)
        save()

    record("liked-fraction", 0, 0, liked)
    record("bias (user+item)", 0, 0, bias)
    if args.probe_logs is not None:
        n = max(args.sizes)
        tr = data["train"][:n] + (data["logs"](args.probe_logs, 0) if args.probe_logs else [])
        t0 = time.perf_counter()
        (q,) = title_probe(tr, test, [PROBE_ALPHA])
        record(probe_name, n, 0, liked + q, {"rows": len(tr), "alpha": PROBE_ALPHA,
               "train_s": round(time.perf_counter() - t0, 1)})  # fmt: skip
    k = args.smollm_test
    if args.smollm_sizes:
        record("liked-fraction", 0, 0, liked[:k], {"subset": k}, subset=k)
        record("bias (user+item)", 0, 0, bias[:k], {"subset": k}, subset=k)
    for seed in args.seeds:
        for name, k in minilm_variants:
            logs = name == logs_name
            for n in [max(args.sizes)] if logs else args.sizes:
                c = (
                    dict(logs_cfg)
                    if logs
                    else {**cfg, "epochs": SMALL_EPOCHS.get(n, cfg["epochs"])}
                )
                tr = data["train"][:n]
                tr = tr + rotate(tr, k, seed) if k else tr
                tr = tr + data["logs"](args.logs, seed) if logs else tr
                settings = {"settings": logs_cfg} if logs else {}
                r = run_tune("all-minilm-l6-v2", tr, valid, test, seed,
                             c.pop("epochs"), c.pop("lr"), c.pop("batch"), **c)  # fmt: skip
                scores = r.pop("scores")
                record(name, n, seed, scores,
                       {**r, "rows": len(tr), **settings} if k or logs else r)  # fmt: skip
        for n in args.smollm_sizes:
            r = run_tune("smollm2-135m-instruct", data["train"][:n], [], test[:k], seed,
                         args.smollm_epochs, 1e-3, 8)  # fmt: skip
            record("smollm2-135m+lora", n, seed, r.pop("scores"), {**r, "subset": k}, subset=k)
    if not args.skip_numbers:
        tr, te = number_task()
        yt = np.array([e["output"] == "Yes" for e in te])
        r = run_tune("all-minilm-l6-v2", tr, [], te, 0, 4, 1e-3, 16)
        row = {"model": "minilm+lora head", "task": "number comparison", "n_train": len(tr),
               **auc_ci(r.pop("scores"), yt), **r}  # fmt: skip
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    save()


def combine(files: list[str], path: Path) -> None:
    """One result file from runs of the same test set split by seed (rows of the rivals once,
    each model row once; the first file's machine and earlier rows)."""
    parts = [json.loads(Path(f).read_text()) for f in files]
    out = {**parts[0], "rows": [], "combined_from": [str(f) for f in files],
           "machines": [p["machine"] for p in parts]}  # fmt: skip
    seen = set()
    for p in parts:
        for r in p["rows"]:
            key = (r["model"], r.get("task"), r["n_train"], r.get("seed"), r.get("subset"))
            if key not in seen:
                seen.add(key)
                out["rows"].append(r)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1))
    write_md(out, path.with_suffix(".md"))


def write_md(out: dict, path: Path) -> None:
    m = out["machine"]
    load = m.get("load_avg") or ["?"]
    lines = [
        "# Instruction tuning: TALLRec-style Yes/No from ML-100K",
        "",
        f"Machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, torch threads "
        f"{m.get('torch_threads')}, load average at the start {load[0]} (shared box: times are "
        f"not comparable across runs). Test: {out['n_test']} examples from users unseen in "
        f"training (positive rate {out['positive_rate']:.3f}); AUC with 95% bootstrap CIs; "
        "the differences are paired bootstraps over the same test examples. MiniLM: "
        f"`{json.dumps(out.get('minilm'))}` (16/64 examples: {SMALL_EPOCHS} epochs).",
        "",
        "| model | task | train examples | seed | test n | AUC [95% CI] | vs liked-fraction "
        "[95% CI] | vs bias [95% CI] | train s | test s |",
        "|---|---|---:|---:|---:|---|---|---|---:|---:|",
    ]

    def vs(r, name):
        d = r.get(f"vs {name}")
        return "" if d is None else f"{d['diff']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"

    for r in out["rows"] + out.get("rows_earlier", []):
        ml = r.get("task") is None
        note = ""
        if r.get("earlier_run") == "same":
            note = " (earlier run, same test set)"
        elif r.get("earlier_run"):
            note = " (earlier run\\*)" if ml else " (earlier run)"
        lines.append(
            f"| {r['model']}{note} | {r.get('task', 'ML-100K Yes/No')} | {r['n_train']} | "
            f"{r.get('seed', 0)} | {r['n']} | {r['auc']:.3f} [{r['auc_ci'][0]:.3f}, "
            f"{r['auc_ci'][1]:.3f}] | {vs(r, 'liked-fraction')} | {vs(r, 'bias')} | "
            f"{r.get('train_s', '')} | {r.get('test_s', '')} |"
        )
    if any(r.get("earlier_run") is True for r in out.get("rows_earlier", [])):
        lines += ["", "\\* kept from the previous run of this benchmark, on the test set the code "
                  "built then, before `make_split` made 5% of items cold (positive rate 0.585; "
                  f"the one built now: {out['positive_rate']:.3f}; checked: with "
                  "cold_fraction=0 the old rate returns): not comparable with the rows above."]  # fmt: skip
    by = {}
    for r in out["rows"] + [r for r in out.get("rows_earlier", []) if r["earlier_run"] == "same"]:
        if r["model"].startswith("minilm") and r.get("task") is None:
            by.setdefault((r["model"], r["n_train"]), []).append(r)
    if by:
        lines += ["", "Mean over seeds (MiniLM, ML-100K Yes/No):", "",
                  "| model | train examples | seeds | mean AUC | per seed | mean vs liked-fraction |",
                  "|---|---:|---|---:|---|---:|"]  # fmt: skip
        for (model, n), rs in sorted(by.items()):
            aucs = [r["auc"] for r in rs]
            diffs = [r["vs liked-fraction"]["diff"] for r in rs if "vs liked-fraction" in r]
            lines.append(
                f"| {model} | {n} | {', '.join(str(r['seed']) for r in rs)} | {np.mean(aucs):.3f} | "
                f"{', '.join(f'{a:.3f}' for a in aucs)} | {np.mean(diffs):+.3f} |"
            )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
