"""LES closures for the channel: their formulas, signs, wall and laminar behaviour, and tiny
turbulent runs with each of them."""

from __future__ import annotations

import math

import pytest
import torch

from physics.channel.grid import ChannelGrid
from physics.channel.les import (
    CLOSURES,
    WALE,
    DynamicSmagorinsky,
    Smagorinsky,
    get_closure,
    van_driest,
)
from physics.channel.solver import ChannelConfig, ChannelSolver

F64 = torch.float64
SMALL = {"nx": 16, "ny": 33, "nz": 16}
NAMES = ["smagorinsky", "wale", "dynamic"]


def solver(**kwargs) -> ChannelSolver:
    return ChannelSolver(ChannelConfig(**{**SMALL, **kwargs}))


@pytest.fixture(scope="module")
def turbulent_like() -> tuple[ChannelSolver, torch.Tensor]:
    s = solver()
    return s, s.initial_condition(batch=2, seed=3, dtype=F64)


def test_velocity_gradient_of_a_manufactured_field():
    """u = f(y) sin(kx x), w = f(y) cos(kz z), v = 0: the gradient at the centres is exact in
    x and z (spectral) and second order in y."""
    errors = []
    for ny in (32, 64):
        g = ChannelGrid(8, ny, 8)
        x, y, _, z = g.coordinates()
        x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
        kx, kz = 2 * math.pi / g.lx, 2 * math.pi / g.lz
        f, df = (1 - y**2) * torch.exp(y), (1 - 2 * y - y**2) * torch.exp(y)
        u = torch.zeros(1, 3, 8, ny, 8, dtype=F64)
        u[0, 0] = f * torch.sin(kx * x)
        u[0, 2] = f * torch.cos(kz * z)
        grad = g.velocity_gradient(u)[0]
        assert torch.allclose(grad[0, 0], kx * f * torch.cos(kx * x), atol=1e-12)
        assert torch.allclose(grad[2, 2], -kz * f * torch.sin(kz * z), atol=1e-12)
        assert grad[1].abs().max() == 0 and grad[0, 2].abs().max() < 1e-12
        errors.append((grad[0, 1] - df * torch.sin(kx * x)).abs().max().item())
    assert math.log2(errors[0] / errors[1]) > 1.8, errors


def test_closures_by_name():
    assert get_closure(None) is None and get_closure("none") is None
    for name in NAMES:
        assert get_closure(name).name == name and isinstance(get_closure(name), CLOSURES[name])
    wale = WALE(cw=0.4)
    assert get_closure(wale) is wale
    with pytest.raises(ValueError, match="smagorinsky"):
        get_closure("vreman")


def test_smagorinsky_and_wale_follow_their_formulas_pointwise():
    """Given a random gradient tensor, ν_t against a direct transcription of each formula."""
    g = ChannelGrid(8, 12, 8)
    gen = torch.Generator().manual_seed(0)
    grad = torch.randn(2, 3, 3, 8, 12, 8, dtype=F64, generator=gen)
    u = torch.zeros(2, 3, 8, 12, 8, dtype=F64)
    delta = g.filter_width()[:, None]
    flat = grad.permute(0, 3, 4, 5, 1, 2)  # (..., 3, 3) matrices
    s = 0.5 * (flat + flat.transpose(-1, -2))
    ss = (s * s).sum((-1, -2))
    g2 = flat @ flat
    sd = 0.5 * (g2 + g2.transpose(-1, -2)) - torch.eye(3, dtype=F64) * (
        torch.diagonal(g2, dim1=-2, dim2=-1).sum(-1)[..., None, None] / 3
    )
    sdsd = (sd * sd).sum((-1, -2))
    wale = (0.5 * delta) ** 2 * sdsd**1.5 / (ss**2.5 + sdsd**1.25)
    assert torch.allclose(WALE(cw=0.5).eddy_viscosity(u, g, 1e-3, grad), wale, rtol=1e-12)
    damping = van_driest(g.wall_distance()[:, None] * 2.0 / 1e-3)
    smag = (0.1 * delta * damping) ** 2 * torch.sqrt(2 * ss)
    got = Smagorinsky(cs=0.1, u_tau=2.0).eddy_viscosity(u, g, 1e-3, grad)
    assert torch.allclose(got, smag, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_eddy_viscosity_is_non_negative_and_vanishes_towards_the_walls(name, turbulent_like):
    s, u = turbulent_like
    closure = DynamicSmagorinsky(clip="eddy") if name == "dynamic" else get_closure(name)
    nu_t = closure.eddy_viscosity(u, s.grid, s.nu)
    assert nu_t.shape == (2, 16, 33, 16) and torch.isfinite(nu_t).all()
    assert nu_t.min().item() >= 0
    profile = nu_t.amax(dim=(0, 1, 3))
    assert profile.max().item() > 0.1 * s.nu  # a model that is switched on
    # First cells (y⁺ ≈ 0.8): at most 0.3% of the largest value.
    assert max(profile[0].item(), profile[-1].item()) < 3e-3 * profile.max().item()


def test_dynamic_clipping_keeps_the_total_viscosity_non_negative(turbulent_like):
    s, u = turbulent_like
    closure = DynamicSmagorinsky()  # clip="total", the default
    nu_t = closure.eddy_viscosity(u, s.grid, s.nu)
    assert (s.nu + nu_t).min().item() >= 0
    # C(y) is one number per wall-parallel plane and field: ν_t/|S| is uniform in each.
    c = closure.coefficient(u, s.grid)
    assert c.shape == (2, 1, 33, 1)
    unclipped = (c * s.grid.filter_width()[:, None] ** 2).expand(2, 16, 33, 16)
    g = s.grid.velocity_gradient(u)
    strain = 0.5 * (g + g.transpose(1, 2))
    magnitude = torch.sqrt(2 * (strain**2).sum((1, 2)))
    assert torch.allclose(nu_t, (unclipped * magnitude).clamp_min(-s.nu), rtol=1e-12)


def test_smagorinsky_damping_at_the_wall():
    """In laminar flow, Smagorinsky does not vanish (|S| = |dU/dy|), but van Driest's factor
    (1 − e^{−y⁺/25})² brings it down towards the walls, to ≈ (y⁺/25)² at the first cell;
    refining the wall cells makes it smaller still."""
    first = []
    for stretching in (1.5, 2.5, 3.5):
        s = solver(stretching=stretching)
        u = s.laminar(dtype=F64)
        nu_t = Smagorinsky().eddy_viscosity(u, s.grid, s.nu)[0].mean(dim=(0, 2))
        y_plus = s.grid.wall_distance() * 180  # u_τ = 1 for the laminar pressure-driven flow
        dudy = (s.grid.y_centres / s.nu).abs()
        expected = (0.1 * s.grid.filter_width() * van_driest(y_plus)) ** 2 * dudy
        assert torch.allclose(nu_t, expected, rtol=1e-9)
        first.append(nu_t[0].item() / nu_t.max().item())
    assert first[0] < 1e-2 and first[1] < first[0] / 10 and first[2] < first[1] / 10, first


def test_wale_vanishes_in_pure_shear():
    s = solver()
    u = s.laminar(batch=2, dtype=F64)
    u[:, 2] = 3 * torch.sin(math.pi * s.grid.y_centres)[:, None]  # a spanwise shear too
    nu_t = WALE().eddy_viscosity(u, s.grid, s.nu)
    assert nu_t.abs().max().item() < 1e-12 * s.nu


def test_dynamic_model_vanishes_for_a_field_uniform_in_x_and_z():
    s = solver()
    u = s.laminar(batch=2, dtype=F64)
    u[:, 2] = 3 * torch.sin(math.pi * s.grid.y_centres)[:, None]
    for clip in ("total", "eddy"):
        nu_t = DynamicSmagorinsky(clip=clip).eddy_viscosity(u, s.grid, s.nu)
        assert nu_t.abs().max().item() < 1e-12 * s.nu


def test_eddy_viscosity_limits_the_time_step(turbulent_like):
    s, u = turbulent_like
    with_model = ChannelSolver(ChannelConfig(**SMALL, les="smagorinsky"), Smagorinsky(cs=2.0))
    assert with_model.cfl_dt(u) < s.cfl_dt(u)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_les_stays_stable_for_hundreds_of_steps(name):
    """16 × 33 × 16 LES with each closure, 250 CFL steps from the turbulent-like start:
    finite, divergence-free, energy bounded, fluctuations alive, ν_t in a sane range."""
    s = solver(les=name)
    u = s.initial_condition(seed=4)
    energy0 = u.square().mean().item()
    for _ in range(25):
        u = s.advance(u, 10 * s.cfl_dt(u))
    assert torch.isfinite(u).all()
    energy = u.square().mean().item()
    assert 0.5 * energy0 < energy < 2 * energy0
    assert s.divergence(u).abs().max().item() < 1e-4 * u.abs().max().item()
    assert (u - u.mean(dim=(2, 4), keepdim=True)).square().mean().sqrt().item() > 0.2
    nu_t = s.closure.eddy_viscosity(u, s.grid, s.nu)
    assert torch.isfinite(nu_t).all() and nu_t.max().item() < 20 * s.nu
