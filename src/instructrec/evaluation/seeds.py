"""Several seeds, one table: means over seeds, per-seed values, paired tests per seed and
pooled over seeds, Holm-adjusted verdicts against the strongest rival (EVALUATION.md).

A *study* is ``{seed: {protocol: Report}}``: for every seed the retrievers and the reranker
were trained with that seed on the same split and candidate files. `combine` turns it into
one long table of per-seed means and one of comparisons:

- per seed: the paired bootstrap already in each `Report` (model - rival, 95% CI, p);
- pooled: per-user values averaged over the seeds, then a paired bootstrap over users
  (rank protocols; for `pointwise`, AUC has no per-user value, so only per-seed tests);
- Holm (1979) adjustment of the pooled p-values (normal approximation from the bootstrap
  standard error) over every test the table holds.

The verdict of a comparison is ``beats`` when the pooled Holm-adjusted p < 0.05 with a
positive difference and every seed's difference is positive, ``below`` symmetrically,
``ties`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import stats as S

# the metric that decides a verdict, per protocol (EVALUATION.md's headline metric)
PRIMARY = {"full": "NDCG@10", "search-full": "NDCG@10", "search-full-para": "NDCG@10"}
PRIMARY["pointwise"] = "AUC"
DEFAULT_PRIMARY = "HR@1"
STACKED = "score-mix+lm"  # score-mix plus the reranker's own score (`rivals.ScoreMix` extra)
# rows that measure the model rather than rival it: never a rival unless asked for by name
MEASUREMENTS = (STACKED,)


def primary_metric(protocol: str, metrics: list[str]) -> str:
    m = PRIMARY.get(protocol, DEFAULT_PRIMARY)
    return m if m in metrics else metrics[0]


def holm(p: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as ``p``; NaN stays NaN)."""
    p_arr = np.asarray(p, np.float64)
    ok = np.flatnonzero(np.isfinite(p_arr))
    out = np.full(len(p_arr), np.nan)
    if len(ok) == 0:
        return out.tolist()
    order = ok[np.argsort(p_arr[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_arr[i]))
        out[i] = running
    return out.tolist()


def normal_p(diff: np.ndarray, idx: np.ndarray) -> float:
    """Two-sided p that the mean of ``diff`` is 0, from the bootstrap standard error."""
    from scipy.stats import norm

    diff = np.asarray(diff, np.float64)
    se = float(diff[idx].mean(axis=1).std(ddof=1))
    mean = float(diff.mean())
    if se == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    return float(2.0 * norm.sf(abs(mean) / se))


@dataclass
class Combined:
    """The multi-seed tables. ``means``: protocol, model, metric, mean over seeds, sd, and one
    column per seed. ``tests``: protocol, metric, model, rival, pooled diff + CI + p, Holm p,
    per-seed diffs and CIs, verdict."""

    means: pd.DataFrame
    tests: pd.DataFrame
    seeds: list[int]

    def strongest_rival(self, protocol: str, model: str = "instructrec") -> str | None:
        t = self.tests[(self.tests.protocol == protocol) & (self.tests.model == model)]
        if t.empty:
            return None
        metric = t.metric.iloc[0]
        m = self.means[
            (self.means.protocol == protocol)
            & (self.means.metric == metric)
            & self.means.model.isin(t.rival)
        ]
        return None if m.empty else str(m.sort_values("mean").model.iloc[-1])


def _per_user_mean(reports: list, model: str, metric: str) -> pd.Series | None:
    series = []
    for r in reports:
        pu = r.per_user.get(model)
        if pu is None or metric not in getattr(pu, "columns", []):
            return None
        col = pu[metric].astype(np.float64)
        col.index = col.index.astype(str)  # a report read back from disk has string ids
        series.append(col)
    return pd.concat(series, axis=1).mean(axis=1)


def combine(
    study: dict[int, dict[str, object]],
    model: str = "instructrec",
    rivals: list[str] | None = None,
    n_boot: int = S.N_BOOT,
    boot_seed: int = 0,
) -> Combined:
    """Combine ``{seed: {protocol: Report}}`` (see the module docstring). ``rivals``: the
    models ``model`` is tested against (default: every other model of each report but the
    `MEASUREMENTS`)."""
    seeds = sorted(study)
    if not seeds:
        raise ValueError("no seeds to combine")
    protocols = list(study[seeds[0]])
    mean_rows, test_rows = [], []
    for proto in protocols:
        reports = [study[s][proto] for s in seeds if proto in study[s]]
        metrics = list(reports[0].metrics)
        models = [m for m in reports[0].table.index if all(m in r.table.index for r in reports)]
        for name in models:
            for metric in metrics:
                vals = [float(r.table.loc[name, metric]) for r in reports]
                row = {
                    "protocol": proto,
                    "model": name,
                    "metric": metric,
                    "mean": float(np.mean(vals)),
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                }
                row.update({f"seed{s}": v for s, v in zip(seeds, vals, strict=True)})
                mean_rows.append(row)
        if model not in models:
            continue
        metric = primary_metric(proto, metrics)
        wanted = [m for m in models if m not in MEASUREMENTS] if rivals is None else rivals
        for rival in [m for m in models if m != model and m in wanted]:
            per_seed = []
            for s, r in zip(seeds, reports, strict=True):
                c = r.comparisons
                hit = c[(c.model == model) & (c.baseline == rival) & (c.metric == metric)]
                if hit.empty:  # the report tested the other direction or not at all
                    a = float(r.table.loc[model, metric])
                    b = float(r.table.loc[rival, metric])
                    per_seed.append((s, a - b, math.nan, math.nan, math.nan))
                else:
                    h = hit.iloc[0]
                    per_seed.append((s, h["diff"], h["diff_low"], h["diff_high"], h["p_bootstrap"]))
            pooled = {"diff": math.nan, "diff_ci": [math.nan, math.nan], "p_bootstrap": math.nan}
            a = _per_user_mean(reports, model, metric)
            b = _per_user_mean(reports, rival, metric)
            if a is not None and b is not None and len(a) == len(b) and len(a):
                idx = S.resample_indices(len(a), n_boot, boot_seed)
                pooled = S.paired_bootstrap(a.to_numpy(), b.to_numpy(), idx)
                # p from the bootstrap's standard error (normal approximation): a resampled
                # p cannot go below 1/n_boot, too coarse for a Holm correction over many tests
                pooled["p_bootstrap"] = normal_p(a.to_numpy() - b.to_numpy(), idx)
            elif per_seed:  # AUC: no per-user values; the mean of the per-seed differences
                pooled["diff"] = float(np.mean([d for _, d, *_ in per_seed]))
            row = {
                "protocol": proto,
                "metric": metric,
                "model": model,
                "rival": rival,
                "diff": pooled["diff"],
                "diff_low": pooled["diff_ci"][0],
                "diff_high": pooled["diff_ci"][1],
                "p": pooled["p_bootstrap"],
            }
            for s, d, lo, hi, p in per_seed:
                row[f"seed{s}_diff"] = d
                row[f"seed{s}_low"] = lo
                row[f"seed{s}_high"] = hi
                row[f"seed{s}_p"] = p
            test_rows.append(row)
    tests = pd.DataFrame(test_rows)
    if not tests.empty:
        # pooled p where there is one, else the largest per-seed p (the weakest seed)
        seed_p = tests[[f"seed{s}_p" for s in seeds]].max(axis=1)
        p_used = tests["p"].where(tests["p"].notna(), seed_p)
        tests["p_holm"] = holm(p_used.tolist())
        tests["verdict"] = [_verdict(r, seeds) for _, r in tests.iterrows()]
    return Combined(pd.DataFrame(mean_rows), tests, seeds)


def _verdict(row, seeds: list[int]) -> str:
    diffs = [row[f"seed{s}_diff"] for s in seeds]
    sig = np.isfinite(row["p_holm"]) and row["p_holm"] < S.ALPHA
    if sig and row["diff"] > 0 and all(d > 0 for d in diffs):
        return "beats"
    if sig and row["diff"] < 0 and all(d < 0 for d in diffs):
        return "below"
    return "ties"


def to_markdown(c: Combined, model: str = "instructrec", digits: int = 4) -> str:
    """One table per protocol: model rows (mean over seeds, per-seed values), then the
    paired tests of ``model`` against each rival (pooled and per seed, Holm)."""
    f = f"{{:.{digits}f}}"
    out = [
        f"Seeds {', '.join(map(str, c.seeds))}; mean over seeds (per-seed values); paired "
        f"bootstrap over users, per seed and pooled (per-user values averaged over seeds); "
        f"{len(c.tests)} tests in this table, Holm-adjusted.",
        "",
    ]
    for proto in c.means.protocol.unique():
        m = c.means[c.means.protocol == proto]
        metrics = list(dict.fromkeys(m.metric))
        out += [f"### {proto}", ""]
        out.append("| model | " + " | ".join(metrics) + " |")
        out.append("|---" * (len(metrics) + 1) + "|")
        for name in dict.fromkeys(m.model):
            cells = []
            for metric in metrics:
                r = m[(m.model == name) & (m.metric == metric)].iloc[0]
                per = " / ".join(f.format(r[f"seed{s}"]) for s in c.seeds)
                cells.append(f"{f.format(r['mean'])} ({per})")
            label = f"**{name}**" if name == model else name
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        t = c.tests[c.tests.protocol == proto] if not c.tests.empty else c.tests
        if len(t):
            out += [
                "",
                f"{model} minus rival on {t.metric.iloc[0]}:",
                "",
                "| rival | diff [95% CI] pooled | Holm p | per seed | verdict |",
                "|---|---|---|---|---|",
            ]
            for _, r in t.iterrows():
                per = "; ".join(
                    f"{r[f'seed{s}_diff']:+.{digits}f}"
                    + (
                        f" [{r[f'seed{s}_low']:+.3f}, {r[f'seed{s}_high']:+.3f}]"
                        if np.isfinite(r[f"seed{s}_low"])
                        else ""
                    )
                    for s in c.seeds
                )
                ci = (
                    f"[{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
                    if np.isfinite(r["diff_low"])
                    else "(per seed only)"
                )
                p = "n/a" if not np.isfinite(r["p_holm"]) else f"{r['p_holm']:.3g}"
                out.append(
                    f"| {r['rival']} | {r['diff']:+.{digits}f} {ci} | {p} | {per} | "
                    f"{r['verdict']} |"
                )
        out.append("")
    return "\n".join(out)


def headline(
    c: Combined,
    model: str = "instructrec",
    show: tuple[str, ...] = ("sasrec", "ease", "score-mix", "sasrec+filter", "bias", "mf"),
    digits: int = 4,
) -> str:
    """One row per protocol (its primary metric): ``model`` and the ``show`` columns (mean over
    seeds), the strongest rival, ``model`` minus it with the pooled 95% CI and Holm p, and
    the verdict. Blank cells: the model does not apply to that protocol."""
    f = f"{{:.{digits}f}}"
    cols = [m for m in show if m in set(c.means.model)]
    head = [
        "protocol",
        "metric",
        f"**{model}**",
        *cols,
        "strongest rival",
        "diff [95% CI]",
        "Holm p",
        "verdict",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for proto in dict.fromkeys(c.means.protocol):
        m = c.means[c.means.protocol == proto]
        t = c.tests[c.tests.protocol == proto] if not c.tests.empty else c.tests
        metric = t.metric.iloc[0] if len(t) else m.metric.iloc[0]
        row = m[m.metric == metric].set_index("model")["mean"]
        if model not in row:
            continue
        best = c.strongest_rival(proto, model)
        cells = [proto, metric, f"**{f.format(row[model])}**"]
        cells += [f.format(row[x]) if x in row else "" for x in cols]
        if best is not None and len(t):
            r = t[t.rival == best].iloc[0]
            cells += [f"{best} ({f.format(row[best])})", *_diff_cells(r, c.seeds, digits)]
        else:
            cells += ["", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _diff_cells(r, seeds: list[int], digits: int) -> list[str]:
    """The cells of one test row: diff with its pooled CI (or the per-seed diffs where there
    is none), Holm p, verdict."""
    ci = (
        f" [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
        if np.isfinite(r["diff_low"])
        else " (per seed: " + ", ".join(f"{r[f'seed{s}_diff']:+.3f}" for s in seeds) + ")"
    )
    p = "n/a" if not np.isfinite(r["p_holm"]) else f"{r['p_holm']:.2g}"
    return [f"{r['diff']:+.{digits}f}{ci}", p, r["verdict"]]


def stacked_markdown(
    study: dict[int, dict[str, object]],
    model: str = STACKED,
    base: str = "score-mix",
    n_boot: int = S.N_BOOT,
    digits: int = 4,
) -> str:
    """What the language model adds to score-mix fitted the same way: per protocol, ``base``,
    ``model`` (``base`` with the reranker's score as one more feature), the pooled paired
    difference with its CI, Holm p over these tests, and the verdict. Empty when no report
    holds ``model``."""
    if not any(model in r.table.index for reps in study.values() for r in reps.values()):
        return ""
    c = combine(study, model=model, rivals=[base], n_boot=n_boot)
    if c.tests.empty:
        return ""
    f = f"{{:.{digits}f}}"
    out = [
        f"| protocol | metric | {base} | {model} | diff [95% CI] | Holm p | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in c.tests.iterrows():
        m = c.means[(c.means.protocol == r.protocol) & (c.means.metric == r.metric)]
        mean = m.set_index("model")["mean"]
        cells = [r.protocol, r.metric, f.format(mean[base]), f.format(mean[model])]
        out.append("| " + " | ".join([*cells, *_diff_cells(r, c.seeds, digits)]) + " |")
    return "\n".join(out)
