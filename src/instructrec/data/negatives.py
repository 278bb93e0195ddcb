"""Uniform negative sampling: items a user never interacted with, drawn with a fixed seed
(see shared/EVALUATION.md; used by `split.add_candidates`)."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .errors import DataError

_CHUNK = 1 << 18  # rows per block when drawing negatives (bounds memory at ~100 MB)


def seen_keys(dataset: Dataset) -> np.ndarray:
    """Sorted unique ``user * n_items + item`` keys of every interaction in ``dataset``."""
    inter = dataset.interactions
    n_items = np.int64(dataset.n_items)
    keys = np.sort(inter["user"].to_numpy(np.int64) * n_items + inter["item"].to_numpy(np.int64))
    # np.unique is several times slower than sort + mask at 10M keys (numpy 2.x)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def seen_mask(keys: np.ndarray, users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """(n, m) bool: whether user ``users[i]`` interacted with ``items[i, j]`` (``items`` (n, m)
    or (1, m)), looked up in the sorted `seen_keys` ``keys``."""
    q = np.asarray(users, np.int64)[:, None] * np.int64(n_items) + np.asarray(items, np.int64)
    if not len(keys):
        return np.zeros(q.shape, bool)
    # row-major queries stay within one user's block of keys: cache-friendly without sorting
    pos = np.minimum(np.searchsorted(keys, q.ravel()), len(keys) - 1).reshape(q.shape)
    return keys[pos] == q


def sample_negatives(
    dataset: Dataset,
    users: np.ndarray,
    n_neg: int,
    seed: int,
    *,
    keys: np.ndarray | None = None,
) -> np.ndarray:
    """``n_neg`` distinct items per row, uniform over items the row's user never touched.

    Each row draws a few more items than it needs at once; draws that the user has seen
    (one ``searchsorted`` over the sorted ``user * n_items + item`` keys from `seen_keys`) or that
    repeat an earlier draw are dropped, and the first ``n_neg`` survivors, in draw order, are
    kept: sequential sampling without replacement, so every unseen subset is equally likely.
    Rows left short draw again, twice as wide. Deterministic for a seed.
    """
    n_items = dataset.n_items
    keys = seen_keys(dataset) if keys is None else keys
    users = np.asarray(users, dtype=np.int64)
    n_seen = np.bincount(keys // n_items, minlength=dataset.n_users)
    free = n_items - n_seen[users]
    if len(users) and free.min() < n_neg:
        bad = users[np.argmin(free)]
        raise DataError(
            f"user {dataset.user_ids[bad]!r} has interacted with {n_seen[bad]} of {n_items} "
            f"items: too many to draw {n_neg} unseen negatives"
        )
    rng = np.random.default_rng(seed)
    out = np.empty((len(users), n_neg), np.int32)
    seen_share = float(n_seen[users].mean() / n_items) if len(users) else 0.0
    for lo in range(0, len(users), _CHUNK):
        rows = np.arange(lo, min(lo + _CHUNK, len(users)))
        width = n_neg + 2 + int(np.ceil(2 * n_neg * seen_share))
        while len(rows):
            got, ok = _draw_rows(rng, keys, users[rows], n_items, n_neg, width)
            out[rows[ok]] = got
            rows = rows[~ok]
            width *= 2
    return out


def _draw_rows(
    rng: np.random.Generator,
    keys: np.ndarray,
    users: np.ndarray,
    n_items: int,
    n_neg: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One attempt: (negatives of the rows that got ``n_neg`` valid draws, which rows did)."""
    draw = rng.integers(0, n_items, (len(users), width), dtype=np.int64)
    seen = seen_mask(keys, users, draw, n_items)
    within = np.argsort(draw, axis=1, kind="stable")
    sd = np.take_along_axis(draw, within, axis=1)
    rep_sorted = np.zeros(sd.shape, bool)
    rep_sorted[:, 1:] = sd[:, 1:] == sd[:, :-1]  # stable sort: the first draw stays valid
    repeat = np.empty_like(rep_sorted)
    np.put_along_axis(repeat, within, rep_sorted, axis=1)
    valid = ~(seen | repeat)
    csum = np.cumsum(valid, axis=1)
    ok = csum[:, -1] >= n_neg
    take = valid & (csum <= n_neg) & ok[:, None]
    return draw[take].reshape(-1, n_neg).astype(np.int32), ok
