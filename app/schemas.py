"""Request and response schemas of the REST API (separate from the ORM tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("*", when_used="json")
    def _utc(self, value: Any) -> Any:
        # Stored naive UTC; say so on the wire.
        if isinstance(value, datetime):
            return value.isoformat() + "Z"
        return value


class Health(BaseModel):
    status: str
    database: str
    broker: str


class InitialConditionOut(Out):
    id: str
    name: str
    flow: str
    shape: list[int]
    fields: list[str]
    stats: dict[str, float]
    created_at: datetime


class DatasetOut(Out):
    id: str
    name: str
    flow: str
    shape: list[int]
    params: dict[str, Any]
    job_id: str | None
    created_at: datetime


class ModelOut(Out):
    id: str
    name: str
    arch: str
    flow: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    parameter_count: int
    resolution: int
    interval: float
    dataset_id: str | None
    job_id: str | None
    created_at: datetime


class RolloutOut(Out):
    id: str
    job_id: str
    model_id: str | None
    initial_condition_id: str | None
    flow: str
    steps: int
    interval: float
    resolution: int
    frames: int = 0
    status: str = ""
    created_at: datetime


class RolloutDetail(RolloutOut):
    """A rollout with what it holds: ``kind`` "rollout" (one model) or "compare" (several),
    and its ``sources``, the names the frames endpoint takes."""

    kind: str = "rollout"
    sources: list[dict[str, Any]] = Field(default_factory=list)


class JobOut(Out):
    id: str
    kind: str
    status: str
    queue: str
    params: dict[str, Any]
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any]
    attempts: int
    worker: str | None = None
    parent_id: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobCreated(BaseModel):
    id: str
    kind: str
    status: str


class EventOut(Out):
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


# --- job parameters, validated per kind -----------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: Literal["gpu", "cpu"] | None = Field(
        default=None, description="Override the queue the job is sent to."
    )


class GenerateParams(_Params):
    flow: str = "ns2d-forced"
    name: str | None = None
    nu: float | None = Field(
        default=None, gt=0, description="Viscosity, one the flow allows; default: the flow's."
    )
    initial_condition: str | None = Field(
        default=None, description="Initial-condition family the flow offers; default: its own."
    )
    scheme: Literal["rk4cn", "cnheun"] = Field(
        default="rk4cn", description="Time stepper: IMEX RK4–Crank–Nicolson or CN–Heun (RK2)."
    )
    n_trajectories: int = Field(default=8, ge=1, le=100_000)
    n_snapshots: int = Field(default=20, ge=2, le=10_000)
    resolution: int = Field(default=64, ge=16, le=1024)
    solver_resolution: int | None = Field(
        default=None,
        ge=16,
        le=2048,
        description="Finer grid the solver runs on; output is spectrally truncated.",
    )
    interval: float = Field(default=1.0, gt=0, le=1000, description="Time between saved snapshots.")
    warmup: float = Field(default=0.0, ge=0, le=10_000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    shard_size: int = Field(
        default=64, ge=1, le=100_000, description="Trajectories per shard (one task, one file)."
    )
    seed: int = Field(default=0, ge=0)
    # channel3d only (walls at y = ±1; see physics/channel3d.py).
    channel_grid: list[int] | None = Field(
        default=None,
        min_length=3,
        max_length=3,
        description="channel3d: solver grid nx, ny (cells between the walls), nz; "
        "default 32, 49, 32.",
    )
    output_grid: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="channel3d: store the velocity on a coarser x–z grid (nx, nz), "
        "spectrally filtered; default the solver grid.",
    )
    re_tau: float | None = Field(
        default=None, gt=0, le=5000, description="channel3d: friction Reynolds number (180)."
    )
    closure: Literal["smagorinsky", "wale", "dynamic"] | None = Field(
        default=None, description="channel3d: LES closure; none is coarse DNS."
    )
    drive: Literal["pressure", "flow_rate"] = Field(
        default="pressure",
        description="channel3d: constant mean pressure gradient or constant flow rate.",
    )

    @model_validator(mode="after")
    def _resolutions(self) -> GenerateParams:
        if self.solver_resolution is not None and self.solver_resolution < self.resolution:
            raise ValueError("solver_resolution must be at least the output resolution")
        return self


class _TrainingOptions(_Params):
    """What train and finetune share: the optimisation, the loss and the hardware."""

    epochs: int = Field(default=20, ge=1, le=100_000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    lr: float = Field(default=1e-3, gt=0, le=1)
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    val_fraction: float = Field(default=0.2, ge=0, lt=1)
    seed: int = Field(default=0, ge=0)
    scheduler: Literal["onecycle", "step", "constant"] = Field(
        default="onecycle",
        description="One-cycle (warm-up then cosine decay), step decay, or a constant rate.",
    )
    step_epochs: int = Field(
        default=10, ge=1, le=100_000, description="Step decay: epochs between decays."
    )
    gamma: float = Field(default=0.5, gt=0, le=1, description="Step decay: factor per decay.")
    grad_clip: float = Field(
        default=1.0, ge=0, le=1e6, description="Global gradient-norm clip; 0 disables."
    )
    loss: Literal["rel_l2", "rel_l1", "h1", "h-1"] = Field(
        default="rel_l2",
        description="Relative L2 or L1, relative H1, or relative H⁻¹ (negative Sobolev).",
    )
    unroll: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Model calls per training sample: 1 is one-step training; more unrolls "
        "the model autoregressively and averages the loss over every predicted frame.",
    )
    push_forward: bool = Field(
        default=False,
        description="With unroll > 1: no gradient through the first unroll − 1 calls, loss "
        "on the last (the push-forward trick).",
    )
    amp: bool = Field(
        default=True, description="Mixed precision (bfloat16) on CUDA; ignored on CPU."
    )
    gpus: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes of data-parallel training (torch.distributed; one per GPU, "
        "or CPU processes with gloo where the worker has no GPU).",
    )
    events_every: int = Field(
        default=10, ge=1, le=100_000, description="Optimiser steps between progress events."
    )

    @model_validator(mode="after")
    def _push_forward_needs_unroll(self) -> _TrainingOptions:
        if self.push_forward and self.unroll < 2:
            raise ValueError("push_forward needs unroll of at least 2")
        return self


class TrainParams(_TrainingOptions):
    dataset_id: str
    name: str | None = None
    arch: str = "fno2d"
    config: dict[str, Any] = Field(default_factory=dict)


class FinetuneParams(_TrainingOptions):
    model_id: str
    dataset_id: str
    name: str | None = None
    epochs: int = Field(default=5, ge=1, le=100_000)
    lr: float = Field(default=1e-4, gt=0, le=1)
    output_modes: int | None = Field(
        default=None,
        ge=1,
        le=512,
        description="Spatiotemporal FNO only: rebuild the output layer with this many "
        "spatial modes before fine-tuning (spectral refinement).",
    )
    output_modes_t: int | None = Field(
        default=None, ge=1, le=512, description="With output_modes: temporal modes."
    )


class RolloutParams(_Params):
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
        default=64, ge=16, le=1024, description="Grid of a random initial condition."
    )
    steps: int = Field(default=50, ge=1, le=10_000)
    interval: float | None = Field(
        default=None, gt=0, le=1000, description="Time per step; default: the model's, else 0.25."
    )
    seed: int = Field(default=0, ge=0)


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


class CompareParams(_Params):
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

    @model_validator(mode="after")
    def _one_source(self) -> CompareParams:
        if self.initial_condition_id is not None and self.dataset_id is not None:
            raise ValueError("give initial_condition_id or dataset_id, not both")
        if self.trajectory is not None and self.dataset_id is None:
            raise ValueError("trajectory needs dataset_id")
        return self


PARAMS: dict[str, type[_Params]] = {
    "generate": GenerateParams,
    "train": TrainParams,
    "finetune": FinetuneParams,
    "rollout": RolloutParams,
    "compare": CompareParams,
}


class JobCreate(BaseModel):
    kind: Literal["generate", "train", "finetune", "rollout", "compare"]
    params: dict[str, Any] = Field(default_factory=dict)
