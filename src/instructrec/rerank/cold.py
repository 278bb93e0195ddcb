"""Cold items in the reranker's prior features: an explicit indicator, neutral collaborative
inputs, and DropoutNet-style training (Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold
Start in Recommender Systems", NeurIPS 2017).

An item with no training interactions has no collaborative signal: zero popularity, an
untrained CF vector, retriever scores that say nothing. Left as they are, these inputs tell a
reranker "never the answer" (the training targets are never cold, some random negatives
are), so a cold item loses whatever its text says. With ``reranker.cold_dropout = p > 0``:

- every candidate gets a 0/1 *cold* channel (the last prior channel): 1 when the item had no
  interactions in the data its collaborative inputs were fitted on;
- for cold candidates the collaborative inputs are neutral: the retriever channels are 0 (the
  list mean; the other candidates are z-scored among themselves, `cold_priors`) and the CF
  vector term is dropped (`models.encoder.EncoderReranker.item_vectors`); a content-based
  retriever's channel (``titleknn``: item texts, no interactions) is kept as it is for every
  candidate (`list_priors`' ``content``);
- training instances treat a random share of candidates as cold as well (`cold_dropout_mask`):
  targets and negatives end up cold at the same rate ``max(p, natural rate)``, so coldness says
  nothing about which candidate is the answer and the model learns to rank a cold candidate
  by its text, attributes and the instruction.

``p = 0`` leaves everything as before (no channel, no draws).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def zero_interaction_items(frame: pd.DataFrame, n_items: int) -> np.ndarray:
    """(n_items,) bool: True for items with no row in ``frame`` (an interactions frame)."""
    items = frame["item"].to_numpy(np.int64)
    return np.bincount(items, minlength=n_items)[:n_items] == 0


def cold_priors(raw: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """(n, k, P) float32: each retriever channel of ``raw`` (n, k, P) z-scored within its list
    over the warm candidates only; cold candidates (``cold`` (n, k) bool) get 0 (neutral)."""
    x = np.nan_to_num(np.asarray(raw, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    warm = (~np.asarray(cold, bool))[..., None].astype(np.float32)  # (n, k, 1)
    cnt = np.maximum(warm.sum(axis=-2, keepdims=True), 1.0)
    mu = (x * warm).sum(axis=-2, keepdims=True) / cnt
    sd = np.sqrt((((x - mu) * warm) ** 2).sum(axis=-2, keepdims=True) / cnt)
    return ((x - mu) / np.maximum(sd, 1e-6) * warm).astype(np.float32)


def list_priors(
    raw: np.ndarray, cold: np.ndarray | None = None, content: Sequence[bool] | None = None
) -> np.ndarray:
    """The retriever channels of ``raw`` (n, k, P) z-scored within each list: over every
    candidate (``cold`` None: no cold channel), else over the warm ones (`cold_priors`).
    ``content`` (P,) bool: channels of content-based retrievers (``titleknn``), whose scores
    need no interaction: those stay z-scored over every candidate, cold ones included, so a
    cold candidate keeps what its text says."""
    from ..models.encoder_config import zscore

    if cold is None:
        return zscore(raw)
    out = cold_priors(raw, cold)
    keep = np.asarray(content if content is not None else [], bool)
    if keep.any():
        raw = np.asarray(raw, np.float32)
        out[..., keep] = zscore(raw[..., keep])
    return out


def content_channels(priors: Sequence) -> list[bool]:
    """Per prior (retriever objects or registry names): whether its scores come from item
    content alone (`Retriever.content_based`), so coldness does not neutralise them."""
    from ..retrieval.registry import RETRIEVERS, retriever_class

    out = []
    for p in priors:
        if isinstance(p, str):
            p = retriever_class(p) if p in RETRIEVERS else None
        out.append(bool(getattr(p, "content_based", False)))
    return out


def cold_dropout_mask(
    natural: np.ndarray, label: np.ndarray, p: float, rng: np.random.Generator
) -> np.ndarray:
    """(n, k) bool: candidates treated as cold in training. ``natural`` (n, k) bool: already
    cold (no interactions); ``label`` (n,): the target's column. Targets and negatives are each
    topped up from their natural cold rate c to ``max(p, c)`` (a warm one is dropped with
    probability (p - c) / (1 - c)), so both end up cold at the same rate when p >= c."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"cold_dropout must be in [0, 1], got {p}")
    natural = np.asarray(natural, bool)
    n, k = natural.shape
    is_target = np.zeros((n, k), bool)
    is_target[np.arange(n), np.asarray(label, np.int64)] = True
    u = rng.random((n, k))
    out = natural.copy()
    for group in (is_target, ~is_target):
        c = float(natural[group].mean()) if group.any() else 0.0
        q = 0.0 if c >= 1.0 else max(0.0, (p - c) / (1.0 - c))
        out |= group & ~natural & (u < q)
    return out


def with_cold_channel(prior: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """``prior`` (n, k, P) with the 0/1 cold channel appended as its last channel."""
    return np.concatenate(
        [np.asarray(prior, np.float32), np.asarray(cold, np.float32)[..., None]], -1
    )
