from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import FileResponse, StreamingResponse

from app.api import MAX_SEQ
from app.db.tables import Rollout
from app.schemas import RolloutDetail
from app.services import rollouts
from app.state import AppState, get_state

router = APIRouter(prefix="/rollouts", tags=["rollouts"])


def _rollout_or_404(state: AppState, rollout_id: str) -> Rollout:
    with state.db.session() as session:
        row = rollouts.find_rollout(session, rollout_id)
    if row is None:
        raise HTTPException(404, f"There is no rollout with id {rollout_id!r}.")
    return row


@router.get("/{rollout_id}", response_model=RolloutDetail)
def get_rollout(rollout_id: str, state: AppState = Depends(get_state)):
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        return rollouts.describe(session, state.artifacts, row)


@router.get("/{rollout_id}/metrics")
def get_metrics(
    rollout_id: str,
    after: int = Query(0, ge=0, le=MAX_SEQ, description="Only steps with a larger seq."),
    state: AppState = Depends(get_state),
) -> list[dict]:
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        return rollouts.metrics(session, row, after)


@router.get(
    "/{rollout_id}/frames/{k}",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "A .npy array"}},
)
def get_frame(
    rollout_id: str,
    k: int,
    source: str = Query(
        "model",
        description="A single rollout: model, reference or error. A comparison: reference, "
        "model:<i> (entry i, on its own grid) or error:<i> (entry i − reference, on the "
        "reference grid); GET /api/rollouts/{id} lists them under sources.",
    ),
    state: AppState = Depends(get_state),
) -> Response:
    row = _rollout_or_404(state, rollout_id)
    try:
        data, t = rollouts.frame(state.artifacts, row, k, source)
    except KeyError as exc:
        raise HTTPException(422, exc.args[0]) from exc
    except IndexError as exc:
        raise HTTPException(404, str(exc)) from exc
    buffer = io.BytesIO()
    np.save(buffer, data, allow_pickle=False)
    return Response(
        buffer.getvalue(),
        media_type="application/octet-stream",
        headers={
            "X-Eddyscope-Time": repr(t),
            "Content-Disposition": f'attachment; filename="{rollout_id}_{source}_{k}.npy"',
        },
    )


@router.get(
    "/{rollout_id}/export.nc",
    responses={200: {"content": {"application/x-netcdf": {}}, "description": "netCDF-4"}},
)
def export_netcdf(rollout_id: str, state: AppState = Depends(get_state)) -> FileResponse:
    """Every source's fields with time/y/x coordinates, the per-step metrics as variables
    over (source, time), the job's parameters as attributes."""
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        try:
            path = rollouts.export_netcdf(session, state.artifacts, row)
        except IndexError as exc:
            raise HTTPException(404, str(exc)) from exc
    return FileResponse(path, media_type="application/x-netcdf", filename=f"{rollout_id}.nc")


@router.get(
    "/{rollout_id}/metrics.csv",
    responses={200: {"content": {"text/csv": {}}, "description": "One row per step per source"}},
)
def export_metrics_csv(rollout_id: str, state: AppState = Depends(get_state)):
    """One row per step per source, streamed as the metrics are read."""
    row = _rollout_or_404(state, rollout_id)

    def chunks():
        with state.db.session() as session:
            yield from rollouts.export_csv(session, row)

    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{rollout_id}_metrics.csv"'},
    )


@router.get(
    "/{rollout_id}/animation.gif",
    responses={200: {"content": {"image/gif": {}}, "description": "Animated panels"}},
)
def export_animation(
    rollout_id: str,
    max_frames: int = Query(100, ge=1, le=100, description="Frames, evenly subsampled."),
    state: AppState = Depends(get_state),
) -> FileResponse:
    """Each source's field and each model's error side by side, diverging colour map."""
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        try:
            path = rollouts.export_gif(session, state.artifacts, row, max_frames)
        except IndexError as exc:
            raise HTTPException(404, str(exc)) from exc
    return FileResponse(path, media_type="image/gif", filename=f"{rollout_id}.gif")
