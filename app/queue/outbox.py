"""The outbox: job messages are sent by a thread of their own, never by a request.

The job row is the outbox entry. A request commits the job (``queued``, ``dispatched_at``
unset) and calls ``send_later``, which only wakes the outbox's thread; the request answers
at once whether the broker is up or not. The thread sends every queued job whose message
was never sent, oldest first (``app.jobs.redispatch_stale``), and every ``sweep_every_s``
also sends again the messages that were lost: those sent more than ``resend_after_s`` ago
that are no longer waiting in the broker's queue (a job still waiting its turn is not sent
twice). While the broker is down a send fails in the thread, the rows stay queued, and the
thread tries again after 0.5, 1, 2, … up to ``sweep_every_s`` seconds; the jobs go out as
soon as the broker is back. Revokes (cancel) go through the thread too.

An outbox that was not started (a CLI command, a script) sends in the caller's thread, as a
plain dispatcher: nothing is left unsent when such a process exits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select

from app import jobs
from app.db.session import Database
from app.db.tables import Job

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 10.0
FIRST_RETRY_S = 0.5


class Outbox:
    """A dispatcher (``send``, ``revoke``) whose ``send_later`` defers sending to its thread.

    ``dispatcher`` sends for real (``app.queue.celery_app.CeleryDispatcher``). ``upkeep``:
    callables the thread runs before each sweep (periodic work that may send, e.g. putting
    jobs of lost workers back in the queue)."""

    def __init__(
        self,
        db: Database,
        dispatcher: Any,
        *,
        resend_after_s: float,
        sweep_every_s: float = SWEEP_EVERY_S,
        upkeep: Iterable[Callable[[], object]] = (),
    ):
        self.db = db
        self.dispatcher = dispatcher
        self.resend_after_s = resend_after_s
        self.sweep_every_s = sweep_every_s
        self.upkeep = list(upkeep)
        self.last_error: str | None = None  # of the last send or look into the queues
        self.last_sent_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._revokes: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # one sweep at a time
        self._thread: threading.Thread | None = None
        self._failing = False

    # --- the dispatcher protocol ---------------------------------------------------------

    def send(self, job: Job) -> None:
        """Send now, in the caller's thread (the outbox's own thread calls this)."""
        try:
            self.dispatcher.send(job)
        except Exception as exc:
            self.last_error = f"{exc.__class__.__name__}: {exc}"
            self._failing = True
            raise
        self.last_error = None
        self.last_sent_at = time.time()

    def send_later(self, job_id: str) -> None:
        """Have the queued job's message sent by the outbox's thread (at once if it is not
        running)."""
        if self.running:
            self._wake.set()
        else:
            jobs.dispatch(self.db, self, job_id)

    def revoke(self, job: Job) -> None:
        if not self.running:
            self.dispatcher.revoke(job)
            return
        self._revokes.put(SimpleNamespace(id=job.id, kind=job.kind, queue=job.queue))
        self._wake.set()

    def waiting(self) -> set[str] | None:
        waiting = getattr(self.dispatcher, "waiting", None)
        if waiting is None:
            return None
        try:
            return waiting()
        except Exception as exc:
            self.last_error = f"{exc.__class__.__name__}: {exc}"
            self._failing = True
            raise

    # --- the thread ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()
        self._wake.set()  # send what earlier processes left unsent

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        delay = FIRST_RETRY_S
        while not self._stop.is_set():
            if self._failing:
                # The broker is down: wake-ups wait for the retry, so that many requests
                # do not each cost a failed connection.
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.sweep_every_s)
            else:
                self._wake.wait(self.sweep_every_s)
                delay = FIRST_RETRY_S
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.sweep()
            except Exception:
                log.exception("outbox sweep failed")
                self._failing = True

    def sweep(self) -> int:
        """Run the upkeep, deliver queued revokes, then send what is unsent or lost; returns
        how many messages were sent."""
        with self._lock:
            self._failing = False
            for task in self.upkeep:
                try:
                    task()
                except Exception:
                    log.exception("outbox upkeep %r failed", task)
            sent = jobs.redispatch_stale(self.db, self, self.resend_after_s)
            if sent:
                log.info("outbox: sent %d job message(s)", sent)
            if not self._failing:
                self._deliver_revokes()  # kept for later while the broker is down
                if self.unsent() == 0:
                    self.last_error = None
            return sent

    def _deliver_revokes(self) -> None:
        while True:
            try:
                job = self._revokes.get_nowait()
            except queue.Empty:
                return
            try:
                self.dispatcher.revoke(job)
            except Exception as exc:  # workers also poll the row for cancellation
                log.info("revoke of job %s not delivered (%s)", job.id, exc)

    # --- what health reports -------------------------------------------------------------

    def unsent(self) -> int:
        """Queued jobs whose message has not been sent yet."""
        with self.db.session() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(
                        Job.status == "queued",
                        Job.dispatched_at.is_(None),
                        Job.kind.not_in(_coordinators()),
                    )
                )
                or 0
            )


def _coordinators() -> tuple[str, ...]:
    from app.jobkinds import coordinators

    return coordinators()
