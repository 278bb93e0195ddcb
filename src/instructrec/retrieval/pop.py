"""Most-popular baseline: every user gets the items ranked by their training count.

The classical non-personalised floor (RecBole's ``Pop``). Histories are accepted and ignored:
popularity does not depend on who asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd

from .base import Retriever


@dataclass
class PopConfig:
    """Pop has nothing to tune; the config exists so every retriever loads the same way."""

    seed: int = 0  # unused (Pop is deterministic); kept for a uniform interface


class Pop(Retriever):
    """Score of an item = how many training interactions it has."""

    name = "pop"
    array_attrs = ("counts",)

    def __init__(self, config: PopConfig | None = None, **kwargs) -> None:
        self.config = config or PopConfig(**kwargs)
        self.counts: np.ndarray | None = None

    def fit(self, train: pd.DataFrame, n_users: int, n_items: int, **_: object) -> Self:
        self.n_items = int(n_items)
        self.counts = np.bincount(train["item"].to_numpy(np.int64), minlength=n_items).astype(
            np.float32
        )
        self._remember_train(train, n_users)
        return self

    def score_all(self, users: np.ndarray, histories: list[np.ndarray] | None = None) -> np.ndarray:
        if self.counts is None:
            raise RuntimeError("Pop is not fitted: call fit(train, n_users, n_items) first")
        return np.broadcast_to(self.counts, (len(np.atleast_1d(users)), self.n_items)).copy()
