"""Checks a job's parameters before anything is stored: shape (pydantic, per kind) and
meaning (the referenced rows exist, the flow and architecture are known, grids fit)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db.tables import Dataset, InitialCondition, Model
from app.schemas import PARAMS, RolloutParams
from models.registry import MODELS, count_parameters
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


def dataset_layout(shape: list[int]) -> tuple[int, tuple[int, ...], int]:
    """(channels, spatial grid, snapshots per trajectory) of a dataset's stored shape: 2D
    vorticity is (traj, time, n, n); 3D velocity is (traj, time, X, Y, Z, 3)."""
    if len(shape) == 6:
        return shape[-1], tuple(shape[2:5]), shape[1]
    return 1, tuple(shape[2:]), shape[1]


def check_model_config(
    arch: str,
    config: dict[str, Any],
    shape: list[int] | None = None,
    unroll: int = 1,
) -> int:
    """Check an architecture and its config against the dataset it will train on (given its
    stored shape): dimensions, channels, grid, and trajectories long enough for one sample.
    Returns the parameter count."""
    spec = MODELS.get(arch)
    if spec is None:
        raise InvalidParams(
            f"params.arch: unknown model {arch!r}; known models: {', '.join(MODELS)}."
        )
    config = dict(config)
    try:
        if shape is not None:
            channels, space, n_time = dataset_layout(shape)
            if len(space) != spec.dims:
                raise InvalidParams(
                    f"params.arch: {spec.label} works on {spec.dims}D fields; the dataset "
                    f"holds {len(space)}D fields."
                )
            config.setdefault("channels", channels)
        parsed = spec.config_cls.from_dict(config)
        if shape is not None:
            if parsed.channels != channels:
                raise InvalidParams(
                    f"params.config.channels: the dataset has {channels} channel(s), the "
                    f"config asks for {parsed.channels}."
                )
            parsed.check_grid(space)
            contract = parsed.contract()
            needed = contract.history + unroll * contract.out_steps
            if n_time < needed:
                raise InvalidParams(
                    f"params.unroll: a sample needs {needed} consecutive snapshots "
                    f"({contract.history} in, {unroll} × {contract.out_steps} out); the "
                    f"dataset's trajectories have {n_time}."
                )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InvalidParams):
            raise
        raise InvalidParams(f"params.config: {exc}") from exc
    count = getattr(parsed, "parameter_count", None)
    return count() if callable(count) else count_parameters(arch, config)


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
        check_model_config(data["arch"], data["config"], dataset.shape, data["unroll"])
    elif kind == "finetune":
        model = exists(Model, "model_id", "model")
        dataset = exists(Dataset, "dataset_id", "dataset")
        if data["output_modes"] is not None and model.arch != "sfno":
            raise InvalidParams(
                "params.output_modes: only a spatiotemporal FNO (sfno) has an output layer "
                f"to refine; model {model.id} is {model.arch}."
            )
        if dataset.flow != model.flow:
            raise InvalidParams(
                f"params.dataset_id: the model was trained on {model.flow!r}; the dataset "
                f"is {dataset.flow!r}."
            )
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
