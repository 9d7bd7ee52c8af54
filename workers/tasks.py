"""Celery tasks, one per task name in the job-kind registry (``app.jobkinds``): claim the
job row, run the kind's runner, record how it ended, then run the kind's after-finish hook
(a shard rolls its state up to its coordinating job)."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

from celery import shared_task

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import get_database
from app.jobkinds import get_kind, task_names
from app.settings import get_settings
from workers.context import JobCancelled, JobContext, JobError, pick_device
from workers.heartbeat import Heartbeat

log = logging.getLogger(__name__)

Runner = Callable[[JobContext], dict[str, Any]]


def runner_of(kind: str) -> Runner:
    """The kind's worker function, imported when a job of the kind runs so the worker starts
    fast and the API never loads torch models."""
    module, _, name = get_kind(kind).runner.partition(":")
    return getattr(importlib.import_module(module), name)


def run_job(job_id: str, worker: str, redelivered: bool) -> str:
    settings = get_settings()
    db = get_database(settings.resolved_database_url)
    attempt = jobs.claim(
        db, job_id, worker, redelivered, lost_after_s=settings.lost_after_s, pid=os.getpid()
    )
    if not attempt:
        log.info("job %s is not queued any more (cancelled or taken); skipping", job_id)
        return "skipped"
    with db.session() as session:
        job = jobs.get_job(session, job_id)
    ctx = JobContext(
        job_id=job_id,
        kind=job.kind,
        params=dict(job.params),
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.resolved_artifact_root),
        device=pick_device(settings.device),
        parent_id=job.parent_id,
        attempt=attempt,
    )
    kind = get_kind(job.kind)
    with Heartbeat(db, job_id, attempt, settings.heartbeat_every_s, ctx.lost.set):
        outcome = _run(ctx, runner_of(job.kind))
    if outcome == "lost":
        return outcome
    if kind.after_finish is not None:
        kind.after_finish(db, ctx.artifacts, job_id)
    return outcome


def _run(ctx: JobContext, runner: Runner) -> str:
    try:
        result = runner(ctx)
    except JobCancelled:
        if ctx.lost.is_set():
            log.warning(
                "job %s was queued again as lost; attempt %s stops", ctx.job_id, ctx.attempt
            )
            return "lost"
        log.info("job %s cancelled", ctx.job_id)
        return "cancelled"
    except JobError as exc:
        jobs.finish(ctx.db, ctx.job_id, "failed", error=str(exc), attempt=ctx.attempt)
        return "failed"
    except Exception as exc:
        log.exception("job %s failed", ctx.job_id)
        error = f"{type(exc).__name__}: {exc}"
        jobs.finish(ctx.db, ctx.job_id, "failed", error=error, attempt=ctx.attempt)
        return "failed"
    jobs.finish(ctx.db, ctx.job_id, "succeeded", result=result, attempt=ctx.attempt)
    return "succeeded"


def _task(name: str):
    # Every task does the same: the job row says its kind, the kind names its runner.
    @shared_task(name=name, bind=True)
    def run(self, job_id: str) -> str:
        delivery = self.request.delivery_info or {}
        return run_job(job_id, self.request.hostname or "worker", bool(delivery.get("redelivered")))

    return run


TASKS = {name: _task(name) for name in sorted(set(task_names().values()))}
