"""The interaction log of the feedback store: served requests, their shown items, and the
feedback users give on them (idempotent by a client key, enforced by a unique constraint so
that it holds across processes)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .database import Database
from .records import SIGNALS, Feedback, NotFound, check_replay, reward_of
from .registry import bump_arm
from .tables import FeedbackRow, RequestRow, ShownItemRow, TemplateChoiceRow


class InteractionLog(Database):
    """Requests, shown items and feedback (a mixin of `store.Store`)."""

    # ------------------------------------------------------------------ requests
    def record_request(
        self,
        user_id: str | None,
        history: list[str] | None,
        instruction: str | None,
        n: int,
        items: Iterable[tuple[str, int, float]],
        slot: str | None = None,
        template_id: str | None = None,
        model_version: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Store a served request and its ranked ``items`` ((item_id, rank, score)); returns its id.

        Also counts one pull of the chosen template arm."""
        rid = request_id or uuid.uuid4().hex
        req = {
            "id": rid,
            "user_id": user_id,
            "history": json.dumps(list(history or [])),
            "instruction": instruction,
            "n": n,
            "slot": slot,
            "template_id": template_id,
            "model_version": model_version,
            "created_at": time.time(),
        }
        rows = [
            {"request_id": rid, "item_id": str(i), "rank": int(r), "score": float(sc)}
            for i, r, sc in items
        ]

        def write(s: Session) -> None:
            s.execute(insert(RequestRow), [req])
            if rows:
                s.execute(insert(ShownItemRow), rows)
            if slot is not None and template_id is not None:
                s.execute(
                    update(TemplateChoiceRow)
                    .where(
                        TemplateChoiceRow.slot == slot, TemplateChoiceRow.template_id == template_id
                    )
                    .values(pulls=TemplateChoiceRow.pulls + 1)
                )

        if self._committer is not None:
            self._committer.submit(write)  # returns once durable, sharing the fsync
        else:
            with self._write() as s:
                write(s)
        return rid

    def get_request(self, request_id: str) -> dict | None:
        """The request with its shown items (a dict), or None."""
        with self._read() as s:
            row = s.get(RequestRow, request_id)
            if row is None:
                return None
            items = s.execute(
                select(ShownItemRow.item_id, ShownItemRow.rank, ShownItemRow.score)
                .where(ShownItemRow.request_id == request_id)
                .order_by(ShownItemRow.rank)
            ).all()
        return {
            "request_id": row.id,
            "user_id": row.user_id,
            "history": json.loads(row.history),
            "instruction": row.instruction,
            "n": row.n,
            "slot": row.slot,
            "template_id": row.template_id,
            "model_version": row.model_version,
            "created_at": row.created_at,
            "items": [{"item_id": i, "rank": r, "score": sc} for i, r, sc in items],
        }

    # ------------------------------------------------------------------ feedback
    def add_feedback(
        self,
        request_id: str,
        item_id: str,
        signal: str,
        idempotency_key: str,
        rating: int | None = None,
        text: str | None = None,
    ) -> Feedback:
        """Record feedback once per ``idempotency_key`` and update the template arm.

        A replayed key returns the stored row (``created=False``); a replayed key with a
        different payload (any field, ``text`` included) raises `Conflict`. Unknown request or an item that request did not
        show raise `NotFound`.
        """
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        existing = self.get_feedback(idempotency_key)
        if existing is not None:
            return check_replay(existing, request_id, item_id, signal, rating, text)
        reward = reward_of(signal, rating)
        try:
            with self._write() as s:
                req = s.get(RequestRow, request_id)
                if req is None:
                    raise NotFound(f"unknown request_id {request_id!r}")
                shown = s.execute(
                    select(ShownItemRow.id).where(
                        ShownItemRow.request_id == request_id, ShownItemRow.item_id == item_id
                    )
                ).first()
                if shown is None:
                    raise NotFound(f"item {item_id!r} was not shown in request {request_id!r}")
                row = FeedbackRow(
                    idempotency_key=idempotency_key,
                    request_id=request_id,
                    item_id=item_id,
                    signal=signal,
                    rating=rating,
                    text=text,
                    reward=reward,
                    created_at=time.time(),
                )
                s.add(row)
                s.flush()
                if reward is not None and req.slot and req.template_id:
                    bump_arm(s, req.slot, req.template_id, reward)
                fid = row.id
        except IntegrityError:  # a concurrent writer stored the same key first
            existing = self.get_feedback(idempotency_key)
            if existing is None:
                raise
            return check_replay(existing, request_id, item_id, signal, rating, text)
        return Feedback(
            fid, request_id, item_id, signal, rating, reward, idempotency_key, True, text
        )

    def get_feedback(self, idempotency_key: str) -> Feedback | None:
        with self._read() as s:
            row = s.execute(
                select(FeedbackRow).where(FeedbackRow.idempotency_key == idempotency_key)
            ).scalar()
        if row is None:
            return None
        return Feedback(
            row.id,
            row.request_id,
            row.item_id,
            row.signal,
            row.rating,
            row.reward,
            row.idempotency_key,
            False,
            row.text,
        )

    def feedback_keys(self) -> set[str]:
        with self._read() as s:
            return set(s.execute(select(FeedbackRow.idempotency_key)).scalars())

    def feedback_frame(self):
        """All feedback joined with its request, as a DataFrame (one row per feedback):
        request_id, user_id, history (list), instruction, slot, template_id, model_version,
        item_id, rank, signal, rating, reward, text, created_at."""
        import pandas as pd

        with self._read() as s:
            rows = s.execute(
                select(
                    FeedbackRow.request_id,
                    RequestRow.user_id,
                    RequestRow.history,
                    RequestRow.instruction,
                    RequestRow.slot,
                    RequestRow.template_id,
                    RequestRow.model_version,
                    FeedbackRow.item_id,
                    ShownItemRow.rank,
                    FeedbackRow.signal,
                    FeedbackRow.rating,
                    FeedbackRow.reward,
                    FeedbackRow.text,
                    FeedbackRow.created_at,
                )
                .join(RequestRow, RequestRow.id == FeedbackRow.request_id)
                .join(
                    ShownItemRow,
                    (ShownItemRow.request_id == FeedbackRow.request_id)
                    & (ShownItemRow.item_id == FeedbackRow.item_id),
                )
                .order_by(FeedbackRow.id)
            ).all()
        cols = [
            "request_id",
            "user_id",
            "history",
            "instruction",
            "slot",
            "template_id",
            "model_version",
            "item_id",
            "rank",
            "signal",
            "rating",
            "reward",
            "text",
            "created_at",
        ]
        df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        df["history"] = [json.loads(h) for h in df["history"]]
        return df
