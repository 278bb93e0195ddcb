"""The HTTP service: recommendations that follow an instruction, feedback that closes the loop.

    app = create_app(recommender, Store("sqlite:///feedback.db"), ServeSettings(api_key="k"))
    uvicorn.run(app)

Endpoints (OpenAPI at /docs), one router per concern:

    POST /v1/recommendations                              `routes_recommend`
    POST /v1/feedback (idempotent by the client's key)    `routes_feedback`
    GET  /v1/items, /v1/items/{item_id}, /v1/users,
         /v1/model                                        `routes_catalogue`
    POST /v1/admin/model (hot swap)                       `routes_admin`
    GET  /healthz, /metrics (Prometheus)                  `routes_health`
    GET  / (a small web page), /static                    `routes_page`

Every served request picks its instruction template by Thompson sampling
(`instructrec.feedback.bandit`) and is stored with what it showed, so feedback can be tied
to a request, an item, a template and a model version. Every error is a JSON body with a
one-line ``detail``, documented per endpoint in the OpenAPI (`errors`); POST endpoints need the
``X-API-Key`` header when a key is configured, the admin endpoint its own ``X-Admin-Key``.
"""

from __future__ import annotations

import hmac
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from ..feedback.bandit import TemplateBandit
from ..feedback.store import Store
from .batcher import Batcher
from .docs import add_offline_docs
from .errors import HTTPError, install_handlers
from .guard import Guard
from .metrics import Metrics
from .routes_admin import admin_router
from .routes_catalogue import catalogue_router
from .routes_feedback import feedback_router
from .routes_health import health_router
from .routes_page import add_static, page_router
from .routes_recommend import answer_batch, recommendations_router

log = logging.getLogger("instructrec.serving")


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
    """The FastAPI application serving ``recommender`` and recording into ``store``: one
    router per concern (recommendations, feedback, catalogue, admin, health, page)."""
    from fastapi import FastAPI

    settings = settings or ServeSettings()
    metrics = Metrics()
    bandit = TemplateBandit(
        store, settings.templates, seed=settings.seed, refresh_s=settings.bandit_refresh_s
    )
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

    client_auth, auth = _client_auth(settings)
    batching = settings.batch_window_ms > 0 and settings.max_batch > 1
    batcher = Batcher(answer_batch, settings.batch_window_ms, settings.max_batch)
    app.state.batcher = batcher if batching else None  # None: each request answered alone

    app.include_router(
        recommendations_router(live, store, bandit, app.state.batcher, client_auth, auth)
    )
    app.include_router(feedback_router(store, metrics, client_auth, auth))
    app.include_router(catalogue_router(live))
    app.include_router(admin_router(settings, store, live, _served))
    app.include_router(health_router(store, live, metrics))
    app.include_router(page_router())
    add_static(app)
    return Guard(app, metrics, settings.max_body_bytes)


def _client_auth(settings: ServeSettings) -> tuple[list, tuple]:
    """The dependencies that check ``X-API-Key`` on the client's POST endpoints, and the
    auth status they document: none of either when no key is configured."""
    from fastapi import Security
    from fastapi.security import APIKeyHeader

    if settings.api_key is None:
        return [], ()
    scheme = APIKeyHeader(
        name="X-API-Key",
        scheme_name="ApiKey",
        auto_error=False,
        description="the server's --api-key (INSTRUCTREC_API_KEY)",
    )

    def require_key(key: str | None = Security(scheme)) -> None:
        if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            raise HTTPError(401, "missing or wrong X-API-Key header")

    return [Security(require_key)], (401,)
