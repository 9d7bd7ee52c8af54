"""Broker down: a submit answers at once (the job row is the outbox; the outbox's thread
sends the message, never the request), health says degraded and counts what waits, and
the jobs run once a broker is back.

Before the outbox, ``POST /api/jobs`` took 19 s per message with Redis down (Celery's
result-backend reconnect loop ran in the request), a 2-shard generate 38 s.

Real services: a Redis server process this test starts and stops, a real Celery worker,
SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.queue.broker import redis_answers
from app.services import jobs_view
from app.settings import Settings
from tests.conftest import DEAD_REDIS, Service, free_port, service_env
from tests.test_integration import _app, wait_for

pytestmark = pytest.mark.integration

TINY_ROLLOUT = {"steps": 1, "resolution": 32}
TWO_SHARDS = {
    "n_trajectories": 2,
    "shard_size": 1,
    "n_snapshots": 2,
    "resolution": 32,
    "interval": 0.1,
    "batch_size": 1,
}


def _timed_post(client, kind: str, params: dict) -> tuple[str, float]:
    started = time.perf_counter()
    response = client.post("/api/jobs", json={"kind": kind, "params": params})
    took = time.perf_counter() - started
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()["id"], took


def test_submit_answers_at_once_while_the_broker_is_down(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path, database_url=database_url, broker_url=DEAD_REDIS)
    with TestClient(_app(settings)) as client:
        # Each kind submitted twice, judged by the quicker: a submission that waited on the
        # broker would be slow both times, while one scheduling hiccup of a loaded CI machine
        # (once 1.03 s for a request that takes 0.02 s) is not the code's.
        (rollout, took), (_, again) = (_timed_post(client, "rollout", TINY_ROLLOUT) for _ in "ab")
        took = min(took, again)
        assert took < 1.0, f"POST /api/jobs took {took:.2f} s with the broker down"
        (generate, took), (_, again) = (_timed_post(client, "generate", TWO_SHARDS) for _ in "ab")
        took = min(took, again)
        assert took < 1.0, f"a 2-shard generate took {took:.2f} s with the broker down"
        # The UI submits through the same service.
        state = client.app.state.eddyscope
        started = time.perf_counter()
        jobs_view.submit_job(state, "rollout", TINY_ROLLOUT)
        assert time.perf_counter() - started < 1.0
        # The jobs are kept, queued; health says the broker is down and what waits for it.
        assert client.get(f"/api/jobs/{rollout}").json()["status"] == "queued"
        health = client.get("/api/health").json()
        assert health["status"] == "degraded"
        assert health["broker"] == (
            "configured broker redis://127.0.0.1/0 unreachable; 7 job message(s) wait to be sent"
        )
        # Cancelling does not wait on the broker either (its revoke goes through the outbox).
        started = time.perf_counter()
        assert client.post(f"/api/jobs/{generate}/cancel").json()["status"] == "cancelled"
        assert time.perf_counter() - started < 1.0
        # Meanwhile the outbox's thread tried to send, and failed (about 0.6 s per try).
        deadline = time.monotonic() + 10
        while state.outbox.last_error is None:
            assert time.monotonic() < deadline, "the outbox never tried to send"
            time.sleep(0.1)
        assert "Connection refused" in state.outbox.last_error


class RedisServer(Service):
    """A Redis server of its own on ``port``, without persistence: a broker that can be down."""

    def __init__(self, port: int, log_path: Path):
        command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
        super().__init__(command, {}, log_path)
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while not redis_answers(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start:\n{self.output()}")
            time.sleep(0.05)


def test_jobs_submitted_while_the_broker_is_down_run_once_it_is_back(tmp_path, start_worker):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"  # nothing listens there yet
    settings = Settings(data_dir=tmp_path, broker_url=url)
    with TestClient(_app(settings)) as client:
        rollout, took = _timed_post(client, "rollout", TINY_ROLLOUT)
        assert took < 1.0
        generate, took = _timed_post(client, "generate", TWO_SHARDS)
        assert took < 1.0
        assert client.get("/api/health").json()["status"] == "degraded"
        time.sleep(1.0)  # the outbox's thread tries, fails, and backs off
        assert client.get(f"/api/jobs/{rollout}").json()["status"] == "queued"

        broker = RedisServer(port, tmp_path / "redis.log")
        try:
            start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=url))
            assert wait_for(client, rollout, timeout=120)["status"] == "succeeded"
            job = wait_for(client, generate, timeout=120)
            assert job["status"] == "succeeded", job["error"]
            assert job["result"]["shards"] == 2
            health = client.get("/api/health").json()
            assert health["status"] == "ok"
            assert health["broker"].endswith(" ok")
        finally:
            broker.stop()
