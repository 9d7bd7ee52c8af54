"""What a 2D model's training inputs looked like, and how far a new field is from them.

A neural operator is only trusted near the data it learned from: a field with three times
the energy, or a much rougher spectrum, than anything it saw is outside what its validation
error vouches for. ``field_statistics`` measures each 2D vorticity field ω (B, 1, n, n) on
the periodic box [0, L)²:

* ``energy``: E = ½⟨|u|²⟩ (``physics.diagnostics.kinetic_energy``);
* ``enstrophy``: Z = ½⟨ω²⟩;
* ``spectrum_slope``: the least-squares slope of log E(k) against log k over the shells
  ``SLOPE_RANGE`` = 3 ≤ k ≤ 16 (cut at n/3 on coarser grids: the shells a 64² field
  resolves well, above the forcing's and below the dissipation's), from
  ``physics.spectra.energy_spectrum``; steeper (more negative) is smoother;
* ``amplitude``: the 99th percentile of |ω| (the field's size without a single outlier).

``training_statistics`` summarises them over a model's training frames (min, max and
median of each, and the frame count); ``input_fit`` places one field against that summary:
a scale statistic (energy, enstrophy, amplitude) is far when it exceeds the largest seen
by more than ``factor`` (default 2) or falls below the smallest by as much; the slope is
far when it lies more than ``slope_margin`` (default 1) outside the range seen. The
verdict carries the numbers and a sentence: "far from model X's training data: energy 3.2×
the largest it saw; spectrum slope −2.1 vs −3.9 … −3.5 in training".
"""

from __future__ import annotations

import math
from typing import Any

import torch

from physics.diagnostics import enstrophy, kinetic_energy
from physics.spectra import energy_spectrum

SLOPE_RANGE = (3, 16)
SCALE_STATS = ("energy", "enstrophy", "amplitude")
STATS = ("energy", "enstrophy", "spectrum_slope", "amplitude")
LABELS = {
    "energy": "energy",
    "enstrophy": "enstrophy",
    "spectrum_slope": "spectrum slope",
    "amplitude": "amplitude (99th percentile of |ω|)",
}
DEFAULT_FACTOR = 2.0
DEFAULT_SLOPE_MARGIN = 1.0


def slope_shells(n: int) -> tuple[int, int]:
    """The shells (first, last) the slope is fitted over on an n×n grid."""
    low, high = SLOPE_RANGE
    return low, max(low + 2, min(high, n // 3))


def field_statistics(w: torch.Tensor, length: float = 1.0) -> dict[str, torch.Tensor]:
    """``STATS`` of vorticity fields w (B, 1, n, n), each a (B,) float64 tensor."""
    if w.ndim != 4 or w.shape[1] != 1 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"expected vorticity fields shaped (B, 1, n, n); got {tuple(w.shape)}")
    w = w.to(torch.float64)
    k, spectrum = energy_spectrum(w, length)
    low, high = slope_shells(w.shape[-1])
    x = torch.log(k[low : high + 1])
    y = torch.log(spectrum[:, low : high + 1].clamp_min(1e-300))
    xc = x - x.mean()
    slope = ((y - y.mean(-1, keepdim=True)) * xc).sum(-1) / (xc**2).sum()
    amplitude = torch.quantile(w.abs().flatten(1), 0.99, dim=-1)
    return {
        "energy": kinetic_energy(w, length),
        "enstrophy": enstrophy(w),
        "spectrum_slope": slope,
        "amplitude": amplitude,
    }


def field_summary(w: torch.Tensor, length: float = 1.0) -> dict[str, float]:
    """``field_statistics`` of one field (1, 1, n, n) or (n, n), as plain floats."""
    if w.ndim == 2:
        w = w[None, None]
    return {name: float(v[0]) for name, v in field_statistics(w[:1], length).items()}


def training_statistics(
    frames: torch.Tensor, length: float = 1.0, max_frames: int = 2000, batch: int = 64
) -> dict[str, Any]:
    """Summary of ``field_statistics`` over frames (N, 1, n, n) (or (traj, time, 1, n, n)):
    ``{stat: {"min", "max", "median"}, "frames": count, "resolution": n}``. At most
    ``max_frames`` frames, evenly spaced, are measured."""
    frames = frames.reshape(-1, *frames.shape[-3:])
    if frames.shape[0] == 0:
        raise ValueError("no frames to measure")
    if frames.shape[0] > max_frames:
        frames = frames[torch.linspace(0, frames.shape[0] - 1, max_frames).long()]
    values: dict[str, list[torch.Tensor]] = {name: [] for name in STATS}
    for start in range(0, frames.shape[0], batch):
        for name, v in field_statistics(frames[start : start + batch], length).items():
            values[name].append(v)
    out: dict[str, Any] = {}
    for name in STATS:
        v = torch.cat(values[name])
        v = v[torch.isfinite(v)]
        if v.numel() == 0:
            continue
        out[name] = {
            "min": float(v.min()),
            "max": float(v.max()),
            "median": float(v.median()),
        }
    out["frames"] = int(frames.shape[0])
    out["resolution"] = int(frames.shape[-1])
    return out


def _number(value: float) -> str:
    text = f"{value:.2g}" if abs(value) < 0.01 or abs(value) >= 1e4 else f"{value:.3g}"
    return text.replace("-", "−")


def _scale_item(name: str, value: float, seen: dict[str, float], factor: float):
    low, high = seen["min"], seen["max"]
    item: dict[str, Any] = {"stat": name, "value": value, "min": low, "max": high}
    if value > high and high > 0:
        times = value / high
        item |= {"factor": times, "far": times > factor}
        item["text"] = f"{LABELS[name]} {times:.2g}× the largest it saw"
    elif value < low and value >= 0:
        # A zero field is infinitely far below: no factor (JSON has no infinity), far.
        times = low / value if value > 0 else None
        item |= {"factor": times, "far": times is None or times > factor}
        share = "none" if times is None else f"1/{times:.2g}"
        item["text"] = f"{LABELS[name]} {share} of the smallest it saw"
    else:
        item |= {"factor": 1.0, "far": False, "text": f"{LABELS[name]} within its range"}
    return item


def _slope_item(value: float, seen: dict[str, float], margin: float):
    low, high = seen["min"], seen["max"]
    outside = max(low - value, value - high, 0.0)
    return {
        "stat": "spectrum_slope",
        "value": value,
        "min": low,
        "max": high,
        "distance": outside,
        "far": outside > margin,
        "text": f"spectrum slope {_number(value)} vs {_number(low)} … {_number(high)} in training",
    }


def input_fit(
    field: dict[str, float],
    training: dict[str, Any] | None,
    model_name: str = "the model",
    factor: float = DEFAULT_FACTOR,
    slope_margin: float = DEFAULT_SLOPE_MARGIN,
) -> dict[str, Any]:
    """Where one field's ``field_summary`` lies against a model's ``training_statistics``.

    Returns ``{"known": bool (the model recorded its training statistics), "far": bool,
    "items": [{"stat", "value", "min", "max", "factor" | "distance", "far", "text"}],
    "message": a sentence naming what is far, with the numbers ("" when nothing is)}``.
    """
    if not training:
        return {"known": False, "far": False, "items": [], "message": ""}
    items = []
    for name in STATS:
        seen = training.get(name)
        value = field.get(name)
        if not seen or value is None or not math.isfinite(value):
            continue
        if name == "spectrum_slope":
            items.append(_slope_item(float(value), seen, slope_margin))
        else:
            items.append(_scale_item(name, float(value), seen, factor))
    far = [i for i in items if i["far"]]
    message = (
        f"far from {model_name}'s training data: " + "; ".join(i["text"] for i in far)
        if far
        else ""
    )
    return {"known": True, "far": bool(far), "items": items, "message": message}
