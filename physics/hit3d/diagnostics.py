"""Statistics of 3D velocity fields u (B, 3, n, n, n) in the periodic box [0, L)³.

Derivatives are spectral (``physics.hit3d.operators``); averages ⟨·⟩ are over the grid
points of each field, so every function returns one value per batch member (B,) unless it
says otherwise. With u' the rms of one velocity component (mean removed) and definitions
as in Pope, *Turbulent Flows* (2000), ch. 6:

    E = ½⟨|u|²⟩,  ε = 2ν⟨S_ij S_ij⟩ (= ν⟨|ω|²⟩ for a solenoidal periodic field, since
    ⟨∂_j u_i ∂_i u_j⟩ = 0 there),  λ = (15νu'²/ε)^½ = (15u'²/⟨|ω|²⟩)^½,  Re_λ = u'λ/ν,
    L = (π/(2u'²)) ∫ E(k)/k dk,  S = ⟨(∂u/∂x)³⟩/⟨(∂u/∂x)²⟩^{3/2},  Q = ½(Ω_ijΩ_ij − S_ijS_ij).

λ is the transverse Taylor microscale λ_g (Pope eq. 6.56–6.57 with ε = 15ν⟨(∂u/∂x)²⟩ of
isotropy). The energy spectrum is ``physics.spectra.velocity_energy_spectrum`` (integer
shells, Σ E(k) = ½⟨|u|²⟩ exactly).
"""

from __future__ import annotations

import math

import torch

from physics.channel.les import contract, strain_rate
from physics.hit3d.grid import grid_of, irfftn, rfftn
from physics.hit3d.operators import (
    curl_hat,
    divergence_hat,
    gradient_hat,
    vorticity_from_gradient,
)
from physics.spectra import velocity_energy_spectrum

_SPACE = (-3, -2, -1)
TWO_PI = 2 * math.pi


def _check(u: torch.Tensor) -> torch.Tensor:
    if u.ndim != 5 or u.shape[1] != 3:
        raise ValueError(f"Expected a velocity (B, 3, n, n, n); got {tuple(u.shape)}.")
    grid_of(u)
    return u


def _k(u: torch.Tensor, length: float):
    return grid_of(u, length).derivative_wavenumbers(u.device, u.dtype)


def kinetic_energy(u: torch.Tensor) -> torch.Tensor:
    """E = ½⟨|u|²⟩ (B,)."""
    return 0.5 * (_check(u) ** 2).sum(dim=1).mean(dim=_SPACE)


def rms_velocity(u: torch.Tensor) -> torch.Tensor:
    """u' = (⟨|u − ⟨u⟩|²⟩/3)^½, the rms of one component of the fluctuation (B,)."""
    fluctuation = _check(u) - u.mean(dim=_SPACE, keepdim=True)
    return torch.sqrt((fluctuation**2).sum(dim=1).mean(dim=_SPACE) / 3)


def velocity_gradient(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """g_ij = ∂u_i/∂x_j (B, 3, 3, n, n, n)."""
    return irfftn(gradient_hat(rfftn(_check(u)), _k(u, length)), u.shape[-1])


def vorticity(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """ω = ∇ × u (B, 3, n, n, n)."""
    return irfftn(curl_hat(rfftn(_check(u)), _k(u, length)), u.shape[-1])


def divergence(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """∇·u (B, n, n, n)."""
    return irfftn(divergence_hat(rfftn(_check(u)), _k(u, length)), u.shape[-1])


def divergence_max(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """max |∇·u| over the box (B,)."""
    return divergence(u, length).abs().amax(dim=_SPACE)


def enstrophy(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """½⟨|ω|²⟩ (B,)."""
    return 0.5 * (vorticity(u, length) ** 2).sum(dim=1).mean(dim=_SPACE)


def dissipation(
    u: torch.Tensor, nu: float, length: float = TWO_PI, form: str = "strain"
) -> torch.Tensor:
    """ε (B,): ``form`` "strain" 2ν⟨S_ijS_ij⟩ (the definition) or "vorticity" ν⟨|ω|²⟩,
    equal for a solenoidal periodic field."""
    if form == "strain":
        strain = strain_rate(velocity_gradient(u, length))
        return 2 * nu * contract(strain, strain).mean(dim=_SPACE)
    if form == "vorticity":
        return 2 * nu * enstrophy(u, length)
    raise ValueError(f"form must be 'strain' or 'vorticity'; got {form!r}.")


def energy_spectrum(u: torch.Tensor, length: float = TWO_PI) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer wavenumbers k (K,) and the shell-summed spectrum E (B, K), Σ E = ½⟨|u|²⟩
    (``physics.spectra.velocity_energy_spectrum``)."""
    return velocity_energy_spectrum(_check(u), length)


def taylor_microscale(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """λ = (15 u'²/⟨|ω|²⟩)^½ (B,), i.e. (15νu'²/ε)^½ with ε = ν⟨|ω|²⟩."""
    return torch.sqrt(15 * rms_velocity(u) ** 2 / (2 * enstrophy(u, length)))


def taylor_reynolds(u: torch.Tensor, nu: float, length: float = TWO_PI) -> torch.Tensor:
    """Re_λ = u'λ/ν (B,)."""
    return rms_velocity(u) * taylor_microscale(u, length) / nu


def integral_scale(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """L = (π/(2u'²)) ∫ E(k)/k dk (B,), the integral over shells k ≥ 1 as Σ E_shell/k with
    k = (2π/L_box)·shell (E_shell = E(k)Δk)."""
    k, spectrum = energy_spectrum(u, length)
    k = k[1:] * (TWO_PI / length)
    return math.pi / (2 * rms_velocity(u) ** 2) * (spectrum[:, 1:] / k).sum(dim=-1)


def velocity_gradient_skewness(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """S = ⟨(∂u_i/∂x_i)³⟩/⟨(∂u_i/∂x_i)²⟩^{3/2} (B,), no sum over i: the moments are averaged
    over the three directions i before the ratio is taken (≈ −0.4 to −0.5 in developed
    turbulence; Pope §6.5)."""
    g = velocity_gradient(u, length)
    diagonal = torch.stack([g[:, i, i] for i in range(3)], dim=1)
    third = (diagonal**3).mean(dim=(1, *_SPACE))
    second = (diagonal**2).mean(dim=(1, *_SPACE))
    return third / second**1.5


def vorticity_pdf(
    u: torch.Tensor, bins: int = 64, max_value: float | None = None, length: float = TWO_PI
) -> tuple[torch.Tensor, torch.Tensor]:
    """Histogram of |ω| on [0, max_value] (default the batch's largest |ω|): bin centres
    (bins,) and densities (B, bins) normalised so that Σ density·Δ = 1 (Δ the bin width);
    values above max_value fall in the last bin."""
    magnitude = torch.sqrt((vorticity(u, length) ** 2).sum(dim=1)).flatten(1)
    top = float(magnitude.max()) if max_value is None else float(max_value)
    top = top if top > 0 else 1.0
    width = top / bins
    index = (magnitude / width).long().clamp_(0, bins - 1)
    counts = torch.zeros((u.shape[0], bins), device=u.device, dtype=u.dtype)
    counts.scatter_add_(1, index, torch.ones_like(magnitude))
    centres = (torch.arange(bins, device=u.device, dtype=u.dtype) + 0.5) * width
    return centres, counts / (magnitude.shape[1] * width)


def q_criterion(u: torch.Tensor, length: float = TWO_PI) -> torch.Tensor:
    """Q = ½(Ω_ijΩ_ij − S_ijS_ij) (B, n, n, n), Ω_ij = ½(g_ij − g_ji), S_ij = ½(g_ij + g_ji);
    Ω_ijΩ_ij = ½|ω|². Q > 0 marks rotation-dominated regions (Hunt, Wray & Moin 1988); for a
    solenoidal periodic field ⟨Q⟩ = 0."""
    g = velocity_gradient(u, length)
    strain = strain_rate(g)
    omega = vorticity_from_gradient(g)
    return 0.5 * (0.5 * (omega**2).sum(dim=1) - contract(strain, strain))
