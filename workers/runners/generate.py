"""generate-shard: one shard of a dataset (trajectories ``start … start+count−1``) from the
flow's reference solver into its own HDF5 file.

Every trajectory has its own seed (derived from the job's seed and the trajectory's index),
so the data do not depend on how the dataset was cut into shards or batches. A shard whose
file already exists was finished before and is not computed again.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
import torch

from app.jobkinds.generate_shard import (
    dataset_attrs,
    flow_for,
    shard_file,
    snapshot_times,
    update_parent_progress,
)
from app.services.flows import is_channel_flow, is_hit3d_flow
from physics.formats.store import DatasetWriter
from physics.resample import spectral_truncate
from workers.context import JobContext

# Progress inside a long batch, without an event row per snapshot.
REPORT_EVERY_S = 1.0


def trajectory_seed(seed: int, index: int) -> int:
    return seed * 1_000_003 + index


def initial_fields(flow, p: dict[str, Any], n: int, first: int, count: int, device) -> torch.Tensor:
    family = p.get("initial_condition")

    def one(index: int) -> torch.Tensor:
        seed = trajectory_seed(p["seed"], index)
        if family is None:
            return flow.random_initial_condition(n, batch=1, seed=seed, device=device)
        return flow.make_initial_condition(family, n, batch=1, seed=seed, device=device)

    return torch.cat([one(first + i) for i in range(count)])


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the peak resident memory of this worker process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_generate_shard(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    if is_channel_flow(p["flow"]):
        from workers.runners.generate_channel import run_channel_shard

        return {**run_channel_shard(ctx), "peak_rss_mb": round(peak_rss_mb(), 1)}
    if is_hit3d_flow(p["flow"]):
        from workers.runners.generate_hit3d import run_hit3d_shard

        return {**run_hit3d_shard(ctx), "peak_rss_mb": round(peak_rss_mb(), 1)}
    relative = shard_file(p["dataset_id"], p["shard"])
    if ctx.artifacts.resolve(relative).is_file():
        return {"shard": p["shard"], "path": relative, "reused": True, "peak_rss_mb": peak_rss_mb()}

    flow = flow_for(p)
    n_out = p["resolution"]
    n_solver = p["solver_resolution"] or n_out
    first, count, n_snap, interval = p["start"], p["count"], p["n_snapshots"], p["interval"]
    solver = flow.make_solver(
        n_solver, device=ctx.device, dtype=torch.float32, scheme=p.get("scheme") or "rk4cn"
    )
    times = snapshot_times(p)
    attrs = {**dataset_attrs(p, flow), "shard": p["shard"], "first_trajectory": first}

    total_steps = count * (n_snap - 1)
    done = 0
    last_report = time.monotonic()
    with ctx.artifacts.atomic_write(relative) as tmp:
        writer = DatasetWriter(tmp, "vorticity", count, times, n_out, flow.length, attrs)
        try:
            for offset in range(0, count, p["batch_size"]):
                size = min(p["batch_size"], count - offset)
                w = initial_fields(flow, p, n_solver, first + offset, size, ctx.device)
                if p["warmup"] > 0:
                    w = solver.advance(w, p["warmup"])
                block = np.empty((size, n_snap, n_out, n_out), dtype=np.float32)
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
                    done += size
                    if time.monotonic() - last_report > REPORT_EVERY_S:
                        last_report = time.monotonic()
                        _report(ctx, {"snapshots_done": done}, done / total_steps)
                writer.write(offset, block)
                _report(
                    ctx,
                    {"trajectories_done": offset + size, "count": count, "shard": p["shard"]},
                    done / max(total_steps, 1),
                )
        finally:
            writer.close()
    return {"shard": p["shard"], "path": relative, "peak_rss_mb": round(peak_rss_mb(), 1)}


def _report(ctx: JobContext, payload: dict[str, Any], progress: float) -> None:
    ctx.report("progress", payload, progress=progress)
    if ctx.parent_id:
        update_parent_progress(ctx.db, ctx.parent_id)
