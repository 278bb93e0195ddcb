"""The `Scorer` contract: score a batch of (instruction, candidates) pairs.

A scorer knows nothing about datasets or templates: it sees text and numbers. Every
backbone (encoder, seq2seq, causal) and every head passes one shared contract suite
(`instructrec.testing.ScorerContract`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class RerankExample:
    """One instruction with its candidates.

    instruction
        The rendered instruction. For listwise tasks it may omit the candidate list: the
        scorer decides how candidates are shown (``candidate_texts``).
    candidate_texts
        One text per candidate (title plus attributes).
    candidate_ids
        Internal item ids (int), aligned with ``candidate_texts``; lets a scorer use cached
        item vectors or an item-id embedding.
    prior
        Optional first-stage (retriever) score per candidate: the collaborative signal.
    history_ids
        Optional internal ids of the user's history, oldest first.
    task
        "rank" (T1/T2/T3: higher score = better), or "yesno" (T0: score = logit of Yes;
        one candidate).
    """

    instruction: str
    candidate_texts: list[str]
    candidate_ids: np.ndarray | None = None
    prior: np.ndarray | None = None
    history_ids: np.ndarray | None = None
    task: str = "rank"
    meta: dict = field(default_factory=dict)


class Scorer(ABC):
    """Scores candidates given an instruction. Higher is better."""

    @abstractmethod
    def score(self, batch: list[RerankExample]) -> list[np.ndarray]:
        """One float32 array per example, of length ``len(example.candidate_texts)``."""

    def save(self, directory: str | Path) -> None:  # pragma: no cover - implemented by backbones
        raise NotImplementedError

    @classmethod
    def load(cls, directory: str | Path) -> Scorer:  # pragma: no cover
        raise NotImplementedError
