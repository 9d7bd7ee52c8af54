"""Sharded dataset generation with two real worker processes: shards spread over workers,
the dataset reads back as one file with its parameters, the data do not depend on the
sharding, and a failed shard is rerun alone."""

from __future__ import annotations

import shutil
import time

import h5py
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from physics.formats.store import read_dataset
from tests.conftest import service_env
from tests.test_integration import submit, wait_for

pytestmark = pytest.mark.integration

PARAMS = {
    "n_trajectories": 8,
    "n_snapshots": 3,
    "resolution": 32,
    "interval": 0.1,
    "warmup": 0.5,
    "batch_size": 2,
    "seed": 4,
}


def shards_of(client, job_id: str) -> list[dict]:
    rows = client.get("/api/jobs", params={"parent_id": job_id}).json()
    return sorted(rows, key=lambda job: job["params"]["shard"])


def test_shards_run_on_two_workers_and_a_failed_shard_is_rerun_alone(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    from app.main import create_app

    with TestClient(create_app(settings, with_ui=False)) as client:
        env = service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url)
        start_worker(env)
        start_worker(env)
        # Two idle workers with prefetch 1 take the first two shards at once. Shard 2 can
        # only start once one of those is done, so there is time to make it fail: a folder
        # standing where its file must go makes the final rename fail, as a broken disk would.
        job_id = submit(client, "generate", shard_size=2, **PARAMS)
        parent = client.get(f"/api/jobs/{job_id}").json()
        assert parent["params"]["shards"] == 4
        assert [j["id"] for j in client.get("/api/jobs").json()] == [job_id]  # shards hidden
        dataset_id = parent["params"]["dataset_id"]
        artifacts = client.app.state.eddyscope.artifacts
        obstacle = artifacts.resolve(f"datasets/{dataset_id}/shard-00002.h5")
        obstacle.mkdir(parents=True)
        failed = wait_for(client, job_id)
        assert failed["status"] == "failed", failed
        assert "shard 2 failed" in failed["error"] and "Retry" in failed["error"]
        deadline = time.monotonic() + 60  # the other shards finish on their own
        while sum(s["status"] == "succeeded" for s in shards_of(client, job_id)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        shards = shards_of(client, job_id)
        assert [s["status"] for s in shards] == ["succeeded", "succeeded", "failed", "succeeded"]
        assert len({s["worker"] for s in shards}) == 2, "both workers should have taken shards"
        finished = {
            s["id"]: artifacts.resolve(s["result"]["path"]).stat().st_mtime_ns
            for s in shards
            if s["status"] == "succeeded"
        }

        shutil.rmtree(obstacle)
        assert client.post(f"/api/jobs/{job_id}/retry").json()["status"] == "running"
        done = wait_for(client, job_id)
        assert done["status"] == "succeeded", done
        shards = shards_of(client, job_id)
        assert [s["attempts"] for s in shards] == [1, 1, 2, 1]  # only the failed one reran
        for shard_id, mtime in finished.items():
            path = next(s["result"]["path"] for s in shards if s["id"] == shard_id)
            assert artifacts.resolve(path).stat().st_mtime_ns == mtime
        assert done["result"]["dataset_id"] == dataset_id and done["result"]["peak_rss_mb"] > 0
        assert client.post(f"/api/jobs/{job_id}/retry").status_code == 409

        dataset = client.get(f"/api/datasets/{dataset_id}").json()
        assert dataset["shape"] == [8, 3, 32, 32]
        data, attrs = read_dataset(artifacts.resolve(f"datasets/{dataset_id}.h5"))
        assert data.shape == (8, 3, 32, 32) and np.isfinite(data).all()
        assert attrs["flow"] == "ns2d-forced" and attrs["interval"] == 0.1 and attrs["seed"] == 4
        assert attrs["n_trajectories"] == 8 and attrs["warmup"] == 0.5

        # The same request cut into one shard gives the same trajectories.
        whole = wait_for(client, submit(client, "generate", shard_size=8, **PARAMS))
        again, _ = read_dataset(artifacts.resolve(f"datasets/{whole['result']['dataset_id']}.h5"))
        np.testing.assert_allclose(again, data, rtol=0, atol=1e-6)


def test_cancelling_a_generate_job_cancels_its_shards(tmp_path, redis_url):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    from app.main import create_app

    with TestClient(create_app(settings, with_ui=False)) as client:
        job_id = submit(client, "generate", shard_size=4, **PARAMS)
        cancelled = client.post(f"/api/jobs/{job_id}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert {s["status"] for s in shards_of(client, job_id)} == {"cancelled"}
        retried = client.post(f"/api/jobs/{job_id}/retry").json()
        assert retried["status"] == "running"
        assert {s["status"] for s in shards_of(client, job_id)} == {"queued"}


def test_flow_variants_initial_condition_families_and_schemes(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    from app.main import create_app

    with TestClient(create_app(settings, with_ui=False)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        artifacts = client.app.state.eddyscope.artifacts
        cases = [
            {"flow": "ns2d-forced", "nu": 1e-4, "scheme": "cnheun"},
            {"flow": "decaying2d", "initial_condition": "mcwilliams"},
            {"flow": "kolmogorov2d", "initial_condition": "filtered"},
        ]
        datasets = []
        for case in cases:
            job = wait_for(
                client,
                submit(
                    client,
                    "generate",
                    n_trajectories=2,
                    n_snapshots=3,
                    resolution=32,
                    interval=0.05,
                    **case,
                ),
            )
            assert job["status"] == "succeeded", job
            data, attrs = read_dataset(
                artifacts.resolve(f"datasets/{job['result']['dataset_id']}.h5")
            )
            assert data.shape == (2, 3, 32, 32) and np.isfinite(data).all()
            assert attrs["flow"] == case["flow"]
            assert attrs["nu"] == case.get("nu", attrs["nu"])
            assert attrs["scheme"] == case.get("scheme", "rk4cn")
            family = case.get("initial_condition", "grf")
            assert attrs["initial_condition"] == family and attrs["initial_condition_description"]
            datasets.append(job["result"]["dataset_id"])

        # A model trained on the ν = 1e-4 data is rolled out beside a ν = 1e-4 reference.
        train = wait_for(
            client,
            submit(
                client,
                "train",
                dataset_id=datasets[0],
                epochs=1,
                batch_size=2,
                config={"width": 4, "modes": 4, "n_layers": 1},
            ),
        )
        assert train["status"] == "succeeded", train
        rollout = wait_for(
            client,
            submit(client, "rollout", model_id=train["result"]["model_id"], resolution=32, steps=2),
        )
        assert rollout["status"] == "succeeded", rollout
        with h5py.File(artifacts.resolve(f"rollouts/{rollout['result']['rollout_id']}.h5")) as f:
            assert f.attrs["nu"] == 1e-4
