"""Rollout skill of a 2D model: how its autoregressive rollout's error grows against the
persistence baseline's, and when a divergence guard would stop it.

One-step validation error says how well a model predicts the next frame; users roll models
out for tens of steps, where a model that is good for one step can drift, blow up or fall
behind persistence (the next frame equals the first one). ``rollout_skill`` rolls a model
out from the first ``history`` frames of given trajectories (held-out data, or the reference
solver's frames) and at each horizon h compares

    model:        ‖ŵ(t₀ + h) − w(t₀ + h)‖ / ‖w(t₀ + h)‖,
    persistence:  ‖w(t₀) − w(t₀ + h)‖ / ‖w(t₀ + h)‖,

averaged over the trajectories (``physics.norms.relative_l2``, per item, then the mean).
t₀ is the last frame of the window. The guard stops the rollout at the first frame with a
NaN/Inf or whose energy exceeds ``divergence_factor`` × the reference frame's at the same
time (the rule a comparison applies, ``workers/runners/compare.py``: a forced flow started
from a weak field gains energy many times over, so the starting frame is no yardstick);
errors then cover the frames before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from models.rollout import autoregressive_rollout
from physics.norms import relative_l2

# Horizons reported when the caller names none (those within the trajectories' length).
DEFAULT_HORIZONS = (1, 2, 5, 10, 20, 40, 60, 100, 200)


def mean_square(frames: torch.Tensor) -> torch.Tensor:
    """A field's energy in the guard's sense when no physical one is given: ⟨f²⟩ per item."""
    return frames.double().pow(2).flatten(1).mean(-1)


def default_horizons(steps: int) -> list[int]:
    """``DEFAULT_HORIZONS`` up to ``steps``, and ``steps`` itself."""
    chosen = [h for h in DEFAULT_HORIZONS if h <= steps]
    if steps >= 1 and steps not in chosen:
        chosen.append(steps)
    return chosen


def rollout_skill(
    model: nn.Module,
    trajectories: torch.Tensor,
    horizons: Sequence[int] | None = None,
    energy: Callable[[torch.Tensor], torch.Tensor] = mean_square,
    divergence_factor: float = 10.0,
    interval: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Roll ``model`` out along ``trajectories`` (B, T, C, *space) from their first
    ``history`` frames and score it at ``horizons`` (steps after the window's last frame;
    default ``default_horizons`` of the T − history steps there are).

    Returns ``{"horizons": [h…] (those reached), "t": [h·interval…] (when given),
    "rel_l2": [model…], "persistence_rel_l2": […], "ratio": [model / persistence…],
    "beats_persistence": bool (below persistence at every reported horizon),
    "steps": the rollout's length, "completed": frames made before a guard or a stop,
    "stopped_at": the step whose frame tripped the guard (1-based) or None, "guard": its
    sentence, "trajectories": B}``. Raises ValueError when the trajectories are too short.
    """
    history = getattr(getattr(model, "contract", None), "history", 1)
    available = trajectories.shape[1] - history
    if available < 1:
        raise ValueError(
            f"a skill rollout needs more than {history} frame(s) per trajectory; "
            f"got {trajectories.shape[1]}"
        )
    wanted = sorted({int(h) for h in (horizons or default_horizons(available)) if h >= 1})
    wanted = [h for h in wanted if h <= available]
    if not wanted:
        raise ValueError(f"no horizon within the {available} steps the trajectories hold")
    steps = wanted[-1]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    data = trajectories.to(device, torch.float32)
    window = data[:, :history]
    start = data[:, history - 1]
    out: dict[str, Any] = {"horizons": [], "rel_l2": [], "persistence_rel_l2": [], "ratio": []}
    completed, stopped_at, reason = 0, None, None
    for step, frame in enumerate(autoregressive_rollout(model, window, steps), start=1):
        if should_stop is not None and should_stop():
            break
        frame = frame.to(torch.float32)
        if not torch.isfinite(frame).all():
            stopped_at, reason = step, f"non-finite values at step {step}"
            break
        truth = data[:, history - 1 + step]
        grown = energy(frame) / energy(truth).clamp_min(1e-30)
        if bool((grown > divergence_factor).any()):
            stopped_at = step
            reason = (
                f"energy {float(grown.max()):.3g}× the reference's at step {step} "
                f"(guard: {divergence_factor:g}×)"
            )
            break
        completed = step
        if step in wanted:
            model_err = float(relative_l2(frame, truth).double().mean())
            base_err = float(relative_l2(start, truth).double().mean())
            out["horizons"].append(step)
            out["rel_l2"].append(model_err)
            out["persistence_rel_l2"].append(base_err)
            out["ratio"].append(model_err / base_err if base_err > 0 else math.inf)
    if interval is not None:
        out["t"] = [h * interval for h in out["horizons"]]
    out |= {
        "beats_persistence": bool(out["ratio"])
        and stopped_at is None
        and all(r < 1 for r in out["ratio"]),
        "steps": steps,
        "completed": completed,
        "stopped_at": stopped_at,
        "guard": reason,
        "trajectories": int(trajectories.shape[0]),
    }
    return out


def headline(skill: dict[str, Any] | None) -> float | None:
    """One number for sorting: model error / persistence error at the longest horizon
    reached (below 1 beats persistence; inf when a guard stopped the rollout before any
    horizon; None when unknown)."""
    if not skill:
        return None
    ratios = [r for r in skill.get("ratio") or [] if r is not None]
    if skill.get("stopped_at"):
        return math.inf
    return float(ratios[-1]) if ratios else None


def reference_trajectory(solver: Any, w0: torch.Tensor, steps: int, interval: float):
    """The frames (B, steps + 1, C, *space) a reference ``solver`` (anything with
    ``advance(w, t)``, e.g. ``physics.flows.Flow.make_solver``) makes from ``w0`` (B, C,
    *space) every ``interval``, ``w0`` first: what ``rollout_skill`` scores a model against
    when no stored trajectory is at hand."""
    frames, w = [w0], w0
    for _ in range(steps):
        w = solver.advance(w, interval)
        frames.append(w)
    return torch.stack(frames, dim=1)
