"""`Report`: the result of one protocol run, as a table with 95% CIs, paired tests against the
baselines, per-user values, a manifest; saved as markdown, JSON, CSV and a PNG plot."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


def _fmt(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _wl(wins, losses) -> str:
    if wins is None or (isinstance(wins, float) and math.isnan(wins)):
        return "n/a"
    return f"{int(wins)}/{int(losses)}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


@dataclass
class Report:
    """One protocol's results.

    table
        Mean per model (index) and metric (columns).
    intervals
        Long format: model, metric, mean, ci_low, ci_high, n (95% percentile bootstrap).
    comparisons
        model, baseline, metric, diff (model - baseline), diff_low, diff_high, p_bootstrap
        (paired bootstrap, two-sided), wins, losses, p_sign (exact sign test over users).
    per_user
        Per model, a DataFrame of per-user metric values (index: raw user id); for
        `pointwise`, per instance: user, item, label, score.
    """

    protocol: str
    metrics: list[str]
    table: pd.DataFrame
    intervals: pd.DataFrame
    comparisons: pd.DataFrame
    per_user: dict[str, pd.DataFrame]
    manifest: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def mean(self, model: str, metric: str) -> float:
        return float(self.table.loc[model, metric])

    def to_markdown(self) -> str:
        head = [f"### {self.protocol}", ""]
        desc = self.manifest.get("config", {}).get("description")
        if desc:
            head += [desc, ""]
        n = int(self.intervals["n"].iloc[0]) if len(self.intervals) else 0
        head += [
            f"n = {n} test users; mean [95% bootstrap CI]; seed "
            f"{self.manifest.get('seed')}; dataset {self.manifest.get('dataset', {}).get('name')}",
            "",
        ]
        rows = []
        for model in self.table.index:
            cells = [str(model)]
            for m in self.metrics:
                r = self.intervals[(self.intervals.model == model) & (self.intervals.metric == m)]
                r = r.iloc[0]
                cells.append(f"{_fmt(r['mean'])} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]")
            rows.append(cells)
        out = head + [markdown_table(["model", *self.metrics], rows)]
        if len(self.comparisons):
            first = self.metrics[0]
            cmp = self.comparisons[self.comparisons.metric == first]
            crow = [
                [
                    r.model,
                    r.baseline,
                    f"{r['diff']:+.4f} [{r.diff_low:+.4f}, {r.diff_high:+.4f}]",
                    _p(r.p_bootstrap),
                    _wl(r.wins, r.losses),
                    _p(r.p_sign),
                ]
                for _, r in cmp.iterrows()
            ]
            out += [
                "",
                f"Paired tests on {first} (model - baseline; all metrics in report.json):",
                "",
                markdown_table(
                    [
                        "model",
                        "baseline",
                        "diff [95% CI]",
                        "p (paired bootstrap)",
                        "wins/losses",
                        "p (sign test)",
                    ],
                    crow,
                ),
            ]
        if self.notes:
            out += ["", *[f"- {note}" for note in self.notes]]
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "metrics": self.metrics,
            "table": {m: {k: float(v) for k, v in row.items()} for m, row in self.table.iterrows()},
            "intervals": self.intervals.to_dict(orient="records"),
            "comparisons": self.comparisons.to_dict(orient="records"),
            "notes": self.notes,
            "manifest": self.manifest,
        }

    def plot(self, path: str | Path) -> Path:
        """Bar chart: one panel per metric, one bar per model, 95% CI whiskers."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        models = list(self.table.index)
        fig, axes = plt.subplots(
            1, len(self.metrics), figsize=(2.2 + 2.0 * len(self.metrics), 3.2), squeeze=False
        )
        for ax, m in zip(axes[0], self.metrics, strict=True):
            iv = self.intervals[self.intervals.metric == m].set_index("model").loc[models]
            mean = iv["mean"].to_numpy(float)
            err = np.vstack([mean - iv.ci_low.to_numpy(float), iv.ci_high.to_numpy(float) - mean])
            ax.bar(range(len(models)), mean, yerr=np.nan_to_num(err), capsize=3, color="#4C72B0")
            ax.set_xticks(range(len(models)), models, rotation=45, ha="right", fontsize=8)
            ax.set_title(m, fontsize=9)
        fig.suptitle(f"{self.protocol} (95% bootstrap CI)", fontsize=10)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Report:
        """The report `save` wrote in ``directory`` (report.json + per_user.csv). Per-user
        indexes are read as strings (raw ids), so reports loaded alike align with each other."""
        directory = Path(directory)
        d = json.loads((directory / "report.json").read_text())
        table = pd.DataFrame.from_dict(d["table"], orient="index")[list(d["metrics"])]
        per_user: dict[str, pd.DataFrame] = {}
        pu = directory / "per_user.csv"
        if pu.exists():
            head = pd.read_csv(pu, nrows=0).columns
            df = pd.read_csv(pu, dtype={head[0]: str}, index_col=0)
            for name, part in df.groupby("model", sort=False):
                per_user[str(name)] = part.drop(columns="model")
        return cls(
            protocol=d["protocol"],
            metrics=list(d["metrics"]),
            table=table,
            intervals=pd.DataFrame(d["intervals"]),
            comparisons=pd.DataFrame(d["comparisons"]),
            per_user=per_user,
            manifest=d.get("manifest", {}),
            notes=list(d.get("notes", [])),
        )

    def save(self, directory: str | Path) -> Path:
        """report.md, report.json, manifest.json, per_user.csv and plot.png in ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "report.md").write_text(self.to_markdown())
        (directory / "report.json").write_text(json.dumps(self.to_dict(), indent=2, default=_json))
        (directory / "manifest.json").write_text(json.dumps(self.manifest, indent=2, default=_json))
        frames = [df.assign(model=name) for name, df in self.per_user.items()]
        if frames:
            pd.concat(frames).to_csv(directory / "per_user.csv")
        self.plot(directory / "plot.png")
        return directory


def _json(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
