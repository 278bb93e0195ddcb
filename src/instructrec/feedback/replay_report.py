"""The replay study end to end (`replay_study`) and its report: JSON, markdown, one plot per
metric. Shared by `instructrec feedback simulate --replay` and
benchmarks/bench_feedback_replay.py."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.dataset import Dataset
from .mechanisms import ProfileConfig, arms_for
from .replay import ReplayConfig, split_known_hidden
from .replay_run import METRICS, ReplayRun, make_policy, run_replay, summarise


def refit_priors(
    recommender: Any,
    known: pd.DataFrame,
    device: str | None = None,
    max_epochs: int | None = None,
) -> list[str]:
    """Refit ``recommender``'s first stage and priors on the ``known`` part only (the run's
    were fitted on the whole training split, hidden future included). ``device`` overrides a
    prior's own (e.g. "cuda" for SASRec), ``max_epochs`` caps an epoch-trained one (SASRec).
    Returns the names refitted."""
    ds = recommender.dataset
    done, names = set(), []
    for r in [recommender.retriever, *recommender.priors]:
        if id(r) in done:
            continue
        if device and hasattr(getattr(r, "config", None), "device"):
            r.config.device = device
        if max_epochs and hasattr(getattr(r, "config", None), "max_epochs"):
            r.config.max_epochs = max_epochs
        r.fit(known, ds.n_users, ds.n_items)
        done.add(id(r))
        names.append(type(r).__name__)
    return names


def replay_study(
    dataset: Dataset,
    train: pd.DataFrame,
    config: ReplayConfig,
    seeds: list[int],
    arms: list[str] | None = None,
    recommender: Any = None,
    tune_every: int = 2,
    tune_config: Any = None,
    depth: int = 20,
    profile: ProfileConfig | None = None,
    progress: Any = None,
    extra_arms: dict[str, Any] | None = None,
    arm_tune_configs: dict[str, Any] | None = None,
) -> ReplayRun:
    """Cut ``train`` (the split's training interactions) into known / hidden, and replay the
    arms (control always) for each seed; a ``recommender`` with a reranker reorders each
    round's top ``depth`` (its priors are *not* refitted here: see `refit_priors`).
    ``extra_arms``: more named arms (`Mechanisms`), e.g. a tuning arm with another lambda
    given in ``arm_tune_configs``."""
    known, hidden = split_known_hidden(train, config.hidden_frac)
    has_rr = recommender is not None and recommender.reranker is not None
    policy = make_policy(dataset, known, config.n, depth, profile, recommender)
    return run_replay(
        dataset,
        known,
        hidden,
        config,
        {**arms_for(arms, has_rr), **(extra_arms or {})},
        seeds,
        policy,
        tune_every=tune_every,
        tune_config=tune_config,
        progress=progress,
        arm_tune_configs=arm_tune_configs,
    )


def _cell(x: dict, key: str = "diff") -> str:
    return f"{x[key]:+.3f} [{x[key + '_lo']:+.3f}, {x[key + '_hi']:+.3f}]"


def _ratio(x: dict) -> str:
    if not math.isfinite(x["ratio"]):
        return "n/a"
    return f"{x['ratio']:.2f}x [{x['ratio_lo']:.2f}, {x['ratio_hi']:.2f}]"


def to_markdown(run: ReplayRun, summaries: dict[str, pd.DataFrame]) -> str:
    """Round-``rounds`` headline per arm, then per-round paired differences per metric.
    ``summaries``: name -> `summarise` frame (e.g. "vs control", "vs norepeat", "new users")."""
    last = run.config.rounds
    lines = []
    for title, s in summaries.items():
        lines += [
            f"### Round {last}, cumulative hits on the hidden future, {title}",
            "",
            "| arm | mechanisms | baseline | arm mean | ratio [95% CI] | difference [95% CI] |",
            "|---|---|---|---|---|---|",
        ]
        for arm, mech in run.arms.items():
            x = s[(s["round"] == last) & (s["arm"] == arm) & (s["metric"] == "cum_hits")]
            if x.empty:
                continue
            x = x.iloc[0].to_dict()
            lines.append(
                f"| {arm} | {', '.join(mech.on()) or '-'} | {x['control']:.3f} | "
                f"{x['treated']:.3f} | {_ratio(x)} | {_cell(x)} |"
            )
        lines.append("")
    s = next(iter(summaries.values()))
    for m in METRICS:
        lines += [
            f"### {m} per round: arm mean (paired difference vs the first baseline, 95% CI)",
            "",
            "| arm | " + " | ".join(f"round {r}" for r in range(1, last + 1)) + " |",
            "|---|" + "---|" * last,
        ]
        for arm in run.arms:
            cells = []
            for r in range(1, last + 1):
                x = s[(s["round"] == r) & (s["arm"] == arm) & (s["metric"] == m)]
                if x.empty:
                    cells.append("")
                    continue
                x = x.iloc[0].to_dict()
                cells.append(f"{x['treated']:.3f} ({_cell(x)})")
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def to_json(run: ReplayRun, summaries: dict[str, pd.DataFrame]) -> dict:
    return {
        "config": asdict(run.config),
        "seeds": run.seeds,
        "arms": {k: v.on() for k, v in run.arms.items()},
        "summaries": {k: v.to_dict(orient="records") for k, v in summaries.items()},
        "tuning": run.tuning,
    }


def plot(run: ReplayRun, summary: pd.DataFrame, stem: str | Path) -> list[Path]:
    """One PNG per metric (arm means per round); [] when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    for m in METRICS:
        fig, ax = plt.subplots(figsize=(6, 4))
        for arm in run.arms:
            d = summary[(summary["arm"] == arm) & (summary["metric"] == m)]
            if arm == "control":
                ax.plot(d["round"], d["control"], marker="o", color="black", label="control")
                continue
            ax.plot(d["round"], d["treated"], marker="o", label=arm)
        ax.set_xlabel("round")
        ax.set_ylabel(m)
        ax.set_xticks(range(1, run.config.rounds + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"replay: {m} (mean over {len(run.seeds)} seeds x users)")
        fig.tight_layout()
        path = Path(f"{stem}_{m}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def standard_summaries(run: ReplayRun, n_boot: int = 2000) -> dict[str, pd.DataFrame]:
    """vs control (all users), vs the norepeat reference, and new users vs control."""
    out = {"vs control": summarise(run, n_boot)}
    if "norepeat" in run.arms:
        out["vs norepeat"] = summarise(run, n_boot, baseline="norepeat")
    if run.rows["new"].any():
        out["new users vs control"] = summarise(run, n_boot, subset="new")
    return out
