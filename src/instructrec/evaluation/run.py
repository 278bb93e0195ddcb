"""Run protocols: every model on the same split and candidate files, per-user metrics, 95%
bootstrap CIs, paired tests against every baseline, a manifest; one `Report` per protocol.

    from instructrec.evaluation import run, evaluate_all, fit_baselines
    models = fit_baselines(dataset, split, ["pop", "itemknn", "sasrec"])
    report = run("cand10", dataset, split, models, seed=0, out_dir="runs/eval/x")
    print(report.to_markdown())

``stage`` ("valid" or "test") picks the rows: develop on "valid", report "test" once.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .. import stats as S
from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.split import Split
from ..retrieval.base import Retriever
from . import metrics as M
from .adapters import AttributeFilterModel, RetrieverModel, as_model
from .hard_negatives import HARD_NEGATIVES, HARD_RETRIEVER, protocol_candidates
from .intentions import protocol_intentions, training_intentions
from .manifest import build_manifest
from .protocols import (
    PROTOCOLS,
    full_ranks,
    get_protocol,
    pointwise_instances,
    score_candidates,
    score_pointwise,
    select_rows,
    stage_rows,
)
from .report import Report
from .significance import auc_statistics, rank_statistics

BASELINES = ("pop", "itemknn", "sasrec")  # the baselines every run reports (EVALUATION.md)
# Added when a protocol has an intention, SASRec is in the run and no filter was given: SASRec
# with an attribute filter that reads the intention's true STRUCTURED attributes (an oracle the
# evaluation holds), not the request text. It is not EVALUATION.md's `sasrec+filter` (the
# learned phrase table, `learned_filter.LearnedFilter`), so it never carries that name.
ORACLE_FILTER = "sasrec+oracle-filter"
FILTERS = ("sasrec+filter", ORACLE_FILTER)


def fit_baselines(
    dataset: Dataset,
    split: Split,
    names: Iterable[str] = BASELINES,
    seed: int = 0,
    options: dict[str, dict] | None = None,
) -> dict[str, Retriever]:
    """Make and fit each named retriever on ``split.train`` (``split.valid`` for early stopping)."""
    from ..models.text_encoder import item_text_vectors
    from ..rerank.rerank_features import item_texts
    from ..retrieval.registry import fit_retriever

    options = options or {}
    out, texts = {}, None
    for name in names:
        opts = dict(options.get(name, {}))
        opts.setdefault("seed", seed)
        if name == "titleknn" and texts is None:  # the texts the reranker embeds
            texts = item_texts(dataset)
        out[name] = fit_retriever(
            name,
            split,
            dataset.n_users,
            dataset.n_items,
            opts,
            item_texts=texts,
            text_encoder=item_text_vectors if texts is not None else None,
        )
    return out


def _ensure_fitted(obj, dataset: Dataset, split: Split):
    if isinstance(obj, Retriever) and obj.n_items == 0:
        obj.fit(split.train, dataset.n_users, dataset.n_items, valid=split.valid)
    if isinstance(obj, Retriever) and obj.n_items != dataset.n_items:
        raise DataError(
            f"{type(obj).__name__} was fitted on {obj.n_items} items, the dataset "
            f"has {dataset.n_items}"
        )
    return obj


def _per_model_values(proto, dataset, split, models, rows, seed, templates, negatives):
    """{model: {metric: per-user values}} (+ pointwise instance frames), notes, extras."""
    values, frames, notes, extra = {}, {}, [], {}
    if proto.kind in ("candidates", "search-full"):
        full = proto.kind == "search-full"
        cands = (
            None if full else protocol_candidates(proto, dataset, split, models, rows, seed, notes)
        )
        texts = attrs = None
        if proto.intention:
            from ..instructions.overlap import vocabulary_overlap

            made = split.notes.get(proto.candidates, {}).get(rows.stage, {})
            iseed = int(made.get("intention_seed", seed))  # search-hard: the file's intentions
            if iseed != seed:
                notes.append(f"intentions use the {proto.candidates} file's seed {iseed}")
            texts, attrs, info = protocol_intentions(proto, dataset, rows.targets, iseed)
            train_texts = training_intentions(dataset, split, proto.intention, seed)
            ov = vocabulary_overlap([t for t in texts if t], train_texts)
            extra["intentions"] = {**info, "overlap_with_training": ov}
            notes.append(
                f"intentions: {info['wording']}"
                + (
                    f" {info['version']} (sha256 {info['sha256'][:12]})"
                    if "version" in info
                    else ""
                )
                + f"; overlap with training intentions: {ov['verbatim']:.3f} of texts verbatim, "
                f"{ov['words']:.3f} of words, {ov['bigrams']:.3f} of bigrams"
            )
            empty = sum(1 for t in texts if not t)
            if empty:
                notes.append(
                    f"{empty} of {len(texts)} targets have no attribute to state an "
                    "intention with (empty intention)"
                )
        if full:
            from .search_full import search_full_values

            values = search_full_values(
                proto, dataset, models, rows, texts, attrs, templates, notes, extra
            )
        for name, model in models.items() if not full else ():
            sc = score_candidates(model, rows, cands, texts, templates, attrs)
            values[name] = M.compute(M.ranks_from_scores(sc), list(proto.metrics))
        if proto.intention == "I2" and not full:
            from .hard_negatives import intention_match_stats

            extra["intention_match"] = st = intention_match_stats(dataset, attrs, cands, values)
            hr = ", ".join(f"{k} {v:.4f}" for k, v in st["HR@1|>=2match"].items())
            notes.append(
                f"unique-match rate {st['unique_match_rate']:.4f} (target the only candidate "
                f"matching the intention); HR@1 on the {st['rows_ge2_match']} rows with >= 2 "
                f"matching candidates: {hr}"
            )
    elif proto.kind == "full":
        for name, model in models.items():
            if getattr(model, "retriever", None) is None:
                notes.append(f"{name}: skipped (no .retriever to propose candidates)")
                continue
            values[name] = M.compute(full_ranks(model, rows, templates), list(proto.metrics))
    else:  # pointwise
        users, items, hists, labels, owner = pointwise_instances(split, rows, negatives)
        notes.append(
            f"pointwise instances: {len(labels)} ({int(labels.sum())} liked, "
            f"{int((labels == 0).sum())} not); {negatives} unseen negatives per user"
        )
        for name, model in models.items():
            sc = score_pointwise(model, users, items, hists)
            frames[name] = pd.DataFrame(
                {
                    "user": dataset.user_ids[users],
                    "item": dataset.item_ids[items],
                    "label": labels,
                    "score": sc,
                    "owner": owner,
                }
            )
    return values, frames, notes, extra


def run(
    protocol: str,
    dataset: Dataset,
    split: Split,
    models: dict[str, object],
    seed: int = 0,
    out_dir: str | Path | None = None,
    templates: str | list[str] | None = None,
    baselines: Iterable[str] | None = None,
    n_boot: int = S.N_BOOT,
    pointwise_negatives: int = 0,
    stage: str = "test",
) -> Report:
    """Evaluate every model in ``models`` under ``protocol`` on ``split``'s ``stage`` rows
    ("valid": validation targets, training histories, the valid candidate files; "test").

    ``models`` maps a display name to a fitted `Retriever` (an unfitted one is fitted on
    ``split.train``) or to any object with ``score_candidates``. ``baselines`` (default: the
    retrievers, plus ``sasrec+oracle-filter`` where the protocol has an intention and no filter
    was given: SASRec with the intention's true attributes first) are what every other model is tested
    against. ``seed`` drives intention wording and the bootstrap. Saves to ``out_dir`` if given.
    """
    proto = get_protocol(protocol)
    if not models:
        raise DataError("no models to evaluate")
    t0 = time.perf_counter()
    rows = stage_rows(split, stage)
    if len(rows.users) == 0:
        raise DataError(f"the split has no {stage} rows (every user needs >= 3 interactions)")
    rows = select_rows(proto, split, rows, dataset)
    prepared = {name: as_model(_ensure_fitted(obj, dataset, split)) for name, obj in models.items()}
    if proto.intention and "sasrec" in prepared and not set(FILTERS) & set(prepared):
        base = prepared["sasrec"]
        if isinstance(base, RetrieverModel):
            prepared[ORACLE_FILTER] = AttributeFilterModel(base.retriever, dataset)
    if baselines is None:
        baselines = [n for n, m in prepared.items() if getattr(m, "is_baseline", False)]
    baselines = list(baselines)
    values, frames, notes, extra = _per_model_values(
        proto, dataset, split, prepared, rows, seed, templates, pointwise_negatives
    )
    idx = S.resample_indices(len(rows.users), n_boot, seed)
    if proto.kind == "pointwise":
        iv, cmps = auc_statistics(frames, baselines, idx)
        per_user = frames
    else:
        iv, cmps, per_user = rank_statistics(
            values, list(proto.metrics), baselines, idx, dataset.user_ids[rows.users]
        )
    intervals = pd.DataFrame(iv, columns=["model", "metric", "mean", "ci_low", "ci_high", "n"])
    table = intervals.pivot(index="model", columns="metric", values="mean")
    table = table.reindex(
        index=[m for m in prepared if m in table.index], columns=list(proto.metrics)
    )
    comparisons = pd.DataFrame(
        cmps,
        columns=[
            "model",
            "baseline",
            "metric",
            "diff",
            "diff_low",
            "diff_high",
            "p_bootstrap",
            "wins",
            "losses",
            "p_sign",
        ],
    )
    config = {
        "protocol": proto.name,
        "stage": stage,
        "description": f"{proto.description} [stage: {stage}]",
        "rows": len(rows.users),
        "metrics": list(proto.metrics),
        "candidates": proto.candidates,
        "intention": proto.intention,
        "n_boot": n_boot,
        "baselines": baselines,
        "templates": templates,
        "pointwise_negatives": pointwise_negatives,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if proto.rows == "cold":
        config["cold_items"] = len(split.cold_items)
    manifest = build_manifest(proto.name, dataset, split, prepared, seed, config)
    manifest.update(extra)  # e.g. intention_match: unique-match rate, HR@1 on >= 2 matches
    report = Report(
        proto.name, list(proto.metrics), table, intervals, comparisons, per_user, manifest, notes
    )
    if out_dir is not None:
        report.save(out_dir)
    return report


def evaluate_all(
    protocols: Iterable[str] | str = "all",
    dataset: Dataset | None = None,
    split: Split | None = None,
    models: dict[str, object] | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    templates: str | list[str] | None = None,
    stage: str = "test",
    **kwargs,
) -> dict[str, Report]:
    """`run` for each protocol at ``stage``; with ``out_dir``, one sub-directory per protocol
    plus ``summary.md`` / ``summary.json``. 'all' = every protocol the split and models can
    run: ``cold`` is left out (with a warning) when the split has no cold items, ``cold-only``
    when it has fewer than 10, ``hard`` when the split has no hard file and there is no
    ``sasrec`` model to build it from."""
    if dataset is None or split is None or not models:
        raise DataError("evaluate_all needs a dataset, a split and at least one model")
    names = list(PROTOCOLS) if protocols == "all" or protocols == ["all"] else list(protocols)
    for n in names:
        get_protocol(n)
    if protocols == "all" or protocols == ["all"]:
        names = [n for n in names if _runnable(n, split, models, dataset)]
    reports = {}
    for name in names:
        sub = None if out_dir is None else Path(out_dir) / name
        reports[name] = run(
            name,
            dataset,
            split,
            models,
            seed=seed,
            out_dir=sub,
            templates=templates,
            stage=stage,
            **kwargs,
        )
    if out_dir is not None:
        write_summary(reports, out_dir)
    return reports


def _runnable(name: str, split: Split, models: dict, dataset: Dataset | None = None) -> bool:
    """False (with a warning) for a protocol 'all' leaves out: see `evaluate_all`."""
    why = None
    if name == "cold" and len(split.cold_items) == 0:
        why = "the split has no cold items (make a new split)"
    if name == "cold-only" and len(split.cold_items) <= HARD_NEGATIVES:
        why = f"the split has {len(split.cold_items)} cold items ({HARD_NEGATIVES + 1} needed)"
    if name == "hard" and "hard" not in split.candidates and HARD_RETRIEVER not in models:
        why = f"no 'hard' candidate file and no {HARD_RETRIEVER!r} model to build it from"
    if name == "pointwise" and (
        "rating" not in split.train or not split.train["rating"].notna().any()
    ):
        why = "the data has no ratings (liked = rating >= 4)"
    if get_protocol(name).wording == "paraphrase" and dataset is not None:
        from ..instructions.paraphrase import covers

        if not covers(dataset):
            why = "the paraphrase set names no attribute value of this dataset's items"
    if why:
        warnings.warn(f"protocol {name!r} left out: {why}", stacklevel=3)
    return why is None


def write_summary(reports: dict[str, Report], out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("\n".join(r.to_markdown() for r in reports.values()))
    (out / "summary.json").write_text(
        json.dumps(
            {
                p: {m: {k: float(v) for k, v in row.items()} for m, row in r.table.iterrows()}
                for p, r in reports.items()
            },
            indent=2,
        )
    )
    return out
