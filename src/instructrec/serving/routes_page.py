"""GET /: the small web page (``static/index.html``), and its files under /static."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"


def page_router() -> Any:
    """The page `APIRouter` (the /static files are mounted by `add_static`)."""
    from fastapi import APIRouter
    from fastapi.responses import FileResponse

    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return router


def add_static(app: Any) -> None:
    """Mount the page's files at /static (a mount belongs to the app, not to a router)."""
    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
