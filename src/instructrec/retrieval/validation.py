"""Early-stopping support shared by the trained retrievers (SASRec, BPR): which rows to
validate on, and NDCG@10 over the full catalogue with history items excluded."""

from __future__ import annotations

import numpy as np
import pandas as pd


def validation_rows(seqs: list[np.ndarray], valid: pd.DataFrame | None):
    """(users, histories, targets, training sequences) for early stopping.

    With ``valid`` (the split's validation rows): its users and items, histories = the full
    training sequences. Without: each training sequence of >= 3 items lends its last item as
    the target, and that item is removed from the sequences returned for fitting.
    """
    if valid is not None and len(valid):
        users = valid["user"].to_numpy(np.int64)
        empty = np.empty(0, np.int32)
        hist = [seqs[u] if u < len(seqs) else empty for u in users]
        return users, hist, valid["item"].to_numpy(np.int64), seqs
    has = np.array([u for u, s in enumerate(seqs) if len(s) >= 3], np.int64)
    fit_seqs = [s[:-1] if len(s) >= 3 else s for s in seqs]
    targets = np.array([seqs[u][-1] for u in has], np.int64)
    return has, [fit_seqs[u] for u in has], targets, fit_seqs


def ndcg_at_10(retriever, users: np.ndarray, hist: list[np.ndarray], target: np.ndarray) -> float:
    """Mean NDCG@10 of ``target`` ranked among all items not in ``hist`` (ties count above)."""
    if len(users) == 0:
        return 0.0
    scores = retriever.score_all(users, hist).astype(np.float64)
    rows = np.arange(len(users))
    t = scores[rows, target].copy()
    for row, h in enumerate(hist):
        scores[row, np.asarray(h, np.int64)] = -np.inf
    scores[rows, target] = -np.inf
    rank = (scores >= t[:, None]).sum(1)
    return float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean())
