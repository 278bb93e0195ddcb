"""POST /v1/recommendations: top-``n`` items for a user or a history, following an instruction.

Each request picks its instruction template by Thompson sampling (`feedback.bandit`), is
answered by the served version (micro-batched with its neighbours when the service batches,
`batcher` and `rerank.batched`), and is recorded in the store with what it showed, so
feedback can be tied to a request, an item, a template and a model version. Unknown user or
item ids are 404.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from ..feedback.bandit import TemplateBandit, slot_of
from ..rerank.batched import Request
from . import schemas as S
from .batcher import Batcher
from .errors import known, responses


def recommendations_router(
    live: Any, store: Any, bandit: TemplateBandit, batcher: Batcher | None, client_auth, auth
) -> Any:
    """The recommendations `APIRouter`. ``live.served`` is the served version; ``batcher``:
    the micro-batcher (None: each request is answered alone); ``client_auth``: the route's
    key dependencies, ``auth``: its documented auth codes."""
    from fastapi import APIRouter

    router = APIRouter()
    bandit_lock = threading.Lock()

    def begin(body: S.RecommendationRequest):
        """The version, history, slot and template a request is served with (404s here)."""
        served = live.served  # the version this request finishes on
        history = _history(served.recommender, body.user_id, body.history, body.candidates)
        has_history = history is not None and len(history) > 0
        if body.user_id is not None and body.history is None:
            has_history = True
        slot = slot_of(has_history, body.instruction)
        with bandit_lock:
            template_id = bandit.choose(slot)
            tmpl = bandit.renderable(slot, template_id)
        return served, history, slot, template_id, tmpl

    def finish(body, served, slot, template_id, result) -> S.RecommendationResponse:
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

    route = router.post(
        "/v1/recommendations",
        response_model=S.RecommendationResponse,
        dependencies=client_auth,
        responses=responses(*auth, 404, 413, 422, 503),
    )

    if batcher is not None:

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
            result = recommend_one(served.recommender, req)  # the unbatched path
            return finish(body, served, slot, template_id, result)

    return router


def _history(rec: Any, user: str | None, history: list[str] | None, candidates) -> list | None:
    """The history a request is served on: ``history`` alone, or appended to the stored one
    of ``user`` when both are given (the documented rule). Unknown ids are 404."""
    ds = rec.dataset
    if user is not None:
        known(ds.user_index, [user])
    if history:
        known(ds.item_index, history)
    if candidates:
        known(ds.item_index, candidates)
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


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
