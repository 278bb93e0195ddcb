"""`instructrec evaluate`: run protocols of EVALUATION.md on a saved (or new) split.

instructrec evaluate --protocol cand10 --protocol full --models pop,itemknn,sasrec
instructrec evaluate --protocol all --model-dir runs/qs --out runs/eval/qs   # validation
instructrec evaluate --protocol all --model-dir runs/qs --stage test         # the final run
instructrec evaluate --protocol cand10 --set sasrec.max_epochs=5 --set itemknn.k=50
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import data_option


def _parse_sets(values: tuple[str, ...]) -> dict[str, dict]:
    import yaml

    from instructrec.data.errors import DataError

    out: dict[str, dict] = {}
    for item in values:
        key, eq, raw = item.partition("=")
        name, dot, opt = key.partition(".")
        if not (eq and dot and name and opt):
            raise DataError(
                f"--set expects MODEL.OPTION=VALUE (e.g. sasrec.max_epochs=5), got {item!r}"
            )
        out.setdefault(name, {})[opt] = yaml.safe_load(raw)
    return out


@click.command()
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    default=("cand10",),
    show_default=True,
    help="cand10, cand20, hard, cold, full, search, search-hard, vague, pointwise or all "
    "(repeat or comma-separate)",
)
@click.option(
    "--stage",
    type=click.Choice(["valid", "test"]),
    default="valid",
    show_default=True,
    help="rows to evaluate: 'valid' (validation targets and their candidate files; use it "
    "for all development) or 'test' (the held-out targets: run a configuration there once, "
    "for the figures you report)",
)
@click.option(
    "--models",
    default="pop,itemknn,sasrec",
    show_default=True,
    help="comma-separated baseline retrievers to fit on the split's training part",
)
@click.option(
    "--model-dir",
    "model_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="a saved Recommender (run directory) to evaluate as 'instructrec'",
)
@data_option
@click.option(
    "--split-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="saved split to evaluate on (default: the model dir's split/, else a new one)",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="split seed for a new split; intention wording and bootstrap seed",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="output directory (default runs/eval/<UTC timestamp>)",
)
@click.option("--set", "sets", multiple=True, help="retriever option, MODEL.OPTION=VALUE")
@click.option("--template", default=None, help="instruction template id passed to LM models")
@click.option("--n-boot", default=1000, show_default=True, type=int, help="bootstrap resamples")
def evaluate(
    protocols, stage, models, model_dirs, data, split_dir, seed, out, sets, template, n_boot
) -> None:
    """Evaluate baselines (and saved models) under the protocols; print and save the report."""
    from instructrec.data import load_split, make_split, save_split
    from instructrec.data.errors import DataError
    from instructrec.evaluation import evaluate_all, fit_baselines
    from instructrec.evaluation.protocols import PROTOCOLS

    from .common import load_dataset

    names = [p.strip() for arg in protocols for p in arg.split(",") if p.strip()]
    if "all" in names:
        names = ["all"]  # every protocol the split and models can run (see evaluate_all)
    for n in names:
        if n != "all" and n not in PROTOCOLS:
            raise DataError(f"unknown protocol {n!r}; choose from {list(PROTOCOLS)} or 'all'")
    out_dir = Path(out or Path("runs") / "eval" / time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
    dataset = load_dataset(data)
    if split_dir is None:
        for d in model_dirs:
            if (Path(d) / "split" / "split.json").exists():
                split_dir = str(Path(d) / "split")
                break
    new_split = split_dir is None
    if split_dir is not None:
        split = load_split(split_dir, dataset)
        click.echo(f"split: {split_dir} (hashes verified)")
    else:
        split = make_split(dataset, seed=seed)
        save_split(split, out_dir / "split", dataset)
        click.echo(f"split: new, seed {seed}, saved to {out_dir / 'split'}")
    saved: dict[str, object] = {}
    for i, d in enumerate(model_dirs):
        from instructrec.recommender import Recommender

        rec = Recommender.load(d)
        if rec.dataset.fingerprint() != dataset.fingerprint():
            raise DataError(
                f"the model was trained on {rec.dataset.name} "
                f"({rec.dataset.fingerprint()}), not on --data {data} "
                f"({dataset.fingerprint()})",
                source=str(d),
            )
        saved["instructrec" if i == 0 else f"instructrec-{i + 1}"] = rec
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    t0 = time.perf_counter()
    fitted = fit_baselines(dataset, split, wanted, seed=seed, options=_parse_sets(sets))
    click.echo(f"fitted {', '.join(wanted) or 'no baselines'} in {time.perf_counter() - t0:.1f}s")
    all_models: dict[str, object] = {**fitted, **saved}
    files_before = dict(split.hashes)
    reports = evaluate_all(
        names,
        dataset,
        split,
        all_models,
        seed=seed,
        out_dir=out_dir,
        templates=template,
        n_boot=n_boot,
        stage=stage,
    )
    if split.hashes != files_before:  # hard / search-hard files built during the run
        save_split(split, out_dir / "split", dataset)
        if not new_split:
            click.echo(f"split with the candidate files built now: {out_dir / 'split'}")
    click.echo(f"stage: {stage}")
    for rep in reports.values():
        click.echo(rep.to_markdown())
    click.echo(
        f"report: {out_dir}/summary.md (per protocol: report.md, report.json, "
        f"manifest.json, per_user.csv, plot.png)"
    )
