"""`instructrec recommend --server URL`: ask a running `instructrec serve` instead of loading
the model, so a command-line answer costs an HTTP round trip, not a model load (the service
keeps the model in memory). Standard library only: this path imports neither torch nor pandas.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from types import SimpleNamespace

from instructrec.data.errors import DataError


def ask(
    server: str, body: dict, api_key: str | None = None, timeout: float = 30.0
) -> SimpleNamespace:
    """POST ``body`` to ``server``/v1/recommendations; the response as attributes (the shape
    `format_answer` reads). A 4xx is a `DataError` with the service's own message."""
    url = server.rstrip("/") + "/v1/recommendations"
    if not url.startswith(("http://", "https://")):
        raise DataError(f"--server {server!r}: give an http:// or https:// address")
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: {e.code} {_detail(e)}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"{url}: cannot reach the service ({reason})") from None
    items = [SimpleNamespace(**{"genres": [], "attributes": {}, **it}) for it in data["items"]]
    return SimpleNamespace(
        items=items,
        understood=data.get("understood"),
        n_matching=data.get("n_matching"),
        message=data.get("message"),
        request_id=data.get("request_id"),
        raw=data,
    )


def _detail(e) -> str:
    try:
        detail = json.loads(e.read()).get("detail")
    except (ValueError, AttributeError, OSError):
        return str(e.reason)
    if isinstance(detail, list):  # a 422: pydantic's list of problems
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)
