"""A worker machine lost mid-job: the whole Celery worker (main and pool processes) killed
with SIGKILL, as when a machine dies. The job's heartbeat stops, ``jobs.requeue_lost`` (the
API's sweep) puts it back in the queue without waiting for the broker's visibility timeout,
and a fresh worker re-runs it: a rollout replaces its first attempt (one metrics row per step,
one rollout), training resumes from its last checkpoint. A redelivered message never takes a
job from a worker that is still beating, and ``eddyscope up`` restarts its worker.
Real Redis, real Celery worker processes, SQLite (and PostgreSQL for the claim rules)."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Job, JobEvent, Rollout, utcnow
from app.jobkinds import coordinators, validate_params
from app.settings import Settings
from physics.formats.store import rollout_length
from tests.conftest import ROOT, free_port, service_env
from tests.test_integration import _app, submit, wait_for
from tests.test_training_jobs import SMALL_FNO, events_of, make_dataset, wait_for_epochs
from workers.context import JobContext
from workers.tasks import runner_of

pytestmark = pytest.mark.integration

# Short liveness settings so a lost worker is noticed within seconds (defaults: 10 s and 60 s).
BEAT_S = "1"
LOST_AFTER_S = 4.0


def _env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    return service_env(
        tmp_path,
        EDDYSCOPE_BROKER_URL=redis_url,
        EDDYSCOPE_HEARTBEAT_EVERY_S=BEAT_S,
        EDDYSCOPE_LOST_AFTER_S=str(LOST_AFTER_S),
    )


def _kill_whole_worker(worker) -> float:
    """SIGKILL the worker's process group (main and pool), as a machine dying would."""
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    return time.monotonic()


def _sweep_until_requeued(state, job_id: str) -> float:
    """Run the API's lost-worker sweep until it re-queues the job; returns when it did."""
    deadline = time.monotonic() + LOST_AFTER_S + 30
    while time.monotonic() < deadline:
        if jobs.requeue_lost(state.db, state.dispatcher, LOST_AFTER_S):
            return time.monotonic()
        time.sleep(0.5)
    with state.db.session() as session:
        job = session.get(Job, job_id)
        raise AssertionError(f"never re-queued: {job.status} beat {job.heartbeat_at}")


def _all_metrics(client, rollout_id: str) -> list[dict]:
    rows: list[dict] = []
    after = 0
    while True:
        page = client.get(
            f"/api/rollouts/{rollout_id}/metrics", params={"after": after, "limit": 500}
        ).json()
        rows += page
        if len(page) < 500:
            return rows
        after = page[-1]["seq"]


def test_a_rollout_whose_worker_is_killed_is_rerun_with_one_metrics_row_per_step(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    env = _env(tmp_path, redis_url)
    steps = 400
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        worker = start_worker(env)
        job_id = submit(client, "rollout", resolution=64, steps=steps, seed=4)
        deadline = time.monotonic() + 60
        while len(events_of(client, job_id, "metrics")) < 20:
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.1)
        first = client.get(f"/api/jobs/{job_id}").json()
        rollout_id = first["result"]["rollout_id"]
        killed = _kill_whole_worker(worker)
        partial = len(events_of(client, job_id, "metrics"))
        assert partial < steps  # killed mid-run
        assert client.get(f"/api/jobs/{job_id}").json()["status"] == "running"

        start_worker(env)
        requeued = _sweep_until_requeued(state, job_id)
        job = wait_for(client, job_id, timeout=120)
        done = time.monotonic()
        print(
            f"rollout: {partial} steps written before SIGKILL; re-queued "
            f"{requeued - killed:.1f} s after it, succeeded {done - killed:.1f} s after it"
        )
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        assert done - killed < 180

        # The same rollout, replaced: one metrics row per step, every frame written once.
        assert job["result"]["rollout_id"] == rollout_id
        metrics = _all_metrics(client, rollout_id)
        assert [m["step"] for m in metrics] == list(range(steps + 1)), len(metrics)
        described = client.get(f"/api/rollouts/{rollout_id}").json()
        assert described["frames"] == steps + 1 and described["status"] == "succeeded"
        with state.db.session() as session:
            rows = session.scalars(select(Rollout.id).where(Rollout.job_id == job_id)).all()
        assert rows == [rollout_id]
        exported = client.get(f"/api/rollouts/{rollout_id}/metrics.csv")
        assert exported.status_code == 200
        table = list(csv.reader(io.StringIO(exported.text)))[1:]
        assert sorted(int(r[0]) for r in table) == list(range(steps + 1))

        # The events say what happened: the worker was lost, a second attempt replaced the first.
        statuses = events_of(client, job_id, "status")
        lost = [s for s in statuses if s.get("reason") == "worker_lost"]
        assert len(lost) == 1 and lost[0]["attempt"] == 1
        (replaced,) = events_of(client, job_id, "rollout_replaced")
        assert replaced["attempt"] == 2 and replaced["events_removed"] >= partial


def test_training_whose_worker_is_killed_resumes_from_its_checkpoint_elsewhere(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    env = _env(tmp_path, redis_url)
    epochs = 12
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        worker = start_worker(env)
        dataset_id = make_dataset(client)
        job_id = submit(
            client,
            "train",
            dataset_id=dataset_id,
            epochs=epochs,
            batch_size=2,
            lr=3e-3,
            config=SMALL_FNO,
        )
        wait_for_epochs(client, job_id, 2)
        killed = _kill_whole_worker(worker)
        start_worker(env)
        requeued = _sweep_until_requeued(state, job_id)
        job = wait_for(client, job_id, timeout=150)
        done = time.monotonic()
        print(
            f"train: re-queued {requeued - killed:.1f} s after SIGKILL, succeeded "
            f"{done - killed:.1f} s after it"
        )
        assert job["status"] == "succeeded", job
        assert done - killed < 180
        assert job["attempts"] == 2
        assert job["result"]["resumed_from_epoch"] >= 2, job["result"]
        resumed = events_of(client, job_id, "resumed")
        assert len(resumed) == 1 and resumed[0]["epoch"] == job["result"]["resumed_from_epoch"]
        model = client.get(f"/api/models/{job['result']['model_id']}").json()
        assert [e["epoch"] for e in model["metrics"]["history"]] == list(range(1, epochs + 1))


# --- a re-run replaces its earlier attempt (2D rollout, channel rollout, comparison) ---------


class _Killed(BaseException):
    """The worker process dying (nothing of the runner's own handling runs)."""


class _DiesAtStep(JobContext):
    die_at = 3

    def report(self, type_, payload, progress=None, message=None):
        super().report(type_, payload, progress, message)
        if type_ == "metrics" and payload.get("step") == self.die_at:
            raise _Killed


def _attempt(db, artifacts, job_id: str, kind: str, params: dict, ctx_class, worker: str) -> Any:
    attempt = jobs.claim(db, job_id, worker, redelivered=False)
    assert attempt
    ctx = ctx_class(
        job_id=job_id,
        kind=kind,
        params=params,
        settings=Settings(data_dir=artifacts.root),
        db=db,
        artifacts=artifacts,
        device=torch.device("cpu"),
        attempt=attempt,
    )
    return runner_of(kind)(ctx)


@pytest.mark.parametrize("case", ["rollout", "channel", "compare"])
def test_a_rerun_replaces_its_earlier_attempt(tmp_path, case):
    from tests.test_compare import fno, register_model

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    artifacts = ArtifactStore(tmp_path / "artifacts")
    kind, raw = {
        "rollout": ("rollout", {"resolution": 32, "steps": 12}),
        "channel": ("rollout", {"flow": "channel3d", "steps": 5}),
        "compare": ("compare", {"steps": 12, "interval": 0.01}),
    }[case]
    if kind == "compare":
        raw["models"] = [{"model_id": register_model(db, artifacts, *fno(0), name="a")}]
    with db.session() as session:
        params, queue = validate_params(session, kind, raw)
        job = Job(kind=kind, params=params, queue=queue, status="queued")
        session.add(job)
        session.commit()
        job_id = job.id
    steps = params["steps"]
    with pytest.raises(_Killed):
        _attempt(db, artifacts, job_id, kind, params, _DiesAtStep, "first@host")
    from types import SimpleNamespace

    from app.services.rollouts import poll_rollout

    page = SimpleNamespace(db=db)  # what the Rollout page's poll reads: the database
    shown = poll_rollout(page, job_id, 0)
    assert shown["metrics"] and not shown["replaced"]
    seen = shown["metrics"][-1]["seq"]
    with db.session() as session:
        (first,) = session.scalars(select(Rollout).where(Rollout.job_id == job_id)).all()
        session.execute(update(Job).where(Job.id == job_id).values(status="queued"))
        session.commit()
    # The export of the partial rollout a user may have downloaded meanwhile.
    stale_export = artifacts.resolve(f"exports/{first.id}.nc")
    stale_export.parent.mkdir(parents=True, exist_ok=True)
    stale_export.write_bytes(b"partial")

    result = _attempt(db, artifacts, job_id, kind, params, JobContext, "second@host")
    assert jobs.finish(db, job_id, "succeeded", result=result, attempt=2)
    # A page that showed the first attempt is told to start again, and gets step 0 on.
    again = poll_rollout(page, job_id, seen)
    assert again["replaced"] and again["metrics"][0]["step"] == 0
    assert not poll_rollout(page, job_id, again["metrics"][-1]["seq"])["replaced"]
    assert result["rollout_id"] == first.id
    with db.session() as session:
        rows = session.scalars(select(Rollout).where(Rollout.job_id == job_id)).all()
        assert [r.id for r in rows] == [first.id]
        events = session.execute(
            select(JobEvent.type, JobEvent.payload)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.seq)
        ).all()
        from app.services.rollouts import export_csv, metrics

        read = metrics(session, rows[0])
        table = list(csv.reader(io.StringIO("".join(export_csv(session, rows[0])))))[1:]
    assert [m["step"] for m in read] == list(range(steps + 1))
    assert sorted({int(r[0]) for r in table}) == list(range(steps + 1))
    assert len(table) == len({(r[0], r[2]) for r in table})  # one row per step per source
    assert rollout_length(artifacts.resolve(rows[0].path)) == steps + 1
    assert not stale_export.exists()
    types = [t for t, _ in events]
    (replaced,) = [p for t, p in events if t == "rollout_replaced"]
    assert replaced["events_removed"] >= _DiesAtStep.die_at + 1 and replaced["attempt"] == 2
    if kind == "compare":
        assert types.count("compare_setup") == 1 and types.count("summary") == 1
    if case == "channel":
        stats = [(p["source"], p["t"]) for t, p in events if t == "channel_stats"]
        assert len(stats) == len(set(stats)) > 0


# --- the claim rules -----------------------------------------------------------------------


def _running_job(db: Database, worker: str, beat_age_s: float, pid: int | None = None) -> str:
    with db.session() as session:
        job = Job(
            kind="rollout",
            params={},
            queue="cpu",
            status="running",
            worker=worker,
            worker_pid=pid,
            attempts=1,
            started_at=utcnow() - timedelta(seconds=beat_age_s),
            heartbeat_at=utcnow() - timedelta(seconds=beat_age_s),
        )
        session.add(job)
        session.commit()
        return job.id


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_redelivered_message_takes_over_only_a_job_whose_worker_is_gone(database_url):
    db = Database(database_url)
    db.migrate()
    try:
        # Another worker beat 2 s ago: a duplicate or redelivered message leaves the job alone.
        fresh = _running_job(db, "a@host1", beat_age_s=2)
        assert jobs.claim(db, fresh, "b@host2", redelivered=True, lost_after_s=60) == 0
        assert jobs.claim(db, fresh, "b@host2", redelivered=False, lost_after_s=60) == 0
        # A process of this same worker node that ran it is gone (its pool process was
        # killed): taken over at once, without waiting for the heartbeat to go stale.
        assert jobs.claim(db, fresh, "a@host1", redelivered=True, lost_after_s=60) == 0
        here = _running_job(db, "a@host1", beat_age_s=2, pid=_dead_pid())
        assert jobs.claim(db, here, "a@host1", redelivered=True, lost_after_s=60, pid=7) == 2
        alive = _running_job(db, "a@host1", beat_age_s=2, pid=os.getppid())
        assert jobs.claim(db, alive, "a@host1", redelivered=True, lost_after_s=60) == 0
        # Its heartbeat is older than lost_after_s: the worker is lost, the job is taken over.
        stale = _running_job(db, "a@host1", beat_age_s=90)
        assert jobs.claim(db, stale, "b@host2", redelivered=False, lost_after_s=60) == 0
        assert jobs.claim(db, stale, "b@host2", redelivered=True, lost_after_s=60) == 2
        with db.session() as session:
            job = session.get(Job, stale)
            assert (job.worker, job.status, job.attempts) == ("b@host2", "running", 2)
            assert (utcnow() - job.heartbeat_at).total_seconds() < 5
            took = session.scalars(
                select(JobEvent.payload).where(JobEvent.job_id == stale, JobEvent.type == "status")
            ).all()
            assert took[-1] == {
                "status": "running",
                "worker": "b@host2",
                "attempt": 2,
                "took_over_from": "a@host1",
            }

        # The first attempt is fenced off: its beats, reports and finish count for nothing.
        assert not jobs.beat(db, stale, 1)
        assert jobs.beat(db, stale, 2)
        assert jobs.report(db, stale, "metrics", {"step": 0}, attempt=1) == "lost"
        assert jobs.report(db, stale, "metrics", {"step": 0}, attempt=2) == "running"
        assert not jobs.finish(db, stale, "succeeded", result={}, attempt=1)
        with db.session() as session:
            rows = session.scalars(
                select(JobEvent.seq).where(JobEvent.job_id == stale, JobEvent.type == "metrics")
            ).all()
            assert len(rows) == 1
        assert jobs.finish(db, stale, "succeeded", result={}, attempt=2)
    finally:
        db.engine.dispose()


def test_requeue_lost_sends_only_jobs_that_stopped_beating(tmp_path, redis_url):
    from app.state import AppState

    # The state without a server around it: no outbox thread runs its own sweep meanwhile.
    state = AppState.from_settings(Settings(data_dir=tmp_path, broker_url=redis_url))
    db = state.db
    db.migrate()
    beating = _running_job(db, "a@host1", beat_age_s=1)
    lost = _running_job(db, "b@host2", beat_age_s=61)
    # A coordinating job never beats itself (its tasks do): never taken for lost.
    assert "generate" in coordinators()
    with db.session() as session:
        coordinator = Job(kind="generate", params={"shard_size": 1}, status="running")
        session.add(coordinator)
        session.commit()
        session.execute(
            update(Job)
            .where(Job.id == coordinator.id)
            .values(started_at=utcnow() - timedelta(hours=1))
        )
        session.commit()
    assert jobs.requeue_lost(db, state.dispatcher, 60) == 1
    with db.session() as session:
        statuses = {job.id: job.status for job in session.scalars(select(Job))}
        assert statuses[beating] == "running" and statuses[lost] == "queued"
        assert statuses[coordinator.id] == "running"
        job = session.get(Job, lost)
        assert job.dispatched_at is not None and job.heartbeat_at is None
        assert "was lost" in job.message
    assert jobs.requeue_lost(db, state.dispatcher, 60) == 0


# --- eddyscope up --------------------------------------------------------------------------


def test_up_restarts_its_worker_when_it_dies(tmp_path, redis_url):
    port = free_port()
    log = tmp_path / "up.log"
    env = _env(tmp_path, redis_url)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def wait_log(pattern: str, count: int = 1, timeout: float = 90.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            found = re.findall(pattern, log.read_text())
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} ×{count} in:\n{log.read_text()[-4000:]}")

    try:
        (pid,) = wait_log(r"worker started \(pid (\d+)\)")
        wait_log(r" ready\.")
        os.killpg(int(pid), signal.SIGKILL)
        wait_log(r"exited with status -9 .*restarting it in")
        pids = wait_log(r"worker started \(pid (\d+)\)", 2)
        assert pids[1] != pid
        wait_log(r" ready\.", 2)
        job = httpx.post(
            base + "/api/jobs", json={"kind": "rollout", "params": {"steps": 2, "resolution": 32}}
        ).json()
        deadline = time.monotonic() + 60
        while (status := httpx.get(f"{base}/api/jobs/{job['id']}").json()["status"]) not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        assert status == "succeeded"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, log.read_text()[-4000:]


def test_a_worker_that_keeps_dying_is_restarted_with_a_growing_delay(capsys):
    from app.cli import WorkerSupervisor

    supervisor = WorkerSupervisor(
        [sys.executable, "-c", "raise SystemExit(3)"], stable_after_s=30, max_delay_s=4
    )
    supervisor.start()
    time.sleep(6)
    supervisor.stop()
    # Delays 1, 2, 4 s: at most three restarts in six seconds, not hundreds.
    assert 1 <= supervisor.restarts <= 3
    out = capsys.readouterr().out
    assert "exited with status 3" in out and "restarting it in 2 s" in out


def test_the_servers_outbox_sweep_requeues_and_sends_a_lost_job(tmp_path, redis_url):
    # The wiring, not the rule: the sweep the API's outbox thread runs every few seconds
    # puts a job whose worker stopped beating back in the queue and sends its message.
    from app.state import AppState

    settings = Settings(data_dir=tmp_path, broker_url=redis_url, lost_after_s=30)
    state = AppState.from_settings(settings)
    state.db.migrate()
    lost = _running_job(state.db, "gone@host", beat_age_s=31)
    beating = _running_job(state.db, "alive@host", beat_age_s=5)
    state.outbox.sweep()
    with state.db.session() as session:
        requeued, untouched = session.get(Job, lost), session.get(Job, beating)
        assert requeued.status == "queued" and requeued.dispatched_at is not None
        assert untouched.status == "running"
