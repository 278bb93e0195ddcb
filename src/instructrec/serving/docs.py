"""The API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) and the favicon, served offline.

FastAPI's default docs pages load Swagger UI from a CDN, so ``/docs`` is blank without network.
Here the assets come from the pinned ``fastapi-offline`` package (Swagger UI and ReDoc bundles,
installed with ``instructrec[serve]``) and are served by the app itself under
``/static-docs``. Without that package ``/docs`` says how to install it and links the raw
OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

FAVICON = Path(__file__).parent / "static" / "favicon.ico"
ASSETS_URL = "/static-docs"


def docs_assets() -> Path | None:
    """The folder holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
    ``redoc.standalone.js`` (from ``fastapi-offline``), or None when it is not installed."""
    try:
        import importlib.resources as resources

        folder = Path(str(resources.files("fastapi_offline") / "static"))
    except (ImportError, ModuleNotFoundError, TypeError):
        return None
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_offline_docs(app) -> None:
    """Add ``/docs``, ``/redoc``, ``/favicon.ico`` and the docs assets to a FastAPI ``app``
    created with ``docs_url=None, redoc_url=None``."""
    from fastapi.openapi.docs import (
        get_redoc_html,
        get_swagger_ui_html,
        get_swagger_ui_oauth2_redirect_html,
    )
    from fastapi.responses import FileResponse, HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = docs_assets()
    title = f"{app.title} API"

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return FileResponse(FAVICON, media_type="image/x-icon")

    if assets is None:

        @app.get("/docs", include_in_schema=False)
        def docs_missing():
            return HTMLResponse(
                "<!doctype html><title>instructrec API</title><p>The offline API docs need the "
                "<code>fastapi-offline</code> package: <code>pip install "
                "'instructrec[serve]'</code>. The OpenAPI document is at "
                f'<a href="{app.openapi_url}">{app.openapi_url}</a>.</p>'
            )

        return

    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    def swagger():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=title,
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
        )

    if app.swagger_ui_oauth2_redirect_url:

        @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
        def swagger_redirect():
            return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc():
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url="/favicon.ico",
            with_google_fonts=False,
        )
