"""``rollout``: a model's autoregressive rollout beside the reference solver (or the solver
alone), from an uploaded initial condition or a random field of a flow. The worker picks
the flow's runner (2D vorticity, channel velocity or periodic-box velocity, hit3d; the hit3d
checks are in ``app.jobkinds.rollout_hit3d``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from app.channel_params import channel_flow
from app.db.tables import Dataset, InitialCondition, Model
from app.jobkinds import limits
from app.jobkinds.base import InvalidParams, JobKind, JobParams
from app.jobkinds.checks import allowed_variant, existing, fitting_grid, known_flow
from app.jobkinds.rollout_hit3d import check_hit3d, velocity_grid
from app.services.flows import is_channel_flow, is_hit3d_flow
from app.settings import Settings
from models.registry import MODELS

DEFAULT_FLOW = "ns2d-forced"


class RolloutParams(JobParams):
    initial_condition_id: str | None = Field(
        default=None, description="Uploaded initial condition; omitted: a random field from `seed`."
    )
    model_id: str | None = Field(default=None, description="Omitted: the reference solver only.")
    nu: float | None = Field(
        default=None,
        gt=0,
        description="Reference viscosity; default: the model's training data's, else the flow's.",
    )
    flow: str | None = Field(
        default=None, description="Needed only when there is no initial condition."
    )
    resolution: int = Field(
        default=64,
        ge=16,
        le=1024,
        description="Grid of a random initial condition (n², or n³ for hit3d, whose default "
        "is the model's grid, else the flow's).",
    )
    steps: int = Field(default=50, ge=1, le=10_000)
    interval: float | None = Field(
        default=None, gt=0, le=1000, description="Time per step; default: the model's, else 0.25."
    )
    seed: int = Field(default=0, ge=0)


def check(session: Session, params: RolloutParams, data: dict[str, Any], queue: str):
    flow_name = params.flow
    if params.initial_condition_id is not None:
        ic = existing(session, InitialCondition, data, "initial_condition_id", "initial condition")
        if flow_name is not None and flow_name != ic.flow:
            raise InvalidParams(
                f"params.flow: the initial condition belongs to {ic.flow!r}, not {flow_name!r}."
            )
        flow_name = ic.flow
    model = None
    if params.model_id is not None:
        model = existing(session, Model, data, "model_id", "model")
        if flow_name is not None and flow_name != model.flow:
            if params.initial_condition_id is None:
                raise InvalidParams(
                    f"params.model_id: the model was trained on {model.flow!r}, not on "
                    f"params.flow {flow_name!r}."
                )
            raise InvalidParams(
                f"params.model_id: the model was trained on {model.flow!r}, but the initial "
                f"condition is a {flow_name!r} field."
            )
        flow_name = model.flow
    elif params.queue is None:
        queue = "cpu"  # the reference solver alone needs no GPU
    if is_channel_flow(flow_name):
        spec = MODELS.get(model.arch) if model is not None else None
        if model is not None and (spec is None or spec.dims != 3):
            raise InvalidParams(
                f"params.model_id: a channel rollout needs a 3D model; {model.id} is {model.arch}."
            )
        data["flow"] = flow_name
        return data, queue
    flow = known_flow(flow_name or DEFAULT_FLOW)
    if is_hit3d_flow(flow.name):
        ic = (
            session.get(InitialCondition, data["initial_condition_id"])
            if data.get("initial_condition_id")
            else None
        )
        return check_hit3d(session, flow, params, data, model, ic), queue
    if flow.dims != 2:  # a 3D flow of a kind no rollout runner knows
        raise InvalidParams(f"params.flow: rollouts of {flow.name} are not built yet.")
    allowed_variant(flow, params.nu)
    if params.initial_condition_id is None:
        fitting_grid(flow, params.resolution, "resolution")
    data["flow"] = flow.name
    return data, queue


def rollout_grid(session: Session, data: dict[str, Any]) -> tuple[int, ...]:
    """The grid the rollout steps on: its initial condition's (a 3D velocity's spatial grid,
    its components first or last), else (2D) the random field's ``resolution`` (n², n³ for
    hit3d), else (channel) the solver grid of the model's training data or the flow's
    default grid."""
    ic_id = data.get("initial_condition_id")
    ic = session.get(InitialCondition, ic_id) if ic_id else None
    if is_hit3d_flow(data["flow"]):
        return velocity_grid(ic.shape) if ic is not None else (data["resolution"],) * 3
    if is_channel_flow(data["flow"]):
        if ic is not None:
            return velocity_grid(ic.shape)  # velocity (3, nx, ny, nz)
        model = session.get(Model, data["model_id"]) if data.get("model_id") else None
        dataset = session.get(Dataset, model.dataset_id) if model and model.dataset_id else None
        stored = (dataset.params or {}) if dataset is not None else {}
        grid = stored.get("solver_grid") or stored.get("channel_grid")
        return tuple(grid or channel_flow(data).default_grid)
    if ic is not None:
        return tuple(ic.shape)
    return (data["resolution"], data["resolution"])


def bounds(session: Session, data: dict[str, Any], settings: Settings) -> None:
    """Steps × grid points within the server's limit."""
    limits.check_steps_points(data["steps"], rollout_grid(session, data), settings)


KIND = JobKind(
    name="rollout",
    description="Roll a model out beside the reference solver, or run the solver alone.",
    params=RolloutParams,
    task="eddyscope.rollout",
    runner="workers.runners.rollout:run_rollout",
    check=check,
    limits=bounds,
)
