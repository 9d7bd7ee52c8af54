"""Implicit–explicit (IMEX) Runge–Kutta / Crank–Nicolson time stepping.

Two schemes, both second order overall, for ∂u/∂t = N(u) + G u with G a diagonal
(Fourier-multiplier) linear operator treated implicitly:

- ``RK4_CN`` ("rk4cn"): Carpenter–Kennedy low-storage RK4 for N, Crank–Nicolson for G over
  each stage's sub-interval; fourth order for N alone (G = 0), second order coupled.
- ``CN_HEUN`` ("cnheun"): Heun's predictor–corrector (explicit trapezoidal RK2) for N,
  Crank–Nicolson over the whole step for G; second order, two evaluations of N per step
  instead of five.

``SCHEMES`` maps the names to the schemes and ``imex_step`` runs either.

Low-storage RK4-CN. For an ODE split as ∂u/∂t = N(u) + G(u), with N the explicit
(nonlinear, forcing) terms and G a linear operator treated implicitly, each step of size Δt
runs s stages, starting from h = 0 and u = uⁿ:

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
    """Coefficients of a low-storage IMEX RK/CN scheme: α (s+1 nodes), β and γ (s each).

    ``order`` is the formal order of the coupled IMEX scheme and ``explicit_order`` that of
    its explicit part alone (G = 0); None where not stated. ``name`` is the key in
    ``SCHEMES`` and ``default_cfl`` the Courant number a solver uses unless told otherwise.
    ``imaginary_axis_growth`` is c in |R(iy)| ≈ 1 + c·y⁴ for schemes whose explicit part
    amplifies pure advection at every step (0 for RK4, stable on |y| ≤ 2√2).
    """

    alphas: Sequence[float]
    betas: Sequence[float]
    gammas: Sequence[float]
    name: str = ""
    order: int | None = None
    explicit_order: int | None = None
    default_cfl: float = 0.5
    imaginary_axis_growth: float = 0.0

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
    name="rk4cn",
    order=2,
    explicit_order=4,
    default_cfl=0.5,
)


@dataclass(frozen=True)
class CNHeun:
    """Crank–Nicolson–Heun: a two-stage IMEX predictor–corrector, second order.

    With µ = ½Δt and Nⁿ = N(uⁿ), a step solves two diagonal systems:

        (1 − µG) u* = (1 + µG) uⁿ + Δt Nⁿ                    (predictor: Euler + CN)
        (1 − µG) uⁿ⁺¹ = (1 + µG) uⁿ + ½Δt (Nⁿ + N(u*))        (corrector: Heun + CN)

    For G = 0 it is Heun's method (the explicit trapezoidal rule), second order; for N = 0
    it is one Crank–Nicolson step, second order and A-stable; coupled it is second order.
    Heun's stability region does not contain the imaginary axis: |R(iy)|² = 1 + y⁴/4, so
    pure advection (y = κ·u Δt) is amplified by about 1 + y⁴/8 at every step. Diffusion
    damps the same mode by about 1 − νκ²Δt per step, and the coupled step is stable when
    νκ²Δt + μΔt ≥ y⁴/8 (checked numerically for y ≤ 1.5); ``VorticitySolver2D.stable_dt``
    enforces this at the largest retained wavenumber besides the CFL limit. An inviscid,
    drag-free flow has no such bound: use RK4-CN there.

    Reference: Chandler & Kerswell (2013), "Invariant recurrent solutions embedded in a
    turbulent two-dimensional Kolmogorov flow", J. Fluid Mech. 722, 554–595, §3; the same
    scheme is jax-cfd's ``crank_nicolson_rk2``.
    """

    name: str = "cnheun"
    order: int = 2
    explicit_order: int = 2
    default_cfl: float = 0.25
    imaginary_axis_growth: float = 0.125


CN_HEUN = CNHeun()

Scheme = LowStorageIMEX | CNHeun

SCHEMES: dict[str, Scheme] = {"rk4cn": RK4_CN, "cnheun": CN_HEUN}


def get_scheme(scheme: str | Scheme) -> Scheme:
    """The scheme called ``scheme`` in ``SCHEMES`` (a scheme object is returned as is).

    Raises ValueError naming the known schemes for an unknown name.
    """
    if isinstance(scheme, LowStorageIMEX | CNHeun):
        return scheme
    try:
        return SCHEMES[scheme]
    except (KeyError, TypeError):
        known = ", ".join(f"{name!r}" for name in SCHEMES)
        raise ValueError(
            f"Unknown time-stepping scheme {scheme!r}; choose one of {known}."
        ) from None


def imex_step(
    u: torch.Tensor,
    dt: float,
    explicit_terms: Callable[[torch.Tensor], torch.Tensor],
    linear_symbol: torch.Tensor,
    scheme: str | Scheme = RK4_CN,
) -> torch.Tensor:
    """One IMEX step of ∂u/∂t = N(u) + G u, with G diagonal (``linear_symbol``, broadcast).

    A diagonal G (a Fourier multiplier) makes the implicit solve a division, (1 − µG)⁻¹.
    ``scheme`` is a scheme object or its name in ``SCHEMES`` ("rk4cn", "cnheun").
    """
    scheme = get_scheme(scheme)
    if isinstance(scheme, CNHeun):
        return cn_heun_step(u, dt, explicit_terms, linear_symbol)
    h = torch.zeros_like(u)
    for k, (beta, gamma) in enumerate(zip(scheme.betas, scheme.gammas, strict=True)):
        h = explicit_terms(u) + beta * h
        mu = 0.5 * dt * (scheme.alphas[k + 1] - scheme.alphas[k])
        u = ((1 + mu * linear_symbol) * u + (gamma * dt) * h) / (1 - mu * linear_symbol)
    return u


def cn_heun_step(
    u: torch.Tensor,
    dt: float,
    explicit_terms: Callable[[torch.Tensor], torch.Tensor],
    linear_symbol: torch.Tensor,
) -> torch.Tensor:
    """One Crank–Nicolson–Heun step of ∂u/∂t = N(u) + G u (see ``CNHeun``)."""
    mu = 0.5 * dt
    explicit_part = (1 + mu * linear_symbol) * u
    implicit_inverse = 1 / (1 - mu * linear_symbol)
    n0 = explicit_terms(u)
    predictor = (explicit_part + dt * n0) * implicit_inverse
    return (explicit_part + (0.5 * dt) * (n0 + explicit_terms(predictor))) * implicit_inverse


def cn_amplification(z: torch.Tensor | float, scheme: str | Scheme = RK4_CN):
    """Factor by which ``imex_step`` multiplies u when N = 0 and G u = λ u, with z = λΔt.

    It is a product of Crank–Nicolson factors (1 + µλ)/(1 − µλ) over the stages (one
    factor with µ = ½Δt for CN-Heun); it equals e^z to O(z³) per step (second order), and
    |·| ≤ 1 for Re z ≤ 0.
    """
    scheme = get_scheme(scheme)
    if isinstance(scheme, CNHeun):
        return (1 + 0.5 * z) / (1 - 0.5 * z)
    factor = 1.0
    for k in range(len(scheme.betas)):
        m = 0.5 * (scheme.alphas[k + 1] - scheme.alphas[k]) * z
        factor = factor * (1 + m) / (1 - m)
    return factor
