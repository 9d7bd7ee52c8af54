"""Uploaded initial conditions: validated, then stored as .npy in the artifact store."""

from __future__ import annotations

import numpy as np
import torch
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from sqlalchemy import select

from app.db.tables import InitialCondition, new_id
from app.schemas import InitialConditionOut
from app.state import AppState, get_state
from app.uploads import UploadError, parse_upload
from physics.diagnostics import enstrophy, kinetic_energy
from physics.flows import UnknownFlowError, get_flow

router = APIRouter(prefix="/initial-conditions", tags=["initial conditions"])

_CHUNK = 1 << 20


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    chunks, total = [], 0
    while chunk := await file.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise HTTPException(
                413, f"The file is larger than the upload limit of {limit:,} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def field_stats(field: np.ndarray, length: float) -> dict[str, float]:
    w = torch.from_numpy(field.astype(np.float64))[None, None]
    return {
        "min": float(field.min()),
        "max": float(field.max()),
        "mean": float(field.mean()),
        "std": float(field.std()),
        "kinetic_energy": float(kinetic_energy(w, length)[0]),
        "enstrophy": float(enstrophy(w)[0]),
    }


@router.post("", status_code=201, response_model=InitialConditionOut)
async def upload_initial_condition(
    request: Request,
    file: UploadFile = File(
        ..., description=".npy, .npz or .h5/.hdf5 holding one 2D vorticity field"
    ),
    flow: str = Form("ns2d-forced"),
    state: AppState = Depends(get_state),
) -> InitialCondition:
    limit = state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, f"The file is larger than the upload limit of {limit:,} bytes.")
    try:
        case = get_flow(flow)
    except UnknownFlowError as exc:
        raise HTTPException(422, str(exc)) from exc
    content = await _read_limited(file, limit)
    try:
        parsed = parse_upload(file.filename or "upload", content)
        case.check_grid(parsed.array.shape)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc

    ic_id = new_id()
    relative = state.artifacts.initial_condition(ic_id)
    with state.artifacts.atomic_write(relative) as tmp, open(tmp, "wb") as out:
        np.save(out, parsed.array, allow_pickle=False)
    row = InitialCondition(
        id=ic_id,
        name=file.filename or "upload",
        flow=case.name,
        shape=list(parsed.array.shape),
        fields=list(case.fields),
        stats=field_stats(parsed.array, case.length),
        path=relative,
    )
    try:
        with state.db.session() as session:
            session.add(row)
            session.commit()
    except Exception:
        state.artifacts.resolve(relative).unlink(missing_ok=True)
        raise
    return row


@router.get("", response_model=list[InitialConditionOut])
def list_initial_conditions(state: AppState = Depends(get_state)) -> list[InitialCondition]:
    with state.db.session() as session:
        return list(
            session.scalars(select(InitialCondition).order_by(InitialCondition.created_at.desc()))
        )


@router.get("/{ic_id}", response_model=InitialConditionOut)
def get_initial_condition(ic_id: str, state: AppState = Depends(get_state)) -> InitialCondition:
    with state.db.session() as session:
        row = session.get(InitialCondition, ic_id)
    if row is None:
        raise HTTPException(404, f"There is no initial condition with id {ic_id!r}.")
    return row
