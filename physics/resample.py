"""Changing resolution by spectral truncation (never interpolation)."""

from __future__ import annotations

import torch


def spectral_truncate(field: torch.Tensor, n_out: int) -> torch.Tensor:
    """Keep the Fourier modes a grid of ``n_out`` points per side can hold, then transform back.

    For a periodic field sampled on n×n points, with coefficients f̂(k), the result on n_out×n_out
    points is Σ_{|k_x|,|k_y| < n_out/2} f̂(k) e^{ik·x}: the band-limited projection,
    exact for a field that is already band-limited. The Nyquist row and column are dropped,
    because on the coarse grid they would be aliased with their mirror modes.
    Input (..., n, n) → (..., n_out, n_out).
    """
    n = field.shape[-1]
    if n_out == n:
        return field
    if n_out > n:
        raise ValueError(f"cannot truncate a {n}-point grid to a finer {n_out}-point grid")
    spectrum = torch.fft.rfft2(field)
    half = n_out // 2
    kept = torch.zeros(
        (*field.shape[:-2], n_out, half + 1), dtype=spectrum.dtype, device=field.device
    )
    kept[..., :half, :half] = spectrum[..., :half, :half]
    kept[..., n_out - half + 1 :, :half] = spectrum[..., n - half + 1 :, :half]
    # The coefficients are sums over n² points; the coarse inverse divides by n_out².
    return torch.fft.irfft2(kept * (n_out / n) ** 2, s=(n_out, n_out))
