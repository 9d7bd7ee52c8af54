"""produce: one producer of an online train job (``app.jobkinds.produce``). It steps the
flow's reference solver on a batch of fresh initial conditions and, from the moment a
trajectory has ``window`` snapshots, streams every new window of the last ``window``
snapshots to its trainer, waiting while the transport is full. Nothing is written to disk.

Trajectory ``i`` is drawn with the generate jobs' seed rule (``trajectory_seed(online seed,
i)``) and stepped as a generate job steps it (same solver, grid, spin-up and interval), so
producers make what an offline dataset of the same parameters would hold, never its
trajectories. A rerun of this job (its worker died and the message came back) starts after
the last solver batch the earlier attempt reported as pushed; the trainer drops any window
that arrives twice.

A producer whose trainer is waiting in the queue (it was killed and put back) gives its
worker slot back (``app.jobs.give_back``: queued again, to be resumed later): at once when
it starts, or after ``YIELD_AFTER_S`` blocked on a full stream. On a worker with one slot
the trainer could otherwise never run again, its producer waiting for it in that slot.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import torch
from sqlalchemy import select

from app import jobs
from app.db.tables import JobEvent
from app.jobkinds.generate_shard import flow_for
from physics.resample import spectral_truncate
from workers.context import JobContext
from workers.online_codec import encode_window
from workers.online_stream import open_stream, push_all
from workers.runners.generate import initial_fields

REPORT_EVERY_S = 1.0
# How often the producer asks whether its trainer has ended (a database read).
TRAINER_POLL_S = 1.0
# Blocked on a full stream this long while the trainer waits in the queue: give the slot back.
YIELD_AFTER_S = 5.0


def pushed_through(ctx: JobContext) -> int | None:
    """The first trajectory an earlier attempt of this job had not pushed completely."""
    with ctx.db.session() as session:
        payloads = session.scalars(
            select(JobEvent.payload)
            .where(JobEvent.job_id == ctx.job_id, JobEvent.type == "progress")
            .order_by(JobEvent.seq.desc())
        ).all()
    marks = [p["pushed_through"] for p in payloads if p.get("pushed_through") is not None]
    return max(marks) if marks else None


class _TrainerWatch:
    """Whether the trainer (the parent job) has ended, or waits in the queue for a worker,
    asked at most every second."""

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.asked = 0.0
        self.ended = False
        self.queued_since: float | None = None

    def _ask(self) -> None:
        now = time.monotonic()
        if self.ended or now - self.asked <= TRAINER_POLL_S:
            return
        self.asked = now
        status = jobs.status_of(self.ctx.db, self.ctx.parent_id)
        self.ended = status in jobs.FINAL
        if status != "queued":
            self.queued_since = None
        elif self.queued_since is None:
            self.queued_since = now

    def __call__(self) -> bool:
        self._ask()
        return self.ended

    def waiting(self, for_s: float = 0.0) -> bool:
        """The trainer has been queued (not running) for ``for_s`` seconds at least."""
        self._ask()
        return self.queued_since is not None and time.monotonic() - self.queued_since >= for_s


def run_produce(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    first = max(p["start"], pushed_through(ctx) or p["start"])
    trainer_ended = _TrainerWatch(ctx)
    if trainer_ended.waiting():
        return _give_back(ctx, p, first, "its trainer is waiting for a worker")
    flow = flow_for(p)
    n_out = p["resolution"]
    n_solver = p.get("solver_resolution") or n_out
    window, n_snap, interval = p["window"], p["n_snapshots"], p["interval"]
    solver = flow.make_solver(
        n_solver, device=ctx.device, dtype=torch.float32, scheme=p.get("scheme") or "rk4cn"
    )
    stream = open_stream(p["transport"], ctx.parent_id, ctx.settings, p["stream_size"])
    end = p["start"] + p["count"]
    seeds = {**p, "seed": p["online_seed"]}  # initial_fields reads the seed under "seed"

    def stop() -> bool:
        return ctx.should_stop() or trainer_ended() or trainer_ended.waiting(YIELD_AFTER_S)

    produced, blocked, started = 0, 0.0, time.perf_counter()
    last_report = time.monotonic()
    outcome = "done"

    def report(done_through: int | None) -> None:
        elapsed = time.perf_counter() - started
        payload = {
            "produced": produced,
            "produced_per_s": produced / elapsed if elapsed > 0 else 0.0,
            "blocked_s": round(blocked, 3),
            "start": p["start"],
            "count": p["count"],
        }
        if done_through is not None:
            payload["pushed_through"] = done_through
        progress = ((done_through or first) - p["start"]) / max(p["count"], 1)
        ctx.report("progress", payload, progress=progress)

    try:
        for batch_start in range(first, end, p["solver_batch"]):
            size = min(p["solver_batch"], end - batch_start)
            w = initial_fields(flow, seeds, n_solver, batch_start, size, ctx.device)
            if p.get("warmup"):
                w = solver.advance(w, p["warmup"])
            frames: deque[torch.Tensor] = deque(maxlen=window)
            frames.append(spectral_truncate(w, n_out).float().cpu())
            for t in range(1, n_snap):
                ctx.check_cancelled()
                if trainer_ended():
                    outcome = "trainer ended"
                    break
                w = solver.advance(w, interval)
                if not torch.isfinite(w).all():
                    raise FloatingPointError(
                        "the solver diverged; try a finer solver_resolution or a shorter interval"
                    )
                frames.append(spectral_truncate(w, n_out).float().cpu())
                if len(frames) < window:
                    continue
                stacked = torch.stack(list(frames), dim=1)  # (size, window, C, n, n)
                messages = [
                    encode_window(stacked[b], batch_start + b, t - window + 1) for b in range(size)
                ]
                pushed = push_all(stream, messages, stop)
                produced += pushed.pushed
                blocked += pushed.waited_s
                if pushed.closed:
                    outcome = "trainer ended"
                    break
                if pushed.pushed < len(messages):
                    # Stopped while waiting: cancelled, the trainer ended, or it waits for a
                    # worker slot (this one, maybe).
                    ctx.check_cancelled()
                    if not trainer_ended() and trainer_ended.waiting(YIELD_AFTER_S):
                        outcome = "given back"
                    else:
                        outcome = "trainer ended"
                    break
                if time.monotonic() - last_report > REPORT_EVERY_S:
                    last_report = time.monotonic()
                    report(None)
            if outcome != "done":
                break
            report(batch_start + size)
    finally:
        stream.release()
    if outcome == "given back":
        return _give_back(ctx, p, first, "its trainer is waiting for a worker", produced)
    elapsed = time.perf_counter() - started
    return {
        "produced": produced,
        "produced_per_s": produced / elapsed if elapsed > 0 else 0.0,
        "blocked_s": round(blocked, 3),
        "start": p["start"],
        "count": p["count"],
        "resumed_at": first if first != p["start"] else None,
        "outcome": outcome,
    }


def _give_back(
    ctx: JobContext, p: dict[str, Any], first: int, why: str, produced: int = 0
) -> dict[str, Any]:
    """Queue this job again and stop; a later attempt resumes after the last solver batch
    reported as pushed. The row is no longer this attempt's, so the task's finish records
    nothing."""
    jobs.give_back(ctx.db, ctx.job_id, ctx.attempt or 0, f"Given back: {why}.")
    return {
        "produced": produced,
        "start": p["start"],
        "count": p["count"],
        "resumed_at": first if first != p["start"] else None,
        "outcome": "given back",
    }
