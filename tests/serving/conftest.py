"""A small fitted Recommender (item-kNN on a synthetic log) and an app around it."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from instructrec.data import Dataset, make_split
from instructrec.feedback.store import Store
from instructrec.feedback.tables import Base
from instructrec.recommender import Recommender
from instructrec.retrieval.itemknn import ItemKNN

API_KEY = "test-key"
ADMIN_KEY = "test-admin-key"
PG_URL = os.environ.get("INSTRUCTREC_TEST_PG_URL")


def small_dataset(n_users: int = 40, n_items: int = 30, per_user: int = 8) -> Dataset:
    """A deterministic little log with titles (raw ids u0.., i0..)."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Movie {j}" for j in range(n_items)],
        }
    )
    rows = [
        (f"u{u}", f"i{it}", float(rng.integers(1, 6)), 1000.0 * u + t)
        for u in range(n_users)
        for t, it in enumerate(rng.choice(n_items, size=per_user, replace=False))
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Dataset.from_frames("small", inter, items)


@pytest.fixture(scope="session")
def small_rec() -> Recommender:
    ds = small_dataset()
    return Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0))


@pytest.fixture(scope="session")
def small_run_dir(small_rec, tmp_path_factory):
    return small_rec.save(tmp_path_factory.mktemp("run") / "v1")


def make_store(backend: str, tmp_path) -> Store:
    if backend == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'serve.db'}")
    if not PG_URL:
        pytest.fail("INSTRUCTREC_TEST_PG_URL is not set (run scripts/start_postgres.sh)")
    s = Store(PG_URL)
    Base.metadata.drop_all(s.engine)
    Base.metadata.create_all(s.engine)
    return s


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture()
def model_root(small_run_dir, tmp_path):
    """A model root holding a copy of the small run as ``v2`` (hot swaps load from here)."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(small_run_dir, root / "v2")
    return root


@pytest.fixture()
def client(small_rec, store, model_root):
    """A test client with the client key set (``X-API-Key``); admin calls add ``X-Admin-Key``."""
    from fastapi.testclient import TestClient

    from instructrec.serving.app import ServeSettings, create_app

    app = create_app(
        small_rec,
        store,
        ServeSettings(
            api_key=API_KEY,
            admin_key=ADMIN_KEY,
            model_root=str(model_root),
            seed=0,
            model_version="v1",
            max_body_bytes=4096,
        ),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c


def start_server(
    run_dir, db_url: str, api_key: str = API_KEY, timeout: float = 60.0, extra: tuple = ()
):
    """`instructrec serve` in a subprocess on a free loopback port; returns (process, base URL)
    once /healthz answers. ``extra``: more command-line arguments."""
    from instructrec.testing.server import start_serve

    args = ["--model", str(run_dir), "--db", db_url, "--api-key", api_key]
    args += ["--seed", "0", "--log-level", "warning", *extra]
    return start_serve(args, timeout)


@pytest.fixture()
def api_key() -> str:
    return API_KEY


@pytest.fixture()
def admin() -> dict:
    """Headers of an admin call (the ``client`` fixture's admin key)."""
    return {"X-Admin-Key": ADMIN_KEY}


@pytest.fixture()
def server():
    """Start `instructrec serve` subprocesses: ``server(run_dir, db_url)`` -> (proc, base URL);
    all are killed at teardown."""
    procs = []

    def start(run_dir, db_url):
        proc, base = start_server(run_dir, db_url)
        procs.append(proc)
        return proc, base

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


@pytest.fixture()
def store_url(request, tmp_path):
    """A fresh store URL for a subprocess server: ``request.param`` is sqlite or postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    if not PG_URL:
        pytest.fail("INSTRUCTREC_TEST_PG_URL is not set (run scripts/start_postgres.sh)")
    s = Store(PG_URL)
    Base.metadata.drop_all(s.engine)
    s.close()
    return PG_URL
