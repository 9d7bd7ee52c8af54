"""Channel comparisons (issue 12, item 3) through the REST API with a real Celery worker: two
3D models trained on a filtered channel dataset, beside the filtered fine reference and the
Smagorinsky and WALE closures on the models' coarse grid, from an uploaded snapshot; per
step metrics and per column statistics; the summary's statistics errors recomputed from
the stored frames; the refusals of the compare kind's check."""

from __future__ import annotations

import csv
import io
import math

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Dataset
from app.jobkinds import InvalidParams, validate_params
from app.settings import Settings
from models.registry import build_model
from physics.channel.skill import PROFILES, profile_errors
from physics.channel.stats import ChannelStatistics
from tests.conftest import service_env
from tests.test_channel_generation import generate
from tests.test_compare import events_of, fno, frame_of, register_model, run_in_process
from tests.test_integration import _app, submit, wait_for
from workers.runners.compare import run_compare

FINE = [16, 24, 16]
COARSE = [8, 12, 8]
FNO3D = {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1, "pad_y": 2}
STEPS = 4
KEYS = ["model:0", "model:1", "les:smagorinsky", "les:wale"]


def _refusal(client, params: dict) -> str:
    response = client.post("/api/jobs", json={"kind": "compare", "params": params})
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def _train(client, dataset_id: str, **config) -> str:
    job = wait_for(
        client,
        submit(
            client, "train", dataset_id=dataset_id, arch="fno3d", config=FNO3D | config, epochs=1
        ),
        timeout=240,
    )
    assert job["status"] == "succeeded", job["error"]
    return job["result"]["model_id"]


def _stored_statistics(
    path, source: str, stop: int | None, nu: float, lx: float, lz: float, start: int = 0
):
    """The statistics of ``source`` recomputed from its stored frames ``start:stop``."""
    with h5py.File(path, "r") as f:
        frames = f[source]["velocity"][start:stop]
        y = f["dimensions/y"][...]
    stats = ChannelStatistics(y, nu, lx, lz)
    for frame in frames:
        stats.update(torch.from_numpy(np.asarray(frame, dtype=np.float32))[None])
    return stats.result()


@pytest.mark.integration
def test_channel_comparison_with_les_baselines_through_the_api(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset_id = generate(
            client,
            channel_grid=FINE,
            output_grid=COARSE,
            n_trajectories=2,
            n_snapshots=3,
            warmup=0.05,
        )["result"]["dataset_id"]
        one = _train(client, dataset_id)
        two = _train(client, dataset_id, history=2)

        # The upload: the last stored (filtered, coarse) frame of the first trajectory.
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
        ic_id = upload.json()["id"]

        params = {
            "models": [{"model_id": one}, {"model_id": two}],
            "baselines": ["smagorinsky", "wale"],
            "initial_condition_id": ic_id,
            "steps": STEPS,
        }
        job = wait_for(client, submit(client, "compare", **params), timeout=300)
        assert job["status"] == "succeeded", job["error"]
        assert job["params"]["window"] == 1 and job["params"]["drift"] == 0.5
        rollout_id = job["result"]["rollout_id"]

        (setup,) = events_of(client, job["id"], "compare_setup")
        assert setup["geometry"] == "channel" and setup["grid"] == COARSE
        assert setup["reference"]["grid"] == FINE and setup["reference"]["filter"]
        assert [c["key"] for c in setup["columns"]] == KEYS
        assert [c["kind"] for c in setup["columns"]] == ["model", "model", "closure", "closure"]
        assert [c["label"] for c in setup["columns"][2:]] == ["Smagorinsky LES", "WALE LES"]
        assert all(c["status"] == "running" for c in setup["columns"])
        assert [m["model_id"] for m in setup["models"]] == [one, two]
        assert setup["initial_condition"]["source"] == "upload"
        assert setup["initial_condition"]["upsampled"] is True

        metrics = events_of(client, job["id"], "metrics")
        assert [m["step"] for m in metrics] == list(range(STEPS + 1))
        for m in metrics:
            assert set(m["columns"]) == set(KEYS), m["step"]
            assert m["reference"]["energy"] > 0
            for key in KEYS:
                column = m["columns"][key]
                assert column["status"] == "running", (key, column)
                assert column["rel_l2"] is not None and math.isfinite(column["rel_l2"])
        # At step 0 every column starts from the filtered reference; closures and the
        # one-frame model then step (timed), the two-frame model is warmed up at step 1.
        assert metrics[0]["reference"]["ms"] is None
        assert all(metrics[0]["columns"][k]["ms"] is None for k in KEYS)
        assert metrics[1]["columns"]["model:1"]["ms"] is None
        for key in ("model:0", "les:smagorinsky", "les:wale"):
            assert metrics[1]["columns"][key]["ms"] > 0, key
        assert metrics[-1]["columns"]["model:1"]["ms"] > 0

        stats = events_of(client, job["id"], "channel_stats")
        assert {s["source"] for s in stats} == {"reference", *KEYS}
        last = [s for s in stats if s["step"] == STEPS]
        assert {s["source"] for s in last} == {"reference", *KEYS}
        for s in last:
            assert s["running"]["n_snapshots"] >= STEPS, s["source"]
            assert len(s["running"]["yplus"]) == COARSE[1] // 2

        (summary,) = events_of(client, job["id"], "summary")
        assert job["result"]["summary"] == summary
        assert summary["geometry"] == "channel"
        assert [row["key"] for row in summary["rows"]] == KEYS
        for row in summary["rows"]:
            assert row["status"] == "completed", row
            assert set(row["errors"]) == set(PROFILES)
            assert all(math.isfinite(v) for v in row["errors"].values()), row
            assert row["ms"] > 0
            assert set(row["speedup"]) == {"smagorinsky", "wale"}

        # Frames as served: (3, ox, oy, oz) for every source.
        for source in ("reference", *KEYS):
            frame = frame_of(client, rollout_id, STEPS, source)
            assert frame.shape == (3, *COARSE), source
            assert np.isfinite(frame).all(), source
        missing = client.get(f"/api/rollouts/{rollout_id}/frames/0", params={"source": "error:0"})
        assert missing.status_code in (400, 404, 422), missing.text

        # Exports: the metrics as CSV, a row per step per source with the reported numbers;
        # netCDF and GIF (2D vorticity) refused with a sentence that says what to use.
        csv_rows = list(
            csv.DictReader(io.StringIO(client.get(f"/api/rollouts/{rollout_id}/metrics.csv").text))
        )
        assert {r["source"] for r in csv_rows} == {"reference", *KEYS}
        assert len(csv_rows) == (STEPS + 1) * (1 + len(KEYS))
        for m in metrics:
            for key, entry in m["columns"].items():
                (row,) = [r for r in csv_rows if r["source"] == key and int(r["step"]) == m["step"]]
                if entry["rel_l2"] is not None:
                    assert float(row["rel_l2"]) == pytest.approx(entry["rel_l2"], rel=1e-9)
        for export in ("export.nc", "animation.gif"):
            refused = client.get(f"/api/rollouts/{rollout_id}/{export}")
            assert refused.status_code == 409, refused.text
            assert "3D channel velocity" in refused.json()["detail"]

        # The summary's statistics errors recomputed from the stored frames.
        path = state.artifacts.resolve(state.artifacts.rollout(rollout_id))
        nu, lx, lz = setup["nu"], 4 * math.pi, 4 * math.pi / 3
        with h5py.File(path, "r") as f:
            lx, lz = float(f.attrs["lx"]), float(f.attrs["lz"])
        reference = _stored_statistics(path, "reference", None, nu, lx, lz)
        ref_event = last[[s["source"] for s in last].index("reference")]
        assert ref_event["running"]["n_snapshots"] == reference.n_snapshots
        # window 1: the windowed statistics are the last frame's.
        last_reference = _stored_statistics(path, "reference", None, nu, lx, lz, start=-1)
        for row in summary["rows"]:
            ours = profile_errors(_stored_statistics(path, row["key"], None, nu, lx, lz), reference)
            window = profile_errors(
                _stored_statistics(path, row["key"], None, nu, lx, lz, start=-1), last_reference
            )
            for name in PROFILES:
                where = (row["key"], name)
                assert row["errors"][name] == pytest.approx(ours[name], rel=1e-4, abs=1e-6), where
                assert row["window_errors"][name] == pytest.approx(
                    window[name], rel=1e-4, abs=1e-6
                ), where

        # From the first stored (coarse) frame of a dataset trajectory, coarse DNS beside.
        from_data = wait_for(
            client,
            submit(
                client,
                "compare",
                models=[{"model_id": one}],
                baselines=["none"],
                dataset_id=dataset_id,
                trajectory=1,
                steps=2,
            ),
            timeout=300,
        )
        assert from_data["status"] == "succeeded", from_data["error"]
        (setup,) = events_of(client, from_data["id"], "compare_setup")
        assert setup["initial_condition"]["source"] == "dataset"
        assert setup["initial_condition"]["trajectory"] == 1
        assert setup["initial_condition"]["upsampled"] is True
        first = frame_of(client, from_data["result"]["rollout_id"], 0, "les:none")
        assert first.shape == (3, *COARSE) and np.isfinite(first).all()

        # Refusals, each with its sentence.
        two_d = register_model(state.db, state.artifacts, *fno(0), name="2d")
        refused = _refusal(client, {"models": [{"model_id": two_d}], "baselines": ["wale"]})
        assert "params.baselines" in refused and "2D" in refused
        refused = _refusal(client, params | {"baselines": ["kepsilon"]})
        assert "params.baselines" in refused
        refused = _refusal(client, params | {"baselines": ["wale", "wale"]})
        assert "params.baselines" in refused and "once" in refused
        refused = _refusal(client, params | {"models": [{"model_id": one}, {"model_id": two_d}]})
        assert "params.models" in refused and "channel" in refused
        with state.db.session() as session:
            other = Dataset(
                name="coarser",
                flow="channel3d",
                params={
                    "channel_grid": FINE,
                    "output_grid": [4, 12, 4],
                    "stored_grid": [4, 12, 4],
                    "re_tau": 180.0,
                    "closure": "none",
                    "interval": 0.02,
                },
                shape=[1, 3, 4, 12, 4, 3],
                path="datasets/none.h5",
            )
            session.add(other)
            session.commit()
            other_id = other.id
        elsewhere = register_model(
            state.db,
            state.artifacts,
            build_model("fno3d", FNO3D),
            FNO3D,
            name="on 4×12×4",
            arch="fno3d",
            flow="channel3d",
            resolution=4,
            interval=0.02,
            dataset_id=other_id,
        )
        refused = _refusal(
            client, params | {"models": [{"model_id": one}, {"model_id": elsewhere}]}
        )
        assert "different grids" in refused and "8×12×8" in refused and "4×12×4" in refused
        refused = _refusal(client, params | {"reference": False})
        assert "params.reference" in refused


# --- in this process: a failed entry, a random start, report times, stored-frame errors -----


def _channel_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    artifacts = ArtifactStore(tmp_path / "artifacts")
    params = {
        "flow": "channel3d",
        "channel_grid": FINE,
        "output_grid": COARSE,
        "stored_grid": COARSE,
        "filter": "spectral",
        "re_tau": 180.0,
        "closure": "none",
        "interval": 0.02,
    }
    with db.session() as session:
        session.add(
            Dataset(
                id="filtered",
                name="filtered",
                flow="channel3d",
                params=params,
                shape=[1, 3, *COARSE, 3],
                path="x",
            )
        )
        session.commit()
    torch.manual_seed(0)
    model_id = register_model(
        db,
        artifacts,
        build_model("fno3d", FNO3D),
        FNO3D,
        name="untrained",
        arch="fno3d",
        flow="channel3d",
        resolution=8,
        interval=0.02,
        dataset_id="filtered",
    )
    return db, artifacts, model_id


def test_channel_comparison_in_process_keeps_going_past_a_failed_entry(tmp_path):
    """float16 needs CUDA: on this CPU worker that entry fails (NaN frames, null metrics, a
    failed row) and the float32 entry and the coarse DNS column run on from a random solver
    field on the fine grid. Every reported relative L2 equals the stored frames'; the
    summary's rel_l2_at follows the asked report times; the last windowed statistics hold
    ``window`` frames."""
    db, artifacts, model_id = _channel_db(tmp_path)
    steps = 3
    params = {
        "models": [{"model_id": model_id}, {"model_id": model_id, "precision": "float16"}],
        "baselines": ["none"],
        "steps": steps,
        "seed": 3,
        "window": 2,
        "report_times": [0.02, 0.06],
        "queue": "gpu",
    }
    job_id, result = run_in_process(db, artifacts, "compare", params, run_compare)
    with db.session() as session:
        events = [(e.type, e.payload) for e in jobs.events_after(session, job_id, 0, 1000)]
    (setup,) = [p for t, p in events if t == "compare_setup"]
    assert setup["initial_condition"] == {
        "id": None,
        "source": "random",
        "seed": 3,
        "upsampled": False,
    }
    assert [c["status"] for c in setup["columns"]] == ["running", "failed", "running"]
    assert "CUDA" in setup["columns"][1]["message"]
    assert setup["columns"][2]["label"].startswith("Coarse DNS")
    keys = ["model:0", "model:1", "les:none"]
    path = artifacts.resolve(artifacts.rollout(result["rollout_id"]))
    with h5py.File(path, "r") as f:
        assert list(f.attrs["sources"]) == ["reference", *keys]
        stored = {s: np.float64(f[s]["velocity"][...]) for s in ["reference", *keys]}
    assert np.isnan(stored["model:1"]).all()
    metrics = [p for t, p in events if t == "metrics"]
    assert [m["step"] for m in metrics] == list(range(steps + 1))
    for m in metrics:
        ref = stored["reference"][m["step"]]
        assert m["columns"]["model:1"]["status"] == "failed"
        assert m["columns"]["model:1"]["rel_l2"] is None
        for key in ("model:0", "les:none"):
            ours = np.linalg.norm(stored[key][m["step"]] - ref) / np.linalg.norm(ref)
            assert m["columns"][key]["rel_l2"] == pytest.approx(ours, rel=1e-5, abs=1e-7)
    assert metrics[0]["columns"]["model:0"]["rel_l2"] == 0
    stats = [p for t, p in events if t == "channel_stats" and p["step"] == steps]
    assert {s["source"] for s in stats} == {"reference", "model:0", "les:none"}
    assert all(s["window"]["n_snapshots"] == 2 for s in stats)
    assert all(s["running"]["n_snapshots"] == steps + 1 for s in stats)
    summary = result["summary"]
    rows = {row["key"]: row for row in summary["rows"]}
    assert list(rows) == keys
    assert rows["model:1"]["status"] == "failed" and rows["model:1"]["errors"]["u_mean"] is None
    assert summary["report_times"] == pytest.approx([0.02, 0.06])
    for key in ("model:0", "les:none"):
        assert rows[key]["status"] == "completed"
        assert list(rows[key]["rel_l2_at"]) == ["0.02", "0.06"]
        assert rows[key]["rel_l2_at"]["0.06"] == metrics[3]["columns"][key]["rel_l2"]

    # Channel-only parameters on a 2D comparison are refused with their sentence.
    two_d = register_model(db, artifacts, *fno(0), name="2d")
    with db.session() as session:
        for key, value in (("window", 3), ("drift", 0.2), ("baselines", ["wale"])):
            with pytest.raises(InvalidParams, match=f"params.{key}"):
                validate_params(session, "compare", {"models": [{"model_id": two_d}], key: value})
