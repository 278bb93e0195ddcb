"""Benchmark: our SASRec against RecBole 1.2.1's SASRec on the same ML-100K split.

Both train on the training part of instructrec's leave-one-out split (ties in time broken by
file order), stop early on the validation item, and are scored by OUR code under the `full`
protocol (all items not seen before the test item; NDCG@10, HR@10 = Recall@10, MRR), with
95% bootstrap CIs and a paired test. RecBole gets the split as its sequential *benchmark
files* (one row per target: the last <= 20 items before it, then the target), so it cannot
re-split or re-order anything; its test-set scores (``full_sort_predict``) come back as a
matrix that we rank. RecBole's own reported test metrics (which do not exclude seen items
for sequential models) are recorded too.

RecBole runs in its own virtual environment (``benchmarks/.recbole-venv``, made on first use:
``pip install torch==2.13.0 recbole==1.2.1 'numpy<2' 'pandas<3' 'setuptools<81' ...``).

    python benchmarks/bench_sasrec_recbole.py [--epochs 20] [--threads 1] [--skip-recbole]

Writes benchmarks/results/sasrec_recbole.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".recbole-venv"
WORK = HERE / "out" / "recbole"
RESULTS = HERE / "results"
RECBOLE_PACKAGES = ["torch==2.13.0", "recbole==1.2.1", "numpy<2", "pandas<3", "setuptools<81"]
DATASET = "ml100k-bench"  # not "ml-100k": RecBole would apply its built-in ml-100k config


# ---------------------------------------------------------------------- RecBole side
def worker(data_dir: str, epochs: int, threads: int, seed: int) -> None:
    """Runs INSIDE the RecBole venv: train SASRec on the benchmark files, dump test scores."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    torch.autograd.set_detect_anomaly(False)  # importing RecBole's sequential models turns it on
    cfg = {
        "data_path": data_dir,
        "dataset": DATASET,
        "benchmark_filename": ["train", "valid", "test"],
        "alias_of_item_id": ["item_id_list"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "MAX_ITEM_LIST_LENGTH": 20,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "epochs": epochs,
        "stopping_step": 10,
        "eval_args": {
            "mode": "full",
            "order": "TO",
            "split": {"LS": "valid_and_test"},
            "group_by": "user",
        },
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "seed": seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(Path(data_dir) / "saved"),
        "log_wandb": False,
        "state": "INFO",
    }
    config = Config(model="SASRec", dataset=DATASET, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = SASRec(config, train.dataset).to(config["device"])
    torch.autograd.set_detect_anomaly(False)
    trainer = Trainer(config, model)
    t1 = time.perf_counter()
    best_valid, valid_result = trainer.fit(train, valid, saved=True, show_progress=False)
    t2 = time.perf_counter()
    result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    model.eval()
    users, rows = [], []
    with torch.no_grad():
        for inter, _, _, _ in test:
            scores = model.full_sort_predict(inter.to(config["device"])).view(len(inter), -1)
            rows.append(scores[:, 1:].numpy().astype(np.float32))  # column 0 is padding
            users += list(dataset.id2token("user_id", inter["user_id"].numpy()))
    items = list(dataset.id2token("item_id", np.arange(1, dataset.item_num)))
    out = Path(data_dir) / "recbole_scores.npz"
    np.savez(
        out,
        scores=np.concatenate(rows),
        users=np.array(users, dtype=str),
        items=np.array(items, dtype=str),
    )
    epochs_run = len(getattr(trainer, "train_loss_dict", {}) or {}) or None
    (Path(data_dir) / "recbole_result.json").write_text(
        json.dumps(
            {
                "fit_seconds": t2 - t1,
                "setup_seconds": t1 - t0,
                "epochs_run": epochs_run,
                "best_valid_ndcg@10": float(best_valid),
                "recbole_test": {k: float(v) for k, v in result.items()},
                "torch": torch.__version__,
                "threads": threads,
            }
        )
    )


# ---------------------------------------------------------------------- our side
def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    ok = subprocess.run(
        [str(py), "-c", "import recbole, torch; assert recbole.__version__ == '1.2.1'"],
        capture_output=True,
    )
    if ok.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *RECBOLE_PACKAGES], check=True)
    return py


def write_benchmark_files(dataset, split, directory: Path, max_len: int = 20) -> None:
    """RecBole sequential benchmark files: user, last <= max_len items before, target."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    ids, uids = dataset.item_ids, dataset.user_ids
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"

    def rows_for(stage_users, stage_targets, seqs):
        lines = []
        for u, t in zip(stage_users, stage_targets, strict=True):
            h = seqs.get(int(u), np.empty(0, np.int64))[-max_len:]
            lines.append(f"{uids[u]}\t{' '.join(ids[h])}\t{ids[t]}\n")
        return lines

    train_seqs = split.sequences("valid")  # training items per user, oldest first
    lines = []
    for u, seq in train_seqs.items():
        for t in range(1, len(seq)):
            lines.append(
                f"{uids[u]}\t{' '.join(ids[seq[max(0, t - max_len) : t]])}\t{ids[seq[t]]}\n"
            )
    (directory / f"{DATASET}.train.inter").write_text(header + "".join(lines))
    v = split.valid
    (directory / f"{DATASET}.valid.inter").write_text(
        header + "".join(rows_for(v["user"].to_numpy(), v["item"].to_numpy(), train_seqs))
    )
    t = split.test
    (directory / f"{DATASET}.test.inter").write_text(
        header
        + "".join(rows_for(t["user"].to_numpy(), t["item"].to_numpy(), split.sequences("test")))
    )


def precomputed(scores, n_items):
    """Scores computed elsewhere (RecBole's), as a Retriever for the `full` protocol."""
    from instructrec.retrieval.base import Retriever

    class Precomputed(Retriever):
        name = "precomputed"

        def fit(self, train, n_users, n_items, **_):
            return self

        def score_all(self, users, histories=None):
            return scores[users]

    p = Precomputed()
    p.n_items = n_items
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20, help="RecBole epochs (orientation: 20)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--our-max-epochs", type=int, default=None, help="cap our epochs (smoke)")
    ap.add_argument("--skip-recbole", action="store_true", help="only our SASRec")
    ap.add_argument("--worker", nargs=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker[0], args.epochs, args.threads, args.seed)

    import numpy as np
    import torch

    from instructrec.data import load_movielens_100k, make_split
    from instructrec.evaluation import run
    from instructrec.retrieval import Pop, SASRec, SASRecConfig

    ds = load_movielens_100k()
    split = make_split(ds, seed=args.seed)
    models, timings = {}, {}
    cfg = SASRecConfig(seed=args.seed, threads=args.threads)
    if args.our_max_epochs:
        cfg.max_epochs = args.our_max_epochs
    t0 = time.perf_counter()
    ours = SASRec(cfg).fit(split.train, ds.n_users, ds.n_items, valid=split.valid)
    timings["sasrec (instructrec)"] = {
        "fit_seconds": time.perf_counter() - t0,
        "epochs_run": len(ours.history_),
        "best_valid_ndcg@10": ours.best_valid_ndcg_,
    }
    models["pop"] = Pop().fit(split.train, ds.n_users, ds.n_items)
    models["sasrec (instructrec)"] = ours
    recbole = None
    if not args.skip_recbole:
        py = ensure_venv()
        write_benchmark_files(ds, split, WORK / DATASET)
        env = dict(
            os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS=str(args.threads)
        )
        t0 = time.perf_counter()
        subprocess.run(
            [
                str(py),
                __file__,
                "--worker",
                str(WORK),
                "--epochs",
                str(args.epochs),
                "--threads",
                str(args.threads),
                "--seed",
                str(args.seed),
            ],
            check=True,
            env=env,
        )
        wall = time.perf_counter() - t0
        recbole = json.loads((WORK / "recbole_result.json").read_text())
        recbole["process_seconds"] = wall
        z = np.load(WORK / "recbole_scores.npz")
        table = np.full((ds.n_users, ds.n_items), -np.inf, np.float32)
        table[ds.user_index(z["users"])[:, None], ds.item_index(z["items"])[None, :]] = z["scores"]
        models["sasrec (recbole 1.2.1)"] = precomputed(table, ds.n_items)
        timings["sasrec (recbole 1.2.1)"] = recbole
    rep = run(
        "full",
        ds,
        split,
        models,
        seed=args.seed,
        baselines=["sasrec (recbole 1.2.1)"] if recbole else ["pop"],
    )
    machine = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": args.threads,
        "loadavg_1min_at_end": os.getloadavg()[0],
    }
    result = {
        "table": {m: {k: float(v) for k, v in row.items()} for m, row in rep.table.iterrows()},
        "intervals": rep.intervals.to_dict(orient="records"),
        "comparisons": rep.comparisons.to_dict(orient="records"),
        "timings": timings,
        "machine": machine,
        "config": {"ours": vars(cfg), "recbole_epochs": args.epochs},
        "split_files": split.hashes,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sasrec_recbole.json").write_text(json.dumps(result, indent=2, default=str))
    lines = [
        "# SASRec: instructrec vs RecBole 1.2.1 (ML-100K, leave-one-out, full ranking)",
        "",
        f"Machine: {machine['platform']}, {machine['cpu_count']} CPUs, torch "
        f"{machine['torch']}, {args.threads} thread(s) each; 1-min load average at the end "
        f"{machine['loadavg_1min_at_end']:.1f} (shared machine).",
        "",
        "| model | NDCG@10 | HR@10 | MRR | fit wall time (s) | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for m in rep.table.index:
        t = timings.get(m, {})
        lines.append(
            f"| {m} | {rep.mean(m, 'NDCG@10'):.4f} | {rep.mean(m, 'Recall@10'):.4f} | "
            f"{rep.mean(m, 'MRR'):.4f} | {t.get('fit_seconds', float('nan')):.1f} | "
            f"{t.get('epochs_run', '')} |"
        )
    if recbole:
        lines += [
            "",
            f"RecBole's own test metrics (no seen-item exclusion for sequential models): "
            f"{recbole['recbole_test']}",
        ]
    lines += ["", rep.to_markdown()]
    (RESULTS / "sasrec_recbole.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
