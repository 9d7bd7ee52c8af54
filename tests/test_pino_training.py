"""Physics-informed training with no label data: a small FNO trained on the Kolmogorov-flow
residual alone (data_weight 0, pde_weight 1) learns the flow — its residual falls, and its
error against the solver's next frame on initial conditions it never saw falls with it,
far below persistence's. Through the API: a train job with those weights runs on a real
worker and registers a model whose card records them; a flow without a physics loss is
refused with a sentence."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from app.settings import Settings
from models.losses import relative_l2
from models.pde_loss import make_pde_loss
from models.registry import build_model
from models.training import TrainConfig, train
from physics.flows import get_flow
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for
from tests.test_training_jobs import events_of

FLOW = get_flow("kolmogorov2d")
N = 16
# Frames close enough for the solver's own frames to have a small residual (≈ 1e-3 here).
FRAME_DT = 0.05


def solver_trajectories(n_traj: int, n_frames: int, seed: int) -> torch.Tensor:
    """Kolmogorov-flow trajectories from McWilliams fields after one time unit of spin-up,
    frames FRAME_DT apart: (n_traj, n_frames, 1, N, N)."""
    solver = FLOW.make_solver(N)
    w = solver.advance(FLOW.make_initial_condition("mcwilliams", N, batch=n_traj, seed=seed), 1.0)
    frames = [w]
    for _ in range(n_frames - 1):
        w = solver.advance(w, FRAME_DT)
        frames.append(w)
    return torch.stack(frames, dim=1)


def test_label_free_training_learns_the_flow():
    loss = make_pde_loss(FLOW.name, {"nu": FLOW.nu, "drag": FLOW.drag}, FRAME_DT, FLOW.length)
    data = solver_trajectories(96, 3, seed=0)
    assert loss(data[:, :1], data[:, 1:]).item() < 0.01  # the truth satisfies the equation
    torch.manual_seed(0)
    model = build_model("fno2d", {"width": 16, "modes": 6, "n_layers": 2})
    config = TrainConfig(
        epochs=20,
        batch_size=8,
        lr=1e-2,
        weight_decay=0.0,
        data_weight=0.0,
        pde_weight=1.0,
        amp=False,
        events_every=5,
    )
    events: list[dict] = []
    result = train(model, data, config, on_event=events.append, pde_loss=loss)
    steps = [e for e in events if e["type"] == "train"]
    epochs = [e for e in events if e["type"] == "epoch"]

    # The untrained model is persistence (residual 1); measured at the end: training
    # residual ≈ 0.12, held-out ≈ 0.22.
    assert steps[0]["pde_loss"] > 0.95
    assert steps[-1]["pde_loss"] < steps[0]["pde_loss"] / 3
    assert result.val_pde_residual < epochs[0]["val_pde_residual"] / 3

    # Never shown a target, it predicts the solver's next frame: on new initial conditions
    # its relative L2 error (measured ≈ 0.01) is far below persistence's (≈ 0.05).
    test = solver_trajectories(16, 2, seed=99)
    with torch.no_grad():
        pred = result.model(test[:, :1])
    model_error = relative_l2(pred[:, 0], test[:, 1]).item()
    persistence_error = relative_l2(test[:, 0], test[:, 1]).item()
    assert model_error < persistence_error / 3, (model_error, persistence_error)
    assert epochs[-1]["val_rel_l2"] < epochs[0]["val_rel_l2"] / 2
    assert epochs[-1]["val_rel_l2"] < epochs[-1]["persistence_rel_l2"] / 3


SMALL_FNO = {"width": 6, "modes": 4, "n_layers": 1}


def test_a_label_free_train_job_runs_on_the_worker_and_records_its_weights(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        generate = wait_for(
            client,
            submit(
                client,
                "generate",
                flow="kolmogorov2d",
                n_trajectories=6,
                n_snapshots=3,
                resolution=16,
                interval=FRAME_DT,
                warmup=1.0,
                batch_size=6,
                seed=4,
            ),
        )
        assert generate["status"] == "succeeded", generate["error"]
        job = wait_for(
            client,
            submit(
                client,
                "train",
                dataset_id=generate["result"]["dataset_id"],
                config=SMALL_FNO,
                epochs=2,
                batch_size=4,
                data_weight=0.0,
                pde_weight=1.0,
            ),
        )
        assert job["status"] == "succeeded", job["error"]
        steps = events_of(client, job["id"], "train")
        epochs = events_of(client, job["id"], "epoch")
        assert steps and all(e["pde_loss"] > 0 and e["data_loss"] > 0 for e in steps)
        # The first step is the untrained FNO, which is persistence: residual exactly 1.
        assert steps[0]["pde_loss"] == pytest.approx(1.0, abs=1e-4)
        assert len(epochs) == 2 and all(e["val_pde_residual"] > 0 for e in epochs)
        model = client.get(f"/api/models/{job['result']['model_id']}").json()
        training = model["metrics"]["training"]
        assert training["data_weight"] == 0.0 and training["pde_weight"] == 1.0
        assert model["metrics"]["val_pde_residual"] == epochs[-1]["val_pde_residual"]
        # The data's own residual, kept with the model to read its residual against.
        assert 0 < model["metrics"]["data_pde_residual"] == epochs[-1]["data_pde_residual"] < 1


def add_channel_dataset(client) -> str:
    """A channel-flow dataset row (the job checks read the row, not the file)."""
    from app.db.tables import Dataset

    state = client.app.state.eddyscope
    with state.db.session() as session:
        session.add(
            Dataset(
                id="channel",
                name="channel rows",
                flow="channel3d",
                params={"interval": 0.5},
                shape=[2, 4, 8, 9, 6, 3],
                path="datasets/channel.h5",
            )
        )
        session.commit()
    return "channel"


def test_physics_weights_are_checked_with_a_sentence(tmp_path, redis_url):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        dataset = add_channel_dataset(client)
        fno3d = {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1, "pad_y": 2}
        base = {"dataset_id": dataset, "arch": "fno3d", "config": fno3d}
        response = client.post(
            "/api/jobs", json={"kind": "train", "params": {**base, "pde_weight": 1.0}}
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "no physics loss for flow 'channel3d'" in detail and "kolmogorov2d" in detail
        # The same dataset trains on data alone.
        response = client.post(
            "/api/jobs", json={"kind": "train", "params": {**base, "pde_weight": 0.0}}
        )
        assert response.status_code == 202, response.text
        # No worker here: cancel it, so no later worker on this broker takes it.
        client.post(f"/api/jobs/{response.json()['id']}/cancel")
        response = client.post(
            "/api/jobs",
            json={"kind": "train", "params": {**base, "data_weight": 0.0, "pde_weight": 0.0}},
        )
        assert response.status_code == 422
        assert "cannot both be 0" in response.text
        response = client.post(
            "/api/jobs", json={"kind": "train", "params": {**base, "pde_weight": -1.0}}
        )
        assert response.status_code == 422
