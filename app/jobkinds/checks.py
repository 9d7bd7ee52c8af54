"""Checks several job kinds share: a referenced row exists, a flow is registered, a
viscosity is one the flow allows, a model config fits the dataset it will train on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.jobkinds.base import InvalidParams
from models.registry import MODELS, count_parameters
from physics.flows import UnknownFlowError, get_flow


def existing(session: Session, table, data: dict[str, Any], key: str, label: str):
    """The row ``data[key]`` names, or InvalidParams saying there is none."""
    row = session.get(table, data[key])
    if row is None:
        raise InvalidParams(f"params.{key}: there is no {label} with id {data[key]!r}.")
    return row


def start_initial_condition(session: Session, data: dict[str, Any], flow_name: str):
    """The ``initial_condition_id`` row of a run whose models were trained on ``flow_name``:
    it exists (404-style sentence otherwise) and holds a field of that flow."""
    from app.db.tables import InitialCondition

    ic = existing(session, InitialCondition, data, "initial_condition_id", "initial condition")
    if ic.flow != flow_name:
        raise InvalidParams(
            f"params.initial_condition_id: the initial condition is a {ic.flow!r} field; "
            f"the models were trained on {flow_name!r}."
        )
    return ic


def start_dataset(session: Session, data: dict[str, Any], flow_name: str):
    """The ``dataset_id`` row a run starts from: it exists and holds ``flow_name``."""
    from app.db.tables import Dataset

    dataset = existing(session, Dataset, data, "dataset_id", "dataset")
    if dataset.flow != flow_name:
        raise InvalidParams(
            f"params.dataset_id: the dataset holds {dataset.flow!r}; the models were "
            f"trained on {flow_name!r}."
        )
    return dataset


def check_trajectory(dataset, trajectory: int | None) -> None:
    """``trajectory`` (None: the default) is one of the dataset's trajectories."""
    if trajectory is not None and trajectory >= dataset.shape[0]:
        raise InvalidParams(
            f"params.trajectory: the dataset has {dataset.shape[0]} trajectories "
            f"(0–{dataset.shape[0] - 1}); got {trajectory}."
        )


def known_flow(name: str):
    try:
        return get_flow(name)
    except UnknownFlowError as exc:
        raise InvalidParams(f"params.flow: {exc}") from exc


def allowed_variant(flow, nu: float | None, key: str = "nu"):
    """The flow at viscosity ``nu`` (None: its own), or InvalidParams listing the allowed."""
    if nu is None:
        return flow
    try:
        return flow.variant(nu)
    except ValueError as exc:
        raise InvalidParams(f"params.{key}: {exc}") from exc


def fitting_grid(flow, n: int, key: str) -> None:
    try:
        flow.check_grid((n, n))
    except ValueError as exc:
        raise InvalidParams(f"params.{key}: {exc}") from exc


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
