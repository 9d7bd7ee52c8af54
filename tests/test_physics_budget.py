"""The kinetic-energy budget of the forced flows closes to the time scheme's accuracy.

For ∂ω/∂t + u·∇ω = νΔω − μω + f on a periodic box, with E = ½⟨|u|²⟩ and Z = ½⟨ω²⟩,

    dE/dt = −2νZ − 2μE + P,    P = ⟨u·F⟩ = ⟨ψ f⟩,

where F is the body force whose curl is f and −Δψ = ω (integrate ⟨ψ(∂ₓF_y − ∂_yFₓ)⟩ by
parts: ⟨−∂ₓψ F_y + ∂_yψ Fₓ⟩ = ⟨v F_y + u Fₓ⟩). Advection moves energy between scales but
adds none; with the 2/3 rule this holds exactly on the grid, since the retained modes of the
truncated product carry no aliases.

Check: from a trajectory with step Δt, the centred difference [E(T + Δt) − E(T − Δt)]/(2Δt)
against the right-hand side at T (a fixed time T, so the comparison is at one state as Δt
halves). The centred difference is second order, and the solution's error enters at the
schemes' (second) order, so the residual, relative to |2νZ| + |2μE| + |P|, must fall by 4
per halving. Initial conditions are restricted to the 2/3-rule band: modes outside it only
decay, and the stiffest of them (νκ²Δt ≫ 1) are where Crank–Nicolson is least accurate.
"""

from __future__ import annotations

import math

import pytest
import torch

from physics.diagnostics import enstrophy, kinetic_energy
from physics.flows import get_flow, kolmogorov_body_force
from physics.grid import Grid2D
from physics.spectral import (
    grid_of,
    irfft2,
    rfft2,
    streamfunction_hat,
    velocity_from_vorticity,
)

F64 = torch.float64


def budget_rhs(flow, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(−2νZ − 2μE + P, |2νZ| + |2μE| + |P|) per batch item."""
    n = w.shape[-1]
    psi = irfft2(streamfunction_hat(rfft2(w), grid_of(w, flow.length)), n)
    power = (psi * flow.forcing(n, dtype=w.dtype)).flatten(1).mean(dim=-1)
    terms = torch.stack(
        [-2 * flow.nu * enstrophy(w), -2 * flow.drag * kinetic_energy(w, flow.length), power]
    )
    return terms.sum(dim=0), terms.abs().sum(dim=0)


def relative_residual(flow, solver, w0: torch.Tensor, t_mid: float, dt: float) -> torch.Tensor:
    n = w0.shape[-1]
    steps = round(t_mid / dt)
    w_hat = rfft2(w0)
    for _ in range(steps - 1):
        w_hat = solver.step(w_hat, dt)
    before = irfft2(w_hat, n)
    w_hat = solver.step(w_hat, dt)
    middle = irfft2(w_hat, n)
    after = irfft2(solver.step(w_hat, dt), n)
    rate = (kinetic_energy(after, flow.length) - kinetic_energy(before, flow.length)) / (2 * dt)
    rhs, scale = budget_rhs(flow, middle)
    return (rate - rhs) / scale


@pytest.mark.parametrize(
    ("name", "scheme", "fraction"),
    [
        ("ns2d-forced", "rk4cn", 1),
        ("ns2d-forced", "cnheun", 1),
        ("kolmogorov2d", "rk4cn", 1),
        # Heun's energy error from advection, ≈ y⁴/4 per step (y = κuΔt), is O(Δt³) in the
        # rate and dominates the O(Δt²) terms down to about stable_dt/32 here (measured
        # orders 3.6, 6.7, a sign change, then 1.4, 1.8, 1.9, 1.96 from stable_dt/8 on).
        ("kolmogorov2d", "cnheun", 1 / 32),
    ],
)
def test_energy_budget_closes_at_second_order(name, scheme, fraction):
    flow = get_flow(name)
    n = 32
    solver = flow.make_solver(n, dtype=F64, scheme=scheme)
    w0 = flow.random_initial_condition(n, batch=2, seed=3, dtype=F64)
    w0 = irfft2(rfft2(w0) * Grid2D(n).dealias_mask(), n)
    dt = fraction * solver.stable_dt(w0)
    t_mid = 8 * dt
    residuals = [
        relative_residual(flow, solver, w0, t_mid, dt / 2**j).abs().max().item() for j in range(3)
    ]
    orders = [math.log2(residuals[j] / residuals[j + 1]) for j in range(2)]
    assert residuals[0] < 2e-3, residuals
    assert all(1.8 <= p <= 2.3 for p in orders), (orders, residuals)
    assert residuals[-1] > 1e-11  # far above round-off, so the orders mean something


def test_forcing_power_through_the_stream_function_is_u_dot_f():
    """P = ⟨ψ f⟩ equals ⟨u·F⟩ computed from the kolmogorov2d body force in physical space."""
    flow = get_flow("kolmogorov2d")
    n = 32
    w = flow.random_initial_condition(n, batch=2, seed=5, dtype=F64)
    x, y = Grid2D(n, flow.length).coordinates(dtype=F64)
    fx, fy = kolmogorov_body_force(x, y)
    u, v = velocity_from_vorticity(w, flow.length)
    direct = (u * fx + v * fy).flatten(1).mean(dim=-1)
    psi = irfft2(streamfunction_hat(rfft2(w), grid_of(w, flow.length)), n)
    via_psi = (psi * flow.forcing(n, dtype=F64)).flatten(1).mean(dim=-1)
    torch.testing.assert_close(via_psi, direct, rtol=1e-12, atol=1e-15)
