"""The whole job path through the REST API with a real Celery worker process:
generate → train → rollout, cancellation, and the same path on the embedded broker."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.conftest import DEAD_REDIS, service_env

pytestmark = pytest.mark.integration


def wait_for(client, job_id: str, statuses=("succeeded", "failed", "cancelled"), timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")


def submit(client, kind: str, **params) -> str:
    response = client.post("/api/jobs", json={"kind": kind, "params": params})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def run_pipeline(client) -> None:
    generate = wait_for(
        client,
        submit(
            client,
            "generate",
            n_trajectories=6,
            n_snapshots=6,
            resolution=32,
            interval=1.0,
            batch_size=3,
            seed=3,
        ),
    )
    assert generate["status"] == "succeeded", generate
    dataset_id = generate["result"]["dataset_id"]
    dataset = next(d for d in client.get("/api/datasets").json() if d["id"] == dataset_id)
    assert dataset["shape"] == [6, 6, 32, 32] and dataset["params"]["interval"] == 1.0

    train = wait_for(
        client,
        submit(
            client,
            "train",
            dataset_id=dataset_id,
            epochs=12,
            batch_size=5,
            lr=1e-2,
            config={"width": 8, "modes": 6, "n_layers": 2},
        ),
    )
    assert train["status"] == "succeeded", train
    model = client.get(f"/api/models/{train['result']['model_id']}").json()
    assert model["arch"] == "fno2d" and model["interval"] == 1.0 and model["resolution"] == 32
    assert 0 < model["parameter_count"] < 50_000
    # One validation step of the trained operator beats carrying the last frame forward.
    assert model["metrics"]["val_rel_l2"] < model["metrics"]["persistence_rel_l2"]
    events = client.get(f"/api/jobs/{train['id']}/events").json()
    assert any(e["type"] == "epoch" and "val_rel_l2" in e["payload"] for e in events)

    w0 = np.random.default_rng(5).standard_normal((32, 32)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, w0)
    ic = client.post("/api/initial-conditions", files={"file": ("w0.npy", buffer.getvalue())})
    assert ic.status_code == 201, ic.text

    steps = 5
    rollout_job = wait_for(
        client,
        submit(
            client,
            "rollout",
            initial_condition_id=ic.json()["id"],
            model_id=model["id"],
            steps=steps,
        ),
    )
    assert rollout_job["status"] == "succeeded", rollout_job
    rollout_id = rollout_job["result"]["rollout_id"]
    rollout = client.get(f"/api/rollouts/{rollout_id}").json()
    assert rollout["frames"] == steps + 1 and rollout["status"] == "succeeded"
    assert rollout["interval"] == 1.0  # the model's own step

    metrics = client.get(f"/api/rollouts/{rollout_id}/metrics").json()
    assert [m["step"] for m in metrics] == list(range(steps + 1))
    for m in metrics:
        assert len(m["spectrum_model"]) == len(m["spectrum_reference"]) == len(m["k"])
        assert m["energy_model"] > 0 and m["enstrophy_reference"] > 0 and m["rel_l2"] >= 0
    assert metrics[0]["rel_l2"] == 0  # both start from the same field

    frames = {}
    for source in ("model", "reference", "error"):
        response = client.get(
            f"/api/rollouts/{rollout_id}/frames/{steps}", params={"source": source}
        )
        assert response.status_code == 200
        frames[source] = np.load(io.BytesIO(response.content), allow_pickle=False)
        assert frames[source].shape == (32, 32)
    np.testing.assert_allclose(frames["error"], frames["model"] - frames["reference"], atol=1e-6)
    np.testing.assert_array_equal(
        np.load(
            io.BytesIO(
                client.get(
                    f"/api/rollouts/{rollout_id}/frames/0", params={"source": "reference"}
                ).content
            )
        ),
        w0,
    )
    assert client.get(f"/api/rollouts/{rollout_id}/frames/{steps + 1}").status_code == 404
    assert (
        client.get(f"/api/rollouts/{rollout_id}/frames/0", params={"source": "x"}).status_code
        == 422
    )

    # A job that cannot run fails with a message a user can act on, and the worker goes on.
    state = client.app.state.eddyscope
    shutil.rmtree(state.artifacts.resolve(state.artifacts.model_dir(model["id"])))
    failed = wait_for(
        client, submit(client, "rollout", model_id=model["id"], resolution=32, steps=2)
    )
    assert failed["status"] == "failed"
    assert "missing from the artifact store" in failed["error"], failed


def test_generate_train_rollout_on_redis_and_postgres(
    tmp_path, redis_url, postgres_url, start_worker
):
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(
            service_env(
                tmp_path, EDDYSCOPE_DATABASE_URL=postgres_url, EDDYSCOPE_BROKER_URL=redis_url
            )
        )
        run_pipeline(client)


def test_cancel_stops_a_running_rollout(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        worker = start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        job_id = submit(client, "rollout", steps=10_000, resolution=64, interval=0.05)
        wait_for(client, job_id, statuses=("running",), timeout=60)
        rollout_id = _wait_result(client, job_id)["rollout_id"]
        while len(client.get(f"/api/rollouts/{rollout_id}/metrics").json()) < 3:
            time.sleep(0.1)
        started = time.monotonic()
        assert client.post(f"/api/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        # The worker stops writing within a few seconds; the job stays cancelled.
        time.sleep(3)
        count = len(client.get(f"/api/rollouts/{rollout_id}/metrics").json())
        time.sleep(2)
        assert len(client.get(f"/api/rollouts/{rollout_id}/metrics").json()) == count
        assert count < 10_000
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and time.monotonic() - started < 10
        # The worker is free again: a short job runs to completion.
        follow = wait_for(client, submit(client, "rollout", steps=2, resolution=32), timeout=60)
        assert follow["status"] == "succeeded", worker.output()


def test_pipeline_on_embedded_broker_without_redis(tmp_path, start_worker, monkeypatch):
    # No broker configured and nothing answering at the Redis probe address: both the API and
    # the worker fall back to the SQLite broker file in the data directory.
    monkeypatch.setenv("EDDYSCOPE_REDIS_PROBE_URL", DEAD_REDIS)
    settings = Settings(data_dir=tmp_path)
    with TestClient(_app(settings)) as client:
        assert client.app.state.eddyscope.broker.kind == "embedded"
        assert "embedded" in client.get("/api/health").json()["broker"]
        worker = start_worker(service_env(tmp_path, EDDYSCOPE_REDIS_PROBE_URL=DEAD_REDIS))
        assert "embedded SQLite broker" in worker.output()
        run_pipeline(client)
        assert (Path(tmp_path) / "broker.sqlite").exists()


def _wait_result(client, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = client.get(f"/api/jobs/{job_id}").json()["result"]
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("the job never published its result ids")


def _app(settings: Settings):
    from app.main import create_app

    return create_app(settings, with_ui=False)
