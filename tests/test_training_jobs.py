"""Training as a job a researcher can trust with a week of GPU time: a worker killed with
SIGKILL mid-training is replaced and the job resumes from its last checkpoint; a cancel stops
within seconds and keeps the checkpoint; data-parallel training runs through the same API.
Real Redis, a real Celery worker process, SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for

pytestmark = pytest.mark.integration

SMALL_FNO = {"width": 6, "modes": 4, "n_layers": 2}


def make_dataset(client) -> str:
    job = wait_for(
        client,
        submit(
            client,
            "generate",
            n_trajectories=6,
            n_snapshots=6,
            resolution=32,
            interval=1.0,
            batch_size=6,
            seed=11,
        ),
    )
    assert job["status"] == "succeeded", job
    return job["result"]["dataset_id"]


def events_of(client, job_id: str, type_: str | None = None) -> list[dict]:
    events = client.get(f"/api/jobs/{job_id}/events").json()
    return [e["payload"] for e in events if type_ is None or e["type"] == type_]


def wait_for_epochs(client, job_id: str, n: int, timeout: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        epochs = events_of(client, job_id, "epoch")
        if len(epochs) >= n:
            return epochs
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} epochs after {timeout}s: {events_of(client, job_id)}")


def pool_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_a_killed_worker_process_resumes_training_from_its_checkpoint(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        worker = start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id = make_dataset(client)
        epochs = 25
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
        (child,) = pool_children(worker.process.pid)  # the prefork process running the job
        os.kill(child, signal.SIGKILL)

        job = wait_for(client, job_id, timeout=240)
        assert job["status"] == "succeeded", (job, worker.output()[-3000:])
        resumed = events_of(client, job_id, "resumed")
        assert len(resumed) == 1 and resumed[0]["epoch"] >= 2, events_of(client, job_id)
        assert job["attempts"] == 2
        # Epochs before the kill came back from the checkpoint; none was trained twice
        # after the resume, and the registered history is complete.
        model = client.get(f"/api/models/{job['result']['model_id']}").json()
        history = model["metrics"]["history"]
        assert [e["epoch"] for e in history] == list(range(1, epochs + 1))
        assert model["metrics"]["resumed_from_epoch"] == resumed[0]["epoch"]
        after = [e["epoch"] for e in events_of(client, job_id, "epoch")]
        assert after[-(epochs - resumed[0]["epoch"]) :] == list(
            range(resumed[0]["epoch"] + 1, epochs + 1)
        )
        assert 0 < model["metrics"]["val_rel_l2"] < 1
        # The training state is dropped once the model is registered.
        state = client.app.state.eddyscope
        assert not state.artifacts.resolve(state.artifacts.training_checkpoints(job_id)).exists()


def test_cancel_stops_training_within_seconds_and_keeps_the_checkpoint(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id = make_dataset(client)
        job_id = submit(
            client, "train", dataset_id=dataset_id, epochs=500, batch_size=2, config=SMALL_FNO
        )
        wait_for_epochs(client, job_id, 1)
        started = time.monotonic()
        assert client.post(f"/api/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        time.sleep(2)
        count = len(events_of(client, job_id))
        time.sleep(2)
        assert len(events_of(client, job_id)) == count  # nothing trains any more
        assert client.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
        assert time.monotonic() - started < 10
        state = client.app.state.eddyscope
        checkpoints = state.artifacts.resolve(state.artifacts.training_checkpoints(job_id))
        latest = json.loads((checkpoints / "latest.json").read_text())["directory"]
        assert (checkpoints / latest / "state.safetensors").stat().st_size > 0
        assert client.get("/api/models").json() == [] or all(
            m["job_id"] != job_id for m in client.get("/api/models").json()
        )


def test_data_parallel_training_through_the_api(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id = make_dataset(client)
        job = wait_for(
            client,
            submit(
                client,
                "train",
                dataset_id=dataset_id,
                epochs=3,
                batch_size=4,
                gpus=2,
                config=SMALL_FNO,
                events_every=2,
            ),
            timeout=240,
        )
        assert job["status"] == "succeeded", job["error"]
        train_events = events_of(client, job["id"], "train")
        assert train_events and all(e["ranks"] == 2 for e in train_events)
        model = client.get(f"/api/models/{job['result']['model_id']}").json()
        assert model["metrics"]["training"]["gpus"] == 2
        assert [e["epoch"] for e in model["metrics"]["history"]] == [1, 2, 3]


# Tiny configurations of every registered architecture: each must train through the API and
# be registered with its parameter count (learning quality is each model's own test).
TINY = {
    "fno2d": {"width": 4, "modes": 4, "n_layers": 1},
    "ifno": {"width": 4, "modes": 4, "n_iterations": 2},
    "ifno3d": {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_iterations": 2, "pad_y": 2},
    "sfno": {
        "history": 2,
        "out_steps": 2,
        "width": 4,
        "modes": 4,
        "modes_t": 2,
        "n_layers": 1,
        "latent_steps": 2,
    },
    "unet2d": {"width": 4, "levels": 1, "groups": 2},
    "factformer2d": {"dim": 8, "heads": 1, "head_dim": 4, "n_layers": 1},
    "ifactformer2d": {"dim": 8, "heads": 1, "head_dim": 4, "n_iterations": 2},
    "fno3d": {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1, "pad_y": 2},
    "factformer3d": {"dim": 12, "heads": 1, "head_dim": 4, "n_layers": 1},
    "ifactformer3d": {"dim": 12, "heads": 1, "head_dim": 4, "n_iterations": 2},
}


def write_velocity_dataset(client, n_traj=3, n_time=5, space=(8, 9, 6)) -> str:
    """A small 3D velocity dataset in The Well's layout (components last), registered like a
    generated one: the 3D models' path through load_trajectories and the job checks."""
    import h5py
    import numpy as np

    from app.db.tables import Dataset

    state = client.app.state.eddyscope
    relative = state.artifacts.dataset("velocity3d")
    path = state.artifacts.resolve(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    velocity = rng.standard_normal((n_traj, n_time, *space, 3)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs["interval"] = 0.5
        f.create_group("t1_fields").create_dataset("velocity", data=velocity)
    with state.db.session() as session:
        session.add(
            Dataset(
                id="velocity3d",
                name="random velocity",
                flow="ns2d-forced",
                params={"interval": 0.5},
                shape=list(velocity.shape),
                path=relative,
            )
        )
        session.commit()
    return "velocity3d"


def test_every_architecture_trains_through_the_api(tmp_path, redis_url, start_worker):
    from models.registry import MODELS, count_parameters

    assert set(TINY) == set(MODELS)  # a new architecture must join this test
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_2d = make_dataset(client)
        dataset_3d = write_velocity_dataset(client)
        jobs = {}
        for arch, config in TINY.items():
            dataset = dataset_3d if MODELS[arch].dims == 3 else dataset_2d
            jobs[arch] = submit(
                client,
                "train",
                dataset_id=dataset,
                arch=arch,
                config=config,
                epochs=1,
                batch_size=4,
            )
        models = {}
        for arch, job_id in jobs.items():
            job = wait_for(client, job_id, timeout=240)
            assert job["status"] == "succeeded", (arch, job["error"])
            models[arch] = client.get(f"/api/models/{job['result']['model_id']}").json()
        listed = {m["id"] for m in client.get("/api/models").json()}
        for arch, model in models.items():
            assert model["id"] in listed and model["arch"] == arch
            channels = 3 if MODELS[arch].dims == 3 else 1
            expected = count_parameters(arch, {**TINY[arch], "channels": channels})
            assert model["parameter_count"] == expected, arch
            assert model["metrics"]["val_rel_l2"] > 0


def test_spectral_fine_tuning_of_a_spatiotemporal_fno(tmp_path, redis_url, start_worker):
    """Spectral-Refiner's recipe through the API: train an SFNO, then fine-tune it under the
    H⁻¹ loss with its output layer rebuilt with more modes."""
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id = make_dataset(client)
        base_job = wait_for(
            client,
            submit(
                client, "train", dataset_id=dataset_id, arch="sfno", config=TINY["sfno"], epochs=1
            ),
        )
        assert base_job["status"] == "succeeded", base_job["error"]
        base = client.get(f"/api/models/{base_job['result']['model_id']}").json()

        refused = client.post(
            "/api/jobs",
            json={
                "kind": "finetune",
                "params": {"model_id": base["id"], "dataset_id": dataset_id, "output_modes": 2},
            },
        )
        assert refused.status_code == 202  # refusal of fewer modes happens in the worker
        failed = wait_for(client, refused.json()["id"])
        assert failed["status"] == "failed" and "modes" in failed["error"]

        job = wait_for(
            client,
            submit(
                client,
                "finetune",
                model_id=base["id"],
                dataset_id=dataset_id,
                output_modes=6,
                loss="h-1",
                epochs=1,
            ),
        )
        assert job["status"] == "succeeded", job["error"]
        tuned = client.get(f"/api/models/{job['result']['model_id']}").json()
        assert tuned["arch"] == "sfno" and tuned["config"]["out_modes"] == 6
        assert tuned["parameter_count"] > base["parameter_count"]
        assert tuned["metrics"]["training"]["loss"] == "h-1"

        demo_like = wait_for(
            client,
            submit(client, "train", dataset_id=dataset_id, config=TINY["fno2d"], epochs=1),
        )
        response = client.post(
            "/api/jobs",
            json={
                "kind": "finetune",
                "params": {
                    "model_id": demo_like["result"]["model_id"],
                    "dataset_id": dataset_id,
                    "output_modes": 8,
                },
            },
        )
        assert response.status_code == 422
        assert "only a spatiotemporal FNO" in response.json()["detail"]
