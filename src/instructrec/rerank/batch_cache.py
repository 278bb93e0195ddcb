"""What a batch of answers remembers (`rerank.batched`): the query tower's vectors by text,
kept across batches in a bounded LRU (`QueryCache`), and the first stage's catalogue scores
by (user, history) while one batch is answered (`MemoScores`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..retrieval.base import Retriever

QUERY_CACHE_SIZE = 4096  # distinct query texts whose tower vectors are kept (LRU)


class QueryCache:
    """Bounded LRU cache of query-tower vectors by query text, for one model (inference
    only: the cached vectors are inference tensors). Thread-safe."""

    def __init__(self, scorer, size: int = QUERY_CACHE_SIZE) -> None:
        self.scorer, self.size = scorer, size
        self._vecs: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __call__(self, texts: list[str]):
        """(len(texts), d) query vectors; texts not cached are encoded together, in tower passes
        of similar length (`models.scoring.encode_queries`)."""
        import torch

        from ..models.scoring import encode_queries

        model = self.scorer.model
        with self._lock:
            found = {t: self._vecs[t] for t in dict.fromkeys(texts) if t in self._vecs}
            for t in found:
                self._vecs.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:  # passes of similar length: one long request does not pad the batch
            q = encode_queries(model, self.scorer.tokenizer, missing)
            found.update(zip(missing, q, strict=True))
            with self._lock:
                for t, v in zip(missing, q, strict=True):
                    self._vecs[t] = v
                while len(self._vecs) > self.size:
                    self._vecs.popitem(last=False)
        if not texts:
            return torch.zeros((0, model.item_vecs.shape[1]))
        return torch.stack([found[t] for t in texts])


class MemoScores:
    """``retriever`` with ``score_all`` computed once per (user, history) while a batch is
    answered: the first stage's catalogue scores serve again when the same retriever scores
    the candidates as a prior (the shipped SASRec is both)."""

    def __init__(self, retriever) -> None:
        self.retriever = retriever
        self.rows: dict[tuple, np.ndarray] = {}

    def __getattr__(self, name: str):
        return getattr(self.retriever, name)

    def score_all(self, users, histories=None) -> np.ndarray:
        users = np.asarray(users, np.int64)
        if histories is None:
            return self.retriever.score_all(users)
        hs = [np.asarray(h, np.int64) for h in histories]
        keys = [(int(u), h.tobytes()) for u, h in zip(users, hs, strict=True)]
        first: dict[tuple, int] = {}
        for j, k in enumerate(keys):
            if k not in self.rows:
                first.setdefault(k, j)
        new = list(first.values())
        if new:
            got = np.asarray(self.retriever.score_all(users[new], [hs[j] for j in new]))
            for j, row in zip(new, got, strict=True):
                self.rows[keys[j]] = row
        return np.stack([self.rows[k] for k in keys])

    score = Retriever.score  # gathered from the memoised ``score_all``


def memo_scores(retriever):
    """A `MemoScores` of ``retriever`` where its ``score`` is the base class's (gathered
    from ``score_all``); a retriever with its own ``score`` is used as it is."""
    if type(retriever).score is not Retriever.score:
        return retriever
    return MemoScores(retriever)
