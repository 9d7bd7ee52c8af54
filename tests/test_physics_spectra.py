"""Spectra and diagnostics: Parseval, shell assignment, velocity from vorticity."""

from __future__ import annotations

import math

import pytest
import torch

from physics.diagnostics import enstrophy, kinetic_energy, relative_l2
from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field
from physics.spectra import energy_spectrum, enstrophy_spectrum
from physics.spectral import (
    divergence_hat,
    irfft2,
    rfft2,
    truncate_hat,
    velocity_from_vorticity,
    velocity_hat_from_vorticity_hat,
)

F64 = torch.float64


@pytest.mark.parametrize("n", [32, 48, 33])
@pytest.mark.parametrize("length", [1.0, 2 * math.pi])
def test_spectra_sum_to_energy_and_enstrophy(n, length):
    # White noise has energy in every mode, the Nyquist row and column included, so any
    # double counting of the rfft half-plane would show.
    generator = torch.Generator().manual_seed(n)
    w = torch.randn(3, 1, n, n, generator=generator, dtype=F64)
    k, e = energy_spectrum(w, length)
    _, z = enstrophy_spectrum(w, length)
    assert k.shape == (math.ceil(math.sqrt(2) * n / 2) + 1,)
    assert torch.equal(k, torch.arange(k.numel(), dtype=F64))
    assert e.shape == z.shape == (3, k.numel())
    torch.testing.assert_close(e.sum(-1), kinetic_energy(w, length), rtol=1e-12, atol=0)
    torch.testing.assert_close(z.sum(-1), enstrophy(w), rtol=1e-12, atol=0)
    assert (e >= 0).all() and (z >= 0).all()


def test_spectra_of_a_smooth_random_field_sum_to_energy():
    w = gaussian_random_field(48, batch=2, seed=0, dtype=F64)
    _, e = energy_spectrum(w)
    torch.testing.assert_close(e.sum(-1), kinetic_energy(w), rtol=1e-12, atol=0)


@pytest.mark.parametrize(("kx", "ky", "shell"), [(3, 4, 5), (0, 7, 7), (5, 0, 5), (2, 2, 3)])
def test_single_mode_energy_lands_in_its_shell(kx, ky, shell):
    n, amplitude = 32, 1.7
    x, y = Grid2D(n).coordinates(dtype=F64)
    w = amplitude * torch.cos(2 * math.pi * (kx * x + ky * y))[None, None]
    _, e = energy_spectrum(w)
    # ω = A cos(κ·x) has |u| = A/|κ| |sin|: energy ½⟨|u|²⟩ = A²/(4|κ|²), κ = 2π(kx, ky).
    expected = amplitude**2 / (4 * (2 * math.pi) ** 2 * (kx**2 + ky**2))
    assert e[0, shell].item() == pytest.approx(expected, rel=1e-12)
    others = torch.cat([e[0, :shell], e[0, shell + 1 :]])
    assert others.abs().max().item() < 1e-12 * expected
    _, z = enstrophy_spectrum(w)
    assert z[0, shell].item() == pytest.approx(amplitude**2 / 4, rel=1e-12)


def test_velocity_of_a_known_vortex():
    # ω = sin 2πx sin 2πy ⇒ ψ = ω/(8π²), u = ψ_y, v = −ψ_x.
    n = 16
    x, y = Grid2D(n).coordinates(dtype=F64)
    p = 2 * math.pi
    w = (torch.sin(p * x) * torch.sin(p * y))[None, None]
    u, v = velocity_from_vorticity(w)
    torch.testing.assert_close(u[0, 0], torch.sin(p * x) * torch.cos(p * y) / (2 * p))
    torch.testing.assert_close(v[0, 0], -torch.cos(p * x) * torch.sin(p * y) / (2 * p))
    assert u.shape == v.shape == w.shape


def test_velocity_is_divergence_free_and_has_the_vorticity_as_curl():
    n = 32
    grid = Grid2D(n)
    w = torch.randn(2, 1, n, n, generator=torch.Generator().manual_seed(0), dtype=F64)
    kx, ky = grid.wavenumbers(dtype=F64)

    def relative_divergence(u_hat, v_hat):
        # Round-off relative to the size of the two terms that cancel, |kx û| + |ky v̂|.
        scale = (kx.abs() * u_hat.abs() + ky.abs() * v_hat.abs()).max()
        return (divergence_hat(u_hat, v_hat, grid).abs().max() / scale).item()

    # In spectral space i kx(i ky ψ̂) − i ky(i kx ψ̂) cancels to the last bit...
    assert relative_divergence(*velocity_hat_from_vorticity_hat(rfft2(w), grid)) < 1e-15
    # ...and after the trip through physical space it stays at FFT round-off.
    u, v = velocity_from_vorticity(w)
    assert relative_divergence(rfft2(u), rfft2(v)) < 1e-14
    # The curl ∂v/∂x − ∂u/∂y returns ω except for the mean and the Nyquist modes; compare
    # on a band-limited (restricted) field, which has neither.
    smooth = irfft2(truncate_hat(rfft2(w), n // 2), n // 2)
    u_hat, v_hat = velocity_hat_from_vorticity_hat(rfft2(smooth), Grid2D(n // 2))
    kx, ky = Grid2D(n // 2).wavenumbers(dtype=F64)
    curl = irfft2(1j * kx * v_hat - 1j * ky * u_hat, n // 2)
    torch.testing.assert_close(curl, smooth - smooth.mean(dim=(-2, -1), keepdim=True))


def test_diagnostics_shapes_and_values():
    n = 16
    x, _ = Grid2D(n).coordinates(dtype=F64)
    w = torch.stack([torch.cos(2 * math.pi * x), 2 * torch.cos(2 * math.pi * x)])[:, None]
    assert enstrophy(w).tolist() == pytest.approx([0.25, 1.0])
    assert kinetic_energy(w).tolist() == pytest.approx(
        [
            0.25 / (2 * math.pi) ** 2,
            1.0 / (2 * math.pi) ** 2,
        ]
    )
    ref = torch.ones(2, 1, 4, 4, dtype=F64)
    assert relative_l2(1.1 * ref, ref).tolist() == pytest.approx([0.1, 0.1])
    with pytest.raises(ValueError, match="compare"):
        relative_l2(ref, ref[:1])


def test_spectral_truncate_is_exact_for_band_limited_fields():
    import math

    from physics.resample import spectral_truncate

    def sample(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float64) / n
        xx, yy = torch.meshgrid(x, x, indexing="xy")
        return torch.sin(2 * math.pi * 3 * xx) * torch.cos(2 * math.pi * 5 * yy) + 0.3 * torch.cos(
            2 * math.pi * (2 * xx - 7 * yy)
        )

    x = torch.arange(64, dtype=torch.float64) / 64
    xx, _ = torch.meshgrid(x, x, indexing="xy")
    # Mode 20 is beyond what a 32-point grid holds: truncation removes it, no aliasing.
    fine = sample(64) + 0.1 * torch.sin(2 * math.pi * 20 * xx)
    coarse = spectral_truncate(fine[None, None], 32)[0, 0]
    assert coarse.shape == (32, 32)
    torch.testing.assert_close(coarse, sample(32), rtol=0, atol=1e-12)
