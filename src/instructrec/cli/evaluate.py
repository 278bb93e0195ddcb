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

from .common import SPEC_OPTIONS, data_option


def _given(name: str) -> bool:
    """Whether option ``name`` was given on the command line (not left at its default)."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) not in (
        click.core.ParameterSource.DEFAULT,
        click.core.ParameterSource.DEFAULT_MAP,
        None,
    )


def _data_given() -> bool:
    return _given("data") or any(_given(f"data_{o}") for o in SPEC_OPTIONS)


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
    help="cand10, cand20, hard, cold, full, search, search-hard, search-full, search-full-para, "
    "vague, vague-para, search-para, pointwise or all (repeat or comma-separate)",
)
@click.option(
    "--stage",
    type=click.Choice(["valid", "test", "valid,test"]),
    default="valid",
    show_default=True,
    help="rows to evaluate: 'valid' (validation targets and their candidate files; use it "
    "for all development) or 'test' (the held-out targets: run a configuration there once, "
    "for the figures you report); 'valid,test' fits the baselines once and writes OUT/valid "
    "and OUT/test",
)
@click.option(
    "--models",
    default="pop,itemknn,sasrec,score-mix,sasrec+filter,bias,mf,new-first",
    show_default=True,
    help="comma-separated baselines (retrievers fitted on the split's training part: pop, "
    "itemknn, bpr, ease, sasrec, titleknn: frozen item-text vectors) and rivals (score-mix: the reranker's non-text inputs mixed "
    "by a model fitted on validation; sasrec+filter on protocols with an intention; bias, mf "
    "on pointwise; new-first on cold: new items first, then titleknn order); score-mix+lm (with --model-dir: score-mix plus the reranker's score, what "
    "the language model adds, tested against score-mix in combined.md)",
)
@click.option(
    "--model-dir",
    "model_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="a run directory of `instructrec train` (one seed, or several with --seeds) or a "
    "model directory, evaluated as 'instructrec'; its data (unless --data is given), split, "
    "candidate files and fitted retrievers are reused",
)
@click.option(
    "--seeds",
    default=None,
    help="comma-separated seeds (e.g. 0,1,2): retrievers and rivals are fitted once per seed "
    "(a --model-dir run must hold a model per seed); the tables give the mean, per-seed "
    "values and paired tests",
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
@click.option("--overwrite", is_flag=True, help="replace what --out already holds")
def evaluate(
    protocols,
    stage,
    models,
    model_dir,
    seeds,
    data,
    split_dir,
    seed,
    out,
    sets,
    template,
    n_boot,
    overwrite,
) -> None:
    """Evaluate baselines, rivals (and a saved run) under the protocols; print and save."""
    from instructrec.data import load_split, make_split, save_split
    from instructrec.data.errors import DataError
    from instructrec.data.spec import load_data_spec
    from instructrec.evaluation.protocols import PROTOCOLS
    from instructrec.evaluation.run import _runnable
    from instructrec.evaluation.seeds import STACKED, to_markdown
    from instructrec.evaluation.study import RIVALS, run_study
    from instructrec.runs import load_seed_models, run_split_dir
    from instructrec.training.rundir import check_output, staged_output

    from .common import parse_seeds
    from .progress import stage as show_stage

    names = [p.strip() for arg in protocols for p in arg.split(",") if p.strip()]
    for n in names:
        if n != "all" and n not in PROTOCOLS:
            raise DataError(f"unknown protocol {n!r}; choose from {list(PROTOCOLS)} or 'all'")
    seed_list = parse_seeds(seeds) if seeds is not None else [seed]
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    rivals = [m for m in wanted if m in (*RIVALS, STACKED)]
    baselines = [m for m in wanted if m not in rivals]
    final = Path(out or Path("runs") / "eval" / time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
    check_output(final, overwrite=overwrite)
    run_models = {}
    if model_dir is not None:
        t_load = time.perf_counter()
        run_models = load_seed_models(model_dir)
        show_stage(
            f"model: {len(run_models)} seed(s) loaded from {model_dir} "
            f"({time.perf_counter() - t_load:.1f} s)"
        )
    if run_models and _data_given() is False:
        dataset = next(iter(run_models.values())).dataset  # the run's own data, as saved
        click.echo(f"data: {dataset.name}, from {model_dir}")
    else:
        t_load = time.perf_counter()
        dataset = load_data_spec(data)
        show_stage(
            f"data: {dataset.name}, {dataset.n_users} users, {dataset.n_items} items "
            f"({time.perf_counter() - t_load:.1f} s)"
        )
    for s_, rec in run_models.items():
        if rec.dataset.fingerprint() != dataset.fingerprint():
            raise DataError(
                f"the model (seed {s_}) was trained on {rec.dataset.name}, not on "
                f"--data {data.source}",
                source=str(model_dir),
            )
    if run_models:
        if seeds is None:
            seed_list = sorted(run_models)
        if split_dir is None:
            found = run_split_dir(model_dir)
            split_dir = str(found) if found else None
    with staged_output(final, overwrite=overwrite) as out_dir:  # renamed to --out on success
        new_split = split_dir is None
        if split_dir is not None:
            split = load_split(split_dir, dataset)
            origin = (
                f"reused from {model_dir}" if run_models and not _given("split_dir") else "read"
            )
            click.echo(
                f"split: {origin} ({split_dir}, hashes verified; its candidate files reused)"
            )
        else:
            split = make_split(dataset, seed=seed)
            save_split(split, out_dir / "split", dataset)
            click.echo(f"split: new, seed {seed}, saved to {final / 'split'}")
        if run_models:
            rec = next(iter(run_models.values()))
            own = {getattr(r, "name", "") for r in [rec.retriever, *rec.priors]}
            reused = [b for b in baselines if b in own]
            fresh = [b for b in baselines if b not in own]
            click.echo(
                f"baselines: reused from {model_dir}: {', '.join(reused) or 'none'}"
                + (f"; fitted now: {', '.join(fresh)}" if fresh else "")
            )
        if "all" in names:
            probe = {b: None for b in baselines}
            names = [n for n in PROTOCOLS if _runnable(n, split, probe, dataset)]
        files_before = dict(split.hashes)
        fitted: dict = {}
        results = {}
        for st in stage.split(","):
            _, results[st] = run_study(
                dataset,
                split,
                names,
                seed_list,
                stage=st,
                run_models=run_models,
                baselines=baselines,
                rivals=rivals,
                out_dir=out_dir if "," not in stage else out_dir / st,
                n_boot=n_boot,
                templates=template,
                options=_parse_sets(sets),
                echo=click.echo,
                fitted=fitted,
            )
        if split.hashes != files_before:  # hard / search-hard files built during the run
            save_split(split, out_dir / "split", dataset)
            if not new_split:
                click.echo(f"split with the candidate files built now: {final / 'split'}")
    out_dir = final
    for st, combined in results.items():
        click.echo(f"stage: {st}; seeds: {', '.join(map(str, seed_list))}")
        click.echo(to_markdown(combined))
    click.echo(
        f"report: {out_dir}/combined.md (per seed and protocol: seed-N/PROTOCOL/report.md, "
        f"report.json, manifest.json, per_user.csv, plot.png)"
    )
