"""Crash durability: every feedback write the server acknowledged (2xx) survives a SIGKILL of
the server process (SQLite WAL with synchronous=FULL; PostgreSQL commits before the reply)."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def _hammer(
    base: str, key: str, request_id: str, item: str, acked: list, stop: threading.Event, tag: str
):
    n = 0
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=5.0) as c:
        while not stop.is_set():
            key = f"{tag}-{n}"
            n += 1
            try:
                r = c.post(
                    "/v1/feedback",
                    json={
                        "request_id": request_id,
                        "item_id": item,
                        "signal": "click",
                        "idempotency_key": key,
                    },
                )
            except httpx.HTTPError:
                return  # the server is gone
            if 200 <= r.status_code < 300:
                acked.append(key)


@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_acknowledged_feedback_survives_sigkill(store_url, small_run_dir, server, api_key):
    from instructrec.feedback.store import Store

    url = store_url
    proc, base = server(small_run_dir, url)
    try:
        rec = httpx.post(
            f"{base}/v1/recommendations",
            json={"user_id": "u1", "n": 5},
            headers={"X-API-Key": api_key},
        ).json()
        rid, item = rec["request_id"], rec["items"][0]["item_id"]
        acked: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hammer, args=(base, api_key, rid, item, acked, stop, f"t{i}"))
            for i in range(6)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: clients are still writing
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 60, "the clients did not get enough writes acknowledged"

    _, base2 = server(small_run_dir, url)  # restart on the same store
    store = Store(url)
    stored = store.feedback_keys()
    store.close()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:3]}"
    # a client retrying an acknowledged key after the crash gets the same row back
    r = httpx.post(
        f"{base2}/v1/feedback",
        headers={"X-API-Key": api_key},
        json={"request_id": rid, "item_id": item, "signal": "click", "idempotency_key": acked[0]},
    )
    assert r.status_code == 200 and r.json()["replayed"] is True
