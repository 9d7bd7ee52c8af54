"""hit3d datasets through the API: GET /api/flows lists the flow with its grid rules, a
generate job's parameters are checked against the flow (422 sentences), and a generate job
with a real worker stores velocity that is divergence-free, starts from the family's field
for each trajectory's seed, and records the filter that made it from the solver's grid."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.services import flows as flow_service
from app.services.previews import dataset_preview
from app.settings import Settings
from physics.hit3d import diagnostics
from physics.hit3d.filters import filter_to
from physics.hit3d.flow import HIT3D
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for
from workers.runners.generate import trajectory_seed
from workers.runners.train import load_trajectories


def test_flows_endpoint_lists_hit3d_with_its_grid_rules(client):
    response = client.get("/api/flows/hit3d")
    assert response.status_code == 200, response.text
    hit = response.json()
    assert (hit["dims"], hit["fields"], hit["geometry"]) == (3, ["u", "v", "w"], "periodic")
    assert hit["grid"]["default"] == [32, 32, 32]
    assert hit["grid"]["min"] == [16, 16, 16] and hit["grid"]["max"] == [128, 128, 128]
    assert hit["parameters"]["nu"] == 0.04 and hit["parameters"]["k_peak"] == 2.0
    assert [ic["name"] for ic in hit["initial_conditions"]] == ["random", "taylor-green", "abc"]
    assert "hit3d" in [f["name"] for f in client.get("/api/flows").json()]
    # Offered for uploads (tests/test_hit3d_upload.py), not in the 2D generate form.
    assert "hit3d" in [name for name, _ in flow_service.upload_flows()]
    assert "hit3d" not in [f["name"] for f in flow_service.generate_form_flows()]
    assert flow_service.is_hit3d_flow("hit3d") and not flow_service.is_channel_flow("hit3d")
    assert not flow_service.is_hit3d_flow("channel3d") and not flow_service.is_hit3d_flow(None)


def test_a_rollout_of_hit3d_off_its_grid_is_refused_with_a_sentence(client):
    # hit3d rollouts exist (tests/test_hit3d_rollout.py); a grid hit3d cannot take is refused.
    params = {"flow": "hit3d", "resolution": 17}
    response = client.post("/api/jobs", json={"kind": "rollout", "params": params})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "params.resolution: hit3d needs a cubic grid with an even number of points per side "
        "between 16 and 128; got 17×17×17."
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"resolution": 17},
            "params.resolution: hit3d needs a cubic grid with an even number of points per "
            "side between 16 and 128; got 17×17×17.",
        ),
        (
            {"solver_resolution": 256},
            "params.solver_resolution: hit3d needs a cubic grid with an even number of points "
            "per side between 16 and 128; got 256×256×256.",
        ),
        (
            {"resolution": 32, "solver_resolution": 16},
            "params.resolution: the stored grid (32³) cannot be finer than the solver's (16³).",
        ),
        (
            {"closure": "wale"},
            "params.closure: hit3d offers the closures smagorinsky, dynamic (none: DNS); "
            "got 'wale'.",
        ),
        (
            {"initial_condition": "grf"},
            "params.initial_condition: hit3d offers random, taylor-green, abc; got 'grf'.",
        ),
        ({"nu": 50}, "params.nu: hit3d takes a viscosity from 1e-05 to 10; got 50."),
        (
            {"initial_condition": "taylor-green", "k_peak": 3},
            "params.k_peak: shapes the initial spectrum of the random initial condition only; "
            "taylor-green is not random.",
        ),
        (
            {"resolution": 16, "k_peak": 8},
            "params.k_peak: the spectrum's peak must lie in the shells the 16³ solver grid "
            "resolves, above 0 and at most 5; got 8.",
        ),
        (
            {"filter": "spectral", "filter_width": 2},
            "params.filter_width: applies to the box filter only (filter: box); the spectral "
            "cut's width is set by the stored grid.",
        ),
        ({"channel_grid": [8, 12, 8]}, "params.channel_grid: applies to the channel3d flow only."),
        ({"drive": "flow_rate"}, "params.drive: applies to the channel3d flow only."),
    ],
)
def test_hit3d_generate_refusals(client, params, message):
    response = client.post(
        "/api/jobs", json={"kind": "generate", "params": {"flow": "hit3d", **params}}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == message
    assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"flow": "ns2d-forced", "k_peak": 3},
            "params.k_peak: applies to the hit3d flow only.",
        ),
        (
            {"flow": "channel3d", "forcing": "linear"},
            "params.forcing: applies to the hit3d flow only.",
        ),
        (
            {"flow": "ns2d-forced", "closure": "dynamic"},
            "params.closure: applies to the channel3d or hit3d flow only.",
        ),
    ],
)
def test_hit3d_only_parameters_are_refused_for_other_flows(client, params, message):
    response = client.post("/api/jobs", json={"kind": "generate", "params": params})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == message


def test_hit3d_grid_defaults_are_the_flows_and_the_stored_values_limit(client):
    from app.jobkinds import validate_params
    from app.services.jobs_view import generate_grid_label

    state = client.app.state.eddyscope
    with state.db.session() as session:

        def validated(**params):
            return validate_params(
                session, "generate", {"flow": "hit3d", **params}, settings=state.settings
            )[0]

        # The flow's 32³, stored on the solver's grid; a solver grid alone is stored as is.
        data = validated()
        assert (data["resolution"], data["solver_resolution"]) == (32, 32)
        assert (validated(solver_resolution=24)["resolution"]) == 24
        assert validated(resolution=16)["solver_resolution"] == 16
        data = validated(resolution=16, solver_resolution=48, filter="box", closure="dynamic")
        assert (data["filter"], data["closure"], data["forcing"]) == ("box", "dynamic", None)
        assert generate_grid_label(data) == "16³ (solver 48³)"
        assert generate_grid_label(validated()) == "32³"
    too_many = client.post(
        "/api/jobs",
        json={
            "kind": "generate",
            "params": {"flow": "hit3d", "n_trajectories": 100, "n_snapshots": 1000},
        },
    )
    assert too_many.status_code == 422
    assert "× 98,304 values per snapshot" in too_many.json()["detail"]  # 3 · 32³
    assert client.get("/api/jobs").json() == []


def _stored(client, job: dict) -> tuple[dict, np.ndarray, dict, dict]:
    datasets = {d["id"]: d for d in client.get("/api/datasets").json()}
    dataset = datasets[job["result"]["dataset_id"]]
    path = client.app.state.eddyscope.artifacts.resolve(f"datasets/{dataset['id']}.h5")
    with h5py.File(path, "r") as f:
        velocity = f["t1_fields/velocity"][...]
        statistics = {name: f["statistics"][name][...] for name in f["statistics"]}
        attrs = dict(f.attrs)
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x", "y", "z"]
    return dataset, velocity, statistics, attrs | {"path": path}


def _divergence_ratio(velocity: np.ndarray) -> float:
    """max |∇·u| / rms |∇u| over every stored snapshot, recomputed spectrally in float64."""
    n = velocity.shape[-2]
    u = torch.from_numpy(velocity.astype(np.float64)).reshape(-1, n, n, n, 3).movedim(-1, 1)
    div = diagnostics.divergence(u).abs().max()
    gradient = diagnostics.velocity_gradient(u).pow(2).sum(dim=(1, 2)).mean().sqrt()
    return float(div / gradient)


def test_hit3d_dataset_through_the_api(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        decaying = wait_for(
            client,
            submit(
                client,
                "generate",
                flow="hit3d",
                resolution=16,
                k_peak=3,
                u_rms=0.8,
                n_trajectories=2,
                n_snapshots=3,
                interval=0.05,
                shard_size=1,
                batch_size=1,
                seed=4,
            ),
            timeout=240,
        )
        assert decaying["status"] == "succeeded", decaying["error"]
        filtered = wait_for(
            client,
            submit(
                client,
                "generate",
                flow="hit3d",
                solver_resolution=32,
                resolution=16,
                filter="box",
                forcing="linear",
                nu=0.02,
                n_trajectories=1,
                n_snapshots=2,
                interval=0.05,
                seed=9,
            ),
            timeout=240,
        )
        assert filtered["status"] == "succeeded", filtered["error"]

        # Decaying HIT on the solver's own 16³ grid, in two shards.
        dataset, velocity, statistics, attrs = _stored(client, decaying)
        assert dataset["flow"] == "hit3d" and dataset["shape"] == [2, 3, 16, 16, 16, 3]
        assert velocity.shape == (2, 3, 16, 16, 16, 3) and np.isfinite(velocity).all()
        assert attrs["filter"] == "none" and dataset["params"]["filter"] == "none"
        assert (attrs["nu"], attrs["k_peak"], attrs["u_rms"]) == (0.04, 3.0, 0.8)
        assert attrs["initial_condition"] == "random" and attrs["closure"] == "none"
        assert _divergence_ratio(velocity) < 5e-6  # float32 round-off (measured ~5e-7)
        for i in range(2):  # each trajectory starts from its own seed's field
            expected = HIT3D.make_initial_condition(
                "random", 16, seed=trajectory_seed(4, i), k_peak=3, u_rms=0.8
            )
            np.testing.assert_array_equal(velocity[i, 0], expected[0].permute(1, 2, 3, 0).numpy())
        energy = statistics["energy"]
        np.testing.assert_allclose(energy[:, 0], 1.5 * 0.8**2, rtol=1e-5)  # E = 3u'²/2
        assert (np.diff(energy, axis=1) < 0).all()  # decaying
        # The stored budget closes: dE/dt = −ε (trapezoidal in time, to its O(Δt²) error).
        dissipation = statistics["dissipation"]
        np.testing.assert_allclose(
            np.diff(energy, axis=1) / 0.05,
            -(dissipation[:, 1:] + dissipation[:, :-1]) / 2,
            rtol=1e-2,
        )
        assert not statistics["forcing_power"].any() and not statistics["sgs_dissipation"].any()
        stored_energy = 0.5 * (velocity.astype(np.float64) ** 2).sum(-1).mean(axis=(2, 3, 4))
        np.testing.assert_allclose(stored_energy, energy, rtol=1e-5)
        # The trainer reads it as (trajectory, time, 3, n, n, n).
        trajectories, _ = load_trajectories(attrs["path"])
        assert tuple(trajectories.shape) == (2, 3, 3, 16, 16, 16)
        # The 2D vorticity preview refuses it with a sentence (the HIT card draws it).
        with pytest.raises(ValueError, match="preview does not draw hit3d datasets"):
            dataset_preview(client.app.state.eddyscope, dataset["id"])

        # Forced HIT at 32³ stored box-filtered on 16³ (filtered DNS), the filter recorded.
        dataset, velocity, statistics, attrs = _stored(client, filtered)
        assert dataset["shape"] == [1, 2, 16, 16, 16, 3]
        assert attrs["filter"] == "box" and dataset["params"]["filter"] == "box"
        assert list(attrs["filter_source_grid"]) == [32] * 3
        assert list(attrs["filter_target_grid"]) == [16] * 3
        assert attrs["filter_width"] == pytest.approx(2 * np.pi / 16)
        assert "top-hat (box)" in attrs["filter_description"]
        assert attrs["forcing"] == "linear" and attrs["nu"] == 0.02
        assert _divergence_ratio(velocity) < 5e-6  # float32 round-off (measured ~5e-7)
        fine = HIT3D.make_initial_condition("random", 32, seed=trajectory_seed(9, 0))
        expected = filter_to(fine, 16, "box").velocity[0].permute(1, 2, 3, 0).numpy()
        np.testing.assert_array_equal(velocity[0, 0], expected)
        # The linear forcing holds the solver's energy.
        np.testing.assert_allclose(statistics["energy"][0], 1.5, rtol=1e-4)
