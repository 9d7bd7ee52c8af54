"""The Rollout row of a rollout or compare job, made so that a job run again (its worker was
lost, the message redelivered) replaces its earlier attempt instead of adding to it.

A rollout's per-step metrics are the job's ``metrics`` events and its frames one HDF5 file.
A second attempt starts from step 0 again, so before it writes anything it removes what the
earlier attempt left: the events that belong to the frames (``REPLACED_EVENTS``), the frame
file and any exports made from it, and every Rollout row of the job but one. It keeps the
first row's id, so a page or a link that follows the rollout goes on showing it; after the
re-run the job has one rollout with exactly one metrics row per step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from app.db.tables import JobEvent, Rollout, new_id, utcnow
from workers.context import JobContext

# The events a rollout or comparison writes alongside its frames (one attempt's worth).
REPLACED_EVENTS = ("metrics", "channel_stats", "hit3d_stats", "compare_setup", "summary")


def begin_rollout(ctx: JobContext, **columns: Any) -> tuple[str, str]:
    """Create (or, on a re-run, reset) the job's Rollout row with ``columns`` and return its
    id and the artifact path its frames go to (empty: an earlier attempt's file is gone)."""
    with ctx.db.session() as session:
        earlier = list(
            session.scalars(
                select(Rollout).where(Rollout.job_id == ctx.job_id).order_by(Rollout.created_at)
            )
        )
        for row in earlier:
            _remove_files(ctx, row)
        removed = session.execute(
            delete(JobEvent).where(
                JobEvent.job_id == ctx.job_id, JobEvent.type.in_(REPLACED_EVENTS)
            )
        ).rowcount
        if earlier:
            row, *others = earlier
            for other in others:
                session.delete(other)
            relative = ctx.artifacts.rollout(row.id)
            for name, value in columns.items():
                setattr(row, name, value)
            row.path = relative
            row.created_at = utcnow()
        else:
            row = Rollout(id=new_id(), job_id=ctx.job_id, **columns)
            relative = ctx.artifacts.rollout(row.id)
            row.path = relative
            session.add(row)
        session.commit()
        rollout_id = row.id
    if earlier:
        ctx.report(
            "rollout_replaced",
            {
                "rollout_id": rollout_id,
                "attempt": ctx.attempt,
                "events_removed": removed,
                "rows_removed": len(earlier) - 1,
            },
            progress=0.0,
        )
    return rollout_id, relative


def _remove_files(ctx: JobContext, row: Rollout) -> None:
    ctx.artifacts.resolve(row.path).unlink(missing_ok=True)
    exports = ctx.artifacts.resolve("exports")
    if exports.is_dir():
        for path in exports.glob(f"{row.id}.*"):
            path.unlink(missing_ok=True)
