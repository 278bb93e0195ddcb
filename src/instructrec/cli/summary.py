"""The quickstart's closing summary: one table over every protocol, then where things are.

Per protocol (and template set): the reranker's primary metric with its 95% bootstrap
interval, the strongest rival of the same run with its interval, the paired difference with
its interval, the Holm-adjusted p and the verdict (`instructrec.evaluation.seeds.combine`).
"""

from __future__ import annotations

import math

MODEL = "instructrec"


def _ci(report, model: str, metric: str) -> str:
    iv = report.intervals
    r = iv[(iv.model == model) & (iv.metric == metric)]
    if r.empty:
        return "n/a"
    r = r.iloc[0]
    mean, lo, hi = float(r["mean"]), float(r.ci_low), float(r.ci_high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{mean:.4f}"
    return f"{mean:.4f} [{lo:.3f}, {hi:.3f}]"


def summary_rows(groups: list[tuple[str, dict, object]], model: str = MODEL) -> list[list[str]]:
    """Rows of the summary for ``groups``: (label, {seed: {protocol: Report}}, Combined)."""
    rows = []
    for label, reports, combined in groups:
        seed = sorted(reports)[0]
        for proto, report in reports[seed].items():
            t = combined.tests
            t = t[(t.protocol == proto) & (t.model == model)] if not t.empty else t
            metric = t.metric.iloc[0] if len(t) else report.metrics[0]
            if model not in set(report.intervals.model):
                continue
            rival = combined.strongest_rival(proto, model)
            cells = [proto, label, metric, _ci(report, model, metric)]
            if rival is None or t.empty:
                rows.append([*cells, "", "", "", "no rival"])
                continue
            r = t[t.rival == rival].iloc[0]
            diff = f"{r['diff']:+.4f}"
            if math.isfinite(r["diff_low"]):
                diff += f" [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
            p = f"{r['p_holm']:.2g}" if math.isfinite(r["p_holm"]) else "n/a"
            rows.append([*cells, f"{rival} {_ci(report, rival, metric)}", diff, p, r["verdict"]])
    return rows


def summary_table(groups: list[tuple[str, dict, object]], model: str = MODEL) -> str:
    """The summary as a markdown table (see `summary_rows`)."""
    head = [
        "protocol",
        "templates",
        "metric",
        f"{model} [95% CI]",
        "strongest rival [95% CI]",
        "difference [95% CI]",
        "Holm p",
        "verdict",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(groups, model)]
    return "\n".join(lines)
