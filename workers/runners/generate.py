"""generate: trajectories of a flow from its reference solver into one HDF5 dataset."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from app.db.tables import Dataset, new_id
from physics.flows import get_flow
from physics.io import DatasetWriter
from physics.resample import spectral_truncate
from workers.context import JobContext

# Progress inside a long batch, without an event row per snapshot.
REPORT_EVERY_S = 1.0


def run_generate(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    flow = get_flow(p["flow"])
    n_out = p["resolution"]
    n_solver = p["solver_resolution"] or n_out
    n_traj, n_snap, interval = p["n_trajectories"], p["n_snapshots"], p["interval"]
    solver = flow.make_solver(n_solver, device=ctx.device, dtype=torch.float32)
    times = p["warmup"] + interval * np.arange(n_snap)

    dataset_id = new_id()
    relative = ctx.artifacts.dataset(dataset_id)
    attrs = {
        "flow": flow.name,
        "nu": flow.nu,
        "drag": flow.drag,
        "length": flow.length,
        "interval": interval,
        "warmup": p["warmup"],
        "resolution": n_out,
        "solver_resolution": n_solver,
        "seed": p["seed"],
        "initial_condition": "gaussian random field, alpha=2.5, tau=7",
        "generator": "eddyscope",
    }
    total_steps = n_traj * (n_snap - 1)
    done = 0
    last_report = time.monotonic()
    with ctx.artifacts.atomic_write(relative) as tmp:
        writer = DatasetWriter(tmp, "vorticity", n_traj, times, n_out, flow.length, attrs)
        try:
            for start in range(0, n_traj, p["batch_size"]):
                count = min(p["batch_size"], n_traj - start)
                # One seed per batch start: the same seed and batch size give the same data.
                w = flow.random_initial_condition(
                    n_solver, batch=count, seed=p["seed"] * 1_000_003 + start, device=ctx.device
                )
                if p["warmup"] > 0:
                    w = solver.advance(w, p["warmup"])
                block = np.empty((count, n_snap, n_out, n_out), dtype=np.float32)
                block[:, 0] = spectral_truncate(w, n_out)[:, 0].cpu().numpy()
                for t in range(1, n_snap):
                    ctx.check_cancelled()
                    w = solver.advance(w, interval)
                    if not torch.isfinite(w).all():
                        raise FloatingPointError(
                            "the solver diverged; "
                            "try a finer solver_resolution or a shorter interval"
                        )
                    block[:, t] = spectral_truncate(w, n_out)[:, 0].cpu().numpy()
                    done += count
                    if time.monotonic() - last_report > REPORT_EVERY_S:
                        last_report = time.monotonic()
                        ctx.report("progress", {"snapshots_done": done}, done / total_steps)
                writer.write(start, block)
                ctx.report(
                    "progress",
                    {"trajectories_done": start + count, "n_trajectories": n_traj},
                    progress=done / max(total_steps, 1),
                    message=f"{start + count}/{n_traj} trajectories",
                )
        finally:
            writer.close()

    with ctx.db.session() as session:
        session.add(
            Dataset(
                id=dataset_id,
                name=p.get("name") or f"{flow.name} {n_traj}×{n_snap} @ {n_out}²",
                flow=flow.name,
                params={**p, **attrs},
                shape=[n_traj, n_snap, n_out, n_out],
                path=relative,
                job_id=ctx.job_id,
            )
        )
        session.commit()
    return {"dataset_id": dataset_id}
