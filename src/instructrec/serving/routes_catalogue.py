"""What is served: GET /v1/items (title search), /v1/items/{item_id}, /v1/users and
/v1/model (the served version and its data set, never a server path)."""

from __future__ import annotations

from typing import Any

from . import schemas as S
from .errors import known, responses


def catalogue_router(live: Any) -> Any:
    """The catalogue `APIRouter`; ``live.served`` is the served version."""
    from fastapi import APIRouter, Query

    router = APIRouter()

    @router.get("/v1/items", response_model=S.ItemsResponse, responses=responses(422))
    def items(query: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=100)):
        """Items whose title contains ``query`` (case-insensitive)."""
        served = live.served
        q = query.strip().lower()
        ds = served.recommender.dataset
        hits = [j for j, t in enumerate(served.titles_lower) if q in t][:limit]
        ids, titles = ds.item_ids, ds.titles
        return S.ItemsResponse(
            items=[S.ItemSummary(item_id=str(ids[j]), title=str(titles[j])) for j in hits]
        )

    @router.get("/v1/items/{item_id}", response_model=S.ItemSummary, responses=responses(404, 422))
    def item(item_id: str):
        """One item by its raw id (404 when unknown)."""
        ds = live.served.recommender.dataset
        j = known(ds.item_index, [item_id])[0]
        return S.ItemSummary(item_id=str(ds.item_ids[j]), title=str(ds.titles[j]))

    @router.get("/v1/users", response_model=S.UsersResponse, responses=responses(422))
    def users(prefix: str = Query("", max_length=200), limit: int = Query(20, ge=1, le=100)):
        """Raw user ids starting with ``prefix``."""
        ids = live.served.recommender.dataset.user_ids
        return S.UsersResponse(users=[str(u) for u in ids if str(u).startswith(prefix)][:limit])

    @router.get("/v1/model", response_model=S.ModelInfo)
    def model():
        """The served model version and its data set (never a server path)."""
        ds = live.served.recommender.dataset
        return S.ModelInfo(version=live.served.version, dataset=ds.name, items=ds.n_items)

    return router
