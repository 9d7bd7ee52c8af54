"""A running job's heartbeat: a daemon thread of the process that runs the job records every
``every_s`` seconds that the job is alive (``app.jobs.beat``). When the process dies (kill -9,
a machine lost) the beats stop, and ``app.jobs.requeue_lost`` in the API's sweep sends the
job to another worker. A beat refused because the job is no longer this attempt's (it was
taken for lost and queued again) calls ``on_lost``, so the runner stops at its next report."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app import jobs
from app.db.session import Database

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        db: Database,
        job_id: str,
        attempt: int,
        every_s: float,
        on_lost: Callable[[], None],
    ):
        self.db = db
        self.job_id = job_id
        self.attempt = attempt
        self.every_s = every_s
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                alive = jobs.beat(self.db, self.job_id, self.attempt)
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning("heartbeat of job %s not recorded (%s)", self.job_id, exc)
                continue
            if not alive and not self._stop.is_set():
                status = jobs.status_of(self.db, self.job_id)
                # Cancelled, or finished just now: the runner sees that itself.
                if status not in jobs.FINAL:
                    log.warning(
                        "job %s is no longer attempt %d's to run (status %s); stopping it",
                        self.job_id,
                        self.attempt,
                        status,
                    )
                    self.on_lost()
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
