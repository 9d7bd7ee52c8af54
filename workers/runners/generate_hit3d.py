"""generate-shard for a periodic-box flow (``physics.hit3d.flow.HITFlow``, hit3d): trajectories
of 3D turbulence from the pseudo-spectral solver into one shard file.

Each trajectory starts from the initial field its family gives for its own seed (the job's
seed and the trajectory's index, as for every flow, so the data do not depend on how the
dataset was cut into shards or batches), is spun up for ``warmup`` time units (discarded),
then stored every ``interval``: the velocity, filtered onto the stored grid when it is
coarser than the solver's (``app.hit3d_params.hit3d_filter``: spectral cut or box filter;
recorded in the attributes), components last. With each snapshot go the terms of the
solver's energy budget of its own field (energy, dissipation, subgrid dissipation, forcing
power). The first stored frame, at warmup 0, is the initial field itself (filtered).
While it runs, the shard reports ``hit3d_stats`` events (``app.hit3d_summary.LiveSummaries``:
the statistics, spectrum and vorticity PDFs of the newest stored snapshot, and its
trajectory's E(t), ε(t) so far) that the Data page's HIT panels draw live.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from app.hit3d_params import (
    hit3d_attrs,
    hit3d_filter,
    hit3d_flow,
    hit3d_solver,
    initial_fields,
)
from app.hit3d_summary import LiveSummaries
from app.jobkinds.generate_shard import shard_file, snapshot_times, update_parent_progress
from physics.formats.hit3d_store import STATISTICS, HITDatasetWriter
from workers.context import JobContext
from workers.runners.generate import trajectory_seed

REPORT_EVERY_S = 1.0


def _advance(solver, u: torch.Tensor, duration: float, ctx: JobContext, chunk: float):
    """``solver.advance`` in pieces of at most ``chunk``, so a cancel is seen in between; a
    field that is no longer finite stops the job with a sentence."""
    pieces = max(1, math.ceil(duration / chunk - 1e-9))
    for _ in range(pieces):
        ctx.check_cancelled()
        u = solver.advance(u, duration / pieces)
        if not torch.isfinite(u).all():
            raise FloatingPointError(
                "the solver diverged; try a larger viscosity, a closure or a finer "
                "solver_resolution"
            )
    return u


def run_hit3d_shard(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    relative = shard_file(p["dataset_id"], p["shard"])
    if ctx.artifacts.resolve(relative).is_file():
        return {"shard": p["shard"], "path": relative, "reused": True}

    flow = hit3d_flow(p)
    solver = hit3d_solver(flow, p)
    to_stored = hit3d_filter(flow, p)
    n = p["resolution"]
    first, count, n_snap, interval = p["start"], p["count"], p["n_snapshots"], p["interval"]
    times = snapshot_times(p)
    attrs = {**hit3d_attrs(p), "shard": p["shard"], "first_trajectory": first}
    total = count * n_snap
    done = 0
    last_report = 0.0
    live = LiveSummaries(flow.nu, flow.length, p["shard"])

    def report_progress(final: bool = False) -> None:
        nonlocal last_report
        if not final and time.monotonic() - last_report < REPORT_EVERY_S:
            return
        last_report = time.monotonic()
        ctx.report("progress", {"snapshots_done": done, "shard": p["shard"]}, done / total)
        if ctx.parent_id:
            update_parent_progress(ctx.db, ctx.parent_id)

    with ctx.artifacts.atomic_write(relative) as tmp:
        writer = HITDatasetWriter(tmp, count, times, n, flow.length, attrs)
        try:
            for offset in range(0, count, p["batch_size"]):
                size = min(p["batch_size"], count - offset)
                seeds = [trajectory_seed(p["seed"], first + offset + i) for i in range(size)]
                u = initial_fields(flow, p, seeds, ctx.device)
                if p["warmup"] > 0:
                    u = _advance(solver, u, p["warmup"], ctx, max(interval, 1.0))
                block = np.empty((size, n_snap, n, n, n, 3), dtype=np.float32)
                series = {name: np.empty((size, n_snap)) for name in STATISTICS}
                for t in range(n_snap):
                    if t > 0:
                        u = _advance(solver, u, interval, ctx, interval)
                    block[:, t] = to_stored(u).permute(0, 2, 3, 4, 1).cpu().numpy()
                    budget = solver.budget(u)
                    for name in STATISTICS:
                        series[name][:, t] = budget[name].double().cpu().numpy()
                    done += size
                    report_progress()
                    so_far = {"t": times[: t + 1]}
                    so_far |= {k: series[k][0, : t + 1] for k in ("energy", "dissipation")}
                    last = t == n_snap - 1 and offset + size == count
                    event = live.offer(block[0, t], times[t], first + offset, t, so_far, last)
                    if event is not None:
                        ctx.report("hit3d_stats", event)
                writer.write(offset, block, series)
        finally:
            writer.close()
    report_progress(final=True)
    return {"shard": p["shard"], "path": relative}
