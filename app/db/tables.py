"""ORM tables: the source of truth for jobs, their progress events and their artifacts.

Schemas for the API live in ``app.schemas``; these classes are storage only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def utcnow() -> datetime:
    # Naive UTC everywhere: SQLite drops time zones, so storing naive keeps both databases alike.
    return datetime.now(UTC).replace(tzinfo=None)


def tags_column() -> Mapped[list[Any]]:
    """Free labels a user gives an item (``PATCH``), a JSON list of short strings."""
    return mapped_column(JSON, default=list, server_default=text("'[]'"))


def notes_column() -> Mapped[str]:
    """A user's free text about an item (``PATCH``)."""
    return mapped_column(Text, default="", server_default="")


def owner_column() -> Mapped[str | None]:
    """Every job and artifact has an owner (``users.id``); None: made with auth off, or by
    the operator's own CLI on the server, outside any account."""
    return mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    queue: Mapped[str] = mapped_column(String(16), default="gpu")
    # Set on the tasks a coordinating job fans out (e.g. the shards of a generate job).
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True, default=None
    )
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # Liveness of a running job: the worker process running it (``worker`` names its
    # Celery node) beats ``heartbeat_at`` every few seconds; a job that stopped beating has
    # lost its worker and is run again elsewhere (``app.jobs.requeue_lost``).
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    worker_pid: Mapped[int | None] = mapped_column(Integer, default=None)
    owner_id: Mapped[str | None] = owner_column()
    # What a user calls the run, and its labels and notes (``PATCH /api/jobs/{id}``).
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    tags: Mapped[list[Any]] = tags_column()
    notes: Mapped[str] = notes_column()


class JobEvent(Base):
    """One progress report. ``seq`` is global and increasing, so ``after=SEQ`` pages cleanly."""

    __tablename__ = "job_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class InitialCondition(Base):
    __tablename__ = "initial_conditions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    flow: Mapped[str] = mapped_column(String(64))
    shape: Mapped[list[Any]] = mapped_column()
    fields: Mapped[list[Any]] = mapped_column()
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    owner_id: Mapped[str | None] = owner_column()
    tags: Mapped[list[Any]] = tags_column()
    notes: Mapped[str] = notes_column()


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    flow: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shape: Mapped[list[Any]] = mapped_column()
    path: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    owner_id: Mapped[str | None] = owner_column()
    tags: Mapped[list[Any]] = tags_column()
    notes: Mapped[str] = notes_column()


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(64))
    flow: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parameter_count: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(Integer)
    interval: Mapped[float] = mapped_column(Float)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    path: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    owner_id: Mapped[str | None] = owner_column()
    tags: Mapped[list[Any]] = tags_column()
    notes: Mapped[str] = notes_column()


class Rollout(Base):
    """A rollout file and what it holds. ``kind``: "rollout" (one model, or the reference
    alone) or "compare" (several models side by side). ``sources`` lists, for a comparison,
    every source in its file: ``{"name": "reference" | "model:<i>" | "error:<i>", "role",
    ...}`` with each model's id, precision and grid."""

    __tablename__ = "rollouts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    initial_condition_id: Mapped[str | None] = mapped_column(
        ForeignKey("initial_conditions.id", ondelete="SET NULL")
    )
    flow: Mapped[str] = mapped_column(String(64))
    steps: Mapped[int] = mapped_column(Integer)
    interval: Mapped[float] = mapped_column(Float)
    resolution: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="rollout", server_default="rollout")
    sources: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    owner_id: Mapped[str | None] = owner_column()


class User(Base):
    """An account. ``role``: "admin" (everything), "member" (sees the group's artifacts,
    changes only its own) or "viewer" (changes nothing)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="member")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for scripts and the CLI; only its SHA-256 is stored (the token is
    shown once, when created)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


def _owner_from_job(_mapper, connection, target) -> None:
    """Artifacts a job makes (datasets, models, rollouts: written by workers) belong to the
    job's owner."""
    if target.owner_id is None and getattr(target, "job_id", None):
        target.owner_id = connection.scalar(select(Job.owner_id).where(Job.id == target.job_id))


for _table in (Dataset, Model, Rollout):
    event.listen(_table, "before_insert", _owner_from_job)
