"""`Recommender`: a retriever that proposes candidates, optionally reranked by an
instruction-following scorer.

    rec = Recommender(dataset, retriever=SASRec(...), reranker=...)
    rec.fit(split)
    rec.recommend(user="42", instruction="a light comedy from the 90s", n=10)

Returns a DataFrame (item_id, title, score, rank). Users unknown to training pass their
history explicitly (``history=[raw item ids]``).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data.dataset import Dataset
from .data.errors import DataError
from .data.split import HISTORY_LEN, Split
from .retrieval.base import Retriever

RERANK_DEPTH = 20  # how many retrieved candidates the reranker reorders (LlamaRec's 20)


class Recommender:
    """Retriever + optional reranker. ``reranker`` is any object with
    ``score_candidates(users, candidates, histories, intentions=None, templates=None)``
    returning an (n, k) array (see `instructrec.training.reranker.InstructionReranker`)."""

    def __init__(self, dataset: Dataset, retriever: Retriever, reranker: Any | None = None,
                 rerank_depth: int = RERANK_DEPTH) -> None:
        self.dataset = dataset
        self.retriever = retriever
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self.sequences: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, split: Split, reranker_trainer: Any | None = None) -> Recommender:
        """Fit the retriever on ``split.train``; the reranker is trained by its own trainer."""
        self.retriever.fit(split.train, self.dataset.n_users, self.dataset.n_items)
        self.sequences = split.sequences("serve")
        if reranker_trainer is not None:
            self.reranker = reranker_trainer(self)
        return self

    # ------------------------------------------------------------------ inference
    def history_of(self, user: str | None = None, history: list | None = None) -> tuple[int, np.ndarray]:
        """(internal user id or -1, history as internal item ids, oldest first)."""
        if history is not None:
            hist = self.dataset.item_index([str(h) for h in history]) if len(history) else np.empty(0, np.int64)
            uid = -1
            if user is not None:
                try:
                    uid = int(self.dataset.user_index([str(user)])[0])
                except DataError:
                    uid = -1
            return uid, hist.astype(np.int32)
        if user is None:
            raise DataError("give a user id or an explicit history")
        uid = int(self.dataset.user_index([str(user)])[0])
        return uid, self.sequences.get(uid, np.empty(0, np.int32))

    def recommend(self, user: str | None = None, instruction: str | None = None, n: int = 10,
                  candidates: list | None = None, history: list | None = None,
                  exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``n`` items for ``user`` (raw id) or an explicit ``history`` (raw item ids).

        ``candidates`` (raw item ids) restricts ranking to those items (implicit's ``items=``).
        """
        if n < 1:
            raise DataError(f"n must be >= 1, got {n}")
        uid, hist = self.history_of(user, history)
        users = np.array([max(uid, 0)])
        hists = [hist[-HISTORY_LEN:]] if (uid < 0 or history is not None) else None
        full_hists = [hist] if (uid < 0 or history is not None) else None
        if candidates is not None:
            cand = self.dataset.item_index([str(c) for c in candidates]).astype(np.int32)[None, :]
            prior = self.retriever.score(users, cand, histories=full_hists)
        else:
            k = max(n, self.rerank_depth if self.reranker is not None else n)
            seen = [hist] if exclude_seen else None
            cand, prior = self.retriever.candidates(users, k, exclude_seen=exclude_seen,
                                                    histories=full_hists, seen=seen)
        scores = prior.astype(np.float32)
        if self.reranker is not None:
            depth = min(self.rerank_depth, cand.shape[1]) if candidates is None else cand.shape[1]
            h = hists if hists is not None else [hist[-HISTORY_LEN:]]
            rs = self.reranker.score_candidates(users, cand[:, :depth], h,
                                                intentions=[instruction] if instruction else None)
            # reranked head first (by reranker score), the tail kept in retriever order
            head = np.asarray(rs, dtype=np.float32)[0]
            tail = scores[0, depth:]
            offset = (tail.max() if len(tail) else 0.0) - head.min() + 1.0
            scores = np.concatenate([head + offset, tail])[None, :]
        order = np.argsort(-scores[0], kind="stable")[:n]
        items = cand[0, order]
        return pd.DataFrame({
            "item_id": self.dataset.item_ids[items],
            "title": self.dataset.titles[items],
            "score": scores[0, order].astype(float),
            "rank": np.arange(1, len(order) + 1),
        })

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Dataset tables, retriever and reranker into ``directory`` (loadable by `load`)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "dataset.pkl", "wb") as fh:
            pickle.dump(self.dataset, fh)
        with open(directory / "sequences.pkl", "wb") as fh:
            pickle.dump(self.sequences, fh)
        self.retriever.save(directory / "retriever.pkl")
        meta = {"retriever": type(self.retriever).__name__, "rerank_depth": self.rerank_depth,
                "reranker": None}
        if self.reranker is not None:
            self.reranker.save(directory / "reranker")
            meta["reranker"] = f"{type(self.reranker).__module__}:{type(self.reranker).__name__}"
        (directory / "recommender.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        directory = Path(directory)
        if not (directory / "recommender.json").exists():
            raise DataError("not a saved Recommender (no recommender.json)", source=str(directory))
        meta = json.loads((directory / "recommender.json").read_text())
        with open(directory / "dataset.pkl", "rb") as fh:
            dataset = pickle.load(fh)
        retriever = Retriever.load(directory / "retriever.pkl")
        reranker = None
        if meta.get("reranker"):
            import importlib

            mod, name = meta["reranker"].split(":")
            reranker = getattr(importlib.import_module(mod), name).load(directory / "reranker")
        rec = cls(dataset, retriever, reranker, meta.get("rerank_depth", RERANK_DEPTH))
        with open(directory / "sequences.pkl", "rb") as fh:
            rec.sequences = pickle.load(fh)
        return rec
