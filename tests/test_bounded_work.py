"""Bounded work: one request cannot ask for unbounded trajectories, shards, steps × grid
or data-parallel processes, and the server holds a bounded number of active jobs. Each
limit is a setting; each refusal is a 422 sentence naming the parameter and the limit,
given at submit before anything is stored or sent, and shown by the pages that submit.
A worker also refuses more processes than it has. Queued jobs are not sent again while
their first message is still waiting in the broker's queue.

Real Redis, a real Celery worker, SQLite and PostgreSQL (the ``client`` fixture)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app import jobs
from app.db.tables import Dataset, Job, utcnow
from app.jobkinds.limits import machine_ranks
from app.queue.broker import BrokerChoice
from app.queue.celery_app import CeleryDispatcher, make_celery
from app.queue.waiting import waiting_job_ids
from app.settings import Settings, get_settings
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for

# Small limits, so that refusals need no large requests.
TIGHT = {
    "max_trajectories": 50,
    "max_shards": 4,
    "max_dataset_values": 100_000,
    "max_steps_points": 100 * 64 * 64,
    "max_gpus": 2,
    "max_active_jobs": 3,
}


@pytest.fixture
def tight(monkeypatch):
    """The TIGHT limits, as a deployment sets them: in the environment."""
    for key, value in TIGHT.items():
        monkeypatch.setenv(f"EDDYSCOPE_{key.upper()}", str(value))
    get_settings.cache_clear()
    yield TIGHT
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def client(tight, settings: Settings):
    """The app with the TIGHT limits in its settings (the environment is read first)."""
    from app.main import create_app

    assert settings.max_shards == TIGHT["max_shards"]
    with TestClient(create_app(settings, with_ui=False)) as test_client:
        yield test_client


def _refused(client, kind: str, **params) -> str:
    response = client.post("/api/jobs", json={"kind": kind, "params": params})
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def _job_count(client) -> int:
    with client.app.state.eddyscope.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def _dataset_row(client, shape=(4, 6, 32, 32)) -> str:
    """A stored dataset's row, for train requests (submit checks the row, not the file)."""
    with client.app.state.eddyscope.db.session() as session:
        row = Dataset(
            name="rows only",
            flow="ns2d-forced",
            params={"interval": 1.0},
            shape=list(shape),
            path="datasets/missing.h5",
        )
        session.add(row)
        session.commit()
        return row.id


def _forget_messages(redis_url: str, job_ids: set[str]) -> None:
    """Take this test's messages out of the shared test queues."""
    client = redis.Redis.from_url(redis_url)
    for queue in ("cpu", "gpu"):
        for raw in client.lrange(queue, 0, -1):
            if json.loads(raw)["headers"]["id"] in job_ids:
                client.lrem(queue, 0, raw)


def test_each_limit_is_refused_with_a_sentence_before_anything_is_stored(client):
    sentence = _refused(client, "generate", n_trajectories=51, resolution=16)
    assert sentence == (
        "params.n_trajectories: the trajectory count is 51; the limit is 50 (max_trajectories)."
    )
    sentence = _refused(client, "generate", n_trajectories=20, shard_size=1, resolution=16)
    assert sentence == (
        "params.shard_size: 20 trajectories in shards of 1 make 20 shards; the limit is 4 "
        "shards per job (max_shards), so use a shard_size of at least 5."
    )
    sentence = _refused(client, "generate", n_trajectories=10, n_snapshots=20, resolution=32)
    assert sentence.startswith("params.n_trajectories: 10 trajectories × 20 snapshots × 1,024")
    assert "the limit is 100,000 per dataset (max_dataset_values)" in sentence
    sentence = _refused(client, "rollout", steps=101, resolution=64)
    assert sentence == (
        "params.steps: 101 steps × 4,096 grid points (64×64) make 413,696; the limit is "
        "409,600 (max_steps_points), so at most 100 steps on this grid."
    )
    dataset_id = _dataset_row(client)
    sentence = _refused(client, "train", dataset_id=dataset_id, gpus=3)
    assert (
        sentence == "params.gpus: 3 data-parallel processes asked for; the limit is 2 (max_gpus)."
    )
    # Nothing was stored for any refusal, and nothing was sent.
    assert _job_count(client) == 0
    assert client.app.state.eddyscope.outbox.unsent() == 0


def test_the_requests_just_under_the_limits_are_accepted(client, redis_url):
    ids = {
        submit(client, "generate", n_trajectories=20, shard_size=5, n_snapshots=2, resolution=16),
        submit(client, "rollout", steps=100, resolution=64),
    }
    with client.app.state.eddyscope.db.session() as session:
        shards = session.scalar(select(func.count()).select_from(Job).where(Job.parent_id.in_(ids)))
        ids |= set(session.scalars(select(Job.id).where(Job.parent_id.in_(ids))))
    assert shards == 4
    _cancel_all(client, ids, redis_url)


def _cancel_all(client, ids: set[str], redis_url: str) -> None:
    for job_id in ids:
        client.post(f"/api/jobs/{job_id}/cancel")
    time.sleep(0.5)  # the outbox's thread sends what it was sending
    _forget_messages(redis_url, ids)


def test_active_jobs_are_bounded_and_a_generate_counts_once(client, redis_url):
    # No worker runs: jobs stay queued. A generate job and its 4 shards count as one.
    first = submit(client, "generate", n_trajectories=4, shard_size=1, n_snapshots=2, resolution=16)
    ids = {first, submit(client, "rollout", steps=1), submit(client, "rollout", steps=1)}
    sentence = _refused(client, "rollout", steps=1)
    assert sentence == (
        "The server has 3 queued or running jobs; the limit is 3 at once (max_active_jobs). "
        "Wait for one to finish, or cancel one."
    )
    assert _job_count(client) == 3 + 4  # the refused one was not stored
    # A job that ends frees its place.
    client.post(f"/api/jobs/{first}/cancel")
    ids.add(submit(client, "rollout", steps=1))
    with client.app.state.eddyscope.db.session() as session:
        ids |= set(session.scalars(select(Job.id).where(Job.parent_id == first)))
    _cancel_all(client, ids, redis_url)


def test_the_issue_reproducers_are_refused_by_the_default_limits(tmp_path, redis_url):
    """``shard_size=1`` with 100 000 trajectories, and 64 processes, with no setting made."""
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    assert settings.max_gpus is None and settings.max_trajectories == 10_000
    with TestClient(_app(settings)) as client:
        sentence = _refused(client, "generate", n_trajectories=100_000, shard_size=1)
        assert sentence == (
            "params.n_trajectories: the trajectory count is 100,000; the limit is 10,000 "
            "(max_trajectories)."
        )
        sentence = _refused(client, "generate", n_trajectories=10_000, shard_size=1)
        assert "make 10,000 shards; the limit is 256 shards per job (max_shards)" in sentence
        dataset_id = _dataset_row(client)
        have = machine_ranks()
        sentence = _refused(client, "train", dataset_id=dataset_id, gpus=64)
        assert sentence == (
            f"params.gpus: 64 data-parallel processes asked for; the limit is {have} "
            "(max_gpus; by default the GPUs of this machine, else its CPU cores)."
        )
        assert _job_count(client) == 0
        # As many as the machine has is accepted.
        job_id = submit(client, "train", dataset_id=dataset_id, gpus=have)
        _cancel_all(client, {job_id}, redis_url)


def test_a_worker_refuses_more_processes_than_it_has(
    tmp_path, redis_url, start_worker, monkeypatch
):
    """The server may allow more (its max_gpus), but a worker runs one process per GPU (per
    CPU core without one): it fails the job with a sentence before loading anything."""
    have = machine_ranks(False)  # the test worker runs on this machine's CPU
    monkeypatch.setenv("EDDYSCOPE_MAX_GPUS", str(have + 1))
    get_settings.cache_clear()
    try:
        settings = Settings(data_dir=tmp_path, broker_url=redis_url)
        with TestClient(_app(settings)) as client:
            # The dataset's file does not exist: a worker that loaded anything would say so.
            dataset_id = _dataset_row(client)
            env = service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url, EDDYSCOPE_DEVICE="cpu")
            start_worker(env)
            job = wait_for(
                client,
                submit(client, "train", dataset_id=dataset_id, gpus=have + 1),
                timeout=60,
            )
            assert job["status"] == "failed"
            assert job["error"] == (
                f"params.gpus: the job asks for {have + 1} data-parallel processes; this "
                f"worker has no GPU and {have} CPU core{'s' if have != 1 else ''}, so at most "
                f"{have}"
            )
            events = client.get(f"/api/jobs/{job['id']}/events").json()
            assert not [e for e in events if e["type"] in ("train", "epoch")]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# --- not sent twice while waiting --------------------------------------------------------


def _age(db, job_id: str, seconds: float) -> None:
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(dispatched_at=utcnow() - timedelta(seconds=seconds))
        )
        session.commit()


def _wait_sent(db, job_id: str, timeout: float = 10.0) -> None:
    """Until the outbox's thread has sent the job and recorded it."""
    deadline = time.monotonic() + timeout
    while True:
        with db.session() as session:
            if session.get(Job, job_id).dispatched_at is not None:
                return
        assert time.monotonic() < deadline, "the outbox never sent the job"
        time.sleep(0.05)


def _copies(client: redis.Redis, job_id: str, queue: str = "cpu") -> int:
    return sum(json.loads(m)["headers"]["id"] == job_id for m in client.lrange(queue, 0, -1))


def test_a_queued_job_is_not_sent_again_while_its_message_waits(client, redis_url):
    state = client.app.state.eddyscope
    broker = redis.Redis.from_url(redis_url)
    job_id = submit(client, "rollout", steps=1)  # no worker: it waits in the queue
    _wait_sent(state.db, job_id)
    assert _copies(broker, job_id) == 1
    # Long past the re-send age, but its first message is still in the queue: not re-sent.
    _age(state.db, job_id, 3600)
    assert job_id in state.dispatcher.waiting()
    assert state.outbox.sweep() == 0
    assert _copies(broker, job_id) == 1
    # The broker loses the message (a restart without persistence): sent again, once.
    for raw in broker.lrange("cpu", 0, -1):
        if json.loads(raw)["headers"]["id"] == job_id:
            broker.lrem("cpu", 0, raw)
    assert state.outbox.sweep() == 1
    assert _copies(broker, job_id) == 1
    assert state.outbox.sweep() == 0  # a fresh message is not stale
    _cancel_all(client, {job_id}, redis_url)


def test_waiting_messages_are_read_from_the_embedded_broker(tmp_path: Path):
    """The embedded SQLite broker keeps messages as rows: they are read without taking them."""
    from app.db.session import Database

    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert waiting_job_ids(url, ["cpu", "gpu"]) == set()  # nothing sent yet: no tables
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    dispatcher = CeleryDispatcher(
        make_celery(Settings(data_dir=tmp_path), BrokerChoice(url, None, "embedded"))
    )
    job = jobs.submit(db, dispatcher, "rollout", {"steps": 1}, "cpu")
    assert dispatcher.waiting() == {job.id}
    _age(db, job.id, 3600)
    assert jobs.redispatch_stale(db, dispatcher, older_than_s=60) == 0
    assert dispatcher.waiting() == {job.id}
    db.engine.dispose()


# --- the pages that submit ---------------------------------------------------------------


def _ui_call(client, output: str, values: dict) -> dict:
    """Run the page callback that writes ``output`` through Dash's callback endpoint, as the
    browser does on a click (the callback's inputs and states from /_dash-dependencies)."""
    deps = client.get("/_dash-dependencies").json()
    dep = next(d for d in deps if output in d["output"].strip(".").split("..."))
    outputs = []
    for part in dep["output"].strip(".").split("..."):
        component, prop = part.split(".", 1)
        outputs.append({"id": component, "property": prop.split("@")[0]})
    response = client.post(
        "/_dash-update-component",
        json={
            "output": dep["output"],
            "outputs": outputs,
            "inputs": [{**x, "value": values.get(x["id"])} for x in dep["inputs"]],
            "state": [{**x, "value": values.get(x["id"])} for x in dep["state"]],
            "changedPropIds": [f"{x['id']}.{x['property']}" for x in dep["inputs"]],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["response"]


def _error_alert(node) -> str | None:
    """The text of the first error alert in a rendered component tree."""
    if isinstance(node, dict):
        props = node.get("props") or {}
        if "alert-error" in str(props.get("className", "")):
            children = props.get("children")
            return children if isinstance(children, str) else json.dumps(children)
        for value in (*props.values(), *node.values()):
            found = _error_alert(value)
            if found:
                return found
    if isinstance(node, list):
        for value in node:
            found = _error_alert(value)
            if found:
                return found
    return None


def test_the_pages_that_submit_show_the_limit_sentences(tight, tmp_path, redis_url):
    from app.main import create_app
    from app.ui.pages.rollout import RANDOM_FIELD, REFERENCE_ONLY

    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(create_app(settings)) as client:
        # The Data page's Generate button: 20 trajectories in shards of 1.
        sentence = _refused(
            client,
            "generate",
            flow="ns2d-forced",
            n_trajectories=20,
            n_snapshots=2,
            resolution=16,
            interval=1.0,
            warmup=0,
            shard_size=1,
            seed=0,
        )
        assert sentence.startswith("params.shard_size: 20 trajectories in shards of 1")
        shown = _ui_call(
            client,
            "data-feedback.children",
            {
                "data-generate": 1,
                "data-flow": "ns2d-forced",
                "data-n": 20,
                "data-t": 2,
                "data-resolution": 16,
                "data-interval": 1.0,
                "data-warmup": 0,
                "data-shard-size": 1,
                "data-seed": 0,
            },
        )
        assert _error_alert(shown) == sentence
        # The Rollout page's Start button: 101 steps of the reference solver on 64².
        sentence = _refused(client, "rollout", steps=101)
        shown = _ui_call(
            client,
            "rollout-feedback.children",
            {
                "rollout-start": 1,
                "rollout-ic": RANDOM_FIELD,
                "rollout-model": REFERENCE_ONLY,
                "rollout-steps": 101,
            },
        )
        assert _error_alert(shown) == sentence
        assert "max_steps_points" in sentence
        assert _job_count(client) == 0
