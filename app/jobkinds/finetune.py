"""``finetune``: continue training a registered model, on its own flow's data, possibly
with a refined output layer (spectral fine-tuning of a spatiotemporal FNO). Runs the same
worker function as ``train``."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from app.db.tables import Dataset, Model
from app.jobkinds.base import InvalidParams, JobKind
from app.jobkinds.checks import existing
from app.jobkinds.train import TrainingOptions, bounds, check_long_horizon, check_pde_loss


class FinetuneParams(TrainingOptions):
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
    refine_iterations: int = Field(
        default=0,
        ge=0,
        le=50,
        description="Spatiotemporal FNO only: after the epochs, this many full-batch L-BFGS "
        "iterations of the output layer alone under the H⁻¹ objective, on the fine-tune's "
        "training windows (Spectral-Refiner's refinement); 0 skips it.",
    )


def check(session: Session, params: FinetuneParams, data: dict[str, Any], queue: str):
    model = existing(session, Model, data, "model_id", "model")
    dataset = existing(session, Dataset, data, "dataset_id", "dataset")
    if data["output_modes"] is not None and model.arch != "sfno":
        raise InvalidParams(
            "params.output_modes: only a spatiotemporal FNO (sfno) has an output layer "
            f"to refine; model {model.id} is {model.arch}."
        )
    if data.get("refine_iterations") and model.arch != "sfno":
        raise InvalidParams(
            "params.refine_iterations: only a spatiotemporal FNO (sfno) has an output layer "
            f"to refine; model {model.id} is {model.arch}."
        )
    if dataset.flow != model.flow:
        raise InvalidParams(
            f"params.dataset_id: the model was trained on {model.flow!r}; the dataset "
            f"is {dataset.flow!r}."
        )
    check_long_horizon(dataset, data)
    check_pde_loss(dataset, data)
    return data, queue


KIND = JobKind(
    name="finetune",
    description="Continue training a registered model on a dataset of its flow.",
    params=FinetuneParams,
    # train and finetune share a task and a runner; the runner reads the job's kind.
    task="eddyscope.train",
    runner="workers.runners.train:run_train",
    check=check,
    limits=bounds,
)
