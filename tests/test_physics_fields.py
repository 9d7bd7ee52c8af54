"""The grid, its wavenumbers and dealiasing mask, and Gaussian random fields."""

from __future__ import annotations

import math

import pytest
import torch

from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field

F64 = torch.float64


def test_grid_coordinates_and_spacing():
    grid = Grid2D(8, length=2.0)
    assert grid.dx == 0.25
    x, y = grid.coordinates(dtype=F64)
    assert x.shape == y.shape == (8, 8) and x.dtype == F64
    assert torch.equal(x[0], torch.arange(8, dtype=F64) * 0.25)  # x varies along the last axis
    assert torch.equal(x[:, 3], torch.full((8,), 0.75, dtype=F64))
    assert torch.equal(y[:, 0], torch.arange(8, dtype=F64) * 0.25)
    with pytest.raises(ValueError):
        Grid2D(1)
    with pytest.raises(ValueError):
        Grid2D(8, length=0.0)


def test_wavenumbers_follow_the_rfft2_layout():
    n, length = 8, 2.0
    kx, ky = Grid2D(n, length).wavenumbers(dtype=F64)
    assert (kx + ky).shape == (n, n // 2 + 1)
    scale = 2 * math.pi / length
    assert torch.allclose(kx[0] / scale, torch.tensor([0, 1, 2, 3, 4], dtype=F64))
    assert torch.allclose(ky[:, 0] / scale, torch.tensor([0, 1, 2, 3, -4, -3, -2, -1], dtype=F64))
    # A derivative taken with these wavenumbers is exact for a resolved mode.
    x, y = Grid2D(n, length).coordinates(dtype=F64)
    f = torch.sin(3 * scale * x + 2 * scale * y)
    df_dx = torch.fft.irfft2(1j * kx * torch.fft.rfft2(f), s=(n, n))
    torch.testing.assert_close(df_dx, 3 * scale * torch.cos(3 * scale * x + 2 * scale * y))


@pytest.mark.parametrize(("n", "kept"), [(32, 10), (48, 15), (30, 9)])
def test_dealias_mask_is_the_two_thirds_rule(n, kept):
    mask = Grid2D(n).dealias_mask()
    assert mask.dtype == torch.bool and mask.shape == (n, n // 2 + 1)
    # |k| ≤ kept with 3·kept < n in both directions: (2·kept + 1) rows × (kept + 1) columns.
    assert mask.sum().item() == (2 * kept + 1) * (kept + 1)
    assert mask[kept, kept] and not mask[kept + 1, 0] and not mask[0, kept + 1]


def test_grf_shape_dtype_and_zero_mean():
    w = gaussian_random_field(32, batch=3, seed=0, dtype=F64)
    assert w.shape == (3, 1, 32, 32) and w.dtype == F64
    assert w.mean(dim=(-2, -1)).abs().max().item() < 1e-15 * 32**2
    w32 = gaussian_random_field(16, seed=0)
    assert w32.dtype == torch.float32 and w32.shape == (1, 1, 16, 16)


def test_grf_is_reproducible_from_its_seed():
    a = gaussian_random_field(16, batch=2, seed=123, dtype=F64)
    b = gaussian_random_field(16, batch=2, seed=123, dtype=F64)
    assert torch.equal(a, b)
    assert not torch.equal(a, gaussian_random_field(16, batch=2, seed=124, dtype=F64))
    # The same seed gives the same field in every dtype (drawn in float64, then cast).
    assert torch.equal(gaussian_random_field(16, batch=2, seed=123), a.float())
    # Unseeded draws differ.
    assert not torch.equal(gaussian_random_field(16), gaussian_random_field(16))


def test_grf_has_the_requested_covariance():
    """Each Fourier coefficient ĉ(κ) = DFT/n² has E|ĉ|² = σ²(|κ|² + τ²)^(−α) / L²."""
    n, length, alpha, tau, sigma = 16, 2.0, 2.0, 3.0, 5.0
    w = gaussian_random_field(
        n, batch=400, alpha=alpha, tau=tau, sigma=sigma, length=length, seed=0, dtype=F64
    )
    power = (torch.fft.rfft2(w).abs() ** 2 / n**4).mean(dim=(0, 1))
    kx, ky = Grid2D(n, length).wavenumbers(dtype=F64)
    expected = sigma**2 * (kx**2 + ky**2 + tau**2) ** (-alpha) / length**2
    ratio = (power / expected).flatten()[1:]  # skip the mean mode, which is zero
    # 400 samples per mode and ~150 modes: the mean ratio is known to about ±1%.
    assert ratio.mean().item() == pytest.approx(1.0, abs=0.03)
    assert power[0, 0].item() < 1e-25


def test_grf_default_sigma_is_the_fno_one():
    explicit = gaussian_random_field(16, seed=5, sigma=7.0**1.5, dtype=F64)
    assert torch.equal(gaussian_random_field(16, seed=5, dtype=F64), explicit)
