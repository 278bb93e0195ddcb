"""Errors of the HTTP API: one JSON shape for all of them, and their OpenAPI documentation.

Every error is ``{"detail": "<one line>"}`` (`schemas.ErrorBody`); a 422 adds ``errors`` (one
entry per schema violation), a 503 adds ``retry_after`` and sends ``Retry-After``. The
``responses(...)`` helper documents, per endpoint, exactly the statuses it can answer with, so
the published schema and the server agree (checked by schemathesis, tests/serving/test_fuzz.py).

    400 never (malformed JSON is a 422 like any other schema violation)
    401 missing or wrong X-API-Key          403 admin disabled, wrong X-Admin-Key, outside root
    404 unknown user/item/request/run folder 409 an idempotency key or version reused differently
    413 body over --max-body-bytes           422 schema violation, unloadable run folder
    503 the feedback store is down or locked past --db-timeout (nothing was stored)
"""

from __future__ import annotations

import logging
import math

from ..data.errors import DataError
from ..feedback.database import unavailable_errors
from . import schemas as S

log = logging.getLogger("instructrec.serving")

DESCRIPTIONS = {
    401: "missing or wrong API key",
    403: "forbidden (admin endpoint disabled, wrong admin key, or a path outside the root)",
    404: "an id or run folder that does not exist",
    409: "an idempotency key (or version name) reused with a different payload",
    413: "request body larger than the server's limit",
    422: "the request breaks the schema, or names a run folder that cannot be loaded",
    503: "the feedback store is unreachable or locked; nothing was stored, retry later",
}
MODELS = {422: S.ValidationErrorBody, 503: S.UnavailableBody}


class HTTPError(Exception):
    """An error answer: ``status`` with ``{"detail": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def known(lookup, ids: list[str]):
    """``lookup(ids)`` (a dataset's user_index / item_index); unknown ids are a 404."""
    try:
        return lookup(ids)
    except DataError as e:
        raise HTTPError(404, str(e)) from e


def responses(*codes: int) -> dict:
    """FastAPI ``responses=`` for these error statuses (their JSON models and headers)."""
    out: dict = {}
    for code in codes:
        entry: dict = {"model": MODELS.get(code, S.ErrorBody), "description": DESCRIPTIONS[code]}
        if code == 503:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        out[code] = entry
    return out


def install_handlers(app, retry_after_s: float) -> None:
    """Register the JSON error handlers on a FastAPI ``app``."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    retry_after = max(1, math.ceil(retry_after_s))

    @app.exception_handler(HTTPError)
    async def _http_error(_req, exc: HTTPError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, exc: RequestValidationError):
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": message, "errors": errors}, status_code=422)

    @app.exception_handler(DataError)
    async def _data_error(_req, exc: DataError):
        return JSONResponse({"detail": str(exc), "errors": []}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_req, exc: StarletteHTTPException):  # 404 route, 405 (with Allow)
        if exc.status_code == 400:  # FastAPI: a body it cannot decode (not UTF-8): a 422
            error = {"loc": ["body"], "msg": str(exc.detail), "type": "body_undecodable"}
            return JSONResponse(
                {"detail": f"body: {exc.detail} (send UTF-8 JSON)", "errors": [error]},
                status_code=422,
            )
        return JSONResponse(
            {"detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _unavailable(req, exc: Exception):
        log.warning("feedback store unavailable on %s: %s", req.url.path, _one_line(exc))
        app.state.metrics.count_unavailable()
        return JSONResponse(
            {
                "detail": f"feedback store unavailable ({_one_line(exc)}); retry later",
                "retry_after": retry_after,
            },
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    for cls in unavailable_errors():
        app.add_exception_handler(cls, _unavailable)


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message, without SQLAlchemy's appended SQL."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
