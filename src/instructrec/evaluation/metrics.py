"""Ranking metrics, vectorised over users (numpy), one value per user.

Everything goes through the 0-based **rank** of the target among what is ranked:

    rank = #{other items with score > target} + #{other items with score == target}

**Ties are pessimistic**: an item whose score equals the target's is counted as ranked ABOVE
the target. A model that gives every candidate the same score therefore gets the worst
rank, never a lucky one (and a model cannot gain by emitting constant scores). NaN scores
count as the lowest possible score.

With one held-out target per user (leave-one-out) Recall@k equals HR@k; both are exposed so
tables can use the names of the papers they follow.

Inputs:
- candidate protocols: ``scores`` (n, k) with the target in column 0 (`ranks_from_scores`);
- full ranking: a ranked list per user and the target (`ranks_from_lists`; a target absent
  from the list gets rank ``inf``), or all-item scores with exclusions (`ranks_full`).
"""

from __future__ import annotations

import numpy as np


def _clean(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(s), -np.inf, s)


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 among the k columns of each row (ties count above): (n,) int."""
    s = _clean(scores)
    if s.ndim != 2 or s.shape[1] < 1:
        raise ValueError(f"scores must be (n, k) with the target in column 0, got {s.shape}")
    target = s[:, :1]
    return (s[:, 1:] >= target).sum(axis=1).astype(np.int64)


def ranks_from_lists(ranked: np.ndarray, target: np.ndarray) -> np.ndarray:
    """0-based position of ``target[i]`` in ``ranked[i]`` (best first); ``inf`` when absent.

    Returns float64 so the absent case can be ``inf`` (every @k metric is then 0, MRR is 0).
    """
    ranked = np.asarray(ranked)
    target = np.asarray(target).reshape(-1, 1)
    hit = ranked == target
    pos = np.argmax(hit, axis=1).astype(np.float64)
    pos[~hit.any(axis=1)] = np.inf
    return pos


def ranks_full(
    scores: np.ndarray, target: np.ndarray, exclude: list[np.ndarray] | None = None
) -> np.ndarray:
    """0-based rank of ``target[i]`` among all items of row i of ``scores`` (n, n_items),
    leaving out the items in ``exclude[i]`` (the target itself is never excluded). Ties count
    above. Returns (n,) int64."""
    s = _clean(scores).copy()
    rows = np.arange(len(s))
    target = np.asarray(target, np.int64)
    t = s[rows, target].copy()
    if exclude is not None:
        lens = np.array([len(e) for e in exclude], np.int64)
        if lens.sum():
            r = np.repeat(rows, lens)
            c = np.concatenate([np.asarray(e, np.int64) for e in exclude])
            s[r, c] = np.nan  # NaN compares False: excluded items never count
    s[rows, target] = np.nan  # the target is not "another item"
    return ((s >= t[:, None]).sum(axis=1)).astype(np.int64)


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
    """HR@k: 1 if the target is in the top k (rank < k), else 0."""
    return (np.asarray(ranks) < k).astype(np.float64)


def recall(ranks: np.ndarray, k: int) -> np.ndarray:
    """Recall@k with one relevant item per user: the same as HR@k."""
    return hit_rate(ranks, k)


def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k with one relevant item: 1 / log2(rank + 2) if rank < k, else 0 (ideal DCG = 1)."""
    r = np.asarray(ranks, np.float64)
    out = np.zeros_like(r)
    m = r < k
    out[m] = 1.0 / np.log2(r[m] + 2.0)
    return out


def mrr(ranks: np.ndarray) -> np.ndarray:
    """Reciprocal rank 1 / (rank + 1); 0 for a target that was not ranked (rank = inf)."""
    r = np.asarray(ranks, np.float64)
    return np.where(np.isfinite(r), 1.0 / (r + 1.0), 0.0)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC: probability that a random positive outscores a random negative.

    Here ties count **one half** (the Mann-Whitney convention, as scikit-learn's
    ``roc_auc_score``), so a constant scorer gets exactly 0.5, the no-skill value. Returns
    NaN when only one class is present.
    """
    y = np.asarray(labels).astype(bool)
    s = _clean(scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # average ranks (1-based) handle ties as one half
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), np.float64)
    uniq_start = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    uniq_end = np.r_[uniq_start[1:], len(s)]
    avg = (uniq_start + uniq_end + 1) / 2.0  # mean of 1-based positions start+1..end
    ranks[order] = np.repeat(avg, uniq_end - uniq_start)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def parse_metric(name: str) -> tuple[str, int | None]:
    """'NDCG@5' -> ('ndcg', 5); 'MRR' -> ('mrr', None)."""
    base, _, k = name.partition("@")
    return base.lower(), (int(k) if k else None)


def compute(ranks: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Per-user values of the named rank metrics (HR@k, NDCG@k, Recall@k, MRR)."""
    out = {}
    for name in names:
        base, k = parse_metric(name)
        if base == "hr":
            out[name] = hit_rate(ranks, k)
        elif base == "ndcg":
            out[name] = ndcg(ranks, k)
        elif base == "recall":
            out[name] = recall(ranks, k)
        elif base == "mrr":
            out[name] = mrr(ranks)
        else:
            raise ValueError(f"unknown rank metric {name!r} (HR@k, NDCG@k, Recall@k, MRR)")
    return out
