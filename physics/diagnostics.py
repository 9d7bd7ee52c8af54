"""Scalar diagnostics of 2D vorticity fields, one value per batch item.

Fields are vorticity ω shaped (B, 1, n, n) on the periodic box [0, L)² (a (B, C, n, n) field
is summed over channels). ⟨·⟩ is the domain average, the mean over grid points; with the
unnormalised DFT ω̂ = ``rfft2(ω)`` and the angular wavevector κ = 2π/L·(integers), Parseval
reads ⟨ω²⟩ = Σ_κ |ω̂(κ)|²/n⁴ over the full plane.

    E = ½⟨|u|²⟩,   Z = ½⟨ω²⟩,   P = ½⟨|∇ω|²⟩,
    ε = 2νZ (energy dissipation),   χ = 2νP (enstrophy dissipation).

For the viscous term νΔω of the periodic solver, dE/dt = −ν⟨|∇u|²⟩ = −2νZ and
dZ/dt = −ν⟨|∇ω|²⟩ = −2νP (the first up to the mean and Nyquist modes of ω, which carry no
velocity; see ``physics.spectral.derivative_wavenumbers``).

The velocity and stream function come from ``physics.spectral`` (−Δψ = ω with ψ of zero
mean, u = ∂ψ/∂y, v = −∂ψ/∂x); ``velocity_from_vorticity`` is re-exported here.
"""

from __future__ import annotations

import torch

from physics.norms import parseval_weights, relative_l2
from physics.spectral import (
    grid_of,
    irfft2,
    laplacian_symbol,
    rfft2,
    streamfunction_hat,
    velocity_from_vorticity,
)

__all__ = [
    "energy_dissipation",
    "enstrophy",
    "enstrophy_dissipation",
    "kinetic_energy",
    "palinstrophy",
    "relative_l2",
    "stream_function",
    "velocity_from_vorticity",
]


def stream_function(w: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """Stream function ψ of vorticity fields w (..., n, n): −Δψ = ω with ⟨ψ⟩ = 0.

    Spectrally ψ̂(κ) = ω̂(κ)/|κ|² for κ ≠ 0 and ψ̂(0) = 0 (the mean of ω, which no periodic ψ
    can produce, is dropped). Same shape and dtype as w.
    """
    grid = grid_of(w, length)
    return irfft2(streamfunction_hat(rfft2(w), grid), grid.n)


def kinetic_energy(w: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """E = ½⟨u² + v²⟩ of vorticity fields w (B, 1, n, n), shape (B,), in physical space."""
    u, v = velocity_from_vorticity(w, length)
    return 0.5 * (u**2 + v**2).flatten(1).sum(-1) / (w.shape[-1] * w.shape[-2])


def enstrophy(w: torch.Tensor) -> torch.Tensor:
    """Z = ½⟨ω²⟩ of vorticity fields w (B, 1, n, n), shape (B,)."""
    return 0.5 * (w**2).flatten(1).sum(-1) / (w.shape[-1] * w.shape[-2])


def palinstrophy(w: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """P = ½⟨|∇ω|²⟩ = ½ Σ_κ |κ|² |ω̂(κ)|²/n⁴ of vorticity fields w (B, 1, n, n), shape (B,).

    Computed by Parseval with |κ|², the symbol of −Δ (Nyquist modes included), so that
    P = −½⟨ω Δω⟩ with the spectral Laplacian the solver uses and dZ/dt = −2νP holds exactly
    for its viscous term. (Gradients formed with ``derivative_wavenumbers``, which zero the
    Nyquist modes, would miss those modes' share.) For a single mode ω = A cos(κ·x),
    P = A²|κ|²/4.
    """
    grid = grid_of(w, length)
    w_hat = rfft2(w)
    power = w_hat.real**2 + w_hat.imag**2
    weights = parseval_weights(grid, 0.0, w.device, power.dtype)
    weights = weights * laplacian_symbol(grid, w.device, power.dtype)
    return 0.5 * (power * weights).flatten(1).sum(-1)


def energy_dissipation(w: torch.Tensor, nu: float) -> torch.Tensor:
    """ε = 2νZ = ν⟨ω²⟩, the viscous energy dissipation rate, shape (B,).

    Equal to ν⟨|∇u|²⟩ for a periodic incompressible velocity (up to ω's mean and Nyquist
    modes, which carry no velocity).
    """
    return 2.0 * nu * enstrophy(w)


def enstrophy_dissipation(w: torch.Tensor, nu: float, length: float = 1.0) -> torch.Tensor:
    """χ = 2νP = ν⟨|∇ω|²⟩, the viscous enstrophy dissipation rate, shape (B,)."""
    return 2.0 * nu * palinstrophy(w, length)
