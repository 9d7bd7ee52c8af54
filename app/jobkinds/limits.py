"""Bounded work: how much one job may ask for, and how many jobs may be active at once.

Every limit is a setting (``app.settings``): ``max_trajectories``, ``max_shards`` and
``max_dataset_values`` for generate jobs, ``max_steps_points`` for rollouts and comparisons,
``max_gpus`` for train and finetune, ``max_active_jobs`` for everything. The kinds' checks
call these functions at submit; each refusal is a ``LimitExceeded`` (an ``InvalidParams``,
so HTTP 422 and the UI's error alert) whose sentence names the parameter, what was asked
and the limit with the setting that sets it.

What only a worker knows (how many GPUs it has) is checked again there
(``worker_ranks``, called by ``workers.runners.train``).
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.tables import Job
from app.jobkinds.base import InvalidParams

if TYPE_CHECKING:
    from app.settings import Settings

# The statuses of a job that holds (or will hold) a worker: what ``max_active_jobs`` counts.
ACTIVE = ("queued", "running", "finishing")


class LimitExceeded(InvalidParams):
    """A request over one of the server's limits; the text names the parameter, the amount
    asked for and the limit."""


def settings_or_default(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from app.settings import get_settings

    return get_settings()


def at_most(key: str, asked: int, limit: int, setting: str, what: str) -> None:
    """LimitExceeded ``params.<key>: <what> is <asked>; the limit is <limit> (<setting>).``
    when ``asked`` is over ``limit``."""
    if asked > limit:
        raise LimitExceeded(
            f"params.{key}: {what} is {asked:,}; the limit is {limit:,} ({setting})."
        )


# --- generate ----------------------------------------------------------------------------


def check_generate(data: dict, stored_values_per_snapshot: int, settings: Settings) -> None:
    """Trajectories, shards (job rows and messages) and stored values of a generate job.
    ``stored_values_per_snapshot``: grid points × components of one stored snapshot."""
    n = data["n_trajectories"]
    at_most(
        "n_trajectories", n, settings.max_trajectories, "max_trajectories", "the trajectory count"
    )
    shards = math.ceil(n / data["shard_size"])
    if shards > settings.max_shards:
        smallest = math.ceil(n / settings.max_shards)
        raise LimitExceeded(
            f"params.shard_size: {n:,} trajectories in shards of {data['shard_size']:,} make "
            f"{shards:,} shards; the limit is {settings.max_shards:,} shards per job "
            f"(max_shards), so use a shard_size of at least {smallest:,}."
        )
    values = n * data["n_snapshots"] * stored_values_per_snapshot
    if values > settings.max_dataset_values:
        raise LimitExceeded(
            f"params.n_trajectories: {n:,} trajectories × {data['n_snapshots']:,} snapshots × "
            f"{stored_values_per_snapshot:,} values per snapshot make {values:,} values; the "
            f"limit is {settings.max_dataset_values:,} per dataset (max_dataset_values)."
        )


# --- rollouts and comparisons ----------------------------------------------------------


def check_steps_points(steps: int, grid: tuple[int, ...], settings: Settings) -> None:
    """Steps × grid points of a rollout or a comparison (its frames, per source)."""
    points = math.prod(grid)
    total = steps * points
    if total > settings.max_steps_points:
        shown = "×".join(str(n) for n in grid)
        most = max(settings.max_steps_points // points, 0)
        hint = (
            f"at most {most:,} steps on this grid"
            if most >= 1
            else "a coarser grid (no step fits this one)"
        )
        raise LimitExceeded(
            f"params.steps: {steps:,} steps × {points:,} grid points ({shown}) make "
            f"{total:,}; the limit is {settings.max_steps_points:,} (max_steps_points), so "
            f"{hint}."
        )


# --- data-parallel training ------------------------------------------------------------


@lru_cache
def machine_ranks(cuda: bool | None = None) -> int:
    """How many data-parallel processes this machine can run: with CUDA (``cuda`` None:
    whether it has any) one per GPU, else one per CPU core this process may use (gloo
    ranks); at least 1."""
    import torch

    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda:
        return max(1, torch.cuda.device_count())
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def describe_machine(cuda: bool) -> str:
    n = machine_ranks(cuda)
    if cuda:
        return f"{n} GPU{'s' if n != 1 else ''}"
    return f"no GPU and {n} CPU core{'s' if n != 1 else ''}"


def check_gpus(gpus: int, settings: Settings) -> None:
    limit = settings.max_gpus or machine_ranks()
    if gpus > limit:
        source = (
            "max_gpus"
            if settings.max_gpus
            else "max_gpus; by default the GPUs of this machine, else its CPU cores"
        )
        raise LimitExceeded(
            f"params.gpus: {gpus} data-parallel processes asked for; the limit is {limit} "
            f"({source})."
        )


def worker_ranks_error(gpus: int, cuda: bool) -> str | None:
    """The sentence a worker fails a train job with when it cannot run ``gpus`` processes
    (one per GPU, or one per CPU core without CUDA); None when it can."""
    have = machine_ranks(cuda)
    if gpus <= have:
        return None
    return (
        f"params.gpus: the job asks for {gpus} data-parallel processes; this worker has "
        f"{describe_machine(cuda)}, so at most {have}"
    )


# --- active jobs ------------------------------------------------------------------------


def active_jobs(session: Session, owner: str | None = None) -> int:
    """Queued and running top-level jobs (a generate job counts once, not per shard): of
    ``owner`` once jobs carry one; ``owner=None`` counts the whole server's."""
    query = (
        select(func.count()).select_from(Job).where(Job.parent_id.is_(None), Job.status.in_(ACTIVE))
    )
    owner_column = getattr(Job, "owner_id", None)
    if owner is not None and owner_column is not None:
        query = query.where(owner_column == owner)
    return session.scalar(query) or 0


def check_active_jobs(session: Session, settings: Settings, owner: str | None = None) -> None:
    limit = settings.max_active_jobs
    active = active_jobs(session, owner)
    if active >= limit:
        whose = "you have" if owner is not None else "the server has"
        raise LimitExceeded(
            f"{whose.capitalize()} {active:,} queued or running jobs; the limit is {limit:,} "
            "at once (max_active_jobs). Wait for one to finish, or cancel one."
        )
