"""The ASGI wrapper around the service: body-size limit (413), timing and counting of every
request (`metrics.Metrics`), and a logged 500 for anything unexpected (the only way a 500 can
appear)."""

from __future__ import annotations

import logging
import time

from .metrics import Metrics

log = logging.getLogger("instructrec.serving")


class Guard:
    """ASGI wrapper: refuses oversized bodies (413), times and counts every request, and
    turns an unexpected exception into a logged 500 (the only way a 500 can appear)."""

    def __init__(self, app, metrics: Metrics, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body
        self.state = app.state

    def __getattr__(self, name):  # routes, openapi(), dependency_overrides... of the inner app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            body_receive = await self._buffer(scope, receive)
            if body_receive is None:
                await _send_json(send, 413, f"request body larger than {self.max_body} bytes")
                status["code"] = 413
            else:
                await self.app(scope, body_receive, send_wrapper)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            status["code"] = 500
            raise
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                endpoint, scope.get("method", ""), status["code"], time.perf_counter() - t0
            )

    async def _buffer(self, scope, receive):
        """Read the whole body (up to the limit); None when it is too large."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return None
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return receive
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = {"done": False}

        async def replay():
            if not sent["done"]:
                sent["done"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


async def _send_json(send, status: int, message: str) -> None:
    import json

    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
