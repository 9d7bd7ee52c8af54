"""The ``online`` option of a ``train`` job: train while the reference solver generates, with
no dataset on disk (``workers.runners.train_online``).

The job's ``dataset_id`` names a stored dataset made by a ``generate`` job: it is the fixed
validation set (held out whole; nothing of it is trained on) and the template of the
producers, which run the same flow with the same parameters (viscosity, initial-condition
family, grid, solver grid, interval, spin-up, snapshots per trajectory, scheme) from fresh
initial conditions. Their trajectory seeds come from ``online.seed``, which must differ from
the dataset's seed: trajectory ``i`` of seed ``s`` is drawn with ``s·1 000 003 + i``, so two
different seeds never draw the same field while ``i`` stays under 1 000 003.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.db.tables import Dataset
from app.jobkinds import limits
from app.jobkinds.base import InvalidParams
from app.settings import Settings

POLICIES = ("fifo", "firo", "reservoir")
# Generation parameters a producer repeats from the validation dataset.
TEMPLATE_KEYS = (
    "flow",
    "nu",
    "initial_condition",
    "scheme",
    "resolution",
    "solver_resolution",
    "interval",
    "warmup",
    "n_snapshots",
)
MAX_TRAJECTORIES = 1_000_000  # below the seed stride 1 000 003, so seeds never collide


class OnlineOptions(BaseModel):
    """How producers feed an online training job, and how the trainer buffers their windows."""

    model_config = ConfigDict(extra="forbid")

    producers: int = Field(
        default=2, ge=1, le=64, description="Producer jobs stepping the solver at once."
    )
    trajectories: int = Field(
        default=64,
        ge=1,
        le=MAX_TRAJECTORIES,
        description="Fresh trajectories the producers generate in all (split between them).",
    )
    buffer_size: int = Field(
        default=256, ge=1, le=1_000_000, description="Windows the trainer's buffer holds."
    )
    buffer_policy: Literal["fifo", "firo", "reservoir"] = Field(
        default="reservoir",
        description="fifo: oldest first, each window once; firo: random, each window once; "
        "reservoir: random, windows stay and are seen again until a newer one replaces a "
        "seen one (Melissa's policies).",
    )
    min_fill: int | None = Field(
        default=None,
        ge=1,
        description="Windows the buffer must hold before a batch is drawn; default half the "
        "buffer (at least a batch).",
    )
    max_seen: int | None = Field(
        default=None,
        ge=1,
        description="Reservoir: times one window may be drawn before it leaves; default no "
        "limit. FIFO and FIRO draw each window once.",
    )
    stream_size: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Windows waiting between producers and trainer at most (a Redis stream, "
        "or a local spool without Redis); producers wait while it is full.",
    )
    steps_per_epoch: int = Field(
        default=50,
        ge=1,
        le=1_000_000,
        description="Optimiser steps per epoch: validation, events and a checkpoint after each; "
        "the run is epochs × this many steps.",
    )
    solver_batch: int = Field(
        default=8, ge=1, le=4096, description="Trajectories each producer steps at once."
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        description="Seed of the producers' initial conditions; default the validation "
        "dataset's seed + 1 (it must differ from that seed).",
    )
    queue: Literal["gpu", "cpu"] = Field(
        default="cpu", description="The queue producer jobs are sent to."
    )
    start_timeout_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="Fail when no window has arrived and no producer has run for this long "
        "(neither a worker nor the trainer itself could start a producer).",
    )


def check_online(dataset: Dataset, data: dict[str, Any]) -> None:
    """Whether the dataset can serve as validation set and producer template, and the
    options make sense together; fills the defaults in so the job row says what ran."""
    online = data["online"]
    prefix = "params.online"
    if data.get("gpus", 1) != 1:
        raise InvalidParams("params.gpus: online training runs in one process (gpus = 1).")
    if data.get("pde_weight", 0) > 0 or data.get("data_weight", 1) != 1:
        raise InvalidParams(
            "params.pde_weight: online training minimises the data loss alone; leave "
            "pde_weight at 0 and data_weight at 1."
        )
    if len(dataset.shape or []) != 4:
        raise InvalidParams(
            f"params.dataset_id: online training streams 2D vorticity flows; dataset "
            f"{dataset.id} holds {dataset.flow!r}."
        )
    params = dataset.params or {}
    missing = [k for k in ("flow", "resolution", "interval", "n_snapshots") if k not in params]
    if missing or params.get("seed") is None:
        raise InvalidParams(
            f"params.dataset_id: dataset {dataset.id} was not made by a generate job (its "
            "generation parameters are unknown), so producers cannot repeat them; generate "
            "the validation set with Eddyscope."
        )
    batch = data.get("batch_size", 16)
    if online["min_fill"] is None:
        online["min_fill"] = min(online["buffer_size"], max(batch, online["buffer_size"] // 2))
    if online["min_fill"] > online["buffer_size"]:
        raise InvalidParams(
            f"{prefix}.min_fill: {online['min_fill']} is more than the buffer holds "
            f"({online['buffer_size']})."
        )
    if online["max_seen"] is not None and online["buffer_policy"] != "reservoir":
        raise InvalidParams(
            f"{prefix}.max_seen: {online['buffer_policy']} draws each window once; max_seen "
            "applies to the reservoir."
        )
    if online["producers"] > online["trajectories"]:
        raise InvalidParams(
            f"{prefix}.producers: {online['producers']} producers for "
            f"{online['trajectories']} trajectories would leave some with nothing to make."
        )
    if online["seed"] is None:
        online["seed"] = int(params["seed"]) + 1
    if online["seed"] == int(params["seed"]):
        raise InvalidParams(
            f"{prefix}.seed: {online['seed']} is the validation dataset's seed; its "
            "trajectories would be trained on. Choose another."
        )
    online["validation_dataset_id"] = dataset.id


def check_online_bounds(dataset: Dataset, data: dict[str, Any], settings: Settings) -> None:
    """Trajectories, producers (job rows and messages) and the values held in the trainer's
    buffer and the transport, against the server's limits."""
    online = data["online"]
    limits.at_most(
        "online.trajectories",
        online["trajectories"],
        settings.max_trajectories,
        "max_trajectories",
        "the trajectory count",
    )
    limits.at_most(
        "online.producers", online["producers"], settings.max_shards, "max_shards", "producers"
    )
    n_snapshots = int((dataset.params or {}).get("n_snapshots", dataset.shape[1]))
    per_window = n_snapshots * int(dataset.shape[-1]) * int(dataset.shape[-2])
    held = (online["buffer_size"] + online["stream_size"]) * per_window
    limits.at_most(
        "online.buffer_size",
        held,
        settings.max_dataset_values,
        "max_dataset_values",
        "the values held in the buffer and the stream (at most a trajectory's length each)",
    )


def producer_template(dataset: Dataset) -> dict[str, Any]:
    """The generation parameters producers repeat, from the validation dataset."""
    params = dataset.params or {}
    return {key: params.get(key) for key in TEMPLATE_KEYS}
