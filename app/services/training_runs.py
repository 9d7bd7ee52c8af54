"""Training runs side by side: the runs the overlay page offers, and each chosen run's curves
read back from its events (``train`` per logged optimiser step, ``epoch`` with the
validation error), each event with ``t``, its wall time in seconds since the run started.

Bounded: at most ``MAX_RUNS`` runs at once and ``MAX_EVENTS`` events of each.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db.tables import Dataset, Job, JobEvent
from app.services import iso_time
from app.services.lineage import job_title

KINDS = ("train", "finetune")
MAX_RUNS = 8
MAX_EVENTS = 20_000
LISTED = 200


def training_jobs(state, limit: int = LISTED) -> list[dict[str, Any]]:
    """The newest training and fine-tuning runs (not shards), each ``{"id", "name",
    "status", "arch", "dataset", "epochs", "created_at"}``."""
    with state.db.session() as session:
        rows = session.scalars(
            select(Job)
            .where(Job.kind.in_(KINDS), Job.parent_id.is_(None))
            .order_by(Job.created_at.desc())
            .limit(limit)
        ).all()
        dataset_ids = {(j.params or {}).get("dataset_id") for j in rows} - {None}
        names = (
            dict(
                session.execute(
                    select(Dataset.id, Dataset.name).where(Dataset.id.in_(dataset_ids))
                ).all()
            )
            if dataset_ids
            else {}
        )
        return [
            {
                "id": j.id,
                "name": job_title(j),
                "status": j.status,
                "arch": (j.params or {}).get("arch"),
                "dataset": names.get((j.params or {}).get("dataset_id")),
                "epochs": (j.params or {}).get("epochs"),
                "created_at": iso_time(j.created_at),
            }
            for j in rows
        ]


def run_curves(state, job_ids: list[str]) -> list[dict[str, Any]]:
    """Each existing training run among ``job_ids`` (the first ``MAX_RUNS``), in that order:
    ``{"id", "name", "status", "epochs", "loss", "train": [...], "epoch": [...]}``, the
    events' payloads with ``t`` (seconds since the run started, or since its first event)."""
    out = []
    with state.db.session() as session:
        for job_id in list(dict.fromkeys(job_ids))[:MAX_RUNS]:
            job = session.get(Job, job_id)
            if job is None or job.kind not in KINDS:
                continue
            events = session.execute(
                select(JobEvent.type, JobEvent.payload, JobEvent.created_at)
                .where(JobEvent.job_id == job.id, JobEvent.type.in_(("train", "epoch")))
                .order_by(JobEvent.seq)
                .limit(MAX_EVENTS)
            ).all()
            start = job.started_at or (events[0][2] if events else None)
            curves: dict[str, list[dict[str, Any]]] = {"train": [], "epoch": []}
            for kind, payload, created_at in events:
                t = (created_at - start).total_seconds() if start and created_at else None
                curves[kind].append({**(payload or {}), "t": t})
            out.append(
                {
                    "id": job.id,
                    "name": job_title(job),
                    "status": job.status,
                    "epochs": (job.params or {}).get("epochs"),
                    "loss": (job.params or {}).get("loss"),
                    **curves,
                }
            )
    return out
