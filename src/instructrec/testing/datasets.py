"""Small deterministic datasets for tests (shared by every room's test suite)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from instructrec.data import Dataset


def synthetic_dataset(
    n_users: int = 60, n_items: int = 40, per_user: int = 12, seed: int = 0
) -> Dataset:
    """A small log with titles, genres and years; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    genres = ["Comedy", "Drama", "Horror", "Action", "Romance"]
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Movie {j}" for j in range(n_items)],
            "year": pd.array(rng.integers(1950, 2000, n_items), dtype="Int64"),
            "genres": [
                tuple(rng.choice(genres, size=rng.integers(1, 3), replace=False))
                for _ in range(n_items)
            ],
        }
    )
    rows = []
    for u in range(n_users):
        its = rng.choice(n_items, size=per_user, replace=False)
        for t, it in enumerate(its):
            rows.append((f"u{u}", f"i{it}", float(rng.integers(1, 6)), 1000.0 * u + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Dataset.from_frames("synthetic", inter, items)
