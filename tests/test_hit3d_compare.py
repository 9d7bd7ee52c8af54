"""hit3d comparisons through the API with a real worker: a tiny decaying dataset (16³), a 3D
FNO and a 3D IFNO trained on it for one epoch, compared three steps from an uploaded velocity
beside the reference LES. Everything the job reported is recomputed from the frames it stored:
each model's per-step relative L², E and ε, the reference's E and ε, the last step's
``hit3d_stats`` of every source, and the summary's errors at the report times and speedups.
Then the 422 sentences for what a hit3d comparison refuses (models trained on data of another
ν, an initial condition on another grid, dataset starts, ν, a resolution
that is not the models')."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.db.session import Database
from app.db.tables import Dataset, Model
from app.hit3d_summary import snapshot_summary
from app.settings import Settings
from physics.flows import get_flow
from physics.hit3d import diagnostics
from tests.conftest import service_env
from tests.test_hit3d_rollout import batch, events_of, frames_of, upload
from tests.test_integration import _app, submit, wait_for

N, STEPS = 16, 3
CUBE = {"pad_y": 0, "add_grid": False}
FNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_layers": 1, **CUBE}
IFNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_iterations": 2, **CUBE}
SOURCES = ("reference", "model:0", "model:1")


def _tiny_models(client) -> tuple[str, list[str]]:
    generate = wait_for(
        client,
        submit(
            client,
            "generate",
            flow="hit3d",
            resolution=N,
            n_trajectories=2,
            n_snapshots=3,
            interval=0.1,
            batch_size=2,
            seed=4,
        ),
        timeout=240,
    )
    assert generate["status"] == "succeeded", generate["error"]
    dataset_id = generate["result"]["dataset_id"]
    ids = []
    for arch, config in (("fno3d", FNO), ("ifno3d", IFNO)):
        train = wait_for(
            client,
            submit(client, "train", dataset_id=dataset_id, arch=arch, config=config, epochs=1),
            timeout=240,
        )
        assert train["status"] == "succeeded", train["error"]
        ids.append(train["result"]["model_id"])
    return dataset_id, ids


def test_hit3d_comparisons_are_their_stored_frames(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id, (fno, ifno) = _tiny_models(client)
        u0 = get_flow("hit3d").make_initial_condition("random", N, 1, 7, "cpu", torch.float32)
        ic = upload(client, u0[0].numpy())
        entries = [{"model_id": fno}, {"model_id": ifno}]

        job = wait_for(
            client,
            submit(client, "compare", initial_condition_id=ic, models=entries, steps=STEPS),
            timeout=180,
        )
        assert job["status"] == "succeeded", job["error"]
        assert job["params"]["flow"] == "hit3d" and job["params"]["resolution"] == N
        rollout_id = job["result"]["rollout_id"]
        rollout = client.get(f"/api/rollouts/{rollout_id}").json()
        assert rollout["frames"] == STEPS + 1 and rollout["resolution"] == N
        # netCDF and GIF are of 2D vorticity frames: a clear 409, as for a channel run; the
        # metrics CSV (the Compare page's only export link for hit3d) is served.
        for export in ("export.nc", "animation.gif"):
            response = client.get(f"/api/rollouts/{rollout_id}/{export}")
            assert response.status_code == 409, (export, response.text)
            assert "2D vorticity" in response.json()["detail"] and "metrics.csv" in response.text
        assert client.get(f"/api/rollouts/{rollout_id}/metrics.csv").status_code == 200

        setup = events_of(client, job["id"], "compare_setup")[0]
        assert setup["geometry"] == "hit3d" and setup["initial_condition"]["kind"] == "upload"
        assert [m["model_id"] for m in setup["models"]] == [fno, ifno]
        nu, length = setup["nu"], get_flow("hit3d").length
        metrics = events_of(client, job["id"], "metrics")
        assert [m["step"] for m in metrics] == list(range(STEPS + 1))
        frames = [frames_of(client, rollout_id, k, SOURCES) for k in range(STEPS + 1)]
        for k, (m, f) in enumerate(zip(metrics, frames, strict=True)):
            ref = batch(f["reference"])
            e_ref = float(diagnostics.kinetic_energy(ref)[0])
            assert m["reference"]["energy"] == pytest.approx(e_ref, rel=1e-9), k
            assert m["reference"]["dissipation"] == pytest.approx(
                float(diagnostics.dissipation(ref, nu, length)[0]), rel=1e-9
            )
            for i in ("0", "1"):
                model = batch(f[f"model:{i}"])
                row = m["models"][i]
                rel = float((model - ref).flatten().norm() / ref.flatten().norm())
                assert row["rel_l2"] == pytest.approx(rel, rel=1e-9, abs=1e-12), (k, i)
                assert row["energy"] == pytest.approx(
                    float(diagnostics.kinetic_energy(model)[0]), rel=1e-9
                )
                assert row["dissipation"] == pytest.approx(
                    float(diagnostics.dissipation(model, nu, length)[0]), rel=1e-9
                )
                assert (row["ms"] is None) == (k == 0)
        # Step 0 of every source is the uploaded field, made solenoidal once.
        np.testing.assert_array_equal(frames[0]["model:0"], frames[0]["reference"])

        stats = events_of(client, job["id"], "hit3d_stats")
        last = {s["source"]: s for s in stats if s["step"] == STEPS}
        assert set(last) == set(SOURCES)
        for source in SOURCES:
            expected = snapshot_summary(frames[STEPS][source], nu, length)["stats"]
            for key in ("energy", "dissipation", "taylor_reynolds"):
                assert last[source]["stats"][key] == pytest.approx(expected[key], rel=1e-6)

        summary = events_of(client, job["id"], "summary")[0]
        assert summary == job["result"]["summary"] and summary["geometry"] == "hit3d"
        steps_at = {1, 2, 3}  # 25, 50 and 100 % of 3 steps, rounded
        interval = setup["interval"]
        assert summary["report_times"] == pytest.approx([s * interval for s in sorted(steps_at)])
        for column in summary["columns"]:
            assert column["status"] == "completed"
            i = str(column["index"])
            for s in steps_at:
                assert column["errors_at"][f"{s * interval:g}"] == metrics[s]["models"][i]["rel_l2"]
            ms = [m["models"][i]["ms"] for m in metrics[1:]]
            assert column["model_ms"] == pytest.approx(float(np.median(ms)))
            ref_ms = float(np.median([m["reference"]["ms"] for m in metrics[1:]]))
            assert summary["reference_ms"] == pytest.approx(ref_ms)
            assert column["speedup"] == pytest.approx(ref_ms / column["model_ms"])

        # The random field of the flow (seed) on the models' grid, too.
        job = wait_for(
            client,
            submit(client, "compare", models=entries, steps=1, seed=3, resolution=N),
            timeout=120,
        )
        assert job["status"] == "succeeded", job["error"]
        assert events_of(client, job["id"], "compare_setup")[0]["initial_condition"] == {
            "kind": "random",
            "seed": 3,
        }

        _refusals(client, settings, dataset_id, fno, ifno, ic)


def _refuse(client, **params) -> str:
    response = client.post("/api/jobs", json={"kind": "compare", "params": params})
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def _refusals(client, settings, dataset_id, fno, ifno, ic) -> None:
    entries = [{"model_id": fno}, {"model_id": ifno}]
    # A copy of the FNO whose (recorded) training data ran at another ν.
    db = Database(settings.resolved_database_url)  # the app's own database
    with db.session() as session:
        data = session.get(Dataset, dataset_id)
        other = Dataset(
            name="other ν",
            flow="hit3d",
            params={**data.params, "nu": 2 * float(data.params.get("nu") or 0.04)},
            shape=list(data.shape),
            path=data.path,
        )
        session.add(other)
        session.flush()
        model = session.get(Model, fno)
        copy = Model(
            name="fno at another ν",
            arch=model.arch,
            flow=model.flow,
            config=model.config,
            metrics={},
            parameter_count=model.parameter_count,
            resolution=model.resolution,
            interval=model.interval,
            dataset_id=other.id,
            path=model.path,
        )
        session.add(copy)
        session.commit()
        copy_id = copy.id
    detail = _refuse(client, initial_condition_id=ic, models=[*entries[:1], {"model_id": copy_id}])
    assert "differ in ν" in detail and "one reference LES" in detail, detail

    detail = _refuse(client, models=entries, dataset_id=dataset_id)
    assert "params.dataset_id" in detail and "not a dataset" in detail, detail
    detail = _refuse(client, models=entries, nu=0.01)
    assert "params.nu" in detail, detail
    detail = _refuse(client, models=entries, resolution=32)
    assert "params.resolution" in detail and f"{N}³" in detail, detail
    detail = _refuse(client, models=entries, baselines=["smagorinsky"])
    assert "params.baselines" in detail, detail
    big = get_flow("hit3d").make_initial_condition("random", 32, 1, 1, "cpu", torch.float32)
    detail = _refuse(client, initial_condition_id=upload(client, big[0].numpy()), models=entries)
    assert "params.initial_condition_id" in detail and "32×32×32" in detail, detail
    detail = _refuse(client, models=[{"model_id": fno}, {"model_id": "nope"}])
    assert "no model with id 'nope'" in detail, detail
