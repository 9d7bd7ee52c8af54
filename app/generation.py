"""Dataset generation as shards: a ``generate`` job coordinates ``generate-shard`` jobs that
run as separate tasks on as many workers as there are. Each shard writes its own HDF5 file;
when the last one succeeds, one file presenting all shards as a single dataset (an HDF5
virtual dataset, nothing copied) is written and the dataset registered. A failed shard is
rerun alone (``retry``); finished shards are never redone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select, update

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Dataset, Job, new_id, utcnow
from physics.flows import get_flow
from physics.formats.store import write_virtual_dataset

SHARD_KIND = "generate-shard"


def flow_for(params: dict[str, Any]):
    """The flow a generate job asked for, with its viscosity variant when one was given."""
    flow = get_flow(params["flow"])
    return flow.variant(params["nu"]) if params.get("nu") is not None else flow


def plan_shards(n_trajectories: int, shard_size: int) -> list[tuple[int, int]]:
    """(first trajectory, count) of each shard, in order."""
    return [
        (start, min(shard_size, n_trajectories - start))
        for start in range(0, n_trajectories, shard_size)
    ]


def shard_file(dataset_id: str, index: int) -> str:
    return f"datasets/{dataset_id}/shard-{index:05d}.h5"


def submit_generate(
    db: Database, dispatcher: jobs.Dispatcher, params: dict[str, Any], queue: str
) -> Job:
    """Commit the coordinating job and all its shard jobs, then send the shards."""
    shards = plan_shards(params["n_trajectories"], params["shard_size"])
    dataset_id = new_id()
    with db.session() as session:
        parent = Job(
            kind="generate",
            params={**params, "dataset_id": dataset_id, "shards": len(shards)},
            queue=queue,
            status="queued",
            dispatched_at=utcnow(),
        )
        session.add(parent)
        session.flush()
        children = [
            Job(
                kind=SHARD_KIND,
                parent_id=parent.id,
                queue=queue,
                status="queued",
                params={
                    **params,
                    "dataset_id": dataset_id,
                    "shard": index,
                    "start": start,
                    "count": count,
                },
            )
            for index, (start, count) in enumerate(shards)
        ]
        session.add_all(children)
        session.commit()
        jobs.add_event(session, parent.id, "status", {"status": "queued", "shards": len(shards)})
        child_ids = [child.id for child in children]
    for child_id in child_ids:
        jobs.dispatch(db, dispatcher, child_id)
    return parent


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
        _complete(db, artifacts, parent_id)


def _complete(db: Database, artifacts: ArtifactStore, parent_id: str) -> None:
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
    if p["flow"] == "channel3d":
        _complete_channel(db, artifacts, parent_id, p, shards)
        return
    flow = flow_for(p)
    n = p["resolution"]
    times = p["warmup"] + p["interval"] * np.arange(p["n_snapshots"])
    dataset_id = p["dataset_id"]
    relative = artifacts.dataset(dataset_id)
    attrs = dataset_attrs(p, flow)
    with artifacts.atomic_write(relative) as tmp:
        # Shard files sit in datasets/<id>/, next to the joined file datasets/<id>.h5.
        write_virtual_dataset(
            tmp,
            [
                (
                    shard_file(dataset_id, job.params["shard"]).removeprefix("datasets/"),
                    job.params["count"],
                )
                for job in shards
            ],
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
    times = p["warmup"] + p["interval"] * np.arange(p["n_snapshots"])
    dataset_id = p["dataset_id"]
    relative = artifacts.dataset(dataset_id)
    with artifacts.atomic_write(relative) as tmp:
        write_virtual_channel_dataset(
            tmp,
            [
                (
                    shard_file(dataset_id, job.params["shard"]).removeprefix("datasets/"),
                    job.params["count"],
                )
                for job in shards
            ],
            times,
            coords,
            attrs,
        )
    shape = [
        p["n_trajectories"],
        p["n_snapshots"],
        len(coords["x"]),
        config.ny,
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
        default_name=f"channel3d Re_τ={config.re_tau:g} {attrs['closure']} "
        f"{p['n_trajectories']}×{p['n_snapshots']} @ {shape[2]}×{shape[3]}×{shape[4]}",
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


def retry(
    db: Database, dispatcher: jobs.Dispatcher, artifacts: ArtifactStore, parent_id: str
) -> Job:
    """Re-queue the failed or cancelled shards of a generate job; finished ones stay."""
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.parent_id == parent_id, Job.status.in_(("failed", "cancelled")))
            .values(
                status="queued",
                error=None,
                progress=0.0,
                dispatched_at=None,
                started_at=None,
                finished_at=None,
            )
        )
        session.execute(
            update(Job)
            .where(Job.id == parent_id)
            .values(status="running", error=None, finished_at=None, message="retrying")
        )
        session.commit()
        jobs.add_event(session, parent_id, "status", {"status": "running", "retry": True})
        queued = session.scalars(
            select(Job.id).where(Job.parent_id == parent_id, Job.status == "queued")
        ).all()
    for shard_id in queued:
        jobs.dispatch(db, dispatcher, shard_id)
    if not queued:  # every shard had finished: only the joining step was left undone
        _complete(db, artifacts, parent_id)
    with db.session() as session:
        return jobs.get_job(session, parent_id)
