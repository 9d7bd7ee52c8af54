"""Reading rollouts for the API and the UI: the row, its per-step metrics (event rows), its
frames (SWMR HDF5, readable while the worker writes) and its exports (netCDF, CSV, GIF);
for the pages, a run resolved from either of its ids and one live update at a time.

Two kinds share the row and the file layout: a single-model ``rollout`` (frame sources
``model``, ``reference``, ``error``) and a ``compare`` job's comparison (sources
``reference``, ``model:<i>`` and ``error:<i>`` for entry i, and for a channel comparison
``les:<closure>`` for each baseline instead of the error sources; listed in
``Rollout.sources``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.artifacts import ArtifactStore
from app.db.tables import Dataset, InitialCondition, Job, JobEvent, Model, Rollout
from app.jobs import FINAL, seq_after
from app.services import iso_time
from app.services.flows import flow_dims
from app.services.jobs_view import job_dict
from app.state import AppState
from physics.formats.store import read_rollout_frame, read_rollout_frames, rollout_length

SOURCES = ("model", "reference", "error")
# The events a comparison's page follows: its setup, per-step metrics, a channel
# comparison's statistics of each source, and the summary.
COMPARE_EVENTS = ("compare_setup", "metrics", "channel_stats", "summary")


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


def rollout_fields(rollout: Rollout) -> dict[str, Any]:
    """The row's own columns, as ``GET /api/rollouts/{id}`` and the pages show them."""
    return {
        "id": rollout.id,
        "job_id": rollout.job_id,
        "model_id": rollout.model_id,
        "initial_condition_id": rollout.initial_condition_id,
        "flow": rollout.flow,
        "steps": rollout.steps,
        "interval": rollout.interval,
        "resolution": rollout.resolution,
        "created_at": rollout.created_at,
    }


def rollout_dict(rollout: Rollout) -> dict[str, Any]:
    """``rollout_fields`` JSON-ready, for a page's store. Not ``describe``: that opens the
    HDF5 file to count frames and a poll must stay quick; a page counts frames by the
    metrics it has read (one per frame)."""
    return {**rollout_fields(rollout), "created_at": iso_time(rollout.created_at)}


def describe(session: Session, artifacts: ArtifactStore, rollout: Rollout) -> dict[str, Any]:
    job = session.get(Job, rollout.job_id)
    return {
        **rollout_fields(rollout),
        "frames": frame_count(artifacts, rollout),
        "status": job.status if job else "unknown",
        "kind": rollout.kind or "rollout",
        "sources": sources_of(rollout),
    }


def _metrics_query(job_id: str, after: int = 0) -> Select:
    """A job's per-step metrics events after event ``after``, in step order."""
    return (
        select(JobEvent.seq, JobEvent.payload)
        .where(JobEvent.job_id == job_id, JobEvent.type == "metrics", seq_after(after))
        .order_by(JobEvent.seq)
    )


def iter_metrics(session: Session, rollout: Rollout, page: int = 500) -> Iterator[dict[str, Any]]:
    """The per-step metrics in step order, read ``page`` events at a time, so an export of
    a 10 000-step comparison never holds all of them."""
    after = 0
    while True:
        rows = metrics(session, rollout, after, limit=page)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["seq"]


def metrics(
    session: Session, rollout: Rollout, after: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """Per-step metrics in step order (at most ``limit``), each with the event ``seq`` for
    incremental reads."""
    query = _metrics_query(rollout.job_id, after)
    if limit is not None:
        query = query.limit(limit)
    return [{"seq": seq, **payload} for seq, payload in session.execute(query)]


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


class ExportUnavailable(ValueError):
    """An export this rollout's kind of file does not have (the sentence says what to use)."""


def _only_2d(rollout: Rollout, what: str) -> None:
    """netCDF and GIF exports are of 2D vorticity frames; a 3D rollout's velocity frames
    (channel or hit3d) are served per step as .npy, and its metrics as CSV."""
    from app.services.flows import is_channel_flow, is_hit3d_flow

    if is_channel_flow(rollout.flow) or is_hit3d_flow(rollout.flow):
        kind = "channel" if is_channel_flow(rollout.flow) else "periodic-box"
        raise ExportUnavailable(
            f"The {what} export is for 2D vorticity rollouts; rollout {rollout.id} holds 3D "
            f"{kind} velocity ({rollout.flow}). Take its frames as .npy from "
            f"/api/rollouts/{rollout.id}/frames/{{k}}?source=… and its per-step metrics from "
            f"/api/rollouts/{rollout.id}/metrics.csv."
        )


def export_netcdf(session: Session, artifacts: ArtifactStore, rollout: Rollout) -> Path:
    """The rollout as netCDF (``physics.formats.comparison.export_netcdf``): fields per source,
    metrics over (source, time), the job's parameters as attributes. 2D rollouts only
    (``ExportUnavailable`` for a channel rollout)."""
    from physics.formats.comparison import export_netcdf as write

    _only_2d(rollout, "netCDF")
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
        # Taken while the job runs, the file holds the steps written so far.
        "partial": int(job is None or job.status not in FINAL),
        "steps_written": session.scalar(
            select(func.count()).select_from(_metrics_query(rollout.job_id).subquery())
        ),
    }
    if job is not None and job.result.get("summary"):
        attrs["summary"] = job.result["summary"]
    with artifacts.atomic_write(relative) as tmp:
        write(source, tmp, iter_metrics(session, rollout), attrs, _descriptions(rollout))
    return artifacts.resolve(relative)


def export_csv(session: Session, rollout: Rollout) -> Iterator[str]:
    """The per-step metrics as CSV text chunks, one row per step per source (read as the
    chunks are consumed: keep ``session`` open until then)."""
    from physics.formats.comparison import metrics_csv

    return metrics_csv(iter_metrics(session, rollout), _descriptions(rollout))


def export_gif(
    session: Session, artifacts: ArtifactStore, rollout: Rollout, max_frames: int = 100
) -> Path:
    """The panels (reference, each model, each error) as an animated GIF, at most
    ``max_frames`` frames, each panel titled with its model's name (``gif_labels``) and a
    stopped model's panels with why (``gif_notes``). 2D rollouts only
    (``ExportUnavailable`` for a channel rollout)."""
    from physics.formats.gif import render_gif

    _only_2d(rollout, "GIF")
    source = _file(artifacts, rollout)
    relative, fresh = _cached(session, artifacts, rollout, f".{max_frames}.gif")
    if fresh:
        return artifacts.resolve(relative)
    labels = gif_labels(session, rollout)
    notes = gif_notes(session, rollout)
    with artifacts.atomic_write(relative) as tmp:
        render_gif(source, tmp, labels, max_frames=max_frames, notes=notes)
    return artifacts.resolve(relative)


def gif_labels(session: Session, rollout: Rollout) -> dict[str, str]:
    """Panel titles by source: the reference "reference solver", a model its model's name
    (a comparison's stored label, "name (precision)"), an error "error: <that model's
    title>"; a model whose row is gone keeps its id."""
    from app.db.tables import Model

    def model_name(model_id: str | None) -> str:
        row = session.get(Model, model_id) if model_id else None
        return (row.name if row is not None and row.name else None) or (model_id or "model")

    labels: dict[str, str] = {}
    for s in sources_of(rollout):
        name, role = s["name"], s.get("role")
        if role == "reference":
            labels[name] = "reference solver"
        elif role == "model":
            labels[name] = s.get("label") or (
                f"{model_name(s.get('model_id'))} ({s.get('precision') or 'float32'})"
                if rollout.kind == "compare"
                else model_name(s.get("model_id"))
            )
    for s in sources_of(rollout):
        if s.get("role") == "error":
            model = "model" if s["name"] == "error" else "model:" + s["name"].split(":", 1)[-1]
            labels[s["name"]] = f"error: {labels.get(model, model)}"
    return labels


def gif_notes(session: Session, rollout: Rollout) -> dict[str, str]:
    """Why a model source has no frame, by source: the message of its last status in the
    newest metrics event ("diverged at step 7", "failed: …")."""
    payload = session.scalar(
        select(JobEvent.payload)
        .where(JobEvent.job_id == rollout.job_id, JobEvent.type == "metrics")
        .order_by(JobEvent.seq.desc())
        .limit(1)
    )
    notes: dict[str, str] = {}
    for index, m in ((payload or {}).get("models") or {}).items():
        status = (m or {}).get("status")
        if status in ("diverged", "failed"):
            message = m.get("message") or status
            notes[f"model:{index}"] = (
                message if message.startswith(status) else f"{status}: {message}"
            )
    return notes


# --- the pages: a run from either id, live updates, one step's metrics, frames ---------------


def resolve(state: AppState, ref: str, kind: str = "rollout") -> dict[str, Any] | None:
    """A rollout id or the id of its job → ``{"job", "rollout" (None until the worker
    created it)}``; None when ``ref`` names neither. ``kind`` "compare" takes only a
    comparison (its rollout or its compare job); "rollout" any rollout, or a rollout job."""
    with state.db.session() as session:
        rollout = find_rollout(session, ref)
        if rollout is not None:
            if kind == "compare" and (rollout.kind or "rollout") != "compare":
                return None
            job = session.get(Job, rollout.job_id)
        else:
            job = session.get(Job, ref)
            if job is None or job.kind != kind:
                return None
            rollout = rollout_for_job(session, job.id)
        return {
            "job": job_dict(job) if job else None,
            "rollout": rollout_dict(rollout) if rollout else None,
        }


def planned_comparison(state: AppState, job: dict[str, Any]) -> dict[str, Any] | None:
    """What a 2D ``compare`` job will lay out, read from its parameters before its worker
    writes the ``compare_setup`` event: ``{"reference", "flow", "models": [{"index",
    "model_id", "name", "precision"}]}`` in the setup's own shape, so a live page can build
    its grid while the worker loads the models, and ``resolution``, the grid side of the
    initial condition (None when unknown), for the axes of its spectra. None for another
    kind of job."""
    if job.get("kind") != "compare":
        return None
    params = job.get("params") or {}
    with state.db.session() as session:
        flow = resolution = None
        if params.get("initial_condition_id"):
            ic = session.get(InitialCondition, params["initial_condition_id"])
            flow = ic.flow if ic is not None else None
            resolution = int(ic.shape[-1]) if ic is not None and ic.shape else None
        elif params.get("dataset_id"):
            dataset = session.get(Dataset, params["dataset_id"])
            flow = dataset.flow if dataset is not None else None
            resolution = dataset.resolution if dataset is not None else None
        entries = []
        for index, entry in enumerate(params.get("models") or []):
            model = session.get(Model, entry.get("model_id"))
            if flow is None and model is not None:
                flow = model.flow
            entries.append(
                {
                    "index": index,
                    "model_id": entry.get("model_id"),
                    "name": model.name if model is not None else None,
                    "precision": entry.get("precision") or "float32",
                }
            )
    if flow is None or flow_dims(flow) != 2:
        return None  # a channel comparison lays out its own panels
    return {
        "reference": bool(params.get("reference", True)),
        "flow": flow,
        "models": entries,
        "resolution": resolution,
    }


def poll_rollout(state: AppState, job_id: str, after: int, limit: int = 2000) -> dict[str, Any]:
    """One live update: the job row, its rollout (once the worker created it) and at most
    ``limit`` per-step metrics recorded after event ``after`` (as ``metrics``).

    The job is read before the metrics: a job already final here has written all of its
    metrics, so a poll that sees a final status and fewer than ``limit`` metrics is the last.
    ``replaced``: the job was re-run since event ``after`` (its worker was lost) and the new
    attempt replaced the earlier rows, so what a page shows must start again at step 0.
    """
    with state.db.session() as session:
        job = session.get(Job, job_id)
        rollout = rollout_for_job(session, job_id)
        new = metrics(session, rollout, after, limit) if rollout is not None else []
        replaced = session.scalar(
            select(JobEvent.seq)
            .where(
                JobEvent.job_id == job_id,
                JobEvent.type == "rollout_replaced",
                seq_after(after),
            )
            .limit(1)
        )
        return {
            "job": job_dict(job) if job else None,
            "rollout": rollout_dict(rollout) if rollout else None,
            "metrics": new,
            "complete": len(new) < limit,
            "replaced": replaced is not None and after > 0,
        }


def poll_comparison(state: AppState, job_id: str, after: int, limit: int = 500) -> dict[str, Any]:
    """One live update of a comparison: the job row, its rollout (once created) and at most
    ``limit`` of its ``COMPARE_EVENTS`` after event ``after``. The job is read first: a
    final job has written every event, so a poll that sees a final status and fewer than
    ``limit`` events is the last (``complete``)."""
    with state.db.session() as session:
        job = session.get(Job, job_id)
        rollout = rollout_for_job(session, job_id)
        rows = session.execute(
            select(JobEvent.seq, JobEvent.type, JobEvent.payload)
            .where(
                JobEvent.job_id == job_id,
                JobEvent.type.in_(COMPARE_EVENTS),
                seq_after(after),
            )
            .order_by(JobEvent.seq)
            .limit(limit)
        ).all()
        events = [{**(payload or {}), "seq": seq, "type": kind} for seq, kind, payload in rows]
        return {
            "job": job_dict(job) if job else None,
            "rollout": rollout_dict(rollout) if rollout else None,
            "events": events,
            "complete": len(events) < limit,
        }


def newest_event(state: AppState, job_id: str) -> int:
    """The newest event's ``seq`` of a job (0 when it has none): one indexed query, what a
    page's push loop asks between its reads to learn that something new was recorded."""
    with state.db.session() as session:
        return session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)) or 0


def step_metrics(state: AppState, job_id: str, step: int) -> dict[str, Any] | None:
    """The metrics event of one step (the step-th metrics event, checked by its payload)."""
    with state.db.session() as session:
        base = _metrics_query(job_id)
        row = session.execute(base.offset(max(step, 0)).limit(1)).first()
        if row is not None and row.payload.get("step") == step:
            return {"seq": row.seq, **row.payload}
        for seq, payload in session.execute(base):
            if payload.get("step") == step:
                return {"seq": seq, **payload}
    return None


def _frames(
    state: AppState, rollout_id: str, k: int, sources: list[str] | tuple[str, ...]
) -> tuple[dict[str, np.ndarray | None], float | None]:
    """Frame ``k`` of each source and its time; a source missing or not written yet is None."""
    with state.db.session() as session:
        rollout = find_rollout(session, rollout_id)
    out: dict[str, np.ndarray | None] = dict.fromkeys(sources)
    if rollout is None or k < 0:
        return out, None
    known = {s["name"] for s in sources_of(rollout)}
    path = state.artifacts.resolve(rollout.path)
    try:
        read, t = read_rollout_frames(path, k, [s for s in sources if s in known])
    except (OSError, KeyError, ValueError):  # not written yet, or being replaced
        return out, None
    out.update(read)
    return out, t


def rollout_frames(
    state: AppState, rollout_id: str, k: int, sources: tuple[str, ...]
) -> tuple[dict[str, np.ndarray | None], float | None]:
    """Frame ``k`` of each of a single rollout's ``sources`` (model, reference, error)."""
    # The error is model − reference: computed here from the two frames already read.
    read = [s for s in ("model", "reference") if s in sources or "error" in sources]
    out, t = _frames(state, rollout_id, k, read)
    model, reference = out.get("model"), out.get("reference")
    if "error" in sources and model is not None and reference is not None:
        out["error"] = model - reference
    return {s: out.get(s) for s in sources}, t


def comparison_frames(
    state: AppState, rollout_id: str, k: int, sources: tuple[str, ...] | list[str]
) -> tuple[dict[str, np.ndarray | None], float | None]:
    """Frame ``k`` of each named source of a comparison (``reference``, ``model:<i>``,
    ``error:<i>``)."""
    return _frames(state, rollout_id, k, sources)
