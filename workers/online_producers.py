"""The producers of an online train job, seen from its trainer: it makes them (child jobs of
kind ``produce``, one range of trajectories each), watches them, replaces one that failed or
was cancelled with a new job for the trajectories still missing, and tells the trainer when
none will send anything again.

A producer whose worker dies needs nothing from here: its message is redelivered (or the
API's sweep re-queues it) and it resumes by itself. Which producer replaced which is in the
new job's parameters (``replaces``), so a trainer that resumes after a kill knows it too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app import jobs
from app.db.tables import Job, JobEvent
from app.jobkinds.produce import PRODUCE_KIND
from workers.context import JobContext, JobError

# Replacements allowed beyond the first producers before the trainer gives up: a producer
# that fails every time (a solver that diverges) must not be replaced forever.
EXTRA_REPLACEMENTS = 3


def plan_ranges(trajectories: int, producers: int) -> list[tuple[int, int]]:
    """(first trajectory, count) of each producer: the trajectories split as evenly as they
    go, the first producers taking one more."""
    base, extra = divmod(trajectories, producers)
    ranges, start = [], 0
    for index in range(producers):
        count = base + (index < extra)
        ranges.append((start, count))
        start += count
    return ranges


class ProducerPool:
    """``template``: what every producer's parameters hold besides its range (the flow's
    generation parameters, window, transport, online seed, solver batch, stream size)."""

    def __init__(self, ctx: JobContext, template: dict[str, Any], online: dict[str, Any]):
        self.ctx = ctx
        self.template = template
        self.online = online
        self._dispatcher = None
        self.replacements = 0

    # --- making them -------------------------------------------------------------------

    def dispatcher(self):
        if self._dispatcher is None:
            from app.queue.celery_app import CeleryDispatcher, make_celery

            self._dispatcher = CeleryDispatcher(make_celery(self.ctx.settings))
        return self._dispatcher

    def children(self) -> list[Job]:
        with self.ctx.db.session() as session:
            rows = session.scalars(
                select(Job)
                .where(Job.parent_id == self.ctx.job_id, Job.kind == PRODUCE_KIND)
                .order_by(Job.created_at)
            ).all()
            session.expunge_all()
            return list(rows)

    def start(self) -> list[str]:
        """Make and send the producers, unless an earlier attempt of the trainer did."""
        existing = self.children()
        if existing:
            return [job.id for job in existing]
        ranges = plan_ranges(self.online["trajectories"], self.online["producers"])
        return [self._make(index, start, count) for index, (start, count) in enumerate(ranges)]

    def _make(self, index: int, start: int, count: int, replaces: str | None = None) -> str:
        with self.ctx.db.session() as session:
            owner = session.scalar(select(Job.owner_id).where(Job.id == self.ctx.job_id))
            job = Job(
                kind=PRODUCE_KIND,
                parent_id=self.ctx.job_id,
                queue=self.online["queue"],
                status="queued",
                owner_id=owner,
                params={
                    **self.template,
                    "producer": index,
                    "start": start,
                    "count": count,
                    "replaces": replaces,
                },
            )
            session.add(job)
            session.commit()
            jobs.add_event(session, job.id, "status", {"status": "queued"})
            job_id = job.id
        jobs.dispatch(self.ctx.db, self.dispatcher(), job_id)  # queued rows are re-sent anyway
        return job_id

    # --- watching them -----------------------------------------------------------------

    def supervise(self, ledger) -> list[dict[str, Any]]:
        """Replace each failed or cancelled producer whose trajectories are not all in yet;
        returns the ``producer_replaced`` events to report."""
        rows = self.children()
        replaced = {job.params.get("replaces") for job in rows}
        self.replacements = sum(job.params.get("replaces") is not None for job in rows)
        events = []
        for job in rows:
            if job.status not in ("failed", "cancelled") or job.id in replaced:
                continue
            start = ledger.first_incomplete(job.params["start"], job.params["count"])
            if start is None:
                continue  # everything it was to make arrived before it stopped
            if self.replacements >= self.online["producers"] + EXTRA_REPLACEMENTS:
                raise JobError(
                    f"producers keep stopping ({self.replacements} replaced); the last, "
                    f"{job.id}, {job.status}: {job.error or job.message or 'no reason given'}"
                )
            end = job.params["start"] + job.params["count"]
            new_id = self._make(job.params["producer"], start, end - start, replaces=job.id)
            self.replacements += 1
            events.append(
                {
                    "type": "producer_replaced",
                    "replaced": job.id,
                    "by": new_id,
                    "reason": job.status,
                    "error": job.error,
                    "start": start,
                    "count": end - start,
                }
            )
        return events

    def finished(self, ledger) -> bool:
        """No producer will send anything again: each has ended, and one that failed or was
        cancelled has been replaced or had nothing left to make."""
        rows = self.children()
        if not rows:
            return False
        replaced = {job.params.get("replaces") for job in rows}
        for job in rows:
            if job.status in jobs.ACTIVE:
                return False
            stopped = job.status in ("failed", "cancelled") and job.id not in replaced
            missing = ledger.first_incomplete(job.params["start"], job.params["count"])
            if stopped and missing is not None:
                return False
        return True

    def status(self) -> dict[str, Any]:
        """The producers as the Train page lists them (job, status, worker, range, what they
        have pushed and how fast), and the totals."""
        rows = self.children()
        latest: dict[str, dict[str, Any]] = {}
        with self.ctx.db.session() as session:
            for job in rows:
                if job.status == "queued":
                    continue
                payload = session.scalar(
                    select(JobEvent.payload)
                    .where(JobEvent.job_id == job.id, JobEvent.type == "progress")
                    .order_by(JobEvent.seq.desc())
                    .limit(1)
                )
                latest[job.id] = (job.result or {}) if job.status == "succeeded" else payload or {}
        producers = []
        for job in rows:
            seen = latest.get(job.id, {})
            producers.append(
                {
                    "job_id": job.id,
                    "status": job.status,
                    "worker": job.worker,
                    "attempts": job.attempts,
                    "start": job.params["start"],
                    "count": job.params["count"],
                    "replaces": job.params.get("replaces"),
                    "produced": int(seen.get("produced") or 0),
                    "produced_per_s": float(seen.get("produced_per_s") or 0.0),
                    "blocked_s": float(seen.get("blocked_s") or 0.0),
                }
            )
        running = [p for p in producers if p["status"] == "running"]
        return {
            "producers": producers,
            "produced": sum(p["produced"] for p in producers),
            "produced_per_s": sum(p["produced_per_s"] for p in running),
            "producers_running": len(running),
            "producers_queued": sum(p["status"] == "queued" for p in producers),
        }

    def any_running(self) -> bool:
        return any(job.status == "running" for job in self.children())

    def cancel_queued(self) -> None:
        """Cancel the producers no worker has started yet: the trainer has ended. Running
        ones stop by themselves at their next push (the stream is closed) or within a
        second (they watch the trainer's row), and finish as succeeded."""
        for job in self.children():
            if job.status == "queued":
                jobs.cancel(self.ctx.db, _NoRevoke(), job.id)


class _NoRevoke:
    """Cancels through the row only: a producer polls its row, and the worker that would
    run a queued one skips it (it is no longer queued)."""

    def send(self, job) -> None:  # pragma: no cover - never called by cancel
        raise NotImplementedError

    def revoke(self, job) -> None:
        pass
