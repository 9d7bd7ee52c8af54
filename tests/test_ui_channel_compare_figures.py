"""The Compare page's channel mode without a browser: the figures of
``app.ui.channel_compare_figures`` and the pure helpers of ``app.ui.pages.compare.channel``,
fed payloads shaped as ``docs/channel_compare_contract.md`` says (statistics computed by
``physics.channel.stats`` from a synthetic snapshot): a trace per source, the MKM 1999
marks and the wall-law guides, slices side by side, a diverged column labelled, and the
summary table's values equal to the summary payload's."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from dash import Patch

from app.ui import channel_compare_figures as ccf
from app.ui.pages.compare import channel
from physics.channel.stats import MKM_RE180, snapshot_statistics
from tests.test_channel_upload import NU, channel_snapshot

LX, LZ = 4 * math.pi, 4 * math.pi / 3
NX, NY, NZ = 8, 13, 6
KEYS = ["reference", "model:0", "model:1", "les:smagorinsky", "les:wale"]


def _setup() -> dict:
    return {
        "type": "compare_setup",
        "geometry": "channel",
        "flow": "channel3d",
        "steps": 8,
        "interval": 0.02,
        "nu": NU,
        "re_tau": 180.0,
        "rollout_id": "r" * 32,
        "grid": [NX, NY, NZ],
        "reference": {"grid": [16, 25, 12], "closure": "none", "filter": "box filter, width 2"},
        "columns": [
            {
                "key": "model:0",
                "kind": "model",
                "label": "ifactformer-a",
                "model_id": "a" * 32,
                "arch": "ifactformer_m3d",
                "parameters": 1160000,
                "precision": "float32",
                "status": "running",
                "message": None,
            },
            {
                "key": "model:1",
                "kind": "model",
                "label": "fno-b",
                "model_id": "b" * 32,
                "arch": "fno3d",
                "parameters": 5000,
                "precision": "float32",
                "status": "running",
                "message": None,
            },
            {
                "key": "les:smagorinsky",
                "kind": "closure",
                "label": "Smagorinsky LES",
                "closure": "smagorinsky",
                "status": "running",
                "message": None,
            },
            {
                "key": "les:wale",
                "kind": "closure",
                "label": "WALE LES",
                "closure": "wale",
                "status": "running",
                "message": None,
            },
        ],
        "window": 2,
        "spectra_yplus": [5, 15, 30, 100],
        "initial_condition": {"id": "i" * 32, "upsampled": False, "source": "upload"},
    }


@pytest.fixture(scope="module")
def snapshot():
    return channel_snapshot(NX, NY, NZ, seed=3)


@pytest.fixture(scope="module")
def stats(snapshot) -> dict:
    """Each source's newest ``channel_stats`` payload: the snapshot's statistics, scaled per
    source so the curves differ; model:1 has no window yet."""
    u, y = snapshot
    out = {}
    for i, key in enumerate(KEYS):
        result = snapshot_statistics(u * (1 + 0.05 * i), y, NU, LX, LZ).to_dict()
        window = None if key == "model:1" else result
        out[key] = {"step": 8, "t": 0.16, "running": result, "window": window, "seq": 10 + i}
    return out


def _metrics(step: int, diverged_at: int | None = None) -> dict:
    columns = {}
    for i, key in enumerate(KEYS[1:]):
        status = "running"
        message = None
        if key == "model:1" and diverged_at is not None and step >= diverged_at:
            status, message = "diverged", "kinetic energy above 10 × the reference's"
        columns[key] = {
            "rel_l2": 0.01 * step * (i + 1),
            "energy": 1.0 + step,
            "bulk": 15.0,
            "ms": None if step == 0 else 2.0 + i,
            "status": status,
            "message": message,
        }
    return {
        "type": "metrics",
        "step": step,
        "t": 0.02 * step,
        "reference": {"energy": 1.0, "bulk": 15.0, "ms": None if step == 0 else 9.0},
        "columns": columns,
    }


def _summary() -> dict:
    def errors(scale: float) -> dict:
        return {p: scale * (j + 1) for j, p in enumerate(ccf.PROFILES)}

    return {
        "geometry": "channel",
        "rows": [
            {
                "key": "model:0",
                "kind": "model",
                "label": "ifactformer-a",
                "model_id": "a" * 32,
                "closure": None,
                "status": "completed",
                "message": None,
                "stopped_at": None,
                "errors": errors(0.01),
                "window_errors": errors(0.02),
                "rel_l2_at": {"0.08": 0.1, "0.16": 0.2},
                "ms": 2.5,
                "speedup": {"smagorinsky": 4.0, "wale": 3.2},
            },
            {
                "key": "model:1",
                "kind": "model",
                "label": "fno-b",
                "model_id": "b" * 32,
                "closure": None,
                "status": "diverged",
                "message": "kinetic energy above 10 × the reference's",
                "stopped_at": 5,
                "errors": errors(0.3),
                "window_errors": {p: None for p in ccf.PROFILES},
                "rel_l2_at": {"0.08": 0.5, "0.16": None},
                "ms": 1.0,
                "speedup": {"smagorinsky": 10.0, "wale": 8.0},
            },
            {
                "key": "les:smagorinsky",
                "kind": "closure",
                "label": "Smagorinsky LES",
                "model_id": None,
                "closure": "smagorinsky",
                "status": "completed",
                "message": None,
                "stopped_at": None,
                "errors": errors(0.05),
                "window_errors": errors(0.06),
                "rel_l2_at": {"0.08": 0.3, "0.16": 0.4},
                "ms": 10.0,
                "speedup": {"smagorinsky": 1.0, "wale": 0.8},
            },
            {
                "key": "les:wale",
                "kind": "closure",
                "label": "WALE LES",
                "model_id": None,
                "closure": "wale",
                "status": "completed",
                "message": None,
                "stopped_at": None,
                "errors": errors(0.04),
                "window_errors": errors(0.05),
                "rel_l2_at": {"0.08": 0.3, "0.16": 0.35},
                "ms": 8.0,
                "speedup": {"smagorinsky": 1.25, "wale": 1.0},
            },
        ],
        "reference_ms": 40.0,
        "report_times": [0.08, 0.16],
    }


# --- sources -----------------------------------------------------------------------------------


def test_sources_are_the_reference_then_every_column_each_with_its_own_colour():
    sources = ccf.sources_of(_setup())
    assert [s["key"] for s in sources] == KEYS
    assert [s["kind"] for s in sources] == ["reference", "model", "model", "closure", "closure"]
    assert len({s["color"] for s in sources}) == len(KEYS)
    assert sources[0]["width"] > sources[1]["width"]
    assert [s["dash"] for s in sources[3:]] == ["dash", "dash"] and sources[1]["dash"] is None
    assert ccf.sources_of(None) == []


# --- statistics overlays -------------------------------------------------------------------


def test_mean_overlay_has_a_trace_per_source_the_wall_law_guides_and_the_mkm_marks(stats):
    sources = ccf.sources_of(_setup())
    fig = ccf.mean_overlay_figure(sources, stats)
    assert fig.layout.xaxis.type == "log"
    metas = [t.meta for t in fig.data]
    assert metas[: len(KEYS)] == KEYS
    assert [t.name for t in fig.data[: len(KEYS)]] == [s["label"] for s in sources]
    assert {"guide:sublayer", "guide:log-law", "mkm"} <= set(metas)
    mkm = fig.data[metas.index("mkm")]
    assert list(mkm.y) == [MKM_RE180.centreline_u_plus, MKM_RE180.bulk_u_plus]
    assert list(mkm.x) == [MKM_RE180.re_tau, MKM_RE180.re_tau]
    sublayer = fig.data[metas.index("guide:sublayer")]
    np.testing.assert_allclose(sublayer.y, sublayer.x)
    # Each trace is its source's U⁺ off the wall (a log axis cannot show y⁺ = 0).
    running = stats["model:0"]["running"]
    keep = [i for i, yp in enumerate(running["yplus"]) if yp > 0]
    trace = fig.data[1]
    np.testing.assert_allclose(trace.x, [running["yplus"][i] for i in keep])
    np.testing.assert_allclose(trace.y, [running["u_mean_plus"][i] for i in keep])
    # Without the marks (another Re_τ) the MKM trace goes.
    assert "mkm" not in [t.meta for t in ccf.mean_overlay_figure(sources, stats, marks=False).data]


def test_windowed_statistics_leave_out_a_source_without_a_window_and_say_so(stats):
    sources = ccf.sources_of(_setup())
    fig = ccf.mean_overlay_figure(sources, stats, which=ccf.WINDOW)
    metas = [t.meta for t in fig.data]
    assert "model:1" not in metas and {"reference", "model:0", "les:wale"} <= set(metas)
    assert fig.layout.meta["which"] == "window"
    assert any("fno-b" in (a.text or "") for a in fig.layout.annotations)


def test_rms_overlay_has_four_panels_with_a_trace_per_source_and_the_mkm_peak(stats):
    sources = ccf.sources_of(_setup())
    fig = ccf.rms_overlay_figure(sources, stats)
    per_source = [t for t in fig.data if t.meta in KEYS]
    assert len(per_source) == 4 * len(KEYS)
    assert [t.meta for t in per_source[: len(KEYS)]] == KEYS
    # The legend names each source once.
    assert [t.meta for t in per_source if t.showlegend] == KEYS
    axes = {t.xaxis for t in per_source}
    assert len(axes) == 4
    for i in range(1, 5):
        suffix = "" if i == 1 else str(i)
        assert fig.layout[f"xaxis{suffix}"].type == "log"
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["u′⁺", "v′⁺", "w′⁺", "−u′v′⁺"]
    mkm = [t for t in fig.data if t.meta == "mkm"]
    assert len(mkm) == 1 and list(mkm[0].y) == [MKM_RE180.peak_u_rms_plus]
    stress = [t for t in per_source if t.meta == "reference"][3]
    reference = stats["reference"]["running"]
    keep = [i for i, yp in enumerate(reference["yplus"]) if yp > 0]
    np.testing.assert_allclose(stress.y, [reference["reynolds_stress_plus"][i] for i in keep])


def test_statistics_figures_wait_for_statistics():
    sources = ccf.sources_of(_setup())
    for make in (ccf.mean_overlay_figure, ccf.rms_overlay_figure):
        fig = make(sources, {})
        assert not fig.data and "appear here" in fig.layout.annotations[0].text


# --- slices ----------------------------------------------------------------------------------


def test_full_y_unfolds_the_half_channel_of_the_statistics(snapshot):
    u, y = snapshot
    folded = snapshot_statistics(u, y, NU, LX, LZ).to_dict()["y"]
    np.testing.assert_allclose(ccf.full_y(folded, NY), y, atol=1e-6)
    u_even, y_even = channel_snapshot(NX, 12, NZ)
    folded = snapshot_statistics(u_even, y_even, NU, LX, LZ).to_dict()["y"]
    np.testing.assert_allclose(ccf.full_y(folded, 12), y_even, atol=1e-6)
    uniform = ccf.full_y(None, 4)
    np.testing.assert_allclose(uniform, [-0.75, -0.25, 0.25, 0.75])


def test_slices_put_one_panel_per_source_side_by_side_on_the_reference_range(snapshot):
    u, y = snapshot
    sources = ccf.sources_of(_setup())
    frames = {key: u * (1 + 0.5 * i) for i, key in enumerate(KEYS)}
    frames["model:1"] = np.full_like(u, np.nan)  # a stopped column's frames are NaN
    fig = ccf.slices_figure(
        sources, frames, y, lx=LX, lz=LZ, notes={"model:1": "diverged at step 5"}, step=6
    )
    assert [t.type for t in fig.data] == ["heatmap"] * len(KEYS)
    assert [t.meta for t in fig.data] == KEYS
    # Side by side: each panel on its own x axis, left to right.
    domains = [fig.layout[f"xaxis{'' if i == 1 else i}"].domain for i in range(1, len(KEYS) + 1)]
    assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(domains))
    mid = NZ // 2
    np.testing.assert_allclose(fig.data[0].z, u[0][:, :, mid].T, rtol=1e-6)
    np.testing.assert_allclose(fig.data[3].z, (u[0] * 2.5)[:, :, mid].T, rtol=1e-6)
    assert np.asarray(fig.data[2].z, dtype=object).tolist() == [[None]]  # NaN frame: blank
    assert fig.layout.coloraxis.cmin == pytest.approx(float(u[0][:, :, mid].min()))
    assert fig.layout.coloraxis.cmax == pytest.approx(float(u[0][:, :, mid].max()))
    texts = [a.text for a in fig.layout.annotations]
    assert "diverged at step 5" in texts and "step 6" in fig.layout.title.text
    assert fig.layout.meta["component"] == "u"
    # v on the x–z plane: a diverging range symmetric about 0.
    fig = ccf.slices_figure(sources, frames, y, lx=LX, lz=LZ, plane="xz", index=1, component="v")
    assert fig.layout.coloraxis.cmin == pytest.approx(-fig.layout.coloraxis.cmax)
    np.testing.assert_allclose(fig.data[0].z, u[1][:, 1, :].T, rtol=1e-6)
    assert not ccf.slices_figure(sources, {}, y, lx=LX, lz=LZ).data
    with pytest.raises(ValueError):
        ccf.slices_figure(sources, frames, y, lx=LX, lz=LZ, plane="zz")


# --- status, error growth, series ---------------------------------------------------------------


def test_series_follow_the_metrics_and_a_diverged_column_keeps_its_step():
    setup = _setup()
    series = channel.series_from(setup, [_metrics(0), _metrics(1)])
    assert series["geometry"] == "channel" and series["step"] == [0, 1]
    assert series["columns"]["les:wale"]["rel_l2"] == [0.0, 0.04]
    assert series["columns"]["model:0"]["ms"] == [None, 2.0]
    assert series["reference"]["energy"] == [1.0, 1.0]
    patch = channel.series_patch(series, [_metrics(2, diverged_at=2), _metrics(3, diverged_at=2)])
    assert isinstance(patch, Patch)
    status = channel.status_after(series["status"], [_metrics(2, 2), _metrics(3, 2)])
    assert status["model:1"] == {
        "status": "diverged",
        "message": "kinetic energy above 10 × the reference's",
        "step": 2,
    }
    assert status["model:0"]["status"] == "running"
    full = channel.series_from(setup, [_metrics(k, diverged_at=2) for k in range(4)])
    sources = ccf.sources_of(setup)
    states = ccf.column_states(sources, full["status"], None, "running")
    assert states["model:1"]["text"] == "diverged at step 2"
    assert states["model:0"]["text"] == "running" and states["reference"]["status"] == "running"
    fig = ccf.error_figure(sources, full, states)
    lines = [t for t in fig.data if t.meta in KEYS]
    assert [t.meta for t in lines] == KEYS[1:]
    stop = [t for t in fig.data if t.meta == "stop:model:1"]
    assert len(stop) == 1 and stop[0].marker.symbol == "x"
    assert "diverged at step 2" in stop[0].name
    # The summary's word wins once it arrives; a finished job completes running columns.
    states = ccf.column_states(sources, full["status"], _summary(), "succeeded")
    assert states["model:1"]["text"] == "diverged at step 5"
    assert states["model:0"]["status"] == "completed"
    assert states["reference"]["status"] == "completed"
    items = channel.status_items(sources, states, full)
    assert len(items[0].children) == len(KEYS)


def test_stats_store_keeps_each_sources_newest_payload(stats):
    events = [{"type": "metrics", "step": 1}] + [
        {"type": "channel_stats", "source": k, **v} for k, v in stats.items()
    ]
    held = channel.stats_update(None, events, reset=True)
    assert set(held["sources"]) == set(KEYS)
    newer = {"type": "channel_stats", "source": "les:wale", "step": 9, "running": {"a": 1}}
    held2 = channel.stats_update(held, [newer], reset=False)
    assert held2["sources"]["les:wale"]["step"] == 9 and held2["sources"]["model:0"]["step"] == 8
    assert channel.stats_update(held, [{"type": "metrics"}], reset=False) is channel.no_update


# --- the summary table -----------------------------------------------------------------------


def test_summary_table_values_equal_the_summary_payload():
    summary = _summary()
    sources = ccf.sources_of(_setup())
    table = ccf.summary_table(summary, sources)
    ids = [c["id"] for c in table["columns"]]
    assert ids[:3] == ["column", "status", "stopped_at"]
    assert [f"{p}" for p in ccf.PROFILES] == ids[3:8]
    assert [f"window_{p}" for p in ccf.PROFILES] == ids[8:13]
    assert ids[13:] == ["ms", "speedup_smagorinsky", "speedup_wale"]
    headers = {c["id"]: c["name"] for c in table["columns"]}
    assert headers["u_mean"][1] == "U⁺" and headers["uv"][1] == "−u′v′"
    assert headers["speedup_wale"] == ["Speedup over", "WALE"]
    rows = {r["key"]: r for r in table["data"]}
    assert list(rows) == ["model:0", "model:1", "les:smagorinsky", "les:wale", "reference"]
    for row in summary["rows"]:
        shown = rows[row["key"]]
        for p in ccf.PROFILES:
            assert shown[p] == row["errors"][p]
            assert shown[f"window_{p}"] == row["window_errors"][p]
        assert shown["ms"] == row["ms"] and shown["stopped_at"] == row["stopped_at"]
        for closure, value in row["speedup"].items():
            assert shown[f"speedup_{closure}"] == value
    assert rows["model:1"]["status"] == "diverged at step 5"
    assert rows["model:0"]["status"] == "completed"
    assert rows["model:0"]["column"] == "ifactformer-a"
    assert rows["reference"]["ms"] == 40.0
    # Numbers stay numbers: the native sort is numeric.
    assert all(c["type"] == "numeric" for c in table["columns"][2:])
    assert ccf.summary_table(None)["data"] == []


def test_null_errors_in_the_payload_stay_empty_cells():
    summary = _summary()
    summary["rows"][0]["errors"]["uv"] = None
    summary["rows"][0]["ms"] = float("nan")
    rows = {r["key"]: r for r in ccf.summary_table(summary)["data"]}
    assert rows["model:0"]["uv"] is None and rows["model:0"]["ms"] is None
    # Without the sources the payload's labels name the rows.
    assert rows["les:wale"]["column"] == "WALE LES"


# --- the form and the catalog ------------------------------------------------------------------


def test_channel_params_add_the_baselines_in_order_and_the_window():
    base = {"models": [{"model_id": "a", "precision": "float32"}], "steps": 8}
    params = channel.channel_params(base, ["wale", "smagorinsky"], 3)
    assert params["baselines"] == ["smagorinsky", "wale"] and params["window"] == 3
    assert "window" not in channel.channel_params(base, [], None)
    assert channel.channel_params(base, None, "")["baselines"] == []


def test_channel_catalog_offers_channel_snapshots_datasets_and_3d_models():
    from models.registry import contract_of

    ics = [
        {"id": "c", "flow": "channel3d", "shape": [3, 8, 13, 6]},
        {"id": "w", "flow": "ns2d-forced", "shape": [64, 64]},
    ]
    datasets = [
        {"id": "d", "flow": "channel3d", "shape": [2, 5, 8, 13, 6, 3], "job_status": "succeeded"},
        {"id": "e", "flow": "channel3d", "shape": [2, 5, 8, 13, 6, 3], "job_status": "running"},
    ]
    config3d = {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1}
    row = {"name": "fno-c", "parameter_count": 1000, "interval": 0.02, "resolution": 8}
    models = [
        {"id": "m", "flow": "channel3d", "arch": "fno3d", "dataset_id": "d", "config": config3d},
        {"id": "n", "flow": "ns2d-forced", "arch": "fno2d", "dataset_id": None, "config": {}},
    ]
    models = [{**row, **m} for m in models]
    contracts = {m["id"]: contract_of(m["arch"], m["config"]) for m in models}
    found = channel.channel_entries(ics, datasets, models, contracts)
    assert [i["id"] for i in found["initial_conditions"]] == ["c"]
    assert [d["id"] for d in found["datasets"]] == ["d"]
    assert found["datasets"][0]["n_trajectories"] == 2
    assert [m["id"] for m in found["models"]] == ["m"]
    assert found["models"][0]["grid_label"] == "8×13×6"
    merged = channel.merge_catalog(
        {"initial_conditions": [ics[1]], "datasets": [], "models": []}, found
    )
    assert [i["id"] for i in merged["initial_conditions"]] == ["w", "c"]
    from app.ui.pages.compare import helpers

    options, _, note = helpers.model_options(merged["models"], "channel3d", [])
    assert "8×13×6" in options[0]["label"] and "channel3d" in note


def test_the_mode_switch_shows_the_channel_views_for_a_channel_run():
    # toggle_mode: the baselines row, the 2D grid, overlays and summary; toggle_views: the
    # channel results and slices (a callback of its own, absent from a 2D run's page).
    toggle, views = channel.toggle_mode, channel.toggle_views
    catalog = {
        "initial_conditions": [{"id": "c", "flow": "channel3d"}, {"id": "w", "flow": "ns2d"}],
        "datasets": [],
        "models": [],
    }
    shown = toggle(catalog, "upload", "c", None, None)
    assert shown[0] == "form-row" and "hidden" in shown[1] and "hidden" in shown[2]
    assert views(catalog, "upload", "c", None, None) == ("compare-channel", "compare-ch-slices")
    plain = toggle(catalog, "upload", "w", None, None)
    assert "hidden" in plain[0] and plain[1] == "compare-grid"
    assert plain[2] == "grid-2 compare-overlays" and plain[3] == "card"
    assert all("hidden" in c for c in views(catalog, "upload", "w", None, None))
    # Once the run's setup arrives, it decides.
    assert views(catalog, "upload", "w", None, _setup())[0] == "compare-channel"
    assert "hidden" in toggle(catalog, "upload", "w", None, _setup())[1]
    assert "hidden" in views(catalog, "upload", "c", None, {"reference": True})[0]
    assert toggle(catalog, "upload", "c", None, {"reference": True})[1] == "compare-grid"
