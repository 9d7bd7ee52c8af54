"""A fine-tune shows its gain (issue 13, item 4): a model trained on a budget far too short
for its data is fine-tuned through POST /api/jobs on a real worker; the job scores the base
before the first epoch and both models after, on the trajectories the fine-tune held out.
The report must show the error falling, and this test recomputes the fine-tuned model's
errors itself, from its registered checkpoint and the dataset's file, and finds the same
numbers. Real Redis, a real Celery worker process, SQLite."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.db.tables import Dataset, Model
from app.settings import Settings
from models.checkpoint import load_model
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for
from tests.test_training_jobs import SMALL_FNO, events_of

pytestmark = pytest.mark.integration

SPLIT = {"val_fraction": 0.25, "seed": 3}


def stored(client, table, row_id: str):
    state = client.app.state.eddyscope
    with state.db.session() as session:
        row = session.get(table, row_id)
        return state.artifacts.resolve(row.path)


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@torch.no_grad()
def errors_of(model, frames: torch.Tensor, horizons: list[int]) -> tuple[float, list[float]]:
    """One-step relative L2 over every pair of consecutive frames of ``frames`` (traj, time,
    n, n), and the rollout's at each horizon from frame 0, both averaged over trajectories:
    written out here, frame by frame, independently of models.finetune_report."""
    pairs = [
        relative_l2(model(w[t][None, None, None].float())[0, 0, 0].double(), w[t + 1])
        for w in frames
        for t in range(frames.shape[1] - 1)
    ]
    rollout = {h: [] for h in horizons}
    for w in frames:
        state = w[0][None, None, None].float()
        for step in range(1, max(horizons) + 1):
            state = model(state)
            if step in rollout:
                rollout[step].append(relative_l2(state[0, 0, 0].double(), w[step]))
    return float(np.mean(pairs)), [float(np.mean(rollout[h])) for h in horizons]


def test_a_fine_tune_lowers_the_held_out_error_and_its_report_can_be_recomputed(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        generated = wait_for(
            client,
            submit(
                client,
                "generate",
                n_trajectories=8,
                n_snapshots=9,
                resolution=32,
                interval=0.25,
                warmup=1.0,
                batch_size=8,
                seed=5,
            ),
        )
        assert generated["status"] == "succeeded", generated["error"]
        dataset_id = generated["result"]["dataset_id"]
        # The base: one epoch at a tiny rate, far from what this data allows.
        base_job = wait_for(
            client,
            submit(
                client,
                "train",
                dataset_id=dataset_id,
                config=SMALL_FNO,
                epochs=1,
                lr=1e-4,
                batch_size=8,
                **SPLIT,
            ),
        )
        assert base_job["status"] == "succeeded", base_job["error"]
        base = client.get(f"/api/models/{base_job['result']['model_id']}").json()

        job = wait_for(
            client,
            submit(
                client,
                "finetune",
                model_id=base["id"],
                dataset_id=dataset_id,
                name="tuned",
                epochs=20,
                lr=3e-3,
                batch_size=4,
                **SPLIT,
            ),
            timeout=240,
        )
        assert job["status"] == "succeeded", job["error"]
        tuned = client.get(f"/api/models/{job['result']['model_id']}").json()
        report = tuned["metrics"]["finetune_report"]
        assert report == job["result"]["finetune_report"]
        assert report["base"] == {"id": base["id"], "name": base["name"]}
        before, after, persistence = report["before"], report["after"], report["persistence"]

        # The gain: lower one-step L2 and H⁻¹, lower rollout L2 at every horizon.
        assert after["one_step_rel_l2"] < 0.7 * before["one_step_rel_l2"]
        assert after["one_step_rel_h_minus1"] < before["one_step_rel_h_minus1"]
        pairs = zip(after["rollout_rel_l2"], before["rollout_rel_l2"], strict=True)
        assert all(a < b for a, b in pairs)
        assert report["improved"] is True
        assert report["changes"]["one_step_rel_l2"] == pytest.approx(
            after["one_step_rel_l2"] / before["one_step_rel_l2"] - 1
        )
        assert report["horizons"] == [1, 2, 5, 8] and report["t"] == [0.25, 0.5, 1.25, 2.0]

        # Scored on the fine-tune's held-out trajectories, never its training ones.
        checkpoint = stored(client, Model, tuned["id"])
        model, info = load_model(checkpoint)
        held = info["metadata"]["val_trajectories"]
        assert report["trajectories"] == held and len(held) == 2
        assert not set(held) & set(info["metadata"]["train_trajectories"])
        assert info["metadata"]["finetuned_from"] == base["id"]

        # The trainer's own validation measures the same one-step errors: the base's at the
        # end of its training (the same split), the fine-tuned model's at the end of its.
        assert before["one_step_rel_l2"] == pytest.approx(base["metrics"]["val_rel_l2"], rel=1e-4)
        assert after["one_step_rel_l2"] == pytest.approx(tuned["metrics"]["val_rel_l2"], rel=1e-4)
        assert persistence["one_step_rel_l2"] == pytest.approx(
            tuned["metrics"]["persistence_rel_l2"], rel=1e-4
        )

        # Recomputed here from the checkpoint and the dataset's file.
        with h5py.File(stored(client, Dataset, dataset_id), "r") as f:
            vorticity = torch.from_numpy(np.asarray(f["t0_fields/vorticity"][...], np.float64))
        one_step, rollout = errors_of(model, vorticity[held], report["horizons"])
        assert after["one_step_rel_l2"] == pytest.approx(one_step, rel=1e-4)
        assert after["rollout_rel_l2"] == pytest.approx(rollout, rel=1e-4)
        base_model, _ = load_model(stored(client, Model, base["id"]))
        base_one_step, base_rollout = errors_of(base_model, vorticity[held], report["horizons"])
        assert before["one_step_rel_l2"] == pytest.approx(base_one_step, rel=1e-4)
        assert before["rollout_rel_l2"] == pytest.approx(base_rollout, rel=1e-4)

        # The base was scored before the first epoch, and said so.
        events = client.get(f"/api/jobs/{job['id']}/events").json()
        kinds = [e["type"] for e in events]
        assert kinds.index("finetune_baseline") < kinds.index("epoch")
        baseline = events_of(client, job["id"], "finetune_baseline")[0]
        assert baseline["trajectories"] == held
        assert baseline["before"]["one_step_rel_l2"] == pytest.approx(before["one_step_rel_l2"])
        assert events_of(client, job["id"], "finetune_report")[0]["improved"] is True


def test_the_refinement_fits_the_output_layer_on_training_windows_only(
    tmp_path, redis_url, start_worker
):
    """``refine_iterations``: L-BFGS on the output layer alone, under H⁻¹, on the fine-tune's
    training windows; the loss it reports is recomputed here from the checkpoint."""
    from physics import norms
    from tests.test_training_jobs import TINY

    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        generated = wait_for(
            client,
            submit(
                client,
                "generate",
                n_trajectories=6,
                n_snapshots=8,
                resolution=32,
                interval=0.25,
                warmup=1.0,
                batch_size=6,
                seed=5,
            ),
        )
        dataset_id = generated["result"]["dataset_id"]
        base_job = wait_for(
            client,
            submit(
                client,
                "train",
                dataset_id=dataset_id,
                arch="sfno",
                config=TINY["sfno"],
                epochs=2,
                lr=3e-3,
                **SPLIT,
            ),
        )
        assert base_job["status"] == "succeeded", base_job["error"]
        base_id = base_job["result"]["model_id"]
        fno = wait_for(
            client, submit(client, "train", dataset_id=dataset_id, config=SMALL_FNO, epochs=1)
        )
        refused = client.post(
            "/api/jobs",
            json={
                "kind": "finetune",
                "params": {
                    "model_id": fno["result"]["model_id"],
                    "dataset_id": dataset_id,
                    "refine_iterations": 5,
                },
            },
        )
        assert refused.status_code == 422
        assert "refine_iterations: only a spatiotemporal FNO" in refused.json()["detail"]
        too_many = {"model_id": base_id, "dataset_id": dataset_id, "refine_iterations": 51}
        response = client.post("/api/jobs", json={"kind": "finetune", "params": too_many})
        assert response.status_code == 422

        job = wait_for(
            client,
            submit(
                client,
                "finetune",
                model_id=base_id,
                dataset_id=dataset_id,
                output_modes=6,
                loss="h-1",
                epochs=1,
                lr=1e-6,
                refine_iterations=8,
                **SPLIT,
            ),
        )
        assert job["status"] == "succeeded", job["error"]
        tuned = client.get(f"/api/models/{job['result']['model_id']}").json()
        refine = tuned["metrics"]["refine"]
        iterations = events_of(client, job["id"], "refine_iteration")
        assert [e["iteration"] for e in iterations] == list(range(1, 9))
        assert refine["iterations"] == 8
        assert refine["objective_after"] < 0.5 * refine["objective_before"]
        assert refine["loss_after"] < refine["loss_before"]

        model, info = load_model(stored(client, Model, tuned["id"]))
        train_idx = info["metadata"]["train_trajectories"]
        assert refine["trajectories"] == train_idx
        assert not set(train_idx) & set(tuned["metrics"]["finetune_report"]["trajectories"])
        # Every training window (4 trajectories × 5 windows of 2 in, 2 out): the mean
        # relative H⁻¹ error of the registered model is the loss the refinement ended at.
        with h5py.File(stored(client, Dataset, dataset_id), "r") as f:
            vorticity = torch.from_numpy(np.asarray(f["t0_fields/vorticity"][...], np.float32))
        errors = []
        with torch.no_grad():
            for i in train_idx:
                for t in range(vorticity.shape[1] - 3):
                    window = vorticity[i, t : t + 2][None, :, None]
                    pred = model(window)[0, :, 0]
                    truth = vorticity[i, t + 2 : t + 4]
                    errors += norms.relative_h_minus1(pred[:, None], truth[:, None]).tolist()
        assert refine["windows"] == len(errors) // 2 == 4 * 5
        assert refine["loss_after"] == pytest.approx(float(np.mean(errors)), rel=1e-4)
        # An epoch at lr 1e-6 moves little: the held-out gain is the refinement's.
        report = tuned["metrics"]["finetune_report"]
        assert report["after"]["one_step_rel_h_minus1"] < report["before"]["one_step_rel_h_minus1"]
