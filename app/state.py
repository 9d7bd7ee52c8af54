"""What the API and the UI share in one process: settings, database, artifact store, queue."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.artifacts import ArtifactStore
from app.db.session import Database, get_database
from app.queue.broker import BrokerChoice, resolve_broker
from app.queue.celery_app import CeleryDispatcher, make_celery
from app.settings import Settings


@dataclass
class AppState:
    settings: Settings
    db: Database
    artifacts: ArtifactStore
    broker: BrokerChoice
    dispatcher: CeleryDispatcher

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        broker = resolve_broker(settings)
        return cls(
            settings=settings,
            db=get_database(settings.resolved_database_url),
            artifacts=ArtifactStore(settings.resolved_artifact_root),
            broker=broker,
            dispatcher=CeleryDispatcher(make_celery(settings, broker)),
        )


def get_state(request: Request) -> AppState:
    return request.app.state.eddyscope
