"""What a running job sees: its parameters, where to write, how to report, whether to stop."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from sqlalchemy import true, update

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Job
from app.settings import Settings


class JobCancelled(Exception):
    """Raised inside a job when its row says it was cancelled."""


class JobLost(JobCancelled):
    """Raised inside a job whose worker was taken for lost: the job was queued again (or
    another worker runs it now), so this attempt stops without recording anything more."""


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
    # The attempt that claimed the job (``app.jobs.claim``); None runs unfenced (tests, benches).
    attempt: int | None = None
    # Set by the heartbeat when the job is no longer this attempt's to run.
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    _last_poll: float = field(default=0.0, repr=False)

    def report(
        self,
        type_: str,
        payload: dict[str, Any],
        progress: float | None = None,
        message: str | None = None,
    ) -> None:
        if self.lost.is_set():
            raise JobLost(self.job_id)
        clean = {k: _finite(v) for k, v in payload.items()}
        status = jobs.report(self.db, self.job_id, type_, clean, progress, message, self.attempt)
        self._last_poll = time.monotonic()
        if status == "cancelled":
            raise JobCancelled(self.job_id)
        if status == "lost":
            self.lost.set()
            raise JobLost(self.job_id)

    def should_stop(self) -> bool:
        """Polled from inner loops; asks the database at most every ``poll_every_s``."""
        if self.lost.is_set():
            return True
        now = time.monotonic()
        if now - self._last_poll < self.poll_every_s:
            return False
        self._last_poll = now
        return jobs.status_of(self.db, self.job_id) == "cancelled"

    def check_cancelled(self) -> None:
        if self.lost.is_set():
            raise JobLost(self.job_id)
        if self.should_stop():
            raise JobCancelled(self.job_id)

    def set_result(self, result: dict[str, Any]) -> None:
        """Publish result ids early (e.g. the rollout id), so the UI can follow a running job."""
        owned = Job.attempts == self.attempt if self.attempt is not None else true()
        with self.db.session() as session:
            session.execute(update(Job).where(Job.id == self.job_id, owned).values(result=result))
            session.commit()
