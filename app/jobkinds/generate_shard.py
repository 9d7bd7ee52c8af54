"""``generate-shard``: one shard of a ``generate`` job, a separate task so shards run on as
many workers as there are. Each shard writes its own HDF5 file; when the last one succeeds,
one file presenting all shards as a single dataset (an HDF5 virtual dataset, nothing
copied) is written and the dataset registered. Shards are made only by ``generate``; they
cannot be submitted on their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select, update

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Dataset, Job, utcnow
from app.jobkinds.base import JobKind
from app.services.flows import is_channel_flow, is_hit3d_flow
from physics.flows import get_flow
from physics.formats.store import write_virtual_dataset

SHARD_KIND = "generate-shard"


def flow_for(params: dict[str, Any]):
    """The flow a generate job asked for, with its viscosity variant when one was given."""
    flow = get_flow(params["flow"])
    return flow.variant(params["nu"]) if params.get("nu") is not None else flow


def shard_file(dataset_id: str, index: int) -> str:
    return f"datasets/{dataset_id}/shard-{index:05d}.h5"


def update_parent_progress(db: Database, parent_id: str) -> list[str]:
    """The coordinating job's progress is the mean of its shards'; returns their statuses."""
    with db.session() as session:
        states = session.execute(
            select(Job.status, Job.progress).where(Job.parent_id == parent_id)
        ).all()
        done = sum(status == "succeeded" for status, _ in states)
        session.execute(
            update(Job)
            .where(Job.id == parent_id, Job.status.in_(jobs.ACTIVE))
            .values(
                progress=sum(p for _, p in states) / max(len(states), 1),
                message=f"{done}/{len(states)} shards done",
            )
        )
        session.commit()
    return [status for status, _ in states]


def on_shard_finished(db: Database, artifacts: ArtifactStore, shard_id: str) -> None:
    """Called by the worker after a shard's row is final: roll its state up to the parent."""
    with db.session() as session:
        shard = jobs.get_job(session, shard_id)
        parent_id = shard.parent_id
    if shard.status == "cancelled":
        return
    if shard.status == "failed":
        with db.session() as session:
            changed = session.execute(
                update(Job)
                .where(Job.id == parent_id, Job.status.in_(jobs.ACTIVE))
                .values(
                    status="failed",
                    finished_at=utcnow(),
                    error=f"shard {shard.params['shard']} failed: {shard.error}. "
                    "Retry the job to rerun the failed shards only.",
                )
            ).rowcount
            session.commit()
            if changed:
                jobs.add_event(session, parent_id, "status", {"status": "failed"})
        return
    if all(status == "succeeded" for status in update_parent_progress(db, parent_id)):
        join_shards(db, artifacts, parent_id)


def shard_members(dataset_id: str, shards: list[Job]) -> list[tuple[str, int]]:
    """(file, trajectories) of each shard, the file relative to the joined dataset's: shard
    files sit in datasets/<id>/, next to the joined file datasets/<id>.h5."""
    return [
        (shard_file(dataset_id, job.params["shard"]).removeprefix("datasets/"), job.params["count"])
        for job in shards
    ]


def snapshot_times(p: dict[str, Any]) -> np.ndarray:
    """The times of a generate job's stored snapshots: spin-up first, then one per interval."""
    return p["warmup"] + p["interval"] * np.arange(p["n_snapshots"])


def join_shards(db: Database, artifacts: ArtifactStore, parent_id: str) -> None:
    with db.session() as session:
        # Only one finisher wins this update, so the dataset is registered once.
        claimed = session.execute(
            update(Job)
            .where(Job.id == parent_id, Job.status.in_(jobs.ACTIVE))
            .values(status="finishing", message="joining shards")
        ).rowcount
        session.commit()
        if not claimed:
            return
        parent = jobs.get_job(session, parent_id)
        shards = list(session.scalars(select(Job).where(Job.parent_id == parent_id)))
    p = parent.params
    shards.sort(key=lambda job: job.params["shard"])
    if is_channel_flow(p["flow"]):
        _complete_channel(db, artifacts, parent_id, p, shards)
        return
    if is_hit3d_flow(p["flow"]):
        _complete_hit3d(db, artifacts, parent_id, p, shards)
        return
    flow = flow_for(p)
    n = p["resolution"]
    times = snapshot_times(p)
    dataset_id = p["dataset_id"]
    relative = artifacts.dataset(dataset_id)
    attrs = dataset_attrs(p, flow)
    with artifacts.atomic_write(relative) as tmp:
        write_virtual_dataset(
            tmp,
            shard_members(dataset_id, shards),
            "vorticity",
            times,
            n,
            flow.length,
            attrs,
        )
    shape = [p["n_trajectories"], p["n_snapshots"], n, n]
    name = f"{flow.name} {p['n_trajectories']}×{p['n_snapshots']} @ {n}²"
    _register(db, parent_id, p, shards, dataset_id, relative, shape, attrs, default_name=name)


def _register(db, parent_id, p, shards, dataset_id, relative, shape, attrs, default_name):
    """Record the joined dataset and mark the coordinating job succeeded."""
    peak = [job.result.get("peak_rss_mb") for job in shards]
    with db.session() as session:
        session.add(
            Dataset(
                id=dataset_id,
                name=p.get("name") or default_name,
                flow=attrs["flow"],
                params={**p, **attrs},
                shape=shape,
                path=relative,
                job_id=parent_id,
            )
        )
        session.execute(
            update(Job)
            .where(Job.id == parent_id)
            .values(
                status="succeeded",
                progress=1.0,
                finished_at=utcnow(),
                message=f"{len(shards)} shards done",
                result={
                    "dataset_id": dataset_id,
                    "shards": len(shards),
                    "peak_rss_mb": max((x for x in peak if x), default=None),
                },
            )
        )
        session.commit()
        jobs.add_event(session, parent_id, "status", {"status": "succeeded"})


def _complete_channel(db, artifacts, parent_id: str, p: dict[str, Any], shards) -> None:
    # Imported here: the API process needs the channel modules only when a channel job ends.
    from app.channel_params import channel_attrs, channel_config, channel_coords
    from physics.formats.channel_store import write_virtual_channel_dataset

    config = channel_config(p)
    coords = channel_coords(p, config)
    attrs = channel_attrs(p, config)
    times = snapshot_times(p)
    dataset_id = p["dataset_id"]
    relative = artifacts.dataset(dataset_id)
    with artifacts.atomic_write(relative) as tmp:
        write_virtual_channel_dataset(
            tmp,
            shard_members(dataset_id, shards),
            times,
            coords,
            attrs,
        )
    shape = [
        p["n_trajectories"],
        p["n_snapshots"],
        len(coords["x"]),
        len(coords["y"]),
        len(coords["z"]),
        3,
    ]
    _register(
        db,
        parent_id,
        p,
        shards,
        dataset_id,
        relative,
        shape,
        attrs,
        default_name=f"{attrs['flow']} Re_τ={config.re_tau:g} {attrs['closure']} "
        f"{p['n_trajectories']}×{p['n_snapshots']} @ {shape[2]}×{shape[3]}×{shape[4]}",
    )


def _complete_hit3d(db, artifacts, parent_id: str, p: dict[str, Any], shards) -> None:
    from app.hit3d_params import hit3d_attrs
    from physics.formats.hit3d_store import write_virtual_hit3d_dataset

    attrs = hit3d_attrs(p)
    n = p["resolution"]
    dataset_id = p["dataset_id"]
    relative = artifacts.dataset(dataset_id)
    with artifacts.atomic_write(relative) as tmp:
        write_virtual_hit3d_dataset(
            tmp, shard_members(dataset_id, shards), snapshot_times(p), n, attrs["length"], attrs
        )
    shape = [p["n_trajectories"], p["n_snapshots"], n, n, n, 3]
    filtered = f" ({attrs['filter']} filter from {p['solver_resolution']}³)"
    _register(
        db,
        parent_id,
        p,
        shards,
        dataset_id,
        relative,
        shape,
        attrs,
        default_name=f"{attrs['flow']} {attrs['initial_condition']} ν={attrs['nu']:g} "
        f"{p['n_trajectories']}×{p['n_snapshots']} @ {n}³"
        + (filtered if attrs["filter"] != "none" else ""),
    )


def dataset_attrs(p: dict[str, Any], flow) -> dict[str, Any]:
    return {
        "flow": flow.name,
        "nu": flow.nu,
        "drag": flow.drag,
        "length": flow.length,
        "interval": p["interval"],
        "warmup": p["warmup"],
        "resolution": p["resolution"],
        "solver_resolution": p["solver_resolution"] or p["resolution"],
        "seed": p["seed"],
        "initial_condition": p.get("initial_condition") or flow.initial_conditions[0],
        "initial_condition_description": flow.initial_condition_description(
            p.get("initial_condition")
        ),
        "scheme": p.get("scheme") or "rk4cn",
        "generator": "eddyscope",
    }


KIND = JobKind(
    name=SHARD_KIND,
    description="One shard of a generate job: its trajectories in one file.",
    params=None,
    task="eddyscope.generate_shard",
    runner="workers.runners.generate:run_generate_shard",
    after_finish=on_shard_finished,
)
