"""How well a trajectory of saved vorticity frames satisfies the 2D Navier–Stokes equation.

For frames ω(t₀), …, ω(t_{T−1}) on the periodic box [0, L)² the residual of the vorticity
equation of ``physics.ns2d`` is

    R = ∂ω/∂t + u·∇ω − νΔω + μω − f,     u = (∂ψ/∂y, −∂ψ/∂x),  −Δψ = ω,

with viscosity ν, linear drag μ and a steady vorticity forcing f. Space is spectral (the
derivatives of ``physics.spectral``: first derivatives with the Nyquist modes zeroed, Δ with
the full symbol −|κ|²); time is a finite difference of the saved frames, second order: the
three-point Lagrange derivative, central (frames i−1, i, i+1) inside and one-sided (the
first or last three frames) at the ends. On a uniform spacing h these are

    ∂ω/∂t(tᵢ) ≈ (ωᵢ₊₁ − ωᵢ₋₁)/2h,   (−3ω₀ + 4ω₁ − ω₂)/2h,   (3ω_{T−1} − 4ω_{T−2} + ω_{T−3})/2h,

with truncation errors h²ω‴/6 inside and h²ω‴/3 at the ends. So even an exact solution
has a residual of order h²·∂³ω/∂t³, which falls at second order as the frames get closer;
a steady exact solution has a residual at round-off.

The advection u·∇ω is a product on the grid. With ``dealias=False`` (the default) it is
taken as is, the pointwise value of the equation at the grid points; with ``dealias=True``
it is the solver's P[u·∇ω] (Orszag's 2/3 rule: ω truncated before the product and the
product truncated after, ``Grid2D.dealias_mask``), so for a trajectory of
``VorticitySolver2D`` only the solver's time-stepping error and the finite-difference
error remain.

``balance_terms`` and ``vorticity_tendency`` (N(ω), the right-hand side of ∂ω/∂t = N(ω))
are the spatial pieces on their own, for residuals with other time discretisations (the
two-frame Crank–Nicolson residual of ``models.pde_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from physics.norms import l2_norm
from physics.spectral import (
    derivative_wavenumbers,
    grid_of,
    irfft2,
    laplacian_symbol,
    rfft2,
    velocity_hat_from_vorticity_hat,
)


class VorticityResidual(NamedTuple):
    """The residual of a trajectory and its size, per batch item and frame.

    residual: R, in the layout of the input frames, (B, T, n, n) or (B, T, 1, n, n).
    time_derivative: the finite-difference ∂ω/∂t, same layout.
    residual_norm: ‖R‖ = ⟨R²⟩^½ per frame, (B, T).
    relative: ‖R‖/‖∂ω/∂t‖ per frame, (B, T); inf or NaN where ∂ω/∂t vanishes (a steady
        state), for which use ``relative_to_largest_term``.
    relative_to_largest_term: ‖R‖ / max(‖∂ω/∂t‖, ‖u·∇ω‖, ‖νΔω‖, ‖μω‖, ‖f‖) per frame, (B, T):
        the residual against the largest term of the balance, finite for steady states.
    """

    residual: torch.Tensor
    time_derivative: torch.Tensor
    residual_norm: torch.Tensor
    relative: torch.Tensor
    relative_to_largest_term: torch.Tensor


def _as_times(times: torch.Tensor | Sequence[float], count: int) -> torch.Tensor:
    times = torch.as_tensor(times, dtype=torch.float64).cpu()
    if times.ndim != 1 or times.numel() != count:
        raise ValueError(f"Expected {count} times, one per frame; got shape {tuple(times.shape)}.")
    if count < 3:
        raise ValueError(f"A second-order time derivative needs at least 3 frames; got {count}.")
    if not bool((times[1:] > times[:-1]).all()):
        raise ValueError("Frame times must be strictly increasing.")
    return times


def time_derivative_stencil(times: torch.Tensor | Sequence[float]) -> tuple[torch.Tensor, ...]:
    """Node indices (T, 3) and float64 weights (T, 3) of the second-order ∂/∂t at each time.

    Frame j uses nodes (j−1, j, j+1) inside and (0, 1, 2), (T−3, T−2, T−1) at the ends; the
    weights are the derivatives at t_j of the Lagrange polynomials through the three nodes
    t_a, t_b, t_c, e.g. ℓ_a′(t_j) = (2t_j − t_b − t_c)/((t_a − t_b)(t_a − t_c)), so the
    stencil differentiates quadratics in t exactly, on any increasing spacing.
    """
    t = torch.as_tensor(times, dtype=torch.float64)
    count = t.numel()
    _as_times(t, count)
    centre = torch.arange(count).clamp(1, count - 2)
    nodes = torch.stack([centre - 1, centre, centre + 1], dim=1)
    tn = t[nodes]  # (T, 3)
    at = t[:, None]
    weights = torch.empty_like(tn)
    for m in range(3):
        others = [o for o in range(3) if o != m]
        p, q = tn[:, others[0]], tn[:, others[1]]
        weights[:, m] = (2 * at[:, 0] - p - q) / ((tn[:, m] - p) * (tn[:, m] - q))
    return nodes, weights


def time_derivative(
    frames: torch.Tensor, times: torch.Tensor | Sequence[float], dim: int = 1
) -> torch.Tensor:
    """Second-order finite-difference ∂/∂t of frames saved at ``times`` along axis ``dim``.

    See ``time_derivative_stencil``; on a uniform spacing h: (ωᵢ₊₁ − ωᵢ₋₁)/2h inside,
    (∓3ω + 4ω∓₁ − ω∓₂)/2h at the ends. Differentiable; same shape and dtype as ``frames``.
    """
    dim = dim % frames.ndim
    nodes, weights = time_derivative_stencil(_as_times(times, frames.shape[dim]))
    count = nodes.shape[0]
    picked = frames.index_select(dim, nodes.flatten().to(frames.device))
    picked = picked.unflatten(dim, (count, 3))  # (..., T, 3, ...)
    shape = [1] * picked.ndim
    shape[dim], shape[dim + 1] = count, 3
    w = weights.to(device=frames.device, dtype=frames.dtype).reshape(shape)
    return (picked * w).sum(dim=dim + 1)


def balance_terms(
    w: torch.Tensor, nu: float, drag: float = 0.0, length: float = 1.0, dealias: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(u·∇ω, νΔω, μω) of vorticity fields ω shaped (..., n, n), each in ω's layout.

    Spectral derivatives (Nyquist first derivatives zeroed, Δ with the full symbol −|κ|²);
    with ``dealias`` the advection is the solver's P[u·∇ω] (2/3 rule before and after the
    product), otherwise the pointwise product on the grid. Follows ω's device and dtype.
    """
    grid = grid_of(w, length)
    n = grid.n
    w_hat = rfft2(w)
    real = w.dtype
    if dealias:
        mask = grid.dealias_mask(w.device)
        w_hat_adv = w_hat * mask
    else:
        w_hat_adv = w_hat
    kx, ky = derivative_wavenumbers(grid, w.device, real)
    u_hat, v_hat = velocity_hat_from_vorticity_hat(w_hat_adv, grid)
    u, v = irfft2(u_hat, n), irfft2(v_hat, n)
    dw_dx = irfft2(1j * kx * w_hat_adv, n)
    dw_dy = irfft2(1j * ky * w_hat_adv, n)
    advection = u * dw_dx + v * dw_dy
    if dealias:
        advection = irfft2(rfft2(advection) * mask, n)
    viscous = irfft2(-nu * laplacian_symbol(grid, w.device, real) * w_hat, n)
    return advection, viscous, drag * w


def vorticity_tendency(
    w: torch.Tensor,
    nu: float,
    drag: float = 0.0,
    forcing: torch.Tensor | None = None,
    length: float = 1.0,
    dealias: bool = False,
) -> torch.Tensor:
    """N(ω) = −u·∇ω + νΔω − μω + f, the right-hand side of ∂ω/∂t = N(ω), for fields
    shaped (..., n, n) (``balance_terms`` says how each term is discretised; ``forcing`` is
    broadcastable to ω, or None). With ``dealias`` it is the solver's tendency, the sum of
    ``VorticitySolver2D.explicit_terms`` and its implicit part −(ν|κ|² + μ)ω̂. Differentiable.
    """
    advection, viscous, damping = balance_terms(w, nu, drag, length, dealias)
    tendency = viscous - advection - damping
    if forcing is not None:
        tendency = tendency + torch.as_tensor(forcing, dtype=w.dtype, device=w.device)
    return tendency


def vorticity_residual(
    frames: torch.Tensor,
    times: torch.Tensor | Sequence[float],
    nu: float,
    drag: float = 0.0,
    forcing: torch.Tensor | None = None,
    length: float = 1.0,
    dealias: bool = False,
) -> VorticityResidual:
    """R = ∂ω/∂t + u·∇ω − νΔω + μω − f for frames ω (B, T, n, n) or (B, T, 1, n, n).

    ``times`` (T,) increasing, T ≥ 3; ν = ``nu``, μ = ``drag``; ``forcing`` f is a real field
    broadcastable to the frames shaped (B, T, 1, n, n), e.g. (n, n) for one steady forcing,
    or None for none. Spatial derivatives are
    spectral and ∂ω/∂t is the second-order finite difference of ``time_derivative`` (see the
    module docstring for the truncation error and for ``dealias``). Follows the frames'
    device and dtype (use float64 to see round-off-level residuals). Returns a
    ``VorticityResidual`` with R, ∂ω/∂t and the per-frame norms (B, T).
    """
    if frames.ndim == 4:
        w = frames.unsqueeze(2)
    elif frames.ndim == 5 and frames.shape[2] == 1:
        w = frames
    else:
        raise ValueError(
            f"Expected vorticity frames shaped (B, T, n, n) or (B, T, 1, n, n); got "
            f"{tuple(frames.shape)}."
        )
    dwdt = time_derivative(w, times, dim=1)
    advection, viscous, damping = balance_terms(w, nu, drag, length, dealias)
    residual = dwdt + advection - viscous + damping

    terms = [dwdt, advection, viscous, damping]
    if forcing is not None:
        f = torch.as_tensor(forcing, dtype=w.dtype, device=w.device)
        residual = residual - f
        terms.append(f.expand_as(w))
    residual_norm = l2_norm(residual)
    largest = torch.stack([l2_norm(term) for term in terms]).amax(dim=0)
    out_shape = frames.shape
    return VorticityResidual(
        residual=residual.reshape(out_shape),
        time_derivative=dwdt.reshape(out_shape),
        residual_norm=residual_norm,
        relative=residual_norm / l2_norm(dwdt),
        relative_to_largest_term=residual_norm / largest,
    )
