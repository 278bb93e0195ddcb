"""POST /v1/feedback: feedback on an item a request showed, idempotent by the client's key."""

from __future__ import annotations

from typing import Any

from ..feedback.records import Conflict, NotFound
from . import schemas as S
from .errors import HTTPError, responses


def feedback_router(store: Any, metrics: Any, client_auth, auth) -> Any:
    """The feedback `APIRouter` (``client_auth``: the route's key dependencies, ``auth``:
    its documented auth codes); new feedback is counted in ``metrics``."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.post(
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

    return router
