"""Celery tasks: claim the job row, run the matching runner, record how it ended."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import get_database
from app.settings import get_settings
from workers.context import JobCancelled, JobContext, JobError, pick_device

log = logging.getLogger(__name__)


def run_job(task, job_id: str, runner: Callable[[JobContext], dict[str, Any]]) -> str:
    settings = get_settings()
    db = get_database(settings.resolved_database_url)
    redelivered = bool((task.request.delivery_info or {}).get("redelivered"))
    if not jobs.claim(db, job_id, task.request.hostname or "worker", redelivered):
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
    )
    try:
        result = runner(ctx)
    except JobCancelled:
        log.info("job %s cancelled", job_id)
        return "cancelled"
    except JobError as exc:
        jobs.finish(db, job_id, "failed", error=str(exc))
        return "failed"
    except Exception as exc:
        log.exception("job %s failed", job_id)
        jobs.finish(db, job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return "failed"
    jobs.finish(db, job_id, "succeeded", result=result)
    return "succeeded"


@shared_task(name="eddyscope.generate", bind=True)
def generate(self, job_id: str) -> str:
    from workers.runners.generate import run_generate

    return run_job(self, job_id, run_generate)


@shared_task(name="eddyscope.train", bind=True)
def train(self, job_id: str) -> str:
    from workers.runners.train import run_train

    return run_job(self, job_id, run_train)


@shared_task(name="eddyscope.rollout", bind=True)
def rollout(self, job_id: str) -> str:
    from workers.runners.rollout import run_rollout

    return run_job(self, job_id, run_rollout)
