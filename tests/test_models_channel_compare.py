"""The channel comparison engine (models.channel_compare) and the model column
(models.channel_column). Most tests use a cheap stand-in reference (a drifting synthetic
flow on an 8×12×8 grid); one runs the real filtered reference and a coarse DNS column."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest
import torch

from models.channel_column import ModelColumn
from models.channel_compare import ChannelComparison, time_key
from physics.channel.columns import CoarseLES, FilteredReference
from physics.channel.fields import filter_xz
from physics.channel.grid import ChannelGrid
from physics.channel.skill import PROFILES, Guard, profile_errors
from physics.channel.solver import ChannelConfig, ChannelSolver
from physics.channel.stats import ChannelStatisticsResult

F64 = torch.float64
GRID = ChannelGrid(8, 12, 8, 4.0, 2.0, 2.0)
Y = GRID.y_centres.numpy()
NU = 0.02


class SyntheticReference:
    """A reference with FilteredReference's interface: a parabolic mean flow plus a
    travelling wave and noise that change every interval."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)
        self.coarse = None
        self.k = 0

    def _frame(self) -> torch.Tensor:
        u = 0.3 * torch.randn(1, 3, 8, 12, 8, generator=self.generator, dtype=F64)
        x = torch.arange(8, dtype=F64) * GRID.dx
        u[:, 0] += (10 * (1 - GRID.y_centres**2))[None, :, None] + torch.sin(
            2 * torch.pi * x / GRID.lx + 0.3 * self.k
        )[:, None, None]
        return u

    def start(self, centred=None):
        self.k = 0
        self.coarse = self._frame()
        return self.coarse

    def advance(self, interval):
        self.k += 1
        self.coarse = self._frame()
        return self.coarse


class Oracle:
    """A 'model' that returns the reference's current frame: a perfect column."""

    history = 1
    label = "oracle"

    def __init__(self, reference):
        self.reference = reference
        self.last_ms = 0.5

    def start(self, frames):
        pass

    def advance(self, interval):
        return self.reference.coarse.clone()


def comparison(reference, columns, window=2, guard=None):
    return ChannelComparison(
        reference, columns, Y, NU, GRID.lx, GRID.lz, window, guard or Guard(), device="cpu"
    )


def run(cmp, steps, interval=0.1, **kwargs):
    records = []
    cmp.run(steps, interval, records.append, **kwargs)
    return records


def as_result(d: dict) -> ChannelStatisticsResult:
    """A ChannelStatisticsResult back from its to_dict()."""
    values = {}
    for f in dataclasses.fields(ChannelStatisticsResult):
        v = d[f.name]
        values[f.name] = np.asarray(v) if isinstance(v, list) else v
    return ChannelStatisticsResult(**values)


# --- ModelColumn ----------------------------------------------------------------------------


def test_model_column_calls_once_per_out_steps_and_charges_each_frame():
    calls = []

    def runner(window):
        calls.append(window.clone())
        last = window[:, -1]
        return torch.stack([last + 1, last + 2], dim=1)  # out_steps = 2

    column = ModelColumn(runner, history=2)
    zero = torch.zeros(1, 3, 8, 12, 8)
    column.start([zero, zero + 0.5])
    got = [column.advance(0.1) for _ in range(5)]
    assert [float(f.mean()) for f in got] == [1.5, 2.5, 3.5, 4.5, 5.5]
    assert len(calls) == 3
    # Each call sees the last `history` frames, its own predictions included.
    assert [float(frame.mean()) for frame in calls[1][0]] == [1.5, 2.5]
    assert column.last_ms is not None and column.last_ms > 0
    with pytest.raises(ValueError, match="start frame"):
        column.start([zero])


# --- the run with a synthetic reference ------------------------------------------------------


def test_a_perfect_column_has_zero_error_and_a_persistent_one_does_not():
    reference = SyntheticReference()
    reference.start()
    columns = {
        "model:0": Oracle(reference),
        "model:1": ModelColumn(lambda w: w[:, -1:].clone(), 1, label="persistence"),
    }
    cmp = comparison(reference, columns)
    records = run(cmp, 4)
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["t"] for r in records] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    for r in records:
        oracle = r["metrics"]["columns"]["model:0"]
        assert oracle["rel_l2"] == 0 and oracle["status"] == "running"
        persist = r["metrics"]["columns"]["model:1"]
        assert (persist["rel_l2"] > 0.01) == (r["step"] > 0)
        # Persistence keeps the initial frame.
        torch.testing.assert_close(r["frames"]["model:1"], records[0]["frames"]["reference"])
        ref, frame = r["frames"]["reference"], r["frames"]["model:1"]
        assert persist["rel_l2"] == pytest.approx(float((frame - ref).norm() / ref.norm()))
    summary = cmp.summary()
    rows = {row["key"]: row for row in summary["rows"]}
    assert rows["model:0"]["errors"] == dict.fromkeys(PROFILES, 0.0)
    assert rows["model:0"]["window_errors"] == dict.fromkeys(PROFILES, 0.0)
    assert all(v > 0 for v in rows["model:1"]["errors"].values())
    assert rows["model:1"]["label"] == "persistence" and rows["model:1"]["kind"] == "model"
    assert rows["model:1"]["status"] == "completed" and rows["model:1"]["stopped_at"] is None
    # rel_l2_at: a quarter, half, three quarters and all of the run.
    assert summary["report_times"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    at = rows["model:1"]["rel_l2_at"]
    assert list(at) == ["0.1", "0.2", "0.3", "0.4"]
    for step in (1, 2, 3, 4):
        assert at[time_key(step * 0.1)] == records[step]["metrics"]["columns"]["model:1"]["rel_l2"]


def test_summary_errors_are_the_profile_errors_of_the_reported_statistics():
    reference = SyntheticReference()
    reference.start()
    cmp = comparison(reference, {"model:0": ModelColumn(lambda w: 0.9 * w[:, -1:], 1)}, window=2)
    run(cmp, 3)
    row = cmp.summary()["rows"][0]
    mine, ref = cmp.statistics("model:0"), cmp.statistics("reference")
    for which, field in (("running", "errors"), ("window", "window_errors")):
        expected = profile_errors(as_result(mine[which]), as_result(ref[which]))
        assert row[field] == pytest.approx(expected, rel=1e-12)
        assert all(v > 0 for v in row[field].values())
    assert mine["running"]["n_snapshots"] == 4 and mine["window"]["n_snapshots"] == 2
    assert row["errors"] != row["window_errors"]


def test_a_blowing_up_model_is_stopped_by_the_guard():
    reference = SyntheticReference()
    reference.start()
    cmp = comparison(reference, {"model:0": ModelColumn(lambda w: 10 * w[:, -1:], 1)})
    records = run(cmp, 4)
    first = records[1]["metrics"]["columns"]["model:0"]
    assert first["status"] == "diverged" and "kinetic energy" in first["message"]
    assert records[1]["frames"]["model:0"] is not None  # the frame that tripped the guard
    for r in records[2:]:
        entry = r["metrics"]["columns"]["model:0"]
        assert r["frames"]["model:0"] is None
        assert entry["status"] == "diverged"
        assert [entry[k] for k in ("rel_l2", "energy", "bulk", "ms")] == [None] * 4
    row = cmp.summary()["rows"][0]
    assert row["stopped_at"] == 1 and row["status"] == "diverged"
    assert row["errors"] == dict.fromkeys(PROFILES)
    assert row["rel_l2_at"]["0.4"] is None
    # Its statistics hold the frames before the guard tripped: step 0 only.
    assert cmp.statistics("model:0")["running"]["n_snapshots"] == 1


def test_nan_and_exceptions_stop_only_their_column():
    def broken(window):
        raise RuntimeError("out of memory")

    reference = SyntheticReference()
    reference.start()
    columns = {
        "model:0": ModelColumn(lambda w: w[:, -1:] * float("nan"), 1),
        "model:1": ModelColumn(broken, 1),
        "model:2": Oracle(reference),
    }
    records = run(comparison(reference, columns), 2)
    last = records[-1]["metrics"]["columns"]
    assert last["model:0"]["status"] == "diverged" and "NaN" in last["model:0"]["message"]
    assert records[1]["metrics"]["columns"]["model:0"]["rel_l2"] is None  # NaN → None
    assert last["model:1"]["status"] == "failed" and "out of memory" in last["model:1"]["message"]
    assert last["model:2"]["status"] == "running" and last["model:2"]["rel_l2"] == 0


def test_a_multi_frame_model_is_warmed_up_with_reference_frames():
    reference = SyntheticReference()
    reference.start()
    column = ModelColumn(lambda w: (2 * w[:, -1] - w[:, -2])[:, None], 2)
    records = run(comparison(reference, {"model:0": column}), 3)
    ref = [r["frames"]["reference"] for r in records]
    for step in (0, 1):
        assert records[step]["frames"]["model:0"] is ref[step]
        assert records[step]["metrics"]["columns"]["model:0"]["ms"] is None
        assert records[step]["metrics"]["columns"]["model:0"]["rel_l2"] == 0
    torch.testing.assert_close(records[2]["frames"]["model:0"], 2 * ref[1] - ref[0])
    model = records[2]["frames"]["model:0"]
    torch.testing.assert_close(records[3]["frames"]["model:0"], 2 * model - ref[1])
    assert records[2]["metrics"]["columns"]["model:0"]["ms"] > 0


def test_stats_are_due_every_twentieth_of_the_run_and_at_the_end():
    reference = SyntheticReference()
    reference.start()
    records = run(comparison(reference, {}), 45, interval=0.01)
    due = [r["step"] for r in records if r["stats_due"]]
    assert due == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38,
                   40, 42, 44, 45]  # fmt: skip


def test_a_comparison_that_has_not_run_has_no_statistics():
    cmp = comparison(SyntheticReference(), {})
    assert cmp.statistics("reference") == {"running": None, "window": None}
    with pytest.raises(RuntimeError, match="not been started"):
        run(cmp, 1)


def test_should_stop_ends_or_cancels_the_run():
    reference = SyntheticReference()
    reference.start()
    seen = []
    cmp = comparison(reference, {})
    cmp.run(5, 0.1, lambda r: seen.append(r["step"]), should_stop=lambda: len(seen) >= 2)
    assert seen == [0, 1]

    def cancel():
        if len(seen) >= 3:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        cmp.run(5, 0.1, lambda r: seen.append(r["step"]), should_stop=cancel)


# --- the real reference and a coarse DNS -----------------------------------------------------


def test_real_reference_coarse_dns_and_models_with_timings_and_speedups():
    fine = ChannelConfig(re_tau=50.0, nx=16, ny=12, nz=16, lx=4.0, lz=2.0, dtype=F64)
    initial = fine.grid().to_centres(
        ChannelSolver(fine).initial_condition(1, seed=2, amplitude=0.2, dtype=F64)
    )
    reference = FilteredReference(fine, lambda u: filter_xz(u, 8, 8), GRID)
    columns = {
        "les:none": CoarseLES(fine, (8, 12, 8), "none"),
        "model:0": ModelColumn(lambda w: w[:, -1:].clone(), 1),
        "model:1": Oracle(reference),
    }
    cmp = comparison(reference, columns)
    records = run(cmp, 3, interval=0.02, initial=initial)
    assert not reference.upsampled
    metrics = [r["metrics"] for r in records]
    assert metrics[0]["reference"]["ms"] is None and metrics[0]["columns"]["les:none"]["ms"] is None
    les = [m["columns"]["les:none"] for m in metrics]
    # The coarse DNS starts on the filtered field (its projection: the same, the cut of a
    # divergence-free field on the same y grid is divergence-free) and drifts away from it.
    assert les[0]["rel_l2"] < 1e-10
    assert all(e["rel_l2"] > 1e-6 and e["ms"] > 0 for e in les[1:])
    assert all(m["reference"]["ms"] > 0 and m["reference"]["energy"] > 0 for m in metrics[1:])
    assert all(m["columns"]["model:1"]["rel_l2"] == 0 for m in metrics)
    # Medians and speedups recomputed from the records.
    summary = cmp.summary()
    rows = {row["key"]: row for row in summary["rows"]}
    les_median = statistics.median(e["ms"] for e in les[1:])
    assert rows["les:none"]["ms"] == pytest.approx(les_median)
    assert rows["les:none"]["kind"] == "closure" and rows["les:none"]["closure"] == "none"
    assert rows["les:none"]["label"] == "Coarse DNS (no model)"
    model_median = statistics.median(m["columns"]["model:0"]["ms"] for m in metrics[1:])
    assert rows["model:0"]["speedup"]["none"] == pytest.approx(les_median / model_median)
    assert rows["model:1"]["speedup"]["none"] == pytest.approx(les_median / 0.5)
    assert rows["les:none"]["speedup"] == {"none": pytest.approx(1.0)}
    assert summary["reference_ms"] == pytest.approx(
        statistics.median(m["reference"]["ms"] for m in metrics[1:])
    )
    assert rows["model:1"]["errors"] == dict.fromkeys(PROFILES, 0.0)
    assert all(v > 0 for v in rows["les:none"]["errors"].values())
