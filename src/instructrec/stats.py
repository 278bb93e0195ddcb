"""Uncertainty for reported means: percentile bootstrap CIs and paired tests.

One resampling plan (``n_boot`` x ``n`` user indices from a seeded generator) is shared by
every model of a run, so the CI of each model and the paired bootstrap of two models use the
same resamples (Efron & Tibshirani 1993; Koehn 2004 for the paired form). The sign test
(exact binomial on users where the two models differ) is reported next to it: it needs no
resampling and is robust to a few users with large differences. Numbers only (NumPy, SciPy):
it sits on the ground floor so that training (tuned-model metrics) and evaluation both use it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

N_BOOT = 1000  # bootstrap resamples
ALPHA = 0.05  # 95% intervals


def resample_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n) indices drawn with replacement; deterministic for a seed."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(values: np.ndarray, idx: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` (n,) over the resamples ``idx``."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_stat(stat: Callable[[np.ndarray], float], n: int, idx: np.ndarray) -> np.ndarray:
    """Apply ``stat(indices)`` to every resample (for statistics that are not means: AUC)."""
    return np.array([stat(row) for row in idx], np.float64)


def percentile_ci(samples: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def paired_bootstrap_p(diff_samples: np.ndarray, observed: float) -> float:
    """Two-sided p-value that the mean difference is 0, from resampled differences.

    p = 2 * min(P(d* <= 0), P(d* >= 0)), clipped to [1/n_boot, 1] (a bootstrap cannot claim
    more than its resolution). Zero observed difference gives 1.
    """
    d = np.asarray(diff_samples, np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0 or observed == 0:
        return 1.0
    p = 2.0 * min((d <= 0).mean(), (d >= 0).mean())
    return float(min(1.0, max(p, 1.0 / len(d))))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> dict:
    """Mean difference a - b over the same users, its 95% CI and two-sided p-value."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    samples = diff[idx].mean(axis=1)
    lo, hi = percentile_ci(samples)
    obs = float(diff.mean()) if len(diff) else float("nan")
    return {"diff": obs, "diff_ci": [lo, hi], "p_bootstrap": paired_bootstrap_p(samples, obs)}


def sign_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Exact two-sided sign test on per-user differences (ties dropped)."""
    from scipy.stats import binomtest

    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    p = 1.0 if wins + losses == 0 else float(binomtest(wins, wins + losses, 0.5).pvalue)
    return {"wins": wins, "losses": losses, "ties": int(len(diff) - wins - losses), "p_sign": p}
