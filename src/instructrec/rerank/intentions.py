"""Intentions and preferences for training instances (an adaptor over the instructions room).

InstructRec derives intentions from the target item's attributes: vague (I1, e.g. "something
funny") and specific (I2, e.g. "a 90s comedy"), and explicit preferences (P2) from the
user's history. The evaluation protocols use `instructrec.instructions.derive_intentions`;
training uses the same function so both see the same distribution of requests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .candidates import units as single_units


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


EXCLUDED_MATCH = -1.0  # intent-match value of a candidate the intention rules out


def intention_match(dataset, intentions, candidates, phrases=None) -> np.ndarray:
    """(n, k) float32 graded match of each candidate with the row's intention TEXT: the
    fraction of the attributes `parse_intention` reads in the text (each genre, decade, year,
    category, brand) that the candidate satisfies (`intention_matches` per attribute).
    0 for rows without an intention or where nothing is parsed. A candidate with a value the
    text excludes ("a comedy, no horror": any Horror film) gets ``EXCLUDED_MATCH`` (-1),
    whatever else it matches: with the channel's positive learned weight it sinks below
    every candidate without an excluded value. Rows without an exclusion give exactly the
    graded values in [0, 1]. An extra prior channel of the reranker: it is computed from the
    words the model sees, never from a target.

    ``phrases`` (an `instructions.phrases.PhraseTable`, ``reranker.intent_phrases``): on rows
    whose text the parser reads nothing from, the learned table reads it instead: the share
    of the wanted values' strength the candidate has, and ``EXCLUDED_MATCH`` for a candidate
    with a value the text rules out. Rows the parser reads are unchanged."""
    from ..instructions import intention_excluded, intention_matches
    from ..instructions.parse import parse_intention

    cand = np.asarray(candidates, dtype=np.int64)
    n = cand.shape[0]
    out = np.zeros(cand.shape, np.float32)
    if intentions is None or n == 0:
        return out
    cache: dict[str, dict] = {}
    parsed = []
    for t in intentions:
        t = str(t) if t else ""
        if t not in cache:
            cache[t] = parse_intention(dataset, t) if t.strip() else {}
        parsed.append(cache[t])
    units = [single_units(d) for d in parsed]
    names = sorted({u for d in units for u in d})
    if names:
        count = np.zeros(n, np.float32)
        for name in names:
            has = np.array([name in d for d in units])
            rows = np.flatnonzero(has)
            sub = [units[r][name] for r in rows]
            out[rows] += intention_matches(dataset, sub, cand[rows]).astype(np.float32)
            count += has
        out /= np.maximum(count, 1.0)[:, None]
    ex_rows = np.flatnonzero([bool(d.get("excluded")) for d in parsed])
    if len(ex_rows):
        sub = [parsed[r] for r in ex_rows]
        hit = intention_excluded(dataset, sub, cand[ex_rows])
        out[ex_rows] = np.where(hit, np.float32(EXCLUDED_MATCH), out[ex_rows])
    if phrases is not None:
        unread = np.flatnonzero([not d for d in parsed])
        if len(unread):
            texts = [str(intentions[r]) if intentions[r] else "" for r in unread]
            want, excl = phrases.levels(dataset, texts, cand[unread])
            total = phrases.wanted_strength(texts)[:, None]
            frac = np.where(total > 0, want / np.maximum(total, 1e-12), 0.0)
            out[unread] = np.where(excl > 0, EXCLUDED_MATCH, frac).astype(np.float32)
    return out
