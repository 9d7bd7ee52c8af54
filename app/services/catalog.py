"""What there is to work with: initial conditions, datasets and models.

The row functions (``initial_condition_rows``, ``dataset_rows``, ``model_rows`` and the
single-row lookups) are the listings of ``GET /api/initial-conditions``, ``/api/datasets``
and ``/api/models``; the routers serialise those rows with their response models. The dict
functions build on the same queries and return what the pages show (JSON-ready, times as
ISO strings), with what the pages add: an initial condition's ``example`` flag, a dataset's
job status, a model's architecture label and its training data's name, and the catalogue
of what can be compared.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts import ArtifactStore
from app.db.tables import Dataset, InitialCondition, Job, Model
from app.services import iso_time
from app.services.jobs_view import grid_label
from app.state import AppState

# --- rows, newest first: the routers' listings ---------------------------------------------


def initial_condition_rows(session: Session) -> list[InitialCondition]:
    query = select(InitialCondition).order_by(InitialCondition.created_at.desc())
    return list(session.scalars(query))


def dataset_rows(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.created_at.desc())))


def model_rows(session: Session) -> list[Model]:
    return list(session.scalars(select(Model).order_by(Model.created_at.desc())))


def initial_condition_row(session: Session, ic_id: str) -> InitialCondition | None:
    return session.get(InitialCondition, ic_id)


def dataset_row(session: Session, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def model_row(session: Session, model_id: str) -> Model | None:
    return session.get(Model, model_id)


# --- initial conditions ----------------------------------------------------------------------


def initial_condition_dict(row: InitialCondition) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "flow": row.flow,
        "shape": list(row.shape),
        "fields": list(row.fields),
        "stats": dict(row.stats or {}),
        "created_at": iso_time(row.created_at),
        "example": row.name.lower().startswith("example"),
        "tags": list(row.tags or []),
        "notes": row.notes or "",
    }


def list_initial_conditions(state: AppState) -> list[dict[str, Any]]:
    with state.db.session() as session:
        return [initial_condition_dict(r) for r in initial_condition_rows(session)]


def get_initial_condition(state: AppState, ic_id: str) -> dict[str, Any] | None:
    """One initial condition's row as ``initial_condition_dict``, or None."""
    with state.db.session() as session:
        row = initial_condition_row(session, ic_id)
        return initial_condition_dict(row) if row else None


def example_initial_condition(state: AppState) -> dict[str, Any] | None:
    """The newest initial condition registered as an example (its name starts with
    "example"), or None."""
    with state.db.session() as session:
        row = session.scalars(
            select(InitialCondition)
            .where(InitialCondition.name.ilike("example%"))
            .order_by(InitialCondition.created_at.desc())
            .limit(1)
        ).first()
        return initial_condition_dict(row) if row else None


# --- datasets ----------------------------------------------------------------------------------


def dataset_dict(d: Dataset) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "flow": d.flow,
        "shape": list(d.shape),
        "params": dict(d.params or {}),
        "job_id": d.job_id,
        "created_at": iso_time(d.created_at),
        "tags": list(d.tags or []),
        "notes": d.notes or "",
    }


def list_datasets(state: AppState) -> list[dict[str, Any]]:
    """Every dataset, newest first, with ``job_status``: its generate job's (None without)."""
    with state.db.session() as session:
        rows = session.execute(
            select(Dataset, Job.status)
            .outerjoin(Job, Job.id == Dataset.job_id)
            .order_by(Dataset.created_at.desc())
        ).all()
        return [{**dataset_dict(d), "job_status": status} for d, status in rows]


def get_dataset(state: AppState, dataset_id: str) -> dict[str, Any] | None:
    with state.db.session() as session:
        d = dataset_row(session, dataset_id)
        return dataset_dict(d) if d else None


def dataset_file(state: AppState, dataset_id: str) -> tuple[dict[str, Any], str] | None:
    """A dataset's dict and its file's path relative to the artifact store, or None."""
    with state.db.session() as session:
        d = dataset_row(session, dataset_id)
        return (dataset_dict(d), d.path) if d else None


# --- models ------------------------------------------------------------------------------------


def model_dict(m: Model) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "arch": m.arch,
        "flow": m.flow,
        "config": dict(m.config or {}),
        "val_rel_l2": (m.metrics or {}).get("val_rel_l2"),
        "persistence_rel_l2": (m.metrics or {}).get("persistence_rel_l2"),
        "parameter_count": m.parameter_count,
        "resolution": m.resolution,
        "interval": m.interval,
        "dataset_id": m.dataset_id,
        "job_id": m.job_id,
        "created_at": iso_time(m.created_at),
        "tags": list(m.tags or []),
        "notes": m.notes or "",
    }


def list_models(state: AppState) -> list[dict[str, Any]]:
    with state.db.session() as session:
        return [model_dict(m) for m in model_rows(session)]


def models_overview(state: AppState) -> list[dict[str, Any]]:
    """Every model, newest first, as ``list_models`` plus ``label`` (the architecture's),
    ``metrics``, the training data's ``dataset_name`` (None when it was deleted) and
    ``grid`` (``model_grid_label``)."""
    from models.registry import MODELS

    with state.db.session() as session:
        rows = session.execute(
            select(Model, Dataset.name, Dataset.shape)
            .outerjoin(Dataset, Dataset.id == Model.dataset_id)
            .order_by(Model.created_at.desc())
        ).all()
        out = []
        for m, dataset_name, shape in rows:
            spec = MODELS.get(m.arch)
            entry = model_dict(m)
            out.append(
                {
                    **entry,
                    "label": spec.label if spec is not None else m.arch,
                    "metrics": dict(m.metrics or {}),
                    "dataset_name": dataset_name,
                    "grid": model_grid_label(m, shape),
                }
            )
    return out


def model_grid_label(m: Model, dataset_shape: list[int] | None) -> str | None:
    """The grid a model works on as the pages write it: its training data's ``nx×ny×nz``
    for a 3D model (the row keeps one ``resolution``), ``N²`` for a 2D one."""
    shape = list(dataset_shape or [])
    if len(shape) == 6:  # (trajectory, time, nx, ny, nz, component)
        return grid_label(shape[2:5])
    return f"{m.resolution}²" if m.resolution else None


# --- what the Compare page offers -------------------------------------------------------------


def _held_out(artifacts: ArtifactStore, model: Model) -> list[int]:
    """The validation (held-out) trajectories a model's checkpoint records, or []."""
    from models.checkpoint import CONFIG_FILE

    try:
        info = json.loads((artifacts.resolve(model.path) / CONFIG_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return []
    held = (info.get("metadata") or {}).get("val_trajectories") or []
    return [int(i) for i in held if isinstance(i, int | float)]


def compare_catalog(state: AppState) -> dict[str, Any]:
    """What the Compare page offers: ``initial_conditions`` (2D fields), ``datasets`` (2D
    vorticity, with ``n_trajectories``) and ``models`` (2D, one channel: the kind a
    comparison runs), each model with its architecture's ``label``, ``parameter_count`` and
    ``held_out``, the trajectories of its training dataset it never trained on."""
    from models.registry import MODELS, contract_of

    ics = [ic for ic in list_initial_conditions(state) if len(ic["shape"]) == 2]
    datasets = [
        {**d, "n_trajectories": int(d["shape"][0])}
        for d in list_datasets(state)
        if len(d["shape"]) == 4 and d.get("job_status") in (None, "succeeded")
    ]
    with state.db.session() as session:
        models = []
        for m in model_rows(session):
            try:
                contract = contract_of(m.arch, m.config)
            except Exception:  # a broken or unknown config: not comparable
                continue
            if contract.dims != 2 or contract.channels != 1:
                continue
            spec = MODELS.get(m.arch)
            models.append(
                {
                    "id": m.id,
                    "name": m.name,
                    "arch": m.arch,
                    "label": spec.label if spec is not None else m.arch,
                    "flow": m.flow,
                    "parameter_count": m.parameter_count,
                    "resolution": m.resolution,
                    "interval": m.interval,
                    "history": contract.history,
                    "dataset_id": m.dataset_id,
                    "val_rel_l2": (m.metrics or {}).get("val_rel_l2"),
                    "held_out": _held_out(state.artifacts, m) if m.dataset_id else [],
                    "created_at": iso_time(m.created_at),
                }
            )
    return {"initial_conditions": ics, "datasets": datasets, "models": models}
