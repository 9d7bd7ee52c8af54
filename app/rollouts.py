"""Reading rollouts for the API and the UI: the row, its per-step metrics (event rows) and
its frames (SWMR HDF5, readable while the worker writes)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts import ArtifactStore
from app.db.tables import Job, JobEvent, Rollout
from physics.io import read_rollout_frame, rollout_length

SOURCES = ("model", "reference", "error")


def find_rollout(session: Session, rollout_id: str) -> Rollout | None:
    return session.get(Rollout, rollout_id)


def rollout_for_job(session: Session, job_id: str) -> Rollout | None:
    return session.scalar(select(Rollout).where(Rollout.job_id == job_id))


def frame_count(artifacts: ArtifactStore, rollout: Rollout) -> int:
    path = artifacts.resolve(rollout.path)
    if not path.exists():
        return 0
    try:
        return rollout_length(path)
    except OSError:
        return 0


def describe(session: Session, artifacts: ArtifactStore, rollout: Rollout) -> dict[str, Any]:
    job = session.get(Job, rollout.job_id)
    return {
        "id": rollout.id,
        "job_id": rollout.job_id,
        "model_id": rollout.model_id,
        "initial_condition_id": rollout.initial_condition_id,
        "flow": rollout.flow,
        "steps": rollout.steps,
        "interval": rollout.interval,
        "resolution": rollout.resolution,
        "frames": frame_count(artifacts, rollout),
        "status": job.status if job else "unknown",
        "created_at": rollout.created_at,
    }


def metrics(session: Session, rollout: Rollout, after: int = 0) -> list[dict[str, Any]]:
    """Per-step metrics in step order, each with the event ``seq`` for incremental reads."""
    rows = session.execute(
        select(JobEvent.seq, JobEvent.payload)
        .where(JobEvent.job_id == rollout.job_id, JobEvent.type == "metrics", JobEvent.seq > after)
        .order_by(JobEvent.seq)
    ).all()
    return [{"seq": seq, **payload} for seq, payload in rows]


def frame(
    artifacts: ArtifactStore, rollout: Rollout, k: int, source: str
) -> tuple[np.ndarray, float]:
    if source not in SOURCES:
        raise KeyError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    path = artifacts.resolve(rollout.path)
    if not path.exists():
        raise IndexError("the rollout has not written any frame yet")
    return read_rollout_frame(path, k, source)
