"""The channel solver's advection term against a hand-computed (u·∇)u.

The solver's explicit right-hand side (``ChannelSolver.explicit_terms``) discretises the
advection in divergence form, −∇·(u u), which equals −(u·∇)u for a divergence-free field.
The velocity below is built from two stream functions, so it is divergence-free analytically
and vanishes at the walls y = ±1, and it has only the Fourier modes |m_x|, |m_z| ≤ 1: the
products (|m| ≤ 2) lie inside the 2/3 band, so the x and z derivatives are exact and what
remains is the second-order finite-difference error in y (on the staggered, stretched grid),
which must fall as Δy². Its gradient is written out by hand, not differentiated by any
project code.

A sign error or a wrong factor in the advection term (of the helper or of its use inside the
Runge–Kutta step) makes the difference O(1) and fails these tests; the existing solver tests
(energy conservation, self-convergence in time, Poiseuille steady state) do not see either.
"""

from __future__ import annotations

import math

import pytest
import torch

from physics.channel.solver import ChannelConfig, ChannelSolver

F64 = torch.float64
LX, LZ = 2 * math.pi, math.pi
A, B = 2 * math.pi / LX, 2 * math.pi / LZ  # the x and z wavenumbers of mode 1


def velocity_and_gradient(x, y, z):
    """(u, v, w) and ∂u_i/∂x_j of the analytic field at points (x, y, z):

        u = U(y) + F′(y) sin(Ax),   v = −A F(y) cos(Ax) + B G(y) sin(Bz),
        w = W(y) + G′(y) cos(Bz),

    U = 1 − y², W = ½ (y − y³) (mean shear in x and z), F = (1 − y²)², G = y (1 − y²)²
    (stream functions F sin(Ax) in the x–y plane and G cos(Bz) in the z–y plane), so
    ∇·u = A F′ cos − A F′ cos + B G′ sin − B G′ sin = 0 and u = v = w = 0 at y = ±1."""
    sx, cx = torch.sin(A * x), torch.cos(A * x)
    sz, cz = torch.sin(B * z), torch.cos(B * z)
    U, dU = 1 - y**2, -2 * y
    W, dW = 0.5 * (y - y**3), 0.5 * (1 - 3 * y**2)
    F, dF, d2F = (1 - y**2) ** 2, -4 * y + 4 * y**3, -4 + 12 * y**2
    G, dG, d2G = y - 2 * y**3 + y**5, 1 - 6 * y**2 + 5 * y**4, -12 * y + 20 * y**3
    u = U + dF * sx
    v = -A * F * cx + B * G * sz
    w = W + dG * cz
    zero = torch.zeros_like(u)
    gradient = [
        [A * dF * cx, dU + d2F * sx, zero],
        [A * A * F * sx, -A * dF * cx + B * dG * sz, B * B * G * cz],
        [zero, dW + d2G * cz, -B * dG * sz],
    ]
    return (u, v, w), gradient


def advection(x, y, z) -> list[torch.Tensor]:
    """[(u·∇)u, (u·∇)v, (u·∇)w] = Σ_j u_j ∂u_i/∂x_j at the points."""
    velocity, gradient = velocity_and_gradient(x, y, z)
    return [sum(velocity[j] * gradient[i][j] for j in range(3)) for i in range(3)]


def sampled(s: ChannelSolver):
    """The staggered velocity (1, 3, nx, ny, nz) (u, w at the centres, v at the faces) and
    −(u·∇)u at the same points."""
    x, yc, yf, z = s.grid.coordinates()
    centres = torch.meshgrid(x, yc, z, indexing="ij")
    faces = torch.meshgrid(x, yf, z, indexing="ij")
    (u, _, w), _ = velocity_and_gradient(*centres)
    (_, v, _), _ = velocity_and_gradient(*faces)
    adv_u, _, adv_w = advection(*centres)
    _, adv_v, _ = advection(*faces)
    velocity = torch.stack([u, v, w])[None]
    return velocity, -torch.stack([adv_u, adv_v, adv_w])[None]


def channel(ny: int, **kwargs) -> ChannelSolver:
    config = {"nx": 8, "ny": ny, "nz": 8, "lx": LX, "lz": LZ, "dtype": F64, **kwargs}
    return ChannelSolver(ChannelConfig(**config))


def explicit_terms(s: ChannelSolver, u: torch.Tensor) -> torch.Tensor:
    """The solver's N(u), back in the (B, 3, nx, ny, nz) layout."""
    return s._irfft(s.explicit_terms(s._to_hat(u))).transpose(-3, -2)


def relative_errors(approx: torch.Tensor, exact: torch.Tensor) -> list[float]:
    """Per component, max |approx − exact| / max |exact|; v's wall face (row 0, where the
    solver pins v) left out."""
    errors = []
    for c in range(3):
        rows = slice(1, None) if c == 1 else slice(None)
        difference = (approx[:, c] - exact[:, c])[:, :, rows]
        errors.append(difference.abs().max().item() / exact[:, c].abs().max().item())
    return errors


def test_hand_computed_field_is_divergence_free_and_no_slip():
    y = torch.linspace(-1, 1, 41, dtype=F64)
    x = torch.linspace(0, LX, 7, dtype=F64)
    z = torch.linspace(0, LZ, 5, dtype=F64)
    points = torch.meshgrid(x, y, z, indexing="ij")
    velocity, gradient = velocity_and_gradient(*points)
    divergence = gradient[0][0] + gradient[1][1] + gradient[2][2]
    assert divergence.abs().max().item() < 1e-14
    for component in velocity:
        assert component[:, [0, -1]].abs().max().item() < 1e-15
    # The gradient as written matches central differences of the field (catches a typo).
    h = 1e-6
    for j in range(3):
        plus = list(points)
        minus = list(points)
        plus[j], minus[j] = points[j] + h, points[j] - h
        up, down = velocity_and_gradient(*plus)[0], velocity_and_gradient(*minus)[0]
        for i in range(3):
            numeric = (up[i] - down[i]) / (2 * h)
            assert torch.allclose(numeric, gradient[i][j], atol=1e-8), (i, j)


@pytest.mark.parametrize("stretching", [0.0, 2.0])
def test_explicit_terms_are_minus_u_dot_grad_u_at_second_order_in_y(stretching):
    """N(u) of the solver (flow-rate drive, no LES: nothing but advection) against −(u·∇)u at
    ny = 16, 32, 64: the relative max error of each component is small and falls as Δy²
    (measured ≈ 0.25, 0.063, 0.017 for v on the stretched grid, orders 1.8–2.1; on the
    uniform grid the rows next to the walls are pre-asymptotic, order down to 1.6 for u
    until ny ≈ 128, hence the bound 1.5). A flipped sign gives an error of 2, a factor 1.5 one of
    0.5, at every resolution."""
    errors = []
    for ny in (16, 32, 64):
        s = channel(ny, drive="flow_rate", stretching=stretching)
        u, expected = sampled(s)
        errors.append(relative_errors(explicit_terms(s, u), expected))
    for c, name in enumerate("uvw"):
        history = [e[c] for e in errors]
        orders = [math.log2(history[i] / history[i + 1]) for i in range(2)]
        assert history[-1] < 0.03, (name, history)
        assert min(orders) > 1.5, (name, orders, history)


def test_pressure_drive_adds_exactly_the_unit_mean_pressure_gradient():
    """Under the pressure drive N(u) is the flow-rate drive's N(u) plus e_x (−dP/dx = 1)."""
    u, _ = sampled(channel(32, drive="flow_rate"))
    flow_rate = explicit_terms(channel(32, drive="flow_rate"), u)
    pressure = explicit_terms(channel(32, drive="pressure"), u)
    difference = pressure - flow_rate
    assert torch.allclose(difference[:, 0], torch.ones_like(difference[:, 0]), atol=1e-12)
    assert difference[:, 1:].abs().max().item() < 1e-12


def test_one_step_moves_the_flow_along_the_projected_advection_and_forcing():
    """The full RK3 step uses the advection with its sign and weight: for a tiny Δt and a
    negligible viscosity (Re_τ = 10⁸), (step(u₀, Δt) − u₀)/Δt = P(−(u·∇)u + e_x) + O(Δt),
    P the solver's discrete projection (u₀ = P u, so the field is discretely divergence-free
    as the step expects). The hand-computed advection differs from the discrete one by the
    O(Δy²) of the test above (measured 5.4% at ny = 32, 1.4% at ny = 64); without the
    pressure-drive forcing e_x, or with the advection flipped or scaled by 1.5, it is O(1)
    off. Against the solver's own projected N(u₀) the step agrees to O(Δt) (2e-4)."""
    dt = 1e-4
    errors, own_errors = [], []
    for ny in (32, 64):
        s = channel(ny, re_tau=1e8, drive="pressure")
        u, advective = sampled(s)
        u0 = s.project(u)
        tendency = (s.step(u0, dt) - u0) / dt
        rhs = advective.clone()
        rhs[:, 0] += 1.0  # −dP/dx = 1
        expected = s.project(rhs)
        assert expected.norm() > 0.8 * rhs.norm()  # the projection leaves most of it
        errors.append(max(relative_errors(tendency, expected)))
        own = s.project(explicit_terms(s, u0))
        own_errors.append(max(relative_errors(tendency, own)))
    assert errors[-1] < 0.03, errors
    assert math.log2(errors[0] / errors[1]) > 1.8, errors
    assert max(own_errors) < 1e-3, own_errors
