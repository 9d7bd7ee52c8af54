"""Velocity spectra in 2D and 3D, the white-noise spectrum against its exact expectation,
and random initial conditions with prescribed spectra (filtered velocity, McWilliams)."""

from __future__ import annotations

import math

import pytest
import torch

from physics.diagnostics import kinetic_energy
from physics.grid import Grid2D
from physics.ns2d.random_fields import (
    filtered_random_velocity,
    filtered_random_vorticity,
    mcwilliams_spectrum,
    mcwilliams_vorticity,
)
from physics.spectra import (
    energy_spectrum,
    enstrophy_spectrum,
    half_plane_weights,
    shell_index,
    velocity_energy_spectrum,
)
from physics.spectral import derivative_wavenumbers, rfft2, velocity_from_vorticity

F64 = torch.float64


def half_energy(u: torch.Tensor) -> torch.Tensor:
    """½⟨|u|²⟩ per batch item, in physical space."""
    return 0.5 * (u**2).sum(dim=1).flatten(1).mean(dim=-1)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("n", [8, 9, 16])
def test_velocity_spectrum_sums_to_the_kinetic_energy(ndim, n):
    """Parseval in 2D and 3D, on white noise (energy in every mode, Nyquist planes too)."""
    generator = torch.Generator().manual_seed(10 * n + ndim)
    u = torch.randn(2, ndim, *([n] * ndim), generator=generator, dtype=F64)
    k, e = velocity_energy_spectrum(u, 2 * math.pi)
    kmax = math.ceil(math.sqrt(ndim) * n / 2)
    assert torch.equal(k, torch.arange(kmax + 1, dtype=F64))
    assert e.shape == (2, kmax + 1) and (e >= 0).all()
    torch.testing.assert_close(e.sum(-1), half_energy(u), rtol=1e-12, atol=0)
    e32 = velocity_energy_spectrum(u.float())[1]
    assert e32.dtype == torch.float32
    torch.testing.assert_close(e32.double(), e, rtol=1e-5, atol=1e-9)


def test_velocity_spectrum_of_a_2d_flow_equals_the_vorticity_spectrum():
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(3, 1, 32, 32, generator=generator, dtype=F64)
    u, v = velocity_from_vorticity(w, 2.0)
    k_u, e_u = velocity_energy_spectrum(torch.cat([u, v], dim=1), 2.0)
    k_w, e_w = energy_spectrum(w, 2.0)
    assert torch.equal(k_u, k_w)
    torch.testing.assert_close(e_u, e_w, rtol=1e-12, atol=1e-20)


@pytest.mark.parametrize(("kx", "ky", "kz", "shell"), [(1, 2, 2, 3), (0, 0, 5, 5), (3, 4, 0, 5)])
def test_3d_single_mode_energy_lands_in_its_shell(kx, ky, kz, shell):
    """u = A cos(κ·x) ê with ê ⟂ κ: energy ½⟨|u|²⟩ = A²/4, all in shell round(|κ|)."""
    n, amplitude = 16, 1.3
    s = torch.arange(n, dtype=F64) * (2 * math.pi / n)
    z, y, x = torch.meshgrid(s, s, s, indexing="ij")  # x along the last axis
    phase = kx * x + ky * y + kz * z
    kappa = torch.tensor([kx, ky, kz], dtype=F64)
    direction = torch.linalg.cross(kappa, torch.tensor([1.0, 1.0, 1.0], dtype=F64) + kappa)
    direction = direction / direction.norm()
    u = amplitude * torch.cos(phase)[None, None] * direction[None, :, None, None, None]
    _, e = velocity_energy_spectrum(u, 2 * math.pi)
    assert e[0, shell].item() == pytest.approx(amplitude**2 / 4, rel=1e-12)
    assert torch.cat([e[0, :shell], e[0, shell + 1 :]]).abs().max().item() < 1e-14


def test_velocity_spectrum_refuses_what_is_not_a_velocity():
    with pytest.raises(ValueError, match="2D velocity"):
        velocity_energy_spectrum(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="3D velocity"):
        velocity_energy_spectrum(torch.zeros(1, 2, 8, 8, 8))
    with pytest.raises(ValueError, match="square or cubic"):
        velocity_energy_spectrum(torch.zeros(1, 2, 8, 16))


def test_white_noise_spectra_match_their_exact_expectation_shell_by_shell():
    """White-noise vorticity, i.i.d. N(0, σ²) at each of the n² points. Its DFT has
    E|ω̂(κ)|² = n²σ² for every κ. ``energy_spectrum`` takes (û, v̂) = (iκ̃_y, −iκ̃_x)ω̂/|κ|²,
    κ̃ the derivative wavenumbers (Nyquist components zeroed), so the expected energy in
    shell k is exactly

        E[E(k)] = σ²/(2n²) · Σ_{κ in shell k, κ ≠ 0} |κ̃|²/|κ|⁴,

    which is (number of modes)·σ²/(2n²|κ|²) for the modes off the Nyquist lines; and the
    expected enstrophy is E[Z(k)] = σ²/(2n²) · (number of modes in shell k). The sum is
    over the full plane: rfft2 columns 0 < kx < n/2 count twice.

    Mean over 4096 fields (n = 32, σ = 1.7, length 2π). Each shell must match within 4
    standard errors of the batch mean (measured from the batch) and within 3% (measured:
    at most 2.1 standard errors, 1.2% for energy and 1.7% for enstrophy). For energy the
    worst shell, k = 1, holds 4 independent complex modes (8 with their mirrors) of unequal
    weights 1/|κ|², so its standard error is a little above 1/√(4·4096) ≈ 0.8% (1.08%).
    """
    n, batch, sigma, length = 32, 4096, 1.7, 2 * math.pi
    generator = torch.Generator().manual_seed(2024)
    w = sigma * torch.randn(batch, 1, n, n, generator=generator, dtype=F64)
    k, e = energy_spectrum(w, length)
    _, z = enstrophy_spectrum(w, length)

    grid = Grid2D(n, length)
    kx, ky = grid.wavenumbers(dtype=F64)
    dkx, dky = derivative_wavenumbers(grid, dtype=F64)
    k2 = kx**2 + ky**2
    per_mode_energy = torch.where(
        k2 > 0, (dkx**2 + dky**2) / torch.where(k2 > 0, k2, 1.0) ** 2, 0.0
    ) * (sigma**2 / (2 * n**2))
    per_mode_enstrophy = torch.full_like(k2, sigma**2 / (2 * n**2))
    index, _ = shell_index(grid)
    weights = half_plane_weights(grid, dtype=F64).expand_as(k2)
    expected_e = torch.zeros_like(k).index_add_(
        0, index.flatten(), (per_mode_energy * weights).flatten()
    )
    expected_z = torch.zeros_like(k).index_add_(
        0, index.flatten(), (per_mode_enstrophy * weights).flatten()
    )

    # Largest standard error allowed: energy 1.2% (shell 1); enstrophy 2.5% (the corner shell
    # k = 23 holds the single real mode (n/2, n/2), whose energy is zero: κ̃ = 0 there).
    for spectrum, expected, max_stderr in ((e, expected_e, 0.012), (z, expected_z, 0.025)):
        mean = spectrum.mean(dim=0)
        stderr = spectrum.std(dim=0) / math.sqrt(batch)
        shells = (expected > 0) & (k >= 1)  # shell 0 holds the mean mode alone (enstrophy)
        deviation = (mean - expected)[shells].abs()
        assert (deviation <= 4 * stderr[shells]).all()
        assert (deviation / expected[shells]).max().item() < 0.03
        assert (stderr[shells] / expected[shells]).max().item() < max_stderr
    # Shell 0: no energy (a vorticity field carries no mean velocity); the mean mode's
    # enstrophy, one real mode, is σ²/(2n²) on average with a standard error of √2/√batch.
    assert e[:, 0].abs().max().item() == 0.0
    assert z[:, 0].mean().item() == pytest.approx(
        expected_z[0].item(), rel=4 * math.sqrt(2 / batch)
    )


@pytest.mark.parametrize("length", [2 * math.pi, 1.0])
def test_filtered_velocity_reproduces_a_callable_spectrum_exactly(length):
    n = 32

    def prescribed(k):
        return torch.exp(-((k - 5) ** 2) / 8) + 0.01 / k

    u = filtered_random_velocity(n, batch=3, spectrum=prescribed, length=length, seed=4, dtype=F64)
    w = filtered_random_vorticity(n, batch=3, spectrum=prescribed, length=length, seed=4, dtype=F64)
    assert u.shape == (3, 2, n, n) and w.shape == (3, 1, n, n)
    k, e_u = velocity_energy_spectrum(u, length)
    _, e_w = energy_spectrum(w, length)
    expected = torch.zeros_like(k)
    kept = (k >= 1) & (k <= (n - 1) // 2)
    expected[kept] = prescribed(k[kept])
    for e in (e_u, e_w):
        torch.testing.assert_close(e, expected.expand_as(e), rtol=1e-11, atol=1e-15)
    # u is divergence-free and w is its curl (the same draw).
    grid = Grid2D(n, length)
    kx, ky = derivative_wavenumbers(grid, dtype=F64)
    u_hat, v_hat = rfft2(u[:, :1]), rfft2(u[:, 1:])
    divergence = (1j * kx * u_hat + 1j * ky * v_hat).abs().max().item()
    assert divergence < 1e-12 * (kx.abs() * u_hat.abs()).max().item()
    curl = torch.fft.irfft2(1j * kx * v_hat - 1j * ky * u_hat, s=(n, n))
    torch.testing.assert_close(curl, w, rtol=0, atol=1e-12 * w.abs().max().item())
    # Different members have different phases.
    assert not torch.allclose(w[0], w[1])


def test_filtered_velocity_with_a_power_law_and_an_energy():
    n, length = 32, 2 * math.pi
    w = filtered_random_vorticity(
        n, batch=2, slope=5 / 3, kmin=2, kmax=9, energy=0.7, length=length, seed=1, dtype=F64
    )
    k, e = energy_spectrum(w, length)
    shape = torch.where((k >= 2) & (k <= 9), k.clamp(min=1) ** (-5 / 3), 0.0)
    torch.testing.assert_close(e, (0.7 * shape / shape.sum()).expand_as(e), rtol=1e-11, atol=1e-16)
    torch.testing.assert_close(kinetic_energy(w, length), torch.full((2,), 0.7, dtype=F64))
    with pytest.raises(ValueError, match="either a spectrum"):
        filtered_random_vorticity(n, slope=2.0, spectrum=lambda k: k)
    with pytest.raises(ValueError, match="either a spectrum"):
        filtered_random_vorticity(n)
    with pytest.raises(ValueError, match="no energy"):
        filtered_random_vorticity(n, slope=2.0, kmin=20, kmax=30)


def test_mcwilliams_spectrum_peaks_at_k0():
    k = torch.linspace(0.5, 40, 79001, dtype=F64)
    for k0 in (2.0, 4.0, 6.0):
        peak = k[mcwilliams_spectrum(k, k0).argmax()].item()
        assert peak == pytest.approx(k0, abs=1e-3)


def test_mcwilliams_field_has_its_peak_energy_and_zero_mean():
    n = 64
    w = mcwilliams_vorticity(n, batch=4, seed=11, dtype=F64)  # k0 = 4, energy 0.5, [0, 2π]²
    assert w.shape == (4, 1, n, n)
    k, e = energy_spectrum(w, 2 * math.pi)
    assert (e.argmax(dim=-1) == 4).all()
    torch.testing.assert_close(e.sum(-1), torch.full((4,), 0.5, dtype=F64), rtol=1e-12, atol=0)
    torch.testing.assert_close(kinetic_energy(w, 2 * math.pi), torch.full((4,), 0.5, dtype=F64))
    assert w.mean(dim=(-2, -1)).abs().max().item() < 1e-14
    shape = mcwilliams_spectrum(k[1:32], 4.0)
    torch.testing.assert_close(e[0, 1:32], 0.5 * shape / shape.sum(), rtol=1e-11, atol=1e-18)
    # Reproducible from the seed across dtypes; different seeds differ.
    assert torch.equal(mcwilliams_vorticity(n, batch=4, seed=11), w.float())
    assert not torch.equal(mcwilliams_vorticity(n, seed=12, dtype=F64), w[:1])
    other = mcwilliams_vorticity(n, k0=10, energy=3.0, length=1.0, seed=0, dtype=F64)
    _, e = energy_spectrum(other, 1.0)
    assert e.argmax().item() == 10 and e.sum().item() == pytest.approx(3.0, rel=1e-12)
