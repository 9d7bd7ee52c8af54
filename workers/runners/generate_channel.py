"""generate-shard for a channel flow (``physics.channel.flow.ChannelFlow``): trajectories of
turbulent channel flow from the channel solver (optionally an LES closure) into one shard
file, with live channel statistics.

Each trajectory starts from its own seed (a mean profile plus divergence-free perturbations),
is spun up for ``warmup`` time units (discarded), then stored every ``interval``: the
cell-centred velocity, optionally filtered onto a coarser training grid
(``app.channel_params.channel_filter``: a spectral cut or a box filter in x–z, a top-hat
over the stored cells in y; the filter is recorded in the attributes), and its mean
profile. While it runs, the shard reports ``channel_stats`` events (the running wall-unit
statistics of the solver's own, unfiltered velocity) that the Data page plots live.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from app.channel_params import (
    channel_attrs,
    channel_config,
    channel_coords,
    channel_filter,
    channel_flow,
    training_grid,
)
from app.jobkinds.generate_shard import shard_file, snapshot_times, update_parent_progress
from physics.channel.solver import ChannelSolver
from physics.channel.stats import ChannelStatistics
from physics.formats.channel_store import ChannelDatasetWriter
from workers.context import JobContext

REPORT_EVERY_S = 1.0


def _advance(
    solver: ChannelSolver, u: torch.Tensor, duration: float, ctx: JobContext, chunk: float
):
    """``solver.advance`` in pieces of at most ``chunk``, so a cancel is seen in between."""
    pieces = max(1, math.ceil(duration / chunk - 1e-9))
    for _ in range(pieces):
        ctx.check_cancelled()
        u = solver.advance(u, duration / pieces)
    return u


def run_channel_shard(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    relative = shard_file(p["dataset_id"], p["shard"])
    if ctx.artifacts.resolve(relative).is_file():
        return {"shard": p["shard"], "path": relative, "reused": True}

    flow = channel_flow(p)
    config = channel_config(p)
    solver = ChannelSolver(config)
    grid = config.grid()
    ox, oy, oz = training_grid(p, config)
    to_stored = channel_filter(p, config)
    first, count, n_snap, interval = p["start"], p["count"], p["n_snapshots"], p["interval"]
    times = snapshot_times(p)
    attrs = {**channel_attrs(p, config), "shard": p["shard"], "first_trajectory": first}
    statistics = ChannelStatistics(grid.y_centres.numpy(), config.nu, config.lx, config.lz)
    total = count * n_snap
    done = 0
    last_report = 0.0

    def report_progress(t: float, final: bool = False) -> None:
        nonlocal last_report
        if not final and time.monotonic() - last_report < REPORT_EVERY_S:
            return
        last_report = time.monotonic()
        ctx.report("progress", {"snapshots_done": done, "shard": p["shard"]}, done / total)
        try:
            stats = statistics.result().to_dict()
        except ValueError:  # no positive mean wall shear yet (e.g. a flow at rest)
            stats = None
        if stats is not None:
            ctx.report("channel_stats", {"t": t, "stats": stats, "shard": p["shard"]})
        if ctx.parent_id:
            update_parent_progress(ctx.db, ctx.parent_id)

    with ctx.artifacts.atomic_write(relative) as tmp:
        writer = ChannelDatasetWriter(tmp, count, times, channel_coords(p, config), attrs)
        try:
            for offset in range(0, count, p["batch_size"]):
                size = min(p["batch_size"], count - offset)
                # One seed per trajectory, so the data do not depend on the batching.
                u = torch.cat(
                    [
                        solver.initial_condition(
                            1,
                            seed=p["seed"] * 1_000_003 + first + offset + i,
                            profile=p.get("initial_condition") or flow.initial_conditions[0],
                            device=ctx.device,
                        )
                        for i in range(size)
                    ]
                )
                if p["warmup"] > 0:
                    u = _advance(solver, u, p["warmup"], ctx, max(interval, 1.0))
                block = np.empty((size, n_snap, ox, oy, oz, 3), dtype=np.float32)
                for t in range(n_snap):
                    if t > 0:
                        u = _advance(solver, u, interval, ctx, interval)
                    centred = grid.to_centres(u)
                    statistics.update(centred)
                    stored = to_stored(centred)
                    block[:, t] = stored.permute(0, 2, 3, 4, 1).cpu().numpy()
                    done += size
                    report_progress(float(times[t]))
                u_mean = block[..., 0].mean(axis=(1, 2, 4), dtype=np.float64)
                writer.write(offset, block, u_mean)
        finally:
            writer.close()
    report_progress(float(times[-1]), final=True)
    return {"shard": p["shard"], "path": relative}
