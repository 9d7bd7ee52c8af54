"""Channel datasets through the same shard machinery as the 2D flows: a generate job on
channel3d with a real worker, the stored layout, live statistics, per-trajectory seeds, and
the 422 sentences. Plus the cell-centring and x–z filtering the datasets are stored with."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.settings import Settings
from physics.channel.fields import filter_xz
from physics.channel.solver import ChannelConfig, ChannelSolver
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for
from workers.runners.train import load_trajectories

GRID = [8, 12, 8]


def test_cell_centring_interpolates_v_from_the_faces():
    solver = ChannelSolver(ChannelConfig(nx=8, ny=12, nz=8, dtype=torch.float64))
    u = solver.initial_condition(2, seed=1, dtype=torch.float64)
    centred = solver.grid.to_centres(u)
    torch.testing.assert_close(centred[:, 0], u[:, 0])
    torch.testing.assert_close(centred[:, 2], u[:, 2])
    v = u[:, 1]
    torch.testing.assert_close(centred[:, 1, :, :-1], 0.5 * (v[:, :, :-1] + v[:, :, 1:]))
    torch.testing.assert_close(centred[:, 1, :, -1], 0.5 * v[:, :, -1])  # upper wall v = 0


def test_x_z_filter_keeps_the_modes_both_grids_hold():
    x = torch.arange(16, dtype=torch.float64) * (2 * math.pi / 16)
    z = torch.arange(12, dtype=torch.float64) * (2 * math.pi / 12)
    kept = torch.cos(2 * x)[:, None, None] * torch.sin(3 * z)[None, None, :] * torch.ones(1, 5, 1)
    dropped = torch.cos(7 * x)[:, None, None] * torch.ones(1, 5, 12)
    out = filter_xz(kept + dropped, 8, 8)
    x8 = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    expected = (
        torch.cos(2 * x8)[:, None, None] * torch.sin(3 * x8)[None, None, :] * torch.ones(1, 5, 1)
    )
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="finer"):
        filter_xz(kept, 32, 8)


def generate(client, **params) -> dict:
    base = dict(
        flow="channel3d",
        channel_grid=GRID,
        n_trajectories=2,
        n_snapshots=3,
        interval=0.02,
        warmup=0.02,
        batch_size=1,
        seed=5,
    )
    job = wait_for(client, submit(client, "generate", **{**base, **params}), timeout=240)
    assert job["status"] == "succeeded", job["error"]
    return job


def test_channel_dataset_through_the_api(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        two_shards = generate(client, shard_size=1, closure="smagorinsky", output_grid=[4, 4])
        one_shard = generate(client, shard_size=2, closure="smagorinsky", output_grid=[4, 4])

        datasets = {d["id"]: d for d in client.get("/api/datasets").json()}
        dataset = datasets[two_shards["result"]["dataset_id"]]
        assert dataset["flow"] == "channel3d"
        assert dataset["shape"] == [2, 3, 4, 12, 4, 3]
        assert dataset["params"]["closure"] == "smagorinsky" and dataset["params"]["re_tau"] == 180

        state = client.app.state.eddyscope
        path = state.artifacts.resolve(
            dataset["path"] if "path" in dataset else f"datasets/{dataset['id']}.h5"
        )
        with h5py.File(path, "r") as f:
            velocity = f["t1_fields/velocity"][...]
            y = f["dimensions/y"][...]
            u_mean = f["statistics/u_mean"][...]
            assert f.attrs["nu"] == pytest.approx(1 / 180)
            assert list(f.attrs["solver_grid"]) == GRID
        grid = ChannelConfig(nx=8, ny=12, nz=8).grid()
        np.testing.assert_allclose(y, grid.y_centres.numpy())
        assert np.isfinite(velocity).all() and velocity.shape == (2, 3, 4, 12, 4, 3)
        np.testing.assert_allclose(u_mean, velocity[..., 0].mean(axis=(1, 2, 4)), rtol=1e-5)
        assert (u_mean[:, 6] > u_mean[:, 0]).all()  # faster at the centre than at the wall

        # Per-trajectory seeds: the data do not depend on the sharding.
        other = datasets[one_shard["result"]["dataset_id"]]
        with h5py.File(state.artifacts.resolve(f"datasets/{other['id']}.h5"), "r") as f:
            np.testing.assert_array_equal(f["t1_fields/velocity"][...], velocity)

        # The trainer reads it as (trajectory, time, 3, nx, ny, nz).
        trajectories, _ = load_trajectories(path)
        assert tuple(trajectories.shape) == (2, 3, 3, 4, 12, 4)

        # Live statistics in wall units from the shards, for the Data page.
        shards = client.get("/api/jobs", params={"parent_id": two_shards["id"]}).json()
        events = client.get(f"/api/jobs/{shards[0]['id']}/events").json()
        stats = [e["payload"] for e in events if e["type"] == "channel_stats"]
        assert stats and stats[-1]["stats"]["re_tau"] > 0
        assert len(stats[-1]["stats"]["yplus"]) == 6  # 12 centres folded


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"flow": "ns2d-forced", "closure": "wale"}, "applies to the channel3d or hit3d flow only"),
        ({"flow": "channel3d", "channel_grid": [2, 12, 8]}, "nx and nz must be 4–512"),
        (
            {"flow": "channel3d", "channel_grid": [8, 12, 8], "output_grid": [16, 4]},
            "stored x–z grid",
        ),
        (
            {"flow": "channel3d", "channel_grid": [8, 12, 8], "output_grid": [4, 16, 4]},
            "the stored ny (cells between the walls) must be between 4 and the solver's 12",
        ),
        ({"flow": "channel3d", "filter": "gaussian"}, "params.filter"),
        (
            {"flow": "channel3d", "filter": "box", "filter_width": 20},
            "params.filter_width",
        ),
        ({"flow": "ns2d-forced", "filter": "box"}, "applies to the channel3d or hit3d flow only"),
        ({"flow": "ns2d-forced", "re_tau": 395}, "applies to the channel3d flow only"),
        ({"flow": "channel3d", "initial_condition": "grf"}, "channel3d offers 'turbulent'"),
        ({"flow": "channel3d", "closure": "vreman"}, "params.closure"),
    ],
)
def test_channel_generate_refusals(client, params, phrase):
    response = client.post("/api/jobs", json={"kind": "generate", "params": params})
    assert response.status_code == 422, response.text
    assert phrase in response.json()["detail"]
    assert client.get("/api/jobs").json() == []
