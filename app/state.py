"""What the API and the UI share in one process: settings, database, artifact store, queue."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database, get_database
from app.queue.broker import BrokerChoice, resolve_broker
from app.queue.celery_app import CeleryDispatcher, make_celery
from app.queue.outbox import Outbox
from app.settings import Settings


@dataclass
class AppState:
    """``dispatcher`` is the process's outbox: requests commit job rows and its thread
    (started with the server, ``app.main``) sends their messages, so no request waits on
    the broker. ``dispatcher.dispatcher`` is the Celery dispatcher it sends through."""

    settings: Settings
    db: Database
    artifacts: ArtifactStore
    broker: BrokerChoice
    dispatcher: Outbox

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        broker = resolve_broker(settings)
        db = get_database(settings.resolved_database_url)
        outbox = Outbox(
            db,
            CeleryDispatcher(make_celery(settings, broker)),
            resend_after_s=settings.redispatch_after_s,
        )
        # Before each sweep, jobs whose worker stopped beating go back in the queue, so the
        # sweep sends them to a live worker (no wait for the broker's visibility timeout).
        outbox.upkeep.append(lambda: jobs.requeue_lost(db, outbox, settings.lost_after_s))
        return cls(
            settings=settings,
            db=db,
            artifacts=ArtifactStore(settings.resolved_artifact_root),
            broker=broker,
            dispatcher=outbox,
        )

    @property
    def outbox(self) -> Outbox:
        return self.dispatcher


def get_state(request: Request) -> AppState:
    return request.app.state.eddyscope
