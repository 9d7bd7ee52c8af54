from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from app import rollouts
from app.db.tables import Rollout
from app.schemas import RolloutOut
from app.state import AppState, get_state

router = APIRouter(prefix="/rollouts", tags=["rollouts"])


def _rollout_or_404(state: AppState, rollout_id: str) -> Rollout:
    with state.db.session() as session:
        row = rollouts.find_rollout(session, rollout_id)
    if row is None:
        raise HTTPException(404, f"There is no rollout with id {rollout_id!r}.")
    return row


@router.get("/{rollout_id}", response_model=RolloutOut)
def get_rollout(rollout_id: str, state: AppState = Depends(get_state)):
    row = _rollout_or_404(state, rollout_id)
    with state.db.session() as session:
        return rollouts.describe(session, state.artifacts, row)


@router.get("/{rollout_id}/metrics")
def get_metrics(
    rollout_id: str, after: int = Query(0, ge=0), state: AppState = Depends(get_state)
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
    source: str = Query("model", description="model, reference or error"),
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
