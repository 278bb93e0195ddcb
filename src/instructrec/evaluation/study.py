"""One evaluation study: every protocol, every seed, every baseline and rival, one stage.

    reports, combined = run_study(dataset, split, ["cand10", "search"], seeds=[0, 1, 2],
                                  stage="valid", run_models=load_seed_models("runs/x"),
                                  baselines=["pop", "itemknn", "sasrec"], out_dir="runs/eval")

Per seed: the run's own fitted retrievers are reused as baselines (a model's priors and first
stage are exactly the retrievers of that seed), missing baselines are fitted with that seed,
and the rivals of EVALUATION.md are fitted without touching the stage being scored:

- ``score-mix`` (the reranker without its language model): fitted on the validation rows of
  the protocol; at ``stage="valid"`` its figures are out-of-fold (cross-fitted over users);
- ``sasrec+filter`` on protocols with an intention: its phrase table is learned from
  intentions generated on training targets only;
- ``bias`` and ``mf`` on ``pointwise``: fitted on training ratings, tuned on validation;
- ``new-first`` on ``cold``: a rule (new items first, then ``titleknn``), fitted on nothing.

`combine` (evaluation/seeds.py) turns the per-seed reports into the mean / per-seed / paired
table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.split import Split
from .seeds import STACKED, Combined, combine, headline, stacked_markdown, to_markdown

MODEL = "instructrec"
RIVALS = ("score-mix", "sasrec+filter", "bias", "mf", "new-first")  # and STACKED, by name


def _seed_baselines(dataset, split, names, seed, rec, options):
    from .run import fit_baselines

    have = {}
    if rec is not None:
        for r in [rec.retriever, *rec.priors]:
            have.setdefault(getattr(r, "name", type(r).__name__), r)
    missing = [n for n in names if n not in have]
    fitted = fit_baselines(dataset, split, missing, seed=seed, options=options) if missing else {}
    return {n: have[n] if n in have else fitted[n] for n in names}


def _seed_models(fitted: dict, dataset, split, rec, seed: int, baselines, rivals, options):
    """(baselines {name: retriever}, `Rivals` factory) of ``seed``, kept in ``fitted`` (the
    cache `run_study` and `prefit_rivals` share) and built only where missing or different."""
    from .rival_models import Rivals

    cache = fitted.setdefault(seed, {})
    have = cache.setdefault("baselines", {})
    todo = [b for b in baselines if b not in have]
    have.update(_seed_baselines(dataset, split, todo, seed, rec, options or {}))
    base = {b: have[b] for b in baselines}
    factory = cache.get("rivals")  # the filter and rating models serve every stage
    if factory is None or factory.names != list(rivals or []) or factory.base != base:
        factory = cache["rivals"] = Rivals(dataset, split, base, rec, seed, list(rivals or []))
    return base, factory


def prefit_rivals(fitted: dict, dataset, split, rec, seed: int, baselines, rivals, options=None):
    """Fill ``fitted`` (`run_study`'s cache) for ``seed`` before ``rec``'s reranker exists:
    the baselines (``rec``'s own priors where it has them) and the rivals that do not read
    the reranker (the rating models, the learned filter). `run_study` with the same
    baselines and rivals then reuses them; score-mix, which reads the reranker's settings,
    is still fitted there."""
    _, factory = _seed_models(fitted, dataset, split, rec, seed, baselines, rivals, options)
    if {"bias", "mf"} & set(factory.names):
        factory.rating_models()
    if "sasrec+filter" in factory.names:
        factory.learned_filter()
    return factory


def expected_models(protocol: str, baselines, rivals, has_model: bool) -> set[str]:
    """The models a report of ``protocol`` holds when `run_study` scores it (the rivals
    `rival_models.applicable_rivals` names; score-mix only beside a run's model)."""
    from .rival_models import applicable_rivals

    names = set(baselines) | ({MODEL} if has_model else set())
    applied = applicable_rivals(protocol, rivals or [])
    return names | {r for r in applied if has_model or r not in ("score-mix", STACKED)}


def load_reports(seed_dir, protocols, seed, stage, split, expected) -> dict[str, object]:
    """{protocol: Report} for the reports in ``seed_dir`` that `run_study` can reuse: same
    seed and stage, every split file the report was scored with present in ``split`` with
    the same hash (candidate files an evaluation built, such as `hard`, must have been saved
    into the split folder: `data.split_files.add_candidate_files`), every expected model present."""
    from .manifest import split_hashes
    from .report import Report

    hashes = split_hashes(split)
    out = {}
    for proto in protocols:
        d = Path(seed_dir) / proto
        if not (d / "report.json").exists():
            continue
        try:
            rep = Report.load(d)
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{d}: cannot read the saved report ({e})") from None
        man = rep.manifest
        if (
            rep.protocol == proto
            and man.get("seed") == seed
            and man.get("config", {}).get("stage") == stage
            and man.get("split_files")
            and all(hashes.get(k) == v for k, v in man["split_files"].items())
            and expected[proto] <= set(rep.table.index)
        ):
            out[proto] = rep
    return out


def run_study(
    dataset: Dataset,
    split: Split,
    protocols: list[str],
    seeds: list[int],
    stage: str = "valid",
    run_models: dict[int, object] | None = None,
    baselines: list[str] = ("pop", "itemknn", "sasrec"),
    rivals: list[str] | None = RIVALS,
    out_dir: str | Path | None = None,
    n_boot: int = 1000,
    templates: str | list[str] | None = None,
    options: dict[str, dict] | None = None,
    echo: Callable[[str], None] = print,
    fitted: dict[int, dict] | None = None,
    reuse: bool = False,
) -> tuple[dict[int, dict], Combined]:
    """Evaluate ``protocols`` at ``stage`` for each seed (see the module docstring).
    ``fitted``: a dict kept across calls (e.g. one per stage) so each seed's baselines and
    stage-independent rivals are fitted once: {seed: {"baselines": {name: retriever},
    "rivals": Rivals}}, filled here. ``reuse``: a protocol already scored in ``out_dir``
    for this seed, stage and split with every model of this study is read back, not
    scored again (seeds evaluated in separate runs combine into one table; each report's
    manifest keeps the commit it was scored at)."""
    from .manifest import git_commit
    from .run import run, write_summary

    git_commit()  # the code that runs is the checkout as it is now (cached for every manifest)

    run_models = run_models or {}
    missing = [s for s in seeds if run_models and s not in run_models]
    if missing:
        raise DataError(
            f"the run has models for seeds {sorted(run_models)}, not for {missing}; "
            f"train them with `instructrec train --seeds ...`"
        )
    study: dict[int, dict] = {}
    for seed in seeds:
        t0 = time.perf_counter()
        rec = run_models.get(seed)
        loaded = {}
        if reuse and out_dir is not None:
            want = {p: expected_models(p, baselines, rivals, rec is not None) for p in protocols}
            loaded = load_reports(
                Path(out_dir) / f"seed-{seed}", protocols, seed, stage, split, want
            )
            if loaded:
                echo(f"seed {seed}: reusing {', '.join(loaded)} ({stage}) from {out_dir}")
            if len(loaded) == len(protocols):
                study[seed] = {p: loaded[p] for p in protocols}
                continue
        base, factory = _seed_models(
            fitted if fitted is not None else {},
            dataset,
            split,
            rec,
            seed,
            baselines,
            rivals,
            options,
        )
        echo(f"seed {seed}: baselines {', '.join(base)} ready ({time.perf_counter() - t0:.0f} s)")
        study[seed] = {}
        for proto in protocols:
            if proto in loaded:
                study[seed][proto] = loaded[proto]
                continue
            t1 = time.perf_counter()
            models: dict[str, object] = dict(base)
            if rec is not None:
                models[MODEL] = rec
            if rivals:
                models.update(factory.for_protocol(proto, stage))
            sub = None if out_dir is None else Path(out_dir) / f"seed-{seed}" / proto
            rep = run(
                proto,
                dataset,
                split,
                models,
                seed=seed,
                out_dir=sub,
                templates=templates,
                n_boot=n_boot,
                stage=stage,
            )
            study[seed][proto] = rep
            echo(f"seed {seed}: {proto} ({stage}) in {time.perf_counter() - t1:.0f} s")
        if out_dir is not None:
            write_summary(study[seed], Path(out_dir) / f"seed-{seed}")
    combined = combine(study, model=MODEL, n_boot=n_boot)
    if out_dir is not None:
        save_combined(combined, out_dir, stage, stacked_markdown(study, n_boot=n_boot))
    return study, combined


def save_combined(c: Combined, out_dir: str | Path, stage: str, stacked: str = "") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = f"### score-mix + the reranker's score (what the LM adds)\n\n{stacked}\n\n"
    (out / "combined.md").write_text(
        f"## Stage: {stage}\n\n### Headline (primary metric per protocol)\n\n{headline(c)}\n\n"
        + (extra if stacked else "")
        + to_markdown(c)
    )
    (out / "combined.json").write_text(
        json.dumps(
            {
                "stage": stage,
                "seeds": c.seeds,
                "means": c.means.to_dict(orient="records"),
                "tests": c.tests.to_dict(orient="records"),
            },
            indent=1,
            default=float,
        )
    )
    return out
