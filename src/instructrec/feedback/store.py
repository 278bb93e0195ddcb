"""The feedback store: what was shown, what users said, bandit state and model versions.

SQLAlchemy 2 ORM over five tables:

    requests          one row per served recommendation (user or history, instruction, template)
    shown_items       the ranked items of each request
    feedback          one row per client idempotency key (click/like/dislike/rating/skip)
    template_choices  Beta-Bernoulli arms of the template bandit, per (P,I,T) slot
    model_versions    the model runs the service has served, and which one is active

SQLite (a file, WAL journal, ``synchronous=FULL``: an acknowledged write survives a crash of
the process) is the default; PostgreSQL by URL (``postgresql+psycopg://user:pw@host/db``).
Idempotency is enforced by a unique constraint on the key, so it holds across processes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .commit import GroupCommitter
from .tables import (  # noqa: F401  (Base is re-exported for tests and migrations)
    Base,
    FeedbackRow,
    ModelVersionRow,
    RequestRow,
    ShownItemRow,
    TemplateChoiceRow,
)

DEFAULT_URL = "sqlite:///instructrec-feedback.db"
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


class Store:
    """All persistence of the service. Thread-safe; one per process."""

    def __init__(
        self, url: str = DEFAULT_URL, echo: bool = False, group_commit: bool = True
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite allows one writer: serialise this process's write transactions so that
        # threads wait on a lock instead of failing with "database is locked".
        self._write_lock = threading.Lock() if self.is_sqlite else None
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # request logs (the hot path) share commits across threads; see commit.py
        self._committer = GroupCommitter(self._write) if group_commit else None

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _write(self) -> Iterator[Session]:
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        try:
            with self._sessions() as s, s.begin():
                yield s
        finally:
            if lock is not None:
                lock.release()

    def _read(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers."""
        with self._read() as s:
            return s.execute(select(1)).scalar() == 1

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
        different payload raises `Conflict`. Unknown request or an item that request did not
        show raise `NotFound`.
        """
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        existing = self.get_feedback(idempotency_key)
        if existing is not None:
            return _check_replay(existing, request_id, item_id, signal, rating)
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
                    _bump_arm(s, req.slot, req.template_id, reward)
                fid = row.id
        except IntegrityError:  # a concurrent writer stored the same key first
            existing = self.get_feedback(idempotency_key)
            if existing is None:
                raise
            return _check_replay(existing, request_id, item_id, signal, rating)
        return Feedback(fid, request_id, item_id, signal, rating, reward, idempotency_key, True)

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

    def stats(self) -> dict:
        """Counts for `instructrec feedback stats` and /healthz."""
        with self._read() as s:
            n_req = s.execute(select(func.count()).select_from(RequestRow)).scalar()
            n_fb = s.execute(select(func.count()).select_from(FeedbackRow)).scalar()
            by_signal = dict(
                s.execute(
                    select(FeedbackRow.signal, func.count()).group_by(FeedbackRow.signal)
                ).all()
            )
        return {
            "requests": int(n_req),
            "feedback": int(n_fb),
            "by_signal": {k: int(v) for k, v in by_signal.items()},
            "arms": self.arms(),
            "active_model": self.active_model(),
        }

    # ------------------------------------------------------------------ bandit arms
    def ensure_arms(
        self,
        slot: str,
        template_ids: Iterable[str],
        source: str = "catalogue",
        texts: dict[str, str] | None = None,
    ) -> None:
        """Create missing arms of ``slot`` (existing arms keep their counts)."""
        try:
            with self._write() as s:
                have = set(
                    s.execute(
                        select(TemplateChoiceRow.template_id).where(TemplateChoiceRow.slot == slot)
                    ).scalars()
                )
                for tid in template_ids:
                    if tid not in have:
                        s.add(
                            TemplateChoiceRow(
                                slot=slot,
                                template_id=tid,
                                source=source,
                                text=(texts or {}).get(tid),
                            )
                        )
                        have.add(tid)
        except IntegrityError:
            # a concurrent process inserted the same arm first: retry sees its row
            self.ensure_arms(slot, template_ids, source, texts)

    def arms(self, slot: str | None = None) -> dict[str, dict[str, dict]]:
        """{slot: {template_id: {successes, failures, pulls, source, text}}} of active arms."""
        q = select(TemplateChoiceRow).where(TemplateChoiceRow.active == 1)
        if slot is not None:
            q = q.where(TemplateChoiceRow.slot == slot)
        out: dict[str, dict[str, dict]] = {}
        with self._read() as s:
            for r in s.execute(q.order_by(TemplateChoiceRow.id)).scalars():
                out.setdefault(r.slot, {})[r.template_id] = {
                    "successes": r.successes,
                    "failures": r.failures,
                    "pulls": r.pulls,
                    "source": r.source,
                    "text": r.text,
                }
        return out

    def update_arm(self, slot: str, template_id: str, reward: float) -> None:
        """Add one Bernoulli observation to an arm (creating it if needed)."""
        self.ensure_arms(slot, [template_id])
        with self._write() as s:
            _bump_arm(s, slot, template_id, reward)

    # ------------------------------------------------------------------ model versions
    def register_model(
        self,
        version: str,
        run_dir: str,
        parent: str | None = None,
        metrics: dict | None = None,
        activate: bool = True,
    ) -> None:
        """Record a model version (idempotent by ``version``); ``activate`` makes it current."""
        with self._write() as s:
            row = s.execute(
                select(ModelVersionRow).where(ModelVersionRow.version == version)
            ).scalar()
            if row is None:
                row = ModelVersionRow(
                    version=version,
                    run_dir=str(run_dir),
                    parent=parent,
                    metrics=json.dumps(metrics or {}),
                    created_at=time.time(),
                )
                s.add(row)
            elif metrics:
                row.metrics = json.dumps(metrics)
            if activate:
                s.execute(update(ModelVersionRow).values(active=0))
                row.active = 1

    def active_model(self) -> dict | None:
        with self._read() as s:
            row = s.execute(
                select(ModelVersionRow)
                .where(ModelVersionRow.active == 1)
                .order_by(ModelVersionRow.id.desc())
            ).scalar()
        return None if row is None else _model_dict(row)

    def model_versions(self) -> list[dict]:
        with self._read() as s:
            rows = s.execute(select(ModelVersionRow).order_by(ModelVersionRow.id)).scalars().all()
        return [_model_dict(r) for r in rows]


# ---------------------------------------------------------------------- helpers
def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: durable acks
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _bump_arm(s: Session, slot: str, template_id: str, reward: float) -> None:
    s.execute(
        update(TemplateChoiceRow)
        .where(TemplateChoiceRow.slot == slot, TemplateChoiceRow.template_id == template_id)
        .values(
            successes=TemplateChoiceRow.successes + float(reward),
            failures=TemplateChoiceRow.failures + (1.0 - float(reward)),
        )
    )


def _check_replay(
    existing: Feedback, request_id: str, item_id: str, signal: str, rating: int | None
) -> Feedback:
    if (existing.request_id, existing.item_id, existing.signal, existing.rating) != (
        request_id,
        item_id,
        signal,
        rating,
    ):
        raise Conflict(
            f"idempotency_key {existing.idempotency_key!r} was already used for a "
            "different feedback payload"
        )
    return existing


def _model_dict(r: ModelVersionRow) -> dict:
    return {
        "version": r.version,
        "run_dir": r.run_dir,
        "parent": r.parent,
        "metrics": json.loads(r.metrics or "{}"),
        "active": bool(r.active),
        "created_at": r.created_at,
    }
