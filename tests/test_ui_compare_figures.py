"""The Compare page's figures and table on small arrays: no browser, no server."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from app.ui import compare_figures as cf
from app.ui.components import png_config


def _roundtrip(fig: go.Figure) -> dict:
    # What Dash sends to the browser must serialise.
    return json.loads(fig.to_json())


def _entries(n: int = 2, **status) -> list[dict]:
    out = []
    for i in range(n):
        entry = {"index": i, "name": f"m{i}", "precision": "float32"}
        out.append(
            {
                "key": str(i),
                "label": cf.entry_label(entry),
                "color": cf.entry_color(i),
                **status.get(str(i), {}),
            }
        )
    return out


# --- the field grid ----------------------------------------------------------------------


def test_grid_has_a_field_and_an_error_panel_per_column_with_shared_ranges():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(16, 16)).astype(np.float32)
    model0 = reference + 0.1 * rng.normal(size=(16, 16)).astype(np.float32)
    model1 = 50 * reference[::2, ::2]  # blew up, on its own coarser grid
    columns = [{"key": "reference"}, {"key": "0"}, {"key": "1"}]
    figs = cf.grid_figures(
        columns,
        {"reference": reference, "0": model0, "1": model1},
        {"0": model0 - reference, "1": rng.normal(size=(16, 16))},
        with_error_row=True,
        length=2.0,
        uirevision="r",
    )
    assert list(figs) == ["reference", "0", "1"]
    limits = set()
    for fig in figs.values():
        heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
        assert len(heatmaps) == 2  # field on top, error under it
        assert (
            fig.layout.coloraxis.colorscale[0][1]
            == go.Figure(
                layout=dict(coloraxis=dict(colorscale=cf.DIVERGING))
            ).layout.coloraxis.colorscale[0][1]
        )
        limits.add((fig.layout.coloraxis.cmax, fig.layout.coloraxis2.cmax))
        assert fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax
        assert fig.layout.uirevision == "r"
        _roundtrip(fig)
    # One range for every column: the reference's, so the blown-up model saturates.
    assert len(limits) == 1
    ((vorticity, _error),) = limits
    assert math.isclose(vorticity, float(np.abs(reference).max()), rel_tol=1e-6)
    # Only the first column draws the colour bars; the model on the coarse grid keeps it.
    assert figs["reference"].layout.coloraxis.showscale is True
    assert figs["0"].layout.coloraxis.showscale is False
    assert np.asarray(figs["1"].data[0].z).shape == (8, 8)
    # The reference has no error: its lower panel is blank and says so.
    texts = [a.text for a in figs["reference"].layout.annotations]
    assert any("no error" in t for t in texts)


def test_a_stopped_model_panel_is_blank_with_its_note_and_no_error_row_without_reference():
    nan = np.full((8, 8), np.nan, dtype=np.float32)
    ok = np.ones((8, 8), dtype=np.float32)
    figs = cf.grid_figures(
        [{"key": "0", "note": "diverged at step 7"}, {"key": "1"}],
        {"0": nan, "1": ok},
        {},
        with_error_row=False,
    )
    stopped = figs["0"]
    assert len(stopped.data) == 1 and "diverged at step 7" in stopped.layout.annotations[0].text
    assert "coloraxis2" not in figs["1"].layout.to_plotly_json()  # one row, one colour axis
    assert np.asarray(figs["1"].data[0].z).shape == (8, 8)


# --- spectra -----------------------------------------------------------------------------


def _spectrum(k: np.ndarray, slope: float, scale: float = 1.0) -> list[float]:
    return (scale * np.where(k > 0, k, np.inf) ** slope).tolist()


def test_spectra_overlay_every_column_on_log_axes_with_both_guide_slopes():
    k = np.arange(0, 33, dtype=float)
    fig = cf.spectra_figure(
        k,
        _spectrum(k, -3.0),
        [
            ("m0 (float32)", cf.entry_color(0), _spectrum(k, -3.0, 1.2)),
            ("m1 (int8)", cf.entry_color(1), _spectrum(k, -2.0)),
            ("m2 (float32)", cf.entry_color(2), None),  # stopped: listed, no line
        ],
        title="Energy spectra · t = 1",
        uirevision="r",
    )
    names = [t.name for t in fig.data]
    assert names[:4] == [cf.REFERENCE_LABEL, "m0 (float32)", "m1 (int8)", "m2 (float32)"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    guides = [t for t in fig.data if t.meta and t.meta.get("guide")]
    assert sorted(t.name for t in guides) == sorted(["k⁻³", "k⁻⁵ᐟ³"])
    # k = 0 is not drawn on a log axis; the stopped model has no values.
    assert all(x > 0 for x in fig.data[0].x)
    assert all(v is None for v in fig.data[3].y)
    # Each guide has its slope: log E against log k.
    for trace in guides:
        x, y = np.log(np.asarray(trace.x, float)), np.log(np.asarray(trace.y, float))
        slope = (y[-1] - y[0]) / (x[-1] - x[0])
        expected = -3.0 if trace.name == "k⁻³" else -5.0 / 3.0
        assert math.isclose(slope, expected, rel_tol=1e-9)
        assert trace.line.dash == "dot"
    # The reference is the thick line, and the entries keep their colours.
    assert fig.data[0].line.width > fig.data[1].line.width
    assert fig.data[2].line.color == cf.entry_color(1)
    _roundtrip(fig)


def test_spectra_without_data_is_an_empty_figure_and_guides_can_be_off():
    assert not cf.spectra_figure(None, None, []).data
    k = np.arange(1, 9, dtype=float)
    fig = cf.spectra_figure(k, None, [("m0", "#000", _spectrum(k, -3.0))], guides=False)
    assert [t.name for t in fig.data] == ["m0"]


# --- curves against time -----------------------------------------------------------------


def _series() -> tuple[list[float], dict]:
    t = [0.0, 0.5, 1.0, 1.5]
    return t, {
        "0": {
            "rel_l2": [0.0, 0.1, 0.2, 0.4],
            "rel_h1": [0.0, 0.2, 0.3, 0.6],
            "corr": [1.0, 0.95, 0.85, 0.7],
            "energy": [1.0, 1.0, 0.9, 0.9],
            "enstrophy": [2.0, 1.9, 1.8, 1.7],
        },
        "1": {
            "rel_l2": [0.0, 0.3, 5.0, None],
            "rel_h1": [0.0, 0.5, 9.0, None],
            "corr": [1.0, 0.9, 0.2, None],
            "energy": [1.0, 3.0, 40.0, None],
            "enstrophy": [2.0, 5.0, 90.0, None],
        },
    }


def test_error_growth_overlays_l2_and_h1_per_model_on_a_log_axis_and_marks_divergence():
    t, series = _series()
    entries = _entries(2, **{"1": {"status": "diverged", "message": "diverged at step 2"}})
    fig = cf.error_growth_figure(t, entries, series, marker_t=1.0, uirevision="r")
    lines = [tr for tr in fig.data if tr.mode != "markers"]
    assert [tr.name for tr in lines] == [
        "m0 (float32) L2",
        "m0 (float32) H1",
        "m1 (float32) L2",
        "m1 (float32) H1",
    ]
    assert fig.layout.yaxis.type == "log"
    # t = 0 (error 0) cannot sit on a log axis.
    assert lines[0].y[0] is None and lines[0].y[1] == 0.1
    assert lines[1].line.dash == "dot" and lines[0].line.dash == "solid"
    stops = [tr for tr in fig.data if tr.mode == "markers"]
    assert len(stops) == 1 and stops[0].x == (1.0,) and stops[0].y == (5.0,)
    assert "diverged at step 2" in stops[0].hovertemplate
    assert any(s.type == "line" and s.x0 == 1.0 for s in fig.layout.shapes)
    _roundtrip(fig)


def test_correlation_has_the_decorrelation_threshold_line():
    t, series = _series()
    fig = cf.correlation_figure(t, _entries(2), series)
    assert len(fig.data) == 2
    thresholds = [s for s in fig.layout.shapes if s.y0 == 0.8 and s.y1 == 0.8]
    assert len(thresholds) == 1 and thresholds[0].line.dash == "dash"
    assert fig.layout.yaxis.range[1] > 1.0 and fig.layout.yaxis.range[0] < 0.2


def test_energy_and_enstrophy_share_time_with_the_reference_thick():
    t, series = _series()
    reference = {"energy": [1.0, 1.0, 0.95, 0.9], "enstrophy": [2.0, 1.9, 1.85, 1.8]}
    fig = cf.energy_enstrophy_figure(t, reference, _entries(2), series)
    assert len(fig.data) == 6  # (reference + 2 models) × (energy, enstrophy)
    assert [tr.showlegend for tr in fig.data] == [True, False] * 3
    assert fig.data[0].name == cf.REFERENCE_LABEL and fig.data[0].line.width == 3.0
    assert {tr.yaxis for tr in fig.data} == {"y", "y2"}
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"


def test_live_curves_are_lines_and_get_their_point_markers_once_the_run_is_browsed():
    # While a comparison is followed, every frame redraws the curves: lines only (a marker
    # per point made plotly's redraw about 2.5x slower); a finished or browsed run shows
    # each point of a short series. The divergence ✕ stays in both.
    t, series = _series()
    entries = _entries(2, **{"1": {"status": "diverged", "message": "diverged at step 2"}})
    reference = {"energy": [1.0, 1.0, 0.95, 0.9], "enstrophy": [2.0, 1.9, 1.85, 1.8]}

    def figures(live):
        return [
            cf.error_growth_figure(t, entries, series, live=live),
            cf.correlation_figure(t, entries, series, live=live),
            cf.energy_enstrophy_figure(t, reference, entries, series, live=live),
        ]

    for fig in figures(live=True):
        curves = [tr for tr in fig.data if tr.mode != "markers"]
        assert curves and {tr.mode for tr in curves} == {"lines"}
    for fig in figures(live=False):
        curves = [tr for tr in fig.data if tr.mode != "markers"]
        assert curves and {tr.mode for tr in curves} == {"lines+markers"}
    for live in (True, False):
        stops = [tr for tr in figures(live)[0].data if tr.mode == "markers"]
        assert len(stops) == 1 and stops[0].marker.symbol == "x"
    # Past 60 points a series is drawn as lines either way.
    long_t = [0.1 * i for i in range(61)]
    long = {"0": {"rel_l2": [0.01 * (i + 1) for i in range(61)]}}
    fig = cf.error_growth_figure(long_t, _entries(1), long, live=False)
    assert fig.data[0].mode == "lines"


def test_waiting_curves_lay_out_every_line_and_legend_entry_without_data():
    # A followed comparison's page draws its charts before the first frame: every line is
    # there (named and coloured as the frames will draw it), no point is, a note says why.
    entries = _entries(2)
    note = "waiting for the first frame"
    error = cf.error_growth_figure([], entries, {}, live=True, waiting=note)
    assert [tr.name for tr in error.data] == [
        "m0 (float32) L2",
        "m0 (float32) H1",
        "m1 (float32) L2",
        "m1 (float32) H1",
    ]
    corr = cf.correlation_figure([], entries, {}, live=True, waiting=note)
    energy = cf.energy_enstrophy_figure([], {}, entries, {}, live=True, waiting=note)
    assert [tr.name for tr in energy.data][::2] == [
        cf.REFERENCE_LABEL,
        "m0 (float32)",
        "m1 (float32)",
    ]
    spectra = cf.spectra_figure(
        list(range(33)), [], [(e["label"], e["color"], None) for e in entries], waiting=note
    )
    assert [tr.name for tr in spectra.data] == [
        cf.REFERENCE_LABEL,
        "m0 (float32)",
        "m1 (float32)",
        *(label for _, label in cf.GUIDES),
    ]
    assert spectra.layout.xaxis.type == "log" and max(spectra.layout.xaxis.tickvals) <= 48
    for fig in (error, corr, energy, spectra):
        assert all(v is None for tr in fig.data for v in (tr.y or ())), fig.layout.title
        assert [a.text for a in fig.layout.annotations if a.text == note] == [note]
        assert {tr.mode for tr in fig.data} == {"lines"}
    # Without the reference, no reference lines; and without ``waiting`` nothing is laid out.
    assert cf.energy_enstrophy_figure([], None, entries, {}, waiting=note).data[0].name == (
        "m0 (float32)"
    )
    assert not cf.error_growth_figure([], entries, {}).data


def test_curves_wait_for_data():
    assert not cf.error_growth_figure([], _entries(2), {}).data
    assert not cf.correlation_figure([0.0], _entries(1), {"0": {"corr": [None]}}).data
    assert not cf.energy_enstrophy_figure(None, None, [], {}).data


# --- the summary table -------------------------------------------------------------------


def _row(index, status, errors, **extra) -> dict:
    return {
        "index": index,
        "name": f"m{index}",
        "arch": "fno2d",
        "precision": "float32",
        "parameters": 1234,
        "errors_at": errors,
        "decorrelation_time": extra.get("decorrelation_time"),
        "band_errors": {"low": 0.01, "mid": 0.1, "high": 0.9},
        "model_ms": 1.5,
        "solver_ms": 6.0,
        "speedup": 4.0,
        "status": status,
        "message": extra.get("message"),
    }


def test_summary_table_has_numeric_columns_per_report_time_and_sorts_rows():
    rows = [
        _row(0, "completed", {"2.5": 0.2, "5": 0.5}, decorrelation_time=4.0),
        _row(1, "diverged", {"2.5": 0.9, "5": None}, message="diverged at step 7"),
        _row(2, "completed", {"2.5": 0.1, "5": 0.3}),
        _row(3, "failed", {"2.5": None, "5": None}, message="bfloat16 needs CUDA"),
    ]
    table = cf.summary_table(rows)
    ids = [c["id"] for c in table["columns"]]
    names = [c["name"] for c in table["columns"]]
    assert table["times"] == ["2.5", "5"]
    assert "rel. L2 @ t=2.5" in names and "rel. L2 @ t=5" in names
    for column_id in (
        "decorrelation_time",
        "band_low",
        "band_mid",
        "band_high",
        "model_ms",
        "solver_ms",
        "speedup",
        "parameters",
    ):
        assert column_id in ids
        column = next(c for c in table["columns"] if c["id"] == column_id)
        assert column["type"] == "numeric"  # the browser's native sort is numeric
    assert {"model", "arch", "precision", "status"} <= set(ids)
    # Completed first by the error at the last report time, then diverged, then failed.
    assert [r["model"] for r in table["data"]] == ["m2", "m0", "m1", "m3"]
    by_model = {r["model"]: r for r in table["data"]}
    assert by_model["m1"]["status"] == "diverged at step 7"
    assert by_model["m3"]["status"] == "failed: bfloat16 needs CUDA"
    assert by_model["m0"]["decorrelation_time"] == 4.0
    assert by_model["m2"]["decorrelation_time"] is None
    assert by_model["m0"]["band_high"] == 0.9
    error_key = next(c["id"] for c in table["columns"] if c["name"] == "rel. L2 @ t=5")
    assert by_model["m1"][error_key] is None and by_model["m2"][error_key] == 0.3
    json.dumps(table)


def test_sort_rows_puts_missing_errors_last_and_keeps_index_order_on_ties():
    rows = [
        _row(0, "completed", {}),
        _row(1, "completed", {"1": 0.5}),
        _row(2, "completed", {"1": 0.5}),
        _row(3, "completed", {"1": math.nan}),
    ]
    assert [r["index"] for r in cf.sort_rows(rows)] == [1, 2, 0, 3]


def test_graphs_offer_png_download():
    config = png_config("eddyscope-compare-spectra")
    assert config["displayModeBar"] is True
    assert config["toImageButtonOptions"]["format"] == "png"
    assert config["toImageButtonOptions"]["filename"] == "eddyscope-compare-spectra"
    assert len(set(cf.PALETTE)) == len(cf.PALETTE) == 8
    assert cf.entry_color(0) != cf.COLORS["reference"]


def test_overlay_legends_sit_beside_the_plot_and_the_mode_bar_above_the_fields():
    """Legends never overlap titles or take the plot's height: one entry a line, to the
    right of the plot (outside it); the title alone above. Field panels leave room at the
    top for the mode bar, so it never covers a field."""
    t, series = _series()
    entries = _entries(6)
    k = [0, 1, 2, 3, 4, 5, 6, 7]
    spectrum = [0.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]
    figures = [
        cf.spectra_figure(k, spectrum, [(e["label"], e["color"], spectrum) for e in entries]),
        cf.error_growth_figure(t, entries, series),
        cf.correlation_figure(t, entries, series),
        cf.energy_enstrophy_figure(
            t, {"energy": [1.0] * 4, "enstrophy": [2.0] * 4}, entries, series
        ),
    ]
    for fig in figures:
        legend = fig.layout.legend
        assert legend.orientation == "v" and legend.x >= 1.0 and legend.xanchor == "left"
        assert fig.layout.margin.t == cf.TITLE_ROOM
        _roundtrip(fig)
    column = cf.column_figure(
        np.ones((8, 8)), np.ones((8, 8)), with_error_row=True, limit=1.0, error_limit=1.0
    )
    assert column.layout.margin.t >= cf.MODEBAR_ROOM >= 26


def test_run_page_puts_the_fields_first_and_names_models_and_initial_condition():
    from dash import html

    from app.ui.pages.compare import helpers
    from app.ui.pages.compare.layout import layout

    def ids(component) -> list[str]:
        out = []
        if getattr(component, "id", None) and isinstance(component.id, str):
            out.append(component.id)
        children = getattr(component, "children", None)
        for child in children if isinstance(children, list | tuple) else [children]:
            if child is not None and not isinstance(child, str | int | float):
                out += ids(child)
        return out

    run = ids(layout(compare_id="r" * 32))
    assert (
        run.index("compare-status") < run.index("compare-fields-card") < run.index("compare-start")
    )
    fresh = ids(layout())
    assert fresh.index("compare-start") < fresh.index("compare-fields-card")
    setup = {
        "models": [
            {"index": 0, "model_id": "a" * 32, "name": "fno-a", "precision": "float32"},
            {"index": 1, "model_id": "b" * 32, "name": None, "precision": "int8"},
        ],
        "initial_condition": {"kind": "upload", "name": "example.npy"},
    }
    details = helpers.run_details({"job_id": "j"}, setup)[0]
    text = " ".join(str(c.children) for c in details.children if isinstance(c, html.Dd))
    assert "fno-a (float32)" in text and "bbbbbbbb (int8)" in text
    assert "example.npy" in text


def test_a_hit3d_comparison_names_its_models_and_its_cube_and_exports_the_csv_only():
    from dash import html

    from app.ui import hit3d_panels
    from app.ui.pages.compare import helpers, hit3d

    setup = {
        "geometry": "hit3d",
        "resolution": 16,
        "models": [
            {"index": 0, "model_id": "a" * 32, "name": "fno-a", "precision": "float32"},
            {"index": 1, "model_id": "b" * 32, "name": "ifno-b", "precision": "int8"},
        ],
        "initial_condition": {"kind": "random", "seed": 3},
    }
    details = helpers.run_details({"job_id": "j"}, setup)[0]
    grid = [c.children for c in details.children if isinstance(c, html.Dd)]
    assert "16³" in grid and not any("²" in str(value) for value in grid)

    labels = hit3d.source_labels(setup)
    assert labels == {
        "reference": "reference LES",
        "model:0": "fno-a (float32)",
        "model:1": "ifno-b (int8)",
    }
    errors = {"t": [0.0, 0.1], "rel_l2": {"model:0": [0.0, 0.1], "model:1": [0.0, 0.2]}}
    fig = hit3d.errors_figure(errors, labels, 16)
    assert [t.name for t in fig.data] == ["fno-a (float32)", "ifno-b (int8)"]
    # The statistics card's head names every source; each value keeps its stat-<key> class.
    stats = {"energy": 1.0, "dissipation": 0.5}
    card = hit3d_panels.summary_columns(dict.fromkeys(labels, stats), 16, labels)
    head = [c.children for c in card[1].children if "muted" in c.className and c.children != " · "]
    assert head == list(labels.values())
    assert [c.className for c in card[3].children[::2]] == [f"stat-{s}" for s in labels]
    summary = {
        "geometry": "hit3d",
        "report_times": [0.1],
        "columns": [
            {**m, "status": "completed", "errors_at": {"0.1": 0.1}} for m in setup["models"]
        ],
    }
    body = hit3d.summary_table(summary).children[1].children
    assert [row.children[0].children for row in body] == list(labels.values())
    # The HIT figures name the sources the same way (the Rollout and Data pages pass no
    # labels: their sources keep SOURCE_LABELS' names).
    from app.ui import hit3d_figures as hf

    k, e = [1.0, 2.0, 3.0, 4.0], [1.0, 0.3, 0.1, 0.04]
    spectrum = hf.spectrum_figure(k, dict.fromkeys(labels, e), 16, labels=labels)
    assert [t.name for t in spectrum.data] == [f"E(k), {v}" for v in labels.values()] + ["k^(−5/3)"]
    pdf = {"magnitude": {"x": [0.5, 1.0, 1.5], "density": [0.4, 0.6, 0.2]}}
    fig = hf.vorticity_pdf_figure(dict.fromkeys(labels, pdf), "magnitude", 16, labels=labels)
    assert [t.name for t in fig.data][:-1] == [f"PDF, {v}" for v in labels.values()]
    series = {
        "t": [0.0, 0.1],
        "energy": {key: [1.0, 0.9] for key in labels},
        "dissipation": {key: [0.5, 0.4] for key in labels},
        "source": "rollout",
    }
    fig = hf.series_figure(series, 16, labels=labels)
    assert [t.name for t in fig.data[::2]] == [f"E {v}" for v in labels.values()]
    plane = {axis: np.ones((16, 16)) for axis in "xyz"}
    fig = hf.slices_grid_figure(dict.fromkeys(labels, plane), "vorticity", 16, labels=labels)
    assert fig.layout.meta["rows"] == list(labels)
    assert [a.text.split(" · ")[0] for a in fig.layout.annotations[::3]] == list(labels.values())
    assert hf.spectrum_figure(k, {"model": e, "reference": e}, 16).data[1].name == (
        "E(k), reference solver"
    )

    # The exports: netCDF and GIF are of 2D vorticity frames; a 3D comparison's links (the
    # run callbacks pass channel=True for hit3d too) are the metrics CSV only.
    assert [a.id for a in helpers.export_links("r", channel=True).children[1:]] == [
        "compare-export-metrics"
    ]
    assert len(helpers.export_links("r").children[1:]) == 3


def test_unvalidated_figures_are_what_plotly_validation_would_send():
    # The builders skip plotly.py's validation (figures.wrap_figure: the live page rebuilds
    # them every frame). Validating them here must raise nothing and change nothing that
    # reaches the browser: a misspelt property, or a value plotly.py would coerce (a named
    # colour scale is one), fails this test.
    rng = np.random.default_rng(0)
    k = np.arange(0, 33, dtype=float)
    t, series = _series()
    entries = _entries(2, **{"1": {"status": "diverged", "message": "diverged at step 2"}})
    reference = {"energy": [1.0, 1.0, 0.95, 0.9], "enstrophy": [2.0, 1.9, 1.85, 1.8]}
    columns = [
        {"key": cf.REFERENCE},
        {"key": "0", "note": "m0"},
        {"key": "1", "stopped": True, "note": "diverged"},
    ]
    field = rng.standard_normal((64, 64)).astype(np.float32)
    grid = cf.grid_figures(
        columns,
        {cf.REFERENCE: field, "0": field * 1.1, "1": None},
        {"0": field * 0.1, "1": None},
        with_error_row=True,
        length=2 * math.pi,
        uirevision="r",
    )
    figures = [
        *grid.values(),
        cf.spectra_figure(
            k,
            _spectrum(k, -3.0),
            [("m0", cf.entry_color(0), _spectrum(k, -3.0, 1.2)), ("m1", cf.entry_color(1), None)],
            title="Energy spectra · t = 1",
            uirevision="r",
        ),
        cf.error_growth_figure(t, entries, series, marker_t=1.0, uirevision="r"),
        cf.correlation_figure(t, entries, series, marker_t=1.0, uirevision="r"),
        cf.energy_enstrophy_figure(t, reference, entries, series, marker_t=1.0, uirevision="r"),
    ]
    for fig in figures:
        validated = go.Figure(fig.to_dict())  # raises ValueError on an invalid property
        assert _roundtrip(fig) == _roundtrip(validated)
    # The live page sends the same figures as plain dicts (``plain=True``).
    plain = [
        *cf.grid_figures(
            columns,
            {cf.REFERENCE: field, "0": field * 1.1, "1": None},
            {"0": field * 0.1, "1": None},
            with_error_row=True,
            length=2 * math.pi,
            uirevision="r",
            plain=True,
        ).values(),
        cf.error_growth_figure(t, entries, series, marker_t=1.0, uirevision="r", plain=True),
        cf.correlation_figure(t, entries, series, marker_t=1.0, uirevision="r", plain=True),
        cf.energy_enstrophy_figure(
            t, reference, entries, series, marker_t=1.0, uirevision="r", plain=True
        ),
    ]
    wrapped = [*figures[: len(grid)], *figures[len(grid) + 1 :]]
    for sent, fig in zip(plain, wrapped, strict=True):
        assert isinstance(sent, dict)
        assert json.loads(json.dumps(sent, cls=PlotlyJSONEncoder)) == _roundtrip(fig)
