"""Norms: Hˢ of single modes and against a direct full-plane sum, Parseval, band errors,
gradients (they are training losses)."""

from __future__ import annotations

import math

import pytest
import torch

from physics.grid import Grid2D
from physics.norms import (
    band_errors,
    band_masks,
    band_norms,
    default_bands,
    h1_norm,
    h_minus1_norm,
    l2_norm,
    relative_h1,
    relative_h_minus1,
    relative_l2,
    relative_sobolev,
    sobolev_norm,
)
from physics.spectra import enstrophy_spectrum
from physics.spectral import derivative_wavenumbers, irfft2, rfft2
from tests.fields import F64, mode, noise


@pytest.mark.parametrize("length", [1.0, 2 * math.pi])
@pytest.mark.parametrize(("kx", "ky"), [(3, 4), (0, 5), (7, 0), (2, -3), (8, 0)])
@pytest.mark.parametrize("s", [-1.0, 0.0, 0.5, 1.0, 2.0])
def test_single_mode_sobolev_norm(length, kx, ky, s):
    # ⟨(A cos κ·x)²⟩ = A²/2, and the mode's weight is (1 + |κ|²)ˢ. (8, 0) is the Nyquist
    # column of a 16² grid, which the half-plane weights count once: there cos(κ·x) = ±1 at
    # every grid point, so ⟨f²⟩ = A².
    n, amplitude = 16, 1.3
    f = mode(n, kx, ky, length, amplitude)
    k2 = (2 * math.pi / length) ** 2 * (kx**2 + ky**2)
    mean_square = amplitude**2 if kx == n // 2 else amplitude**2 / 2
    expected = math.sqrt(mean_square * (1 + k2) ** s)
    assert sobolev_norm(f, s, length).item() == pytest.approx(expected, rel=1e-13)


def test_named_norms_and_constants():
    f = mode(16, 1, 2, 2 * math.pi, 2.0)
    torch.testing.assert_close(h1_norm(f, 2 * math.pi), sobolev_norm(f, 1, 2 * math.pi))
    torch.testing.assert_close(h_minus1_norm(f, 2 * math.pi), sobolev_norm(f, -1, 2 * math.pi))
    # A constant is the mean mode, |κ| = 0: every Hˢ norm is |c|.
    c = torch.full((1, 1, 8, 8), -3.0, dtype=F64)
    for s in (-1.0, 0.0, 1.0):
        assert sobolev_norm(c, s).item() == pytest.approx(3.0, rel=1e-14)


@pytest.mark.parametrize("n", [16, 17])
@pytest.mark.parametrize("s", [-1.0, 1.0])
def test_sobolev_norm_equals_a_direct_sum_over_all_modes(n, s):
    # Independent of the rfft half plane: the full complex FFT and every κ of the plane.
    length = 2.0
    f = noise(3, 2, n, n)
    full = torch.fft.fft2(f)
    k = 2 * math.pi / length * torch.fft.fftfreq(n, 1.0 / n, dtype=F64)
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    direct = ((1 + kx**2 + ky**2) ** s * full.abs() ** 2).sum(dim=(-3, -2, -1)) / n**4
    torch.testing.assert_close(sobolev_norm(f, s, length) ** 2, direct, rtol=1e-13, atol=0)


@pytest.mark.parametrize("n", [16, 15])
def test_parseval_links_the_mean_square_and_the_spectral_sum(n):
    f = noise(2, 3, 4, n, n, seed=1)  # (B, T, C, n, n) → (B, T)
    l2 = l2_norm(f)
    assert l2.shape == (2, 3)
    torch.testing.assert_close(l2**2, (f**2).mean(dim=(-2, -1)).sum(-1), rtol=1e-14, atol=0)
    torch.testing.assert_close(sobolev_norm(f, 0.0), l2, rtol=1e-13, atol=0)


def test_h1_is_mean_square_plus_mean_square_gradient():
    # For a field with no Nyquist content the spectral gradient is exact, so
    # ‖f‖²_{H¹} = ⟨f²⟩ + ⟨|∇f|²⟩ with the gradient taken in physical space.
    n, length = 16, 3.0
    grid = Grid2D(n, length)
    f_hat = rfft2(noise(2, 1, n, n, seed=2))
    f_hat[..., n // 2, :] = 0
    f_hat[..., :, n // 2] = 0
    f = irfft2(f_hat, n)
    kx, ky = derivative_wavenumbers(grid, dtype=F64)
    fx, fy = irfft2(1j * kx * f_hat, n), irfft2(1j * ky * f_hat, n)
    expected = (f**2 + fx**2 + fy**2).mean(dim=(-3, -2, -1))
    torch.testing.assert_close(h1_norm(f, length) ** 2, expected, rtol=1e-13, atol=0)


def test_relative_norms():
    b = noise(4, 1, 16, 16, seed=3)
    a = b + 0.1 * noise(4, 1, 16, 16, seed=4)
    torch.testing.assert_close(relative_sobolev(a, b, 0.0), relative_l2(a, b), rtol=1e-13, atol=0)
    for rel in (relative_h1, relative_h_minus1, relative_l2):
        assert rel(b, b).abs().max().item() == 0.0
        torch.testing.assert_close(rel(1.5 * b, b), torch.full((4,), 0.5, dtype=F64))
    torch.testing.assert_close(
        relative_h1(a, b), sobolev_norm(a - b, 1.0) / sobolev_norm(b, 1.0), rtol=1e-14, atol=0
    )
    with pytest.raises(ValueError, match="compare"):
        relative_h1(a, b[:1])
    with pytest.raises(ValueError, match="channel"):
        sobolev_norm(b[0, 0], 1.0)


@pytest.mark.parametrize("loss", [relative_h1, relative_h_minus1, relative_l2])
def test_gradients_flow_through_the_relative_norms(loss):
    a = noise(2, 1, 6, 6, seed=5).requires_grad_()
    b = noise(2, 1, 6, 6, seed=6)
    assert torch.autograd.gradcheck(lambda x: loss(x, b), (a,))
    # At a perfect prediction the gradient is zero, not NaN.
    exact = b.clone().requires_grad_()
    loss(exact, b).sum().backward()
    assert torch.equal(exact.grad, torch.zeros_like(b))


def test_a_sobolev_loss_trains_a_parameter_in_float32():
    # ‖s·f − f‖_{H⁻¹}/‖f‖_{H⁻¹} = |s − 1|: at s = ½ its gradient is −1, and one gradient
    # step of ½ lands on s = 1.
    target = mode(16, 2, 1).float()
    scale = torch.tensor(0.5, requires_grad=True)
    loss = relative_h_minus1(scale * target, target).mean()
    assert loss.dtype == torch.float32
    (grad,) = torch.autograd.grad(loss, scale)
    assert grad.item() == pytest.approx(-1.0, rel=1e-5)
    with torch.no_grad():
        scale -= 0.5 * grad
    assert relative_h_minus1(scale * target, target).item() < 1e-5


def test_default_bands():
    assert default_bands(64) == ((0, 8), (8, 16), (16, 47))
    assert default_bands(32) == ((0, 4), (4, 8), (8, 24))
    assert default_bands(8) == ((0, 1), (1, 2), (2, 7))


@pytest.mark.parametrize("n", [32, 33])
def test_bands_tile_every_mode_and_match_the_spectrum_shells(n):
    w = noise(3, 1, n, n, seed=7)
    grid = Grid2D(n)
    masks = band_masks(grid, default_bands(n))
    assert torch.equal(masks.sum(0), torch.ones_like(masks[0], dtype=torch.long))
    norms = band_norms(w)
    assert norms.shape == (3, 3)
    torch.testing.assert_close((norms**2).sum(-1), l2_norm(w) ** 2, rtol=1e-13, atol=0)
    # ½‖P_b ω‖² is the enstrophy spectrum summed over the band's shells.
    _, z = enstrophy_spectrum(w)
    for (lo, hi), norm in zip(default_bands(n), norms.unbind(-1), strict=True):
        torch.testing.assert_close(0.5 * norm**2, z[:, lo:hi].sum(-1), rtol=1e-13, atol=0)


def test_band_errors_of_a_high_band_perturbation():
    # 32²: bands k < 4, 4 ≤ k < 8, k ≥ 8. One mode in each band in the reference; the
    # prediction adds a mode of shell 10 (|(9, 4)| = 9.85), so only the high band errs.
    n = 32
    ref = mode(n, 1, 0) + mode(n, 5, 3, amplitude=0.5) + mode(n, 0, 10, amplitude=0.25)
    pred = ref + mode(n, 9, 4, amplitude=0.1)
    errors = band_errors(pred, ref)
    assert errors.shape == (1, 3)
    assert errors[0, :2].abs().max().item() < 1e-14
    assert errors[0, 2].item() == pytest.approx(0.1 / 0.25, rel=1e-12)
    torch.testing.assert_close(band_errors(2 * ref, ref), torch.ones(1, 3, dtype=F64))
    custom = band_errors(pred, ref, bands=((0, 9), (9, math.inf)))
    assert custom[0, 0].item() < 1e-14
    assert custom[0, 1].item() == pytest.approx(0.4, rel=1e-12)
    with pytest.raises(ValueError, match="lo < hi"):
        band_errors(pred, ref, bands=((4, 4),))
