"""What a running job sees: its parameters, where to write, how to report, whether to stop."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from sqlalchemy import update

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Job
from app.settings import Settings


class JobCancelled(Exception):
    """Raised inside a job when its row says it was cancelled."""


class JobError(Exception):
    """A failure the user can act on; its message is shown as the job's error."""


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _finite(value: Any) -> Any:
    # JSON has no NaN/Inf; a diverged metric is reported as null rather than breaking the row.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class JobContext:
    job_id: str
    kind: str
    params: dict[str, Any]
    settings: Settings
    db: Database
    artifacts: ArtifactStore
    device: torch.device
    parent_id: str | None = None
    poll_every_s: float = 0.5
    _last_poll: float = field(default=0.0, repr=False)

    def report(
        self,
        type_: str,
        payload: dict[str, Any],
        progress: float | None = None,
        message: str | None = None,
    ) -> None:
        clean = {k: _finite(v) for k, v in payload.items()}
        status = jobs.report(self.db, self.job_id, type_, clean, progress, message)
        self._last_poll = time.monotonic()
        if status == "cancelled":
            raise JobCancelled(self.job_id)

    def should_stop(self) -> bool:
        """Polled from inner loops; asks the database at most every ``poll_every_s``."""
        now = time.monotonic()
        if now - self._last_poll < self.poll_every_s:
            return False
        self._last_poll = now
        return jobs.status_of(self.db, self.job_id) == "cancelled"

    def check_cancelled(self) -> None:
        if self.should_stop():
            raise JobCancelled(self.job_id)

    def set_result(self, result: dict[str, Any]) -> None:
        """Publish result ids early (e.g. the rollout id), so the UI can follow a running job."""
        with self.db.session() as session:
            session.execute(update(Job).where(Job.id == self.job_id).values(result=result))
            session.commit()
