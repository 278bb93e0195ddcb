"""The `Retriever` contract: the classical first stage (and every baseline).

Modelled on implicit's ``RecommenderBase``: a tiny surface that one shared test suite
(`instructrec.testing.RetrieverContract`) checks for every implementation.

Users are internal ids of the `Dataset` the retriever was fitted on. Every method that ranks
also takes ``histories`` (one array of internal item ids per user, oldest first) so that a
sequential model sees the history the protocol prescribes, and so that users unknown to
training can be served from an explicit history.

A fitted retriever saves as data (`Retriever.save` / `Retriever.load`): ``retriever.json``
(its registry name, config and JSON values) and ``arrays.safetensors`` (its numeric state).
A new retriever lists its array attributes in ``array_attrs`` and its JSON ones in
``json_attrs``; nothing else is needed unless its state is not plain arrays (a torch module:
extend `state` / `set_state`, see SASRec).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from ..data.errors import DataError
from ..data.runfiles import (
    FORMAT,
    PICKLE_MESSAGE,
    json_ready,
    load_arrays,
    pack_ragged,
    read_json,
    save_arrays,
    unpack_ragged,
    write_json,
)

META_FILE = "retriever.json"  # registry name, config, JSON values
ARRAYS_FILE = "arrays.safetensors"  # numeric state


class Retriever(ABC):
    """fit on training interactions; score given candidates; retrieve top-k."""

    name: str = "retriever"
    n_items: int = 0
    runtime: str = "torch"  # "numpy": inference without torch (`load(runtime=...)`)
    content_based: ClassVar[bool] = False  # scores from item content alone (cold items too)

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

    def histories_for(
        self, users: np.ndarray, histories: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """``histories`` (one per user, checked) or, when None, the users' training items: what
        `score_all` scores from."""
        if histories is not None and len(histories) != len(users):
            raise ValueError(f"got {len(histories)} histories for {len(users)} users")
        return histories if histories is not None else self.train_items(users)

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

    # ------------------------------------------------------------------ persistence
    # A fitted retriever is saved as data: its registry name, its config (JSON), the
    # attributes named in `json_attrs` (JSON) and the numeric arrays named in `array_attrs`
    # (safetensors). A retriever whose state is a few numpy arrays declares them here and
    # needs no persistence code; others extend `state` / `set_state`.
    array_attrs: ClassVar[tuple[str, ...]] = ()  # numpy array attributes (None: not saved)
    json_attrs: ClassVar[tuple[str, ...]] = ("n_items",)  # JSON-able attributes

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able values, named numeric arrays) that, with the config, make the model."""
        values = {n: json_ready(getattr(self, n)) for n in self.json_attrs if hasattr(self, n)}
        arrays = {
            n: getattr(self, n) for n in self.array_attrs if getattr(self, n, None) is not None
        }
        if self._train_items is not None:
            arrays["train_items.values"], arrays["train_items.offsets"] = pack_ragged(
                self._train_items
            )
        return values, arrays

    def set_state(self, values: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `state` on a freshly built (unfitted) retriever of the same config."""
        for n in self.json_attrs:
            if n in values:
                setattr(self, n, values[n])
        for n in self.array_attrs:
            if n in arrays:
                setattr(self, n, arrays[n])
        if "train_items.values" in arrays:
            self._train_items = unpack_ragged(
                arrays["train_items.values"], arrays["train_items.offsets"]
            )

    def save(self, directory: str | Path) -> Path:
        """Write ``retriever.json`` (registry name, config, values) and ``arrays.safetensors``
        into ``directory``; `Retriever.load` reads it back without running any code."""
        from .registry import registry_name

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = registry_name(self)
        config = getattr(self, "config", None)
        values, arrays = self.state()
        save_arrays(directory / ARRAYS_FILE, arrays)
        write_json(
            directory / META_FILE,
            {
                "format": FORMAT,
                "name": name,
                "config": json_ready(dataclasses.asdict(config)) if config is not None else {},
                "state": values,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path, runtime: str = "torch") -> Retriever:
        """The retriever saved in ``directory`` by `save`, of the class its registry name says
        (a `DataError` for a folder that is not one, or one holding another class).
        ``runtime="numpy"``: a retriever with a torch network (SASRec) scores it in NumPy,
        without importing torch (inference only; the others are NumPy already)."""
        from .registry import make_retriever

        directory = Path(directory)
        if directory.suffix == ".pkl" or (directory.is_dir() and any(directory.glob("*.pkl"))):
            raise DataError(PICKLE_MESSAGE, source=str(directory))
        meta = read_json(directory / META_FILE)
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise DataError("not a saved retriever (no registry name)", source=str(directory))
        obj = make_retriever(meta["name"], dict(meta.get("config") or {}))
        if not isinstance(obj, cls):
            raise DataError(
                f"holds a {meta['name']!r} retriever, not a {cls.__name__}", source=str(directory)
            )
        arrays = load_arrays(directory / ARRAYS_FILE)
        obj.runtime = runtime
        try:
            obj.set_state(dict(meta.get("state") or {}), arrays)
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise DataError(
                f"saved state does not fit a {meta['name']!r} retriever ({e})",
                source=str(directory),
            ) from e
        return obj
