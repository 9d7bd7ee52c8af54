"""Model comparison ("compare" jobs): several models at their precisions beside the
reference solver, through the REST API with a real Celery worker; the divergence guard,
int8 on the CPU, refusals, flat memory over long horizons; the precision and resampling
helpers underneath."""

from __future__ import annotations

import gc
import io
import math
import tracemalloc
import warnings
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import Dataset, Job, Model
from app.jobkinds import validate_params
from app.settings import Settings
from models.checkpoint import save_model
from models.quantize import (
    PointwiseLinear,
    PrecisionUnavailable,
    convert_pointwise,
    prepare,
    quantize_int8,
    to_half,
)
from models.registry import build_model, parameter_count
from physics.formats.store import DatasetWriter
from physics.resample import spectral_resample
from tests import frame_metrics as fm
from tests.conftest import service_env
from tests.test_integration import submit, wait_for
from workers.context import JobContext

FLOW = "ns2d-forced"
SMALL = {"width": 8, "modes": 6, "n_layers": 2}
INTERVAL = 0.05


# --- helpers (also used by test_compare_export) ------------------------------------------


def fno(seed: int, out_std: float = 0.05, scale: float = 1.0, **config) -> tuple[Any, dict]:
    """A tiny FNO2d whose output layer is random (std ``out_std``), all weights × ``scale``.
    scale 2 with out_std 0.3 makes a model whose energy grows ~15× in two steps."""
    config = SMALL | config
    torch.manual_seed(seed)
    model = build_model("fno2d", config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("project_out"):
                torch.nn.init.normal_(p, std=out_std)
            p.mul_(scale)
    return model, config


def register_model(
    db: Database,
    artifacts: ArtifactStore,
    model,
    config: dict,
    *,
    name: str,
    arch: str = "fno2d",
    flow: str = FLOW,
    resolution: int = 32,
    interval: float = INTERVAL,
    dataset_id: str | None = None,
    metadata: dict | None = None,
) -> str:
    """A checkpoint in the artifact store plus its Model row, as a train job leaves them."""
    with db.session() as session:
        row = Model(
            name=name,
            arch=arch,
            flow=flow,
            config=config,
            metrics={},
            parameter_count=parameter_count(model),
            resolution=resolution,
            interval=interval,
            dataset_id=dataset_id,
            path="",
        )
        session.add(row)
        session.flush()
        row.path = artifacts.model_dir(row.id)
        meta = {"dataset_id": dataset_id, "interval": interval, "resolution": resolution}
        save_model(artifacts.resolve(row.path), arch, config, model, meta | (metadata or {}))
        session.commit()
        return row.id


def write_dataset(
    db: Database, artifacts: ArtifactStore, n_traj: int = 3, n_time: int = 3, n: int = 32
) -> tuple[str, np.ndarray]:
    """A small vorticity dataset (random fields) registered like a generated one."""
    from app.db.tables import new_id

    dataset_id = new_id()
    relative = artifacts.dataset(dataset_id)
    path = artifacts.resolve(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(1).standard_normal((n_traj, n_time, n, n)).astype(np.float32)
    data -= data.mean(axis=(-1, -2), keepdims=True)
    times = np.arange(n_time) * INTERVAL
    attrs = {"flow": FLOW, "interval": INTERVAL, "nu": 1e-3, "resolution": n}
    writer = DatasetWriter(path, "vorticity", n_traj, times, n, 1.0, attrs)
    writer.write(0, data)
    writer.close()
    with db.session() as session:
        session.add(
            Dataset(
                id=dataset_id,
                name="tiny",
                flow=FLOW,
                params=attrs,
                shape=list(data.shape),
                path=relative,
            )
        )
        session.commit()
    return dataset_id, data


def upload_ic(client, n: int = 32, seed: int = 5) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((n, n)).astype(np.float32)
    w0 -= w0.mean()
    buffer = io.BytesIO()
    np.save(buffer, w0)
    response = client.post("/api/initial-conditions", files={"file": ("w0.npy", buffer.getvalue())})
    assert response.status_code == 201, response.text
    return response.json()["id"], w0


def run_in_process(
    db: Database,
    artifacts: ArtifactStore,
    kind: str,
    params: dict,
    runner,
    ctx_class=JobContext,
) -> tuple[str, dict]:
    """Run a job's runner in this process as a worker would (row claimed, then finished)."""
    with db.session() as session:
        data, queue = validate_params(session, kind, params)
        job = Job(kind=kind, params=data, queue=queue, status="running")
        session.add(job)
        session.commit()
        job_id = job.id
    ctx = ctx_class(
        job_id=job_id,
        kind=kind,
        params=data,
        settings=Settings(data_dir=artifacts.root),
        db=db,
        artifacts=artifacts,
        device=torch.device("cpu"),
    )
    result = runner(ctx)
    jobs.finish(db, job_id, "succeeded", result=result)
    return job_id, result


def events_of(client, job_id: str, type_: str) -> list[dict]:
    events = client.get(f"/api/jobs/{job_id}/events", params={"limit": 10_000}).json()
    return [e["payload"] for e in events if e["type"] == type_]


def frame_of(client, rollout_id: str, k: int, source: str) -> np.ndarray:
    response = client.get(f"/api/rollouts/{rollout_id}/frames/{k}", params={"source": source})
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def _app(settings: Settings):
    from app.main import create_app

    return create_app(settings, with_ui=False)


# Reported numbers against plain-numpy recomputations (tests/frame_metrics.py) from the
# stored float32 frames: the runner computes in float32, the recomputation in float64.
RTOL = 1e-5
ERROR_ATOL = 1e-7


def _close(reported, recomputed: float, what: str, atol: float = 0.0) -> None:
    """Relative agreement; errors (which are 0 where model and reference agree) pass
    atol=1e-7 (float32 round-off of a unit-scaled ratio)."""
    assert reported is not None, what
    assert reported == pytest.approx(recomputed, rel=RTOL, abs=atol), what


def _spectrum_close(reported, recomputed: np.ndarray, what: str) -> None:
    # Six significant digits are reported; shells ten decades below the peak carry float32
    # FFT noise of the whole field's size, hence an absolute floor at 1e-8 of the largest.
    assert reported is not None, what
    np.testing.assert_allclose(
        reported, recomputed, rtol=RTOL, atol=1e-8 * recomputed.max(), err_msg=what
    )


def assert_comparison_metrics_match_frames(
    metrics: list[dict], summary: dict, frame, n_ref: int, length: float, interval: float
) -> dict[str, dict[int, dict[str, Any]]]:
    """Every number of a comparison's metrics events and summary, recomputed in numpy from
    ``frame(source, k)`` (the stored frames): the reference's energy, enstrophy, spectrum;
    each model's energy and enstrophy on its own grid, and on the reference grid (its frame
    resampled) its spectrum, relative L2 and H1 errors, correlation, band error shares, its
    error frame; in the summary the errors at the report times, the time-averaged band
    shares and the decorrelation time. A model without metrics at a step has a non-finite
    frame there. Returns the recomputed values per model and step."""
    recomputed: dict[str, dict[int, dict[str, Any]]] = {}
    for m in metrics:
        k = m["step"]
        assert m["t"] == pytest.approx(k * interval)
        assert m["k"] == fm.shell_numbers(n_ref)
        reference = None
        if m["reference"] is not None:
            reference = frame("reference", k)
            where = f"reference, step {k}"
            _close(m["reference"]["energy"], fm.kinetic_energy(reference, length), where)
            _close(m["reference"]["enstrophy"], fm.enstrophy(reference), where)
            _spectrum_close(
                m["reference"]["spectrum"], fm.energy_spectrum(reference, length), where
            )
        for key, reported in m["models"].items():
            native = frame(f"model:{key}", k)
            where = f"model {key}, step {k}"
            if reported["energy"] is None:  # failed, stopped, or a non-finite prediction
                assert not np.isfinite(native).all(), where
                assert all(reported[name] is None for name in ("rel_l2", "corr")), where
                continue
            ours: dict[str, Any] = {}
            _close(reported["energy"], fm.kinetic_energy(native, length), where + " energy")
            _close(reported["enstrophy"], fm.enstrophy(native), where + " enstrophy")
            on_ref = fm.resample(native, n_ref)
            _spectrum_close(reported["spectrum"], fm.energy_spectrum(on_ref, length), where)
            if reference is None:
                assert reported["rel_l2"] is None and reported["band_errors"] is None, where
                continue
            ours["rel_l2"] = fm.rel_l2(on_ref, reference)
            ours["rel_h1"] = fm.rel_h1(on_ref, reference, length)
            ours["corr"] = fm.correlation(on_ref, reference)
            ours["band_errors"] = fm.band_shares(on_ref, reference)
            _close(reported["rel_l2"], ours["rel_l2"], where + " rel_l2", ERROR_ATOL)
            _close(reported["rel_h1"], ours["rel_h1"], where + " rel_h1", ERROR_ATOL)
            _close(reported["corr"], ours["corr"], where + " corr", ERROR_ATOL)
            for band, value in ours["band_errors"].items():
                _close(reported["band_errors"][band], value, f"{where} band {band}", ERROR_ATOL)
            np.testing.assert_allclose(
                frame(f"error:{key}", k), on_ref - reference, rtol=0, atol=1e-5, err_msg=where
            )
            recomputed.setdefault(key, {})[k] = ours
    for row in summary["rows"]:
        key = str(row["index"])
        ours_by_step = recomputed.get(key, {})
        where = f"summary row {key}"
        for t, reported in row["errors_at"].items():
            step = round(float(t) / interval)
            if step in ours_by_step:
                _close(reported, ours_by_step[step]["rel_l2"], f"{where} errors_at {t}", ERROR_ATOL)
            else:
                assert reported is None, (where, t)
        averaged = [ours_by_step[s]["band_errors"] for s in sorted(ours_by_step) if s > 0]
        for band in fm.BANDS:
            if averaged:
                mean = float(np.mean([b[band] for b in averaged]))
                _close(row["band_errors"][band], mean, f"{where} band {band}", ERROR_ATOL)
            else:
                assert row["band_errors"][band] is None, where
        decorrelated = [s for s in sorted(ours_by_step) if ours_by_step[s]["corr"] < 0.8]
        expected_time = decorrelated[0] * interval if decorrelated else None
        assert row["decorrelation_time"] == pytest.approx(expected_time), where
    return recomputed


def hdf5_frames(path):
    """``frame(source, k)`` reading a rollout or comparison file with h5py directly:
    group ``<source>``, dataset ``vorticity`` (time, n, n)."""

    def frame(source: str, k: int) -> np.ndarray:
        with h5py.File(path, "r") as f:
            return f[source]["vorticity"][k]

    return frame


# --- through the API with a real worker --------------------------------------------------

METRIC_KEYS = {
    "rel_l2",
    "rel_h1",
    "corr",
    "energy",
    "enstrophy",
    "spectrum",
    "band_errors",
    "ms",
    "status",
    "message",
}


@pytest.mark.integration
def test_models_side_by_side_with_the_reference_on_a_worker(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        db, artifacts = state.db, state.artifacts
        good = register_model(db, artifacts, *fno(0), name="good")
        two = register_model(
            db, artifacts, *fno(1, history=2, modes=4), name="two-frame", resolution=16
        )
        blow = register_model(db, artifacts, *fno(0, out_std=0.3, scale=2.0), name="blows up")
        ic_id, w0 = upload_ic(client)
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))

        steps = 6
        entries = [
            {"model_id": good},
            {"model_id": good, "precision": "int8"},
            {"model_id": two},
            {"model_id": blow},
            {"model_id": good, "precision": "bfloat16"},  # this worker has no GPU
        ]
        job = wait_for(
            client,
            submit(client, "compare", initial_condition_id=ic_id, models=entries, steps=steps),
        )
        assert job["status"] == "succeeded", job
        assert job["queue"] == "gpu"
        result = job["result"]
        rollout_id = result["rollout_id"]
        assert result["interval"] == INTERVAL  # the models' common interval
        assert result["initial_condition"]["kind"] == "upload"

        # The summary: stored in the result and sent as the last event.
        summary = result["summary"]
        assert events_of(client, job["id"], "summary") == [summary]
        rows = summary["rows"]
        assert [r["status"] for r in rows] == [
            "completed",
            "completed",
            "completed",
            "diverged",
            "failed",
        ]
        assert rows[3]["message"] == "diverged at step 2"
        assert "bfloat16 inference needs a CUDA GPU" in rows[4]["message"]
        assert [r["precision"] for r in rows] == [
            "float32",
            "int8",
            "float32",
            "float32",
            "bfloat16",
        ]
        assert rows[1]["quantized_fraction"] > 0 and rows[0]["quantized_fraction"] is None
        assert rows[2]["resolution"] == 16 and rows[2]["resampled_from"] == 32
        times = [f"{s * INTERVAL:g}" for s in (2, 3, 6)]  # 25, 50, 100 % of 6 steps
        for row in rows[:3]:
            assert list(row["errors_at"]) == times
            assert all(v > 0 for v in row["errors_at"].values())
            assert row["model_ms"] > 0 and row["solver_ms"] > 0
            assert math.isclose(row["speedup"], row["solver_ms"] / row["model_ms"])
            assert set(row["band_errors"]) == {"low", "mid", "high"}
        # int8 costs a little accuracy, no more.
        for t in times:
            f32, i8 = rows[0]["errors_at"][t], rows[1]["errors_at"][t]
            assert abs(i8 - f32) <= 0.05 * f32
        assert rows[3]["errors_at"][times[0]] is not None  # step 2: its last frame
        assert rows[3]["errors_at"][times[1]] is None
        assert rows[4]["model_ms"] is None and rows[4]["speedup"] is None

        # The events: one setup, then one metrics row per step with every model.
        (setup,) = events_of(client, job["id"], "compare_setup")
        assert setup["steps"] == steps and setup["reference"] is True
        assert [m["history"] for m in setup["models"]] == [1, 1, 2, 1, 1]
        assert setup["models"][2]["resampled_from"] == 32
        assert setup["models"][4]["status"] == "failed"
        metrics = events_of(client, job["id"], "metrics")
        assert [m["step"] for m in metrics] == list(range(steps + 1))
        for m in metrics:
            assert set(m) == {"type", "step", "t", "reference", "k", "models"}
            assert set(m["reference"]) == {"energy", "enstrophy", "spectrum", "ms"}
            assert len(m["reference"]["spectrum"]) == len(m["k"])
            assert set(m["models"]) == {"0", "1", "2", "3", "4"}
            assert all(set(v) == METRIC_KEYS for v in m["models"].values())
        first = metrics[0]["models"]
        assert first["0"]["rel_l2"] == 0 and first["0"]["corr"] == pytest.approx(1.0)
        assert metrics[0]["reference"]["ms"] is None and first["0"]["ms"] is None
        assert metrics[1]["models"]["2"]["ms"] is None  # warm-up frame from the solver
        assert metrics[2]["models"]["2"]["ms"] > 0
        assert [m["models"]["3"]["status"] for m in metrics] == ["running"] * 2 + ["diverged"] * 5
        assert metrics[2]["models"]["3"]["energy"] > 10 * metrics[2]["reference"]["energy"]
        assert metrics[3]["models"]["3"]["message"] == "diverged at step 2"
        assert metrics[3]["models"]["3"]["rel_l2"] is None
        assert all(m["models"]["4"]["status"] == "failed" for m in metrics)
        for m in metrics[1:]:
            assert m["reference"]["ms"] > 0 and m["models"]["0"]["ms"] > 0

        # Frames: each source by name; errors on the reference grid.
        rollout = client.get(f"/api/rollouts/{rollout_id}").json()
        assert rollout["kind"] == "compare" and rollout["frames"] == steps + 1
        names = [s["name"] for s in rollout["sources"]]
        assert names == ["reference"] + [f"model:{i}" for i in range(5)] + [
            f"error:{i}" for i in range(5)
        ]
        np.testing.assert_array_equal(frame_of(client, rollout_id, 0, "reference"), w0)
        np.testing.assert_array_equal(frame_of(client, rollout_id, 0, "model:0"), w0)
        reference = frame_of(client, rollout_id, steps, "reference")
        model0 = frame_of(client, rollout_id, steps, "model:0")
        np.testing.assert_allclose(
            frame_of(client, rollout_id, steps, "error:0"), model0 - reference, atol=1e-6
        )
        model2 = frame_of(client, rollout_id, steps, "model:2")
        assert model2.shape == (16, 16)
        on_ref = spectral_resample(torch.from_numpy(model2).double(), 32).numpy()
        np.testing.assert_allclose(
            frame_of(client, rollout_id, steps, "error:2"), on_ref - reference, atol=1e-5
        )
        assert np.isfinite(frame_of(client, rollout_id, 2, "model:3")).all()
        assert np.isnan(frame_of(client, rollout_id, 3, "model:3")).all()
        assert np.isnan(frame_of(client, rollout_id, 0, "model:4")).all()
        bad = client.get(f"/api/rollouts/{rollout_id}/frames/0", params={"source": "model"})
        assert bad.status_code == 422 and "model:0" in bad.json()["detail"]

        # From a dataset: the first model's held-out trajectory by default, and a warning
        # when a given trajectory was in a model's training data.
        dataset_id, data = write_dataset(db, artifacts)
        trained = register_model(
            db,
            artifacts,
            *fno(2),
            name="trained on tiny",
            dataset_id=dataset_id,
            metadata={"train_trajectories": [0, 1], "val_trajectories": [2]},
        )
        picked = wait_for(
            client,
            submit(
                client, "compare", dataset_id=dataset_id, models=[{"model_id": trained}], steps=2
            ),
        )
        assert picked["status"] == "succeeded", picked
        about = picked["result"]["initial_condition"]
        assert about["trajectory"] == 2 and "validation trajectory" in about["choice"]
        assert "warning" not in about
        np.testing.assert_allclose(
            frame_of(client, picked["result"]["rollout_id"], 0, "reference"), data[2, 0]
        )
        given = wait_for(
            client,
            submit(
                client,
                "compare",
                dataset_id=dataset_id,
                trajectory=0,
                models=[{"model_id": trained}, {"model_id": good}],
                steps=1,
                reference=False,
            ),
        )
        assert given["status"] == "succeeded", given
        about = given["result"]["initial_condition"]
        assert about["choice"] == "given" and trained in about["warning"]
        solo = client.get(f"/api/rollouts/{given['result']['rollout_id']}").json()
        assert [s["name"] for s in solo["sources"]] == ["model:0", "model:1"]
        (last,) = events_of(client, given["id"], "metrics")[-1:]
        assert last["reference"] is None and last["models"]["0"]["rel_l2"] is None
        assert last["models"]["0"]["energy"] > 0
        assert given["result"]["summary"]["rows"][0]["speedup"] is None


# --- every reported number, recomputed from the stored frames ----------------------------


def test_every_reported_metric_is_recomputed_from_the_stored_frames(tmp_path):
    """In this process (the worker's runner, no broker): a 32² model, the same at int8, a
    two-frame model on a 16² grid (resampled both ways) and one that diverges; then the
    same without a reference. Every metric of every step and the summary are recomputed in
    numpy from the HDF5 file the job wrote (``assert_comparison_metrics_match_frames``)."""
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    artifacts = ArtifactStore(tmp_path / "artifacts")
    good = register_model(db, artifacts, *fno(0), name="good")
    two = register_model(
        db, artifacts, *fno(1, history=2, modes=4), name="two-frame", resolution=16
    )
    blow = register_model(db, artifacts, *fno(0, out_std=0.3, scale=2.0), name="blows up")
    entries = [
        {"model_id": good},
        {"model_id": good, "precision": "int8"},
        {"model_id": two},
        {"model_id": blow},
    ]
    steps = 5
    for use_reference in (True, False):
        params = {"models": entries, "steps": steps, "seed": 3, "reference": use_reference}
        job_id, result = run_in_process(db, artifacts, "compare", params, _run_compare)
        with db.session() as session:
            events = jobs.events_after(session, job_id, 0, 10_000, "metrics")
            metrics = [e.payload for e in events]
        assert [m["step"] for m in metrics] == list(range(steps + 1))
        frame = hdf5_frames(artifacts.resolve(artifacts.rollout(result["rollout_id"])))
        recomputed = assert_comparison_metrics_match_frames(
            metrics, result["summary"], frame, 32, 1.0, result["interval"]
        )
        if use_reference:
            # Everything was exercised: three models to the end, the fourth until the guard
            # stopped it (its last, tripping frame included).
            counts = {key: len(by_step) for key, by_step in recomputed.items()}
            assert counts["0"] == counts["1"] == counts["2"] == steps + 1
            assert 2 <= counts["3"] <= steps
            assert recomputed["2"][steps]["rel_l2"] > 0.01  # not a trivial match
            assert [r["status"] for r in result["summary"]["rows"]][3] == "diverged"
        else:
            assert recomputed == {}
            assert all(m["reference"] is None for m in metrics)


# --- refusals ----------------------------------------------------------------------------


def test_compare_refuses_bad_parameters_and_stores_nothing(client):
    state = client.app.state.eddyscope
    db, artifacts = state.db, state.artifacts
    good = register_model(db, artifacts, *fno(0), name="good")
    other_flow = register_model(db, artifacts, *fno(0), name="kolmo", flow="kolmogorov2d")
    slower = register_model(db, artifacts, *fno(0), name="slow", interval=1.0)
    model3d = register_model(
        db,
        artifacts,
        build_model("fno3d", {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2}),
        {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2},
        arch="fno3d",
        name="3d",
    )
    with db.session() as session:
        session.add(Dataset(id="ds32", name="tiny", flow=FLOW, shape=[2, 3, 32, 32], path="x"))
        session.commit()
    one = [{"model_id": good}]
    cases = [
        ({"models": []}, "params.models: List should have at least 1 item"),
        ({"models": one * 9}, "at most 8 items"),
        ({"models": [{"model_id": "nope"}]}, "params.models[0].model_id: there is no model"),
        ({"models": [{"model_id": good, "precision": "int4"}]}, "params.models.0.precision"),
        ({"models": [*one, {"model_id": other_flow}]}, "trained on different flows"),
        ({"models": [*one, {"model_id": slower}]}, "step at different intervals"),
        ({"models": [{"model_id": model3d}]}, "comparisons run on 2D vorticity"),
        ({"models": one * 2}, "params.models[1]: model"),
        (
            {"models": [{"model_id": good, "precision": "float16"}], "queue": "cpu"},
            "float16 inference needs a CUDA GPU",
        ),
        ({"models": one, "initial_condition_id": "x", "dataset_id": "ds32"}, "not both"),
        ({"models": one, "trajectory": 1}, "trajectory needs dataset_id"),
        ({"models": one, "dataset_id": "ds32", "trajectory": 2}, "has 2 trajectories"),
        ({"models": one, "dataset_id": "gone"}, "there is no dataset with id 'gone'"),
        ({"models": one, "steps": 10_001}, "params.steps"),
        ({"models": one, "steps": 4, "report_times": [0.5]}, "outside the horizon (0, 0.2]"),
        ({"models": one, "divergence_factor": 1}, "params.divergence_factor"),
        ({"models": one, "nu": 0.5}, "params.nu"),
        ({"models": one, "colour": "red"}, "is not a parameter of this kind of job"),
    ]
    for params, expected in cases:
        response = client.post("/api/jobs", json={"kind": "compare", "params": params})
        assert response.status_code == 422, (params, response.text)
        assert expected in response.json()["detail"], (params, response.json())
    assert client.get("/api/jobs").json() == []


# --- long horizons keep memory flat ------------------------------------------------------


class _Probe(JobContext):
    """Counts live tensors at steps 50 and 300 and traces the Python memory allocated
    from step 250 on that is still alive at step 300."""

    samples: dict[int, tuple[int, int]]

    def report(self, type_, payload, progress=None, message=None):
        super().report(type_, payload, progress, message)
        step = payload.get("step")
        if type_ != "metrics" or step not in (50, 250, 300):
            return
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # some objects warn when their type is read
            tensors = sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))
        if step == 250:
            tracemalloc.start()  # traced only for the last 50 steps: tracing is slow
        type(self).samples[step] = (tensors, tracemalloc.get_traced_memory()[0])


def test_memory_stays_flat_over_a_long_horizon(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    artifacts = ArtifactStore(tmp_path / "artifacts")
    good = register_model(db, artifacts, *fno(0), name="good")
    _Probe.samples = {}
    try:
        params = {"models": [{"model_id": good}], "steps": 300, "interval": 0.01}
        job_id, result = run_in_process(
            db, artifacts, "compare", params, _run_compare, ctx_class=_Probe
        )
    finally:
        tracemalloc.stop()
    assert result["frames"] == 301
    (t50, _), (t250, _), (t300, grown) = (_Probe.samples[s] for s in (50, 250, 300))
    # Frames go to the file as they are made: no more tensors alive at step 300 than at
    # step 50, and what steps 250–300 allocated is freed but for warming caches (~40 kB
    # measured; keeping one 32² frame per step would leave 200 kB, a payload per step more).
    assert t250 <= t50 + 2 and t300 <= t50 + 2, _Probe.samples
    assert grown < 100_000, _Probe.samples
    with db.session() as session:
        assert len(jobs.events_after(session, job_id, 0, 10_000, "metrics")) == 301


def _run_compare(ctx):
    from workers.runners.compare import run_compare

    return run_compare(ctx)


# --- precision and resampling helpers ----------------------------------------------------


def test_int8_runs_on_the_cpu_and_quantises_the_pointwise_layers():
    model, _ = fno(0)
    x = torch.randn(2, 1, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
    # 1×1 convolutions become linear layers with the same numbers.
    converted = build_model("fno2d", SMALL)
    converted.load_state_dict(model.state_dict())
    assert convert_pointwise(converted) == 5  # lift, 2 pointwise, 2 projection layers
    with torch.no_grad():
        torch.testing.assert_close(converted(x), expected, atol=1e-5, rtol=1e-5)
    assert isinstance(converted.lift, PointwiseLinear)

    runner = prepare(model, "int8", "cpu", example=x[:1])
    assert runner.device.type == "cpu" and runner.precision == "int8"
    out = runner(x)
    assert out.dtype == torch.float32 and out.shape == expected.shape
    error = float((out - expected).norm() / expected.norm())
    assert 0 < error < 0.02
    linear = sum(m.weight.numel() for m in converted.modules() if isinstance(m, torch.nn.Linear))
    assert runner.quantized_fraction == pytest.approx(linear / parameter_count(model))
    # The model itself is untouched.
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
    _, fraction = quantize_int8(model)
    assert fraction == runner.quantized_fraction


def test_half_precision_needs_cuda_and_keeps_float32_at_the_edges():
    model, _ = fno(0)
    for precision in ("bfloat16", "float16"):
        if not torch.cuda.is_available():
            with pytest.raises(PrecisionUnavailable, match="needs a CUDA GPU"):
                prepare(model, precision, "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        prepare(model, "int4", "cpu")
    # The cast itself (what CUDA runs), on the CPU: spectral layers keep float32 FFTs.
    x = torch.randn(1, 1, 1, 32, 32)
    half = to_half(model, torch.bfloat16)
    assert next(half.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32
    with torch.no_grad():
        out = half(x.bfloat16()).float()
        expected = model(x)
    assert float((out - expected).norm() / expected.norm()) < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_half_precision_on_cuda():
    model, _ = fno(0)
    x = torch.randn(1, 1, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
    for precision in ("bfloat16", "float16"):
        runner = prepare(model, precision, "cuda")
        out = runner(x).cpu()
        assert out.dtype == torch.float32
        assert float((out - expected).norm() / expected.norm()) < 0.05


def test_spectral_resampling_is_exact_for_band_limited_fields():
    n = 32
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="xy")
    field = torch.sin(2 * math.pi * (3 * X + 2 * Y)) + 0.5 * torch.cos(2 * math.pi * 5 * Y)
    coarse = spectral_resample(field, 16)
    x16 = torch.arange(16, dtype=torch.float64) / 16
    X16, Y16 = torch.meshgrid(x16, x16, indexing="xy")
    exact16 = torch.sin(2 * math.pi * (3 * X16 + 2 * Y16)) + 0.5 * torch.cos(2 * math.pi * 5 * Y16)
    torch.testing.assert_close(coarse, exact16)
    torch.testing.assert_close(spectral_resample(coarse, 32), field)  # back up: exact
    torch.testing.assert_close(spectral_resample(field, 64)[::2, ::2], field)
    assert spectral_resample(field, 32) is field


def test_the_compare_task_is_routed_to_the_gpu_queue():
    from app.jobkinds import get_kind, submittable
    from workers.tasks import TASKS, runner_of

    kind = get_kind("compare")
    assert kind.task == "eddyscope.compare" and kind.task in TASKS
    assert kind.default_queue == "gpu" and "compare" in submittable()
    assert runner_of("compare").__name__ == "run_compare"
