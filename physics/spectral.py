"""Spectral operators for 2D periodic vorticity fields.

Conventions: ``w_hat = torch.fft.rfft2(w)`` (unnormalised forward DFT over the last two axes),
so that w = irfft2(w_hat). Derivatives are multiplications by i·k with the angular wavenumbers
of ``Grid2D.wavenumbers``.
"""

from __future__ import annotations

import torch

from physics.grid import Grid2D


def rfft2(w: torch.Tensor) -> torch.Tensor:
    """Real FFT over the two spatial (last) axes."""
    return torch.fft.rfft2(w)


def irfft2(w_hat: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of ``rfft2`` for an n×n grid (``s`` is given so odd n round-trips too)."""
    return torch.fft.irfft2(w_hat, s=(n, n))


def grid_of(w: torch.Tensor, length: float) -> Grid2D:
    """The grid of a real field shaped (..., n, n); raises ValueError if it is not square."""
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"Expected a field shaped (..., n, n); got {tuple(w.shape)}.")
    return Grid2D(w.shape[-1], length)


def derivative_wavenumbers(
    grid: Grid2D, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Angular wavenumbers for first derivatives, with the Nyquist entries set to zero.

    On an even grid the Nyquist mode cos(π x/dx) has no resolvable derivative (its sine
    partner vanishes at every grid point), and multiplying it by ±i·k_N would break the
    Hermitian symmetry of the spectrum; zeroing it is the standard choice (it keeps ∂/∂x of a
    real field real, and ∂x∂y = ∂y∂x exactly).
    """
    kx, ky = grid.wavenumbers(device, dtype)
    if grid.n % 2 == 0:
        kx = kx.clone()
        ky = ky.clone()
        kx[..., grid.n // 2] = 0
        ky[grid.n // 2, ...] = 0
    return kx, ky


def laplacian_symbol(
    grid: Grid2D, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """|k|² = kx² + ky², the symbol of −Δ, shape (n, n//2+1)."""
    kx, ky = grid.wavenumbers(device, dtype)
    return kx**2 + ky**2


def streamfunction_hat(w_hat: torch.Tensor, grid: Grid2D) -> torch.Tensor:
    """ψ̂ solving −Δψ = ω: ψ̂ = ω̂/|k|², with the mean mode ψ̂(0) = 0."""
    k2 = laplacian_symbol(grid, w_hat.device, w_hat.real.dtype)
    # The mean of ψ is arbitrary (a constant has no velocity); set it to zero. Dividing by 1
    # at k = 0 avoids a 0/0 before the mode is cleared.
    k2[0, 0] = 1.0
    psi_hat = w_hat / k2
    psi_hat[..., 0, 0] = 0
    return psi_hat


def velocity_hat_from_vorticity_hat(
    w_hat: torch.Tensor, grid: Grid2D
) -> tuple[torch.Tensor, torch.Tensor]:
    """(û, v̂) = (i ky ψ̂, −i kx ψ̂) with ψ̂ = ω̂/|k|²: u = ∂ψ/∂y, v = −∂ψ/∂x."""
    kx, ky = derivative_wavenumbers(grid, w_hat.device, w_hat.real.dtype)
    psi_hat = streamfunction_hat(w_hat, grid)
    return 1j * ky * psi_hat, -1j * kx * psi_hat


def velocity_from_vorticity(
    w: torch.Tensor, length: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocity (u, v) of a periodic vorticity field ω shaped (..., n, n).

    The stream function ψ solves −Δψ = ω (zero mean), and u = ∂ψ/∂y, v = −∂ψ/∂x, so that
    ∂u/∂x + ∂v/∂y = 0 exactly and ∂v/∂x − ∂u/∂y = ω for every mode but the mean and, on even
    grids, the Nyquist ones (whose first derivatives are zeroed, see
    ``derivative_wavenumbers``). Outputs have the input's shape and dtype.
    """
    grid = grid_of(w, length)
    u_hat, v_hat = velocity_hat_from_vorticity_hat(rfft2(w), grid)
    return irfft2(u_hat, grid.n), irfft2(v_hat, grid.n)


def divergence_hat(u_hat: torch.Tensor, v_hat: torch.Tensor, grid: Grid2D) -> torch.Tensor:
    """Spectral divergence i kx û + i ky v̂ (same derivative wavenumbers as the velocity)."""
    kx, ky = derivative_wavenumbers(grid, u_hat.device, u_hat.real.dtype)
    return 1j * kx * u_hat + 1j * ky * v_hat


def truncate_hat(w_hat: torch.Tensor, n_out: int) -> torch.Tensor:
    """Keep the modes of an rfft2 spectrum (n_in, n_in//2+1) that fit an n_out grid.

    Returns the rfft2 coefficients, rescaled by (n_out/n_in)², of the field sampled on the
    coarser n_out×n_out grid after removing the modes it cannot hold (|k| ≥ n_out/2), so that
    ``irfft2(truncate_hat(rfft2(w), m), m)`` is the spectral restriction of w to an m² grid.
    The Nyquist row and column of the coarse grid are dropped, since they are not shared
    with the fine grid's modes of the same integer wavenumber in a Hermitian-consistent way.
    """
    n_in = w_hat.shape[-2]
    if n_out > n_in:
        raise ValueError(f"Cannot truncate an {n_in}-point spectrum to {n_out} points.")
    half = (n_out + 1) // 2  # integer wavenumbers |k| < half are kept (no Nyquist)
    out = w_hat.new_zeros((*w_hat.shape[:-2], n_out, n_out // 2 + 1))
    out[..., :half, :half] = w_hat[..., :half, :half]
    out[..., n_out - half + 1 :, :half] = w_hat[..., n_in - half + 1 :, :half]
    return out * (n_out / n_in) ** 2
