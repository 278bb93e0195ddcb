"""GET /healthz (always 200; ``degraded`` when the feedback store fails) and GET /metrics
(Prometheus text format)."""

from __future__ import annotations

from typing import Any

from . import schemas as S


def health_router(store: Any, live: Any, metrics: Any) -> Any:
    """The health `APIRouter`: the store's state, the served version, the metrics."""
    from fastapi import APIRouter
    from fastapi.responses import PlainTextResponse

    router = APIRouter()

    @router.get("/healthz", response_model=S.Health)
    def healthz():
        """Always 200: ``degraded`` (with ``detail``) when the feedback store cannot be read
        or written within its timeout."""
        detail = None
        try:
            db = store.ping(write=True)
        except Exception as e:  # the database is down or locked: say so, never a 500
            db, detail = False, _first_line(e)
        return S.Health(
            status="ok" if db else "degraded",
            model_version=live.served.version,
            database=db,
            detail=detail,
        )

    @router.get("/metrics", response_class=PlainTextResponse)
    def prometheus():
        """Prometheus metrics (text format 0.0.4)."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return router


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
