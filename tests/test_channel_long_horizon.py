"""A channel model's long-horizon skill (models/channel_skill.py): statistics of a long
rollout against the data's, and the step at which a guard stopped it; the Models page's
column that shows it.

The models here are exact maps whose rollouts are known in closed form (persistence, a
blow-up ×10 per step, a decay ×0.9 per step), so every reported number is recomputed from
frames the test builds itself."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from app.channel_params import channel_config
from app.ui.pages.models import long_horizon_cell, sort_models
from models.channel_skill import data_statistics, headline, long_horizon_skill
from models.registry import build_model
from physics.channel.skill import profile_errors
from physics.channel.solver import ChannelSolver
from physics.channel.stats import ChannelStatistics

GRID = [8, 12, 8]


class Scale(nn.Module):
    """Each step multiplies the last frame by ``factor`` (a one-frame window in, one out)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor
        self.dummy = nn.Parameter(torch.zeros(()))  # so the rollout finds a device

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return window[:, -1:] * self.factor


@pytest.fixture(scope="module")
def channel_data():
    """Two short trajectories of three cell-centred frames from the channel solver, with the
    grid's y, ν and box."""
    config = channel_config({"channel_grid": GRID, "closure": "none"})
    solver = ChannelSolver(config)
    grid = config.grid()
    u = solver.initial_condition(2, seed=3)
    frames = []
    for k in range(3):
        if k:
            u = solver.advance(u, 0.02)
        frames.append(grid.to_centres(u))
    data = torch.stack(frames, dim=1).float()  # (2, 3, 3, nx, ny, nz)
    return data, grid.y_centres.numpy(), config.nu, config.lx, config.lz


def _skill(model, data, y, nu, lx, lz, steps, **kw):
    reference = data_statistics(data, y, nu, lx, lz)
    window = data[1, :1][None]
    return long_horizon_skill(model, window, reference, y, nu, lx, lz, steps, **kw), reference


def test_persistence_statistics_are_those_of_its_one_frame(channel_data):
    data, y, nu, lx, lz = channel_data
    torch.manual_seed(0)
    config = {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1, "pad_y": 2}
    model = build_model("fno3d", config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    start = data[1, 0]
    # The zeroed network changes nothing: its rollout is the start frame, again and again.
    torch.testing.assert_close(model(start[None, None])[0, 0], start, rtol=0, atol=1e-6)

    skill, reference = _skill(model, data, y, nu, lx, lz, steps=8)
    assert skill["steps"] == 8 and skill["completed"] == 8 and skill["stopped_at"] is None
    assert skill["reference_frames"] == 6
    once = ChannelStatistics(y, nu, lx, lz)
    for _ in range(8):
        once.update(start[None])
    expected = profile_errors(once.result(), reference.result())
    for key, value in expected.items():
        assert skill["errors"][key] == pytest.approx(value, rel=1e-6), key
        # Every frame is the same, so the last quarter's statistics are the whole run's.
        assert skill["window_errors"][key] == pytest.approx(value, rel=1e-6), key
    # One frame is not the statistics of six: the errors are not zero.
    assert skill["errors"]["u_rms"] > 1e-3


def test_a_blow_up_is_stopped_at_its_first_frame(channel_data):
    data, y, nu, lx, lz = channel_data
    skill, _ = _skill(Scale(10.0), data, y, nu, lx, lz, steps=20)
    # ×10 makes the energy ×100, over the guard's ×10 at the first predicted frame.
    assert skill["stopped_at"] == 1 and skill["completed"] == 0
    assert "energy" in skill["guard"]
    assert skill["errors"] is None and skill["window_errors"] is None
    assert headline(skill) == math.inf


def test_a_decaying_model_is_stopped_by_the_drift_guard_and_scored_on_what_came_before(
    channel_data,
):
    data, y, nu, lx, lz = channel_data
    skill, reference = _skill(Scale(0.9), data, y, nu, lx, lz, steps=20, drift=0.5)
    # The bulk velocity falls as 0.9^k: 0.9^6 = 0.53 passes, 0.9^7 = 0.48 drifts over 50 %.
    assert skill["stopped_at"] == 7 and skill["completed"] == 6
    assert "bulk" in skill["guard"]
    before = ChannelStatistics(y, nu, lx, lz)
    start = data[1, 0]
    for k in range(1, 7):
        before.update((start * 0.9**k)[None])
    expected = profile_errors(before.result(), reference.result())
    for key, value in expected.items():
        assert skill["errors"][key] == pytest.approx(value, rel=1e-5), key
    # A mean profile scaled down by up to half cannot match the data's.
    assert skill["errors"]["u_mean"] > 0.2


def test_the_models_page_shows_the_skill_and_sorts_by_it():
    stable = {
        "steps": 30,
        "completed": 30,
        "stopped_at": None,
        "guard": None,
        "errors": {"u_mean": 0.031, "u_rms": 0.12, "v_rms": 0.2, "w_rms": 0.15, "uv": 0.3},
    }
    broken = {"steps": 30, "completed": 4, "stopped_at": 5, "guard": "kinetic energy …"}
    text = str(long_horizon_cell({"metrics": {"long_horizon": stable}}))
    assert "U 3.1 %" in text and "u′ 12 %" in text and "stable over 30 steps" in text
    shown = str(long_horizon_cell({"metrics": {"long_horizon": broken}}))
    assert "stopped at step 5 of 30" in shown
    assert long_horizon_cell({"metrics": {}}) == ["—"]
    models = [
        {"id": "2d", "metrics": {}},
        {"id": "broken", "metrics": {"long_horizon": broken}},
        {"id": "stable", "metrics": {"long_horizon": stable}},
    ]
    # Ascending: the smallest worst-profile error first, a broken model after, unknown last.
    assert [m["id"] for m in sort_models(models, "horizon", "asc")] == ["stable", "broken", "2d"]
