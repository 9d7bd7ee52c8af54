"""Exports of comparisons and rollouts: netCDF (read back with xarray), CSV of the
per-step metrics, the animated GIF of the panels. The jobs run in this process (the runner a
worker would call), the exports through the REST API."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient
from PIL import Image

from app.settings import Settings
from physics.formats.comparison import CSV_COLUMNS
from physics.formats.gif import frame_indices
from tests import frame_metrics as fm
from tests.test_compare import (
    ERROR_ATOL,
    INTERVAL,
    _app,
    _close,
    _spectrum_close,
    assert_comparison_metrics_match_frames,
    events_of,
    fno,
    frame_of,
    register_model,
    run_in_process,
    upload_ic,
)


def _compare(ctx):
    from workers.runners.compare import run_compare

    return run_compare(ctx)


def _rollout(ctx):
    from workers.runners.rollout import run_rollout

    return run_rollout(ctx)


@pytest.fixture
def api(tmp_path, redis_url):
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'e.sqlite'}", broker_url=redis_url
    )
    with TestClient(_app(settings)) as client:
        yield client


STEPS = 4


@pytest.fixture
def comparison(api):
    """A finished comparison: a 32² model, the same at int8, a 16² model and one that
    diverges at step 2."""
    state = api.app.state.eddyscope
    good = register_model(state.db, state.artifacts, *fno(0), name="good")
    coarse = register_model(
        state.db, state.artifacts, *fno(1, modes=4), name="coarse", resolution=16
    )
    blow = register_model(state.db, state.artifacts, *fno(0, out_std=0.3, scale=2.0), name="b")
    ic_id, _ = upload_ic(api)
    params = {
        "initial_condition_id": ic_id,
        "models": [
            {"model_id": good},
            {"model_id": good, "precision": "int8"},
            {"model_id": coarse},
            {"model_id": blow},
        ],
        "steps": STEPS,
    }
    job_id, result = run_in_process(state.db, state.artifacts, "compare", params, _compare)
    return job_id, result["rollout_id"]


def test_netcdf_round_trips_through_xarray(api, comparison):
    job_id, rollout_id = comparison
    response = api.get(f"/api/rollouts/{rollout_id}/export.nc")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-netcdf"
    ds = xr.open_dataset(io.BytesIO(response.content), engine="h5netcdf")
    sources = ["reference", "model:0", "model:1", "model:2", "model:3"]
    assert list(ds["source"].values) == sources
    assert list(ds["model"].values) == sources[1:]
    assert ds["vorticity"].dims == ("source", "time", "y", "x")
    assert ds["vorticity"].shape == (5, STEPS + 1, 32, 32)
    assert ds["error"].shape == (4, STEPS + 1, 32, 32)
    assert ds["vorticity_native_2"].shape == (STEPS + 1, 16, 16)
    np.testing.assert_allclose(ds["time"].values, np.arange(STEPS + 1) * INTERVAL)
    np.testing.assert_allclose(ds["x"].values, np.arange(32) / 32)
    np.testing.assert_allclose(ds["y"].values, np.arange(32) / 32)
    assert list(ds["precision"].values) == ["", "float32", "int8", "float32", "float32"]

    # Parameters as attributes.
    assert ds.attrs["steps"] == STEPS and ds.attrs["interval"] == INTERVAL
    assert ds.attrs["kind"] == "compare" and ds.attrs["flow"] == "ns2d-forced"
    assert len(json.loads(ds.attrs["models"])) == 4
    rows = json.loads(ds.attrs["summary"])["rows"]
    assert rows[3]["message"] == "diverged at step 2"

    # The values equal the frames API's.
    for k in (0, STEPS):
        for j, source in enumerate(sources):
            if source == "model:2":
                continue
            np.testing.assert_array_equal(
                ds["vorticity"].values[j, k], frame_of(api, rollout_id, k, source)
            )
        for j in range(4):
            np.testing.assert_array_equal(
                ds["error"].values[j, k], frame_of(api, rollout_id, k, f"error:{j}")
            )
        np.testing.assert_array_equal(
            ds["vorticity_native_2"].values[k], frame_of(api, rollout_id, k, "model:2")
        )
    assert np.isnan(ds["vorticity"].sel(source="model:3").values[3:]).all()

    # Metrics over (source, time), as the events have them.
    metrics = events_of(api, job_id, "metrics")
    assert ds["rel_l2"].dims == ("source", "time")
    for m in metrics:
        k = m["step"]
        assert ds["energy"].values[0, k] == pytest.approx(m["reference"]["energy"])
        ms = m["models"]["0"]["ms"]
        assert ds["ms"].values[1, k] == pytest.approx(np.nan if ms is None else ms, nan_ok=True)
        assert ds["rel_l2"].values[2, k] == pytest.approx(m["models"]["1"]["rel_l2"])
        low = m["models"]["2"]["band_errors"]["low"]
        assert ds["band_error_low"].values[3, k] == pytest.approx(low)
        np.testing.assert_allclose(ds["spectrum"].values[0, k], m["reference"]["spectrum"])
    assert np.isnan(ds["rel_l2"].values[0]).all()  # the reference has no error
    assert np.isnan(ds["rel_l2"].values[4, 3:]).all()  # the stopped model after step 2
    assert list(ds["status"].values) == ["", "running", "running", "running", "diverged"]
    ds.close()


def test_metrics_csv_has_one_row_per_step_per_source(api, comparison):
    job_id, rollout_id = comparison
    response = api.get(f"/api/rollouts/{rollout_id}/metrics.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == (STEPS + 1) * 5
    by_key = {(int(r["step"]), r["source"]): r for r in rows}
    for m in events_of(api, job_id, "metrics"):
        k = m["step"]
        assert float(by_key[k, "reference"]["energy"]) == pytest.approx(m["reference"]["energy"])
        row = by_key[k, "model:1"]
        assert row["precision"] == "int8" and float(row["rel_l2"]) == pytest.approx(
            m["models"]["1"]["rel_l2"]
        )
    assert by_key[4, "model:3"]["status"] == "diverged"
    assert by_key[4, "model:3"]["rel_l2"] == ""
    assert by_key[4, "model:3"]["message"] == "diverged at step 2"


def test_animation_shows_every_panel(api, comparison):
    _, rollout_id = comparison
    response = api.get(f"/api/rollouts/{rollout_id}/animation.gif")
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "GIF" and image.n_frames == STEPS + 1
    # Five columns (reference and four models) of 128-pixel panels, two rows.
    assert image.size[0] > 5 * 128 and image.size[1] > 2 * 128
    few = Image.open(
        io.BytesIO(api.get(f"/api/rollouts/{rollout_id}/animation.gif?max_frames=2").content)
    )
    assert few.n_frames == 2
    assert api.get(f"/api/rollouts/{rollout_id}/animation.gif?max_frames=101").status_code == 422
    assert frame_indices(10_001, 100)[:2] == [0, 101] and len(frame_indices(10_001)) == 100
    assert frame_indices(10_001)[-1] == 10_000


def test_animation_names_each_panel_by_its_model_on_a_robust_colour_range(
    api, comparison, monkeypatch
):
    """The GIF's panels are titled with the models' names ("error: <name>" under each),
    a diverged model's panels say so, the colour range is the 99th percentile of the
    reference's |ω| over the frames drawn (not one frame's max), and a colour bar (the
    whole diverging ramp) sits under the panels."""
    import physics.formats.gif as gif
    from app.db.tables import Rollout

    _, rollout_id = comparison
    state = api.app.state.eddyscope
    calls = {}
    real = gif.render_gif

    def spy(h5_path, out_path, labels=None, max_frames=100, frame_ms=100, notes=None):
        calls.update(labels=dict(labels or {}), notes=dict(notes or {}))
        return real(h5_path, out_path, labels, max_frames=max_frames, notes=notes)

    monkeypatch.setattr(gif, "render_gif", spy)
    ranges = []
    real_limit = gif.robust_limit
    monkeypatch.setattr(gif, "robust_limit", lambda frames: ranges.append(list(frames)) or
                        real_limit(ranges[-1]))  # fmt: skip
    response = api.get(f"/api/rollouts/{rollout_id}/animation.gif?max_frames=3")
    assert response.status_code == 200
    labels, notes = calls["labels"], calls["notes"]
    assert labels["reference"] == "reference solver"
    assert labels["model:0"] == "good (float32)" and labels["model:1"] == "good (int8)"
    assert labels["model:2"] == "coarse (float32)" and labels["model:3"] == "b (float32)"
    assert labels["error:0"] == "error: good (float32)"
    assert labels["error:3"] == "error: b (float32)"
    assert not any(v.startswith("error:") and v[6:].strip().isdigit() for v in labels.values())
    assert notes == {"model:3": "diverged at step 2"}
    # The range: the 99th percentile of |ω| of the reference over the frames drawn.
    with state.db.session() as session:
        path = state.artifacts.resolve(session.get(Rollout, rollout_id).path)
    drawn = gif.frame_indices(STEPS + 1, 3)
    reference = [frame_of(api, rollout_id, k, "reference") for k in drawn]
    assert len(ranges[0]) == len(drawn)
    expected = np.percentile(np.abs(np.stack(reference)), 99)
    assert gif.robust_limit(reference) == pytest.approx(expected, rel=1e-6)
    assert expected < np.abs(np.stack(reference)).max()
    # Titles are wrapped, never cut: every word of the labels fits a line of a panel.
    font = __import__("PIL.ImageFont", fromlist=["x"]).load_default(size=11)
    long = "a-model-with-a-rather-long-name-that-needs-two-lines (bfloat16)"
    lines = gif.wrap_text(long, 128, font.getlength)
    assert len(lines) >= 2 and "".join(lines).replace(" ", "") == long.replace(" ", "")
    assert all(font.getlength(line) <= 128 for line in lines)
    assert gif.panel_labels(["reference", "model"], ["model"], {"model": "m1"}) == {
        "reference": "reference",
        "model": "m1",
        "error": "error: m1",
    }
    # The colour bar: one row of the first frame holds (almost) every level of the ramp.
    image = Image.open(io.BytesIO(response.content))
    pixels = np.asarray(image.convert("P"))
    levels = max(len(set(row[row < 251].tolist())) for row in pixels)
    assert levels > 200
    assert path.exists()


def test_robust_limit_ignores_a_few_extreme_cells():
    from physics.formats.gif import robust_limit

    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((32, 32)) for _ in range(4)]
    frames[2][3, 3] = 1e6  # one cell of one frame blows up
    frames[3][:] = np.nan
    limit = robust_limit(frames)
    assert 2.0 < limit < 4.0
    assert robust_limit([np.full((4, 4), np.nan)]) == 1.0
    assert robust_limit([np.zeros((4, 4))]) == 1.0


def test_exports_of_a_single_model_rollout(api):
    state = api.app.state.eddyscope
    good = register_model(state.db, state.artifacts, *fno(0), name="good")
    ic_id, w0 = upload_ic(api)
    params = {"initial_condition_id": ic_id, "model_id": good, "steps": 2}
    _, result = run_in_process(state.db, state.artifacts, "rollout", params, _rollout)
    rollout_id = result["rollout_id"]
    described = api.get(f"/api/rollouts/{rollout_id}").json()
    assert described["kind"] == "rollout"
    assert [s["name"] for s in described["sources"]] == ["reference", "model", "error"]

    ds = xr.open_dataset(
        io.BytesIO(api.get(f"/api/rollouts/{rollout_id}/export.nc").content), engine="h5netcdf"
    )
    assert list(ds["source"].values) == ["reference", "model"]
    np.testing.assert_array_equal(ds["vorticity"].values[0, 0], w0)
    np.testing.assert_allclose(
        ds["error"].values[0, 2], frame_of(api, rollout_id, 2, "error"), atol=1e-6
    )
    assert np.isfinite(ds["rel_l2"].values[1]).all()
    ds.close()
    rows = list(
        csv.DictReader(io.StringIO(api.get(f"/api/rollouts/{rollout_id}/metrics.csv").text))
    )
    assert [(r["step"], r["source"]) for r in rows[:2]] == [("0", "reference"), ("0", "model")]
    assert len(rows) == 6
    gif = Image.open(io.BytesIO(api.get(f"/api/rollouts/{rollout_id}/animation.gif").content))
    assert gif.n_frames == 3
    assert api.get("/api/rollouts/nope/export.nc").status_code == 404


# --- every reported number, recomputed from the frames the API serves ---------------------


def test_comparison_metrics_equal_numpy_recomputations_from_the_api_frames(api, comparison):
    """The comparison's ``/metrics`` rows and its summary against numpy recomputations from
    the frames endpoint: rel_l2, rel_h1, correlation, band shares, energy, enstrophy,
    spectra of every source at every step (``assert_comparison_metrics_match_frames``)."""
    job_id, rollout_id = comparison
    metrics = api.get(f"/api/rollouts/{rollout_id}/metrics").json()
    assert [m["step"] for m in metrics] == list(range(STEPS + 1))
    summary = api.get(f"/api/jobs/{job_id}").json()["result"]["summary"]

    def frame(source: str, k: int) -> np.ndarray:
        return frame_of(api, rollout_id, k, source)

    recomputed = assert_comparison_metrics_match_frames(metrics, summary, frame, 32, 1.0, INTERVAL)
    assert set(recomputed) == {"0", "1", "2", "3"}
    assert len(recomputed["0"]) == len(recomputed["2"]) == STEPS + 1


def _assert_rollout_metrics_match_frames(api, rollout_id: str, length: float, model: bool):
    """Every number of a single-model rollout's ``/metrics`` rows, recomputed in numpy
    from its frames: relative L2 error (model vs reference), energy, enstrophy and energy
    spectrum of both. Returns the recomputed rel_l2 per step."""
    rows = api.get(f"/api/rollouts/{rollout_id}/metrics").json()
    errors = []
    for m in rows:
        k = m["step"]
        reference = frame_of(api, rollout_id, k, "reference")
        n = reference.shape[-1]
        assert m["k"] == fm.shell_numbers(n)
        where = f"step {k}"
        _close(m["energy_reference"], fm.kinetic_energy(reference, length), where)
        _close(m["enstrophy_reference"], fm.enstrophy(reference), where)
        _spectrum_close(m["spectrum_reference"], fm.energy_spectrum(reference, length), where)
        if not model:
            assert "rel_l2" not in m and "energy_model" not in m
            continue
        predicted = frame_of(api, rollout_id, k, "model")
        errors.append(fm.rel_l2(predicted, reference))
        _close(m["rel_l2"], errors[-1], where + " rel_l2", ERROR_ATOL)
        _close(m["energy_model"], fm.kinetic_energy(predicted, length), where)
        _close(m["enstrophy_model"], fm.enstrophy(predicted), where)
        _spectrum_close(m["spectrum_model"], fm.energy_spectrum(predicted, length), where)
    return rows, errors


def test_single_model_rollout_metrics_equal_numpy_recomputations_from_the_api_frames(api):
    """The rollout runner's metrics (workers/runners/rollout.py) against the frames: with a
    model on ns2d-forced (L = 1), and reference-only on Kolmogorov flow (L = 2π, so the
    energy's and spectrum's dependence on the box size is held too)."""
    state = api.app.state.eddyscope
    good = register_model(state.db, state.artifacts, *fno(0), name="good")
    ic_id, _ = upload_ic(api)
    params = {"initial_condition_id": ic_id, "model_id": good, "steps": 3}
    _, result = run_in_process(state.db, state.artifacts, "rollout", params, _rollout)
    rows, errors = _assert_rollout_metrics_match_frames(api, result["rollout_id"], 1.0, True)
    assert len(rows) == 4 and errors[0] == 0 and min(errors[1:]) > 0.01

    params = {"flow": "kolmogorov2d", "resolution": 32, "steps": 2, "seed": 4}
    _, result = run_in_process(state.db, state.artifacts, "rollout", params, _rollout)
    rows, _ = _assert_rollout_metrics_match_frames(api, result["rollout_id"], 2 * np.pi, False)
    assert len(rows) == 3
