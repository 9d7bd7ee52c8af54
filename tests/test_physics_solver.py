"""The 2D vorticity solver against exact solutions, its convergence orders and its API."""

from __future__ import annotations

import math

import pytest
import torch

from physics.diagnostics import relative_l2
from physics.flows import get_flow
from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field
from physics.ns2d.solver import VorticitySolver2D, num_steps
from physics.ns2d.time_stepping import RK4_CN, cn_amplification, imex_step
from physics.spectral import irfft2, laplacian_symbol, rfft2, truncate_hat

F64 = torch.float64


def taylor_green(n: int, m: int = 1, dtype=F64) -> torch.Tensor:
    """ω = 2k cos(kx) cos(ky), k = 2πm: ψ = cos(kx)cos(ky)/k, so u·∇ω ≡ 0 and ω decays as
    exp(−2νk²t) under viscosity alone."""
    x, y = Grid2D(n).coordinates(dtype=dtype)
    k = 2 * math.pi * m
    return (2 * k * torch.cos(k * x) * torch.cos(k * y))[None, None]


def test_rk4_cn_coefficients_are_consistent():
    # The CN sub-intervals tile the step, and with N ≡ 1, G = 0 a consistent scheme
    # advances u by exactly Δt.
    assert RK4_CN.alphas[0] == 0 and RK4_CN.alphas[-1] == 1
    u = torch.zeros(1, dtype=F64)
    out = imex_step(u, 0.3, lambda v: torch.ones_like(v), torch.zeros(1, dtype=F64))
    assert out.item() == pytest.approx(0.3, rel=1e-13)


def test_taylor_green_matches_cn_factor_exactly_and_exp_decay_to_scheme_accuracy():
    """Two honest checks of the linear part (the nonlinear term vanishes to round-off).

    1. Against the scheme's own amplification: with N = 0 each RK4-CN step multiplies a mode
       by ∏ₖ (1 + µₖλ)/(1 − µₖλ), λ = −2νk² − μ. This must hold to round-off (≤ 1e-12).
    2. Against the exact solution exp(λt): CN is second order, so this holds to the scheme's
       accuracy; with Δt = 0.004 up to t = 1 (ν = 1e-3, mode 1) the predicted error is
       ≈ 5e-11, and we require ≤ 1e-10 relative.
    """
    n, nu, drag, t, dt = 32, 1e-3, 0.05, 1.0, 0.004
    k = 2 * math.pi
    w0 = taylor_green(n)
    steps = round(t / dt)

    with_drag = VorticitySolver2D(Grid2D(n), nu=nu, drag=drag).advance_fixed(w0, t, dt)
    lam = -2 * nu * k**2 - drag
    cn_exact = w0 * cn_amplification(lam * dt) ** steps
    assert relative_l2(with_drag, cn_exact).item() <= 1e-12

    viscous = VorticitySolver2D(Grid2D(n), nu=nu).advance_fixed(w0, t, dt)
    exact = w0 * math.exp(-2 * nu * k**2 * t)
    assert relative_l2(viscous, exact).item() <= 1e-10


def test_temporal_order_on_a_nonlinear_flow():
    """Errors at Δt, Δt/2, Δt/4 against a Δt/16 reference on a forced, nonlinear random flow.

    RK4-CN is second order (Crank–Nicolson limits the IMEX coupling); require ≥ 1.8.
    """
    n = 32
    grid = Grid2D(n)
    x, y = grid.coordinates(dtype=F64)
    forcing = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    solver = VorticitySolver2D(grid, nu=1e-3, forcing=forcing)
    # Four times the FNO-default amplitude, so that advection dominates the dynamics and the
    # coarsest step is near the CFL limit. (Perturbing one RK coefficient in the third digit
    # drops the measured order to ≈ 1.1–1.4, so this does test the explicit part too.)
    w0 = gaussian_random_field(n, batch=2, sigma=4 * 7.0**1.5, seed=0, dtype=F64)
    t, dt = 0.4, 0.04
    assert 0.3 * solver.stable_dt(w0) < dt < solver.stable_dt(w0)  # coarsest step is near CFL
    reference = solver.advance_fixed(w0, t, dt / 16)
    errors = [
        relative_l2(solver.advance_fixed(w0, t, dt / 2**j), reference).max().item()
        for j in range(3)
    ]
    orders = [math.log2(errors[j] / errors[j + 1]) for j in range(2)]
    assert min(orders) >= 1.8, f"measured temporal orders {orders} (errors {errors})"
    assert errors[0] > 1e-9  # well above round-off, so the orders mean something


def test_spatial_resolution_converges_spectrally():
    """A smooth low-mode flow computed on 16², 24², 32² agrees with 64² (restricted to the
    coarse modes), and the gap shrinks faster than any power of n (spectral accuracy)."""

    def smooth_ic(n):
        x, y = Grid2D(n).coordinates(dtype=F64)
        p = 2 * math.pi
        w = (
            torch.sin(p * x) * torch.cos(2 * p * y)
            + 0.7 * torch.cos(p * (x + 2 * y))
            + 0.5 * torch.sin(p * (3 * x - y))
        )
        return 0.5 * w[None, None]

    def run(n):
        p = 2 * math.pi
        x, y = Grid2D(n).coordinates(dtype=F64)
        forcing = 0.1 * (torch.sin(p * (x + y)) + torch.cos(p * (x + y)))
        return VorticitySolver2D(Grid2D(n), nu=1e-3, forcing=forcing).advance_fixed(
            smooth_ic(n), 0.5, 0.02
        )

    x64 = run(64)
    gaps = {}
    for n in (16, 24, 32):
        restricted = irfft2(truncate_hat(rfft2(x64), n), n)
        gaps[n] = relative_l2(run(n), restricted).item()
    assert gaps[32] < 2e-6, gaps
    assert gaps[24] < gaps[16] / 5 and gaps[32] < gaps[24] / 20, gaps


def test_batch_members_are_independent_and_dtypes_agree():
    n = 32
    solver = VorticitySolver2D(Grid2D(n), nu=1e-3)
    w0 = gaussian_random_field(n, batch=3, seed=1, dtype=F64)
    together = solver.advance_fixed(w0, 0.2, 0.05)
    alone = solver.advance_fixed(w0[1:2], 0.2, 0.05)
    assert torch.allclose(together[1:2], alone, rtol=0, atol=1e-13)

    single = solver.advance_fixed(w0.float(), 0.2, 0.05)
    assert single.dtype == torch.float32 and single.shape == w0.shape
    assert relative_l2(single.double(), together).max().item() < 1e-5


def test_advance_lands_on_duration_with_equal_cfl_steps():
    n = 32
    solver = VorticitySolver2D(Grid2D(n), nu=1e-3, cfl=0.5)
    w0 = gaussian_random_field(n, batch=2, seed=2, dtype=F64)
    dt_cfl = solver.stable_dt(w0)
    duration = 2.3 * dt_cfl  # not a multiple: 3 steps of duration/3
    out = solver.advance(w0, duration)
    w_hat = rfft2(w0)
    for _ in range(3):
        w_hat = solver.step(w_hat, duration / 3)
    assert torch.allclose(out, irfft2(w_hat, n), rtol=0, atol=1e-13)
    assert torch.equal(solver.advance(w0, 0.0), w0)


def test_stable_dt_is_cfl_and_capped():
    n = 32
    grid = Grid2D(n)
    # ψ = cos(kx)cos(ky)/k gives u = −cos(kx)sin(ky), v = sin(kx)cos(ky): max speed 1.
    w = taylor_green(n)
    assert VorticitySolver2D(grid, 1e-3, cfl=0.5).stable_dt(w) == pytest.approx(0.5 / n)
    assert VorticitySolver2D(grid, 1e-3, max_dt=1e-3).stable_dt(w) == 1e-3
    # At rest, unit speed is assumed rather than an infinite step.
    assert VorticitySolver2D(grid, 1e-3).stable_dt(torch.zeros(1, 1, n, n)) == 0.5 / n


def test_num_steps_ignores_round_off():
    assert num_steps(1.0, 0.1) == 10
    assert num_steps(0.7, 0.1) == 7
    assert num_steps(3 * 0.1, 0.1) == 3
    assert num_steps(1.0, 0.3) == 4
    assert num_steps(1e-12, 0.1) == 1
    assert num_steps(0.0, 0.1) == 0


def test_bad_inputs_say_what_is_wrong():
    solver = VorticitySolver2D(Grid2D(32), nu=1e-3)
    with pytest.raises(ValueError, match="32×32"):
        solver.advance(torch.zeros(1, 1, 16, 16), 0.1)
    with pytest.raises(ValueError, match="duration"):
        solver.advance(torch.zeros(1, 1, 32, 32), -1.0)
    with pytest.raises(ValueError, match="forcing"):
        VorticitySolver2D(Grid2D(32), nu=1e-3, forcing=torch.zeros(16, 16))


def test_long_advance_replans_as_the_flow_speeds_up():
    """ns2d-forced spins up: its peak speed grows about fourfold over 30 time units, so the
    step chosen at t = 0 becomes unstable (Courant ≈ 2) before the end. ``advance`` re-plans
    and stays accurate; a single fixed plan blows up."""
    flow = get_flow("ns2d-forced")
    solver = flow.make_solver(32, dtype=F64)
    # A weak start (σ² of the covariance as written, half the benchmark's variance) makes
    # the spin-up, and so the growth of the Courant number, the largest.
    w0 = gaussian_random_field(32, batch=2, seed=0, dtype=F64)
    duration = 30.0
    one_call = solver.advance(w0, duration)
    chunked = w0
    for _ in range(60):  # short calls, each planned from the speed at its start
        chunked = solver.advance(chunked, duration / 60)
    assert relative_l2(one_call, chunked).max().item() < 1e-4
    fixed_plan = solver.advance_fixed(w0, duration, solver.stable_dt(w0))
    assert not torch.isfinite(fixed_plan).all()


@pytest.mark.parametrize("scheme", ["rk4cn", "cnheun"])
@pytest.mark.parametrize(("n", "forced", "drag"), [(32, True, 0.0), (33, False, 0.1)])
def test_step_is_the_generic_imex_step(scheme, n, forced, drag):
    """``step`` (stage multipliers cached, the nonlinear work on the columns the 2/3 rule
    keeps, each 2D FFT as two 1D passes) is the arithmetic of ``imex_step`` over
    ``explicit_terms``: equal to round-off, for a field with modes outside the 2/3 band,
    a (batch, channel) shape, forcing or drag, an odd grid, and in float32."""
    grid = Grid2D(n)
    x, y = grid.coordinates(dtype=F64)
    forcing = 0.1 * torch.sin(2 * math.pi * (x + 2 * y)) if forced else None
    solver = VorticitySolver2D(grid, nu=1e-3, forcing=forcing, drag=drag, scheme=scheme)
    linear = -solver.nu * laplacian_symbol(grid, dtype=F64) - drag
    w0 = gaussian_random_field(n, batch=2, seed=3, dtype=F64)
    fast = generic = rfft2(w0)
    for _ in range(3):
        fast = solver.step(fast, 0.01)
        generic = imex_step(generic, 0.01, solver.explicit_terms, linear, scheme)
    assert relative_l2(irfft2(fast, n), irfft2(generic, n)).max().item() < 1e-13
    single = rfft2(w0.float())
    for _ in range(3):
        single = solver.step(single, 0.01)
    assert single.dtype == torch.complex64
    assert relative_l2(irfft2(single, n).double(), irfft2(fast, n)).max().item() < 1e-5


def test_step_stays_differentiable():
    # Where autograd must follow the state, step takes the generic path.
    solver = VorticitySolver2D(Grid2D(16), nu=1e-3)
    w_hat = rfft2(gaussian_random_field(16, seed=4, dtype=F64)).requires_grad_()
    solver.step(w_hat, 0.01).abs().sum().backward()
    assert w_hat.grad is not None and torch.isfinite(w_hat.grad).all()
