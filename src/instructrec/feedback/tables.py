"""The tables of the feedback store (SQLAlchemy 2 ORM declarations).

requests          one row per served recommendation (user or history, instruction, template)
shown_items       the ranked items of each request
feedback          one row per client idempotency key (click/like/dislike/rating/skip)
template_choices  Beta-Bernoulli arms of the template bandit, per (P,I,T) slot
model_versions    the model runs the service has served, and which one is active
"""

from __future__ import annotations

import time

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    history: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of raw item ids
    instruction: Mapped[str | None] = mapped_column(Text, nullable=True)
    n: Mapped[int] = mapped_column(Integer)
    slot: Mapped[str | None] = mapped_column(String(32), nullable=True)
    template_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ShownItemRow(Base):
    __tablename__ = "shown_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(200))
    signal: Mapped[str] = mapped_column(String(16))
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class TemplateChoiceRow(Base):
    __tablename__ = "template_choices"
    __table_args__ = (UniqueConstraint("slot", "template_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slot: Mapped[str] = mapped_column(String(32))
    template_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # set for OPRO rewrites
    source: Mapped[str] = mapped_column(String(32), default="catalogue")
    successes: Mapped[float] = mapped_column(Float, default=0.0)
    failures: Mapped[float] = mapped_column(Float, default=0.0)
    pulls: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[int] = mapped_column(Integer, default=1)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(200), unique=True)
    run_dir: Mapped[str] = mapped_column(Text)
    parent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    metrics: Mapped[str] = mapped_column(Text, default="{}")
    active: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
