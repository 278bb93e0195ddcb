"""The statistics of a protocol's table (EVALUATION.md, "Reporting"): per model and metric
the mean over users with a 95% bootstrap confidence interval, and against each rival a paired
test over the same users (paired bootstrap and sign test; for AUC a paired bootstrap over
users, all instances of a user moving together). `rival_pairs` says which pairs are tested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats as S
from . import metrics as M


def rival_pairs(names: list[str], baselines: list[str]) -> list[tuple[str, str]]:
    """(model, baseline) pairs to test: every non-baseline against every baseline; among
    baselines, each against the baselines listed before it (one direction only)."""
    present = [b for b in baselines if b in names]
    out = []
    for name in names:
        if name in present:
            out += [(name, b) for b in present[: present.index(name)]]
        else:
            out += [(name, b) for b in present]
    return out


def rank_statistics(values, metrics, baselines, idx, user_ids):
    """Per (model, metric): mean and 95% bootstrap CI over users (``idx``: the resampled
    user indices); per (model, baseline, metric) of `rival_pairs`: paired bootstrap and
    sign test; per model, its per-user values as a frame indexed by ``user_ids``."""
    rows, cmps = [], []
    for name, vals in values.items():
        for m in metrics:
            lo, hi = S.bootstrap_ci(vals[m], idx)
            rows.append(
                {
                    "model": name,
                    "metric": m,
                    "mean": float(np.mean(vals[m])),
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": len(vals[m]),
                }
            )
    for name, b in rival_pairs(list(values), baselines):
        vals = values[name]
        for m in metrics:
            pb = S.paired_bootstrap(vals[m], values[b][m], idx)
            st = S.sign_test(vals[m], values[b][m])
            cmps.append(
                {
                    "model": name,
                    "baseline": b,
                    "metric": m,
                    "diff": pb["diff"],
                    "diff_low": pb["diff_ci"][0],
                    "diff_high": pb["diff_ci"][1],
                    "p_bootstrap": pb["p_bootstrap"],
                    "wins": st["wins"],
                    "losses": st["losses"],
                    "p_sign": st["p_sign"],
                }
            )
    per_user = {
        name: pd.DataFrame(vals, index=pd.Index(user_ids, name="user"))
        for name, vals in values.items()
    }
    return rows, cmps, per_user


def auc_statistics(frames, baselines, idx):
    """AUC with CIs / paired bootstrap over resampled users (all instances of a user move
    together)."""
    rows, cmps, boot = [], [], {}
    if not frames:
        return rows, cmps
    owner = next(iter(frames.values()))["owner"].to_numpy()
    n_owner = int(owner.max()) + 1
    counts = np.bincount(owner, minlength=n_owner)
    if (counts != counts[0]).any():
        raise ValueError("every user must contribute the same number of pointwise instances")
    groups = np.argsort(owner, kind="stable").reshape(n_owner, counts[0])
    inst = groups[idx].reshape(len(idx), -1)  # (n_boot, instances)
    for name, df in frames.items():
        y, s = df["label"].to_numpy(), df["score"].to_numpy()
        boot[name] = np.array([M.auc(y[r], s[r]) for r in inst])
        lo, hi = S.percentile_ci(boot[name])
        rows.append(
            {
                "model": name,
                "metric": "AUC",
                "mean": M.auc(y, s),
                "ci_low": lo,
                "ci_high": hi,
                "n": n_owner,
            }
        )
    obs = {r["model"]: r["mean"] for r in rows}
    for name, b in rival_pairs(list(frames), baselines):
        d = boot[name] - boot[b]
        lo, hi = S.percentile_ci(d)
        diff = obs[name] - obs[b]
        cmps.append(
            {
                "model": name,
                "baseline": b,
                "metric": "AUC",
                "diff": diff,
                "diff_low": lo,
                "diff_high": hi,
                "p_bootstrap": S.paired_bootstrap_p(d, diff),
                "wins": None,
                "losses": None,
                "p_sign": float("nan"),
            }
        )
    return rows, cmps
