"""Is an initial condition within what a model was trained on? The statistics of a 2D
field (``models.input_stats.field_summary``: energy, enstrophy, spectrum slope, amplitude)
placed against those the model recorded of its training inputs (``metrics["input_stats"]``,
written by the train job), with a sentence and the numbers when it is far.

What the REST route ``GET /api/models/{id}/fit``, the upload (``POST
/api/initial-conditions`` answers ``model_fit`` with the models of its flow it is far
from), and the Upload, Rollout and Compare pages call. The rollout and compare runners put
the same verdicts in their setup events (``fit_of_field``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sqlalchemy import select

from app.db.tables import InitialCondition, Model
from app.services.flows import flow_dims, is_channel_flow
from app.state import AppState
from models.input_stats import field_summary, input_fit
from physics.flows import UnknownFlowError, get_flow


class FitError(LookupError):
    """A fit that cannot be answered: ``status`` 404 (no such model or initial condition)
    or 422 (a channel model or field, or flows that differ), with a sentence."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _length(flow: str) -> float:
    try:
        return float(get_flow(flow).length)
    except UnknownFlowError:
        return 1.0


def summary_of(array: np.ndarray | torch.Tensor, flow: str) -> dict[str, float]:
    """``field_summary`` of a 2D vorticity field (ny, nx) or (1, 1, ny, nx) of ``flow``."""
    w = torch.as_tensor(np.asarray(array, dtype=np.float64))
    return field_summary(w.reshape(1, 1, *w.shape[-2:]), _length(flow))


def fit_of_field(model: Model, summary: dict[str, float]) -> dict[str, Any]:
    """The verdict for one model row (``models.input_stats.input_fit``) with its id and
    name; a model that recorded no training statistics says so in ``message``."""
    stats = (model.metrics or {}).get("input_stats")
    fit = input_fit(summary, stats, model.name)
    if not fit["known"]:
        fit["message"] = (
            f"{model.name} recorded no statistics of its training inputs (trained before "
            "they were kept, or not a 2D model): nothing to compare with"
        )
    return {"model_id": model.id, "model_name": model.name, **fit}


def model_fit(state: AppState, model_id: str, ic_id: str) -> dict[str, Any]:
    """How initial condition ``ic_id`` sits against model ``model_id``'s training inputs;
    raises ``FitError``."""
    from app.services.initial_conditions import load_initial_condition

    with state.db.session() as session:
        model = session.get(Model, model_id)
        ic = session.get(InitialCondition, ic_id)
    if model is None:
        raise FitError(f"There is no model with id {model_id!r}.", 404)
    if ic is None:
        raise FitError(f"There is no initial condition with id {ic_id!r}.", 404)
    if is_channel_flow(ic.flow) or is_channel_flow(model.flow):
        raise FitError(
            "Input statistics are of 2D vorticity fields; channel models and snapshots have none.",
            422,
        )
    if flow_dims(ic.flow) == 3 or flow_dims(model.flow) == 3:
        raise FitError(
            "Input statistics are of 2D vorticity fields; 3D models and snapshots have none.",
            422,
        )
    if ic.flow != model.flow:
        raise FitError(
            f"The initial condition is a {ic.flow} field and {model.name} a {model.flow} "
            "model; compare a model with a field of its own flow.",
            422,
        )
    summary = summary_of(load_initial_condition(state.artifacts, ic), ic.flow)
    return {"initial_condition_id": ic.id, "field": summary, **fit_of_field(model, summary)}


def fits_for_field(
    state: AppState, flow: str, array: np.ndarray, far_only: bool = True
) -> list[dict[str, Any]]:
    """The verdicts of every model of ``flow`` that recorded its training statistics
    (those it is far from, with ``far_only``), newest model first; [] for a 3D flow (the
    statistics are of 2D fields)."""
    if is_channel_flow(flow) or flow_dims(flow) == 3:
        return []
    with state.db.session() as session:
        models = list(
            session.scalars(
                select(Model).where(Model.flow == flow).order_by(Model.created_at.desc())
            )
        )
    summary = summary_of(array, flow)
    fits = [fit_of_field(m, summary) for m in models if (m.metrics or {}).get("input_stats")]
    return [f for f in fits if f["far"]] if far_only else fits


def start_warnings(
    state: AppState, initial_condition_id: str | None, model_ids: list[str]
) -> list[str]:
    """The sentences a Rollout or Compare page shows before (or at) a start: one per chosen
    model the initial condition is far from ([] without an initial condition, for channel
    flows, or when nothing is far)."""
    if not initial_condition_id:
        return []
    out = []
    for model_id in dict.fromkeys(model_ids):
        try:
            fit = model_fit(state, model_id, initial_condition_id)
        except FitError:
            continue
        if fit["far"]:
            out.append(fit["message"])
    return out


def job_start_warnings(state: AppState, kind: str, params: dict[str, Any]) -> list[str]:
    """``start_warnings`` for a validated job's parameters: a rollout's model, or every
    model column of a comparison, against its uploaded initial condition ([] for other
    kinds, for a start from a dataset's trajectory, or when the fit cannot be computed).
    What ``POST /api/jobs`` and the pages' Start answer beside the new job's id."""
    ic = params.get("initial_condition_id")
    if kind == "rollout":
        model_ids = [params["model_id"]] if params.get("model_id") else []
    elif kind == "compare":
        model_ids = [entry.get("model_id") for entry in params.get("models") or []]
    else:
        return []
    try:
        return start_warnings(state, ic, [m for m in model_ids if m])
    except (OSError, ValueError):  # an unreadable field: advice never fails a valid start
        return []
