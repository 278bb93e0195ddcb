"""Content-based k-nearest-neighbours over item texts: the text-only rival.

Each item's text (title, year, genres / category / brand: `rerank.item_texts`) is embedded once
by the frozen shipped encoder (MiniLM, mean pooling, unit length). A user's score for item
``j`` is its cosine with the user's last ``history`` items: the best single match
(``pooling: max``) or the mean (``pooling: mean``). No interaction is needed to score an item,
so items without training interactions (the `cold` protocol's targets) are ranked by their
text like any other, which no collaborative model can do.

It needs the item texts and a text encoder at fit time. The encoder lives a floor up (the
retrieval room imports no model code), so the caller hands it in::

    from instructrec.models.text_encoder import item_text_vectors
    TitleKNN().fit(train, n_users, n_items, item_texts=texts, text_encoder=item_text_vectors)

or sets ``item_texts`` and ``text_encoder`` before `fit` (what the evaluation and
`Recommender.from_config` do, with the dataset's texts). ``text_encoder(texts, backbone,
max_len)`` returns unit-length vectors (n, d). Saved as data: the item vectors (safetensors),
no encoder needed to score or to refit on the same texts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from ..data.errors import DataError
from .base import Retriever

POOLINGS = ("max", "mean")

# (texts, backbone or None, max_len) -> unit-length vectors (n, d):
# `instructrec.models.text_encoder.item_text_vectors`
TextEncoder = Callable[[list[str], str | None, int], np.ndarray]


def _vectors_key(texts: list[str], backbone: str | None, max_len: int) -> str:
    """What the item vectors were encoded from (a refit on the same key reuses them)."""
    h = hashlib.sha256(f"{backbone or ''}\0{max_len}\0".encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass
class TitleKNNConfig:
    """Text-kNN settings (max over the last 10: Amazon Games validation, `cold` and cand10 rows,
    frozen MiniLM: 0.452 / 0.438 HR@1 vs mean 0.441 / 0.424; benchmarks/bench_cold_text.py)."""

    history: int = 10  # the user's last N items are compared with each candidate
    pooling: str = "max"  # "max": best single match; "mean": mean cosine over the N
    backbone: str | None = None  # encoder directory or hub id; None: the shipped MiniLM
    max_len: int = 64  # tokens per item text
    batch: int = 256  # users per scoring block (memory: batch x history x n_items floats)
    seed: int = 0  # unused (deterministic); kept for a uniform interface

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise DataError(f"titleknn.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.history < 1:
            raise DataError(f"titleknn.history must be at least 1, got {self.history}")


class TitleKNN(Retriever):
    """Cosine similarity of frozen item-text vectors to the user's recent items."""

    name = "titleknn"
    needs_item_texts: ClassVar[bool] = True  # the evaluation sets `item_texts` before `fit`
    content_based: ClassVar[bool] = True  # a cold item is scored like any other
    array_attrs: ClassVar[tuple[str, ...]] = ("vectors",)

    def __init__(self, config: TitleKNNConfig | None = None, **kwargs) -> None:
        self.config = config or TitleKNNConfig(**kwargs)
        self.vectors: np.ndarray | None = None  # (n_items, d) unit-length text vectors
        self.item_texts: list[str] | None = None
        self.text_encoder: TextEncoder | None = None
        self._vectors_of: str | None = None  # texts + backbone the vectors were encoded from

    def fit(
        self,
        train: pd.DataFrame,
        n_users: int,
        n_items: int,
        *,
        item_texts: list[str] | None = None,
        text_encoder: TextEncoder | None = None,
        **_: object,
    ) -> Self:
        texts = item_texts if item_texts is not None else self.item_texts
        encoder = text_encoder if text_encoder is not None else self.text_encoder
        if texts is None:
            raise DataError("titleknn needs the item texts: fit(..., item_texts=[...])")
        if len(texts) != n_items:
            raise DataError(f"titleknn: {len(texts)} item texts for {n_items} items")
        texts = [str(t) for t in texts]
        key = _vectors_key(texts, self.config.backbone, self.config.max_len)
        if self.vectors is None or self._vectors_of != key:  # a refit (stacked twin) reuses them
            if encoder is None:
                raise DataError(
                    "titleknn needs a text encoder to embed the item texts: fit(..., "
                    "text_encoder=instructrec.models.text_encoder.item_text_vectors)"
                )
            vectors = np.asarray(encoder(texts, self.config.backbone, self.config.max_len))
            if vectors.ndim != 2 or len(vectors) != n_items:
                raise DataError(
                    f"titleknn: the text encoder returned shape {vectors.shape} for {n_items} texts"
                )
            self.vectors = vectors.astype(np.float32)
            self._vectors_of = key
        self.n_items = int(n_items)
        self._remember_train(train, n_users)
        return self

    def score_all(self, users: np.ndarray, histories: list[np.ndarray] | None = None) -> np.ndarray:
        if self.vectors is None:
            raise RuntimeError(
                "TitleKNN is not fitted: call fit(..., item_texts=..., text_encoder=...) first"
            )
        users = np.atleast_1d(np.asarray(users))
        hist = self.histories_for(users, histories)
        n, last = self.config.history, self.config.pooling
        vec = self.vectors
        out = np.zeros((len(hist), self.n_items), np.float32)
        for s in range(0, len(hist), self.config.batch):
            chunk = [np.asarray(h, np.int64)[-n:] for h in hist[s : s + self.config.batch]]
            lens = np.array([len(h) for h in chunk])
            idx = np.zeros((len(chunk), n), np.int64)
            mask = np.arange(n)[None, :] < lens[:, None]
            for r, h in enumerate(chunk):
                idx[r, : len(h)] = h
            sims = np.einsum("bnd,id->bni", vec[idx], vec, optimize=True)  # (b, n, items)
            if last == "max":
                sims[~mask] = -np.inf
                block = sims.max(1)
            else:
                sims[~mask] = 0.0
                block = sims.sum(1) / np.maximum(lens, 1)[:, None]
            block[lens == 0] = 0.0  # no history: every item scores 0
            out[s : s + len(chunk)] = block
        return out
