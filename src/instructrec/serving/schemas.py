"""Request and response bodies of the HTTP API (pydantic v2; they generate the OpenAPI at /docs).

Limits are part of the schema so that a request that breaks one gets a 422 naming the field.
Item and user ids are the raw ids of the dataset (strings; integers are accepted and turned
into strings).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_INSTRUCTION_CHARS = 2000  # a paragraph; longer text is refused with 422
MAX_HISTORY = 200  # items of explicit history
MAX_CANDIDATES = 1000  # items of an explicit candidate list
MAX_N = 100  # items per response
MAX_TEXT_CHARS = 2000  # free-text feedback
MAX_ID_CHARS = 200  # any id

RawId = str | int


def _ids(v: list[RawId] | None) -> list[str] | None:
    if v is None:
        return None
    out = [str(x) for x in v]
    if any(not x or len(x) > MAX_ID_CHARS for x in out):
        raise ValueError(f"ids must be non-empty strings of at most {MAX_ID_CHARS} characters")
    return out


def _has_nul(v) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    if isinstance(v, list | tuple):
        return any(_has_nul(x) for x in v)
    return False


class Strict(BaseModel):
    """Request bodies: unknown fields and NUL characters (which PostgreSQL text and file
    paths refuse) are errors."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data):
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


class RecommendationRequest(Strict):
    """Give ``user_id`` (known to the model) or ``history`` (raw item ids, oldest first)."""

    user_id: RawId | None = Field(None, description="raw user id known to the model")
    history: list[RawId] | None = Field(
        None, max_length=MAX_HISTORY, description="raw item ids, oldest first"
    )
    instruction: str | None = Field(
        None, max_length=MAX_INSTRUCTION_CHARS, description="what the user asks for, in their words"
    )
    n: int = Field(10, ge=1, le=MAX_N, description="number of items to return")
    candidates: list[RawId] | None = Field(
        None, min_length=1, max_length=MAX_CANDIDATES, description="rank only these raw item ids"
    )

    @field_validator("user_id", mode="after")
    @classmethod
    def _user(cls, v):
        if v is None:
            return None
        v = str(v)
        if not v or len(v) > MAX_ID_CHARS:
            raise ValueError(f"user_id must be 1..{MAX_ID_CHARS} characters")
        return v

    @field_validator("history", "candidates", mode="after")
    @classmethod
    def _list(cls, v):
        return _ids(v)

    @field_validator("instruction", mode="after")
    @classmethod
    def _instr(cls, v):
        return v or None

    @model_validator(mode="after")
    def _who(self):
        if self.user_id is None and self.history is None and self.instruction is None:
            raise ValueError("give user_id, history or instruction (a new visitor's request)")
        return self


class ItemOut(BaseModel):
    item_id: str
    title: str = Field(description="readable title, with the year when known")
    score: float = Field(
        description="calibrated, in [0, 1]: the probability that the model prefers this item "
        "to another candidate it considered for the request (rerank/explain.py)"
    )
    rank: int
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(
        default_factory=dict, description="other item attributes: category, brand, price"
    )
    reason: str | None = Field(None, description='why it is here: "matches Comedy; similar to X"')
    raw_score: float | None = Field(None, description="the model's own score (not calibrated)")


class RecommendationResponse(BaseModel):
    request_id: str
    items: list[ItemOut]
    template_id: str | None
    model_version: str | None
    understood: str | None = Field(
        None, description='what the instruction was read as ("Comedy, 1990s, not Horror")'
    )
    n_matching: int | None = Field(None, description="unseen items matching the instruction")
    message: str | None = Field(None, description="e.g. fewer items match than were asked for")


def items_out(frame) -> list[ItemOut]:
    """`ItemOut` rows of a `Recommender.recommend` frame (explanation columns when present)."""
    import numpy as np
    import pandas as pd

    out = []
    for row in frame.to_dict("records"):
        year = row.get("year")
        genres = row.get("genres")
        raw = row.get("raw_score")
        out.append(
            ItemOut(
                item_id=str(row["item_id"]),
                title=str(row["title"]),
                score=float(row["score"]),
                rank=int(row["rank"]),
                year=None if year is None or pd.isna(year) else int(year),
                genres=[g for g in str(genres).split(", ") if g] if isinstance(genres, str) else [],
                attributes=dict(row.get("attributes") or {}),
                reason=row.get("reason") or None,
                raw_score=None if raw is None or not np.isfinite(raw) else float(raw),
            )
        )
    return out


def answer_fields(frame) -> dict:
    """The request-level explanation a `Recommender.recommend` frame carries in ``attrs``."""
    attrs = getattr(frame, "attrs", {}) or {}
    return {k: attrs.get(k) for k in ("understood", "n_matching", "message")}


class FeedbackRequest(Strict):
    request_id: str = Field(..., min_length=1, max_length=64)
    item_id: RawId
    signal: Literal["click", "like", "dislike", "rating", "skip"]
    rating: int | None = Field(None, ge=1, le=5, description="1-5; required when signal=rating")
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    idempotency_key: str = Field(
        ...,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="client-chosen; a retry with the same key is a no-op",
    )

    @field_validator("item_id", mode="after")
    @classmethod
    def _item(cls, v):
        return _ids([v])[0]

    @model_validator(mode="after")
    def _rating(self):
        if self.signal == "rating" and self.rating is None:
            raise ValueError("signal 'rating' needs a rating from 1 to 5")
        if self.signal != "rating" and self.rating is not None:
            raise ValueError("rating is only allowed with signal 'rating'")
        return self


class FeedbackResponse(BaseModel):
    feedback_id: int
    request_id: str
    item_id: str
    signal: str
    rating: int | None
    reward: float | None
    replayed: bool = Field(description="true when this idempotency key had been seen before")


class ItemSummary(BaseModel):
    item_id: str
    title: str


class ItemsResponse(BaseModel):
    items: list[ItemSummary]


class UsersResponse(BaseModel):
    users: list[str]


class ModelSwapRequest(Strict):
    run_dir: str = Field(..., min_length=1, max_length=4096)
    version: str | None = Field(None, max_length=MAX_ID_CHARS)


class ModelInfo(BaseModel):
    version: str
    run_dir: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    model_version: str | None
    database: bool
