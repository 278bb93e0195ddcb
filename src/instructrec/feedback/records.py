"""What the feedback store hands back and raises: the feedback record, its errors, and the
reward a signal is worth (shared by the store, the simulator and the bandit)."""

from __future__ import annotations

from dataclasses import dataclass

SIGNALS = ("click", "like", "dislike", "rating", "skip")


class NotFound(LookupError):
    """A referenced request (or item of a request) does not exist."""


class Conflict(ValueError):
    """An idempotency key was reused with a different payload."""


@dataclass(frozen=True)
class Feedback:
    """A stored feedback row (what the API returns)."""

    id: int
    request_id: str
    item_id: str
    signal: str
    rating: int | None
    reward: float | None
    idempotency_key: str
    created: bool  # False when the key had been seen before (replayed response)
    text: str | None = None  # the free-text comment, if any


def reward_of(signal: str, rating: int | None = None) -> float | None:
    """Bernoulli reward of a signal: like/click/rating>=4 -> 1, dislike/skip/rating<=2 -> 0,
    rating 3 -> None (no update)."""
    if signal in ("like", "click"):
        return 1.0
    if signal in ("dislike", "skip"):
        return 0.0
    if signal == "rating" and rating is not None:
        return 1.0 if rating >= 4 else (0.0 if rating <= 2 else None)
    return None


def check_replay(
    existing: Feedback,
    request_id: str,
    item_id: str,
    signal: str,
    rating: int | None,
    text: str | None = None,
) -> Feedback:
    """``existing`` when a replayed idempotency key carries the same payload (every field,
    the text included), else `Conflict`."""
    stored = (existing.request_id, existing.item_id, existing.signal, existing.rating)
    if stored + (existing.text,) != (request_id, item_id, signal, rating, text):
        raise Conflict(
            f"idempotency_key {existing.idempotency_key!r} was already used for a "
            "different feedback payload"
        )
    return existing
