"""`instructrec serve` in a subprocess, for tests and benchmarks that talk HTTP to a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(args: list[str], timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start `instructrec serve ARGS --port P` (P a free port) and wait until /healthz answers
    200; returns (process, base URL). A server that exits or stays unhealthy past ``timeout``
    seconds is a `RuntimeError` carrying the end of its stderr."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-c", "from instructrec.cli import main; main()", "serve"]
    proc = subprocess.Popen(
        [*cmd, *args, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in time")
