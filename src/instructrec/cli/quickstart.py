"""`instructrec quickstart`: train on MovieLens-100K, compare with the baselines, recommend.

    instructrec quickstart [--out runs/quickstart] [--fast]

Trains the quickstart configuration (configs/quickstart.yaml: SASRec first stage, MiniLM+LoRA
reranker with SASRec / item-kNN / Pop priors), evaluates it against Pop, item-kNN and SASRec
(and SASRec + attribute filter on `search`) in the same run on cand10, cand20, full, search,
vague, cand10 with held-out templates and pointwise (Yes/No AUC), prints the table and a few
recommendations. ``--fast`` is a tiny budget for CI (about a minute or two): its numbers
mean nothing.
"""

from __future__ import annotations

import time

import click

SAMPLE_INSTRUCTIONS = (
    "something funny from the 90s, no horror",
    "a thrilling action movie",
    "a romantic film for a quiet evening",
)
PROTOCOLS = (
    ("cand10", None),
    ("cand20", None),
    ("full", None),
    ("search", None),
    ("vague", None),
    ("cand10", "held_out"),
    ("pointwise", None),
)


def quickstart_config(fast: bool = False):
    """The quickstart `RunConfig` (configs/quickstart.yaml holds the same values)."""
    from instructrec.config import RunConfig

    cfg = RunConfig()
    cfg.backbone.cf_dim = 64  # add SASRec's item embeddings (projected) to the item vectors
    cfg.reranker.query_history = 0  # history enters as item vectors and priors, not as text
    cfg.reranker.intent_match = True  # prior channel: candidates matching the parsed intention
    if fast:  # a smoke-test budget: every stage runs, nothing is trained to quality
        cfg.retriever.options = {"max_epochs": 2, "patience": 1}
        for p in cfg.priors:
            if p.name == "sasrec":
                p.options = dict(cfg.retriever.options)
        cfg.backbone.lora_r = 4
        cfg.reranker.max_instances = 256
        cfg.reranker.valid_rows = 64
        cfg.training.max_steps = 4
        cfg.training.eval_every = 2
        cfg.training.batch_size = 32
        cfg.training.progress = False
    return cfg


def run_quickstart(
    out: str = "runs/quickstart", fast: bool = False, echo=print, users: int | None = None
) -> dict:
    """Train, evaluate every protocol against the same-run baselines; return the tables.

    ``users`` evaluates only the first N test users (a quick look; the default is all)."""
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.evaluation import run
    from instructrec.runs import train_run

    t0 = time.perf_counter()
    cfg = quickstart_config(fast)
    dataset = load_movielens_100k()
    split = make_split(dataset, seed=cfg.data.seed)
    if users is not None:
        split = _first_users(split, users)
    echo(
        f"training on {dataset.name}: {dataset.n_users} users, {dataset.n_items} items "
        f"({'fast' if fast else 'full'} budget)"
    )
    rec, manifest = train_run(cfg, out, dataset=dataset, split=split)
    t_train = time.perf_counter() - t0
    models = {p.name: p for p in rec.priors}
    models.setdefault(rec.retriever.name, rec.retriever)
    models["instructrec"] = rec
    tables = {}
    for proto, templates in PROTOCOLS:
        key = proto + ("/held-out templates" if templates else "")
        report = run(
            proto,
            dataset,
            split,
            models,
            seed=cfg.data.seed,
            templates=templates,
            out_dir=f"{out}/eval/{proto}{'-heldout' if templates else ''}",
            n_boot=200 if fast else 1000,
        )
        tables[key] = report
        echo(f"\n## {key}\n")
        echo(report.table.to_string(float_format=lambda x: f"{x:.4f}"))
    echo("\n## sample recommendations (user " + str(dataset.user_ids[0]) + ")\n")
    for text in SAMPLE_INSTRUCTIONS:
        df = rec.recommend(user=dataset.user_ids[0], instruction=text, n=5)
        echo(f"> {text}")
        echo(df[["item_id", "title", "rank"]].to_string(index=False))
    seconds = time.perf_counter() - t0
    echo(
        f"\nquickstart: {seconds:.0f} s (training {t_train:.0f} s); run saved to {out}; "
        f'try: instructrec recommend --model {out}/model --user 1 "a 90s comedy"'
    )
    return {
        "tables": tables,
        "seconds": seconds,
        "train_seconds": t_train,
        "manifest": manifest,
        "recommender": rec,
    }


def _first_users(split, n: int):
    """A split restricted to the first ``n`` test users (training data is kept whole)."""
    import copy

    keep_users = split.test["user"].to_numpy()[:n]
    out = copy.copy(split)
    mask_t = split.test["user"].isin(keep_users).to_numpy()
    mask_v = split.valid["user"].isin(keep_users).to_numpy()
    out.test = split.test[mask_t].reset_index(drop=True)
    out.valid = split.valid[mask_v].reset_index(drop=True)
    out.candidates = {
        name: {"test": c["test"][mask_t], "valid": c["valid"][mask_v]}
        for name, c in split.candidates.items()
    }
    out.hashes = {}
    return out


@click.command()
@click.option(
    "--out",
    default="runs/quickstart",
    show_default=True,
    help="run directory (model, split, evaluation reports)",
)
@click.option("--fast", is_flag=True, help="tiny budget for CI (~1-2 min; numbers mean nothing)")
@click.option("--users", type=int, default=None, help="evaluate only the first N test users")
def quickstart(out: str, fast: bool, users: int | None) -> None:
    """Train on MovieLens-100K, compare with Pop / item-kNN / SASRec, show recommendations."""
    run_quickstart(out, fast=fast, echo=click.echo, users=users)
