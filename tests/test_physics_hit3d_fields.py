"""The 3D periodic grid, random initial fields, the DNS→LES filters and the diagnostics of
``physics.hit3d``, each against an exact value or identity."""

from __future__ import annotations

import math

import pytest
import torch

from physics.hit3d import diagnostics as D
from physics.hit3d.filters import filter_to
from physics.hit3d.grid import Grid3D, irfftn, rfftn
from physics.hit3d.initial import abc_flow, model_spectrum, random_velocity, taylor_green

F64 = torch.float64


def _single_mode(grid: Grid3D, kappa: tuple[int, int, int], component: int = 2) -> torch.Tensor:
    x, y, z = grid.coordinates()
    u = torch.zeros(1, 3, grid.n, grid.n, grid.n, dtype=F64)
    u[0, component] = torch.cos(kappa[0] * x + kappa[1] * y + kappa[2] * z)
    return u


# -- grid ----------------------------------------------------------------------------------


def test_grid_wavenumbers_and_dealiasing():
    g = Grid3D(16)
    kx, ky, kz = g.wavenumbers()
    assert kx.shape == (16, 1, 1) and ky.shape == (1, 16, 1) and kz.shape == (1, 1, 9)
    assert g.rfft_shape == (16, 16, 9)
    assert kx[:, 0, 0].tolist()[:3] == [0, 1, 2] and kx[8, 0, 0] == -8 and kz[0, 0, -1] == 8
    dkx, _, dkz = g.derivative_wavenumbers()
    assert dkx[8, 0, 0] == 0 and dkz[0, 0, -1] == 0 and dkx[7, 0, 0] == 7
    mask = g.dealias_mask()
    assert mask[5, 5, 5] and not mask[6, 0, 0] and not mask[0, 0, 6] and mask[-5, 0, 0]
    # A non-2π box scales the wavenumbers.
    assert Grid3D(8, length=1.0).wavenumbers()[0][1, 0, 0].item() == pytest.approx(2 * math.pi)


def test_rfftn_round_trip_and_parseval_mean_product():
    g = Grid3D(12)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 2, 12, 12, 12, generator=gen, dtype=F64)
    assert torch.allclose(irfftn(rfftn(a), 12), a, atol=1e-14)
    assert torch.allclose(g.mean_product(rfftn(a), rfftn(b)), (a * b).mean((-3, -2, -1)),
                          rtol=1e-12)  # fmt: skip


# -- energy spectrum -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [16, 15])
def test_energy_spectrum_sums_to_the_kinetic_energy(n):
    """Parseval: Σ_k E(k) = ½⟨|u|²⟩ for any field (not only solenoidal; odd n too)."""
    u = torch.randn(2, 3, n, n, n, generator=torch.Generator().manual_seed(1), dtype=F64)
    k, spectrum = D.energy_spectrum(u)
    assert torch.allclose(spectrum.sum(-1), D.kinetic_energy(u), rtol=1e-12)
    assert k[0] == 0 and k[1] == 1


def test_energy_spectrum_puts_a_single_mode_in_its_shell():
    """w = cos(3x + 4y): E = ¼, all in shell |κ| = 5."""
    g = Grid3D(16)
    _, spectrum = D.energy_spectrum(_single_mode(g, (3, 4, 0)))
    assert spectrum[0, 5].item() == pytest.approx(0.25, rel=1e-13)
    assert spectrum[0].sum().item() == pytest.approx(0.25, rel=1e-13)


# -- random initial fields -----------------------------------------------------------------


def test_random_velocity_has_the_asked_spectrum_energy_and_no_divergence():
    g = Grid3D(24)
    u = random_velocity(g, batch=2, k_peak=3.0, u_rms=0.7, seed=5)
    assert u.shape == (2, 3, 24, 24, 24) and u.dtype == F64
    assert D.divergence_max(u).max() < 1e-12
    assert torch.allclose(D.kinetic_energy(u), torch.full((2,), 1.5 * 0.49, dtype=F64))
    assert torch.allclose(D.rms_velocity(u), torch.full((2,), 0.7, dtype=F64))
    k, spectrum = D.energy_spectrum(u)
    assert (spectrum.argmax(-1) == 3).all()
    # Shells 1..7 follow k⁴ exp(−2(k/k_p)²) exactly (ratios to the peak), none beyond n/3.
    model = model_spectrum(k[1:8], 3.0)
    assert torch.allclose(spectrum[:, 1:8] / spectrum[:, 3:4], model / model[2], rtol=1e-11)
    assert spectrum[:, 8:].abs().max() < 1e-28 and spectrum[:, 0].abs().max() < 1e-28
    assert D.kinetic_energy(random_velocity(g, energy=2.0, seed=5)).item() == pytest.approx(2.0)


def test_random_velocity_is_reproducible_from_its_seed():
    g = Grid3D(12)
    a = random_velocity(g, batch=2, seed=7)
    assert torch.equal(a, random_velocity(g, batch=2, seed=7))
    assert torch.equal(a, random_velocity(g, batch=2, generator=torch.Generator().manual_seed(7)))
    assert not torch.allclose(a, random_velocity(g, batch=2, seed=8))
    assert not torch.allclose(a[0], a[1])
    single = random_velocity(g, batch=2, seed=7, dtype=torch.float32)
    assert single.dtype == torch.float32 and torch.allclose(single.double(), a, atol=1e-6)


# -- filters -------------------------------------------------------------------------------


def test_spectral_filter_is_a_projection_onto_the_coarse_band():
    """Filtering twice changes nothing (G² = G); the coarse field samples the fine field
    truncated to |κᵢ| < n_coarse/3 (so the (n_c/N)³ rescaling is right); divergence-free
    input stays divergence-free."""
    fine = Grid3D(32)
    u = random_velocity(fine, k_peak=5.0, seed=3)
    once = filter_to(u, 16, "spectral")
    assert once.kind == "spectral" and once.n == 16 and once.cutoff == pytest.approx(16 / 3)
    assert once.attrs()["filter_kind"] == "spectral" and once.attrs()["n_source"] == 32
    twice = filter_to(once.velocity, 16, "spectral")
    assert (twice.velocity - once.velocity).abs().max() < 1e-13
    truncated = irfftn(rfftn(u) * fine.cutoff_mask(16 / 3), 32)
    assert (once.velocity - truncated[..., ::2, ::2, ::2]).abs().max() < 1e-13
    assert D.divergence_max(once.velocity).item() < 1e-12
    # It removes energy (the small scales), and keeps it all for a field already in band.
    assert D.kinetic_energy(once.velocity) < 0.95 * D.kinetic_energy(u)
    in_band = abc_flow(fine, k=2)
    assert D.kinetic_energy(filter_to(in_band, 16).velocity).item() == pytest.approx(1.5)


@pytest.mark.parametrize("kappa", [(2, 0, 0), (1, 3, -2)])
def test_box_filter_multiplies_a_single_mode_by_its_sinc_transfer_function(kappa):
    """The top-hat average of cos(κ·x) over a cube of side Δ is cos(κ·x) ∏ sin(κᵢΔ/2)/(κᵢΔ/2)."""
    fine = Grid3D(24)
    u = _single_mode(fine, kappa, component=0)
    box = filter_to(u, 12, "box")
    delta = 2 * math.pi / 12
    assert box.kind == "box" and box.width == pytest.approx(delta)
    gain = math.prod(math.sin(k * delta / 2) / (k * delta / 2) if k else 1.0 for k in kappa)
    expected = gain * _single_mode(Grid3D(12), kappa, component=0)
    assert (box.velocity - expected).abs().max() < 1e-13
    wider = filter_to(u, 12, "box", width=2 * delta)
    gain2 = math.prod(math.sin(k * delta) / (k * delta) if k else 1.0 for k in kappa)
    assert (wider.velocity - gain2 * _single_mode(Grid3D(12), kappa, 0)).abs().max() < 1e-13


def test_filter_arguments_are_checked():
    u = random_velocity(Grid3D(16), seed=0)
    with pytest.raises(ValueError, match="spectral"):
        filter_to(u, 8, "gaussian")
    with pytest.raises(ValueError, match="n_coarse"):
        filter_to(u, 32)
    with pytest.raises(ValueError, match="width"):
        filter_to(u, 8, "spectral", width=0.1)


# -- diagnostics ---------------------------------------------------------------------------


def test_dissipation_strain_and_vorticity_forms_agree_in_a_periodic_box():
    """2ν⟨S_ijS_ij⟩ = ν⟨|ω|²⟩ for a solenoidal periodic field (⟨∂_ju_i ∂_iu_j⟩ = 0), and for
    the ABC flow both are ν k² ⟨|u|²⟩; ⟨Q⟩ = 0 by the same identity."""
    u = random_velocity(Grid3D(16), batch=2, seed=4)
    strain = D.dissipation(u, 0.01, form="strain")
    assert torch.allclose(strain, D.dissipation(u, 0.01, form="vorticity"), rtol=1e-12)
    assert D.q_criterion(u).mean((-3, -2, -1)).abs().max() < 1e-12
    abc = abc_flow(Grid3D(16), a=1.0, b=0.5, c=0.2, k=2)
    expected = 0.01 * 4 * 2 * D.kinetic_energy(abc)
    assert torch.allclose(D.dissipation(abc, 0.01), expected, rtol=1e-12)


def test_taylor_microscale_integral_scale_and_reynolds_number_of_abc_flows():
    """All the energy in shell k: ⟨|ω|²⟩ = k²⟨|u|²⟩ = 3k²u'², so λ = √5/k, Re_λ = u'√5/(kν)
    and L = (π/(2u'²))·E/k = 3π/(4k)."""
    for k in (1, 2):
        u = abc_flow(Grid3D(16), a=1.0, b=0.6, c=0.3, k=k)
        assert D.taylor_microscale(u).item() == pytest.approx(math.sqrt(5) / k, rel=1e-12)
        up = D.rms_velocity(u).item()
        assert D.taylor_reynolds(u, 0.01).item() == pytest.approx(up * math.sqrt(5) / k / 0.01)
        assert D.integral_scale(u).item() == pytest.approx(3 * math.pi / (4 * k), rel=1e-12)


def test_velocity_gradient_skewness_of_a_known_profile():
    """u_i = f(x_i), f = sin s + (b/2) sin 2s: f' = cos s + b cos 2s has ⟨f'³⟩ = 3b/4 and
    ⟨f'²⟩ = (1 + b²)/2 in each direction. The Taylor–Green vortex has S = 0 by symmetry."""
    g, b = Grid3D(16), 0.5
    x, y, z = g.coordinates()

    def f(s):
        return torch.sin(s) + 0.5 * b * torch.sin(2 * s)

    u = torch.stack([f(x), f(y), f(z)])[None]
    expected = (3 * b / 4) / ((1 + b * b) / 2) ** 1.5
    assert D.velocity_gradient_skewness(u).item() == pytest.approx(expected, rel=1e-12)
    assert D.velocity_gradient_skewness(-u).item() == pytest.approx(-expected, rel=1e-12)
    assert abs(D.velocity_gradient_skewness(taylor_green(g)).item()) < 1e-12


def test_q_criterion_of_a_two_dimensional_taylor_green_cell():
    """u = (sin x cos y, −cos x sin y, 0): ω_z = 2 sin x sin y, S_11 = −S_22 = cos x cos y, so
    Q = ½(½ω² − S:S) = sin²x sin²y − cos²x cos²y."""
    g = Grid3D(16)
    x, y, _ = g.coordinates()
    u = torch.stack([torch.sin(x) * torch.cos(y), -torch.cos(x) * torch.sin(y),
                     torch.zeros_like(x)])[None]  # fmt: skip
    expected = (torch.sin(x) * torch.sin(y)) ** 2 - (torch.cos(x) * torch.cos(y)) ** 2
    assert (D.q_criterion(u)[0] - expected).abs().max() < 1e-12


def test_vorticity_pdf_is_normalised_and_places_a_uniform_magnitude():
    """u = (sin z, cos z, 0) (ABC with B = C = 0) has |ω| = 1 everywhere: all the mass in the
    bin [0.8, 1.2) of width 0.4, density 1/0.4."""
    u = abc_flow(Grid3D(12), a=1.0, b=0.0, c=0.0)
    centres, density = D.vorticity_pdf(u, bins=5, max_value=2.0)
    assert torch.allclose(centres, torch.tensor([0.2, 0.6, 1.0, 1.4, 1.8], dtype=F64))
    assert density[0].tolist() == pytest.approx([0, 0, 2.5, 0, 0])
    random = random_velocity(Grid3D(16), batch=2, seed=2)
    centres, density = D.vorticity_pdf(random, bins=32)
    assert torch.allclose(density.sum(-1) * (centres[1] - centres[0]), torch.ones(2, dtype=F64))


def test_divergence_of_a_compressive_field():
    g = Grid3D(16)
    x, _, _ = g.coordinates()
    u = torch.zeros(1, 3, 16, 16, 16, dtype=F64)
    u[0, 0] = torch.sin(2 * x)
    assert D.divergence_max(u).item() == pytest.approx(2.0, rel=1e-12)
    assert (D.divergence(u)[0] - 2 * torch.cos(2 * x)).abs().max() < 1e-12
