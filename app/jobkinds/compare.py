"""``compare``: several models (each at an inference precision) rolled out side by side
from one initial condition, beside the reference solver, with per-step errors, spectra and
a summary at chosen times."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from app.db.tables import Dataset, InitialCondition, Model
from app.jobkinds import compare_channel, compare_hit3d, limits
from app.jobkinds.base import InvalidParams, JobKind, JobParams
from app.jobkinds.checks import (
    allowed_variant,
    check_trajectory,
    known_flow,
    start_dataset,
    start_initial_condition,
)
from app.services.flows import is_channel_flow, is_hit3d_flow
from app.settings import Settings
from models.registry import contract_of

PRECISIONS = ("float32", "bfloat16", "float16", "int8")


class CompareEntry(BaseModel):
    """One column of a comparison: a registered model at an inference precision."""

    model_config = ConfigDict(extra="forbid")
    model_id: str
    precision: Literal["float32", "bfloat16", "float16", "int8"] = Field(
        default="float32",
        description="float32; bfloat16 or float16 (CUDA workers only); int8 (dynamic "
        "quantisation of the linear layers, run on the CPU).",
    )


class CompareParams(JobParams):
    initial_condition_id: str | None = Field(
        default=None, description="Uploaded initial condition (or give dataset_id)."
    )
    dataset_id: str | None = Field(
        default=None,
        description="Start from the first frame of a trajectory of this dataset instead.",
    )
    trajectory: int | None = Field(
        default=None,
        ge=0,
        description="Trajectory index in the dataset; default: the first validation "
        "(held-out) trajectory of the first model if it was trained on the dataset, else 0.",
    )
    models: list[CompareEntry] = Field(
        min_length=1,
        max_length=8,
        description="1–8 (model, precision) columns; a model may appear at several precisions.",
    )
    steps: int = Field(default=50, ge=1, le=10_000, description="Horizon, in model steps.")
    interval: float | None = Field(
        default=None, gt=0, le=1000, description="Time per step; default: the models' common one."
    )
    reference: bool = Field(
        default=True, description="Run the reference solver beside the models (errors need it)."
    )
    divergence_factor: float = Field(
        default=10.0,
        gt=1,
        le=1e12,
        description="A model whose energy exceeds this many times the reference's is stopped.",
    )
    report_times: list[float] | None = Field(
        default=None,
        max_length=32,
        description="Times at which the summary reports each model's error; default: 25, 50 "
        "and 100 % of the horizon.",
    )
    nu: float | None = Field(
        default=None,
        gt=0,
        description="Reference viscosity; default: the training data's of the dataset or the "
        "first model, else the flow's.",
    )
    seed: int = Field(
        default=0, ge=0, description="Random initial condition when neither source is given."
    )
    resolution: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="hit3d comparisons only: the side n of the random field's n³ grid; it must "
        "be the models' training grid (the default).",
    )
    baselines: list[Literal["none", "smagorinsky", "wale", "dynamic"]] = Field(
        default_factory=list,
        max_length=4,
        description="Channel comparisons only: LES closures run on the models' coarse grid "
        "from the same filtered initial condition (none: coarse DNS), each a column.",
    )
    window: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Channel comparisons only: frames per window of the windowed statistics; "
        "default: a quarter of the steps.",
    )
    drift: float | None = Field(
        default=None,
        gt=0,
        le=1e6,
        description="Channel comparisons only: a column whose bulk velocity differs from the "
        "reference's by more than this fraction is stopped; default 0.5.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> CompareParams:
        if self.initial_condition_id is not None and self.dataset_id is not None:
            raise ValueError("give initial_condition_id or dataset_id, not both")
        if self.trajectory is not None and self.dataset_id is None:
            raise ValueError("trajectory needs dataset_id")
        return self

    @field_validator("baselines")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({b for b in value if value.count(b) > 1})
        if repeated:
            raise ValueError(f"give each closure once; repeated: {', '.join(repeated)}")
        return value


def check(session: Session, params: CompareParams, data: dict[str, Any], queue: str):
    """A comparison: every model exists, and all work on one flow at one interval: 2D
    single-channel fields, or (a channel flow) 3D velocity on one coarse grid, beside LES
    baselines (``compare_channel``), or (hit3d) 3D velocity on one cube beside one reference
    LES (``compare_hit3d``); the initial condition (uploaded, or a dataset
    trajectory) is of that flow; reduced precisions the chosen queue cannot give are
    refused. What only the worker knows (whether it has a GPU) is checked there, per
    model."""
    rows = []
    contracts = []
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
        if entry.precision in ("bfloat16", "float16") and queue == "cpu":
            raise InvalidParams(
                f"{where}.precision: {entry.precision} inference needs a CUDA GPU, and the job "
                "is sent to the cpu queue; use float32 or int8, or the gpu queue."
            )
        rows.append(row)
        contracts.append(contract)
    channel = [is_channel_flow(row.flow) for row in rows]
    if any(channel) and not all(channel):
        inside = rows[channel.index(True)]
        outside = rows[channel.index(False)]
        raise InvalidParams(
            f"params.models: model {outside.id} ({outside.arch}) was trained on "
            f"{outside.flow!r} and model {inside.id} ({inside.arch}) on the channel flow "
            f"{inside.flow!r}; a comparison runs models of one flow, so compare channel "
            "models only with channel models."
        )
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
    _check_report_times(params, interval)
    data["flow"] = flow.name
    data["interval"] = interval  # resolved here, so the job row says what ran
    if all(channel):
        return compare_channel.check_channel(session, params, data, queue, rows, contracts)
    if is_hit3d_flow(flow.name):
        return compare_hit3d.check_hit3d_compare(
            session, params, data, queue, rows, contracts, flow
        )
    if data.get("resolution") is not None:
        raise InvalidParams(
            "params.resolution: applies to hit3d comparisons only; a 2D comparison's random "
            "field is on the first model's grid."
        )
    compare_channel.refuse_channel_only(data)
    for i, (row, contract) in enumerate(zip(rows, contracts, strict=True)):
        if contract.dims != 2 or contract.channels != 1:
            raise InvalidParams(
                f"params.models[{i}].model_id: comparisons run on 2D vorticity; model "
                f"{row.id} ({row.arch}) works on {contract.dims}D fields with "
                f"{contract.channels} channel(s)."
            )
    if params.initial_condition_id is not None:
        ic = start_initial_condition(session, data, flow_name)
        if len(ic.shape) != 2:
            raise InvalidParams(
                "params.initial_condition_id: comparisons start from one 2D vorticity "
                f"field; this initial condition is shaped {ic.shape}."
            )
    if params.dataset_id is not None:
        dataset = start_dataset(session, data, flow_name)
        if len(dataset.shape) != 4:
            raise InvalidParams(
                f"params.dataset_id: the dataset holds fields shaped {dataset.shape[2:]}; "
                "comparisons run on 2D vorticity."
            )
        check_trajectory(dataset, params.trajectory)
    allowed_variant(flow, params.nu)
    return data, queue


def _check_report_times(params: CompareParams, interval: float) -> None:
    horizon = params.steps * interval
    for t in params.report_times or ():
        if not 0 < t <= horizon * (1 + 1e-9):
            raise InvalidParams(
                f"params.report_times: {t:g} is outside the horizon (0, {horizon:g}] "
                f"({params.steps} steps of {interval:g})."
            )


def reference_grid(session: Session, data: dict[str, Any]) -> tuple[int, ...]:
    """The grid the comparison's reference runs on: its initial condition's, its dataset's,
    else (a random field) the first model's training grid; a channel comparison's, the
    solver grid of its first model's dataset."""
    if is_channel_flow(data.get("flow")):
        return compare_channel.reference_grid(session, data)
    if is_hit3d_flow(data.get("flow")):
        return (int(data["resolution"]),) * 3
    if data.get("initial_condition_id"):
        ic = session.get(InitialCondition, data["initial_condition_id"])
        return tuple(ic.shape)
    if data.get("dataset_id"):
        dataset = session.get(Dataset, data["dataset_id"])
        return tuple(dataset.shape[2:])
    first = session.get(Model, data["models"][0]["model_id"])
    n = first.resolution or 64
    return (n, n)


def bounds(session: Session, data: dict[str, Any], settings: Settings) -> None:
    """Steps × grid points within the server's limit."""
    limits.check_steps_points(data["steps"], reference_grid(session, data), settings)


KIND = JobKind(
    name="compare",
    description="Roll several models out side by side against the reference solver.",
    params=CompareParams,
    task="eddyscope.compare",
    runner="workers.runners.compare:run_compare",
    check=check,
    limits=bounds,
)
