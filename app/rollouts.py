"""Reading rollouts for the API and the UI: the row, its per-step metrics (event rows), its
frames (SWMR HDF5, readable while the worker writes) and its exports (netCDF, CSV, GIF).

Two kinds share the row and the file layout: a single-model ``rollout`` (frame sources
``model``, ``reference``, ``error``) and a ``compare`` job's comparison (sources
``reference``, ``model:<i>`` and ``error:<i>`` for entry i, listed in ``Rollout.sources``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts import ArtifactStore
from app.db.tables import Job, JobEvent, Rollout
from app.jobs import FINAL, seq_after
from physics.io import read_rollout_frame, rollout_length

SOURCES = ("model", "reference", "error")


def sources_of(rollout: Rollout) -> list[dict[str, Any]]:
    """The frame sources of a rollout, each ``{"name", "role", ...}``: a comparison's as
    stored; a single rollout's derived from whether it has a model."""
    if rollout.kind == "compare":
        return list(rollout.sources or [])
    out: list[dict[str, Any]] = [
        {"name": "reference", "role": "reference", "resolution": rollout.resolution}
    ]
    if rollout.model_id is not None:
        about = {"model_id": rollout.model_id, "precision": "float32"}
        out.append({"name": "model", "role": "model", "resolution": rollout.resolution, **about})
        out.append({"name": "error", "role": "error", "resolution": rollout.resolution, **about})
    return out


def check_source(rollout: Rollout, source: str) -> None:
    """KeyError with the names this rollout takes, unless ``source`` is one of them."""
    if rollout.kind == "compare":
        names = [s["name"] for s in sources_of(rollout)]
        if source not in names:
            raise KeyError(
                f"source must be one of {', '.join(names)} for this comparison; got {source!r}"
            )
    elif source not in SOURCES:
        raise KeyError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")


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
        "kind": rollout.kind or "rollout",
        "sources": sources_of(rollout),
    }


def iter_metrics(session: Session, rollout: Rollout, page: int = 500) -> Iterator[dict[str, Any]]:
    """The per-step metrics in step order, read ``page`` events at a time, so an export of
    a 10 000-step comparison never holds all of them."""
    after = 0
    while True:
        rows = session.execute(
            select(JobEvent.seq, JobEvent.payload)
            .where(
                JobEvent.job_id == rollout.job_id,
                JobEvent.type == "metrics",
                JobEvent.seq > after,
            )
            .order_by(JobEvent.seq)
            .limit(page)
        ).all()
        for seq, payload in rows:
            yield {"seq": seq, **payload}
        if len(rows) < page:
            return
        after = rows[-1][0]


def metrics(session: Session, rollout: Rollout, after: int = 0) -> list[dict[str, Any]]:
    """Per-step metrics in step order, each with the event ``seq`` for incremental reads."""
    rows = session.execute(
        select(JobEvent.seq, JobEvent.payload)
        .where(JobEvent.job_id == rollout.job_id, JobEvent.type == "metrics", seq_after(after))
        .order_by(JobEvent.seq)
    ).all()
    return [{"seq": seq, **payload} for seq, payload in rows]


def frame(
    artifacts: ArtifactStore, rollout: Rollout, k: int, source: str
) -> tuple[np.ndarray, float]:
    """Frame ``k`` of ``source`` and its time; ``k`` counts from 0, the first frame (no
    negative indices: the newest is ``frame_count - 1``). IndexError when there is no such
    finished frame, KeyError for a source the rollout lacks."""
    check_source(rollout, source)
    if k < 0:
        raise IndexError(
            f"There is no frame {k}: frames are numbered from 0, the first one written."
        )
    path = artifacts.resolve(rollout.path)
    if not path.exists():
        raise IndexError("The rollout has not written any frame yet.")
    return read_rollout_frame(path, k, source)


# --- exports -----------------------------------------------------------------------------


def _descriptions(rollout: Rollout) -> dict[str, dict[str, Any]]:
    return {s["name"]: {k: v for k, v in s.items() if k != "name"} for s in sources_of(rollout)}


def _file(artifacts: ArtifactStore, rollout: Rollout) -> Path:
    path = artifacts.resolve(rollout.path)
    if not path.exists() or frame_count(artifacts, rollout) == 0:
        raise IndexError("The rollout has not written any frame yet.")
    return path


def _cached(
    session: Session, artifacts: ArtifactStore, rollout: Rollout, suffix: str
) -> tuple[str, bool]:
    """Where an export of ``rollout`` lives, and whether the one there is still good: kept
    once the job is final (its file no longer changes), remade while it runs."""
    relative = f"exports/{rollout.id}{suffix}"
    job = session.get(Job, rollout.job_id)
    final = job is not None and job.status in FINAL
    path = artifacts.resolve(relative)
    if not (final and path.exists()):
        return relative, False
    finished = job.finished_at.replace(tzinfo=UTC).timestamp() if job.finished_at else 0.0
    return relative, path.stat().st_mtime >= finished


def export_netcdf(session: Session, artifacts: ArtifactStore, rollout: Rollout) -> Path:
    """The rollout as netCDF (``physics.compare_export.export_netcdf``): fields per source,
    metrics over (source, time), the job's parameters as attributes."""
    from physics.compare_export import export_netcdf as write

    source = _file(artifacts, rollout)
    relative, fresh = _cached(session, artifacts, rollout, ".nc")
    if fresh:
        return artifacts.resolve(relative)
    job = session.get(Job, rollout.job_id)
    attrs: dict[str, Any] = dict(job.params) if job else {}
    attrs |= {
        "rollout_id": rollout.id,
        "job_id": rollout.job_id,
        "kind": rollout.kind or "rollout",
        "flow": rollout.flow,
        "steps": rollout.steps,
        "interval": rollout.interval,
        "resolution": rollout.resolution,
        "status": job.status if job else "unknown",
    }
    if job is not None and job.result.get("summary"):
        attrs["summary"] = job.result["summary"]
    with artifacts.atomic_write(relative) as tmp:
        write(source, tmp, iter_metrics(session, rollout), attrs, _descriptions(rollout))
    return artifacts.resolve(relative)


def export_csv(session: Session, rollout: Rollout) -> Iterator[str]:
    """The per-step metrics as CSV text chunks, one row per step per source (read as the
    chunks are consumed: keep ``session`` open until then)."""
    from physics.compare_export import metrics_csv

    return metrics_csv(iter_metrics(session, rollout), _descriptions(rollout))


def export_gif(
    session: Session, artifacts: ArtifactStore, rollout: Rollout, max_frames: int = 100
) -> Path:
    """The panels (reference, each model, each error) as an animated GIF, at most
    ``max_frames`` frames."""
    from physics.compare_export import render_gif

    source = _file(artifacts, rollout)
    relative, fresh = _cached(session, artifacts, rollout, f".{max_frames}.gif")
    if fresh:
        return artifacts.resolve(relative)
    labels = {s["name"]: s.get("label") or s["name"] for s in sources_of(rollout)}
    with artifacts.atomic_write(relative) as tmp:
        render_gif(source, tmp, labels, max_frames=max_frames)
    return artifacts.resolve(relative)
