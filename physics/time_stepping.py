"""Implicit–explicit low-storage Runge–Kutta / Crank–Nicolson time stepping.

For an ODE split as ∂u/∂t = N(u) + G(u), with N the explicit (nonlinear, forcing) terms and
G a linear operator treated implicitly, each step of size Δt runs s stages, starting from
h = 0 and u = uⁿ:

    h ← N(u) + βₖ h
    µ = ½ Δt (αₖ₊₁ − αₖ)
    u ← (1 − µG)⁻¹ [u + γₖ Δt h + µ G u]

The explicit part is a 2N-storage ("low-storage") Runge–Kutta scheme; the implicit part is
a Crank–Nicolson (trapezoidal) step over each stage's sub-interval (αₖ, αₖ₊₁)·Δt. The
combination is second order overall (CN limits it) but keeps the explicit scheme's
accuracy and stability for the explicit terms, which dominate in turbulence; the CN part is
A-stable, so stiff diffusion sets no step limit.

References: Carpenter & Kennedy (1994), NASA TM-109112 (the coefficients); Canuto et al.,
*Spectral Methods: Evolution to Complex Geometries*, Springer 2007, appendix D.3 (the IMEX
construction); the same scheme is jax-cfd's ``crank_nicolson_rk4``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LowStorageIMEX:
    """Coefficients of a low-storage IMEX RK/CN scheme: α (s+1 nodes), β and γ (s each)."""

    alphas: Sequence[float]
    betas: Sequence[float]
    gammas: Sequence[float]

    def __post_init__(self) -> None:
        s = len(self.betas)
        if len(self.gammas) != s or len(self.alphas) != s + 1:
            raise ValueError("An s-stage scheme needs s+1 alphas and s betas and gammas.")


# Carpenter & Kennedy's five-stage, fourth-order 2N-storage Runge–Kutta (their "solution 3"),
# in exact rational form. β are their Aₖ, γ their Bₖ, and α their nodes cₖ followed by 1.
RK4_CN = LowStorageIMEX(
    alphas=(
        0.0,
        1432997174477 / 9575080441755,  # 0.14965902199923
        2526269341429 / 6820363962896,  # 0.37040095736420
        2006345519317 / 3224310063776,  # 0.62225576313444
        2802321613138 / 2924317926251,  # 0.95828213067469
        1.0,
    ),
    betas=(
        0.0,
        -567301805773 / 1357537059087,  # -0.41789047449985
        -2404267990393 / 2016746695238,  # -1.19215169464268
        -3550918686646 / 2091501179385,  # -1.69778469247153
        -1275806237668 / 842570457699,  # -1.51418344425716
    ),
    gammas=(
        1432997174477 / 9575080441755,  # 0.14965902199923
        5161836677717 / 13612068292357,  # 0.37921031299963
        1720146321549 / 2090206949498,  # 0.82295502938698
        3134564353537 / 4481467310338,  # 0.69945045594912
        2277821191437 / 14882151754819,  # 0.15305724796815
    ),
)


def imex_step(
    u: torch.Tensor,
    dt: float,
    explicit_terms: Callable[[torch.Tensor], torch.Tensor],
    linear_symbol: torch.Tensor,
    scheme: LowStorageIMEX = RK4_CN,
) -> torch.Tensor:
    """One IMEX step of ∂u/∂t = N(u) + G u, with G diagonal (``linear_symbol``, broadcast).

    A diagonal G (a Fourier multiplier) makes the implicit solve a division, (1 − µG)⁻¹.
    """
    h = torch.zeros_like(u)
    for k, (beta, gamma) in enumerate(zip(scheme.betas, scheme.gammas, strict=True)):
        h = explicit_terms(u) + beta * h
        mu = 0.5 * dt * (scheme.alphas[k + 1] - scheme.alphas[k])
        u = ((1 + mu * linear_symbol) * u + (gamma * dt) * h) / (1 - mu * linear_symbol)
    return u


def cn_amplification(z: torch.Tensor | float, scheme: LowStorageIMEX = RK4_CN):
    """Factor by which ``imex_step`` multiplies u when N = 0 and G u = λ u, with z = λΔt.

    It is a product of Crank–Nicolson factors (1 + µλ)/(1 − µλ) over the stages; it equals
    e^z to O(z³) per step (second order), and |·| ≤ 1 for Re z ≤ 0.
    """
    factor = 1.0
    for k in range(len(scheme.betas)):
        m = 0.5 * (scheme.alphas[k + 1] - scheme.alphas[k]) * z
        factor = factor * (1 + m) / (1 - m)
    return factor
