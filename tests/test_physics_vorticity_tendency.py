"""N(ω) = −u·∇ω + νΔω − μω + f, the right-hand side of the 2D vorticity equation: equal to
the solver's own explicit plus implicit terms, −λω for Taylor–Green, zero for the steady
Kolmogorov state."""

from __future__ import annotations

import math

import torch

from physics.flows import get_flow
from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field
from physics.ns2d.residual import vorticity_tendency
from physics.ns2d.solver import VorticitySolver2D
from physics.spectral import irfft2, laplacian_symbol, rfft2

F64 = torch.float64


def test_dealiased_tendency_is_the_solvers_explicit_plus_implicit_terms():
    n, nu, drag, length = 24, 3e-3, 0.2, 2 * math.pi
    grid = Grid2D(n, length)
    x, y = grid.coordinates(dtype=F64)
    forcing = torch.sin(3 * x) * torch.cos(2 * y)
    w = gaussian_random_field(n, 2, length=length, seed=4, dtype=F64)
    solver = VorticitySolver2D(grid, nu=nu, forcing=forcing, drag=drag)
    w_hat = rfft2(w)
    implicit = -(nu * laplacian_symbol(grid, dtype=F64) + drag) * w_hat
    expected = irfft2(solver.explicit_terms(w_hat) + implicit, n)
    got = vorticity_tendency(w, nu, drag, forcing, length, dealias=True)
    assert got.shape == w.shape
    torch.testing.assert_close(got, expected, rtol=1e-11, atol=1e-11)
    # Without dealiasing the aliased modes of the product change it (a field with energy
    # beyond the 2/3 cutoff), so the switch is not a no-op.
    aliased = vorticity_tendency(w, nu, drag, forcing, length, dealias=False)
    assert (aliased - got).abs().max() > 1e-6 * got.abs().max()


def test_taylor_green_tendency_is_minus_the_decay_rate_times_omega():
    # u·∇ω ≡ 0 for Taylor–Green, so N(ω) = −(2νk² + μ)ω exactly.
    n, nu, drag, k = 16, 0.01, 0.3, 2.0
    x, y = Grid2D(n, 2 * math.pi).coordinates(dtype=F64)
    w = (2 * k * torch.sin(k * x) * torch.sin(k * y))[None, None]
    rate = 2 * nu * k**2 + drag
    got = vorticity_tendency(w, nu, drag, length=2 * math.pi)
    torch.testing.assert_close(got, -rate * w, rtol=0, atol=1e-12)


def test_steady_kolmogorov_state_has_zero_tendency_and_signs_matter():
    # ω = A cos 4y with A = −4/(16ν + μ) balances f = −4 cos 4y:
    # N(ω) = −(16ν + μ)A cos 4y − 4 cos 4y = 0; with −f instead N(ω) = 8 cos 4y = −2f.
    flow = get_flow("kolmogorov2d")
    n = 16
    f = flow.forcing(n, dtype=F64)
    _, y = Grid2D(n, flow.length).coordinates(dtype=F64)
    amplitude = -4 / (16 * flow.nu + flow.drag)
    w = (amplitude * torch.cos(4 * y))[None, None]
    steady = vorticity_tendency(w, flow.nu, flow.drag, f, flow.length)
    assert steady.abs().max() < 1e-12 * abs(amplitude)
    flipped = vorticity_tendency(w, flow.nu, flow.drag, -f, flow.length)
    torch.testing.assert_close(flipped, -2 * f.expand_as(w), rtol=0, atol=1e-12)
