"""Shared fixtures. Tests run offline: no model hub, no network."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from instructrec.data import Dataset, load_movielens_100k, make_split  # noqa: E402


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """The embedded MovieLens-100K (read once per session; do not mutate)."""
    return load_movielens_100k()


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """Leave-one-out split of ML-100K with cand10/cand20 candidate files, seed 0."""
    return make_split(ml100k, seed=0)


def synthetic_dataset(n_users: int = 60, n_items: int = 40, per_user: int = 12, seed: int = 0) -> Dataset:
    """A small log with titles, genres and years; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    genres = ["Comedy", "Drama", "Horror", "Action", "Romance"]
    items = pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n_items)],
        "title": [f"Movie {j}" for j in range(n_items)],
        "year": pd.array(rng.integers(1950, 2000, n_items), dtype="Int64"),
        "genres": [tuple(rng.choice(genres, size=rng.integers(1, 3), replace=False)) for _ in range(n_items)],
    })
    rows = []
    for u in range(n_users):
        its = rng.choice(n_items, size=per_user, replace=False)
        for t, it in enumerate(its):
            rows.append((f"u{u}", f"i{it}", float(rng.integers(1, 6)), 1000.0 * u + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Dataset.from_frames("synthetic", inter, items)


@pytest.fixture()
def tiny_dataset() -> Dataset:
    return synthetic_dataset()
