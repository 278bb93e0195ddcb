"""`instructrec quickstart`: train on MovieLens-100K, compare with the baselines, recommend.

    instructrec quickstart [--out runs/quickstart] [--fast] [--set SECTION.KEY=VALUE ...]

Trains the quickstart configuration (the packaged configs/quickstart.yaml, which
``RunConfig()`` equals: SASRec first stage, MiniLM+LoRA
reranker with SASRec / item-kNN / Pop priors, seed 0), evaluates it on the VALIDATION stage
against Pop, item-kNN, SASRec and the rivals of EVALUATION.md (score-mix: the reranker's
non-text inputs without the language model; SASRec + a learned filter on requests; bias and
MF rating models on Yes/No) on cand10, cand20, full, search, vague, the paraphrased requests,
cand10 with held-out templates and pointwise, prints each table with the paired verdict
against every rival, and a few recommendations. The README's reported figures come from
`instructrec train --seeds 0,1,2` + `instructrec evaluate --stage test` (three seeds, test
stage, run once). ``--fast`` is a tiny budget for CI: its numbers mean nothing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from .common import set_option

log = logging.getLogger(__name__)

SAMPLE_INSTRUCTIONS = (
    "something funny from the 90s, no horror",
    "a thrilling action movie",
    "a romantic film for a quiet evening",
)
PROTOCOLS = (
    "cand10",
    "cand20",
    "full",
    "search",
    "vague",
    "vague-para",
    "search-para",
    "pointwise",
)
RIVALS = ("score-mix", "sasrec+filter", "bias", "mf")
BASELINES = ("pop", "itemknn", "sasrec")


FAST = (  # a smoke-test budget: every stage runs, nothing is trained to quality
    "retriever.options={max_epochs: 2, patience: 1}",
    "priors.0.options={max_epochs: 2, patience: 1}",  # the sasrec prior
    "backbone.lora_r=4",
    "reranker.max_instances=256",
    "reranker.valid_rows=64",
    "training.max_steps=4",
    "training.eval_every=2",
    "training.batch_size=32",
    "training.progress=false",
)


def quickstart_config(fast: bool = False, overrides=()):
    """The quickstart `RunConfig`: the packaged ``instructrec/configs/quickstart.yaml`` (the
    repository's ``configs/quickstart.yaml``), then the ``--fast`` budget, then ``overrides``
    (``SECTION.KEY=VALUE``, the CLI's ``--set``)."""
    from instructrec.config import RunConfig, packaged_config

    return RunConfig.from_yaml(packaged_config(), [*(FAST if fast else ()), *overrides])


def run_quickstart(
    out: str = "runs/quickstart",
    fast: bool = False,
    echo=print,
    users: int | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides=(),
) -> dict:
    """Train, evaluate every protocol against the same-run baselines; return the tables.

    ``users`` evaluates only the first N test users (a quick look; the default is all). The
    run folder is built beside ``out`` and renamed when complete; an ``out`` holding files is
    refused unless ``overwrite`` or ``resume`` (continue, e.g. after a kill, from the newest
    checkpoint)."""
    from instructrec.data import load_movielens_100k, make_split
    from instructrec.runs import train_into
    from instructrec.training.rundir import check_output, is_main_process, staged_output

    if is_main_process():
        check_output(out, resume=resume, overwrite=overwrite)
    t0 = time.perf_counter()
    cfg = quickstart_config(fast, overrides)
    dataset = load_movielens_100k()
    split = make_split(dataset, seed=cfg.data.seed)
    if users is not None:
        split = _first_users(split, users)
    echo(
        f"training on {dataset.name}: {dataset.n_users} users, {dataset.n_items} items "
        f"({'fast' if fast else 'full'} budget)"
    )
    fitted: dict = {}  # the evaluation's baselines and rivals, fitted once

    def prefit(rec) -> None:  # while the stacked SASRec trains in a second process
        from instructrec.evaluation.study import prefit_rivals

        t = time.perf_counter()
        prefit_rivals(fitted, dataset, split, rec, cfg.training.seed, BASELINES, RIVALS)
        log.info(
            "evaluation: rating models and filter fitted meanwhile (%.1f s)",
            time.perf_counter() - t,
        )

    with staged_output(out, resume=resume, overwrite=overwrite) as work:
        rec, manifest = train_into(cfg, work, dataset, split, resume=resume, on_wait=prefit)
        t_train = time.perf_counter() - t0
        rec.source_dir = f"{out}/model"  # where the manifests will find it (after the rename)
        tables = _evaluate(rec, cfg, dataset, split, work, fast, echo, fitted)
    seconds = time.perf_counter() - t0
    seed = cfg.training.seed
    echo(
        f"\nquickstart: {seconds:.0f} s (training {t_train:.0f} s)\n"
        f"  run (model, split, config, manifest): {out}\n"
        f"  summary table:  {out}/eval/summary.md\n"
        f"  full tables:    {out}/eval/seen/combined.md, {out}/eval/heldout/combined.md\n"
        f"  per protocol:   {out}/eval/seen/seed-{seed}/PROTOCOL/report.md, plot.png, "
        f"manifest.json, per_user.csv\n"
        f'  try:            instructrec recommend --model {out} --user 1 "a 90s comedy"'
    )
    return {
        "tables": tables,
        "seconds": seconds,
        "train_seconds": t_train,
        "manifest": manifest,
        "recommender": rec,
    }


def _evaluate(rec, cfg, dataset, split, work, fast: bool, echo, fitted=None) -> dict:
    """Every protocol against the same-run baselines (validation stage) into ``work/eval``;
    prints one summary table (strongest rival per protocol, paired verdict), writes it to
    ``work/eval/summary.md``, shows a few recommendations; returns the tables."""
    from instructrec.evaluation.study import run_study

    from .summary import summary_table

    seed = cfg.training.seed
    tables, groups = {}, []
    fitted = {} if fitted is None else fitted  # baselines, rivals: once for both groups
    for label, protos, templates in (
        ("seen templates", list(PROTOCOLS), None),
        ("held-out templates", ["cand10", "search", "vague"], "held_out"),
    ):
        reports, combined = run_study(
            dataset,
            split,
            protos,
            [seed],
            stage="valid",
            run_models={seed: rec},
            baselines=list(BASELINES),
            rivals=list(RIVALS),
            out_dir=f"{work}/eval/{'heldout' if templates else 'seen'}",
            n_boot=200 if fast else 1000,
            templates=templates,
            echo=echo,
            fitted=fitted,
        )
        tables[label] = combined
        groups.append((label, reports, combined))
    summary = summary_table(groups)
    Path(work, "eval", "summary.md").write_text(summary + "\n")
    echo("\n## validation stage: instructrec against the strongest rival of each protocol\n")
    echo(summary)
    echo("\n## sample recommendations (user " + str(dataset.user_ids[0]) + ")\n")
    for text in SAMPLE_INSTRUCTIONS:
        df = rec.recommend(user=dataset.user_ids[0], instruction=text, n=5)
        echo(f"> {text}")
        echo(df[["item_id", "title", "rank"]].to_string(index=False))
    return tables


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
@click.option("--overwrite", is_flag=True, help="replace the run already in --out")
@click.option(
    "--resume",
    is_flag=True,
    help="continue the run in --out (or the one a killed command left) from its newest checkpoint",
)
@set_option
def quickstart(
    out: str, fast: bool, users: int | None, overwrite: bool, resume: bool, sets: tuple[str, ...]
) -> None:
    """Train on MovieLens-100K, compare with Pop / item-kNN / SASRec, show recommendations."""
    run_quickstart(
        out,
        fast=fast,
        echo=click.echo,
        users=users,
        resume=resume,
        overwrite=overwrite,
        overrides=sets,
    )
