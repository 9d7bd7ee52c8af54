"""Shell-averaged energy and enstrophy spectra of 2D periodic vorticity fields, and energy
spectra of 2D and 3D periodic velocity fields (``velocity_energy_spectrum``).

A mode's integer wavevector κ = (kx, ky) falls in shell k when |κ| ∈ [k − ½, k + ½). Shells
run from 0 to kmax = ceil(√2·n/2), which reaches the corner of the spectrum, so every mode is
counted once and the spectrum sums exactly (Parseval) to the domain average of the field's
density:

    Σₖ E(k) = ½⟨|u|²⟩,    Σₖ Z(k) = ½⟨ω²⟩,    ⟨·⟩ = (1/n²) Σ over grid points.

With the unnormalised DFT f̂ = Σ f e^{−iκ·x}, Parseval reads ⟨f²⟩ = Σ_κ |f̂(κ)|²/n⁴ over the
full plane. The rfft2 layout stores only kx ≥ 0, so the columns 0 < kx < n/2 stand for two
modes (κ and −κ, same |κ|) and are counted twice, while kx = 0 and, for even n, the Nyquist
column kx = n/2 are their own mirror images and are counted once.
"""

from __future__ import annotations

import math

import torch

from physics.grid import Grid2D
from physics.spectral import grid_of, rfft2, velocity_hat_from_vorticity_hat


def half_plane_weights(grid: Grid2D, device=None, dtype=torch.float32) -> torch.Tensor:
    """Multiplicity (1 or 2) of each rfft2 column in a full-plane sum, shape (1, n//2+1)."""
    weights = torch.full((1, grid.n // 2 + 1), 2.0, device=device, dtype=dtype)
    weights[0, 0] = 1.0
    if grid.n % 2 == 0:
        weights[0, -1] = 1.0
    return weights


def shell_index(grid: Grid2D, device=None) -> tuple[torch.Tensor, int]:
    """Shell of each rfft2 mode, round(|κ|) with halves rounded up, and the last shell kmax."""
    kx, ky = grid.integer_wavenumbers(device)
    modulus = torch.sqrt((kx**2 + ky**2).double())
    kmax = math.ceil(math.sqrt(2.0) * grid.n / 2)
    return torch.floor(modulus + 0.5).long(), kmax


def shell_sum(density_hat: torch.Tensor, grid: Grid2D) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum a per-mode quantity (..., n, n//2+1) over shells: returns k (K,) and sums (..., K).

    ``density_hat`` holds each rfft2 mode's share of a domain average (already divided by
    n⁴); the half-plane multiplicities are applied here.
    """
    dtype = density_hat.dtype
    index, kmax = shell_index(grid, density_hat.device)
    weighted = density_hat * half_plane_weights(grid, density_hat.device, dtype)
    lead = weighted.shape[:-2]
    flat = weighted.reshape(-1, index.numel())
    sums = flat.new_zeros((flat.shape[0], kmax + 1)).index_add_(1, index.flatten(), flat)
    k = torch.arange(kmax + 1, device=density_hat.device, dtype=dtype)
    return k, sums.reshape(*lead, kmax + 1)


def _per_item(spectrum: torch.Tensor) -> torch.Tensor:
    """Sum a (B, C, K) spectrum over channels to (B, K)."""
    return spectrum.sum(dim=1)


def energy_spectrum(w: torch.Tensor, length: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Kinetic-energy spectrum of vorticity fields w (B, 1, n, n): k (K,) and E (B, K).

    E(k) = Σ_{|κ| in shell k} ½(|û|² + |v̂|²)/n⁴ with the velocity of
    ``physics.spectral.velocity_from_vorticity``, so E.sum(-1) equals ``kinetic_energy(w)``
    = ½⟨u² + v²⟩ to round-off. k are integer wavenumbers (in units of 2π/L), in w's dtype.
    """
    grid = grid_of(w, length)
    u_hat, v_hat = velocity_hat_from_vorticity_hat(rfft2(w), grid)
    density = 0.5 * (u_hat.abs() ** 2 + v_hat.abs() ** 2) / grid.n**4
    k, spectrum = shell_sum(density, grid)
    return k, _per_item(spectrum)


def enstrophy_spectrum(w: torch.Tensor, length: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Enstrophy spectrum Z(k) of vorticity fields w (B, 1, n, n): k (K,) and Z (B, K).

    Z(k) = Σ_{|κ| in shell k} ½|ω̂|²/n⁴, so Z.sum(-1) equals ``enstrophy(w)`` = ½⟨ω²⟩.
    ``length`` does not change Z (enstrophy is a point average); it is accepted so both
    spectra are called alike.
    """
    grid = grid_of(w, length)
    density = 0.5 * rfft2(w).abs() ** 2 / grid.n**4
    k, spectrum = shell_sum(density, grid)
    return k, _per_item(spectrum)


def _integer_wavevector_modulus(n: int, ndim: int, device=None) -> torch.Tensor:
    """|κ| in integer units for the rfftn layout of an n^ndim grid: shape (n,)*(ndim−1) +
    (n//2+1,), float64. Leading axes follow ``fftfreq``; the last axis is halved."""
    full = torch.fft.fftfreq(n, d=1.0 / n, device=device).round().double()
    half = torch.arange(n // 2 + 1, device=device, dtype=torch.float64)
    axes = [full] * (ndim - 1) + [half]
    squares = torch.zeros((), device=device, dtype=torch.float64)
    for axis, k in enumerate(axes):
        shape = [1] * ndim
        shape[axis] = k.numel()
        squares = squares + k.reshape(shape) ** 2
    return torch.sqrt(squares)


def velocity_energy_spectrum(
    u: torch.Tensor, length: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kinetic-energy spectrum of velocity fields: k (K,) and E (B, K).

    ``u`` is a 2D velocity (B, 2, n, n) = (u, v) or a 3D one (B, 3, n, n, n) = (u, v, w) on
    the periodic square or cube of side ``length``; the channels are the components along
    the spatial axes (any order: the energy is their sum). Shells are as in 2D: mode κ
    (integer wavevector) is in shell k when |κ| ∈ [k − ½, k + ½), k = 0, …, ceil(√d·n/2),
    so every mode counts once and

        Σₖ E(k) = ½⟨|u|²⟩,    E(k) = Σ_{|κ| in shell k} ½ Σ_c |û_c(κ)|² / n^(2d),

    with the unnormalised DFT over the d spatial axes; the rfftn half-space stores κ and −κ
    once, so columns 0 < k_last < n/2 count twice. The field need not be divergence-free.
    For a 2D velocity derived from a vorticity ω this equals ``energy_spectrum(ω)``. k are
    integer wavenumbers (units of 2π/L) in u's dtype; ``length`` does not change E (it is a
    point average) and is accepted so that all spectra are called alike.
    """
    if u.ndim not in (4, 5) or u.shape[1] != u.ndim - 2:
        raise ValueError(
            "Expected a 2D velocity (B, 2, n, n) or a 3D velocity (B, 3, n, n, n); "
            f"got a tensor shaped {tuple(u.shape)}."
        )
    ndim = u.ndim - 2
    n = u.shape[-1]
    if any(size != n for size in u.shape[2:]):
        raise ValueError(
            f"The velocity must be on a square or cubic grid; got {tuple(u.shape[2:])}."
        )
    if not length > 0:
        raise ValueError(f"The domain length must be positive; got {length}.")
    u_hat = torch.fft.rfftn(u, dim=tuple(range(2, u.ndim)))
    density = 0.5 * (u_hat.abs() ** 2).sum(dim=1) / float(n) ** (2 * ndim)  # (B, *rfft)
    dtype = density.dtype
    weights = torch.full((n // 2 + 1,), 2.0, device=u.device, dtype=dtype)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    index = torch.floor(_integer_wavevector_modulus(n, ndim, u.device) + 0.5).long()
    kmax = math.ceil(math.sqrt(ndim) * n / 2)
    flat = (density * weights).reshape(density.shape[0], -1)
    spectrum = flat.new_zeros((flat.shape[0], kmax + 1)).index_add_(1, index.flatten(), flat)
    return torch.arange(kmax + 1, device=u.device, dtype=dtype), spectrum
