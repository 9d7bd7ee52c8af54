"""Changing the resolution of a periodic field by its Fourier series (never interpolation):
truncation to a coarser grid, zero-padding to a finer one."""

from __future__ import annotations

import numpy as np
import torch

from physics.spectral import irfft2, rfft2, truncate_hat


def spectral_truncate(field: torch.Tensor, n_out: int) -> torch.Tensor:
    """The band-limited projection of a periodic field onto an n_out×n_out grid.

    For f sampled on n×n points with coefficients f̂(k), the result is
    Σ_{|k_x|,|k_y| < n_out/2} f̂(k) e^{ik·x} sampled on n_out×n_out points: exact for a field
    that is already band-limited (see ``physics.spectral.truncate_hat`` for the Nyquist rule).
    Input (..., n, n) → (..., n_out, n_out).
    """
    if n_out == field.shape[-1]:
        return field
    return irfft2(truncate_hat(rfft2(field), n_out), n_out)


def spectral_resample(field: torch.Tensor, n_out: int) -> torch.Tensor:
    """A periodic field (..., n, n) on an n_out × n_out grid, by its Fourier series.

    Coarser: :func:`spectral_truncate` (modes |k| < n_out/2 kept). Finer: the
    same series sampled on more points, i.e. the spectrum zero-padded (the input's Nyquist
    row and column dropped, as truncation does), so a field that came from a finer grid by
    truncation is restored exactly where it can be, and nothing is interpolated.
    """
    n_in = field.shape[-1]
    if n_out <= n_in:
        return spectral_truncate(field, n_out)
    spectrum = rfft2(field)
    half = (n_in + 1) // 2  # |k| < half, as truncate_hat keeps
    out = spectrum.new_zeros((*spectrum.shape[:-2], n_out, n_out // 2 + 1))
    out[..., :half, :half] = spectrum[..., :half, :half]
    out[..., n_out - half + 1 :, :half] = spectrum[..., n_in - half + 1 :, :half]
    return irfft2(out * (n_out / n_in) ** 2, n_out)


def resample_array(frame: np.ndarray, n_out: int) -> np.ndarray:
    """:func:`spectral_resample` of a numpy frame (n, n); NaN frames stay NaN."""
    if frame.shape[-1] == n_out:
        return frame
    if not np.isfinite(frame).all():
        return np.full((n_out, n_out), np.nan, dtype=frame.dtype)
    out = spectral_resample(torch.from_numpy(np.asarray(frame, dtype=np.float64)), n_out)
    return out.numpy().astype(frame.dtype)
