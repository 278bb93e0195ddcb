"""Connection handling of the feedback store: the engine, sessions and write transactions.

SQLite (a file, WAL journal, ``synchronous=FULL``: an acknowledged write survives a crash of
the process) is the default; PostgreSQL by URL (``postgresql+psycopg://user:pw@host/db``)
gets a pre-pinged connection pool. SQLite allows one writer, so this process's write
transactions are serialised by a lock; request logs (the hot path) share commits across
threads through a `GroupCommitter`. The query mixins of `store.Store` build on `Database`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from .commit import GroupCommitter
from .tables import Base

DEFAULT_URL = "sqlite:///instructrec-feedback.db"


class Database:
    """Engine, sessions and (group-committed) write transactions; creates missing tables."""

    def __init__(
        self, url: str = DEFAULT_URL, echo: bool = False, group_commit: bool = True
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite allows one writer: serialise this process's write transactions so that
        # threads wait on a lock instead of failing with "database is locked".
        self._write_lock = threading.Lock() if self.is_sqlite else None
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # request logs (the hot path) share commits across threads; see commit.py
        self._committer = GroupCommitter(self._write) if group_commit else None

    @contextmanager
    def _write(self) -> Iterator[Session]:
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        try:
            with self._sessions() as s, s.begin():
                yield s
        finally:
            if lock is not None:
                lock.release()

    def _read(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers."""
        with self._read() as s:
            return s.execute(select(1)).scalar() == 1


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: durable acks
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
