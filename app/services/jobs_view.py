"""Jobs as the pages list and act on them: rows as JSON-ready dicts, the listings (top-level
jobs, active jobs of a kind, the generation jobs worth showing), submission through the same
validation as ``POST /api/jobs``, cancel, retry and event reads.

The job lifecycle itself (submit, cancel, dispatch, events) is ``app.jobs``; this module
only reads rows and calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select

from app import jobs
from app.db.tables import Job, JobEvent, Rollout, utcnow
from app.jobkinds import InvalidParams, validate_params
from app.services import auth, iso_time, model_fit
from app.state import AppState

__all__ = ["InvalidParams"]

# A finished generate job stays on the Data page this long (its dataset's Preview, its error).
RECENT_S = 24 * 3600
RECENT_SUCCESS_S = 120


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "queue": job.queue,
        "params": job.params or {},
        "progress": float(job.progress or 0.0),
        "message": job.message,
        "error": job.error,
        "result": job.result or {},
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "finished_at": iso_time(job.finished_at),
    }


def grid_label(grid: list[int] | tuple[int, ...]) -> str:
    """A grid as the pages write it: ``64²`` for a square 2D grid, else ``nx×ny×nz``."""
    sizes = [int(g) for g in grid]
    if len(sizes) == 2 and sizes[0] == sizes[1]:
        return f"{sizes[0]}²"
    return "×".join(str(g) for g in sizes)


def channel_stored_grid(p: dict[str, Any]) -> list[int]:
    """The grid (nx, ny, nz) a channel generate job stores: ``output_grid`` (nx, nz) or
    (nx, ny, nz) on the solver's ``channel_grid`` (default: the flow's)."""
    from physics.flows import find_flow

    flow = find_flow(p.get("flow"))
    solver = list(p.get("channel_grid") or getattr(flow, "default_grid", None) or [32, 49, 32])
    out = list(p.get("output_grid") or [])
    if len(out) == 3:
        return [int(g) for g in out]
    if len(out) == 2:
        return [int(out[0]), int(solver[1]), int(out[1])]
    return [int(g) for g in solver]


def generate_grid_label(p: dict[str, Any]) -> str:
    """The grid a generate job's dataset is stored on: ``nx×ny×nz`` for a channel flow
    (with ``, solver nx×ny×nz`` when that differs), ``N³`` for hit3d (with ``(solver M³)``
    when filtered from a finer grid), ``N²`` for a 2D flow."""
    from app.services.flows import is_channel_flow, is_hit3d_flow

    if is_hit3d_flow(p.get("flow")):
        n, solver = p.get("resolution"), p.get("solver_resolution")
        return f"{n}³" + (f" (solver {solver}³)" if solver and solver != n else "")
    if not is_channel_flow(p.get("flow")):
        return f"{p.get('resolution', 64)}²"
    stored = channel_stored_grid(p)
    label = grid_label(stored)
    solver = p.get("channel_grid")
    if solver and [int(g) for g in solver] != stored:
        label += f" (solver {grid_label(solver)})"
    return label


def job_query(
    *,
    parent_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> Select:
    """The listing of ``GET /api/jobs`` and of the Runs page (``list_jobs``), newest first:
    shard jobs are listed under their parent (``parent_id``), not among the top-level jobs."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    query = query.where(Job.parent_id == parent_id if parent_id else Job.parent_id.is_(None))
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    return query


def list_jobs(state: AppState, limit: int = 100) -> list[dict[str, Any]]:
    """The top-level jobs, newest first; a rollout job carries its ``rollout_id``."""
    with state.db.session() as session:
        # Shards are shown through their parent's progress, not as rows of their own.
        out = [job_dict(job) for job in session.scalars(job_query(limit=limit))]
        # A rollout publishes its id early, but look it up too for jobs that did not.
        missing = [
            j["id"] for j in out if j["kind"] == "rollout" and "rollout_id" not in j["result"]
        ]
        if missing:
            found = dict(
                session.execute(
                    select(Rollout.job_id, Rollout.id).where(Rollout.job_id.in_(missing))
                ).all()
            )
            for j in out:
                if j["id"] in found:
                    j["result"] = {**j["result"], "rollout_id": found[j["id"]]}
    return out


def get_job(state: AppState, job_id: str) -> dict[str, Any] | None:
    with state.db.session() as session:
        try:
            return job_dict(jobs.get_job(session, job_id))
        except jobs.JobNotFound:
            return None


def submit_job(state: AppState, kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate then submit, exactly as ``POST /api/jobs``; raises InvalidParams."""
    owner_id = auth.require_create()
    with state.db.session() as session:
        params, queue = validate_params(session, kind, raw, settings=state.settings, owner=owner_id)
    job = jobs.submit(state.db, state.dispatcher, kind, params, queue, owner_id=owner_id)
    warnings = model_fit.job_start_warnings(state, kind, params)
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "params": params,
        "warnings": warnings,
    }


def check_may_change(state: AppState, job_id: str) -> None:
    """Raise ``auth.Forbidden`` unless the current user may cancel or retry the job (its
    owner, or an admin); a missing job passes (the caller says it is missing)."""
    with state.db.session() as session:
        job = session.get(Job, job_id)
        owner_id = job.owner_id if job is not None else None
        if job is None:
            return
    auth.require_change(owner_id, "this job")


def cancel_job(state: AppState, job_id: str) -> dict[str, Any] | None:
    """Cancel an active job (a final one is left as it is); None when there is no such job.
    Raises ``auth.Forbidden`` unless the current user is its owner or an admin."""
    check_may_change(state, job_id)
    try:
        job = jobs.cancel(state.db, state.dispatcher, job_id)
    except jobs.JobNotFound:
        return None
    return job_dict(job)


def queue_place(state: AppState, job_id: str, queue: str | None) -> dict[str, Any]:
    """Where a queued job waits: ``broker`` (in words: "Redis", "the embedded SQLite
    queue"…) and ``ahead``, how many jobs its queue hands out before it (None when the broker
    cannot tell or the job's message is not in the broker yet, e.g. still in the outbox)."""
    from app.queue.waiting import waiting_order

    kind = state.broker.kind
    url = state.broker.url
    if kind == "embedded" or url.startswith("sqla+"):
        where = "the embedded SQLite queue"
    elif url.startswith(("redis://", "rediss://", "unix://")):
        where = "the Redis queue"
    else:
        where = "the broker's queue"
    ahead = None
    if queue:
        try:
            order = waiting_order(url, queue)
        except Exception:  # the broker does not answer: the page says it cannot tell
            order = None
        if order is not None and job_id in order:
            ahead = order.index(job_id)
    return {"broker": where, "ahead": ahead}


def retry_generate(state: AppState, job_id: str) -> dict[str, Any]:
    """Rerun the failed (or cancelled) shards of a generate job, as
    ``POST /api/jobs/{id}/retry``; raises ValueError with a sentence when it cannot."""
    from app.jobkinds.generate import retry

    with state.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise ValueError(f"There is no job with id {job_id!r}.")
        if job.kind != "generate":
            raise ValueError("Only generate jobs can be retried.")
        if job.status not in ("failed", "cancelled"):
            raise ValueError(f"The job is {job.status}; only a failed or cancelled job is retried.")
        owner_id = job.owner_id
    auth.require_change(owner_id, "this job")
    return job_dict(retry(state.db, state.dispatcher, state.artifacts, job_id))


def job_events(
    state: AppState,
    job_id: str,
    after: int = 0,
    types: tuple[str, ...] | None = None,
    limit: int = 5000,
) -> list[dict[str, Any]]:
    """Events after ``after`` (of the given ``types``), each ``{"seq", "type", **payload}``."""
    with state.db.session() as session:
        query = select(JobEvent).where(JobEvent.job_id == job_id, jobs.seq_after(after))
        if types:
            query = query.where(JobEvent.type.in_(types))
        rows = session.scalars(query.order_by(JobEvent.seq).limit(limit)).all()
        return [{"seq": e.seq, "type": e.type, **(e.payload or {})} for e in rows]


def active_jobs(state: AppState, kind: str) -> list[dict[str, Any]]:
    with state.db.session() as session:
        rows = session.scalars(
            select(Job)
            .where(Job.kind == kind, Job.status.in_(jobs.ACTIVE))
            .order_by(Job.created_at.desc())
        ).all()
        return [job_dict(j) for j in rows]


def generation_jobs(state: AppState, limit: int = 8) -> list[dict[str, Any]]:
    """Generate jobs worth showing: every active one (queued, running, finishing), failed or
    cancelled ones of the last day (they can be retried) and ones that succeeded in the last
    two minutes; each with ``shards_done``, ``shards_total`` and ``shards_failed`` counted
    from its shard rows."""
    now = utcnow()
    with state.db.session() as session:
        rows = session.scalars(
            select(Job)
            .where(
                Job.kind == "generate",
                Job.parent_id.is_(None),
                Job.status.in_((*jobs.ACTIVE, "finishing"))
                | (
                    Job.status.in_(("failed", "cancelled"))
                    & (Job.created_at >= now - timedelta(seconds=RECENT_S))
                )
                | (
                    (Job.status == "succeeded")
                    & (Job.finished_at >= now - timedelta(seconds=RECENT_SUCCESS_S))
                ),
            )
            .order_by(Job.created_at.desc())
            .limit(limit)
        ).all()
        out = [job_dict(job) for job in rows]
        ids = [j["id"] for j in out]
        counts: dict[str, dict[str, int]] = {}
        if ids:
            for parent, status, count in session.execute(
                select(Job.parent_id, Job.status, func.count())
                .where(Job.parent_id.in_(ids))
                .group_by(Job.parent_id, Job.status)
            ):
                counts.setdefault(parent, {})[status] = count
    for job in out:
        c = counts.get(job["id"], {})
        job["shards_total"] = sum(c.values()) or int(job["params"].get("shards") or 0)
        job["shards_done"] = c.get("succeeded", 0)
        job["shards_failed"] = c.get("failed", 0)
    return out


def active_channel_job(state: AppState) -> str | None:
    """The newest queued or running generate job of a channel flow (not a shard), or None."""
    from app.services.flows import is_channel_flow

    return active_generate_job(state, is_channel_flow)


def active_generate_job(state: AppState, of_flow: Callable[[str | None], bool]) -> str | None:
    """The newest queued or running generate job (not a shard) whose flow ``of_flow``
    accepts, or None: what a flow's Data-page card follows."""
    with state.db.session() as session:
        rows = session.execute(
            select(Job.id, Job.params)
            .where(
                Job.kind == "generate",
                Job.parent_id.is_(None),
                Job.status.in_((*jobs.ACTIVE, "finishing")),
            )
            .order_by(Job.created_at.desc())
        ).all()
    for job_id, params in rows:
        if of_flow((params or {}).get("flow")):
            return job_id
    return None
