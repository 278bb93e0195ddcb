"""A tiny synthetic books data set in the layout of docs/data.md's walk-through.

``write_books(folder)`` writes ``ratings.csv`` (reader, book_id, stars, read_at as ISO dates)
and ``books.csv`` (book_id, title, author, year, genres joined by "|", several of them two
words long such as "Historical Fiction"). Readers have two favourite genres and mostly read
those, so a retriever and a reranker have something to learn. Deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GENRES = (
    "Historical Fiction",
    "Science Fiction",
    "Literary Fiction",
    "Mystery",
    "Fantasy",
    "Romance",
    "Horror",
    "Young Adult",
)
ADJECTIVES = ("Silent", "Golden", "Hidden", "Last", "Broken", "Distant", "Crimson", "Winter")
NOUNS = ("River", "Crown", "Garden", "Letter", "Harbour", "Mirror", "Orchard", "Tower")


def books_frames(
    n_readers: int = 40, n_books: int = 64, per_reader: int = 14, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings, books) DataFrames with the columns described in the module docstring."""
    rng = np.random.default_rng(seed)
    titles = [f"The {a} {n}" for a in ADJECTIVES for n in NOUNS][:n_books]
    main = rng.integers(0, len(GENRES), n_books)
    second = (main + rng.integers(1, len(GENRES), n_books)) % len(GENRES)
    genres = [
        GENRES[m] + ("|" + GENRES[s] if rng.random() < 0.4 else "")
        for m, s in zip(main, second, strict=True)
    ]
    books = pd.DataFrame(
        {
            "book_id": [f"b{j:03d}" for j in range(n_books)],
            "title": titles,
            "author": [f"Author {j % 17}" for j in range(n_books)],
            "year": rng.integers(1950, 2021, n_books),
            "genres": genres,
        }
    )
    rows = []
    start = np.datetime64("2020-01-01")
    for r in range(n_readers):
        liked = rng.choice(len(GENRES), 2, replace=False)
        weight = np.where(np.isin(main, liked), 8.0, 1.0)
        picks = rng.choice(n_books, per_reader, replace=False, p=weight / weight.sum())
        days = np.sort(rng.choice(700, per_reader, replace=False))
        for k, b in enumerate(picks):
            stars = int(rng.integers(4, 6) if main[b] in liked else rng.integers(1, 4))
            rows.append((f"r{r}", books.book_id[b], stars, str(start + int(days[k]))))
    ratings = pd.DataFrame(rows, columns=["reader", "book_id", "stars", "read_at"])
    return ratings, books


def write_books(folder: str | Path, **kwargs) -> tuple[Path, Path]:
    """Write ``ratings.csv`` and ``books.csv`` into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ratings, books = books_frames(**kwargs)
    paths = folder / "ratings.csv", folder / "books.csv"
    ratings.to_csv(paths[0], index=False)
    books.to_csv(paths[1], index=False)
    return paths
