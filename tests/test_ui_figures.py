"""The UI's figure functions on small arrays: no browser, no server."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from app.services import previews
from app.ui import figures, training_figures


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
    fig = training_figures.loss_figure(train, epochs, epochs=4, uirevision="job")
    names = [t.name for t in fig.data]
    assert names == ["training loss", "validation rel. L2", "persistence baseline"]
    assert fig.layout.yaxis.type == "log"
    assert list(fig.data[0].x) == [1.0, 2.0]  # step / total_steps · epochs
    assert list(fig.data[1].x) == [1, 2]
    assert fig.data[2].line.dash == "dash"
    _roundtrip(fig)


def test_lr_figure_ticks_are_few_short_and_apart():
    """The LR plot (220 px tall, about 100 px of plot): a one-cycle schedule spans 4+
    decades; its y ticks are at most four round values with short labels in one style,
    spaced at least 20 px apart, so they never overlap."""
    import torch

    from models.training import TrainConfig, make_scheduler

    total = 200
    for config in (
        TrainConfig(epochs=10, lr=1e-3),
        TrainConfig(epochs=10, lr=3e-3, scheduler="constant"),
        TrainConfig(epochs=10, lr=1e-3, scheduler="step", step_epochs=2),
    ):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
        scheduler, per_step = make_scheduler(config, optimizer, total // config.epochs)
        events = []
        for step in range(1, total + 1):
            optimizer.step()
            if per_step or step % (total // config.epochs) == 0:
                scheduler.step()
            events.append({"epoch": 1 + step // 20, "step": step, "total_steps": total,
                           "lr": optimizer.param_groups[0]["lr"]})  # fmt: skip
        fig = training_figures.lr_figure(events, epochs=config.epochs)
        ticks, labels = list(fig.layout.yaxis.tickvals), list(fig.layout.yaxis.ticktext)
        lrs = [e["lr"] for e in events]
        assert 1 <= len(ticks) <= 4 and len(set(labels)) == len(labels)
        assert all(len(label) <= 6 for label in labels), labels
        assert all(min(lrs) * 0.999 <= t <= max(lrs) * 1.001 for t in ticks)
        if len(ticks) >= 2:
            span = math.log10(max(lrs) / min(lrs))
            gaps = [math.log10(b / a) for a, b in itertools.pairwise(ticks)]
            assert min(gaps) / span * 100 >= 20, (ticks, span)
        _roundtrip(fig)
    assert training_figures.log_ticks(1e-4, 1e-3) == [1e-4, 2e-4, 5e-4, 1e-3]
    assert training_figures.tick_labels([1e-4, 1e-3]) == ["1e-4", "1e-3"]
    assert training_figures.tick_labels([0.002, 0.01]) == ["0.002", "0.01"]
    assert len(training_figures.log_ticks(1e-12, 1.0)) <= 4


def test_empty_loss_figure_does_not_crash():
    fig = training_figures.loss_figure([], [])
    assert len(fig.data) == 0 and _annotation_texts(fig)


def test_empty_figure_has_a_message_and_no_axes():
    fig = figures.empty_figure("nothing here", uirevision=3)
    assert _annotation_texts(fig) == ["nothing here"]
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.layout.uirevision == 3


# --- dataset previews -----------------------------------------------------------------


def test_evenly_spaced_keeps_first_and_last_and_caps_the_count():
    assert previews.evenly_spaced(4, 100) == [0, 1, 2, 3]
    picked = previews.evenly_spaced(1000, 100)
    assert len(picked) == 100
    assert picked[0] == 0 and picked[-1] == 999
    assert picked == sorted(set(picked))
    steps = np.diff(picked)
    assert steps.min() >= 10 and steps.max() <= 11  # even spacing
    assert previews.evenly_spaced(0, 10) == []
    assert previews.evenly_spaced(101, 100)[-1] == 100


def _decaying(frames: int = 5, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n) / n
    base = np.sin(2 * np.pi * x)[None, :] * np.cos(2 * np.pi * x)[:, None]
    times = 0.5 * np.arange(frames)
    return (base[None] * np.exp(-times)[:, None, None]).astype(np.float32), times


def test_trajectory_animation_has_one_frame_per_snapshot_and_one_symmetric_range():
    frames, times = _decaying(5)
    frames[3, 2, 2] = -4.0  # the largest |ω| anywhere sets the range of every frame
    fig = figures.trajectory_animation(frames, times, length=2.0, total=5, uirevision="d")
    assert len(fig.frames) == 5
    assert [f.name for f in fig.frames] == ["0", "1", "2", "3", "4"]
    for frame, expected in zip(fig.frames, frames, strict=True):
        assert frame.traces == (0,)
        assert np.allclose(np.asarray(frame.data[0].z), expected)
        assert frame.data[0].coloraxis == "coloraxis"
    axis = fig.layout.coloraxis
    assert axis.cmin == -axis.cmax == pytest.approx(-4.0)
    assert axis.colorscale[0][1] == "rgb(5,48,97)" and axis.colorscale[-1][1] == "rgb(103,0,31)"
    assert float(fig.data[0].x[-1]) == pytest.approx(2.0 * 15 / 16)
    # Play and pause, and a slider with one step per frame, each showing its frame.
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert any("Play" in label for label in labels) and any("Pause" in label for label in labels)
    steps = fig.layout.sliders[0].steps
    assert [list(s.args[0]) for s in steps] == [[str(i)] for i in range(5)]
    assert steps[2].label == "1"
    assert (
        "t = 1" in fig.frames[2].layout.title.text and "3 of 5" in fig.frames[2].layout.title.text
    )
    assert fig.layout.meta["times"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert fig.layout.uirevision == "d"
    payload = _roundtrip(fig)
    assert len(payload["frames"]) == 5


def test_trajectory_animation_takes_a_given_range_snapshot_names_and_thins_big_frames():
    frames = np.ones((3, 256, 256), dtype=np.float32)
    fig = figures.trajectory_animation(
        frames, [0.0, 5.0, 10.0], snapshots=[0, 50, 99], total=100, limit=7.5, max_pixels=128
    )
    assert fig.layout.coloraxis.cmax == pytest.approx(7.5)
    assert [f.name for f in fig.frames] == ["0", "50", "99"]
    assert np.asarray(fig.frames[0].data[0].z).shape == (128, 128)
    assert "snapshot 100 of 100" in fig.frames[-1].layout.title.text


def test_trajectory_animation_of_nothing_is_an_empty_figure():
    fig = figures.trajectory_animation(np.zeros((0, 8, 8)), [])
    assert len(fig.data) == 0 and _annotation_texts(fig)


def test_snapshot_spectra_keep_first_and_last_and_animate_the_shown_one():
    k = np.arange(0, 9)
    spectra = np.stack([np.r_[0.0, a / np.arange(1, 9) ** 3] for a in (1.0, 0.5, 0.25)])
    fig = figures.snapshot_spectra_figure(k, spectra, [0.0, 1.0, 2.0], snapshots=[0, 10, 20])
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    names = [t.name for t in fig.data]
    assert names[:3] == ["first (t = 0)", "last (t = 2)", "shown snapshot"]
    assert list(fig.data[1].y) == pytest.approx(list(spectra[-1, 1:]))
    assert list(fig.data[2].y) == pytest.approx(list(spectra[0, 1:]))  # the first, at start
    assert [f.name for f in fig.frames] == ["0", "10", "20"]
    assert all(f.traces == (2,) for f in fig.frames)
    assert list(fig.frames[1].data[0].y) == pytest.approx(list(spectra[1, 1:]))
    # Fixed ranges that hold every snapshot, so frames do not rescale the axes.
    lo, hi = fig.layout.yaxis.range
    assert lo < np.log10(spectra[:, 1:].min()) and hi > np.log10(spectra.max())
    _roundtrip(fig)


def test_snapshot_spectra_drop_float32_round_off_from_lines_frames_and_ranges():
    k = np.arange(0, 6)
    spectra = np.array([[0.0, 1.0, 0.1, 1e-3, 1e-14, 1e-17], [0.0, 0.5, 0.05, 1e-4, 1e-13, 0.0]])
    fig = figures.snapshot_spectra_figure(k, spectra, [0.0, 1.0], slope=None)
    assert list(fig.data[0].y) == [1.0, 0.1, 1e-3, None, None]
    assert list(fig.frames[1].data[0].y) == [0.5, 0.05, 1e-4, None, None]
    lo, _ = fig.layout.yaxis.range
    assert -5 < lo < -4  # 1e-4 is the smallest value drawn
    assert 10 ** fig.layout.xaxis.range[1] < 4.5  # nothing drawn beyond k = 3


def test_energy_enstrophy_figure_has_two_curves_on_one_time_axis():
    t = [0.0, 0.1, 0.2, 0.3]
    fig = figures.energy_enstrophy_figure(
        t, [1.0, 0.9, 0.8, 0.7], [5.0, 4.0, 3.5, 3.0], marker_t=0.1
    )
    assert [tr.name for tr in fig.data] == ["energy E", "enstrophy Z"]
    for trace in fig.data:
        assert list(trace.x) == t and len(trace.y) == 4
    assert fig.data[0].yaxis != fig.data[1].yaxis  # two panels
    assert fig.layout.shapes[0].x0 == pytest.approx(0.1)
    _roundtrip(fig)
    empty = figures.energy_enstrophy_figure([], [], [])
    assert len(empty.data) == 0 and _annotation_texts(empty)
