"""The producers of an online train job, seen from its trainer: it makes them (child jobs of
kind ``produce``, one range of trajectories each), watches them, replaces one that failed or
was cancelled with a new job for the trajectories still missing, and tells the trainer when
none will send anything again.

A producer whose worker dies needs nothing from here: its message is redelivered (or the
API's sweep re-queues it) and it resumes by itself. Which producer replaced which is in the
new job's parameters (``replaces``), so a trainer that resumes after a kill knows it too.

A producer no worker takes (the trainer holds the only slot, as under a default
``eddyscope up``, or every slot is busy) is run by the trainer itself: once it has been
queued ``ADOPT_AFTER_S``, the trainer starts ``python -m workers.online_producers JOB
WORKER`` as a child process, which runs the job through the worker's own code path
(``workers.tasks.run_job``: the atomic claim, heartbeat, events, the same transport and
back-pressure), at most ``LOCAL_AT_ONCE`` at a time. The claim (queued → running) is what
keeps it from running twice: a worker that receives the job's message later finds the row
taken and skips it. Its row's worker says where it runs (``… (child of the trainer)``).
When the trainer ends it closes the stream, and the child stops at its next push. A child
outlives a trainer killed mid-run as any producer does: it streams until the stream is full,
and once the trainer waits in the queue it gives its job back (``workers.runners.produce``),
to be run again by the attempt that resumes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import select

from app import jobs
from app.db.tables import Job, JobEvent
from app.jobkinds.produce import PRODUCE_KIND
from workers.context import JobContext, JobError

log = logging.getLogger(__name__)

# Replacements allowed beyond the first producers before the trainer gives up: a producer
# that fails every time (a solver that diverges) must not be replaced forever.
EXTRA_REPLACEMENTS = 3
# A producer still queued this long has no free worker (a free one takes a message within a
# second or two): the trainer runs it in a child process of its own.
ADOPT_AFTER_S = 10.0
# Producers the trainer runs in its own child processes at once: one keeps a single-worker
# machine at one process more than the worker's (the children share the trainer's slot).
LOCAL_AT_ONCE = 1
# What the row's worker ends with for a producer run by its trainer.
IN_TRAINER = " (child of the trainer)"
# How long an ended trainer waits for its children to see the closed stream and stop.
LOCAL_GRACE_S = 30.0


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
        self.local: dict[str, subprocess.Popen] = {}  # producer job id → child process
        self._queued_since: dict[str, float] = {}
        self._worker: str | None = None

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
        """Replace each failed or cancelled producer whose trajectories are not all in yet,
        and run one no worker has taken in a child process; returns the
        ``producer_replaced`` and ``producer_adopted`` events to report."""
        rows = self.children()
        events = self._replace(rows, ledger)
        adopted = self.adopt(self.children() if events else rows)
        return events + ([adopted] if adopted else [])

    def _replace(self, rows: list[Job], ledger) -> list[dict[str, Any]]:
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

    # --- running them here when no worker does -----------------------------------------

    def adopt(self, rows: list[Job]) -> dict[str, Any] | None:
        """Start a child process for the producer queued longest, once it has waited
        ``ADOPT_AFTER_S`` and fewer than ``LOCAL_AT_ONCE`` of this trainer's children run;
        returns the ``producer_adopted`` event, or None."""
        self._reap()
        now = time.monotonic()
        queued = [job for job in rows if job.status == "queued"]
        self._queued_since = {job.id: self._queued_since.get(job.id, now) for job in queued}
        # A child counts while its job is active (one whose job has ended may still be
        # exiting); children of an earlier attempt of this trainer (killed) count too.
        active = {job.id for job in rows if job.status in jobs.ACTIVE}
        here = {job.id for job in rows if job.status == "running" and _in_trainer(job.worker)}
        if len(here | (set(self.local) & active)) >= LOCAL_AT_ONCE:
            return None
        waited = [job for job in queued if now - self._queued_since[job.id] >= ADOPT_AFTER_S]
        if not waited:
            return None
        job = waited[0]
        waited_s = now - self._queued_since.pop(job.id)
        worker = self._trainer_worker() + IN_TRAINER
        command = [sys.executable, "-m", "workers.online_producers", job.id, worker]
        process = subprocess.Popen(command)
        self.local[job.id] = process
        log.info(
            "job %s: producer %s waited %.0f s for a worker; running it in child process %s",
            self.ctx.job_id,
            job.id,
            waited_s,
            process.pid,
        )
        return {
            "type": "producer_adopted",
            "producer": job.id,
            "worker": worker,
            "pid": process.pid,
            "waited_s": round(waited_s, 1),
        }

    def _trainer_worker(self) -> str:
        if self._worker is None:
            with self.ctx.db.session() as session:
                name = session.scalar(select(Job.worker).where(Job.id == self.ctx.job_id))
            self._worker = name or "worker"
        return self._worker

    def _reap(self) -> None:
        for job_id, process in list(self.local.items()):
            if process.poll() is not None:
                del self.local[job_id]

    def stop_local(self, grace_s: float = LOCAL_GRACE_S) -> None:
        """After the trainer ended and closed the stream: wait for its children to stop
        (they do at their next push, or within a second of seeing the trainer's row
        final), then end those still running and cancel their rows, so no producer
        outlives the job it fed."""
        deadline = time.monotonic() + grace_s
        for process in self.local.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _end(process)
        stopped = list(self.local)
        self.local.clear()
        for job_id in stopped:
            if jobs.status_of(self.ctx.db, job_id) in jobs.ACTIVE:
                jobs.cancel(self.ctx.db, _NoRevoke(), job_id)

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


def _in_trainer(worker: str | None) -> bool:
    return bool(worker) and worker.endswith(IN_TRAINER)


def _end(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_adopted(job_id: str, worker: str) -> str:
    """The child process's work: the producer job through the worker's own code path, as
    ``worker``; "skipped" when a worker claimed it first."""
    import torch

    from app.settings import get_settings
    from workers.tasks import run_job

    # As a worker process does (``workers.worker_app``): half the cores, the rest are the
    # trainer's.
    torch.set_num_threads(get_settings().torch_threads or max(1, (os.cpu_count() or 2) // 2))
    return run_job(job_id, worker, False)


class _NoRevoke:
    """Cancels through the row only: a producer polls its row, and the worker that would
    run a queued one skips it (it is no longer queued)."""

    def send(self, job) -> None:  # pragma: no cover - never called by cancel
        raise NotImplementedError

    def revoke(self, job) -> None:
        pass


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    run_adopted(sys.argv[1], sys.argv[2])
