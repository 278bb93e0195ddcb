"""Request and response bodies of the HTTP API (pydantic v2; they generate the OpenAPI at /docs).

The published schema is the contract, so everything the server checks is in it: lengths,
ranges, the NUL-free pattern of every string (PostgreSQL text and file paths refuse NUL), which
fields go together (``user_id``/``history``, ``signal``/``rating``). Request bodies are strict:
no type coercion (``user_id: true`` is a 422, not user "1"), no unknown fields. Item and user ids
are the raw ids of the dataset: strings, or JSON integers (turned into strings). Every error
response has a JSON body with a one-line ``detail`` (`ErrorBody` and its subclasses).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_INSTRUCTION_CHARS = 2000  # a paragraph; longer text is refused with 422
MAX_HISTORY = 200  # items of explicit history
MAX_CANDIDATES = 1000  # items of an explicit candidate list
MAX_N = 100  # items per response
MAX_TEXT_CHARS = 2000  # free-text feedback
MAX_ID_CHARS = 200  # any id
NO_NUL = r"^[^\x00]*$"  # every string of a request
# a run folder under the model root: relative (or absolute) path, components of 1..255 chars
RUN_DIR = r"^/?[^/\x00]{1,255}(/[^/\x00]{1,255})*$"

IdStr = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=NO_NUL)]


def _no_coercion(v):
    """JSON integers only: a boolean or a string is refused (pydantic's lax mode would turn
    ``true`` into 1); an integral float such as 5.0 is an integer in JSON Schema, so it passes."""
    if isinstance(v, bool | str):
        raise ValueError("must be a JSON integer, not a boolean or a string")
    return v


def json_int(**bounds):
    """An integer field type: JSON integers only (see `_no_coercion`), with ``ge``/``le``
    bounds (given with the lax flag, so that they reach the JSON Schema as minimum/maximum)."""
    return Annotated[int, Field(strict=False, **bounds), BeforeValidator(_no_coercion)]


JsonInt = json_int()
RawId = IdStr | JsonInt


def _no_default(schema: dict) -> None:
    """Drop ``default: null`` from a field that may be omitted but never be null."""
    schema.pop("default", None)


def _has_nul(v) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    if isinstance(v, list | tuple):
        return any(_has_nul(x) for x in v)
    return False


class Strict(BaseModel):
    """Request bodies: strict types, unknown fields and NUL characters are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data):
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


# ------------------------------------------------------------------------------- errors
class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: ``detail`` is one line saying what was wrong and where."""

    detail: str = Field(description="what was wrong, in one line")


class FieldError(BaseModel):
    loc: list[str] = Field(description="where: body/query/path, then the field names")
    msg: str
    type: str = Field(description="pydantic's error type, e.g. missing, string_too_long")


class ValidationErrorBody(ErrorBody):
    """422: the request broke the schema (``errors`` lists each violation) or named a run
    folder that cannot be loaded."""

    errors: list[FieldError] = Field(default_factory=list)


class UnavailableBody(ErrorBody):
    """503: the feedback store is unreachable or locked; retry after ``retry_after`` seconds
    (also in the ``Retry-After`` header). Nothing was stored."""

    retry_after: int = Field(ge=1)


# ------------------------------------------------------------------------------- requests
class RecommendationRequest(Strict):
    """Give ``user_id`` (known to the model), ``history`` (raw item ids, oldest first), or both:
    then ``history`` is appended to the user's stored history (newest last)."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["user_id"]}, {"required": ["history"]}]}
    )

    user_id: RawId = Field(
        None, description="raw user id known to the model", json_schema_extra=_no_default
    )
    history: list[RawId] = Field(
        None,
        max_length=MAX_HISTORY,
        description="raw item ids, oldest first (appended to user_id's history when both are given)",
        json_schema_extra=_no_default,
    )
    instruction: Annotated[str, StringConstraints(pattern=NO_NUL)] | None = Field(
        None, max_length=MAX_INSTRUCTION_CHARS, description="what the user asks for, in their words"
    )
    n: json_int(ge=1, le=MAX_N) = Field(10, description="number of items to return")
    candidates: list[RawId] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="rank only these raw item ids; a repeated id is ranked once (first kept)",
    )

    @field_validator("user_id", mode="after")
    @classmethod
    def _user(cls, v):
        return None if v is None else str(v)

    @field_validator("history", mode="after")
    @classmethod
    def _history(cls, v):
        return None if v is None else [str(x) for x in v]

    @field_validator("candidates", mode="after")
    @classmethod
    def _candidates(cls, v):
        return None if v is None else list(dict.fromkeys(str(x) for x in v))

    @field_validator("instruction", mode="after")
    @classmethod
    def _instr(cls, v):
        return (v or "").strip() or None

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


def answer_out(result) -> tuple[list[ItemOut], dict]:
    """(items, request-level fields) of an `Answer` (`rerank.explain`) or of a
    `Recommender.recommend` frame: the same values either way, without pandas for an Answer."""
    if hasattr(result, "attrs") or not hasattr(result, "items"):
        return items_out(result), answer_fields(result)
    out = []
    for r in result.items:
        raw = r.raw_score
        out.append(
            ItemOut(
                item_id=str(r.item_id),
                title=str(r.title),
                score=float(r.score),
                rank=int(r.rank),
                year=None if r.year is None else int(r.year),
                genres=[g for g in ", ".join(r.genres).split(", ") if g],
                attributes={},  # as `items_out` of a frame (which has no attributes column)
                reason=r.reason or None,
                raw_score=None if raw is None or not math.isfinite(raw) else float(raw),
            )
        )
    fields = {k: getattr(result, k) for k in ("understood", "n_matching", "message")}
    return out, fields


def answer_fields(frame) -> dict:
    """The request-level explanation a `Recommender.recommend` frame carries in ``attrs``."""
    attrs = getattr(frame, "attrs", {}) or {}
    return {k: attrs.get(k) for k in ("understood", "n_matching", "message")}


def _feedback_schema(schema: dict) -> None:
    """``rating`` goes with ``signal: rating`` and only with it; bounds as JSON Schema words
    (pydantic writes an optional lax int's bounds as ``ge``/``le``)."""
    rating = {"type": "integer", "minimum": 1, "maximum": 5}
    schema["properties"]["rating"]["anyOf"] = [rating, {"type": "null"}]
    schema["anyOf"] = [
        {"properties": {"signal": {"const": "rating"}, "rating": rating}, "required": ["rating"]},
        {
            "properties": {
                "signal": {"enum": ["click", "like", "dislike", "skip"]},
                "rating": {"type": "null"},
            }
        },
    ]


class FeedbackRequest(Strict):
    """Feedback on one shown item. ``rating`` (1-5) goes with ``signal: rating`` and only with
    it. A retry with the same ``idempotency_key`` and the same payload is answered with the
    stored row (``replayed: true``); the same key with any field different is a 409."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _feedback_schema(schema))

    request_id: str = Field(..., min_length=1, max_length=64, pattern=NO_NUL)
    item_id: RawId
    signal: Literal["click", "like", "dislike", "rating", "skip"]
    rating: JsonInt | None = Field(None, ge=1, le=5, description="1-5; required when signal=rating")
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS, pattern=NO_NUL)
    idempotency_key: str = Field(
        ...,
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=NO_NUL,
        description="client-chosen; a retry with the same key and payload is a no-op",
    )

    @field_validator("item_id", mode="after")
    @classmethod
    def _item(cls, v):
        return str(v)

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
    """A run folder under the server's ``--model-root`` (relative to it, or absolute)."""

    run_dir: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        pattern=RUN_DIR,
        description="run folder relative to the model root (or absolute, inside it)",
        examples=["v2"],
    )
    version: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=NO_NUL,
        description="name of the new version (default: folder name + time)",
    )


class ModelInfo(BaseModel):
    """The served model version (never a server path)."""

    version: str
    dataset: str | None = Field(None, description="name of the data set the model was trained on")
    items: int | None = Field(None, description="number of items in its catalogue")


class ModelSwapResponse(BaseModel):
    version: str
    previous_version: str
    run_dir: str = Field(description="the loaded run folder, relative to the model root")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    model_version: str | None
    database: bool = Field(description="the feedback store answers and accepts writes")
    detail: str | None = Field(None, description="why the store is degraded, when it is")
