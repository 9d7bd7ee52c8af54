"""Storing an initial condition: parse and validate, write the array, then the row.
Used by the REST upload, the Upload page and the shipped examples alike."""

from __future__ import annotations

import numpy as np
import torch

from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import InitialCondition, new_id
from app.uploads import UploadError, parse_upload
from physics.diagnostics import enstrophy, kinetic_energy
from physics.flows import UnknownFlowError, get_flow


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


def store_initial_condition(
    db: Database,
    artifacts: ArtifactStore,
    flow_name: str,
    filename: str,
    content: bytes,
    max_bytes: int | None = None,
) -> InitialCondition:
    """Raises UploadError (with an HTTP status and a sentence) and stores nothing on failure."""
    if max_bytes is not None and len(content) > max_bytes:
        raise UploadError(f"The file is larger than the upload limit of {max_bytes:,} bytes.", 413)
    try:
        flow = get_flow(flow_name)
    except UnknownFlowError as exc:
        raise UploadError(str(exc)) from exc
    parsed = parse_upload(filename, content)
    try:
        flow.check_grid(parsed.array.shape)
    except ValueError as exc:
        raise UploadError(str(exc)) from exc

    ic_id = new_id()
    relative = artifacts.initial_condition(ic_id)
    with artifacts.atomic_write(relative) as tmp, open(tmp, "wb") as out:
        np.save(out, parsed.array, allow_pickle=False)
    row = InitialCondition(
        id=ic_id,
        name=filename,
        flow=flow.name,
        shape=list(parsed.array.shape),
        fields=list(flow.fields),
        stats=field_stats(parsed.array, flow.length),
        path=relative,
    )
    try:
        with db.session() as session:
            session.add(row)
            session.commit()
    except Exception:
        artifacts.resolve(relative).unlink(missing_ok=True)
        raise
    return row


def load_initial_condition(artifacts: ArtifactStore, row: InitialCondition) -> np.ndarray:
    return np.load(artifacts.resolve(row.path), allow_pickle=False)
