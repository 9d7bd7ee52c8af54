"""`eddyscope up` on a machine with no services: it picks the embedded broker, serves the UI
and the API, runs a job on its own worker, and Ctrl-C stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEAD_REDIS, ROOT, free_port, service_env

pytestmark = pytest.mark.integration


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_serves_ui_runs_example_rollout_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = service_env(tmp_path, EDDYSCOPE_REDIS_PROBE_URL=DEAD_REDIS)
    log = tmp_path / "up.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() - started < 90, log.read_text()
            try:
                page = httpx.get(base + "/", timeout=2)
                if page.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        print(f"eddyscope up answered after {time.monotonic() - started:.1f} s")
        assert "Eddyscope" in page.text and "_dash-config" in page.text
        text = log.read_text()
        assert "embedded SQLite broker" in text and f"http://127.0.0.1:{port}/" in text

        examples = [
            ic
            for ic in httpx.get(base + "/api/initial-conditions").json()
            if ic["name"].startswith("example")
        ]
        assert examples and examples[0]["shape"] == [64, 64]
        job = httpx.post(
            base + "/api/jobs",
            json={
                "kind": "rollout",
                "params": {"initial_condition_id": examples[0]["id"], "steps": 4},
            },
        ).json()
        deadline = time.monotonic() + 120
        while (status := httpx.get(f"{base}/api/jobs/{job['id']}").json()["status"]) not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert status == "succeeded", log.read_text()

        # The shipped demo model is registered too and rolls out from the example at once.
        demo = [m for m in httpx.get(base + "/api/models").json() if m["name"].startswith("demo")]
        assert demo and demo[0]["interval"] == 1.0 and demo[0]["resolution"] == 64
        job = httpx.post(
            base + "/api/jobs",
            json={
                "kind": "rollout",
                "params": {
                    "initial_condition_id": examples[0]["id"],
                    "model_id": demo[0]["id"],
                    "steps": 4,
                },
            },
        ).json()
        deadline = time.monotonic() + 120
        while (done := httpx.get(f"{base}/api/jobs/{job['id']}").json())["status"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert done["status"] == "succeeded", done
        metrics = httpx.get(f"{base}/api/rollouts/{done['result']['rollout_id']}/metrics").json()
        # Four time units out, the demo operator still tracks the solver closely.
        assert len(metrics) == 5 and metrics[-1]["rel_l2"] < 0.2, metrics[-1]["rel_l2"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    text = log.read_text()
    assert code == 0, text
    assert "worker stopped" in text
    # The worker ran in its own process group; nothing of it is left.
    worker_pids = [
        int(line.split()[0])
        for line in subprocess.run(
            ["ps", "-eo", "pid,args"], capture_output=True, text=True
        ).stdout.splitlines()
        if "workers.worker_app" in line and str(tmp_path) in line
    ]
    assert worker_pids == []


# How a producer run by its trainer is listed (``workers.online_producers.IN_TRAINER``).
IN_TRAINER = " (child of the trainer)"


def _start_up(tmp_path, **env_extra: str) -> tuple[subprocess.Popen, str, object]:
    """`eddyscope up` as a newcomer runs it (its one worker, default concurrency), on the
    embedded broker; returns the process, its base URL and its log path once it answers."""
    port = free_port()
    env = service_env(tmp_path, EDDYSCOPE_REDIS_PROBE_URL=DEAD_REDIS, **env_extra)
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return process, base, log
        except httpx.HTTPError:
            time.sleep(0.2)


def _stop_up(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_up_runs_an_online_training_job_on_its_one_worker_and_resumes_a_killed_trainer(
    tmp_path,
):
    """The default `eddyscope up` has one worker slot, which the trainer takes: its
    producers wait in the queue until the trainer runs them in child processes of its own
    (``workers.online_producers``), listed with where they run. The trainer, SIGKILLed
    after its first epoch, is run again and resumes from its checkpoint with the producer
    its killed attempt had started, which kept streaming; none is made twice."""
    from app.db.session import get_database
    from app.db.tables import Job
    from app.settings import Settings
    from tests.test_integration import submit, wait_for
    from tests.test_training_jobs import events_of

    process, base, log = _start_up(
        tmp_path, EDDYSCOPE_HEARTBEAT_EVERY_S="1", EDDYSCOPE_LOST_AFTER_S="10"
    )
    started = time.monotonic()
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            generated = wait_for(
                client,
                submit(
                    client,
                    "generate",
                    n_trajectories=2,
                    n_snapshots=6,
                    resolution=16,
                    interval=0.5,
                    batch_size=2,
                    seed=3,
                ),
            )
            assert generated["status"] == "succeeded", generated
            job_id = submit(
                client,
                "train",
                dataset_id=generated["result"]["dataset_id"],
                epochs=4,
                batch_size=4,
                lr=1e-2,
                events_every=5,
                config={"width": 8, "modes": 4, "n_layers": 2},
                online={
                    "producers": 2,
                    "trajectories": 24,
                    "buffer_size": 16,
                    "min_fill": 8,
                    "stream_size": 8,
                    # Long enough (400 steps of a tiny model) that the trainer is still
                    # training when it is killed after its first epoch.
                    "steps_per_epoch": 100,
                    "solver_batch": 2,
                    # Without the trainer running them, nothing would ever start: fail fast.
                    "start_timeout_s": 120,
                },
            )
            deadline = time.monotonic() + 240
            while not events_of(client, job_id, "epoch"):
                job = client.get(f"/api/jobs/{job_id}").json()
                assert job["status"] in ("queued", "running"), (job, log.read_text()[-3000:])
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
            db = get_database(Settings(data_dir=tmp_path).resolved_database_url)
            with db.session() as session:
                trainer_pid = session.get(Job, job_id).worker_pid
            os.kill(trainer_pid, signal.SIGKILL)

            job = wait_for(client, job_id, timeout=300)
            assert job["status"] == "succeeded", (job, log.read_text()[-3000:])
            assert job["attempts"] == 2
            (resumed,) = events_of(client, job_id, "resumed")
            assert resumed["epoch"] >= 1
            producers = client.get("/api/jobs", params={"parent_id": job_id}).json()
            assert len(producers) == 2  # the resumed trainer kept the producers it had
            # Only the trainer's children could stream to the end: a producer the one
            # worker slot took while the trainer waited gave the slot back.
            done = [p for p in producers if p["status"] == "succeeded"]
            assert done and all(p["worker"].endswith(IN_TRAINER) for p in done), producers
            adopted = events_of(client, job_id, "producer_adopted")
            assert adopted and {a["producer"] for a in adopted} <= {p["id"] for p in producers}
            # The Train page's list names where each producer runs. The trainer looks every
            # second and reports the list when it changed: on a loaded machine a producer
            # can start and finish between two looks, so it may be listed only once done.
            listed = [q for e in events_of(client, job_id, "producers") for q in e["producers"]]
            assert any(
                q["status"] in ("running", "succeeded") and q["worker"].endswith(IN_TRAINER)
                for q in listed
            ), listed
            last = events_of(client, job_id, "online")[-1]
            assert last["stage"] == "done" and last["received"] > 0
            model = client.get(f"/api/models/{job['result']['model_id']}").json()
            assert [e["epoch"] for e in model["metrics"]["history"]] == [1, 2, 3, 4]
            assert not (tmp_path / "scratch" / "online" / job_id).exists()
            print(
                f"online job on one worker slot: {time.monotonic() - started:.0f} s, "
                f"resumed at epoch {resumed['epoch']}, {len(adopted)} producer(s) run by "
                f"the trainer, val {model['metrics']['val_rel_l2']:.3f} vs persistence "
                f"{model['metrics']['persistence_rel_l2']:.3f}"
            )
    finally:
        code = _stop_up(process)
    assert code == 0, log.read_text()
    # No producer child outlives the job (nor `up`).
    for event in adopted:
        assert not _alive(event["pid"]), event


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
