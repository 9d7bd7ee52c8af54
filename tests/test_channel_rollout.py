"""Channel rollouts through the API with a real worker: a 3D model trained on channel data
beside the channel solver, and the solver alone from an uploaded snapshot; frames of
velocity, metrics and running wall-unit statistics of each source; in this process, the
reported metrics recomputed from the stored frames."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Dataset, Model
from app.settings import Settings
from models.channel_skill import data_statistics, long_horizon_skill
from models.checkpoint import load_model
from models.registry import build_model
from tests.conftest import service_env
from tests.test_channel_generation import generate
from tests.test_compare import register_model, run_in_process
from tests.test_integration import _app, submit, wait_for
from workers.runners.rollout import run_rollout
from workers.runners.train import load_trajectories


def test_channel_rollouts(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id = generate(client, n_trajectories=3, n_snapshots=4)["result"]["dataset_id"]
        train = wait_for(
            client,
            submit(
                client,
                "train",
                dataset_id=dataset_id,
                arch="fno3d",
                config={
                    "width": 4,
                    "modes_x": 2,
                    "modes_y": 2,
                    "modes_z": 2,
                    "n_layers": 1,
                    "pad_y": 2,
                },
                epochs=1,
            ),
        )
        assert train["status"] == "succeeded", train["error"]
        model_id = train["result"]["model_id"]
        check_long_horizon_skill(client, model_id)

        job = wait_for(
            client, submit(client, "rollout", model_id=model_id, steps=3, seed=2), timeout=180
        )
        assert job["status"] == "succeeded", job["error"]
        rollout_id = job["result"]["rollout_id"]
        rollout = client.get(f"/api/rollouts/{rollout_id}").json()
        assert rollout["flow"] == "channel3d" and rollout["frames"] == 4
        frames = {}
        for source in ("model", "reference", "error"):
            response = client.get(f"/api/rollouts/{rollout_id}/frames/3", params={"source": source})
            assert response.status_code == 200, response.text
            frames[source] = np.load(io.BytesIO(response.content), allow_pickle=False)
            assert frames[source].shape == (3, 8, 12, 8)
        np.testing.assert_allclose(
            frames["error"], frames["model"] - frames["reference"], atol=1e-5
        )
        events = client.get(f"/api/jobs/{job['id']}/events").json()
        metrics = [e["payload"] for e in events if e["type"] == "metrics"]
        assert [m["step"] for m in metrics] == [0, 1, 2, 3]
        assert metrics[0]["rel_l2"] == 0 and metrics[-1]["rel_l2"] > 0
        stats = [e["payload"] for e in events if e["type"] == "channel_stats"]
        assert {s["source"] for s in stats} == {"model", "reference"}
        assert stats[-1]["stats"]["n_snapshots"] == 4

        # The solver alone from a snapshot uploaded from the dataset (its own y points).
        state = client.app.state.eddyscope
        with h5py.File(state.artifacts.resolve(f"datasets/{dataset_id}.h5"), "r") as f:
            velocity = f["t1_fields/velocity"][0, -1]
            y = f["dimensions/y"][...]
        buffer = io.BytesIO()
        np.savez(buffer, velocity=velocity, y=y, nu=np.float64(1 / 180))
        upload = client.post(
            "/api/initial-conditions",
            files={"file": ("snapshot.npz", buffer.getvalue())},
            data={"flow": "channel3d"},
        )
        assert upload.status_code == 201, upload.text
        solo = wait_for(
            client,
            submit(
                client, "rollout", initial_condition_id=upload.json()["id"], steps=2, interval=0.01
            ),
        )
        assert solo["status"] == "succeeded", solo["error"]
        first = client.get(
            f"/api/rollouts/{solo['result']['rollout_id']}/frames/0", params={"source": "reference"}
        )
        restored = np.load(io.BytesIO(first.content), allow_pickle=False)
        # u and w come back as uploaded; v is re-projected onto the divergence-free fields.
        np.testing.assert_allclose(restored[0], np.moveaxis(velocity, -1, 0)[0], atol=1e-5)

        # A 2D initial condition cannot start a channel model.
        buffer = io.BytesIO()
        np.save(buffer, np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32))
        field_2d = client.post(
            "/api/initial-conditions", files={"file": ("w.npy", buffer.getvalue())}
        )
        assert field_2d.status_code == 201, field_2d.text
        refused = client.post(
            "/api/jobs",
            json={
                "kind": "rollout",
                "params": {"initial_condition_id": field_2d.json()["id"], "model_id": model_id},
            },
        )
        assert refused.status_code == 422
        assert "trained on 'channel3d'" in refused.json()["detail"]


def check_long_horizon_skill(client: TestClient, model_id: str) -> None:
    """The trained channel model's long-horizon skill (the train job's default: ten times
    the 3 steps of a 4-snapshot trajectory) recomputed here from the stored model and data:
    the same rollout from the first held-out trajectory, scored against every stored frame."""
    state = client.app.state.eddyscope
    row_out = client.get(f"/api/models/{model_id}").json()
    skill = row_out["metrics"]["long_horizon"]
    assert skill["steps"] == 30
    assert skill["completed"] + (skill["stopped_at"] is not None) <= 30
    with state.db.session() as session:
        row = session.get(Model, model_id)
        dataset = session.get(Dataset, row.dataset_id)
    model, info = load_model(state.artifacts.resolve(row.path))
    data, attrs = load_trajectories(state.artifacts.resolve(dataset.path))
    with h5py.File(state.artifacts.resolve(dataset.path), "r") as f:
        y = f["dimensions/y"][...]
    # The row's one grid size is the stored nx (not the component axis of the 6-D shape).
    assert row_out["resolution"] == data.shape[3] == 8
    held = info["metadata"]["val_trajectories"][0]
    nu, lx, lz = (float(attrs[k]) for k in ("nu", "lx", "lz"))
    again = long_horizon_skill(
        model, data[held, :1][None], data_statistics(data, y, nu, lx, lz), y, nu, lx, lz, 30
    )
    assert again["stopped_at"] == skill["stopped_at"]
    assert again["completed"] == skill["completed"]
    for key in ("errors", "window_errors"):
        if again[key] is None:
            assert skill[key] is None
            continue
        for profile, value in again[key].items():
            assert skill[key][profile] == pytest.approx(value, rel=1e-4, abs=1e-7), profile


def test_channel_rollout_metrics_equal_numpy_recomputations_from_the_stored_frames(tmp_path):
    """The channel rollout's metrics (workers/runners/rollout_channel.py, in this process)
    recomputed in numpy from the HDF5 file it wrote: rel_l2 = ‖model − reference‖ /
    ‖reference‖ over all components and points, energies ½ × the point mean of |u|² (the
    runner's definition: a plain mean over the (x, y_c, z) points, not weighted by Δy). The
    model is an untrained fno3d registered as if trained on an 8 × 12 × 8 channel dataset."""
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    artifacts = ArtifactStore(tmp_path / "artifacts")
    with db.session() as session:
        params = {"channel_grid": [8, 12, 8], "re_tau": 180.0, "closure": "none"}
        session.add(
            Dataset(id="channel", name="c", flow="channel3d", params=params, shape=[1], path="x")
        )
        session.commit()
    config = {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1, "pad_y": 2}
    torch.manual_seed(0)
    model_id = register_model(
        db,
        artifacts,
        build_model("fno3d", config),
        config,
        name="untrained",
        arch="fno3d",
        flow="channel3d",
        resolution=8,
        interval=0.02,
        dataset_id="channel",
    )
    steps = 3
    job_id, result = run_in_process(
        db, artifacts, "rollout", {"model_id": model_id, "steps": steps, "seed": 2}, run_rollout
    )
    with db.session() as session:
        metrics = [e.payload for e in jobs.events_after(session, job_id, 0, 100, "metrics")]
    assert [m["step"] for m in metrics] == list(range(steps + 1))
    path = artifacts.resolve(artifacts.rollout(result["rollout_id"]))
    with h5py.File(path, "r") as f:
        reference = np.float64(f["reference/velocity"][...])
        model = np.float64(f["model/velocity"][...])
    assert reference.shape == model.shape == (steps + 1, 3, 8, 12, 8)
    for m, ref, pred in zip(metrics, reference, model, strict=True):
        where = f"step {m['step']}"
        rel_l2 = np.sqrt(((pred - ref) ** 2).sum() / (ref**2).sum())
        assert m["rel_l2"] == pytest.approx(rel_l2, rel=1e-5, abs=1e-7), where
        energy_reference = 0.5 * (ref**2).sum(axis=0).mean()
        energy_model = 0.5 * (pred**2).sum(axis=0).mean()
        assert m["energy_reference"] == pytest.approx(energy_reference, rel=1e-5), where
        assert m["energy_model"] == pytest.approx(energy_model, rel=1e-5), where
    assert metrics[0]["rel_l2"] == 0 and metrics[-1]["rel_l2"] > 0.01
