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
        if self.user_id is None and self.history is None:
            raise ValueError("give user_id or history")
        return self


class ItemOut(BaseModel):
    item_id: str
    title: str
    score: float
    rank: int


class RecommendationResponse(BaseModel):
    request_id: str
    items: list[ItemOut]
    template_id: str | None
    model_version: str | None


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
    dataset: str | None = Field(None, description="name of the data set the model was trained on")
    items: int | None = Field(None, description="number of items in its catalogue")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    model_version: str | None
    database: bool
