"""Yes/No questions with a marked history (TALLRec's pointwise task) from a ratings log.

Each question shows a user's ``history`` most recent rated items before a target, oldest first,
each marked liked (rating >= ``liked``) or disliked, and asks whether the user will like the
target; the answer is Yes when the target's rating is >= ``liked``. Only the split's TRAINING
interactions are read, so a question never shows a validation or test rating. The Yes/No
benchmark's "log questions" (`benchmarks/bench_tune.py --logs`) are built the same way (its
titles carry the year): adding 10,000 of them to 256 examples took MiniLM from +0.010 to
+0.042 AUC over the liked-fraction heuristic on its test set (docs/tuning.md). Feed the output
to ``instructrec tune``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from instructrec.data.dataset import LIKED_RATING, Dataset
from instructrec.data.errors import DataError


def question(titles: list[str], liked: list[bool], target: str, words: dict, liked_at: float
             ) -> str:  # fmt: skip
    """The question text (the benchmark's ``rated`` layout, with the domain's nouns)."""
    lines = [f"{k + 1}. {t} - {'liked' if ok else 'disliked'}" for k, (t, ok) in
             enumerate(zip(titles, liked, strict=True))]  # fmt: skip
    return (
        f"A user rated these {words['nouns']}, oldest first (liked: rated {liked_at:g} or "
        f"more):\n" + "\n".join(lines) + f'\nWill the user like the {words["noun"]} "{target}"? '
        "Answer Yes or No."
    )


def rated_questions(
    dataset: Dataset,
    split,
    n: int | None = None,
    history: int = 10,
    liked: float = LIKED_RATING,
    seed: int = 0,
    users: np.ndarray | None = None,
) -> pd.DataFrame:
    """Up to ``n`` questions (all when None), in a seeded order, one per (user, position) of
    the training interactions with at least ``history`` rated items before it; ``users``
    (internal ids) restricts the users read. Columns: user, item, rating, instruction, answer,
    liked_fraction (ids internal). A `DataError` when the log has no ratings or the settings
    are out of range."""
    from .titles import display_title, domain_words

    if history < 1:
        raise DataError(f"history must be at least 1, got {history}")
    if n is not None and n < 1:
        raise DataError(f"n must be at least 1, got {n}")
    train = split.frame("train")
    train = train[train["rating"].notna()]
    if users is not None:
        train = train[train["user"].isin(np.asarray(users))]
    if train.empty:
        raise DataError(
            "Yes/No questions need ratings: the training interactions have no rating column "
            "values" + (" for the users given" if users is not None else "")
        )
    train = train.sort_values(["user", "timestamp", "order"], kind="stable")
    u = train["user"].to_numpy()
    it = train["item"].to_numpy()
    r = train["rating"].to_numpy(np.float64)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    # every position with `history` earlier rows of the same user
    pos = np.concatenate([np.arange(s + history, e) for s, e in zip(starts, ends, strict=True)]
                         or [np.empty(0, np.int64)])  # fmt: skip
    if not len(pos):
        raise DataError(
            f"no user has more than {history} rated training interactions: lower --history"
        )
    pos = pos[np.random.default_rng(seed).permutation(len(pos))][: n if n else None]
    titles = display_title(dataset)
    words = domain_words(dataset)
    rows = []
    for p in pos.tolist():
        h = slice(p - history, p)
        marks = (r[h] >= liked).tolist()
        rows.append({
            "user": int(u[p]), "item": int(it[p]), "rating": float(r[p]),
            "instruction": question([str(titles[i]) for i in it[h]], marks, str(titles[it[p]]),
                                    words, liked),
            "answer": "Yes" if r[p] >= liked else "No",
            "liked_fraction": float(np.mean(marks)),
        })  # fmt: skip
    return pd.DataFrame(rows)
