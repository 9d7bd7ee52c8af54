"""hit3d rollouts through the API with a real worker: a tiny filtered-DNS dataset (32³ solver
with Smagorinsky, a box filter of 2 cells onto 16³), a 3D FNO trained on it for one epoch,
its rollout beside the reference LES, and the reference alone from a stored initial
condition. Everything the job reported is recomputed here from the frames it stored: the
per-step metrics (relative L², energy, dissipation), the ``hit3d_stats`` of both sources
and the reference's first step (the LES with the dataset's ν, closure and filter width).
The solver alone then runs from an uploaded snapshot.
Then the 422 sentences for what a hit3d rollout refuses."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Dataset
from app.hit3d_summary import snapshot_summary
from app.jobkinds import validate_params
from app.settings import Settings
from models.registry import build_model
from physics.flows import get_flow
from physics.hit3d import diagnostics
from tests.conftest import service_env
from tests.test_compare import register_model
from tests.test_integration import _app, submit, wait_for
from workers.runners.rollout_hit3d import (
    frame_stride,
    is_stored,
    make_reference,
    reference_settings,
)

N = 16
STEPS = 3
FNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_layers": 1, "pad_y": 0,
       "add_grid": False}  # fmt: skip
STATS = ("energy", "dissipation", "taylor_reynolds", "skewness", "integral_scale")


def frames_of(client, rollout_id: str, k: int, sources) -> dict[str, np.ndarray]:
    out = {}
    for source in sources:
        response = client.get(f"/api/rollouts/{rollout_id}/frames/{k}", params={"source": source})
        assert response.status_code == 200, response.text
        out[source] = np.load(io.BytesIO(response.content), allow_pickle=False)
    return out


def events_of(client, job_id: str, kind: str) -> list[dict]:
    events = client.get(f"/api/jobs/{job_id}/events", params={"limit": 10_000}).json()
    return [e["payload"] for e in events if e["type"] == kind]


def batch(u: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u.astype(np.float64))[None]


def upload(client, velocity: np.ndarray) -> str:
    """A hit3d initial condition through the Upload API (a .npy velocity (3, n, n, n))."""
    buffer = io.BytesIO()
    np.save(buffer, velocity)
    response = client.post(
        "/api/initial-conditions",
        files={"file": ("velocity.npy", buffer.getvalue())},
        data={"flow": "hit3d"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["shape"] == list(velocity.shape)
    return response.json()["id"]


def test_hit3d_rollouts_are_their_stored_frames(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        generate = wait_for(
            client,
            submit(
                client,
                "generate",
                flow="hit3d",
                resolution=N,
                solver_resolution=32,
                closure="smagorinsky",
                filter="box",
                filter_width=2.0,
                n_trajectories=3,
                n_snapshots=3,
                interval=0.1,
                batch_size=3,
                seed=1,
            ),
            timeout=240,
        )
        assert generate["status"] == "succeeded", generate["error"]
        dataset_id = generate["result"]["dataset_id"]
        train = wait_for(
            client,
            submit(client, "train", dataset_id=dataset_id, arch="fno3d", config=FNO, epochs=1),
            timeout=240,
        )
        assert train["status"] == "succeeded", train["error"]
        model_id = train["result"]["model_id"]

        job = wait_for(
            client, submit(client, "rollout", model_id=model_id, steps=STEPS, seed=2), timeout=180
        )
        assert job["status"] == "succeeded", job["error"]
        assert job["params"]["flow"] == "hit3d" and job["params"]["resolution"] == N
        rollout_id = job["result"]["rollout_id"]
        rollout = client.get(f"/api/rollouts/{rollout_id}").json()
        assert rollout["flow"] == "hit3d" and rollout["frames"] == STEPS + 1
        assert rollout["resolution"] == N

        setup = events_of(client, job["id"], "rollout_setup")[0]
        reference = setup["reference"]
        # The dataset's LES: its ν, Smagorinsky, and C_s·Δ over its 2-cell box, not 1.5 dx.
        assert reference["closure"] == "smagorinsky" and reference["filter"] == "box"
        assert reference["cs"] == pytest.approx(0.17 * 2 / 1.5)
        assert reference["nu"] == pytest.approx(0.04)

        metrics = events_of(client, job["id"], "metrics")
        assert [m["step"] for m in metrics] == list(range(STEPS + 1))
        assert [m["frame"] for m in metrics] == list(range(STEPS + 1))
        frames = [frames_of(client, rollout_id, k, ("model", "reference", "error"))
                  for k in range(STEPS + 1)]  # fmt: skip
        nu = reference["nu"]
        for k, (m, f) in enumerate(zip(metrics, frames, strict=True)):
            assert f["reference"].shape == (3, N, N, N)
            np.testing.assert_allclose(f["error"], f["model"] - f["reference"], atol=1e-6)
            model, ref = batch(f["model"]), batch(f["reference"])
            rel = float((model - ref).flatten().norm() / ref.flatten().norm())
            assert m["rel_l2"] == pytest.approx(rel, rel=1e-9, abs=1e-12), k
            assert m["energy_model"] == pytest.approx(
                float(diagnostics.kinetic_energy(model)[0]), rel=1e-9
            )
            assert m["energy_reference"] == pytest.approx(
                float(diagnostics.kinetic_energy(ref)[0]), rel=1e-9
            )
            for source, u in (("model", model), ("reference", ref)):
                expected = float(diagnostics.dissipation(u, nu)[0])
                assert m[f"dissipation_{source}"] == pytest.approx(expected, rel=1e-9)
        assert metrics[0]["rel_l2"] == 0 and metrics[-1]["rel_l2"] > 0
        assert client.get(f"/api/rollouts/{rollout_id}/export.nc").status_code == 409
        csv = client.get(f"/api/rollouts/{rollout_id}/metrics.csv")
        assert csv.status_code == 200 and len(csv.text.strip().splitlines()) > STEPS + 1

        # The statistics the panels show: at least the first and the last step, both
        # sources, each equal to the summary of its stored frame.
        stats = events_of(client, job["id"], "hit3d_stats")
        steps = {s["step"] for s in stats}
        assert {0, STEPS} <= steps
        for event in stats:
            assert is_stored(event["step"], STEPS, 1) and event["frame"] == event["step"]
            u = frames[event["frame"]][event["source"]]
            again = snapshot_summary(u, nu, 2 * math.pi)
            for key in STATS:
                assert event["stats"][key] == pytest.approx(again["stats"][key], rel=1e-9), key
            np.testing.assert_allclose(event["spectrum"], again["spectrum"], rtol=1e-9)
        assert {s["source"] for s in stats} == {"model", "reference"}

        # The reference's first step is the LES with the dataset's parameters, on 16³.
        state = client.app.state.eddyscope
        with state.db.session() as session:
            params = dict(session.get(Dataset, dataset_id).params)
        flow = get_flow("hit3d")
        settings_again = reference_settings(flow, params, None)
        solver = make_reference(flow.variant(settings_again["nu"]), N, settings_again)
        first = torch.from_numpy(frames[0]["reference"])[None]
        stepped = solver.advance(first, setup["interval"])[0].numpy()
        np.testing.assert_allclose(stepped, frames[1]["reference"], atol=2e-5)

        # The solver alone from an uploaded initial condition (the dataset's last snapshot).
        with state.db.session() as session:
            path = state.artifacts.resolve(session.get(Dataset, dataset_id).path)
        import h5py

        with h5py.File(path, "r") as f:
            snapshot = np.moveaxis(f["t1_fields/velocity"][0, -1], -1, 0).astype(np.float32)
        ic_id = upload(client, snapshot)
        solo = wait_for(
            client, submit(client, "rollout", initial_condition_id=ic_id, steps=2), timeout=120
        )
        assert solo["status"] == "succeeded", solo["error"]
        assert solo["queue"] == "cpu" and solo["params"]["resolution"] == N
        first = frames_of(client, solo["result"]["rollout_id"], 0, ("reference",))["reference"]
        # Made solenoidal and dealiased: the stored filtered field already nearly is.
        np.testing.assert_allclose(first, snapshot, atol=2e-3)
        solo_setup = events_of(client, solo["id"], "rollout_setup")[0]
        assert solo_setup["reference"]["closure"] == "none"
        no_error = client.get(
            f"/api/rollouts/{solo['result']['rollout_id']}/frames/0", params={"source": "error"}
        )
        assert no_error.status_code >= 400 and "no model" in no_error.text, no_error.text


def test_frames_are_bounded():
    assert frame_stride(3) == 1 and frame_stride(99) == 1
    for steps in (100, 101, 250, 10_000):
        stride = frame_stride(steps)
        stored = [s for s in range(steps + 1) if is_stored(s, steps, stride)]
        assert len(stored) <= 101 and stored[0] == 0 and stored[-1] == steps


def test_hit3d_rollouts_refuse_what_they_cannot_run(tmp_path, redis_url):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        db: Database = state.db
        artifacts: ArtifactStore = state.artifacts
        with db.session() as session:
            dataset = Dataset(
                name="hit3d 16³",
                flow="hit3d",
                params={"nu": 0.05, "closure": "none", "filter": "none", "interval": 0.1},
                shape=[2, 3, N, N, N, 3],
                path="datasets/none.h5",
            )
            session.add(dataset)
            session.commit()
            dataset_id = dataset.id
        hit = register_model(
            db, artifacts, build_model("fno3d", {**FNO, "channels": 3}), {**FNO, "channels": 3},
            name="hit", arch="fno3d", flow="hit3d", resolution=N, dataset_id=dataset_id,
        )  # fmt: skip
        wide = {**FNO, "channels": 3, "modes_x": 9, "modes_y": 9, "modes_z": 9}
        too_fine = register_model(
            db, artifacts, build_model("fno3d", wide), wide, name="too many modes",
            arch="fno3d", flow="hit3d", resolution=N, dataset_id=dataset_id,
        )  # fmt: skip
        orphan = register_model(
            db, artifacts, build_model("fno3d", {**FNO, "channels": 3}), {**FNO, "channels": 3},
            name="orphan", arch="fno3d", flow="hit3d", resolution=N,
        )  # fmt: skip
        fno2d = {"modes": 4, "width": 4, "n_layers": 1}
        flat = register_model(
            db, artifacts, build_model("fno2d", fno2d), fno2d, name="flat", arch="fno2d",
            flow="hit3d", resolution=N, dataset_id=dataset_id,
        )  # fmt: skip
        two_d = register_model(
            db, artifacts, build_model("fno2d", fno2d), fno2d, name="2d", resolution=32
        )
        coarse_ic = upload(client, get_flow("hit3d").random_initial_condition(24)[0].numpy())

        def refused(**params) -> str:
            response = client.post("/api/jobs", json={"kind": "rollout", "params": params})
            assert response.status_code == 422, response.text
            return response.json()["detail"]

        assert "trained on 'ns2d-forced', not on params.flow 'hit3d'" in refused(
            flow="hit3d", model_id=two_d
        )
        assert "needs a 3D model" in refused(model_id=flat)
        assert "records no hit3d dataset" in refused(model_id=orphan)
        assert "cannot run on its training grid 16³" in refused(model_id=too_fine)
        assert "trained on 16³" in refused(model_id=hit, resolution=32)
        assert "24×24×24 grid" in refused(model_id=hit, initial_condition_id=coarse_ic)
        assert "even number of points" in refused(flow="hit3d", resolution=130)
        assert "params.nu" in refused(model_id=hit, nu=100.0)
        assert "params.steps" in refused(model_id=hit, steps=100_000)

        # What is accepted is completed: the model's grid, else the flow's 32³.
        with db.session() as session:
            data, queue = validate_params(session, "rollout", {"model_id": hit})
            assert data["resolution"] == N and data["flow"] == "hit3d" and queue == "gpu"
            data, queue = validate_params(session, "rollout", {"flow": "hit3d"})
            assert data["resolution"] == 32 and queue == "cpu"
