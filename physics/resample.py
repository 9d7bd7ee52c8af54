"""Changing resolution by spectral truncation (never interpolation)."""

from __future__ import annotations

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
