"""What the reranker is fed besides the instruction text: item texts and attribute vectors, the
stacked prior retrievers and their scores, the priors-only warm start, and the list metrics
used for validation. (Split out of `rerank.reranker`, which re-exports every name.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def item_texts(dataset) -> list[str]:
    """One short text per item: title, year, genres / category / brand (what MiniLM embeds)."""
    items = dataset.items
    out = []
    cols = [c for c in ("genres", "category", "brand") if c in items.columns]
    years = items["year"] if "year" in items.columns else None
    for i, title in enumerate(items["title"].astype(str)):
        parts = [title]
        if years is not None and not pd.isna(years.iloc[i]) and f"({years.iloc[i]})" not in title:
            parts.append(f"({years.iloc[i]})")
        for c in cols:
            v = items[c].iloc[i]
            if isinstance(v, (tuple, list, np.ndarray)):
                v = ", ".join(map(str, v))
            if isinstance(v, str) and v:
                parts.append(f"- {v}")
        out.append(" ".join(parts))
    return out


def attribute_matrix(dataset, max_values: int = 64) -> np.ndarray:
    """(n_items, A) float32 multi-hot of item attributes: genres, decade, year-within-decade
    (early/late), category, brand, price band (each family capped at ``max_values``)."""
    from ..instructions.attributes import item_attributes

    a = item_attributes(dataset)
    n = dataset.n_items
    blocks = [a.genre_matrix.astype(np.float32)]
    for codes in (a.decade, a.category, a.brand, a.price_band.astype(np.int32)):
        codes = np.asarray(codes)
        vals = np.unique(codes[codes >= 0])[-max_values:]
        if len(vals):
            blocks.append((codes[:, None] == vals[None, :]).astype(np.float32))
    late = np.where(a.year > 0, (a.year % 10 >= 5).astype(np.float32), 0.0)[:, None]
    blocks.append(late.astype(np.float32))
    out = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.float32)
    return out[:, out.any(axis=0)]


def fit_prior_mixture(prior: np.ndarray, label: np.ndarray, steps: int = 50) -> np.ndarray:
    """Weights w (P,) minimising listwise CE of softmax(prior @ w): the best the priors alone
    can do, used to start the head (LBFGS on a P-dimensional convex problem: milliseconds)."""
    import torch

    x = torch.as_tensor(prior, dtype=torch.float32)
    y = torch.as_tensor(label, dtype=torch.long)
    w = torch.ones(x.shape[-1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w, y)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def stacked_frame(train: pd.DataFrame, holdout: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train minus each user's last ``holdout`` items, the held-out rows). Users keep >= 2."""
    inter = train.sort_values(["user", "timestamp", "order"], kind="stable")
    pos_from_end = inter.groupby("user").cumcount(ascending=False).to_numpy()
    size = inter.groupby("user")["item"].transform("size").to_numpy()
    held = (pos_from_end < holdout) & (size - holdout >= 2)
    return inter[~held].reset_index(drop=True), inter[held].reset_index(drop=True)


def score_priors(
    retrievers: Sequence,
    users: np.ndarray,
    cands: np.ndarray,
    histories: list[np.ndarray],
    chunk: int = 1024,
) -> np.ndarray:
    """Raw scores (N, K, P) of each retriever for each candidate (explicit histories)."""
    out = np.zeros((len(users), cands.shape[1], len(retrievers)), np.float32)
    for s in range(0, len(users), chunk):
        sl = slice(s, s + chunk)
        for p, r in enumerate(retrievers):
            out[sl, :, p] = r.score(users[sl], cands[sl], histories=list(histories[sl]))
    return out


def ranking_metrics(scores: np.ndarray, target_col: int = 0) -> dict[str, float]:
    """HR@1/3/5 and NDCG@3/5 of the target column (ties count against the target)."""
    tgt = scores[:, [target_col]]
    rank = (scores > tgt).sum(1) + (np.delete(scores, target_col, axis=1) == tgt).sum(1)
    out: dict[str, Any] = {}
    for k in (1, 3, 5):
        out[f"hr@{k}"] = float((rank < k).mean())
    for k in (3, 5):
        out[f"ndcg@{k}"] = float(np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0).mean())
    return out
