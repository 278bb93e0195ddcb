"""The `Retriever` contract: the classical first stage (and every baseline).

Modelled on implicit's ``RecommenderBase``: a tiny surface that one shared test suite
(`instructrec.testing.RetrieverContract`) checks for every implementation.

Users are internal ids of the `Dataset` the retriever was fitted on. Every method that ranks
also takes ``histories`` (one array of internal item ids per user, oldest first) so that a
sequential model sees the history the protocol prescribes, and so that users unknown to
training can be served from an explicit history.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd


class Retriever(ABC):
    """fit on training interactions; score given candidates; retrieve top-k."""

    name: str = "retriever"
    n_items: int = 0

    @abstractmethod
    def fit(self, train: pd.DataFrame, n_users: int, n_items: int) -> Self:
        """Learn from ``train`` (rows of ``Dataset.interactions``: user, item, rating, timestamp, order)."""

    @abstractmethod
    def score_all(self, users: np.ndarray, histories: list[np.ndarray] | None = None) -> np.ndarray:
        """Scores (len(users), n_items), float32; higher is better. ``histories`` overrides
        the training history of each user (required for users unseen in training)."""

    def score(
        self, users: np.ndarray, items: np.ndarray, histories: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """Scores for given candidates: ``items`` is (len(users), k); returns (len(users), k)."""
        users = np.asarray(users)
        items = np.asarray(items)
        full = self.score_all(users, histories)
        return np.take_along_axis(full, items.astype(np.int64), axis=1)

    def candidates(
        self,
        users: np.ndarray,
        k: int,
        exclude_seen: bool = True,
        histories: list[np.ndarray] | None = None,
        seen: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items and their scores, (len(users), k) each, best first.

        ``exclude_seen`` removes items in ``seen`` (default: ``histories`` if given, else the
        user's training items).
        """
        users = np.asarray(users)
        scores = self.score_all(users, histories).astype(np.float32, copy=True)
        if exclude_seen:
            if seen is None:
                seen = histories if histories is not None else self.train_items(users)
            for row, items in enumerate(seen):
                scores[row, np.asarray(items, dtype=np.int64)] = -np.inf
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return (
            np.take_along_axis(top, order, axis=1).astype(np.int32),
            np.take_along_axis(top_scores, order, axis=1),
        )

    def item_embeddings(self) -> np.ndarray | None:
        """(n_items, d) item vectors if the model has them (used as a prior by rerankers)."""
        return None

    # subclasses set this in fit: per user, the training items (for exclude_seen)
    _train_items: list[np.ndarray] | None = None

    def train_items(self, users: np.ndarray) -> list[np.ndarray]:
        empty = np.empty(0, np.int32)
        if self._train_items is None:
            return [empty for _ in users]
        return [self._train_items[u] if 0 <= u < len(self._train_items) else empty for u in users]

    def _remember_train(self, train: pd.DataFrame, n_users: int) -> None:
        inter = train.sort_values(["user", "timestamp", "order"], kind="stable")
        u = inter["user"].to_numpy()
        it = inter["item"].to_numpy(np.int32)
        bounds = np.flatnonzero(np.diff(u)) + 1
        starts = np.r_[0, bounds] if len(u) else np.empty(0, int)
        seqs: list[np.ndarray] = [np.empty(0, np.int32) for _ in range(n_users)]
        for s, chunk in zip(starts, np.split(it, bounds) if len(u) else [], strict=True):
            seqs[int(u[s])] = chunk
        self._train_items = seqs

    def save(self, path: str | Path) -> None:
        """Pickle by default; torch models override with a state dict."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh)

    @classmethod
    def load(cls, path: str | Path) -> Retriever:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, Retriever):
            raise TypeError(f"{path} does not hold a Retriever")
        return obj
