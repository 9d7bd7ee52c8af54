"""Long-horizon skill of a channel-flow model: how far its statistics drift from the data's
over a rollout many times longer than the windows it was trained on, and when it broke.

One-step validation error says how well a model predicts the next frame; a surrogate for
turbulent channel flow is used for statistics gathered over long rollouts, where a model
that is good for one step can drift (a wrong mean profile, decaying fluctuations) or blow
up. ``long_horizon_skill`` rolls a model out from a held-out frame for ``steps`` steps and
compares its wall-unit statistics with those of the data it learned from.

The data's statistics (every stored frame of every trajectory: the flow is statistically
stationary once spun up, so they are the best estimate of the truth the dataset holds) are
the reference. Errors are ``physics.channel.skill.profile_errors``: the relative L2 over the
half channel of each dimensional profile (U, u′rms, v′rms, w′rms, −u′v′). ``window_errors``
are over the last quarter of the rollout, where drift shows. The guard
(``physics.channel.skill.Guard``, against the starting frame) stops the rollout at the first
non-finite frame, energy blow-up or bulk-velocity drift; the errors then cover the frames
before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from models.rollout import autoregressive_rollout
from physics.channel.skill import Guard, WindowedStatistics, profile_errors
from physics.channel.stats import ChannelStatistics


def data_statistics(
    data: torch.Tensor, y: Any, nu: float, lx: float, lz: float, batch: int = 16
) -> ChannelStatistics:
    """Statistics of every frame of ``data`` (n_traj, n_time, 3, nx, ny, nz), fed in batches
    so memory stays at one batch of frames beyond the data."""
    stats = ChannelStatistics(y, nu, lx, lz)
    frames = data.reshape(-1, *data.shape[2:])
    for start in range(0, frames.shape[0], batch):
        stats.update(frames[start : start + batch])
    return stats


def _errors(result, reference) -> dict[str, float] | None:
    return None if result is None else profile_errors(result, reference)


def long_horizon_skill(
    model: nn.Module,
    window: torch.Tensor,
    reference: ChannelStatistics,
    y: Any,
    nu: float,
    lx: float,
    lz: float,
    steps: int,
    divergence_factor: float = 10.0,
    drift: float = 0.5,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Roll ``model`` out for ``steps`` steps from ``window`` (1, history, 3, nx, ny, nz) and
    compare the statistics of its frames with ``reference`` (the data's).

    Returns ``{"steps", "completed" (frames made before a guard or a stop), "stopped_at"
    (the step whose frame tripped the guard, 1-based, or None), "guard" (its sentence),
    "errors" / "window_errors" (``profile_errors`` of the whole rollout / its last quarter;
    None when the rollout's statistics cannot be formed, e.g. no positive wall shear),
    "reference_frames"}``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    start = window[:, -1].to(torch.float32)
    guard = Guard(divergence_factor=divergence_factor, drift=drift)
    stats = WindowedStatistics(y, nu, lx, lz, window=max(1, steps // 4))
    completed, stopped_at, reason = 0, None, None
    for step, frame in enumerate(autoregressive_rollout(model, window, steps), start=1):
        if should_stop is not None and should_stop():
            break
        frame = frame.detach().to(start.device, torch.float32)
        reason = guard.check(frame, start)
        if reason is not None:
            stopped_at = step
            break
        stats.update(frame)
        completed = step
    truth = reference.result()
    running = stats.running() if completed else None
    windowed = stats.windowed() if completed else None
    return {
        "steps": steps,
        "completed": completed,
        "stopped_at": stopped_at,
        "guard": reason,
        "errors": _errors(running, truth),
        "window_errors": _errors(windowed, truth),
        "reference_frames": int(reference.count),
    }


def headline(skill: dict[str, Any] | None) -> float | None:
    """One number for sorting and badges: the worst of the U and u′rms errors over the whole
    rollout (None when unknown, inf when the model broke before any statistics formed)."""
    if not skill:
        return None
    errors = skill.get("errors")
    if not errors:
        return float("inf") if skill.get("stopped_at") else None
    values = [errors.get(k) for k in ("u_mean", "u_rms")]
    values = [v for v in values if v is not None and np.isfinite(v)]
    return max(values) if values else None
