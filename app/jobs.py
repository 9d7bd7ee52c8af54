"""The job lifecycle, shared by the API (submit, cancel, re-dispatch) and workers (claim,
report, finish). The database row is the truth; broker messages only say "go look at job X".

Outbox rule: a job row is committed *before* its message is sent. If sending fails, or a
broker loses the message, the row stays ``queued`` with a stale ``dispatched_at`` and
``redispatch_stale`` sends it again. A worker claims a job with a conditional UPDATE, so a
duplicate message can never run a job twice at once.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import BigInteger, ColumnElement, func, literal, or_, select, true, update
from sqlalchemy.orm import Session

from app.db.session import Database
from app.db.tables import Job, JobEvent, utcnow
from app.settings import get_settings

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
    db: Database,
    dispatcher: Dispatcher,
    kind: str,
    params: dict[str, Any],
    queue: str,
    owner_id: str | None = None,
) -> Job:
    """Commit the job (or, for a coordinating kind, its rows), then have its message sent.
    ``params`` and ``queue`` are what ``app.jobkinds.validate_params`` returned. Through an
    outbox (``app.queue.outbox``, the API's and the UI's dispatcher) the message is sent by
    the outbox's own thread, so this returns without waiting on the broker. ``owner_id``:
    the user the job (and the jobs it fans out, and what they make) belongs to."""
    spec = _kind(kind)
    if spec.submit is not None:
        job = spec.submit(db, dispatcher, params, queue)
        if owner_id is not None:
            with db.session() as session:
                session.execute(
                    update(Job)
                    .where(or_(Job.id == job.id, Job.parent_id == job.id))
                    .values(owner_id=owner_id)
                )
                session.commit()
            job.owner_id = owner_id
        return job
    with db.session() as session:
        job = Job(kind=kind, params=params, queue=queue, status="queued", owner_id=owner_id)
        session.add(job)
        session.commit()
        add_event(session, job.id, "status", {"status": "queued"})
    dispatch(db, dispatcher, job.id, later=True)
    return job


def dispatch(db: Database, dispatcher: Dispatcher, job_id: str, *, later: bool = False) -> bool:
    """Send (or re-send) a queued job's message; returns False when it was not sent (the
    job is no longer queued, or sending failed: the row stays queued and is sent again).

    ``later=True`` with an outbox (a dispatcher with ``send_later(job_id)``) only asks the
    outbox to send it: the job row is the outbox entry (queued, ``dispatched_at`` unset)
    and the outbox's thread sends it, so a request never waits on the broker."""
    send_later = getattr(dispatcher, "send_later", None) if later else None
    if send_later is not None:
        send_later(job_id)
        return True
    return _send(db, dispatcher, job_id) == "sent"


def _send(db: Database, dispatcher: Dispatcher, job_id: str) -> str:
    """Send a queued job's message now: returns "sent", "skipped" (the job is no longer
    queued, or is a coordinator) or "failed" (the broker did not take it)."""
    with db.session() as session:
        job = get_job(session, job_id)
        if job.status != "queued" or _kind(job.kind).coordinator:
            return "skipped"
        try:
            dispatcher.send(job)
        except Exception as exc:  # broker down: the row stays queued and will be re-sent
            log.warning("could not enqueue job %s (%s); it will be re-sent", job.id, exc)
            return "failed"
        job.dispatched_at = utcnow()
        session.commit()
        return "sent"


def redispatch_stale(db: Database, dispatcher: Dispatcher, older_than_s: float) -> int:
    """Send the queued jobs whose message was never sent, and send again those whose message
    was sent more than ``older_than_s`` ago but is no longer waiting in the broker's queue
    (lost with the broker, or taken by a worker that died before starting the job). A job
    whose first message is still in the queue, behind others, is not sent twice: the
    dispatcher's ``waiting()`` lists the job ids of the messages in its queues (None when
    the broker cannot tell; then stale jobs are sent again as before).

    Oldest first; stops at the first failed send (the broker is down: the next sweep tries
    again). Returns how many messages were sent."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with db.session() as session:
        rows = session.execute(
            select(Job.id, Job.dispatched_at)
            .where(
                Job.status == "queued",
                Job.kind.not_in(_coordinators()),
                (Job.dispatched_at.is_(None)) | (Job.dispatched_at < cutoff),
            )
            .order_by(Job.created_at)
        ).all()
    if any(sent_at is not None for _, sent_at in rows):
        waiting = getattr(dispatcher, "waiting", None)
        try:
            in_queue = waiting() if waiting is not None else None
        except Exception as exc:
            log.warning("could not look into the broker's queues (%s); re-sending later", exc)
            return 0
        if in_queue:
            rows = [(job_id, at) for job_id, at in rows if at is None or job_id not in in_queue]
    sent = 0
    for job_id, _ in rows:
        outcome = _send(db, dispatcher, job_id)
        if outcome == "failed":
            break
        sent += outcome == "sent"
    return sent


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


def claim(
    db: Database,
    job_id: str,
    worker: str,
    redelivered: bool,
    *,
    lost_after_s: float | None = None,
    pid: int | None = None,
) -> int:
    """queued → running, atomically; returns the attempt this claim made (1, 2, …), or 0 when
    the job was not claimed. The attempt number fences the worker: its heartbeat, reports and
    finish only count while the row still carries it.

    A redelivered message (its worker may have died) may also take over a job left
    ``running``, but only one whose worker is gone: its heartbeat is older than
    ``lost_after_s`` (default: the setting), or it ran in a process of this same worker node
    (``worker``) that no longer exists (a pool process killed mid-job). A job another
    worker is still beating for stays with that worker, so a duplicate message never runs a
    job twice at once."""
    if lost_after_s is None:
        lost_after_s = get_settings().lost_after_s
    now = utcnow()
    allowed: ColumnElement[bool] = Job.status == "queued"
    with db.session() as session:
        before = session.execute(
            select(Job.status, Job.worker, Job.worker_pid).where(Job.id == job_id)
        ).first()
        if redelivered and before is not None and before.status == "running":
            allowed = allowed | ((Job.status == "running") & _beat_older_than(now, lost_after_s))
            if before.worker == worker and _process_gone(before.worker_pid):
                allowed = allowed | (
                    (Job.status == "running")
                    & (Job.worker == worker)
                    & (Job.worker_pid == before.worker_pid)
                )
        attempt = session.execute(
            update(Job)
            .where(Job.id == job_id, allowed)
            .values(
                status="running",
                started_at=now,
                heartbeat_at=now,
                worker=worker,
                worker_pid=pid,
                attempts=Job.attempts + 1,
            )
            .returning(Job.attempts)
        ).scalar_one_or_none()
        session.commit()
        if attempt is None:
            return 0
        payload: dict[str, Any] = {"status": "running", "worker": worker, "attempt": attempt}
        if before is not None and before.status == "running":
            payload["took_over_from"] = before.worker
        add_event(session, job_id, "status", payload)
        parent_id = session.scalar(select(Job.parent_id).where(Job.id == job_id))
        # A coordinator runs when its first child does; any other parent (an online
        # trainer) runs on a worker of its own, and a child must not make it look running
        # while it waits in the queue.
        started = (
            parent_id
            and session.execute(
                update(Job)
                .where(
                    Job.id == parent_id,
                    Job.status == "queued",
                    Job.kind.in_(_coordinators()),
                )
                .values(status="running", started_at=utcnow())
            ).rowcount
        )
        session.commit()
        if started:
            add_event(session, parent_id, "status", {"status": "running"})
        return attempt


def _beat_older_than(now: datetime, seconds: float) -> ColumnElement[bool]:
    """The job's last sign of life (its heartbeat, else its start) is older than ``seconds``."""
    cutoff = now - timedelta(seconds=seconds)
    return func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at) < cutoff


def _process_gone(pid: int | None) -> bool:
    """Whether process ``pid`` of this machine has ended (or is a zombie waiting to be
    reaped). Unknown pids and this very process count as alive."""
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def beat(db: Database, job_id: str, attempt: int) -> bool:
    """Record that ``attempt`` of the job is still running; False once the job is no longer
    that attempt's to run (cancelled, finished, or re-queued and taken by another worker)."""
    with db.session() as session:
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
            .values(heartbeat_at=utcnow())
        ).rowcount
        session.commit()
        return bool(changed)


def requeue_lost(db: Database, dispatcher: Dispatcher, lost_after_s: float) -> int:
    """Put running jobs whose worker stopped beating for ``lost_after_s`` back in the queue and
    send them again, so any live worker re-runs (or resumes) them without waiting for the
    broker's visibility timeout. Coordinating jobs never beat (their tasks do) and are left
    alone. Returns how many jobs were re-queued."""
    now = utcnow()
    with db.session() as session:
        lost = session.execute(
            select(Job.id, Job.worker, Job.heartbeat_at, Job.attempts).where(
                Job.status == "running",
                Job.kind.not_in(_coordinators()),
                _beat_older_than(now, lost_after_s),
            )
        ).all()
        requeued = []
        for job_id, worker, heartbeat_at, attempt in lost:
            changed = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.status == "running",
                    Job.attempts == attempt,
                    _beat_older_than(now, lost_after_s),
                )
                .values(
                    status="queued",
                    dispatched_at=None,
                    heartbeat_at=None,
                    worker_pid=None,
                    message=f"Worker {worker} was lost; the job is queued again.",
                )
            ).rowcount
            session.commit()
            if not changed:
                continue  # it beat, finished or was taken over meanwhile
            log.warning(
                "job %s lost its worker %s (last heartbeat %s); re-queued",
                job_id,
                worker,
                heartbeat_at,
            )
            add_event(
                session,
                job_id,
                "status",
                {
                    "status": "queued",
                    "reason": "worker_lost",
                    "worker": worker,
                    "attempt": attempt,
                    "last_heartbeat": heartbeat_at.isoformat() + "Z" if heartbeat_at else None,
                },
            )
            requeued.append(job_id)
    for job_id in requeued:
        dispatch(db, dispatcher, job_id)
    return len(requeued)


def give_back(db: Database, job_id: str, attempt: int, reason: str) -> bool:
    """running → queued by the attempt running it, which then stops: it gives its worker
    slot back without finishing (a producer whose trainer waits for that slot). The
    message is not sent again now: whoever the job waits for takes it from the row (a
    trainer runs its producers itself), and the outbox re-sends it once it has waited
    ``redispatch_after_s``. False when the job was no longer this attempt's."""
    with db.session() as session:
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
            .values(
                status="queued",
                dispatched_at=utcnow(),
                heartbeat_at=None,
                worker_pid=None,
                message=reason,
            )
        ).rowcount
        session.commit()
        if changed:
            add_event(
                session,
                job_id,
                "status",
                {"status": "queued", "reason": "given_back", "attempt": attempt, "why": reason},
            )
        return bool(changed)


def report(
    db: Database,
    job_id: str,
    type_: str,
    payload: dict[str, Any],
    progress: float | None = None,
    message: str | None = None,
    attempt: int | None = None,
) -> str:
    """Record one progress event (and the job's progress); returns the job's current status
    so the caller can notice a cancellation without another query. With ``attempt``, a
    worker whose attempt is no longer the job's (it was re-queued as lost and taken by
    another worker) records nothing and gets ``"lost"``."""
    with db.session() as session:
        if attempt is not None:
            row = session.execute(select(Job.status, Job.attempts).where(Job.id == job_id)).first()
            if row is None:
                return "lost"
            if row.attempts != attempt or row.status not in ("running", "cancelled"):
                return "lost"
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
    attempt: int | None = None,
) -> bool:
    """running → a final status. Never overwrites a cancellation that happened meanwhile;
    with ``attempt``, only while the job is still that attempt's (a worker that was taken
    for lost cannot finish the run that replaced it)."""
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
        owned = Job.attempts == attempt if attempt is not None else true()
        changed = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running", owned).values(**values)
        ).rowcount
        session.commit()
        if changed:
            payload = {"status": status} | ({"error": error} if error else {})
            add_event(session, job_id, "status", payload)
        return bool(changed)
