"""Celery tasks: claim the job row, run the matching runner, record how it ended."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import get_database
from app.generation import on_shard_finished
from app.settings import get_settings
from workers.context import JobCancelled, JobContext, JobError, pick_device

log = logging.getLogger(__name__)


def run_job(
    job_id: str, runner: Callable[[JobContext], dict[str, Any]], worker: str, redelivered: bool
) -> str:
    settings = get_settings()
    db = get_database(settings.resolved_database_url)
    if not jobs.claim(db, job_id, worker, redelivered):
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
    )
    outcome = _run(ctx, runner)
    if job.parent_id:
        on_shard_finished(db, ctx.artifacts, job_id)
    return outcome


def _run(ctx: JobContext, runner: Callable[[JobContext], dict[str, Any]]) -> str:
    try:
        result = runner(ctx)
    except JobCancelled:
        log.info("job %s cancelled", ctx.job_id)
        return "cancelled"
    except JobError as exc:
        jobs.finish(ctx.db, ctx.job_id, "failed", error=str(exc))
        return "failed"
    except Exception as exc:
        log.exception("job %s failed", ctx.job_id)
        jobs.finish(ctx.db, ctx.job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return "failed"
    jobs.finish(ctx.db, ctx.job_id, "succeeded", result=result)
    return "succeeded"


def _runner(module: str, name: str) -> Callable[[JobContext], dict[str, Any]]:
    # Imported when a job runs, so the worker starts fast and the API never loads torch models.
    def run(ctx: JobContext) -> dict[str, Any]:
        return getattr(importlib.import_module(f"workers.runners.{module}"), name)(ctx)

    return run


RUNNERS = {
    "generate-shard": _runner("generate", "run_generate_shard"),
    "train": _runner("train", "run_train"),
    "finetune": _runner("train", "run_train"),
    "rollout": _runner("rollout", "run_rollout"),
    "compare": _runner("compare", "run_compare"),
}


def _run_from_task(task, job_id: str, kind: str) -> str:
    delivery = task.request.delivery_info or {}
    return run_job(
        job_id, RUNNERS[kind], task.request.hostname or "worker", bool(delivery.get("redelivered"))
    )


@shared_task(name="eddyscope.generate_shard", bind=True)
def generate_shard(self, job_id: str) -> str:
    return _run_from_task(self, job_id, "generate-shard")


@shared_task(name="eddyscope.train", bind=True)
def train(self, job_id: str) -> str:
    # train and finetune share a runner; it reads the job's kind.
    return _run_from_task(self, job_id, "train")


@shared_task(name="eddyscope.rollout", bind=True)
def rollout(self, job_id: str) -> str:
    return _run_from_task(self, job_id, "rollout")


@shared_task(name="eddyscope.compare", bind=True)
def compare(self, job_id: str) -> str:
    return _run_from_task(self, job_id, "compare")
