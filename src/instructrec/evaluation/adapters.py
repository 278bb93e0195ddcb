"""Model adapters of the evaluation: what a protocol scores through ``score_candidates``.

`RetrieverModel` shows a `Retriever` through the model interface (intentions and templates
ignored); `AttributeFilterModel` is the "retriever plus an attribute filter" rival of the
`search` protocols (EVALUATION.md); `NewFirstModel` ranks new (cold) items first, the rule
that shows what the `cold` protocol's random negatives give away; `as_model` adapts a
retriever and passes through anything with ``score_candidates`` (a `Recommender`,
`ScoreMix`, ...).
"""

from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset
from ..retrieval.base import Retriever


class RetrieverModel:
    """A `Retriever` seen through the model interface (intentions and templates ignored)."""

    is_baseline = True

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever

    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        return self.retriever.score(np.asarray(users), np.asarray(candidates), histories)

    def score_pointwise(self, users, items, histories):
        items = np.asarray(items, np.int64).reshape(-1, 1)
        return self.retriever.score(np.asarray(users), items, histories)[:, 0]


class AttributeFilterModel:
    """ "Retriever plus an attribute filter": candidates matching the stated intention are
    ranked first, in retriever order, then the rest (EVALUATION.md's rival for `search`).
    Candidates with a value the intention excludes (``attrs[i]["excluded"]``, as
    `parse_intention` reads "no horror") come last, below every non-match."""

    is_baseline = True

    def __init__(self, retriever: Retriever, dataset: Dataset) -> None:
        self.retriever, self.dataset = retriever, dataset

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, attrs=None
    ):
        base = self.retriever.score(np.asarray(users), np.asarray(candidates), histories)
        base = np.asarray(base, np.float64)
        if attrs is None:
            return base
        from ..instructions import intention_excluded, intention_matches

        match = intention_matches(self.dataset, attrs, candidates)
        span = base.max(axis=1, keepdims=True) - base.min(axis=1, keepdims=True) + 1.0
        out = base + match * span  # any match outranks every non-match
        if any(d and d.get("excluded") for d in attrs):
            out = out - intention_excluded(self.dataset, attrs, candidates) * span
        return out


class NewFirstModel:
    """The ``new-first`` rival of `cold`: every cold item (no training interactions) above
    every warm one, each group in the order of a content retriever (``titleknn``), or, with
    none, in no order (tied: ties count against the target). It reads nothing but the split's
    cold items and item text; on `cold` it scores what "the answer is the new item" is worth,
    on `cold-only` (all candidates new) it is its content retriever."""

    is_baseline = True

    def __init__(self, cold_items, n_items: int, content: Retriever | None = None) -> None:
        self.cold = np.zeros(n_items, bool)
        self.cold[np.asarray(cold_items, np.int64)] = True
        self.content = content

    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        cands = np.asarray(candidates, np.int64)
        base = np.zeros(cands.shape)
        if self.content is not None:
            base = np.asarray(self.content.score(np.asarray(users), cands, histories), np.float64)
            base = np.nan_to_num(base, nan=0.0, posinf=0.0, neginf=0.0)
        span = base.max(axis=1, keepdims=True) - base.min(axis=1, keepdims=True) + 1.0
        return base + self.cold[cands] * span  # any new item above every warm one

    def describe(self) -> dict:
        return {"content": getattr(self.content, "name", None), "cold_items": int(self.cold.sum())}


def as_model(obj):
    """Adapt a `Retriever`; pass through anything with ``score_candidates``."""
    if isinstance(obj, Retriever):
        return RetrieverModel(obj)
    if hasattr(obj, "score_candidates"):
        return obj
    raise TypeError(f"{type(obj).__name__} is neither a Retriever nor has score_candidates()")
