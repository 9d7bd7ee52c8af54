"""PDE residual of vorticity trajectories: exact solutions, the time-derivative truncation
error (its exact value and its second order), steady states at round-off, solver output."""

from __future__ import annotations

import math

import pytest
import torch

from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field
from physics.ns2d.residual import time_derivative, vorticity_residual
from physics.ns2d.solver import VorticitySolver2D

F64 = torch.float64


def test_time_derivative_is_exact_for_quadratics_on_uneven_frames():
    # The three-point stencils differentiate a + bt + ct² exactly, ends included.
    times = torch.tensor([0.0, 0.1, 0.35, 0.4, 0.9, 1.0], dtype=F64)
    g = torch.randn(2, 1, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = times[None, :, None, None, None]
    frames = (1.5 - 2.0 * t + 3.0 * t**2) * g
    torch.testing.assert_close(
        time_derivative(frames, times), (-2.0 + 6.0 * t) * g, rtol=1e-12, atol=1e-12
    )
    with pytest.raises(ValueError, match="at least 3"):
        time_derivative(frames[:, :2], times[:2])
    with pytest.raises(ValueError, match="increasing"):
        time_derivative(frames, times.flip(0))


def taylor_green(n: int, times: torch.Tensor, rate: float) -> torch.Tensor:
    """ω = 2k cos(kx) cos(ky) e^{−λt} on [0, 1)², k = 2π: frames (1, T, n, n)."""
    x, y = Grid2D(n).coordinates(dtype=F64)
    k = 2 * math.pi
    w0 = 2 * k * torch.cos(k * x) * torch.cos(k * y)
    return (w0 * torch.exp(-rate * times)[:, None, None])[None]


def test_taylor_green_residual_is_the_exact_finite_difference_error_at_second_order():
    """Taylor–Green has u·∇ω ≡ 0 and −νΔω + μω = λω, λ = 2νk² + μ, so R = D − (−λω) where D is
    the finite-difference ∂ω/∂t of exp(−λt) frames. With x = λh:

        inside: D = −ω sinh(x)/h,  start: D = ω(−3 + 4e^{−x} − e^{−2x})/2h,
        end:    D = ω(3 − 4eˣ + e^{2x})/2h,

    and ‖R‖/‖D‖ = |D/ω + λ|/|D/ω|. The measured residual must equal this to round-off, and
    halving h must divide it by 4 (second order)."""
    n, nu, drag = 16, 0.01, 0.1
    rate = 2 * nu * (2 * math.pi) ** 2 + drag
    relative = {}
    for h in (0.1, 0.05):
        times = torch.arange(7, dtype=F64) * h
        out = vorticity_residual(taylor_green(n, times, rate), times, nu, drag)
        assert out.residual.shape == (1, 7, n, n)
        x = rate * h
        inside = -math.sinh(x) / h
        start = (-3 + 4 * math.exp(-x) - math.exp(-2 * x)) / (2 * h)
        end = (3 - 4 * math.exp(x) + math.exp(2 * x)) / (2 * h)
        expected = [abs(d + rate) / abs(d) for d in (start, *[inside] * 5, end)]
        error = out.relative[0] / torch.tensor(expected, dtype=F64) - 1
        assert error.abs().max().item() < 1e-9, error
        relative[h] = out.relative[0]
    # Orders from two spacings: 1.999 inside; the one-sided ends carry an O(h³) term of
    # relative size ~λh ≈ 0.09 here (1.955 at the start, 2.052 at the end).
    order = torch.log2(relative[0.1] / relative[0.05])
    assert ((order[1:-1] - 2).abs() < 0.01).all(), order
    assert ((order[[0, -1]] - 2).abs() < 0.1).all(), order


def test_steady_kolmogorov_state_has_a_round_off_residual():
    # ω = A cos(4y) on [0, 2π)²: ψ = ω/16, u = (−A sin(4y)/4, 0) ⊥ ∇ω, so u·∇ω = 0, and the
    # forcing f = −νΔω + μω = (16ν + μ)A cos(4y) holds it steady.
    n, nu, drag, amplitude = 32, 1e-3, 0.1, 3.0
    length = 2 * math.pi
    _, y = Grid2D(n, length).coordinates(dtype=F64)
    w = amplitude * torch.cos(4 * y)
    forcing = (16 * nu + drag) * w
    frames = w.expand(2, 5, 1, n, n)
    times = torch.linspace(0.0, 2.0, 5, dtype=F64)
    for dealias in (False, True):
        out = vorticity_residual(frames, times, nu, drag, forcing, length, dealias=dealias)
        assert out.residual.shape == frames.shape
        assert out.relative_to_largest_term.max().item() < 1e-12
        assert out.residual.abs().max().item() < 1e-12 * forcing.abs().max().item()
    # Without the forcing the state is not steady: R = −νΔω + μω = (16ν + μ)ω, against the
    # largest term μω.
    unforced = vorticity_residual(frames, times, nu, drag, None, length)
    torch.testing.assert_close(unforced.residual, forcing.expand_as(frames))
    expected = (16 * nu + drag) / drag
    assert unforced.relative_to_largest_term.min().item() == pytest.approx(expected, rel=1e-12)


def test_nonlinear_balance_has_the_advection_sign_of_the_solver():
    # ω = a cos x + 4b cos 2y (ψ = a cos x + b cos 2y) on [0, 2π)²:
    # u·∇ω = ψ_y ω_x − ψ_x ω_y = 2ab sin x sin 2y − 8ab sin x sin 2y = −6ab sin x sin 2y.
    # With f = u·∇ω − νΔω + μω the frozen field is an exact steady solution.
    n, nu, drag, a, b = 16, 0.02, 0.05, 1.3, 0.7
    x, y = Grid2D(n, 2 * math.pi).coordinates(dtype=F64)
    w = a * torch.cos(x) + 4 * b * torch.cos(2 * y)
    minus_laplacian = a * torch.cos(x) + 16 * b * torch.cos(2 * y)
    advection = -6 * a * b * torch.sin(x) * torch.sin(2 * y)
    forcing = advection + nu * minus_laplacian + drag * w
    frames = w.expand(1, 3, n, n)
    times = [0.0, 0.5, 1.0]
    for dealias in (False, True):
        out = vorticity_residual(frames, times, nu, drag, forcing, 2 * math.pi, dealias)
        assert out.relative_to_largest_term.max().item() < 1e-13
    flipped = vorticity_residual(frames, times, nu, drag, forcing - 2 * advection, 2 * math.pi)
    assert flipped.relative_to_largest_term.min().item() > 0.5


def test_solver_trajectory_residual_falls_at_second_order_in_the_frame_spacing():
    """A forced, nonlinear run of VorticitySolver2D with a time step 20× smaller than the frame
    spacing: with ``dealias=True`` the residual evaluates the solver's own semi-discrete
    equation, so what remains is the finite-difference error (O(h²)) plus the solver's
    step error (O(Δt²), here ~400× smaller). Halving h must divide the residual by ≈ 4."""
    n, nu, drag = 32, 1e-3, 0.1
    grid = Grid2D(n)
    x, y = grid.coordinates(dtype=F64)
    forcing = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    solver = VorticitySolver2D(grid, nu=nu, forcing=forcing, drag=drag)
    h, count = 0.02, 9
    frames = [gaussian_random_field(n, batch=2, seed=3, dtype=F64)]
    for _ in range(count - 1):
        frames.append(solver.advance_fixed(frames[-1], h, h / 20))
    fine = torch.stack(frames, dim=1)  # (2, T, 1, n, n), spacing h
    times = torch.arange(count, dtype=F64) * h
    res_fine = vorticity_residual(fine, times, nu, drag, forcing, dealias=True)
    res_coarse = vorticity_residual(fine[:, ::2], times[::2], nu, drag, forcing, dealias=True)
    # Compare at the shared interior frames t = 2h, 4h, 6h (central differences in both).
    ratio = res_coarse.relative[:, 1:4] / res_fine.relative[:, 2:7:2]
    order = torch.log2(ratio)
    assert ((order > 1.9) & (order < 2.1)).all(), order
    assert res_fine.relative.max().item() < 1e-2
    # Without dealiasing the residual sees the aliasing of the product too; it is larger.
    aliased = vorticity_residual(fine, times, nu, drag, forcing, dealias=False)
    assert (aliased.residual_norm >= res_fine.residual_norm).all()


def test_input_layouts():
    frames = torch.zeros(1, 3, 4, 4)
    out = vorticity_residual(frames, [0.0, 1.0, 2.0], nu=0.1)
    assert out.residual.shape == (1, 3, 4, 4) and out.residual.dtype == torch.float32
    assert out.residual_norm.shape == (1, 3)
    with pytest.raises(ValueError, match="frames shaped"):
        vorticity_residual(torch.zeros(1, 3, 2, 4, 4), [0.0, 1.0, 2.0], nu=0.1)
    with pytest.raises(ValueError, match="one per frame"):
        vorticity_residual(frames, [0.0, 1.0], nu=0.1)
