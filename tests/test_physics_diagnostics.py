"""Diagnostics (stream function, E, Z, P, dissipation rates) and rollout statistics
(correlation, decorrelation time, vorticity PDF) against exact values."""

from __future__ import annotations

import math

import pytest
import torch

from physics import diagnostics, spectral
from physics.diagnostics import (
    energy_dissipation,
    enstrophy,
    enstrophy_dissipation,
    kinetic_energy,
    palinstrophy,
    stream_function,
)
from physics.grid import Grid2D
from physics.spectral import irfft2, laplacian_symbol, rfft2
from physics.statistics import correlation, decorrelation_time, vorticity_pdf
from tests.fields import F64, mode, noise

# --- diagnostics ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1.0, 2 * math.pi])
@pytest.mark.parametrize(("kx", "ky"), [(3, 4), (0, 5), (2, -1)])
def test_single_mode_energy_enstrophy_palinstrophy(length, kx, ky):
    # ω = A cos(κ·x): ψ = ω/|κ|², E = A²/(4|κ|²), Z = A²/4, P = A²|κ|²/4.
    n, amplitude, nu = 16, 1.7, 0.01
    w = mode(n, kx, ky, length, amplitude)
    k2 = (2 * math.pi / length) ** 2 * (kx**2 + ky**2)
    torch.testing.assert_close(stream_function(w, length), w / k2, rtol=1e-12, atol=1e-15)
    assert kinetic_energy(w, length).item() == pytest.approx(amplitude**2 / (4 * k2), rel=1e-12)
    assert enstrophy(w).item() == pytest.approx(amplitude**2 / 4, rel=1e-13)
    assert palinstrophy(w, length).item() == pytest.approx(amplitude**2 * k2 / 4, rel=1e-12)
    assert energy_dissipation(w, nu).item() == pytest.approx(nu * amplitude**2 / 2, rel=1e-13)
    assert enstrophy_dissipation(w, nu, length).item() == pytest.approx(
        nu * amplitude**2 * k2 / 2, rel=1e-12
    )


@pytest.mark.parametrize("n", [16, 15])
def test_stream_function_solves_poisson_with_zero_mean(n):
    length = 2.0
    w = noise(3, 1, n, n) + 0.7  # a mean, which −Δψ cannot produce, is dropped
    psi = stream_function(w, length)
    assert psi.shape == w.shape
    assert psi.mean(dim=(-2, -1)).abs().max().item() < 1e-15
    minus_laplacian = irfft2(laplacian_symbol(Grid2D(n, length), dtype=F64) * rfft2(psi), n)
    torch.testing.assert_close(minus_laplacian, w - w.mean(dim=(-2, -1), keepdim=True))


@pytest.mark.parametrize("n", [16, 15])
def test_palinstrophy_is_minus_half_omega_laplacian_omega(n):
    # P = −½⟨ω Δω⟩ with the solver's spectral Laplacian, for white noise (Nyquist included),
    # so that dZ/dt = −2νP for the viscous term.
    length = 3.0
    w = noise(4, 1, n, n, seed=1)
    laplacian = irfft2(-laplacian_symbol(Grid2D(n, length), dtype=F64) * rfft2(w), n)
    expected = -0.5 * (w * laplacian).mean(dim=(-3, -2, -1))
    assert palinstrophy(w, length).shape == (4,)
    torch.testing.assert_close(palinstrophy(w, length), expected, rtol=1e-12, atol=0)


def test_enstrophy_decays_at_minus_two_nu_p():
    # Under ∂ω/∂t = νΔω each mode decays as exp(−ν|κ|²t), so Z(t) = ½Σ e^{−2ν|κ|²t}|ω̂|²/n⁴;
    # a central difference of Z at t = 0 gives dZ/dt = −2νP to O(h²).
    n, nu, h = 16, 0.01, 1e-4
    w = noise(2, 1, n, n, seed=2)
    k2 = laplacian_symbol(Grid2D(n), dtype=F64)
    z = [enstrophy(irfft2(rfft2(w) * torch.exp(-nu * k2 * t), n)) for t in (-h, h)]
    rate = (z[1] - z[0]) / (2 * h)
    torch.testing.assert_close(rate, -enstrophy_dissipation(w, nu), rtol=1e-5, atol=0)


def test_existing_names_are_kept():
    assert diagnostics.velocity_from_vorticity is spectral.velocity_from_vorticity
    b = torch.ones(2, 1, 4, 4, dtype=F64)
    assert diagnostics.relative_l2(1.1 * b, b).tolist() == pytest.approx([0.1, 0.1])


# --- correlation and decorrelation time ----------------------------------------------------


def test_correlation_identities_and_a_known_value():
    w = noise(3, 1, 16, 16, seed=3)
    torch.testing.assert_close(correlation(w, w), torch.ones(3, dtype=F64))
    torch.testing.assert_close(correlation(w, -w), -torch.ones(3, dtype=F64))
    # cos x and cos x + cos 2y: ⟨ab⟩ = ½, ⟨a²⟩ = ½, ⟨b²⟩ = 1 → 1/√2; orthogonal modes → 0.
    a, c = mode(16, 1, 0), mode(16, 0, 2)
    assert correlation(a, a + c).item() == pytest.approx(1 / math.sqrt(2), rel=1e-13)
    assert abs(correlation(a, c).item()) < 1e-14
    # Centred, a constant offset changes nothing; uncentred, ⟨(a+3)a⟩/√(⟨(a+3)²⟩⟨a²⟩).
    assert correlation(a + 3, a).item() == pytest.approx(1.0, rel=1e-13)
    expected = 0.5 / math.sqrt(9.5 * 0.5)
    assert correlation(a + 3, a, centered=False).item() == pytest.approx(expected, rel=1e-13)
    # A trajectory (B, T, C, n, n) gives (B, T).
    traj = noise(2, 5, 2, 8, 8, seed=4)
    assert correlation(traj, traj + 0.1 * noise(2, 5, 2, 8, 8, seed=5)).shape == (2, 5)
    with pytest.raises(ValueError, match="correlate"):
        correlation(a, traj)


def test_decorrelation_time_interpolates_between_frames():
    times = [0.0, 0.5, 1.5, 2.0, 3.0]
    corr = torch.tensor(
        [
            [1.0, 0.95, 0.85, 0.70, 0.50],  # crosses 0.8 between 1.5 and 2.0: t = 1.5 + ⅓·0.5
            [1.0, 0.99, 0.98, 0.97, 0.96],  # never
            [0.70, 0.60, 0.50, 0.40, 0.30],  # already below at the first frame
            [1.0, 0.9, math.nan, 0.5, 0.4],  # NaN does not count as below
        ]
    )
    t = decorrelation_time(times, corr)
    assert t.shape == (4,)
    assert t[0].item() == pytest.approx(1.5 + 0.5 / 3, rel=1e-6)
    assert math.isnan(t[1].item())
    assert t[2].item() == 0.0
    # Row 3: first value below is 0.5 at t = 2 after a NaN, so the interpolation is NaN.
    assert math.isnan(t[3].item())
    assert decorrelation_time(times, corr[1], threshold=0.965).item() == pytest.approx(2.5)


def test_decorrelation_time_of_an_exponential():
    # c = exp(−t/τ) crosses 0.8 at τ ln(1.25); linear interpolation between frames h apart
    # errs by at most h²·max|c″|/(8|c′|) ≈ h²/(8τ).
    tau, h = 2.0, 0.05
    times = torch.arange(0, 3, h, dtype=F64)
    t = decorrelation_time(times, torch.exp(-times / tau))
    assert abs(t.item() - tau * math.log(1.25)) < h**2 / (8 * tau)


# --- vorticity PDF -------------------------------------------------------------------------


def test_pdf_integrates_to_one_pooled_and_per_item():
    w = noise(3, 1, 32, 32, seed=6) * torch.tensor([1.0, 2.0, 3.0], dtype=F64)[:, None, None, None]
    centres, density = vorticity_pdf(w, bins=20)
    width = (centres[1] - centres[0]).item()
    assert centres.shape == density.shape == (20,)
    assert (density.sum() * width).item() == pytest.approx(1.0, rel=1e-12)
    # The default range spans the data: the extremes fall in the first and last bins.
    assert centres[0].item() - width / 2 == pytest.approx(w.min().item(), rel=1e-12)
    assert centres[-1].item() + width / 2 == pytest.approx(w.max().item(), rel=1e-12)
    _, each = vorticity_pdf(w, bins=20, per_item=True)
    assert each.shape == (3, 20)
    torch.testing.assert_close(each.sum(-1) * width, torch.ones(3, dtype=F64))
    # Pooled = per-item densities averaged (equal sample counts, all inside the range).
    torch.testing.assert_close(each.mean(0), density)
    # An explicit range drops what lies outside and renormalises on what is inside.
    centres, density = vorticity_pdf(w, bins=10, range=(-1.0, 1.0))
    assert (density.sum() * 0.2).item() == pytest.approx(1.0, rel=1e-12)
    assert centres[0].item() == pytest.approx(-0.9)
    # A constant field gets the unit range around its value.
    centres, density = vorticity_pdf(torch.full((1, 1, 4, 4), 2.0), bins=4)
    assert centres.tolist() == pytest.approx([1.625, 1.875, 2.125, 2.375])
    assert density.tolist() == pytest.approx([0.0, 0.0, 4.0, 0.0])


def test_pdf_of_a_gaussian_sample_matches_the_gaussian():
    # 2¹⁷ samples of N(2, 3²), standardised: each bin's density should match the normal
    # probability of the bin divided by its width, Δ⁻¹(Φ(b) − Φ(a)). Within |x| < 2 every
    # bin holds ≳ 2000 samples, so the sampling error is ≲ 2.5% (1σ); allow 8%.
    w = 2 + 3 * noise(8, 1, 128, 128, seed=7)
    centres, density = vorticity_pdf(w, bins=40, range=(-4.0, 4.0), standardized=True)
    width = 0.2
    phi = lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2)))  # noqa: E731
    exact = (phi(centres + width / 2) - phi(centres - width / 2)) / width
    core = centres.abs() < 2
    assert ((density[core] - exact[core]).abs() / exact[core]).max().item() < 0.08
    # Integrated over all bins the discrepancy is small too (L¹ distance of the densities).
    assert ((density - exact).abs().sum() * width).item() < 0.02
