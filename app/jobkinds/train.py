"""``train``: fit a new model of a registered architecture on a stored dataset.

``TrainingOptions`` (the optimisation, the loss, the hardware) is shared with ``finetune``;
both run ``workers.runners.train.run_train``, which reads the job's kind."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from app.db.tables import Dataset
from app.jobkinds import limits
from app.jobkinds.base import InvalidParams, JobKind, JobParams
from app.jobkinds.checks import check_model_config, existing
from app.jobkinds.online_params import OnlineOptions, check_online, check_online_bounds
from app.settings import Settings
from models.pde_loss import has_pde_loss, pde_loss_flows


class TrainingOptions(JobParams):
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
    data_weight: float = Field(
        default=1.0,
        ge=0,
        le=1e6,
        description="Weight of the data loss (the predictions against the dataset's next "
        "frames) in the objective; 0 trains without labels, on the physics loss alone.",
    )
    pde_weight: float = Field(
        default=0.0,
        ge=0,
        le=1e6,
        description="Weight of the physics loss (physics-informed training, PINO): the "
        "residual of the flow's equations between the input's last frame and the predicted "
        "ones, relative to persistence's (persistence scores 1). Only for flows with a "
        "physics loss; the frames must be close enough in time to resolve the flow.",
    )
    amp: bool = Field(
        default=True, description="Mixed precision (bfloat16) on CUDA; ignored on CPU."
    )
    gpus: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes of data-parallel training (torch.distributed; one per GPU, "
        "or CPU processes with gloo where the worker has no GPU); at most the server's "
        "max_gpus and the worker's GPUs (CPU cores without one).",
    )
    events_every: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="Optimiser steps between progress events, at most: a run of fewer than "
        "50 × this many steps reports more often (every step when it has at most 50), so "
        "its curves show at least 50 points and the warm-up shows on small data.",
    )
    long_horizon_steps: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Channel models: length of the long-horizon skill rollout run after "
        "training (statistics against the data's, and the step a guard stopped it); default "
        "ten times the trajectories' length, at most 400; 0 skips it.",
    )

    @model_validator(mode="after")
    def _push_forward_needs_unroll(self) -> TrainingOptions:
        if self.push_forward and self.unroll < 2:
            raise ValueError("push_forward needs unroll of at least 2")
        if self.data_weight == 0 and self.pde_weight == 0:
            raise ValueError("data_weight and pde_weight cannot both be 0: nothing to minimise")
        return self


class TrainParams(TrainingOptions):
    dataset_id: str
    name: str | None = None
    arch: str = "fno2d"
    config: dict[str, Any] = Field(default_factory=dict)
    online: OnlineOptions | None = Field(
        default=None,
        description="Online training: producer jobs step the reference solver from fresh "
        "initial conditions and stream windows to the trainer, nothing stored; dataset_id is "
        "then the held-out validation set and the producers' template "
        "(app/jobkinds/online_params.py).",
    )


def check(session: Session, params: TrainParams, data: dict[str, Any], queue: str):
    dataset = existing(session, Dataset, data, "dataset_id", "dataset")
    check_model_config(data["arch"], data["config"], dataset.shape, data["unroll"])
    check_long_horizon(dataset, data)
    if data.get("online") is not None:
        check_online(dataset, data)
    check_pde_loss(dataset, data)
    return data, queue


def check_pde_loss(dataset: Dataset, data: dict[str, Any]) -> None:
    """``pde_weight > 0`` only on a dataset whose flow has a physics loss."""
    if data.get("pde_weight", 0) > 0 and not has_pde_loss(dataset.flow):
        raise InvalidParams(
            f"params.pde_weight: there is no physics loss for flow {dataset.flow!r} "
            f"(dataset {dataset.id}); flows with one: {', '.join(pde_loss_flows())}. "
            "Set pde_weight to 0."
        )


def check_long_horizon(dataset: Dataset, data: dict[str, Any]) -> None:
    """``long_horizon_steps`` only where a skill rollout runs: on channel data (hit3d data
    are 6-D too, but its models get no skill rollout)."""
    from app.services.flows import is_channel_flow

    if data.get("long_horizon_steps") is not None and not is_channel_flow(dataset.flow):
        raise InvalidParams(
            "params.long_horizon_steps: the long-horizon skill rollout is run for channel "
            f"models only; dataset {dataset.id} holds {dataset.flow!r}."
        )


def bounds(session: Session, data: dict[str, Any], settings: Settings) -> None:
    """Data-parallel processes (``gpus``) within the server's limit; the worker checks them
    against its own GPUs again (``workers.runners.train``); a long-horizon rollout's steps ×
    grid points within the server's limit."""
    limits.check_gpus(data["gpus"], settings)
    if data.get("online") is not None:
        check_online_bounds(session.get(Dataset, data["dataset_id"]), data, settings)
    if data.get("long_horizon_steps"):
        dataset = session.get(Dataset, data["dataset_id"])
        if dataset is not None and len(dataset.shape) == 6:
            grid = tuple(dataset.shape[2:5])
            try:
                limits.check_steps_points(data["long_horizon_steps"], grid, settings)
            except limits.LimitExceeded as exc:
                raise limits.LimitExceeded(
                    str(exc).replace("params.steps:", "params.long_horizon_steps:")
                ) from None


KIND = JobKind(
    name="train",
    description="Train a new model on a stored dataset.",
    params=TrainParams,
    task="eddyscope.train",
    runner="workers.runners.train:run_train",
    check=check,
    limits=bounds,
)
