"""The feedback store: what was shown, what users said, bandit state and model versions.

SQLAlchemy 2 ORM over five tables (`tables`):

    requests          one row per served recommendation (user or history, instruction, template)
    shown_items       the ranked items of each request
    feedback          one row per client idempotency key (click/like/dislike/rating/skip)
    template_choices  Beta-Bernoulli arms of the template bandit, per (P,I,T) slot
    model_versions    the model runs the service has served, and which one is active

SQLite (a file, WAL journal, ``synchronous=FULL``: an acknowledged write survives a crash of
the process) is the default; PostgreSQL by URL (``postgresql+psycopg://user:pw@host/db``).
Idempotency is enforced by a unique constraint on the key, so it holds across processes.

`Store` is assembled from parts, each its own module: `database` (engine, sessions, write
transactions, the SQLite/PostgreSQL specifics), `interactions` (requests, shown items,
feedback), `registry` (bandit arms, model versions) and `records` (the `Feedback` record,
`NotFound`, `Conflict`, `reward_of`). Every name that used to live here is importable from
here still.
"""

from __future__ import annotations

from sqlalchemy import func, select

from .interactions import InteractionLog
from .registry import Registry
from .tables import FeedbackRow, RequestRow


class Store(InteractionLog, Registry):
    """All persistence of the service. Thread-safe; one per process.

    ``Store(url=DEFAULT_URL, echo=False, group_commit=True)``; see `Database`."""

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
