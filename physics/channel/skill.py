"""How well a coarse channel column reproduces the filtered reference: profile errors of
the wall-unit statistics, running and windowed statistics, and a guard against runs that
have blown up.

Fields are cell-centred velocities (B, 3, nx, ny, nz) on one grid with y points ``y`` (ny,),
in the solver's units (h = 1; velocity in u_τ of the pressure drive).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from physics.channel.stats import (
    ChannelStatistics,
    ChannelStatisticsResult,
    channel_grid,
    quadrature_weights,
)

PROFILES = ("u_mean", "u_rms", "v_rms", "w_rms", "uv")


def dimensional_profiles(result: ChannelStatisticsResult) -> dict[str, np.ndarray]:
    """The folded profiles (P,) in the solver's units: U = U⁺ u_τ, u′_rms = u′⁺_rms u_τ
    (likewise v, w), uv = −⟨u′v′⟩ = −⟨u′v′⟩⁺ u_τ²."""
    u_tau = result.u_tau
    return {
        "u_mean": np.asarray(result.u_mean_plus) * u_tau,
        "u_rms": np.asarray(result.u_rms_plus) * u_tau,
        "v_rms": np.asarray(result.v_rms_plus) * u_tau,
        "w_rms": np.asarray(result.w_rms_plus) * u_tau,
        "uv": np.asarray(result.reynolds_stress_plus) * u_tau**2,
    }


def profile_errors(
    result: ChannelStatisticsResult, reference: ChannelStatisticsResult
) -> dict[str, float]:
    """For each of ``PROFILES``, the relative L2 error over the folded half channel

        e = (Σ_j q_j (f_j − f_ref,j)²)^½ / (Σ_j q_j f_ref,j²)^½,

    q the quadrature weights of the folded wall distances (``quadrature_weights``), f the
    dimensional profile (``dimensional_profiles``), so a column whose u_τ differs is not
    rescaled onto the reference. 0 for identical profiles; e for a profile scaled by 1 + e;
    inf when the reference profile is zero and the other is not. ValueError when the two
    results are not on the same wall distances."""
    y, y_ref = np.asarray(result.y), np.asarray(reference.y)
    if y.shape != y_ref.shape or not np.allclose(y, y_ref, rtol=0, atol=1e-9):
        raise ValueError(
            "profile errors need both statistics on the same y points; got "
            f"{y.size} and {y_ref.size} points"
        )
    q = quadrature_weights(y_ref)
    mine, ref = dimensional_profiles(result), dimensional_profiles(reference)
    out = {}
    for name in PROFILES:
        diff = math.sqrt(float(q @ (mine[name] - ref[name]) ** 2))
        norm = math.sqrt(float(q @ ref[name] ** 2))
        out[name] = diff / norm if norm > 0 else (0.0 if diff == 0 else math.inf)
    return out


def bulk_weights(y: Any) -> torch.Tensor:
    """Weights w (ny,) float64 of the points y (symmetric) with Σ_j w_j U_j = ½∫_{−1}^{1} U dy
    for the piecewise-quadratic profile through the points and, on a cell-centred grid, the
    wall value 0 (``quadrature_weights`` on the points plus the walls: ``ChannelStatistics``'
    bulk velocity). Exact for a Poiseuille parabola; the walls' weights are dropped, so
    Σ w_j < 1 on a cell-centred grid (the mean of profiles that vanish at the walls)."""
    grid = channel_grid(y)
    q = quadrature_weights(grid.extended)
    w = 0.5 * (q if grid.walls else q[1:-1])
    if grid.flipped:
        w = w[::-1].copy()
    return torch.from_numpy(np.ascontiguousarray(w))


def _weights(u: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    ny = u.shape[-2]
    if weights is None:
        return torch.full((ny,), 1.0 / ny, dtype=torch.float64, device=u.device)
    return weights.to(device=u.device, dtype=torch.float64)


def bulk_velocity(u: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """U_b = Σ_j w_j ⟨u⟩_xz(y_j) ≈ ½∫⟨u⟩_xz dy (B,) of fields (B, 3, nx, ny, nz), velocity
    units (``bulk_weights``; uniform 1/ny when None)."""
    profile = u[:, 0].to(torch.float64).mean(dim=(1, 3))  # (B, ny)
    return profile @ _weights(u, weights)


def kinetic_energy(u: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """E = ½ Σ_j w_j ⟨u² + v² + w²⟩_xz(y_j) ≈ ¼∫⟨|u|²⟩_xz dy (B,), the mean kinetic energy
    per unit mass over the channel (velocity²; no-slip makes |u|² vanish at the walls)."""
    profile = u.to(torch.float64).square().sum(dim=1).mean(dim=(1, 3))  # (B, ny)
    return 0.5 * profile @ _weights(u, weights)


def _result_or_none(stats: ChannelStatistics) -> ChannelStatisticsResult | None:
    if stats.count == 0:
        return None
    try:
        return stats.result()
    except ValueError:  # no positive mean wall shear: wall units are undefined
        return None


def _merge(into: ChannelStatistics, other: ChannelStatistics) -> None:
    """Add ``other``'s snapshots to ``into``: the same pairwise (Chan et al.) update that
    ``ChannelStatistics.update`` applies to a batch, with ``other``'s sums as the batch."""
    if other.count == 0:
        return
    total = into.count + other.count
    delta = other._mean - into._mean
    into._between += other._between + np.einsum("iy,jy->ijy", delta, delta) * (
        into.count * other.count / total
    )
    into._mean += delta * (other.count / total)
    into._within += other._within
    if into._spec_x is None:
        into.nx, into.nz = other.nx, other.nz
        into._spec_x = np.zeros_like(other._spec_x)
        into._spec_z = np.zeros_like(other._spec_z)
    into._spec_x += other._spec_x
    into._spec_z += other._spec_z
    into.count = total


class WindowedStatistics:
    """Channel statistics over every frame (``running``) and over the last ``window`` frames
    (``windowed``), each update(u) one frame (or batch) of fields (B, 3, nx, ny, nz).

    The window slides: it keeps one single-update accumulator per frame (O(ny (nx + nz))
    each, not the fields) and merges the last ``window`` of them on demand, which gives the
    statistics a fresh ``ChannelStatistics`` fed only those frames would (to round-off)."""

    def __init__(
        self,
        y: Any,
        nu: float,
        lx: float,
        lz: float,
        window: int,
        spectra_at_yplus: Sequence[float] = (5, 15, 30, 100),
    ):
        if int(window) < 1:
            raise ValueError(f"the statistics window must be at least 1 frame; got {window}")
        self.window = int(window)
        self._args = (y, nu, lx, lz, tuple(spectra_at_yplus))
        self.all = ChannelStatistics(*self._args)
        self._recent: deque[ChannelStatistics] = deque(maxlen=self.window)

    @property
    def count(self) -> int:
        """Snapshots added so far."""
        return self.all.count

    def update(self, u: Any) -> None:
        """Add a frame (ValueError for a non-finite one, as ``ChannelStatistics.update``)."""
        frame = ChannelStatistics(*self._args)
        frame.update(u)
        _merge(self.all, frame)
        self._recent.append(frame)

    def running(self) -> ChannelStatisticsResult | None:
        """The statistics of all frames so far; None before any frame or when wall units
        are undefined (no positive mean wall shear)."""
        return _result_or_none(self.all)

    def windowed(self) -> ChannelStatisticsResult | None:
        """The statistics of the last ``window`` frames (all frames while fewer have come);
        None as for ``running``."""
        merged = ChannelStatistics(*self._args)
        for frame in self._recent:
            _merge(merged, frame)
        return _result_or_none(merged)


class Guard:
    """Stops a column that has left the reference's flow: ``check(u, reference)`` is None
    while u is plausible, else a sentence saying why not, tested in this order:

    - u holds NaN or ±inf;
    - its kinetic energy (``kinetic_energy``) exceeds ``divergence_factor`` × the
      reference's;
    - its bulk velocity (``bulk_velocity``) differs from the reference's by more than
      ``drift`` × |U_b,ref| (a relative drift).

    ``weights`` (ny,) are the wall-normal weights (``bulk_weights``); uniform when None."""

    def __init__(self, divergence_factor: float = 10.0, drift: float = 0.5):
        if not divergence_factor > 0:
            raise ValueError(f"divergence_factor must be positive; got {divergence_factor}")
        if not drift > 0:
            raise ValueError(f"drift must be positive; got {drift}")
        self.divergence_factor = float(divergence_factor)
        self.drift = float(drift)

    def check(
        self, u: torch.Tensor, reference: torch.Tensor, weights: torch.Tensor | None = None
    ) -> str | None:
        if not bool(torch.isfinite(u).all()):
            return "The field holds NaN or infinite values."
        energy = float(kinetic_energy(u, weights).max())
        energy_ref = float(kinetic_energy(reference, weights).max())
        if energy > self.divergence_factor * energy_ref:
            return (
                f"The kinetic energy {energy:.4g} exceeds {self.divergence_factor:g} times the "
                f"reference's {energy_ref:.4g}."
            )
        bulk = bulk_velocity(u, weights)
        bulk_ref = bulk_velocity(reference, weights)
        change = float(((bulk - bulk_ref).abs() / bulk_ref.abs().clamp_min(1e-30)).max())
        if not change <= self.drift:
            return (
                f"The bulk velocity {float(bulk[0]):.4g} differs from the reference's "
                f"{float(bulk_ref[0]):.4g} by {100 * change:.3g}%, more than "
                f"{100 * self.drift:.3g}%."
            )
        return None
