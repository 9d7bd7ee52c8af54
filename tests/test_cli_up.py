"""`eddyscope up` on a machine with no services: it picks the embedded broker, serves the UI
and the API, runs a job on its own worker, and Ctrl-C stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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
