"""The UI's figure functions on small arrays: no browser, no server."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from app.ui import figures


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _roundtrip(fig: go.Figure) -> dict:
    # What Dash sends to the browser must serialise.
    return json.loads(fig.to_json())


# --- fields ---------------------------------------------------------------------------


def test_fields_figure_has_one_heatmap_per_field_on_the_grid():
    rng = np.random.default_rng(0)
    model, reference = rng.normal(size=(2, 16, 16)).astype(np.float32)
    fig = figures.fields_figure(
        {"model": model, "reference": reference, "error": model - reference},
        length=2.0,
        t=1.5,
        step=3,
        uirevision="r1",
    )
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heatmaps) == 3
    for trace in heatmaps:
        assert np.asarray(trace.z).shape == (16, 16)
        assert len(trace.x) == 16 and len(trace.y) == 16
        assert float(trace.x[-1]) == pytest.approx(2.0 * 15 / 16)
    assert fig.layout.uirevision == "r1"
    assert "t = 1.5" in fig.layout.title.text and "step 3" in fig.layout.title.text
    _roundtrip(fig)


def test_fields_share_a_symmetric_diverging_range_and_the_error_has_its_own():
    model = np.zeros((8, 8))
    model[0, 0] = 3.0
    reference = np.zeros((8, 8))
    reference[1, 1] = -5.0
    error = model - reference
    error[2, 2] = -0.5  # max |error| is 5 from the reference spike
    small_error = error / 100
    fig = figures.fields_figure({"model": model, "reference": reference, "error": small_error})
    vort, err = fig.layout.coloraxis, fig.layout.coloraxis2
    # Model and reference share one range, symmetric about zero, set by the reference.
    assert vort.cmin == -vort.cmax == pytest.approx(-5.0)
    # The error gets its own range, symmetric about zero, sized to the error.
    assert err.cmin == -err.cmax == pytest.approx(-0.05)
    # RdBu reversed: blue for negative, white at zero (the middle), red for positive.
    for axis in (vort, err):
        assert axis.colorscale[0][1] == "rgb(5,48,97)"
        assert axis.colorscale[-1][1] == "rgb(103,0,31)"
    heatmaps = {t.name: t.coloraxis for t in fig.data}
    assert heatmaps["Error (model − reference)"] == "coloraxis2"
    assert heatmaps["Model"] == heatmaps["Reference solver"] == "coloraxis"


def test_a_blown_up_model_does_not_wash_out_the_reference():
    reference = np.zeros((8, 8))
    reference[1, 1] = 2.0
    model = reference * 40  # a diverged rollout
    fig = figures.fields_figure({"model": model, "reference": reference})
    assert fig.layout.coloraxis.cmax == pytest.approx(2.0)
    # Without a reference panel the model sets the range.
    alone = figures.fields_figure({"model": model})
    assert alone.layout.coloraxis.cmax == pytest.approx(80.0)


def test_error_range_is_symmetric_even_for_one_signed_error():
    error = np.linspace(0.1, 2.0, 16).reshape(4, 4)  # all positive
    fig = figures.fields_figure({"error": error})
    axis = fig.layout.coloraxis2
    assert axis.cmin == pytest.approx(-2.0) and axis.cmax == pytest.approx(2.0)


def test_reference_only_shows_one_panel():
    fig = figures.fields_figure({"model": None, "reference": np.ones((8, 8)), "error": None})
    assert len(fig.data) == 1
    assert fig.data[0].name == "Reference solver"
    assert "coloraxis2" not in fig.layout.to_plotly_json()


def test_large_fields_are_thinned_for_display():
    field = np.arange(512 * 512, dtype=np.float32).reshape(512, 512)
    fig = figures.fields_figure({"reference": field}, max_pixels=128)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (128, 128)
    assert z[1, 1] == field[4, 4]


def test_symmetric_limit_ignores_nan_and_is_never_zero():
    assert figures.symmetric_limit(np.array([np.nan, -2.0, 1.0])) == 2.0
    assert figures.symmetric_limit(np.zeros((3, 3))) == 1.0
    assert figures.symmetric_limit(None) == 1.0


# --- spectra --------------------------------------------------------------------------


def test_spectrum_figure_is_log_log_and_drops_k0():
    k = np.arange(0, 9)
    ref = np.r_[0.0, 1.0 / np.arange(1, 9) ** 3]
    model = ref * 1.1
    fig = figures.spectrum_figure(k, {"model": model, "reference": ref}, uirevision="r")
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.type == "log"
    lines = {t.name: t for t in fig.data}
    assert set(lines) >= {"model", "reference"}
    for name in ("model", "reference"):
        assert list(lines[name].x) == list(range(1, 9))  # k = 0 cannot sit on a log axis
        assert len(lines[name].y) == 8
    assert lines["reference"].y[0] == pytest.approx(1.0)
    assert fig.layout.uirevision == "r"
    _roundtrip(fig)


def test_spectrum_hides_zeros_and_round_off():
    k = np.arange(6)
    values = np.array([0.0, 1.0, 0.5, 0.0, 1e-30, -1e-20])
    fig = figures.spectrum_figure(k, {"reference": values}, slope=None)
    y = list(fig.data[0].y)
    assert y == [1.0, 0.5, None, None, None]


def test_spectrum_slope_guide_goes_through_the_first_spectrum():
    k = np.arange(0, 17)
    e = np.r_[0.0, 2.0 / np.arange(1, 17) ** 3]
    fig = figures.spectrum_figure(k, {"reference": e}, slope=-3)
    guide = next(t for t in fig.data if t.name == "k⁻³")
    assert np.allclose(np.asarray(guide.y, dtype=float), e[1:])


@pytest.mark.parametrize(
    "k, spectra",
    [(None, {}), ([], {"reference": []}), ([0, 1, 2], {"reference": None}), ([0, 1], {})],
)
def test_empty_spectrum_does_not_crash(k, spectra):
    fig = figures.spectrum_figure(k, spectra)
    assert len(fig.data) == 0
    assert _annotation_texts(fig)
    _roundtrip(fig)


# --- curves ---------------------------------------------------------------------------


def _series(n: int, model: bool) -> dict:
    t = [0.25 * i for i in range(n)]
    return {
        "t": t,
        "step": list(range(n)),
        "rel_l2": [0.01 * i for i in range(n)] if model else [None] * n,
        "energy_reference": [1.0 + 0.1 * i for i in range(n)],
        "energy_model": [1.0 + 0.12 * i for i in range(n)] if model else [None] * n,
    }


def test_error_curve_with_a_model():
    fig = figures.error_curve_figure(_series(5, model=True), marker_t=0.5, uirevision="x")
    assert len(fig.data) == 1
    assert list(fig.data[0].x) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(fig.data[0].y) == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    assert any(shape.x0 == 0.5 for shape in fig.layout.shapes)  # the frame marker


def test_error_curve_without_a_model_says_so():
    fig = figures.error_curve_figure(_series(5, model=False))
    assert len(fig.data) == 0
    assert any("no model" in text for text in _annotation_texts(fig))


def test_energy_curve_draws_reference_and_model():
    fig = figures.energy_curve_figure(_series(4, model=True))
    assert [t.name for t in fig.data] == ["reference", "model"]
    assert len(fig.data[1].y) == 4
    ref_only = figures.energy_curve_figure(_series(4, model=False))
    assert [t.name for t in ref_only.data] == ["reference"]


@pytest.mark.parametrize("series", [{}, {"t": []}, {"t": None, "rel_l2": None}])
def test_empty_curves_do_not_crash(series):
    for build in (figures.error_curve_figure, figures.energy_curve_figure):
        fig = build(series)
        assert len(fig.data) == 0
        _roundtrip(fig)


def test_log_time_series_drops_non_positive_values():
    fig = figures.time_series_figure(
        [0, 1, 2], {"a": [1.0, 0.0, float("nan")]}, y_title="y", log_y=True
    )
    assert fig.layout.yaxis.type == "log"
    assert list(fig.data[0].y) == [1.0, None, None]


# --- training -------------------------------------------------------------------------


def test_loss_figure_has_train_validation_and_persistence_on_log_y():
    train = [
        {"epoch": 1, "step": 2, "total_steps": 8, "train_loss": 0.5},
        {"epoch": 2, "step": 4, "total_steps": 8, "train_loss": 0.3},
    ]
    epochs = [
        {"epoch": 1, "train_loss": 0.4, "val_rel_l2": 0.2, "persistence_rel_l2": 0.3},
        {"epoch": 2, "train_loss": 0.2, "val_rel_l2": 0.1, "persistence_rel_l2": 0.3},
    ]
    fig = figures.loss_figure(train, epochs, epochs=4, uirevision="job")
    names = [t.name for t in fig.data]
    assert names == ["training loss", "validation rel. L2", "persistence baseline"]
    assert fig.layout.yaxis.type == "log"
    assert list(fig.data[0].x) == [1.0, 2.0]  # step / total_steps · epochs
    assert list(fig.data[1].x) == [1, 2]
    assert fig.data[2].line.dash == "dash"
    _roundtrip(fig)


def test_empty_loss_figure_does_not_crash():
    fig = figures.loss_figure([], [])
    assert len(fig.data) == 0 and _annotation_texts(fig)


def test_empty_figure_has_a_message_and_no_axes():
    fig = figures.empty_figure("nothing here", uirevision=3)
    assert _annotation_texts(fig) == ["nothing here"]
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.layout.uirevision == 3
