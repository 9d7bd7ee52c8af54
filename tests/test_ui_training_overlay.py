"""The training-run overlay's pure pieces: smoothing, the points of each metric by step and
by wall time, the figure's traces and axes, and the page's address."""

from __future__ import annotations

import math

from app.ui.pages.training_runs import parse, query_string
from app.ui.training_figures import overlay_figure, overlay_points, smooth

RUN = {
    "id": "a" * 16,
    "name": "run A",
    "epochs": 2,
    "train": [
        {"step": s, "total_steps": 4, "epoch": 1 + (s > 2), "train_loss": 1 / s, "lr": 0.1, "t": s}
        for s in (1, 2, 3, 4)
    ],
    "epoch": [{"epoch": 1, "val_rel_l2": 0.4, "t": 2.5}, {"epoch": 2, "val_rel_l2": 0.2, "t": 5}],
}


def test_smoothing_is_a_debiased_moving_average_that_keeps_gaps():
    assert smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    out = smooth([1.0, None, 3.0], 0.5)
    assert out[0] == 1.0 and out[1] is None
    assert math.isclose(out[2], (0.5 * 0.5 * 1 + 0.5 * 3) / 0.75)


def test_points_by_step_and_by_wall_time():
    assert overlay_points(RUN, "loss", "step") == ([1, 2, 3, 4], [1, 0.5, 1 / 3, 0.25])
    assert overlay_points(RUN, "val", "step") == ([2.0, 4.0], [0.4, 0.2])  # epoch ends
    assert overlay_points(RUN, "val", "time") == ([2.5, 5], [0.4, 0.2])
    assert overlay_points(RUN, "lr", "time")[0] == [1, 2, 3, 4]


def test_overlay_figure_one_curve_per_run_and_raw_behind_when_smoothed():
    other = {**RUN, "id": "b" * 16, "name": "run B"}
    fig = overlay_figure([RUN, other], metric="loss", scale="linear")
    assert [t.name for t in fig.data] == ["run A", "run B"]
    assert fig.layout.yaxis.type == "linear"
    smoothed = overlay_figure([RUN, other], smoothing=0.6)
    assert len(smoothed.data) == 4 and smoothed.layout.yaxis.type == "log"
    assert [t.showlegend for t in smoothed.data] == [False, None, False, None]
    assert "Choose" in str(overlay_figure([]).layout.annotations[0].text)


def test_the_address_round_trips_and_is_bounded():
    settings = parse({"jobs": "a,b,a", "metric": "val", "x": "time", "smooth": "0.6"})
    assert settings["jobs"] == ["a", "b"] and settings["smooth"] == 0.6
    assert query_string(settings) == "?jobs=a,b&metric=val&x=time&smooth=0.6"
    assert parse({"jobs": ",".join(str(i) for i in range(20)), "smooth": "7"})["smooth"] == 0.95
    assert len(parse({"jobs": ",".join(str(i) for i in range(20))})["jobs"]) == 8
    assert parse({"metric": "bogus"})["metric"] == "loss"
