"""`LearnedFilter`: the ``sasrec+filter`` rival with its phrase table learned from training data.

EVALUATION.md's filter rival ranks first the candidates that match the stated intention, in
the base retriever's order within ties. Reading the request with `parse_intention` would use
the parser's hand-written synonym list (which shares words with the intention generator);
this filter reads it with an `instructions.phrases.PhraseTable` learned from (intention
text, target item) pairs built on TRAINING targets only (`from_training`), whose module
docstring gives the rules and the defaults (chosen on ML-100K validation rows).

Scoring: a candidate's match level is the strength-weighted count of predicted values it
has; candidates are ordered by (no excluded value, match level, base retriever score), so
equal levels keep the retriever's order and a request with no known gram gives exactly the
retriever's order. Candidates with a value the request rules out ("nothing scary") sink
below every other. Only the intention TEXT is read, never the structured ``attrs`` (an
oracle the evaluation holds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.errors import DataError
from ..instructions.phrases import PhraseTable


class LearnedFilter:
    """Base retriever + a phrase -> attribute table learned from training pairs (module doc)."""

    is_baseline = True
    name = "filter"

    def __init__(
        self,
        retriever,
        min_support: int = 5,  # pairs a gram must occur in
        min_lift: float = 1.5,  # P(value | gram) / P(value)
        min_prob: float = 0.8,  # P(value | gram)
    ) -> None:
        self.retriever = retriever
        self.phrases = PhraseTable(min_support, min_lift, min_prob)
        self.dataset = None

    def fit(self, dataset, texts: Sequence[str], items) -> LearnedFilter:
        """Learn the table from (intention text, target item) pairs of TRAINING targets."""
        self.phrases.fit(dataset, texts, items)
        self.dataset = dataset
        return self

    @classmethod
    def from_training(
        cls,
        retriever,
        dataset,
        split,
        kinds: Sequence[str] = ("I1", "I2"),
        seed: int = 0,
        per_user: int | None = None,
        **options,
    ) -> LearnedFilter:
        """Fit on `derive_intentions` of the TRAINING interactions' items (``per_user``: at
        most that many per user, drawn with ``seed``; None: all)."""
        out = cls(retriever)
        out.phrases = PhraseTable.from_training(
            dataset, split, kinds, seed=seed, per_user=per_user, **options
        )
        out.dataset = dataset
        return out

    def predict(self, text: str | None) -> tuple[dict[str, float], dict[str, float]]:
        """(wanted, excluded): attribute labels a request asks for / rules out, with strength."""
        return self.phrases.predict(text)

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, attrs=None
    ) -> np.ndarray:
        """Scores (n, k): excluded candidates last, then by match level, then retriever order
        (module docstring). ``templates`` and ``attrs`` are never read."""
        from scipy.stats import rankdata

        if self.dataset is None:
            raise ValueError("LearnedFilter is not fitted: call fit() or from_training()")
        cands = np.asarray(candidates)
        if cands.ndim != 2 or len(cands) != len(users) or len(histories) != len(cands):
            raise DataError(
                f"candidates must be (n, k) with n = len(users) = len(histories), got "
                f"{cands.shape}, {len(users)} users, {len(histories)} histories"
            )
        cands = cands.astype(np.int64)
        base = np.asarray(self.retriever.score(np.asarray(users), cands, histories), np.float64)
        base_rank = rankdata(np.nan_to_num(base, nan=-np.inf), method="dense", axis=1) - 1.0
        n, k = cands.shape
        if intentions is not None and len(intentions) != n:
            raise DataError(f"intentions has {len(intentions)} rows, candidates {n}")
        level, excl = self.phrases.levels(self.dataset, intentions, cands)
        lvl = np.round(level * 1000.0)  # equal levels tie exactly
        exq = np.round(excl * 1000.0)
        top = lvl.max() + 1.0 if lvl.size else 1.0
        return base_rank + (k + 1.0) * (lvl - top * exq)

    def describe(self, top: int = 20) -> dict:
        """Size of the table and its strongest entries (for the record)."""
        return {"model": self.name, **self.phrases.describe(top)}
