"""The job lifecycle, shared by the API (submit, cancel, re-dispatch) and workers (claim,
report, finish). The database row is the truth; broker messages only say "go look at job X".

Outbox rule: a job row is committed *before* its message is sent. If sending fails, or a
broker loses the message, the row stays ``queued`` with a stale ``dispatched_at`` and
``redispatch_stale`` sends it again. A worker claims a job with a conditional UPDATE, so a
duplicate message can never run a job twice at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import BigInteger, ColumnElement, literal, select, update
from sqlalchemy.orm import Session

from app.db.session import Database
from app.db.tables import Job, JobEvent, utcnow

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")


class Dispatcher(Protocol):
    """What the job service needs from a queue (Celery in production)."""

    def send(self, job: Job) -> None: ...

    def revoke(self, job: Job) -> None: ...


def _kind(name: str):
    # Imported here: the kind modules build on this one (they submit and report jobs).
    from app.jobkinds import get_kind

    return get_kind(name)


def _coordinators() -> tuple[str, ...]:
    from app.jobkinds import coordinators

    return coordinators()


class JobNotFound(LookupError):
    pass


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"There is no job with id {job_id!r}.")
    return job


def submit(
    db: Database, dispatcher: Dispatcher, kind: str, params: dict[str, Any], queue: str
) -> Job:
    """Commit the job (or, for a coordinating kind, its rows) and send its message.
    ``params`` and ``queue`` are what ``app.jobkinds.validate_params`` returned."""
    spec = _kind(kind)
    if spec.submit is not None:
        return spec.submit(db, dispatcher, params, queue)
    with db.session() as session:
        job = Job(kind=kind, params=params, queue=queue, status="queued")
        session.add(job)
        session.commit()
        add_event(session, job.id, "status", {"status": "queued"})
    dispatch(db, dispatcher, job.id)
    return job


def dispatch(db: Database, dispatcher: Dispatcher, job_id: str) -> bool:
    """Send (or re-send) a queued job's message; returns False when sending failed."""
    with db.session() as session:
        job = get_job(session, job_id)
        if job.status != "queued" or _kind(job.kind).coordinator:
            return False
        try:
            dispatcher.send(job)
        except Exception as exc:  # broker down: the row stays queued and will be re-sent
            log.warning("could not enqueue job %s (%s); it will be re-sent", job.id, exc)
            return False
        job.dispatched_at = utcnow()
        session.commit()
        return True


def redispatch_stale(db: Database, dispatcher: Dispatcher, older_than_s: float) -> int:
    """Re-send queued jobs whose message was never sent or has waited too long."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with db.session() as session:
        stale = session.scalars(
            select(Job.id).where(
                Job.status == "queued",
                Job.kind.not_in(_coordinators()),
                (Job.dispatched_at.is_(None)) | (Job.dispatched_at < cutoff),
            )
        ).all()
    return sum(dispatch(db, dispatcher, job_id) for job_id in stale)


def cancel(db: Database, dispatcher: Dispatcher, job_id: str) -> Job:
    """Mark an active job cancelled, then ask its worker to stop. Workers also poll the row,
    so cancellation works on brokers that cannot broadcast a revoke."""
    with db.session() as session:
        job = get_job(session, job_id)
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(ACTIVE))
            .values(status="cancelled", finished_at=utcnow(), message="Cancelled by the user.")
        ).rowcount
        session.commit()
        if changed:
            add_event(session, job_id, "status", {"status": "cancelled"})
            _revoke(dispatcher, job)
        children = session.scalars(
            select(Job.id).where(Job.parent_id == job_id, Job.status.in_(ACTIVE))
        ).all()
    for child_id in children:
        cancel(db, dispatcher, child_id)
    with db.session() as session:
        return get_job(session, job_id)


def _revoke(dispatcher: Dispatcher, job: Job) -> None:
    if _kind(job.kind).coordinator:
        return
    try:
        dispatcher.revoke(job)
    except Exception as exc:
        log.info("revoke of job %s not delivered (%s); the worker polls instead", job.id, exc)


def add_event(session: Session, job_id: str, type_: str, payload: dict[str, Any]) -> JobEvent:
    event = JobEvent(job_id=job_id, type=type_, payload=payload)
    session.add(event)
    session.commit()
    return event


def seq_after(after: int) -> ColumnElement[bool]:
    """``JobEvent.seq > after`` for any 64-bit ``after``: the cursor is sent as a BIGINT,
    since the column is a 32-bit INTEGER on PostgreSQL and a larger cursor would not fit
    its type (an error, not an empty page)."""
    return JobEvent.seq > literal(after, BigInteger)


def events_after(
    session: Session, job_id: str, after: int = 0, limit: int = 1000, type_: str | None = None
) -> list[JobEvent]:
    query = select(JobEvent).where(JobEvent.job_id == job_id, seq_after(after))
    if type_ is not None:
        query = query.where(JobEvent.type == type_)
    return list(session.scalars(query.order_by(JobEvent.seq).limit(limit)))


# --- worker side -----------------------------------------------------------------------


def claim(db: Database, job_id: str, worker: str, redelivered: bool) -> bool:
    """queued → running, atomically. A redelivered message (its worker died) may also take
    over a job left ``running``."""
    allowed = ("queued", "running") if redelivered else ("queued",)
    with db.session() as session:
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(allowed))
            .values(status="running", started_at=utcnow(), worker=worker, attempts=Job.attempts + 1)
        ).rowcount
        session.commit()
        if changed:
            add_event(session, job_id, "status", {"status": "running", "worker": worker})
            parent_id = session.scalar(select(Job.parent_id).where(Job.id == job_id))
            started = (
                parent_id
                and session.execute(
                    update(Job)
                    .where(Job.id == parent_id, Job.status == "queued")
                    .values(status="running", started_at=utcnow())
                ).rowcount
            )
            session.commit()
            if started:
                add_event(session, parent_id, "status", {"status": "running"})
        return bool(changed)


def report(
    db: Database,
    job_id: str,
    type_: str,
    payload: dict[str, Any],
    progress: float | None = None,
    message: str | None = None,
) -> str:
    """Record one progress event (and the job's progress); returns the job's current status
    so the caller can notice a cancellation without another query."""
    with db.session() as session:
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = min(max(float(progress), 0.0), 1.0)
        if message is not None:
            values["message"] = message
        if values:
            session.execute(
                update(Job).where(Job.id == job_id, Job.status == "running").values(**values)
            )
        session.add(JobEvent(job_id=job_id, type=type_, payload=payload))
        session.commit()
        return session.scalar(select(Job.status).where(Job.id == job_id))


def status_of(db: Database, job_id: str) -> str | None:
    with db.session() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id))


def finish(
    db: Database,
    job_id: str,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    message: str | None = None,
) -> bool:
    """running → a final status. Never overwrites a cancellation that happened meanwhile."""
    assert status in FINAL
    values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error
    if message is not None:
        values["message"] = message
    if status == "succeeded":
        values["progress"] = 1.0
    with db.session() as session:
        changed = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running").values(**values)
        ).rowcount
        session.commit()
        if changed:
            payload = {"status": status} | ({"error": error} if error else {})
            add_event(session, job_id, "status", payload)
        return bool(changed)
