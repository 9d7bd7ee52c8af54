"""Norms of periodic fields and the errors built on them: L², Sobolev Hˢ, per-wavenumber band.

Fields are real tensors shaped (..., C, n, n) on the periodic box [0, L)²; every norm sums
over the channel axis and averages over the box, so a field shaped (B, C, n, n) gives one
value per batch item, shape (B,), and (B, T, C, n, n) gives (B, T). The averages are domain
means, ⟨f⟩ = (1/n²) Σ over grid points, so a norm does not depend on the grid size:

    ‖f‖² = Σ_c ⟨f_c²⟩ = Σ_c Σ_κ |f̂_c(κ)|² / n⁴          (Parseval),

with the unnormalised DFT f̂ = ``torch.fft.rfft2(f)`` and κ = 2π/L·(integer wavevector) the
angular wavevector. The Sobolev norms weight each mode by (1 + |κ|²)ˢ (the inhomogeneous
Bessel-potential norm, mean mode included), not by |κ|²ˢ with the mean excluded:

    ‖f‖²_{Hˢ} = Σ_c Σ_κ (1 + |κ|²)ˢ |f̂_c(κ)|² / n⁴,

so ‖f‖_{H⁰} = ‖f‖, ‖f‖²_{H¹} = ⟨f²⟩ + ⟨|∇f|²⟩ (the gradient taken spectrally with the full
symbol |κ|², the Nyquist modes included) and H⁻¹ weights each mode by 1/(1 + |κ|²). Since
|κ| is angular, on the unit box the first non-mean mode has |κ|² = 4π² ≈ 39.5, so there the
"1 +" matters mainly for the mean mode.

Everything here is differentiable (no in-place updates of tensors that require grad): the
relative norms serve as training losses. A norm is taken with ``torch.linalg.vector_norm``,
whose gradient at a zero vector is zero rather than NaN, so ``relative_h1(b, b)`` has a
finite (zero) gradient. A reference b with zero norm gives inf or NaN; callers that need a
floor add it themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from physics.grid import Grid2D
from physics.spectra import half_plane_weights, shell_index
from physics.spectral import grid_of, laplacian_symbol, rfft2

# Reductions over channel and space; view_as_real adds a trailing (re, im) axis.
_FIELD_DIMS = (-3, -2, -1)
_SPECTRAL_DIMS = (-4, -3, -2, -1)


def _check_field(f: torch.Tensor, length: float) -> Grid2D:
    if f.ndim < 3:
        raise ValueError(
            f"Expected fields shaped (..., channel, n, n); got {tuple(f.shape)} (add a channel "
            "axis to a bare (n, n) or (batch, n, n) field)."
        )
    return grid_of(f, length)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"Cannot compare fields shaped {tuple(a.shape)} and {tuple(b.shape)}.")


def parseval_weights(
    grid: Grid2D,
    s: float = 0.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Per-mode weights m(κ)(1 + |κ|²)ˢ/n⁴ of an rfft2 spectrum, shape (n, n//2+1).

    With them Σ_κ weight·|f̂(κ)|² over the rfft2 half plane equals the full-plane sum
    Σ_κ (1 + |κ|²)ˢ|f̂(κ)|²/n⁴: m(κ) ∈ {1, 2} is the half-plane multiplicity of
    ``physics.spectra.half_plane_weights`` and |κ|² the symbol of −Δ (angular, Nyquist kept).
    For s = 0 the sum is ⟨f²⟩.
    """
    weights = half_plane_weights(grid, device, dtype) / grid.n**4
    if s != 0:
        weights = weights * (1 + laplacian_symbol(grid, device, dtype)) ** s
    return weights


def l2_norm(f: torch.Tensor) -> torch.Tensor:
    """‖f‖ = (Σ_c ⟨f_c²⟩)^½, the root-mean-square over the box, of fields (..., C, n, n) → (...).

    Computed in physical space; equals ``sobolev_norm(f, 0)`` by Parseval.
    """
    _check_field(f, 1.0)
    points = f.shape[-1] * f.shape[-2]
    return torch.linalg.vector_norm(f, dim=_FIELD_DIMS) / math.sqrt(points)


def sobolev_norm(f: torch.Tensor, s: float, length: float = 1.0) -> torch.Tensor:
    """‖f‖_{Hˢ} = (Σ_c Σ_κ (1 + |κ|²)ˢ |f̂_c(κ)|²/n⁴)^½ of fields (..., C, n, n) → (...).

    κ = 2π/L·(integer wavevector); s may be any real number (s = 1: H¹, s = −1: H⁻¹).
    Normalised like ⟨f²⟩: ``sobolev_norm(f, 0) == l2_norm(f)``.
    """
    grid = _check_field(f, length)
    f_hat = torch.view_as_real(rfft2(f))
    weights = parseval_weights(grid, s, f.device, f_hat.dtype)
    return torch.linalg.vector_norm(f_hat * weights.sqrt()[..., None], dim=_SPECTRAL_DIMS)


def h1_norm(f: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """‖f‖_{H¹} = (⟨f²⟩ + ⟨|∇f|²⟩)^½ = (Σ_κ (1 + |κ|²)|f̂(κ)|²/n⁴)^½, shape f.shape[:-3]."""
    return sobolev_norm(f, 1.0, length)


def h_minus1_norm(f: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """‖f‖_{H⁻¹} = (Σ_κ |f̂(κ)|²/(1 + |κ|²)/n⁴)^½, shape f.shape[:-3].

    For a zero-mean vorticity ω on a large box (|κ| ≫ 1) this approaches (2E)^½, E the
    kinetic energy, since |û|² + |v̂|² = |ω̂|²/|κ|².
    """
    return sobolev_norm(f, -1.0, length)


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖₂ / ‖b‖₂ per batch item, shape (B,); b is the reference.

    Norms over all non-batch axes together (channels and space); the same value as
    ``relative_sobolev(a, b, 0)`` for (B, C, n, n) fields.
    """
    _check_pair(a, b)
    return torch.linalg.vector_norm((a - b).flatten(1), dim=-1) / torch.linalg.vector_norm(
        b.flatten(1), dim=-1
    )


def relative_sobolev(
    a: torch.Tensor, b: torch.Tensor, s: float, length: float = 1.0
) -> torch.Tensor:
    """‖a − b‖_{Hˢ} / ‖b‖_{Hˢ} of fields (..., C, n, n) → (...); b is the reference."""
    _check_pair(a, b)
    return sobolev_norm(a - b, s, length) / sobolev_norm(b, s, length)


def relative_h1(a: torch.Tensor, b: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """‖a − b‖_{H¹} / ‖b‖_{H¹}, shape a.shape[:-3] (weights errors at high |κ| more)."""
    return relative_sobolev(a, b, 1.0, length)


def relative_h_minus1(a: torch.Tensor, b: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """‖a − b‖_{H⁻¹} / ‖b‖_{H⁻¹}, shape a.shape[:-3] (weights errors at low |κ| more)."""
    return relative_sobolev(a, b, -1.0, length)


# --- per-band norms -----------------------------------------------------------------------


def default_bands(n: int) -> tuple[tuple[int, int], ...]:
    """Low, middle and high bands of an n×n grid, as half-open shell ranges [lo, hi).

    low: |κ| < n/8, middle: n/8 ≤ |κ| < n/4, high: n/4 ≤ |κ| up to the corner shell
    kmax = ⌈√2·n/2⌉ (wavenumbers in units of 2π/L, rounded to shells as in
    ``physics.spectra``). On the FNO benchmark's 64² grid: k < 8, 8 ≤ k < 16, k ≥ 16. Edges
    are integer divisions, at least 1 apart; the three bands tile every mode.
    """
    kmax = math.ceil(math.sqrt(2.0) * n / 2)
    k1 = max(1, n // 8)
    k2 = max(k1 + 1, n // 4)
    return ((0, k1), (k1, k2), (k2, kmax + 1))


def band_masks(
    grid: Grid2D, bands: Sequence[tuple[float, float]], device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean masks (len(bands), n, n//2+1): mode κ is in band (lo, hi) when lo ≤ k < hi.

    k is the shell of κ, round(|κ|·L/2π) with halves rounded up (``physics.spectra.
    shell_index``), so band (lo, hi) holds exactly the shells lo, …, hi − 1 of
    ``energy_spectrum``. hi may be ``math.inf``.
    """
    if len(bands) == 0:
        raise ValueError("Give at least one band.")
    for lo, hi in bands:
        if not lo < hi:
            raise ValueError(f"A band (lo, hi) needs lo < hi; got ({lo}, {hi}).")
    shell, _ = shell_index(grid, device)
    return torch.stack([(shell >= lo) & (shell < hi) for lo, hi in bands])


def band_norms(
    f: torch.Tensor, length: float = 1.0, bands: Sequence[tuple[float, float]] | None = None
) -> torch.Tensor:
    """‖P_b f‖ for each band b: fields (..., C, n, n) → (..., len(bands)).

    P_b keeps the Fourier modes of band b (see ``band_masks``; default ``default_bands(n)``)
    and ‖·‖ is the root-mean-square over the box, summed over channels:
    ‖P_b f‖² = Σ_c Σ_{κ ∈ b} |f̂_c(κ)|²/n⁴. For bands that tile all modes, Σ_b ‖P_b f‖² = ‖f‖².
    """
    grid = _check_field(f, length)
    if bands is None:
        bands = default_bands(grid.n)
    f_hat = rfft2(f)
    power = f_hat.real**2 + f_hat.imag**2  # (..., C, n, m)
    density = (power * parseval_weights(grid, 0.0, f.device, power.dtype)).sum(dim=-3)
    masks = band_masks(grid, bands, f.device).to(power.dtype)  # (K, n, m)
    return torch.einsum("...ij,kij->...k", density, masks).sqrt()


def band_errors(
    pred: torch.Tensor,
    ref: torch.Tensor,
    length: float = 1.0,
    bands: Sequence[tuple[float, float]] | None = None,
) -> torch.Tensor:
    """Relative error per wavenumber band, ‖P_b(pred − ref)‖ / ‖P_b ref‖, shape (..., K).

    The error of the field itself (not of its energy spectrum) restricted to each band, so a
    phase error counts even where the spectrum is right. Bands default to
    ``default_bands(n)`` (low |κ| < n/8, middle n/8 ≤ |κ| < n/4, high |κ| ≥ n/4, in units of
    2π/L). A band where the reference has no content gives inf (or NaN if pred has none
    either).
    """
    _check_pair(pred, ref)
    return band_norms(pred - ref, length, bands) / band_norms(ref, length, bands)
