"""Shared fixtures. Tests run offline: no model hub, no network."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402

from instructrec.data import Dataset, load_movielens_100k, make_split  # noqa: E402
from instructrec.testing.datasets import synthetic_dataset  # noqa: E402,F401


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """The embedded MovieLens-100K (read once per session; do not mutate)."""
    return load_movielens_100k()


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """Leave-one-out split of ML-100K with cand10/cand20 candidate files, seed 0."""
    return make_split(ml100k, seed=0)


@pytest.fixture()
def tiny_dataset() -> Dataset:
    return synthetic_dataset()


def games_dir() -> Path:
    """Where the Amazon Games data is: $INSTRUCTREC_GAMES_DIR, else ../shared/data/amazon-games
    beside the repository (never copied into it)."""
    env = os.environ.get("INSTRUCTREC_GAMES_DIR")
    return (
        Path(env) if env else Path(__file__).parents[1] / ".." / "shared" / "data" / "amazon-games"
    )


@pytest.fixture(scope="session")
def games():
    """(Dataset, Split) of the real Amazon Games data, read once; skips where it is absent."""
    from instructrec.data import read_benchmark_split

    d = games_dir()
    if not (d / "games.item").exists():
        pytest.skip(f"Amazon Games data not found at {d} (set INSTRUCTREC_GAMES_DIR)")
    return read_benchmark_split(d)
