"""The channel-flow views: the figure functions (no browser), the panel's helpers, what the
panel reads (a stored snapshot, a dataset in The Well's layout, a job's ``channel_stats``
events) on SQLite, and one browser test: upload a channel snapshot on /upload and see its
statistics (U⁺ on a log axis, u_τ, Re_τ) and a slice."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.ui import channel_figures as cf
from app.ui import channel_panels as cp
from physics.channel.stats import LOG_LAW_B, LOG_LAW_KAPPA, MKM_RE180, snapshot_statistics
from tests import test_ui_browser
from tests.test_channel_upload import NU, NX, NY, NZ, channel_snapshot, npz_bytes

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

LX, LZ = 2 * math.pi, math.pi


@pytest.fixture(scope="module")
def snapshot() -> tuple[np.ndarray, np.ndarray]:
    return channel_snapshot()


@pytest.fixture(scope="module")
def stats(snapshot) -> dict:
    u, y = snapshot
    return snapshot_statistics(u, y, NU, LX, LZ, spectra_at_yplus=(5, 15, 30, 100)).to_dict()


# --- figures ------------------------------------------------------------------------------


def test_mean_profile_is_on_a_log_axis_with_the_guide_lines(stats):
    fig = cf.mean_profile_figure(stats)
    assert fig.layout.xaxis.type == "log"
    names = [t.name for t in fig.data]
    assert len(fig.data) == 4 and names[0] == "U⁺" and names[3].startswith("MKM")
    profile, sublayer, log_law, marks = fig.data
    # The wall point (y⁺ = 0) cannot be on a log axis: every other point is.
    assert len(profile.x) == len(stats["yplus"]) - 1 and min(profile.x) > 0
    np.testing.assert_allclose(sublayer.y, sublayer.x)
    assert max(sublayer.x) <= cf.SUBLAYER_MAX_YPLUS + 1e-9
    np.testing.assert_allclose(log_law.y, np.log(np.asarray(log_law.x)) / LOG_LAW_KAPPA + LOG_LAW_B)
    assert min(log_law.x) >= cf.LOG_LAW_MIN_YPLUS - 1e-9
    assert sublayer.line.dash == "dash" and log_law.line.dash == "dash"
    assert list(marks.y) == [MKM_RE180.centreline_u_plus, MKM_RE180.bulk_u_plus]
    assert len(cf.mean_profile_figure(stats, reference=False).data) == 3


def test_rms_stress_and_spectra_figures(stats):
    rms = cf.rms_figure(stats)
    assert rms.layout.xaxis.type == "log"
    assert [t.name for t in rms.data] == ["u′⁺", "v′⁺", "w′⁺", "MKM u′⁺ peak"]

    stress = cf.stress_figure(stats)
    assert len(stress.data) == 4
    linear = stress.data[3]
    np.testing.assert_allclose(linear.y, 1 - np.asarray(linear.x))
    np.testing.assert_allclose(
        stress.data[2].y, np.asarray(stress.data[0].y) + np.asarray(stress.data[1].y)
    )

    spectra = cf.spectra_figure(stats, 2)
    assert len(spectra.data) == 6
    assert spectra.layout.xaxis.type == "log" and spectra.layout.yaxis.type == "log"
    assert spectra.layout.xaxis2.type == "log" and spectra.layout.yaxis2.type == "log"
    assert f"{stats['spectra_yplus'][2]:.3g}" in spectra.layout.title.text
    assert min(spectra.data[0].x) > 0  # k = 0 left out
    np.testing.assert_allclose(spectra.data[0].x, stats["kx"][1:])
    np.testing.assert_allclose(spectra.data[3].x, stats["kz"][1:])
    # The default plane is the one nearest y⁺ = 15.
    planes = cf.spectra_planes(stats)
    assert [p["requested"] for p in planes] == [5, 15, 30, 100]
    assert cf.nearest_spectra_plane(stats) == 1
    assert (
        cf.spectra_figure(stats).layout.title.text == cf.spectra_figure(stats, 1).layout.title.text
    )


def test_empty_statistics_give_empty_figures():
    for make in (cf.mean_profile_figure, cf.rms_figure, cf.stress_figure, cf.spectra_figure):
        fig = make(None)
        assert not fig.data and fig.layout.annotations


def test_slices_use_the_true_y_points(snapshot):
    u, y = snapshot
    xy = cf.slice_figure(u, y, lx=LX, lz=LZ, plane="xy", index=3, component="u")
    heat = xy.data[0]
    assert heat.type == "heatmap"
    np.testing.assert_allclose(heat.y, y, rtol=1e-6, atol=1e-7)  # non-uniform, as given
    np.testing.assert_allclose(heat.x, np.arange(NX) * LX / NX, rtol=1e-6)
    np.testing.assert_allclose(heat.z, u[0, :, :, 3].T, rtol=1e-6)
    assert heat.zmin == pytest.approx(float(u[0, :, :, 3].min()), rel=1e-6)

    yplus = np.linspace(0, 180, NY)
    xz = cf.slice_figure(u, y, lx=LX, lz=LZ, plane="xz", index=2, component="v", yplus=yplus)
    np.testing.assert_allclose(xz.data[0].z, u[1, :, 2, :].T, rtol=1e-6)
    np.testing.assert_allclose(xz.data[0].y, np.arange(NZ) * LZ / NZ, rtol=1e-6)
    assert xz.data[0].zmin == -xz.data[0].zmax  # diverging, symmetric about 0
    assert f"y⁺ = {yplus[2]:.3g}" in xz.layout.title.text

    yz = cf.slice_figure(u, y, lx=LX, lz=LZ, plane="yz", index=1, component="magnitude")
    np.testing.assert_allclose(
        yz.data[0].z, np.sqrt((u[:, 1].astype(np.float64) ** 2).sum(axis=0)), rtol=1e-6
    )
    np.testing.assert_allclose(yz.data[0].y, y, rtol=1e-6, atol=1e-7)
    assert cf.plane_size((NX, NY, NZ), "xz") == NY
    with pytest.raises(ValueError, match="plane"):
        cf.slice_figure(u, y, lx=LX, lz=LZ, plane="zz")


def test_summary_and_panel_helpers(stats):
    items = dict(cf.summary_items(stats))
    assert items["Re_τ"] == f"{stats['re_tau']:.4g}" and "u_τ" in items
    frame = {
        "shape": [NX, NY, NZ],
        "y": channel_snapshot()[1].tolist(),
        "lx": LX,
        "lz": LZ,
        "yplus": ((1 - np.abs(channel_snapshot()[1])) * 180).tolist(),
    }
    # The x–z plane starts nearest y⁺ = 15 in the lower half; the others in the middle.
    j = cp.default_position(frame, "xz")
    assert frame["y"][j] <= 0
    assert abs(frame["yplus"][j] - 15) == min(
        abs(v - 15) for v, yy in zip(frame["yplus"], frame["y"], strict=True) if yy <= 0
    )
    assert cp.default_position(frame, "xy") == NZ // 2
    marks = cp.position_marks(frame, "xz")
    assert 0 in marks and NY - 1 in marks and marks[0].startswith("y⁺")
    assert cp.position_label(frame, "yz", 2) == f"x = {2 * LX / NX:.4g} (point 3 of {NX})"


# --- what the panel reads (SQLite; the UI's data layer without a browser) -------------------


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"


@pytest.fixture
def ui_state(client):
    from app.ui.context import set_state

    state = client.app.state.eddyscope
    set_state(state)
    return state


def test_a_stored_snapshot_gives_statistics_frame_and_slices(ui_state):
    from app.services import channel_views, initial_conditions

    u, y = channel_snapshot()
    ic = initial_conditions.store_channel_upload(
        ui_state, "c.npz", npz_bytes(velocity=u, y=y, nu=NU), "channel3d"
    )
    view = channel_views.channel_view(ui_state, {"kind": "ic", "id": ic["id"]})
    assert view["error"] is None
    stats = view["stats"]
    assert stats["re_tau"] == pytest.approx(ic["stats"]["re_tau"])
    # Spectra at several planes from the wall to the centre, for the y⁺ picker.
    planes = cf.spectra_planes(stats)
    assert len(planes) >= 3 and planes[-1]["yplus"] == pytest.approx(stats["yplus"][-1])
    frame = view["frame"]
    assert frame["shape"] == [NX, NY, NZ] and len(frame["yplus"]) == NY
    assert "from the file" in view["note"]
    assert channel_views.channel_frame(ui_state, {"kind": "ic", "id": ic["id"]})[
        "velocity"
    ].shape == (3, NX, NY, NZ)


def _well_dataset(state, u: np.ndarray, y: np.ndarray, n_traj: int = 2, n_time: int = 3) -> str:
    from app.db.tables import Dataset, new_id

    dataset_id = new_id()
    relative = state.artifacts.dataset(dataset_id)
    path = state.artifacts.resolve(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    velocity = np.stack(
        [
            np.stack([np.moveaxis(u * (1 + 0.1 * t + k), 0, -1) for t in range(n_time)])
            for k in range(n_traj)
        ]
    )  # (traj, time, nx, ny, nz, 3)
    with h5py.File(path, "w") as f:
        f.attrs["n_spatial_dims"] = 3
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y", "z"]
        dims.create_dataset("y", data=y)
        dims.create_dataset("time", data=np.arange(n_time) * 0.5)
        f.create_group("t1_fields").create_dataset("velocity", data=velocity.astype(np.float32))
    with state.db.session() as session:
        session.add(
            Dataset(
                id=dataset_id,
                name="channel-test",
                flow="channel3d",
                params={"re_tau": 180.0, "lx": LX, "lz": LZ},
                shape=list(velocity.shape),
                path=relative,
            )
        )
        session.commit()
    return dataset_id


def test_a_channel_dataset_snapshot_is_read_in_the_wells_layout(ui_state):
    from app.services import channel_views

    u, y = channel_snapshot()
    dataset_id = _well_dataset(ui_state, u, y)
    layout = channel_views.channel_dataset_layout(ui_state, dataset_id)
    assert (layout["n_trajectories"], layout["n_snapshots"]) == (2, 3)
    assert layout["grid"] == [NX, NY, NZ] and layout["times"] == [0.0, 0.5, 1.0]
    frame = channel_views.channel_dataset_frame(ui_state, dataset_id, 1, -1)
    np.testing.assert_allclose(frame["velocity"], u * (1 + 0.2 + 1), rtol=1e-6)
    assert frame["nu"] == pytest.approx(1 / 180) and frame["lx"] == pytest.approx(LX)
    assert frame["t"] == 1.0
    view = channel_views.channel_view(
        ui_state, {"kind": "dataset", "id": dataset_id, "trajectory": 0, "time": 0}
    )
    assert view["stats"]["re_tau"] == pytest.approx(180, rel=0.02) and view["stats"]["t"] == 0.0
    with pytest.raises(ValueError, match="Trajectory 5"):
        channel_views.channel_dataset_frame(ui_state, dataset_id, 5, 0)


def test_live_statistics_are_read_incrementally_from_channel_stats_events(ui_state, stats):
    from app.db.tables import Job, JobEvent
    from app.services import channel_views, jobs_view

    with ui_state.db.session() as session:
        parent = Job(kind="generate", status="running", params={"flow": "channel3d"})
        session.add(parent)
        session.flush()
        shard = Job(kind="generate", status="running", parent_id=parent.id, params={})
        session.add(shard)
        session.commit()
        parent_id, shard_id = parent.id, shard.id
    assert jobs_view.active_channel_job(ui_state) == parent_id

    first = channel_views.latest_channel_stats(ui_state, parent_id, 0)
    assert first["job"]["status"] == "running" and first["event"] is None and first["new"] == 0

    def emit(job_id: str, t: float, re_tau: float) -> None:
        with ui_state.db.session() as session:
            session.add(
                JobEvent(
                    job_id=job_id,
                    type="channel_stats",
                    payload={"t": t, "stats": {**stats, "re_tau": re_tau}},
                )
            )
            session.add(JobEvent(job_id=job_id, type="progress", payload={"progress": 0.5}))
            session.commit()

    emit(parent_id, 1.0, 170.0)
    emit(shard_id, 2.0, 175.0)  # a shard's statistics count as its parent's
    update = channel_views.latest_channel_stats(ui_state, parent_id, 0)
    assert update["new"] == 2 and update["event"]["t"] == 2.0
    assert update["event"]["stats"]["re_tau"] == 175.0
    seq = update["event"]["seq"]
    assert channel_views.latest_channel_stats(ui_state, parent_id, seq)["event"] is None
    emit(parent_id, 3.0, 178.0)
    later = channel_views.latest_channel_stats(ui_state, parent_id, seq)
    assert later["new"] == 1 and later["event"]["stats"]["re_tau"] == 178.0
    # No 3D frame yet: the slices say so rather than fail.
    assert channel_views.channel_job_frame(ui_state, parent_id) is None
    note = cp.live_note(later["job"], {"t": 3.0, "events": 3})
    assert "t = 3" in note.children


# --- the browser ---------------------------------------------------------------------------

CHANNEL_JS = """
const mean = document.querySelector('#upload-channel-mean .js-plotly-plot');
const slice = document.querySelector('#upload-channel-slice .js-plotly-plot');
if (!mean || !mean.data || !slice || !slice.data) { return null; }
return JSON.stringify({
    xaxis: mean.layout.xaxis.type,
    names: mean.data.map(t => t.name),
    points: (mean.data[0].x || []).length,
    slice: slice.data.length ? slice.data[0].type : null,
    rows: (slice._fullData && slice._fullData.length && slice._fullData[0].z)
        ? slice._fullData[0].z.length : 0
});
"""


@pytest.mark.browser
def test_a_channel_snapshot_uploaded_on_the_upload_page_shows_its_statistics(
    browser, live_server: str, tmp_path: Path
):
    from selenium.webdriver.common.by import By

    from tests.test_ui_browser import _choose, _text, _upload, _wait

    u, y = channel_snapshot()
    path = tmp_path / "channel_snapshot.npz"
    np.savez(path, velocity=u, y=y)

    browser.get(f"{live_server}/upload")
    _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#upload-file input[type=file]"),
        30,
        "the upload area",
    )
    _choose(browser, "upload-flow", "channel3d")
    _wait(lambda: "velocity" in _text(browser, "upload-hint"), 15, "the channel upload hint")
    _upload(browser, path)
    success = _wait(lambda: _text(browser, "upload-success"), 60, "the success message")
    assert "Stored" in success and "8×17×8" in success, success
    assert "assumed (1/180)" in _text(browser, "upload-nu-note")
    note = _text(browser, "upload-grid-note")
    assert f"Interpolated from {NY} y points onto the solver's {NY} cell centres" in note, note

    def drawn():
        raw = browser.execute_script(CHANNEL_JS)
        seen = json.loads(raw) if raw else None
        return seen if seen and seen["points"] and seen["slice"] == "heatmap" else None

    seen = _wait(drawn, 60, "the U⁺ profile and a slice")
    assert seen["xaxis"] == "log"
    assert "U⁺ = y⁺" in seen["names"] and any(n.startswith("U⁺ = ln") for n in seen["names"])
    # Chebyshev points (walls included) were interpolated onto the solver's NY cell centres:
    # the folded half holds (NY + 1) // 2 centres, none on the wall.
    assert seen["points"] == (NY + 1) // 2
    assert seen["rows"] == NY  # the x–y plane: every y point
    summary = _wait(lambda: _text(browser, "upload-channel-summary"), 30, "the statistics")
    assert "u_τ" in summary, summary
    re_tau = re.search(r"Re_τ\s+([0-9.]+)", summary)
    assert re_tau and float(re_tau.group(1)) == pytest.approx(180, rel=0.02), summary

    # A 2D .npy dropped while the flow is channel3d is answered, not ignored.
    flat = tmp_path / "vorticity.npy"
    np.save(flat, np.zeros((16, 16), dtype=np.float32))
    _upload(browser, flat)
    refused = _wait(lambda: _text(browser, "upload-error"), 60, "the refusal")
    assert "vorticity.npy was not stored" in refused and "a 2D field" in refused, refused

    # Another plane redraws the slice: x–z has nz rows.
    browser.find_element(By.XPATH, "//*[@id='upload-channel-plane']//input[@value='xz']").click()
    _wait(
        lambda: (json.loads(browser.execute_script(CHANNEL_JS) or "null") or {}).get("rows") == NZ,
        30,
        "the x–z slice",
    )
    assert "y⁺" in _text(browser, "upload-channel-position-label")
