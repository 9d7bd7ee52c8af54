"""The 3D periodic solver against exact solutions: Beltrami (ABC) flows, which are steady
under Euler and decay as e^{−νk²t} under Navier–Stokes, and the short-time Taylor series of
the Taylor–Green vortex (derived below, the kind of series Brachet et al. 1983 computed)."""

from __future__ import annotations

import math

import pytest
import torch

from physics.hit3d import diagnostics as D
from physics.hit3d.grid import Grid3D, rfftn
from physics.hit3d.initial import abc_flow, taylor_green
from physics.hit3d.solver import HITSolver
from physics.ns2d.time_stepping import cn_amplification

F64 = torch.float64


@pytest.mark.parametrize("k", [1, 2])
def test_abc_flow_is_beltrami_with_the_right_handedness(k):
    """∇ × u = +k u (a sign error in the curl gives −k u), so u × ω = 0 pointwise."""
    u = abc_flow(Grid3D(16), a=1.0, b=0.7, c=0.4, k=k)
    omega = D.vorticity(u)
    assert (omega - k * u).abs().max() < 1e-12
    assert torch.linalg.cross(u, omega, dim=1).abs().max() < 1e-12


def test_abc_flow_is_a_steady_euler_solution():
    """ν = 0: N(û) = P[(u × ω)^] vanishes (to round-off relative to |û| ~ n³) and 100 steps
    leave the field unchanged."""
    grid = Grid3D(16)
    u = abc_flow(grid, a=1.0, b=0.7, c=0.4, k=2)
    solver = HITSolver(grid, nu=0.0)
    u_hat = rfftn(u)
    assert solver.explicit_terms(u_hat).abs().max() < 1e-12 * u_hat.abs().max()
    assert (solver.advance(u, 2.0, dt=0.02) - u).abs().max() < 1e-12


@pytest.mark.parametrize("k", [1, 2])
def test_abc_flow_decays_exactly_at_the_viscous_rate(k):
    """u(t) = e^{−νk²t} u(0). The IMEX step multiplies the mode by its Crank–Nicolson
    product R(−νk²Δt) (``cn_amplification``), which the solver must reproduce to round-off,
    and which equals e^{−νk²Δt} to O(Δt³) per step: ~1e-11 here."""
    grid, nu, t, dt = Grid3D(16), 0.01, 1.0, 0.01
    u = abc_flow(grid, a=1.0, b=0.7, c=0.4, k=k)
    out = HITSolver(grid, nu=nu).advance(u, t, dt=dt)
    discrete = cn_amplification(-nu * k**2 * dt) ** round(t / dt)
    assert (out - discrete * u).abs().max() < 1e-13
    assert (out - math.exp(-nu * k**2 * t) * u).abs().max() < 1e-10
    # A factor wrong in the viscous symbol (e.g. ν|k| or 2ν|k|²) is far outside that.
    assert abs(math.exp(-nu * k**2 * t) - math.exp(-2 * nu * k**2 * t)) > 1e-3


# Taylor–Green, u0 = (sin x cos y cos z, −cos x sin y cos z, 0): E(0) = 1/8, ⟨|ω|²⟩ = 3/4.
# Its first time derivative is ∂u/∂t = −3ν u0 + a, where a = −P(u0·∇u0) is
#     a = (−⅛ sin 2x cos 2z, −⅛ sin 2y cos 2z, ⅛ sin 2z (cos 2x + cos 2y)),  ⟨|a|²⟩ = 1/64,
# orthogonal to u0. Expanding dE/dt = −ν⟨|∇u|²⟩ to third order (⟨u0·u2⟩ = 9ν²/4 − 1/64):
#     E(t) = e^{−6νt}/8 − (5ν/192) t³ + O(t⁴)
# (the linear, low-Re decay plus the first nonlinear correction), and for Euler (ν = 0)
#     ⟨|ω|²⟩(t) = 3/4 + (5/64) t² + O(t⁴) = (3/4)(1 + (5/48) t² + …).


def _a_field(grid: Grid3D) -> torch.Tensor:
    x, y, z = grid.coordinates()
    s, c = torch.sin, torch.cos
    return torch.stack(
        [-s(2 * x) * c(2 * z) / 8, -s(2 * y) * c(2 * z) / 8,
         s(2 * z) * (c(2 * x) + c(2 * y)) / 8]
    )[None]  # fmt: skip


def test_taylor_green_initial_values():
    u = taylor_green(Grid3D(16))
    assert D.kinetic_energy(u).item() == pytest.approx(1 / 8, rel=1e-14)
    assert (2 * D.enstrophy(u)).item() == pytest.approx(3 / 4, rel=1e-14)
    assert D.dissipation(u, 0.1).item() == pytest.approx(0.1 * 3 / 4, rel=1e-13)


def test_taylor_green_first_order_response_is_minus_the_projected_advection():
    """⟨u(t)·a⟩/⟨|a|²⟩ = t − 7νt² + O(t³): the second-harmonic modes grow along a, with the
    sign of −u·∇u (a sign error in u × ω gives −t) and at its rate (a factor error scales
    it). The t² term is ½ of a's own viscous rate (−8ν) plus that of its source −P(u·∇u),
    quadratic in u0 ∝ e^{−3νt} (−6ν)."""
    grid, nu = Grid3D(16), 0.1
    a = _a_field(grid)
    solver = HITSolver(grid, nu=nu)
    errors = []
    for t in (0.1, 0.05):
        u = solver.advance(taylor_green(grid), t, dt=t / 20)
        ratio = ((u * a).sum() / (a * a).sum()).item()
        errors.append(abs(ratio - (t - 7 * nu * t**2)))
        assert ratio == pytest.approx(t, rel=0.1)
    assert math.log2(errors[0] / errors[1]) > 2.7, errors  # O(t³)


def test_taylor_green_energy_follows_the_short_time_series():
    """E(t) − e^{−6νt}/8 = −(5ν/192) t³ (1 + O(t)): the ratio tends to 1 linearly in t
    (its Richardson extrapolation to t = 0 is 1 within 1%)."""
    grid, nu = Grid3D(16), 0.1
    solver = HITSolver(grid, nu=nu)
    ratios = []
    for t in (0.1, 0.05):
        e = D.kinetic_energy(solver.advance(taylor_green(grid), t, dt=t / 20)).item()
        ratios.append((e - math.exp(-6 * nu * t) / 8) / (-5 * nu * t**3 / 192))
    assert 0.8 < ratios[0] < ratios[1] < 1.0, ratios
    assert 2 * ratios[1] - ratios[0] == pytest.approx(1.0, abs=0.01), ratios


def test_taylor_green_inviscid_enstrophy_grows_as_five_sixty_fourths_t_squared():
    """Euler: (⟨|ω|²⟩ − 3/4)/t² → 5/64 with an O(t²) error (so a factor 2 on u × ω, which
    makes it 4·5/64, is excluded); the energy is conserved to round-off meanwhile."""
    grid = Grid3D(16)
    solver = HITSolver(grid, nu=0.0)
    coefficients = []
    for t in (0.2, 0.1):
        u = solver.advance(taylor_green(grid), t, dt=t / 20)
        assert D.kinetic_energy(u).item() == pytest.approx(1 / 8, abs=1e-14)
        coefficients.append(((2 * D.enstrophy(u)).item() - 0.75) / t**2 / (5 / 64))
    assert coefficients[1] == pytest.approx(1.0, abs=2e-3), coefficients
    assert abs(coefficients[0] - 1) / abs(coefficients[1] - 1) == pytest.approx(4, rel=0.1)
