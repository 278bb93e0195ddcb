"""Intentions and preferences for training instances (an adaptor over the instructions room).

InstructRec derives intentions from the target item's attributes: vague (I1, e.g. "something
funny") and specific (I2, e.g. "a 90s comedy"), and explicit preferences (P2) from the
user's history. The evaluation protocols use `instructrec.instructions.derive_intentions`;
training uses the same function so both see the same distribution of requests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def intentions_for(dataset, items: np.ndarray, slots: Sequence[str], seed: int = 0) -> list:
    """Per row: None for I0 slots, else the derived vague (I1) / specific (I2) intention of
    ``items[row]``."""
    from ..instructions.derive import derive_intentions

    items = np.asarray(items, dtype=np.int64)
    out: list[str | None] = [None] * len(items)
    for slot in ("I1", "I2"):
        rows = np.array([i for i, s in enumerate(slots) if s.endswith(slot)], dtype=np.int64)
        if len(rows) == 0:
            continue
        texts, _ = derive_intentions(dataset, items[rows], kind=slot, seed=seed)
        for r, t in zip(rows, texts, strict=True):
            out[int(r)] = str(t)
    return out


def preferences_for(
    dataset,
    seq_items: np.ndarray,
    seq_ratings: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    seed: int = 0,
) -> list[str]:
    """Explicit preference text (P2) per row from ``seq_*[starts[r]:ends[r]]`` (the
    interactions before the row's target)."""
    from ..instructions.preferences import derive_preferences

    return [
        str(p) for p in derive_preferences(dataset, seq_items, seq_ratings, starts, ends, seed=seed)
    ]
