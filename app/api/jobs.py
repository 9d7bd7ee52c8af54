from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query

from app import jobs
from app.api import MAX_SEQ
from app.db.tables import Job
from app.jobkinds import InvalidParams, validate_params
from app.jobkinds.generate import retry
from app.schemas import EventOut, JobCreate, JobCreated, JobOut
from app.services import jobs_view
from app.state import AppState, get_state

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=202, response_model=JobCreated)
def create_job(body: JobCreate, state: AppState = Depends(get_state)) -> JobCreated:
    with state.db.session() as session:
        try:
            params, queue = validate_params(session, body.kind, body.params)
        except InvalidParams as exc:
            raise HTTPException(422, str(exc)) from exc
    job = jobs.submit(state.db, state.dispatcher, body.kind, params, queue)
    return JobCreated(id=job.id, kind=job.kind, status="queued")


@router.get("", response_model=list[JobOut])
def list_jobs(
    status: str | None = None,
    kind: str | None = None,
    parent_id: str | None = Query(None, description="Only the shards of this job."),
    limit: int = Query(100, ge=1, le=1000),
    state: AppState = Depends(get_state),
) -> list[Job]:
    # The same listing as the Runs page's: shard jobs are listed under their parent
    # (parent_id=...), not among the top-level jobs.
    query = jobs_view.job_query(parent_id=parent_id, status=status, kind=kind, limit=limit)
    with state.db.session() as session:
        return list(session.scalars(query))


def _job_or_404(state: AppState, job_id: str) -> Job:
    with state.db.session() as session:
        try:
            return jobs.get_job(session, job_id)
        except jobs.JobNotFound as exc:
            raise HTTPException(404, str(exc)) from exc


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, state: AppState = Depends(get_state)) -> Job:
    return _job_or_404(state, job_id)


@router.get("/{job_id}/events", response_model=list[EventOut])
def job_events(
    job_id: str,
    after: int = Query(0, ge=0, le=MAX_SEQ, description="Only events with a larger seq."),
    limit: int = Query(1000, ge=1, le=10_000),
    state: AppState = Depends(get_state),
):
    _job_or_404(state, job_id)
    with state.db.session() as session:
        return jobs.events_after(session, job_id, after, limit)


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, state: AppState = Depends(get_state)) -> Job:
    job = _job_or_404(state, job_id)
    if job.status in jobs.FINAL:
        raise HTTPException(409, f"The job has already {job.status}; there is nothing to cancel.")
    return jobs.cancel(state.db, state.dispatcher, job_id)


@router.post("/{job_id}/retry", response_model=JobOut)
def retry_job(job_id: str, state: AppState = Depends(get_state)) -> Job:
    """Rerun the failed or cancelled shards of a generate job; finished shards are kept."""
    job = _job_or_404(state, job_id)
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
