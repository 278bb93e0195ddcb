"""The registry part of the feedback store: the template bandit's Beta-Bernoulli arms (per
(P,I,T) slot) and the model versions the service has served (one of them active)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .database import Database
from .tables import ModelVersionRow, TemplateChoiceRow


class Registry(Database):
    """Bandit arms and model versions (a mixin of `store.Store`)."""

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
            bump_arm(s, slot, template_id, reward)

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

    def version_of(self, run_dir: str) -> str | None:
        """The newest version registered for ``run_dir`` (compared as resolved paths), or None.
        A hot swap of a run that `feedback tune` registered reuses its version, so one swap
        is one version."""
        from pathlib import Path

        want = str(Path(run_dir).resolve())
        with self._read() as s:
            rows = s.execute(select(ModelVersionRow).order_by(ModelVersionRow.id.desc())).scalars()
            for r in rows:
                if str(Path(r.run_dir).resolve()) == want:
                    return r.version
        return None

    def active_model(self) -> dict | None:
        with self._read() as s:
            row = s.execute(
                select(ModelVersionRow)
                .where(ModelVersionRow.active == 1)
                .order_by(ModelVersionRow.id.desc())
            ).scalar()
        return None if row is None else model_dict(row)

    def model_versions(self) -> list[dict]:
        with self._read() as s:
            rows = s.execute(select(ModelVersionRow).order_by(ModelVersionRow.id)).scalars().all()
        return [model_dict(r) for r in rows]


def bump_arm(s: Session, slot: str, template_id: str, reward: float) -> None:
    """Add one Bernoulli observation to the arm (inside a write transaction)."""
    s.execute(
        update(TemplateChoiceRow)
        .where(TemplateChoiceRow.slot == slot, TemplateChoiceRow.template_id == template_id)
        .values(
            successes=TemplateChoiceRow.successes + float(reward),
            failures=TemplateChoiceRow.failures + (1.0 - float(reward)),
        )
    )


def model_dict(r: ModelVersionRow) -> dict:
    """A model version row as the API returns it."""
    return {
        "version": r.version,
        "run_dir": r.run_dir,
        "parent": r.parent,
        "metrics": json.loads(r.metrics or "{}"),
        "active": bool(r.active),
        "created_at": r.created_at,
    }
