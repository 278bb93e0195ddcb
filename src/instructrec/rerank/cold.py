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
  list mean; the other candidates are z-scored among themselves, `cold_priors`), or, with
  ``reranker.cold_fill: catalogue``, the score an average item gets: the row's mean raw score
  over the warm catalogue (`fill_cold`), z-scored like the warm candidates. The list mean
  depends on the list: in ten candidates drawn at random it is an average item's score, in a
  few hundred retrieved and intention-matched ones (`search-full`) it is well above it, and
  a cold item then outranks most of them (measured: 2.1 of every top 10 on ML-100K
  `search-full`, shipped reranker 0.04; docs/reranker.md). The CF vector term is dropped
  (`models.encoder.EncoderReranker.item_vectors`); a content-based retriever's channel (``titleknn``: item texts, no interactions) is kept as it is for every
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

COLD_FILLS = ("list", "catalogue")  # ``reranker.cold_fill``
FILL_CLIP = 5.0  # |z| bound of a filled cold value (`cold_priors`' ``keep_cold``)


def zero_interaction_items(frame: pd.DataFrame, n_items: int) -> np.ndarray:
    """(n_items,) bool: True for items with no row in ``frame`` (an interactions frame)."""
    items = frame["item"].to_numpy(np.int64)
    return np.bincount(items, minlength=n_items)[:n_items] == 0


def cold_priors(raw: np.ndarray, cold: np.ndarray, keep_cold: bool = False) -> np.ndarray:
    """(n, k, P) float32: each retriever channel of ``raw`` (n, k, P) z-scored within its list
    with the warm candidates' mean and spread; cold candidates (``cold`` (n, k) bool) get 0
    (neutral: the warm mean), or (``keep_cold``) their own raw value z-scored the same way
    (values set by `fill_cold`)."""
    x = np.nan_to_num(np.asarray(raw, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    warm = (~np.asarray(cold, bool))[..., None].astype(np.float32)  # (n, k, 1)
    cnt = np.maximum(warm.sum(axis=-2, keepdims=True), 1.0)
    mu = (x * warm).sum(axis=-2, keepdims=True) / cnt
    sd = np.sqrt((((x - mu) * warm) ** 2).sum(axis=-2, keepdims=True) / cnt)
    z = (x - mu) / np.maximum(sd, 1e-6)
    if keep_cold:  # a filled value far outside a narrow list stays a bounded signal
        return np.where(warm > 0, z, np.clip(z, -FILL_CLIP, FILL_CLIP)).astype(np.float32)
    return (z * warm).astype(np.float32)


def catalogue_means(
    retrievers: Sequence,
    users: np.ndarray,
    histories: Sequence[np.ndarray] | None,
    warm: np.ndarray,
    chunk: int = 256,
) -> np.ndarray:
    """(n, P) float32: per row and retriever, the mean raw score over the warm catalogue
    (``warm`` (n_items,) bool), i.e. what an item with no interactions is worth on average;
    0 for content-based retrievers (their cold scores are real, `content_channels`)."""
    users = np.asarray(users, np.int64)
    warm = np.asarray(warm, bool)
    out = np.zeros((len(users), len(retrievers)), np.float32)
    if not warm.any():
        return out
    content = content_channels(retrievers)
    for p, r in enumerate(retrievers):
        if content[p]:
            continue
        for s in range(0, len(users), chunk):
            sl = slice(s, s + chunk)
            hs = None if histories is None else list(histories[sl])
            out[sl, p] = _warm_mean(r.score_all(users[sl], hs), warm)
    return out


def _warm_mean(full: np.ndarray, warm: np.ndarray) -> np.ndarray:
    """(n,) mean over the ``warm`` (n_items,) columns of ``full`` (n, n_items) scores."""
    sc = np.asarray(full, np.float64)[:, : len(warm)][:, warm[: np.shape(full)[1]]]
    return np.nan_to_num(sc, nan=0.0, posinf=0.0, neginf=0.0).mean(axis=1)


def fill_cold(
    raw: np.ndarray,
    cold: np.ndarray,
    retrievers: Sequence,
    users: np.ndarray,
    histories: Sequence[np.ndarray] | None,
    warm: np.ndarray,
) -> np.ndarray:
    """``raw`` (n, k, P) with each cold candidate's (``cold`` (n, k) bool) collaborative
    channels set to the row's `catalogue_means` (content-based channels kept as scored);
    z-score the result with ``list_priors(..., filled=True)``."""
    out = np.array(raw, np.float32, copy=True)
    cold = np.asarray(cold, bool)
    if not cold.any() or out.shape[-1] == 0:
        return out
    rows = np.flatnonzero(cold.any(axis=1))  # only rows with a cold candidate pay for it
    means = catalogue_means(
        retrievers,
        np.asarray(users)[rows],
        None if histories is None else [histories[i] for i in rows],
        warm,
    )
    keep = np.asarray(content_channels(retrievers), bool)
    for p in range(min(out.shape[-1], len(retrievers))):
        if keep[p]:
            continue
        sub = out[rows, :, p]
        out[rows, :, p] = np.where(cold[rows], means[:, p : p + 1], sub)
    return out


def scores_with_fill(
    retrievers: Sequence,
    users: np.ndarray,
    cands: np.ndarray,
    histories: Sequence[np.ndarray] | None,
    cold_items: np.ndarray,
    chunk: int = 256,
) -> np.ndarray:
    """(n, k, P) raw scores of ``cands`` (n, k), as ``fill_cold(score_priors(...))`` gives
    them (cold candidates' collaborative scores at the row's warm-catalogue mean), with one
    ``score_all`` per collaborative retriever for the rows holding a cold candidate, the
    candidates' scores gathered from it, instead of scoring those rows twice (serving)."""
    users = np.asarray(users, np.int64)
    cands = np.asarray(cands, np.int64)
    cold_items = np.asarray(cold_items, bool)
    n, k = cands.shape
    cold = cold_items[cands]
    rows = np.flatnonzero(cold.any(axis=1))
    plain = np.flatnonzero(~cold.any(axis=1))
    content = content_channels(retrievers)
    warm = ~cold_items

    def hist(idx):
        return None if histories is None else [histories[i] for i in idx]

    out = np.zeros((n, k, len(retrievers)), np.float32)
    for p, r in enumerate(retrievers):
        if content[p] or not len(rows):
            out[..., p] = r.score(users, cands, histories=histories)
            continue
        if len(plain):
            out[plain, :, p] = r.score(users[plain], cands[plain], histories=hist(plain))
        for s in range(0, len(rows), chunk):
            idx = rows[s : s + chunk]
            full = np.asarray(r.score_all(users[idx], hist(idx)), np.float32)
            got = np.take_along_axis(full, cands[idx], axis=1)
            mean = _warm_mean(full, warm).astype(np.float32)
            out[idx, :, p] = np.where(cold[idx], mean[:, None], got)
    return out


def list_priors(
    raw: np.ndarray,
    cold: np.ndarray | None = None,
    content: Sequence[bool] | None = None,
    filled: bool = False,
) -> np.ndarray:
    """The retriever channels of ``raw`` (n, k, P) z-scored within each list: over every
    candidate (``cold`` None: no cold channel), else over the warm ones (`cold_priors`).
    ``content`` (P,) bool: channels of content-based retrievers (``titleknn``), whose scores
    need no interaction: those stay z-scored over every candidate, cold ones included, so a
    cold candidate keeps what its text says. ``filled``: cold candidates' raw values were
    set by `fill_cold` and are z-scored with the warm candidates' mean and spread (else 0)."""
    from ..models.encoder_config import zscore

    if cold is None:
        return zscore(raw)
    out = cold_priors(raw, cold, keep_cold=filled)
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
