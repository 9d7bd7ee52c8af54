"""Channel rollouts through the API with a real worker: a 3D model trained on channel data
beside the channel solver, and the solver alone from an uploaded snapshot; frames of
velocity, metrics and running wall-unit statistics of each source."""

from __future__ import annotations

import io

import h5py
import numpy as np
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.conftest import service_env
from tests.test_channel_generation import generate
from tests.test_integration import _app, submit, wait_for


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
