"""Connection handling of the feedback store: the engine, sessions and write transactions.

SQLite (a file, WAL journal, ``synchronous=FULL``: an acknowledged write survives a crash of
the process) is the default; PostgreSQL by URL (``postgresql+psycopg://user:pw@host/db``)
gets a pre-pinged connection pool. SQLite allows one writer, so this process's write
transactions are serialised by a lock; request logs (the hot path) share commits across
threads through a `GroupCommitter`. The query mixins of `store.Store` build on `Database`.

Every wait on the database is bounded by ``timeout`` seconds (default `DEFAULT_TIMEOUT`): the
SQLite busy timeout and this process's write lock, PostgreSQL's connect, pool and lock
timeouts. Past it a call raises (`StoreUnavailable` or SQLAlchemy's ``OperationalError``)
instead of hanging; the HTTP service answers those with 503 and ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from .commit import GroupCommitter
from .tables import Base

DEFAULT_URL = "sqlite:///instructrec-feedback.db"
DEFAULT_TIMEOUT = 5.0  # seconds any database wait may take before the call fails


class StoreUnavailable(RuntimeError):
    """The store could not be written within the timeout (locked by another writer)."""


class Database:
    """Engine, sessions and (group-committed) write transactions; creates missing tables."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        echo: bool = False,
        group_commit: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.url = url
        self.timeout = float(timeout)  # bound of every wait on the database
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": self.timeout, "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
            kwargs["pool_timeout"] = self.timeout
            if url.startswith("postgresql"):
                ms = int(self.timeout * 1000)
                kwargs["connect_args"] = {
                    "connect_timeout": max(2, math.ceil(self.timeout)),  # libpq's minimum is 2
                    "options": f"-c lock_timeout={ms}",
                }
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            busy_ms = int(self.timeout * 1000)
            event.listen(
                self.engine, "connect", lambda c, r: _sqlite_pragmas(c, r, busy_ms=busy_ms)
            )
        # SQLite allows one writer: serialise this process's write transactions so that
        # threads wait on a lock instead of failing with "database is locked".
        self._write_lock = threading.Lock() if self.is_sqlite else None
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # request logs (the hot path) share commits across threads; see commit.py
        self._committer = (
            GroupCommitter(self._write, fatal=unavailable_errors()) if group_commit else None
        )

    @contextmanager
    def _write_slot(self) -> Iterator[None]:
        """This process's turn to write (SQLite: one writer), waited for at most ``timeout``."""
        lock = self._write_lock
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=self.timeout):
            raise StoreUnavailable(f"database is locked: no write slot within {self.timeout:g} s")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_slot(), self._sessions() as s, s.begin():
            yield s

    def _read(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def ping(self, write: bool = False) -> bool:
        """True when the database answers; raises (within the timeout) when it does not.

        ``write``: on SQLite also take the database's write lock for a moment (``BEGIN
        IMMEDIATE``; ROLLBACK), so a file locked by another writer counts as down."""
        if not write or not self.is_sqlite:
            with self._read() as s:
                return s.execute(select(1)).scalar() == 1
        with self._write_slot():
            raw = self.engine.raw_connection()
            try:
                conn = raw.driver_connection
                conn.execute("BEGIN IMMEDIATE")  # waits busy_timeout, then "database is locked"
                conn.execute("ROLLBACK")
            except Exception as e:
                from sqlalchemy.exc import OperationalError

                raise OperationalError("BEGIN IMMEDIATE", None, e) from e
            finally:
                raw.close()
        return True


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """The errors meaning "the store is unreachable or locked" (not a fault of one write)."""
    from sqlalchemy import exc

    return (StoreUnavailable, exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


def _sqlite_pragmas(dbapi_conn, _record, busy_ms: int = int(DEFAULT_TIMEOUT * 1000)) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: durable acks
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cur.close()
