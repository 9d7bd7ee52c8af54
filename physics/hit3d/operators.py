"""Spectral differential operators on velocity spectra in the rfftn layout of ``Grid3D``.

Each takes the rfftn coefficients û (…, 3, n, n, n//2+1) of a velocity and derivative
wavenumbers ``k = (kx, ky, kz)`` (``Grid3D.derivative_wavenumbers``), so ∂/∂x_j ↦ i k_j:

    gradient   g_ij = ∂u_i/∂x_j ↦ i k_j û_i          (…, 3, 3, n, n, n//2+1)
    curl       ω = ∇ × u ↦ i k × û
    divergence ∇·u ↦ i k·û
    Leray      P(k) v̂ = v̂ − k (k·v̂)/|k|²            (P = I − kkᵀ/|k|², 0 at k = 0 left as is)

The projection uses the same k as the divergence, so k·(P v̂) = 0 exactly: a projected
field is divergence-free to round-off in the discrete sense used by every diagnostic.
"""

from __future__ import annotations

import torch

Wavenumbers = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def gradient_hat(u_hat: torch.Tensor, k: Wavenumbers) -> torch.Tensor:
    """ĝ_ij = i k_j û_i: (…, 3, n, n, m) → (…, 3, 3, n, n, m), i the component, j the
    derivative direction (the layout of ``physics.channel.les.strain_rate``)."""
    return torch.stack([1j * kj * u_hat for kj in k], dim=-4)


def curl_hat(u_hat: torch.Tensor, k: Wavenumbers) -> torch.Tensor:
    """(∇ × u)^ = i k × û, (…, 3, n, n, m)."""
    kx, ky, kz = k
    u, v, w = u_hat.unbind(-4)
    return 1j * torch.stack([ky * w - kz * v, kz * u - kx * w, kx * v - ky * u], dim=-4)


def divergence_hat(u_hat: torch.Tensor, k: Wavenumbers) -> torch.Tensor:
    """(∇·u)^ = i k·û, (…, n, n, m)."""
    kx, ky, kz = k
    u, v, w = u_hat.unbind(-4)
    return 1j * (kx * u + ky * v + kz * w)


def inverse_squared(k: Wavenumbers) -> torch.Tensor:
    """1/|k|² with 0 where k = 0, for ``leray_project``."""
    k2 = k[0] ** 2 + k[1] ** 2 + k[2] ** 2
    return torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, 1), 0)


def leray_project(
    v_hat: torch.Tensor, k: Wavenumbers, inverse_k2: torch.Tensor | None = None
) -> torch.Tensor:
    """P(k) v̂ = v̂ − k (k·v̂)/|k|²: the divergence-free part of v (the pressure gradient
    removed). ``inverse_k2`` is ``inverse_squared(k)``, computed here when not given."""
    if inverse_k2 is None:
        inverse_k2 = inverse_squared(k)
    kx, ky, kz = k
    u, v, w = v_hat.unbind(-4)
    k_dot_v = (kx * u + ky * v + kz * w) * inverse_k2
    return torch.stack([u - kx * k_dot_v, v - ky * k_dot_v, w - kz * k_dot_v], dim=-4)


def vorticity_from_gradient(g: torch.Tensor) -> torch.Tensor:
    """ω_i = ε_ijk ∂u_k/∂x_j from a gradient g_ij = ∂u_i/∂x_j (…, 3, 3, *space) →
    (…, 3, *space): ω = (g_zy − g_yz, g_xz − g_zx, g_yx − g_xy)."""

    def c(i: int, j: int) -> torch.Tensor:
        return g[..., i, j, :, :, :]

    return torch.stack([c(2, 1) - c(1, 2), c(0, 2) - c(2, 0), c(1, 0) - c(0, 1)], dim=-4)
