"""Uploaded initial conditions: validated, then stored in the artifact store (.npy for a 2D
vorticity field, .npz for a channel velocity snapshot with its y points and parameters, and
for a periodic-box (hit3d) velocity snapshot with its ν)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api import items
from app.api.errors import errors
from app.db.tables import InitialCondition
from app.schemas import DeletedOut, InitialConditionOut, ItemPatch, LineageOut
from app.security import current_user
from app.services import auth, catalog, initial_conditions, model_fit
from app.services.auth import Principal
from app.services.flows import flow_dims
from app.services.uploads import UploadError
from app.state import AppState, get_state

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


@router.post(
    "",
    status_code=201,
    response_model=InitialConditionOut,
    responses=errors(
        (413, "The file (or the whole request) is larger than the upload limit."),
        415,
        (
            422,
            "The file is not a valid snapshot of the flow, or a form field is invalid; "
            "the detail says why.",
        ),
    ),
)
async def upload_initial_condition(
    file: UploadFile = File(
        ...,
        description=".npy, .npz or .h5/.hdf5 holding one 2D vorticity field; for a channel "
        "flow (GET /api/flows: geometry 'channel') a .npz or .h5/.hdf5 velocity snapshot "
        "(3, nx, ny, nz) with its y points: points other than the cell centres of the "
        "solver's tanh-stretched y grid are interpolated onto the centres of as many cells "
        "(stats y_interpolated, y_points_uploaded, y_interpolation_max_change), or refused "
        "(422) with the grid needed when they do not span the channel or are too few; for "
        "hit3d a .npy, .npz or .h5/.hdf5 velocity on the periodic box, (3, n, n, n) or "
        "(n, n, n, 3) (or u, v, w), n even from 16 to 128: a field whose max |∇·u| is over "
        "1e-4 of max |∇u| is Leray-projected (stats leray_projected), over 0.1 refused (422)",
    ),
    flow: str = Form("ns2d-forced", description="A registered flow (see GET /api/flows)."),
    nu: str | None = Form(
        None,
        description="3D flows only: the viscosity when the file gives none (channel: else "
        "1/re_tau from the file, else 1/180; hit3d: else the flow's ν)",
    ),
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> dict:
    """Store the field. A 2D field's answer lists under ``model_fit`` the models of its flow
    whose training inputs it is far from, with the numbers."""
    auth.require_create(user)  # a viewer: 403 before the file is read
    settings = state.settings
    content = await _read_limited(file, settings.max_upload_bytes)
    # Parsing and writing are blocking work: keep them off the event loop.
    row, refused = await run_in_threadpool(
        _store,
        state,
        flow,
        file.filename or "upload",
        content,
        nu,
    )
    del content
    if refused is not None:
        # Raised here, outside any except block, so the 4xx carries no traceback whose frames
        # would keep the upload's bytes (and whatever a reader allocated) alive until a GC.
        raise HTTPException(*refused)
    return row


def _store(
    state: AppState, flow: str, filename: str, content: bytes, nu: str | None
) -> tuple[dict | None, tuple[int, str] | None]:
    try:
        row = initial_conditions.store(state, flow, filename, content, nu=nu)
    except UploadError as exc:
        return None, (exc.status, str(exc))
    out = catalog.initial_condition_dict(row)
    out["created_at"] = row.created_at
    if flow_dims(row.flow) == 2:
        array = initial_conditions.load_initial_condition(state.artifacts, row)
        out["model_fit"] = model_fit.fits_for_field(state, row.flow, array)
    return out, None


@router.get("", response_model=list[InitialConditionOut])
def list_initial_conditions(state: AppState = Depends(get_state)) -> list[InitialCondition]:
    with state.db.session() as session:
        return catalog.initial_condition_rows(session)


@router.get(
    "/{ic_id}",
    response_model=InitialConditionOut,
    responses=errors((404, "There is no initial condition with that id.")),
)
def get_initial_condition(ic_id: str, state: AppState = Depends(get_state)) -> InitialCondition:
    with state.db.session() as session:
        row = catalog.initial_condition_row(session, ic_id)
    if row is None:
        raise HTTPException(404, f"There is no initial condition with id {ic_id!r}.")
    return row


@router.patch(
    "/{ic_id}",
    response_model=InitialConditionOut,
    responses=items.patch_responses("initial condition"),
)
def patch_initial_condition(
    ic_id: str,
    body: ItemPatch,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> InitialCondition:
    """Rename the initial condition, or replace its tags or notes (fields left out stay)."""
    return items.patch(state, "initial_condition", ic_id, body, user)


@router.delete(
    "/{ic_id}",
    response_model=DeletedOut,
    responses=items.delete_responses("initial condition"),
)
def delete_initial_condition(
    ic_id: str,
    cascade: bool = items.cascade_param(),
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> DeletedOut:
    """Delete the initial condition and its file. One that rollouts or comparisons started
    from is refused (409, naming them) unless ``cascade=true``, which deletes them too."""
    return items.delete(state, "initial_condition", ic_id, cascade, user)


@router.get(
    "/{ic_id}/lineage",
    response_model=LineageOut,
    responses=items.lineage_responses("initial condition"),
)
def initial_condition_lineage(ic_id: str, state: AppState = Depends(get_state)) -> LineageOut:
    """The rollouts and comparisons that started from the initial condition."""
    return items.lineage_of(state, "initial_condition", ic_id)
