"""``produce``: one producer of an online ``train`` job. It steps the flow's reference solver
from fresh initial conditions (trajectories ``start … start+count−1`` of the online seed,
the validation dataset's flow and parameters) and streams every window of consecutive
snapshots to its trainer through the job's bounded transport (``workers.online_stream``),
waiting while that is full. Nothing is written to disk.

Producers are made by the trainer only (``workers.runners.train_online``), as its child
jobs, and cannot be submitted. One whose worker dies is redelivered and resumes after the
last solver batch it had pushed; one that fails or is cancelled is replaced by the trainer
with a new producer for the trajectories still missing. Cancelling the trainer cancels
them; a producer whose trainer has ended stops by itself.
"""

from __future__ import annotations

from app.jobkinds.base import JobKind

PRODUCE_KIND = "produce"

KIND = JobKind(
    name=PRODUCE_KIND,
    description="One producer of an online train job: solver windows streamed to the trainer.",
    params=None,
    task="eddyscope.produce",
    runner="workers.runners.produce:run_produce",
    default_queue="cpu",
)
