"""Dynamic micro-batching of model calls (Clipper, Crankshaw et al. 2017; Triton's dynamic
batcher): requests that arrive within a short window share one model pass.

    batcher = Batcher(run, window_ms=2, max_batch=32)
    result = await batcher.submit(recommender, request)   # from an async endpoint

One worker task per event loop collects requests: the first one opens a window of
``window_ms``; everything queued by its end (at most ``max_batch``) goes to ``run(key,
items)`` in ONE model thread, grouped by ``key`` (the served model version, so a hot swap
never mixes versions in a pass). While a pass runs, new requests queue up and form the next
batch as soon as it ends: the batch size follows the load (1 when idle, up to ``max_batch``
under load) with at most one window of added latency. ``run`` returns one result per item,
an exception in the place of a failed item: that request alone fails. The model runs in one
thread, so the event loop stays free to parse and answer other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class Batcher:
    """Collects concurrent `submit` calls into batches for ``run(key, items) -> results``."""

    def __init__(
        self, run: Callable[[Any, list], list], window_ms: float = 2.0, max_batch: int = 32
    ) -> None:
        if window_ms < 0 or max_batch < 1:
            raise ValueError("window_ms must be >= 0 and max_batch >= 1")
        self.run, self.window, self.max_batch = run, window_ms / 1000.0, int(max_batch)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="instructrec-model")
        self._lock = threading.Lock()
        self._loops: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue, asyncio.Task]] = {}
        self.batches = 0  # batches run, and the requests in them (for /metrics and tests)
        self.requests = 0
        self.largest = 0

    async def submit(self, key: Any, item: Any) -> Any:
        """The result of ``item`` (its exception raised here) once its batch has run."""
        loop = asyncio.get_running_loop()
        queue = self._queue(loop)
        fut = loop.create_future()
        queue.put_nowait((key, item, fut))
        return await fut

    def _queue(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        with self._lock:
            entry = self._loops.get(id(loop))
            if entry is None or entry[0] is not loop or entry[2].done():
                queue: asyncio.Queue = asyncio.Queue()
                task = loop.create_task(self._work(queue))
                self._loops = {k: v for k, v in self._loops.items() if not v[0].is_closed()}
                self._loops[id(loop)] = entry = (loop, queue, task)
            return entry[1]

    async def _work(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            self._drain(queue, batch)
            if len(batch) < self.max_batch and self.window > 0:
                await asyncio.sleep(self.window)
                self._drain(queue, batch)
            groups: dict[int, list] = {}
            for entry in batch:
                groups.setdefault(id(entry[0]), []).append(entry)
            for entries in groups.values():
                live = [e for e in entries if not e[2].done()]  # a client may have left
                if not live:
                    continue
                self.batches += 1
                self.requests += len(live)
                self.largest = max(self.largest, len(live))
                try:
                    results = await loop.run_in_executor(
                        self._pool, self.run, live[0][0], [e[1] for e in live]
                    )
                    if len(results) != len(live):
                        raise RuntimeError(f"batch of {len(live)} gave {len(results)} results")
                except Exception as e:  # the run itself broke: every request of it fails
                    results = [e] * len(live)
                for (_, _, fut), res in zip(live, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(res, BaseException):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)

    def _drain(self, queue: asyncio.Queue, batch: list) -> None:
        while len(batch) < self.max_batch:
            try:
                batch.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    def close(self) -> None:
        """Stop the workers and the model thread (pending requests are cancelled)."""
        with self._lock:
            for loop, _, task in self._loops.values():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(task.cancel)
            self._loops = {}
        self._pool.shutdown(wait=False, cancel_futures=True)
