"""Group commit: many threads' small writes share one transaction and one fsync.

A durable commit costs an fsync (milliseconds). When several request threads want to log at
the same time, a single writer thread takes everything queued, writes it in one
transaction, commits once, and only then releases the callers: each caller still returns only
after its rows are durable, but N concurrent callers pay for about one fsync instead of N
(the classic database "group commit"). If a batch fails, its writes are retried one by one so
that one bad write only fails its own caller; an error in ``fatal`` (the database is down or
locked) fails the whole batch at once, so no caller waits for more than one bounded attempt.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

Write = Callable[[Any], None]  # receives an open session inside a transaction


class GroupCommitter:
    """Runs ``write(session)`` callables in shared transactions opened by ``begin()``."""

    def __init__(
        self,
        begin: Callable[[], Any],
        max_batch: int = 256,
        fatal: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.begin = begin  # a context manager factory yielding a session in a transaction
        self.max_batch = max_batch  # writes per transaction at most
        self.fatal = fatal  # errors that fail the whole batch (no one-by-one retry)
        self._queue: queue.Queue[tuple[Write, Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> None:
        """Run ``write`` durably; returns after the commit that includes it (re-raises its error)."""
        fut: Future = Future()
        self._queue.put((write, fut))
        fut.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self.begin() as s:
                    for write, _ in batch:
                        write(s)
            except self.fatal as e:  # the database itself failed: every caller hears it
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            except Exception:  # find the culprit: one transaction per write
                for write, fut in batch:
                    try:
                        with self.begin() as s:
                            write(s)
                        fut.set_result(None)
                    except Exception as e:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(e)
                continue
            for _, fut in batch:
                fut.set_result(None)
