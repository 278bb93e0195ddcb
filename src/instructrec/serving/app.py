"""The HTTP service: recommendations that follow an instruction, feedback that closes the loop.

    app = create_app(recommender, Store("sqlite:///feedback.db"), ServeSettings(api_key="k"))
    uvicorn.run(app)

Endpoints (OpenAPI at /docs): POST /v1/recommendations, POST /v1/feedback (idempotent by the
client's key), GET /v1/items, GET /v1/users, GET /v1/model, POST /v1/admin/model (hot swap),
GET /healthz, GET /metrics (Prometheus), GET / (a small web page).

Every served request picks its instruction template by Thompson sampling
(`instructrec.feedback.bandit`) and is stored with what it showed, so feedback can be tied
to a request, an item, a template and a model version. Malformed input of any kind is a 4xx
with a message; POST endpoints need the ``X-API-Key`` header when a key is configured.
"""

from __future__ import annotations

import hmac
import inspect
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..data.errors import DataError
from ..feedback.bandit import TemplateBandit, slot_of
from ..feedback.store import Conflict, NotFound, Store
from . import schemas as S
from .docs import add_offline_docs
from .metrics import Metrics

log = logging.getLogger("instructrec.serving")
STATIC = Path(__file__).parent / "static"


class ServeSettings(BaseModel):
    """Service configuration (YAML-loadable; the CLI fills it from flags and env)."""

    api_key: str | None = Field(None, description="X-API-Key for POST endpoints; None: open")
    max_body_bytes: int = Field(64 * 1024, description="larger request bodies get 413")
    model_version: str | None = Field(None, description="name of the initial model version")
    run_dir: str | None = Field(None, description="where the initial model was loaded from")
    model_root: str | None = Field(None, description="hot swaps only load run dirs under this")
    seed: int | None = Field(None, description="seed of the template bandit (None: random)")
    bandit_refresh_s: float = Field(1.0, description="re-read bandit counts at most this often")
    templates: dict[str, list[str]] = Field(
        default_factory=dict, description="slot -> template ids (default: catalogue)"
    )


@dataclass(frozen=True)
class Served:
    """One model version: swapped as a whole, so a request sees one consistent version."""

    version: str
    recommender: Any
    run_dir: str | None
    titles_lower: Any  # lower-cased titles for /v1/items search


def _served(version: str, rec: Any, run_dir: str | None) -> Served:
    titles = [str(t).lower() for t in rec.dataset.titles]
    return Served(version, rec, run_dir, titles)


def create_app(recommender: Any, store: Store, settings: ServeSettings | None = None):
    """The FastAPI application serving ``recommender`` and recording into ``store``."""
    from fastapi import Depends, FastAPI, Header, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    settings = settings or ServeSettings()
    metrics = Metrics()
    bandit = TemplateBandit(
        store, settings.templates, seed=settings.seed, refresh_s=settings.bandit_refresh_s
    )
    bandit_lock = threading.Lock()
    version = settings.model_version or (Path(settings.run_dir).name if settings.run_dir else "v0")
    state = {"served": _served(version, recommender, settings.run_dir)}
    swap_lock = threading.Lock()
    metrics.model_version = version
    if settings.run_dir:
        store.register_model(version, settings.run_dir, activate=True)

    app = FastAPI(
        title="instructrec",
        version="1",
        description="Recommendation as instruction following, with feedback.",
        docs_url=None,  # /docs, /redoc and /favicon.ico: served offline by serving.docs
        redoc_url=None,
    )
    add_offline_docs(app)
    app.state.store, app.state.metrics, app.state.settings = store, metrics, settings
    app.state.current = lambda: state["served"]

    class HTTPError(Exception):
        def __init__(self, status: int, message: str) -> None:
            self.status, self.message = status, message

    # ---------------------------------------------------------------- errors: 4xx with a message
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
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_req, exc: StarletteHTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    # ---------------------------------------------------------------- auth
    def require_key(x_api_key: str | None = Header(None, max_length=512)) -> None:
        if settings.api_key is None:
            return
        if x_api_key is None or not hmac.compare_digest(
            x_api_key.encode(), settings.api_key.encode()
        ):
            raise HTTPError(401, "missing or wrong X-API-Key header")

    # ---------------------------------------------------------------- endpoints
    @app.post(
        "/v1/recommendations",
        response_model=S.RecommendationResponse,
        dependencies=[Depends(require_key)],
    )
    def recommendations(body: S.RecommendationRequest) -> S.RecommendationResponse:
        served: Served = state["served"]  # the version this request finishes on
        rec = served.recommender
        has_history = body.history is not None and len(body.history) > 0
        if body.user_id is not None and body.history is None:
            has_history = True
        slot = slot_of(has_history, body.instruction)
        with bandit_lock:
            template_id = bandit.choose(slot)
            tmpl = bandit.renderable(slot, template_id)
        kwargs = {"template": tmpl} if tmpl and _accepts(rec.recommend, "template") else {}
        frame = rec.recommend(
            user=body.user_id,
            instruction=body.instruction,
            n=body.n,
            candidates=body.candidates,
            history=body.history,
            **kwargs,
        )
        items = [
            S.ItemOut(item_id=str(i), title=str(t), score=float(s), rank=int(r))
            for i, t, s, r in zip(
                frame["item_id"], frame["title"], frame["score"], frame["rank"], strict=True
            )
        ]
        rid = store.record_request(
            body.user_id,
            body.history,
            body.instruction,
            body.n,
            [(it.item_id, it.rank, it.score) for it in items],
            slot=slot,
            template_id=template_id,
            model_version=served.version,
        )
        return S.RecommendationResponse(
            request_id=rid, items=items, template_id=template_id, model_version=served.version
        )

    @app.post(
        "/v1/feedback", response_model=S.FeedbackResponse, dependencies=[Depends(require_key)]
    )
    def feedback(body: S.FeedbackRequest) -> S.FeedbackResponse:
        try:
            fb = store.add_feedback(
                body.request_id,
                body.item_id,
                body.signal,
                body.idempotency_key,
                rating=body.rating,
                text=body.text,
            )
        except NotFound as e:
            raise HTTPError(404, str(e)) from e
        except Conflict as e:
            raise HTTPError(409, str(e)) from e
        if fb.created:
            metrics.count_feedback(fb.signal)
        return S.FeedbackResponse(
            feedback_id=fb.id,
            request_id=fb.request_id,
            item_id=fb.item_id,
            signal=fb.signal,
            rating=fb.rating,
            reward=fb.reward,
            replayed=not fb.created,
        )

    @app.get("/v1/items", response_model=S.ItemsResponse)
    def items(query: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=100)):
        served: Served = state["served"]
        q = query.strip().lower()
        ds = served.recommender.dataset
        hits = [j for j, t in enumerate(served.titles_lower) if q in t][:limit]
        ids, titles = ds.item_ids, ds.titles
        return S.ItemsResponse(
            items=[S.ItemSummary(item_id=str(ids[j]), title=str(titles[j])) for j in hits]
        )

    @app.get("/v1/items/{item_id}", response_model=S.ItemSummary)
    def item(item_id: str):
        ds = state["served"].recommender.dataset
        j = int(ds.item_index([item_id])[0])  # DataError (422) when unknown
        return S.ItemSummary(item_id=str(ds.item_ids[j]), title=str(ds.titles[j]))

    @app.get("/v1/users", response_model=S.UsersResponse)
    def users(prefix: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=100)):
        ids = state["served"].recommender.dataset.user_ids
        return S.UsersResponse(users=[str(u) for u in ids if str(u).startswith(prefix)][:limit])

    @app.get("/v1/model", response_model=S.ModelInfo)
    def model():
        served: Served = state["served"]
        ds = served.recommender.dataset
        return S.ModelInfo(
            version=served.version, run_dir=served.run_dir, dataset=ds.name, items=ds.n_items
        )

    @app.post("/v1/admin/model", response_model=S.ModelInfo, dependencies=[Depends(require_key)])
    def swap_model(body: S.ModelSwapRequest):
        from ..recommender import Recommender

        run_dir = Path(body.run_dir).resolve()
        if settings.model_root is not None:
            root = Path(settings.model_root).resolve()
            if root not in (run_dir, *run_dir.parents):
                raise HTTPError(403, f"run_dir must lie under {root}")
        if not run_dir.is_dir():
            raise HTTPError(422, f"run_dir {str(run_dir)!r} is not a directory")
        with swap_lock:  # one load at a time; requests keep being served meanwhile
            new = Recommender.load(run_dir)  # DataError -> 422
            name = (
                body.version
                or store.version_of(str(run_dir))
                or f"{run_dir.name}-{int(time.time())}"
            )
            old: Served = state["served"]
            state["served"] = _served(name, new, str(run_dir))  # atomic reference swap
            metrics.model_version = name
            store.register_model(name, str(run_dir), parent=old.version, activate=True)
        log.info("model swapped: %s -> %s", old.version, name)
        return S.ModelInfo(version=name, run_dir=str(run_dir))

    @app.get("/healthz", response_model=S.Health)
    def healthz():
        try:
            db = store.ping()
        except Exception:  # the database is down: say so, do not fail the probe with a 500
            db = False
        return S.Health(
            status="ok" if db else "degraded", model_version=state["served"].version, database=db
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return _Guard(app, metrics, settings.max_body_bytes)


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class _Guard:
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
