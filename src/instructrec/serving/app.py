"""The HTTP service: recommendations that follow an instruction, feedback that closes the loop.

    app = create_app(recommender, Store("sqlite:///feedback.db"), ServeSettings(api_key="k"))
    uvicorn.run(app)

Endpoints (OpenAPI at /docs): POST /v1/recommendations, POST /v1/feedback (idempotent by the
client's key), GET /v1/items, GET /v1/items/{item_id}, GET /v1/users, GET /v1/model,
POST /v1/admin/model (hot swap, `routes_admin`), GET /healthz, GET /metrics (Prometheus),
GET / (a small web page).

Every served request picks its instruction template by Thompson sampling
(`instructrec.feedback.bandit`) and is stored with what it showed, so feedback can be tied
to a request, an item, a template and a model version. Every error is a JSON body with a
one-line ``detail``, documented per endpoint in the OpenAPI (`errors`); POST endpoints need the
``X-API-Key`` header when a key is configured, the admin endpoint its own ``X-Admin-Key``.
"""

from __future__ import annotations

import hmac
import inspect
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from ..data.errors import DataError
from ..feedback.bandit import TemplateBandit, slot_of
from ..feedback.records import Conflict, NotFound
from ..feedback.store import Store
from ..rerank.batched import Request
from . import schemas as S
from .batcher import Batcher
from .docs import add_offline_docs
from .errors import HTTPError, install_handlers, responses
from .guard import Guard
from .metrics import Metrics
from .routes_admin import admin_router

log = logging.getLogger("instructrec.serving")
STATIC = Path(__file__).parent / "static"


class ServeSettings(BaseModel):
    """Service configuration (YAML-loadable; the CLI fills it from flags and env)."""

    api_key: str | None = Field(None, description="X-API-Key for POST endpoints; None: open")
    admin_key: str | None = Field(
        None, description="X-Admin-Key of POST /v1/admin/model; None: hot swaps disabled (403)"
    )
    max_body_bytes: int = Field(64 * 1024, description="larger request bodies get 413")
    model_version: str | None = Field(None, description="name of the initial model version")
    run_dir: str | None = Field(None, description="where the initial model was loaded from")
    model_root: str | None = Field(
        None, description="hot swaps only load run dirs under this; None: hot swaps disabled"
    )
    seed: int | None = Field(None, description="seed of the template bandit (None: random)")
    bandit_refresh_s: float = Field(1.0, description="re-read bandit counts at most this often")
    templates: dict[str, list[str]] = Field(
        default_factory=dict, description="slot -> template ids (default: catalogue)"
    )
    batch_window_ms: float = Field(
        2.0, ge=0, le=100, description="micro-batching window (`batcher`); 0: no batching"
    )
    max_batch: int = Field(32, ge=1, le=1024, description="requests per model pass at most")

    @model_validator(mode="after")
    def _keys_differ(self):
        if self.admin_key is not None and self.admin_key == self.api_key:
            raise ValueError("the admin key must differ from the client API key")
        if self.admin_key is not None and not self.admin_key:
            raise ValueError("the admin key must not be empty")
        return self


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


class Live:
    """The served version (replaced whole on a hot swap) and the lock serialising swaps."""

    def __init__(self, served: Served, metrics: Metrics) -> None:
        self._served, self.metrics, self.lock = served, metrics, threading.Lock()
        metrics.model_version = served.version

    @property
    def served(self) -> Served:
        return self._served

    @served.setter
    def served(self, value: Served) -> None:
        self._served = value
        self.metrics.model_version = value.version


def create_app(recommender: Any, store: Store, settings: ServeSettings | None = None):
    """The FastAPI application serving ``recommender`` and recording into ``store``."""
    from fastapi import FastAPI, Query, Security
    from fastapi.responses import FileResponse, PlainTextResponse
    from fastapi.security import APIKeyHeader
    from fastapi.staticfiles import StaticFiles

    settings = settings or ServeSettings()
    metrics = Metrics()
    bandit = TemplateBandit(
        store, settings.templates, seed=settings.seed, refresh_s=settings.bandit_refresh_s
    )
    bandit_lock = threading.Lock()
    version = settings.model_version or (Path(settings.run_dir).name if settings.run_dir else "v0")
    live = Live(_served(version, recommender, settings.run_dir), metrics)
    if settings.run_dir:
        store.register_model(version, settings.run_dir, activate=True)

    app = FastAPI(
        title="instructrec",
        version="1",
        description="Recommendation as instruction following, with feedback. Every error is "
        "a JSON object with a one-line `detail`.",
        docs_url=None,  # /docs, /redoc and /favicon.ico: served offline by serving.docs
        redoc_url=None,
    )
    add_offline_docs(app)
    app.state.store, app.state.metrics, app.state.settings = store, metrics, settings
    app.state.current = lambda: live.served
    install_handlers(app, getattr(store, "timeout", 5.0))

    # ---------------------------------------------------------------- auth
    scheme = APIKeyHeader(
        name="X-API-Key",
        scheme_name="ApiKey",
        auto_error=False,
        description="the server's --api-key (INSTRUCTREC_API_KEY)",
    )

    def require_key(key: str | None = Security(scheme)) -> None:
        if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            raise HTTPError(401, "missing or wrong X-API-Key header")

    keyed = settings.api_key is not None
    client_auth = [Security(require_key)] if keyed else []
    auth = (401,) if keyed else ()

    # ---------------------------------------------------------------- endpoints
    def begin(body: S.RecommendationRequest):
        """The version, history, slot and template a request is served with (404s here)."""
        served: Served = live.served  # the version this request finishes on
        history = _history(served.recommender, body.user_id, body.history, body.candidates)
        has_history = history is not None and len(history) > 0
        if body.user_id is not None and body.history is None:
            has_history = True
        slot = slot_of(has_history, body.instruction)
        with bandit_lock:
            template_id = bandit.choose(slot)
            tmpl = bandit.renderable(slot, template_id)
        return served, history, slot, template_id, tmpl

    def finish(body, served: Served, slot, template_id, result) -> S.RecommendationResponse:
        """Record what a request showed; its response (``result``: an Answer or a frame)."""
        items, fields = S.answer_out(result)
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
            request_id=rid,
            items=items,
            template_id=template_id,
            model_version=served.version,
            **fields,
        )

    route = app.post(
        "/v1/recommendations",
        response_model=S.RecommendationResponse,
        dependencies=client_auth,
        responses=responses(*auth, 404, 413, 422, 503),
    )
    batching = settings.batch_window_ms > 0 and settings.max_batch > 1
    batcher = Batcher(answer_batch, settings.batch_window_ms, settings.max_batch)
    app.state.batcher = batcher if batching else None

    if batching:

        @route
        async def recommendations(body: S.RecommendationRequest) -> S.RecommendationResponse:
            """Top-``n`` items for a user or a history, following the instruction if given.
            Unknown user or item ids are 404."""
            from starlette.concurrency import run_in_threadpool

            served, history, slot, template_id, tmpl = await run_in_threadpool(begin, body)
            req = Request(body.user_id, body.instruction, body.n, body.candidates, history)
            req.template = tmpl or None
            result = await batcher.submit(served.recommender, req)
            return await run_in_threadpool(finish, body, served, slot, template_id, result)

    else:

        @route
        def recommendations(body: S.RecommendationRequest) -> S.RecommendationResponse:
            """Top-``n`` items for a user or a history, following the instruction if given.
            Unknown user or item ids are 404."""
            served, history, slot, template_id, tmpl = begin(body)
            req = Request(body.user_id, body.instruction, body.n, body.candidates, history)
            req.template = tmpl or None
            result = recommend_one(served.recommender, req)  # the unbatched path, as before
            return finish(body, served, slot, template_id, result)

    @app.post(
        "/v1/feedback",
        response_model=S.FeedbackResponse,
        dependencies=client_auth,
        responses=responses(*auth, 404, 409, 413, 422, 503),
    )
    def feedback(body: S.FeedbackRequest) -> S.FeedbackResponse:
        """Feedback on an item a request showed (404 otherwise); idempotent by the client's
        key, and a reused key with any field different is 409."""
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

    @app.get("/v1/items", response_model=S.ItemsResponse, responses=responses(422))
    def items(query: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=100)):
        """Items whose title contains ``query`` (case-insensitive)."""
        served: Served = live.served
        q = query.strip().lower()
        ds = served.recommender.dataset
        hits = [j for j, t in enumerate(served.titles_lower) if q in t][:limit]
        ids, titles = ds.item_ids, ds.titles
        return S.ItemsResponse(
            items=[S.ItemSummary(item_id=str(ids[j]), title=str(titles[j])) for j in hits]
        )

    @app.get("/v1/items/{item_id}", response_model=S.ItemSummary, responses=responses(404, 422))
    def item(item_id: str):
        """One item by its raw id (404 when unknown)."""
        ds = live.served.recommender.dataset
        j = _known(ds.item_index, [item_id])[0]
        return S.ItemSummary(item_id=str(ds.item_ids[j]), title=str(ds.titles[j]))

    @app.get("/v1/users", response_model=S.UsersResponse, responses=responses(422))
    def users(prefix: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=100)):
        """Raw user ids starting with ``prefix``."""
        ids = live.served.recommender.dataset.user_ids
        return S.UsersResponse(users=[str(u) for u in ids if str(u).startswith(prefix)][:limit])

    @app.get("/v1/model", response_model=S.ModelInfo)
    def model():
        """The served model version and its data set (never a server path)."""
        ds = live.served.recommender.dataset
        return S.ModelInfo(version=live.served.version, dataset=ds.name, items=ds.n_items)

    app.include_router(admin_router(settings, store, live, _served))

    @app.get("/healthz", response_model=S.Health)
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

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus():
        """Prometheus metrics (text format 0.0.4)."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return Guard(app, metrics, settings.max_body_bytes)


def _known(lookup, ids: list[str]):
    """``lookup(ids)`` (a dataset's user_index / item_index); unknown ids are a 404."""
    try:
        return lookup(ids)
    except DataError as e:
        raise HTTPError(404, str(e)) from e


def _history(rec: Any, user: str | None, history: list[str] | None, candidates) -> list | None:
    """The history a request is served on: ``history`` alone, or appended to the stored one
    of ``user`` when both are given (the documented rule). Unknown ids are 404."""
    ds = rec.dataset
    if user is not None:
        _known(ds.user_index, [user])
    if history:
        _known(ds.item_index, history)
    if candidates:
        _known(ds.item_index, candidates)
    if user is None or history is None or not hasattr(rec, "history_of"):
        return history
    _, stored = rec.history_of(user)
    return [*(str(i) for i in ds.item_ids[stored]), *history]


def answer_batch(rec: Any, requests: list[Request]) -> list:
    """Per request its `Answer` (a frame for a recommender without ``answer_many``) or the
    exception it raised: the batched path (`rerank.batched`) when the recommender has it."""
    if hasattr(rec, "answer_many"):
        return rec.answer_many(requests)
    out: list = []
    for r in requests:
        try:
            out.append(recommend_one(rec, r))
        except Exception as e:
            out.append(e)
    return out


def recommend_one(rec: Any, r: Request):
    """``rec.recommend`` of one request (a frame)."""
    kwargs = {"template": r.template} if r.template and _accepts(rec.recommend, "template") else {}
    return rec.recommend(
        user=r.user,
        instruction=r.instruction,
        n=r.n,
        candidates=r.candidates,
        history=r.history,
        **kwargs,
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
