from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from app import jobs
from app.api import items
from app.api.errors import errors
from app.api.paging import (
    EVENTS_PAGE,
    MAX_EVENTS_PAGE,
    NEXT_PAGE_HEADERS,
    after_param,
    limit_param,
    link_next,
)
from app.db.tables import Job
from app.jobkinds import InvalidParams, validate_params
from app.jobkinds.generate import retry
from app.schemas import DeletedOut, EventOut, ItemPatch, JobCreate, JobCreated, JobOut, LineageOut
from app.security import current_user
from app.services import auth, model_fit, run_filters
from app.services.auth import Principal
from app.state import AppState, get_state

router = APIRouter(prefix="/jobs", tags=["jobs"])

NO_JOB = (404, "There is no job with that id.")


@router.post(
    "",
    status_code=202,
    response_model=JobCreated,
    responses=errors(
        (422, "The kind is unknown or its parameters are invalid; the detail says why.")
    ),
)
def create_job(
    body: JobCreate,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> JobCreated:
    owner_id = auth.require_create(user)  # a viewer: 403
    with state.db.session() as session:
        try:
            params, queue = validate_params(
                session, body.kind, body.params, settings=state.settings, owner=owner_id
            )
        except InvalidParams as exc:
            raise HTTPException(422, str(exc)) from exc
    job = jobs.submit(state.db, state.dispatcher, body.kind, params, queue, owner_id=owner_id)
    warnings = model_fit.job_start_warnings(state, job.kind, params)
    return JobCreated(id=job.id, kind=job.kind, status="queued", warnings=warnings)


@router.get("", response_model=list[JobOut])
def list_jobs(
    status: str | None = None,
    kind: str | None = None,
    parent_id: str | None = Query(None, description="Only the shards of this job."),
    owner: str | None = Query(
        None, max_length=64, description="Only the jobs of this user (a name; 'me': yours)."
    ),
    flow: str | None = Query(
        None,
        max_length=64,
        description="Only the jobs of this flow (a training job's: its dataset's flow).",
    ),
    q: str | None = Query(
        None,
        max_length=run_filters.MAX_SEARCH,
        description="Search the jobs' id (prefix), name, tags, notes, message and kind.",
    ),
    limit: int = Query(100, ge=1, le=1000),
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> list[Job]:
    # The same listing as the Runs page's: shard jobs are listed under their parent
    # (parent_id=...), not among the top-level jobs.
    found = run_filters.RunFilter(kind=kind, status=status, owner=owner, flow=flow, q=q)
    query = run_filters.job_query(found, parent_id=parent_id, limit=limit, user=user)
    with state.db.session() as session:
        return list(session.scalars(query))


def _job_or_404(state: AppState, job_id: str) -> Job:
    with state.db.session() as session:
        try:
            return jobs.get_job(session, job_id)
        except jobs.JobNotFound as exc:
            raise HTTPException(404, str(exc)) from exc


@router.get("/{job_id}", response_model=JobOut, responses=errors(NO_JOB))
def get_job(job_id: str, state: AppState = Depends(get_state)) -> Job:
    return _job_or_404(state, job_id)


@router.get(
    "/{job_id}/events",
    response_model=list[EventOut],
    responses={200: {"headers": NEXT_PAGE_HEADERS}, **errors(NO_JOB)},
)
def job_events(
    job_id: str,
    request: Request,
    response: Response,
    after: int = after_param("events"),
    limit: int = limit_param(EVENTS_PAGE, MAX_EVENTS_PAGE, "events"),
    state: AppState = Depends(get_state),
):
    """The job's events in order, a page at a time: each event's ``seq`` is the next
    page's ``after``; a full page links to the next one (``Link``, rel="next")."""
    _job_or_404(state, job_id)
    with state.db.session() as session:
        rows = jobs.events_after(session, job_id, after, limit)
    link_next(request, response, rows, limit)
    return rows


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses=errors(NO_JOB, (409, "The job has already finished.")),
)
def cancel_job(
    job_id: str,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> Job:
    job = _job_or_404(state, job_id)
    auth.require_change(job.owner_id, "this job", user)  # its owner or an admin, else 403
    if job.status in jobs.FINAL:
        raise HTTPException(409, f"The job has already {job.status}; there is nothing to cancel.")
    return jobs.cancel(state.db, state.dispatcher, job_id)


@router.post(
    "/{job_id}/retry",
    response_model=JobOut,
    responses=errors(NO_JOB, (409, "Only a failed or cancelled generate job is retried.")),
)
def retry_job(
    job_id: str,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> Job:
    """Rerun the failed or cancelled shards of a generate job; finished shards are kept."""
    job = _job_or_404(state, job_id)
    auth.require_change(job.owner_id, "this job", user)
    if job.kind != "generate":
        raise HTTPException(
            409,
            "Only generate jobs can be retried (their finished shards are kept); submit "
            "a new job instead.",
        )
    if job.status not in ("failed", "cancelled"):
        raise HTTPException(
            409, f"The job is {job.status}; only a failed or cancelled job is retried."
        )
    return retry(state.db, state.dispatcher, state.artifacts, job_id)


@router.patch("/{job_id}", response_model=JobOut, responses=items.patch_responses("job"))
def patch_job(
    job_id: str,
    body: ItemPatch,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> Job:
    """Name the run, or replace its tags or notes (fields left out stay)."""
    return items.patch(state, "job", job_id, body, user)


@router.delete("/{job_id}", response_model=DeletedOut, responses=items.delete_responses("job"))
def delete_job(
    job_id: str,
    cascade: bool = items.cascade_param(),
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> DeletedOut:
    """Delete a finished run: its events, its rollouts or comparison (files and export
    caches), its shards and training checkpoints. A queued or running job is refused (409:
    cancel it first); a job whose dataset or model still exists is refused (409, naming it)
    unless ``cascade=true``, which deletes that too (and what used it)."""
    return items.delete(state, "job", job_id, cascade, user)


@router.get(
    "/{job_id}/lineage", response_model=LineageOut, responses=items.lineage_responses("job")
)
def job_lineage(job_id: str, state: AppState = Depends(get_state)) -> LineageOut:
    """What the job started from, what it made, and the jobs that used what it made."""
    return items.lineage_of(state, "job", job_id)
