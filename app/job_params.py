"""Checks a job's parameters before anything is stored: shape (pydantic, per kind) and
meaning (the referenced rows exist, the flow and architecture are known, grids fit)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db.tables import Dataset, InitialCondition, Model
from app.schemas import PARAMS, CompareParams, RolloutParams
from models.registry import MODELS, contract_of, count_parameters
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


CHANNEL = "channel3d"
CHANNEL_ONLY = ("channel_grid", "output_grid", "re_tau", "closure", "drive")


def _check_channel_generate(data: dict[str, Any]) -> None:
    """The channel grid: enough points for the 2/3 rule and the wall-normal stencils, not
    more than a worker can hold; a storage grid no finer than the solver's."""
    if data["initial_condition"] not in (None, "turbulent", "laminar"):
        raise InvalidParams(
            "params.initial_condition: channel3d offers 'turbulent' (Reichardt profile) or "
            f"'laminar' (Poiseuille), each plus divergence-free perturbations; got "
            f"{data['initial_condition']!r}."
        )
    nx, ny, nz = data["channel_grid"] or (32, 49, 32)
    if min(nx, nz) < 4 or ny < 4 or max(nx, nz) > 512 or ny > 1024:
        raise InvalidParams(
            "params.channel_grid: nx and nz must be 4–512 and ny (cells) 4–1024; "
            f"got {nx}, {ny}, {nz}."
        )
    if data["output_grid"] is not None:
        ox, oz = data["output_grid"]
        if not (2 <= ox <= nx and 2 <= oz <= nz):
            raise InvalidParams(
                f"params.output_grid: the stored x–z grid must be between 2 and the solver's "
                f"{nx}×{nz}; got {ox}×{oz}."
            )


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

    if kind == "generate" and data["flow"] == CHANNEL:
        _check_channel_generate(data)
    elif kind == "generate":
        for key in CHANNEL_ONLY:
            if data[key] not in (None, "pressure"):
                raise InvalidParams(f"params.{key}: applies to the channel3d flow only.")
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
    elif kind == "compare":
        data = _check_compare(session, params, data, queue, exists, known_flow)
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
    if flow_name == CHANNEL:
        if params.model_id is not None and model.arch not in {
            name for name, spec in MODELS.items() if spec.dims == 3
        }:
            raise InvalidParams(
                f"params.model_id: a channel rollout needs a 3D model; {model.id} is {model.arch}."
            )
        data["flow"] = CHANNEL
        return data, queue
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


def _check_compare(session, params: CompareParams, data, queue, exists, known_flow):
    """A comparison: every model exists, works on 2D single-channel fields of one flow at
    one interval; the initial condition (uploaded, or a dataset trajectory) is of that flow;
    reduced precisions the chosen queue cannot give are refused. What only the worker knows
    (whether it has a GPU) is checked there, per model."""
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(params.models):
        where = f"params.models[{i}]"
        row = session.get(Model, entry.model_id)
        if row is None:
            raise InvalidParams(f"{where}.model_id: there is no model with id {entry.model_id!r}.")
        key = (entry.model_id, entry.precision)
        if key in seen:
            raise InvalidParams(
                f"{where}: model {entry.model_id} at {entry.precision} is already entry "
                f"{seen[key]}; give each (model, precision) once."
            )
        seen[key] = i
        try:
            contract = contract_of(row.arch, row.config)
        except ValueError as exc:
            raise InvalidParams(
                f"{where}.model_id: model {row.id} has a broken config: {exc}"
            ) from None
        if contract.dims != 2 or contract.channels != 1:
            raise InvalidParams(
                f"{where}.model_id: comparisons run on 2D vorticity; model {row.id} ({row.arch}) "
                f"works on {contract.dims}D fields with {contract.channels} channel(s)."
            )
        if entry.precision in ("bfloat16", "float16") and queue == "cpu":
            raise InvalidParams(
                f"{where}.precision: {entry.precision} inference needs a CUDA GPU, and the job "
                "is sent to the cpu queue; use float32 or int8, or the gpu queue."
            )
        rows.append(row)
    flows = {row.flow for row in rows}
    if len(flows) > 1:
        listing = "; ".join(f"{row.id} on {row.flow!r}" for row in rows)
        raise InvalidParams(
            f"params.models: the models were trained on different flows ({listing}); a "
            "comparison needs one flow."
        )
    flow_name = rows[0].flow
    flow = known_flow(flow_name)
    first = rows[0].interval
    if any(abs(row.interval - first) > 1e-9 * max(1.0, abs(first)) for row in rows):
        listing = ", ".join(f"{row.id}: {row.interval:g}" for row in rows)
        raise InvalidParams(
            f"params.models: the models step at different intervals ({listing}); a "
            "comparison advances every model by one interval per step, so compare models "
            "trained at the same interval."
        )
    interval = params.interval or first
    if params.initial_condition_id is not None:
        ic = exists(InitialCondition, "initial_condition_id", "initial condition")
        if ic.flow != flow_name:
            raise InvalidParams(
                f"params.initial_condition_id: the initial condition is a {ic.flow!r} field; "
                f"the models were trained on {flow_name!r}."
            )
        if len(ic.shape) != 2:
            raise InvalidParams(
                "params.initial_condition_id: comparisons start from one 2D vorticity "
                f"field; this initial condition is shaped {ic.shape}."
            )
    if params.dataset_id is not None:
        dataset = exists(Dataset, "dataset_id", "dataset")
        if dataset.flow != flow_name:
            raise InvalidParams(
                f"params.dataset_id: the dataset holds {dataset.flow!r}; the models were "
                f"trained on {flow_name!r}."
            )
        if len(dataset.shape) != 4:
            raise InvalidParams(
                f"params.dataset_id: the dataset holds fields shaped {dataset.shape[2:]}; "
                "comparisons run on 2D vorticity."
            )
        if params.trajectory is not None and params.trajectory >= dataset.shape[0]:
            raise InvalidParams(
                f"params.trajectory: the dataset has {dataset.shape[0]} trajectories "
                f"(0–{dataset.shape[0] - 1}); got {params.trajectory}."
            )
    if params.nu is not None:
        try:
            flow.variant(params.nu)
        except ValueError as exc:
            raise InvalidParams(f"params.nu: {exc}") from exc
    horizon = params.steps * interval
    for t in params.report_times or ():
        if not 0 < t <= horizon * (1 + 1e-9):
            raise InvalidParams(
                f"params.report_times: {t:g} is outside the horizon (0, {horizon:g}] "
                f"({params.steps} steps of {interval:g})."
            )
    data["flow"] = flow.name
    data["interval"] = interval  # resolved here, so the job row says what ran
    return data
