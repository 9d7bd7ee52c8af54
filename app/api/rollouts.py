from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from app.api.errors import errors
from app.api.paging import (
    MAX_METRICS_PAGE,
    METRICS_PAGE,
    NEXT_PAGE_HEADERS,
    after_param,
    limit_param,
    link_next,
)
from app.db.tables import Rollout
from app.schemas import MetricsRow, RolloutDetail
from app.services import rollouts
from app.state import AppState, get_state

router = APIRouter(prefix="/rollouts", tags=["rollouts"])

NO_ROLLOUT = (404, "There is no rollout with that id.")
NO_FRAME = (404, "There is no rollout with that id, or no such finished frame yet.")
NOTHING_YET = (404, "There is no rollout with that id, or it has not written a frame yet.")
TWO_D_ONLY = (409, "A channel (3D) rollout: this export is for 2D vorticity rollouts.")


def _rollout_or_404(state: AppState, rollout_id: str) -> Rollout:
    with state.db.session() as session:
        row = rollouts.find_rollout(session, rollout_id)
    if row is None:
        raise HTTPException(404, f"There is no rollout with id {rollout_id!r}.")
    return row


@router.get("/{rollout_id}", response_model=RolloutDetail, responses=errors(NO_ROLLOUT))
def get_rollout(rollout_id: str, state: AppState = Depends(get_state)):
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        return rollouts.describe(session, state.artifacts, row)


@router.get(
    "/{rollout_id}/metrics",
    response_model=list[MetricsRow],
    responses={200: {"headers": NEXT_PAGE_HEADERS}, **errors(NO_ROLLOUT)},
)
def get_metrics(
    rollout_id: str,
    request: Request,
    response: Response,
    after: int = after_param("steps"),
    limit: int = limit_param(METRICS_PAGE, MAX_METRICS_PAGE, "steps"),
    state: AppState = Depends(get_state),
) -> list[dict]:
    """The per-step metrics in step order, a page at a time: each row's ``seq`` is the
    next page's ``after``; a full page links to the next one (``Link``, rel="next")."""
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        rows = rollouts.metrics(session, row, after, limit)
    link_next(request, response, rows, limit)
    return rows


@router.get(
    "/{rollout_id}/frames/{k}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "A .npy array"},
        **errors(NO_FRAME, (422, "A parameter is invalid, or the rollout has no such source.")),
    },
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
    response_class=FileResponse,
    responses={
        200: {"content": {"application/x-netcdf": {}}, "description": "netCDF-4"},
        **errors(NOTHING_YET, TWO_D_ONLY),
    },
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
        except rollouts.ExportUnavailable as exc:
            raise HTTPException(409, str(exc)) from None
    return FileResponse(path, media_type="application/x-netcdf", filename=f"{rollout_id}.nc")


@router.get(
    "/{rollout_id}/metrics.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per step per source"},
        **errors(NO_ROLLOUT),
    },
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
    response_class=FileResponse,
    responses={
        200: {"content": {"image/gif": {}}, "description": "Animated panels"},
        **errors(NOTHING_YET, TWO_D_ONLY),
    },
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
        except rollouts.ExportUnavailable as exc:
            raise HTTPException(409, str(exc)) from None
    return FileResponse(path, media_type="image/gif", filename=f"{rollout_id}.gif")
