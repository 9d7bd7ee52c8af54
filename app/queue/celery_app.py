"""The Celery application both sides share: the app sends job messages through it (by task
name, so the API never imports torch), the worker (``workers.worker_app``) consumes them.
Settings come from ``app.settings``; the broker from ``app.queue.broker.resolve_broker``;
the task names from the job-kind registry (``app.jobkinds``), whose tasks
``workers.tasks`` defines."""

from __future__ import annotations

import logging

from celery import Celery
from kombu import Queue

from app.jobkinds import get_kind
from app.queue.broker import BrokerChoice, resolve_broker
from app.queue.waiting import waiting_job_ids
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

QUEUES = ("gpu", "cpu")
# Longer than the longest job, so Redis never re-delivers a job that is still running.
VISIBILITY_TIMEOUT_S = 7 * 24 * 3600


def transport_options(broker: BrokerChoice) -> dict:
    if broker.url.startswith("sqla+"):
        # Kombu hands these to SQLAlchemy's create_engine; wait out SQLite write locks.
        return {"connect_args": {"timeout": 30}}
    return {"visibility_timeout": VISIBILITY_TIMEOUT_S}


def make_celery(settings: Settings | None = None, broker: BrokerChoice | None = None) -> Celery:
    settings = settings or get_settings()
    broker = broker or resolve_broker(settings)
    celery = Celery(
        "eddyscope", broker=broker.url, backend=broker.backend, include=["workers.tasks"]
    )
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(broker),
        result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="gpu",
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_enable_remote_control=broker.supports_broadcast,
        worker_hijack_root_logger=False,
    )
    celery.eddyscope_broker = broker
    return celery


class CeleryDispatcher:
    """Sends job messages by task name, so the API never imports torch.

    Messages are sent with ``ignore_result``: a job's outcome is its database row, and
    nothing reads Celery's result backend, whose reconnect loop would otherwise hold each
    send for about 19 s while Redis is down."""

    def __init__(self, celery: Celery):
        self.celery = celery

    def send(self, job) -> None:
        task = get_kind(job.kind).task
        self.celery.send_task(
            task, args=[job.id], queue=job.queue, task_id=job.id, ignore_result=True
        )

    def waiting(self) -> set[str] | None:
        """Job ids of the messages still waiting in the job queues (None: cannot tell)."""
        return waiting_job_ids(self.celery.eddyscope_broker.url, QUEUES)

    def revoke(self, job) -> None:
        if self.celery.eddyscope_broker.supports_broadcast:
            self.celery.control.revoke(job.id, terminate=True, signal="SIGTERM")
