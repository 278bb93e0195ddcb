"""The feedback store failing under the service: a SQLite write lock held by another
connection, a PostgreSQL server stopped. Writes get 503 with ``Retry-After`` and a JSON body
(after the bounded store timeout, not a 40 s hang), /healthz says degraded, reads still work,
and everything recovers when the store is back."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from instructrec.feedback.store import Store
from instructrec.serving.app import ServeSettings, create_app

KEY = "k"


def _client(rec, store):
    from fastapi.testclient import TestClient

    app = create_app(rec, store, ServeSettings(api_key=KEY, seed=0, model_version="v1"))
    c = TestClient(app, raise_server_exceptions=False)
    c.headers["X-API-Key"] = KEY
    return c


def _recommend(c):
    return c.post("/v1/recommendations", json={"user_id": "u1", "n": 3, "instruction": "fun"})


def _feedback(c, rid, item, key):
    body = {"request_id": rid, "item_id": item, "signal": "like", "idempotency_key": key}
    return c.post("/v1/feedback", json=body)


def _assert_unavailable(r):
    assert r.status_code == 503, r.text
    body = r.json()
    assert int(r.headers["retry-after"]) == body["retry_after"] >= 1
    assert isinstance(body["detail"], str) and "unavailable" in body["detail"]


def test_sqlite_lock_held_elsewhere_is_503_then_recovers(small_rec, tmp_path):
    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}", timeout=0.3)
    with store.engine.connect() as conn:  # the bound is what the connection waits, at most
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300
    with _client(small_rec, store) as c:
        first = _recommend(c).json()
        rid, item = first["request_id"], first["items"][0]["item_id"]
        other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        try:
            _assert_unavailable(_recommend(c))
            _assert_unavailable(_feedback(c, rid, item, "k1"))
            health = c.get("/healthz").json()
            assert health["status"] == "degraded" and not health["database"]
            assert "locked" in health["detail"]
            assert c.get("/v1/items/i1").status_code == 200  # reads are not blocked (WAL)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert _recommend(c).status_code == 200
        fb = _feedback(c, rid, item, "k1")
        assert fb.status_code == 200 and not fb.json()["replayed"]  # the 503 stored nothing
        assert c.get("/healthz").json()["status"] == "ok"
        metrics = c.get("/metrics").text
        assert 'endpoint="/v1/recommendations",method="POST",status="503"} 1' in metrics
        assert 'endpoint="/v1/feedback",method="POST",status="503"} 1' in metrics
        assert "instructrec_store_unavailable_total 2" in metrics
    store.close()


# ------------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{d}/initdb", os.X_OK):
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


class PgServer:
    """A throwaway PostgreSQL cluster that the test can stop and start again."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="instructrec-pgfault-"))
        self.data = self.dir / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o", opts, "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture()
def pg_server():
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    server = PgServer(bin_dir)
    server.start()
    yield server
    server.remove()


@pytest.mark.slow
def test_postgres_stopped_is_503_on_writes_then_recovers(small_rec, pg_server):
    store = Store(pg_server.url, timeout=2.0)
    with _client(small_rec, store) as c:
        first = _recommend(c)
        assert first.status_code == 200, first.text
        rid, item = first.json()["request_id"], first.json()["items"][0]["item_id"]
        pg_server.stop()
        _assert_unavailable(_recommend(c))
        _assert_unavailable(_feedback(c, rid, item, "k1"))
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert c.get("/v1/model").json()["version"] == "v1"  # serving state untouched
        pg_server.start()
        assert _recommend(c).status_code == 200
        fb = _feedback(c, rid, item, "k1")
        assert fb.status_code == 200 and not fb.json()["replayed"]
        assert c.get("/healthz").json()["status"] == "ok"
    store.close()
