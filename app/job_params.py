"""Checks a job's parameters before anything is stored: shape (pydantic, per kind) and
meaning (the referenced rows exist, the flow and architecture are known, grids fit)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db.tables import Dataset, InitialCondition, Model
from app.schemas import PARAMS, RolloutParams
from models.registry import MODELS
from physics.flows import UnknownFlowError, get_flow


class InvalidParams(ValueError):
    pass


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "is not a parameter of this kind of job"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) + "."


def check_model_config(arch: str, config: dict[str, Any], grid: int | None) -> int | None:
    """Check an architecture and its config (and, given the data's grid, that the grid can
    hold the model's Fourier modes) before anything is queued; returns the parameter count."""
    spec = MODELS.get(arch)
    if spec is None:
        raise InvalidParams(
            f"params.arch: unknown model {arch!r}; known models: {', '.join(MODELS)}."
        )
    try:
        parsed = spec.config_cls.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise InvalidParams(f"params.config: {exc}") from exc
    modes = getattr(parsed, "modes", None)
    if modes and grid and 2 * modes > grid:
        raise InvalidParams(
            f"params.config.modes: {modes} Fourier modes need a grid of at least {2 * modes} "
            f"points per side; the dataset's grid is {grid}."
        )
    count = getattr(parsed, "parameter_count", None)
    return count() if callable(count) else None


def validate_params(session: Session, kind: str, raw: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Returns the normalised parameters and the queue; raises InvalidParams with a sentence."""
    try:
        params = PARAMS[kind].model_validate(raw)
    except ValidationError as exc:
        raise InvalidParams(describe_validation_error(exc, "params")) from exc
    data = params.model_dump()
    queue = data.pop("queue") or "gpu"

    def exists(table, key: str, label: str):
        row = session.get(table, data[key])
        if row is None:
            raise InvalidParams(f"params.{key}: there is no {label} with id {data[key]!r}.")
        return row

    def known_flow(name: str):
        try:
            return get_flow(name)
        except UnknownFlowError as exc:
            raise InvalidParams(f"params.flow: {exc}") from exc

    if kind == "generate":
        flow = known_flow(data["flow"])
        if data["nu"] is not None:
            try:
                flow = flow.variant(data["nu"])
            except ValueError as exc:
                raise InvalidParams(f"params.nu: {exc}") from exc
        family = data["initial_condition"]
        if family is not None and family not in flow.initial_conditions:
            raise InvalidParams(
                f"params.initial_condition: {flow.name} offers "
                f"{', '.join(flow.initial_conditions)}; got {family!r}."
            )
        for key in ("resolution", "solver_resolution"):
            if data[key] is not None:
                try:
                    flow.check_grid((data[key], data[key]))
                except ValueError as exc:
                    raise InvalidParams(f"params.{key}: {exc}") from exc
    elif kind == "train":
        dataset = exists(Dataset, "dataset_id", "dataset")
        check_model_config(data["arch"], data["config"], dataset.shape[-1])
    elif kind == "finetune":
        exists(Model, "model_id", "model")
        exists(Dataset, "dataset_id", "dataset")
    elif kind == "rollout":
        data, queue = _check_rollout(session, params, data, queue, exists, known_flow)
    return data, queue


def _check_rollout(session, params: RolloutParams, data, queue, exists, known_flow):
    flow_name = params.flow
    if params.initial_condition_id is not None:
        ic = exists(InitialCondition, "initial_condition_id", "initial condition")
        if flow_name is not None and flow_name != ic.flow:
            raise InvalidParams(
                f"params.flow: the initial condition belongs to {ic.flow!r}, not {flow_name!r}."
            )
        flow_name = ic.flow
    if params.model_id is not None:
        model = exists(Model, "model_id", "model")
        if flow_name is not None and flow_name != model.flow:
            raise InvalidParams(
                f"params.model_id: the model was trained on {model.flow!r}, but the initial "
                f"condition is a {flow_name!r} field."
            )
        flow_name = model.flow
    elif params.queue is None:
        queue = "cpu"  # the reference solver alone needs no GPU
    flow = known_flow(flow_name or "ns2d-forced")
    if params.nu is not None:
        try:
            flow.variant(params.nu)
        except ValueError as exc:
            raise InvalidParams(f"params.nu: {exc}") from exc
    if params.initial_condition_id is None:
        try:
            flow.check_grid((params.resolution, params.resolution))
        except ValueError as exc:
            raise InvalidParams(f"params.resolution: {exc}") from exc
    data["flow"] = flow.name
    return data, queue
