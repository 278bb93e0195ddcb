"""Store fixtures: every store test runs on SQLite and, when INSTRUCTREC_TEST_PG_URL is set
(CI starts a server with scripts/start_postgres.sh), on PostgreSQL too (marker `postgres`)."""

from __future__ import annotations

import os

import pytest

from instructrec.feedback.store import Store
from instructrec.feedback.tables import Base

PG_URL = os.environ.get("INSTRUCTREC_TEST_PG_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def fresh_store(backend: str, tmp_path) -> Store:
    """An empty store on ``backend`` (the PostgreSQL database is wiped first)."""
    if backend == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'feedback.db'}")
    if not PG_URL:
        pytest.fail("INSTRUCTREC_TEST_PG_URL is not set (run scripts/start_postgres.sh)")
    store = Store(PG_URL)
    Base.metadata.drop_all(store.engine)
    Base.metadata.create_all(store.engine)
    return store


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s = fresh_store(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fresh_default_catalogue():
    """Template optimisation installs templates in the process-wide catalogue: give every
    test a fresh one so nothing leaks into other rooms' tests."""
    from instructrec.instructions import catalogue

    catalogue._DEFAULT = None
    yield
    catalogue._DEFAULT = None
