"""Outbox: the job row is committed before its message is sent; when the broker is down the
row stays queued, and the re-dispatch sweep sends it once the broker is back."""

from __future__ import annotations

import json

import redis

from app import jobs
from app.db.session import Database
from app.queue.broker import BrokerChoice
from app.queue.celery_app import CeleryDispatcher, make_celery
from app.settings import Settings
from tests.conftest import DEAD_REDIS


def test_job_survives_a_broker_outage_and_is_redispatched(tmp_path, redis_url):
    settings = Settings(data_dir=tmp_path)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    down = make_celery(settings, BrokerChoice(DEAD_REDIS, None, "configured"))
    down.conf.broker_connection_timeout = 0.5
    down.conf.broker_connection_max_retries = 0
    down.conf.broker_transport_options |= {"max_retries": 0}

    job = jobs.submit(db, CeleryDispatcher(down), "rollout", {"steps": 1}, "cpu")
    with db.session() as session:
        row = jobs.get_job(session, job.id)
        assert row.status == "queued" and row.dispatched_at is None

    client = redis.Redis.from_url(redis_url)
    client.delete("cpu")
    up = CeleryDispatcher(make_celery(settings, BrokerChoice(redis_url, redis_url, "configured")))
    assert jobs.redispatch_stale(db, up, older_than_s=60) == 1
    with db.session() as session:
        assert jobs.get_job(session, job.id).dispatched_at is not None
    message = json.loads(client.lpop("cpu"))
    assert message["headers"]["id"] == job.id and message["headers"]["task"] == "eddyscope.rollout"
    # Sent once: a fresh dispatch is not stale.
    assert jobs.redispatch_stale(db, up, older_than_s=60) == 0
