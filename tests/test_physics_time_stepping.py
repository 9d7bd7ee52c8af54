"""Both IMEX schemes (RK4-CN, CN-Heun): measured orders against their formal orders, the
explicit parts alone, CN-Heun's stability bound, and the solver's scheme option."""

from __future__ import annotations

import math

import pytest
import torch

from physics.diagnostics import relative_l2
from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field
from physics.ns2d.solver import VorticitySolver2D
from physics.ns2d.time_stepping import (
    CN_HEUN,
    RK4_CN,
    SCHEMES,
    cn_amplification,
    cn_heun_step,
    get_scheme,
    imex_step,
)

F64 = torch.float64
C128 = torch.complex128


def orders(errors: list[float]) -> list[float]:
    return [math.log2(errors[j] / errors[j + 1]) for j in range(len(errors) - 1)]


def test_scheme_registry_and_formal_orders():
    assert SCHEMES == {"rk4cn": RK4_CN, "cnheun": CN_HEUN}
    assert get_scheme("cnheun") is CN_HEUN and get_scheme(RK4_CN) is RK4_CN
    assert (RK4_CN.order, RK4_CN.explicit_order) == (2, 4)
    assert (CN_HEUN.order, CN_HEUN.explicit_order) == (2, 2)
    with pytest.raises(ValueError, match="Unknown time-stepping scheme 'euler'; choose one of"):
        get_scheme("euler")


@pytest.mark.parametrize("scheme", ["rk4cn", "cnheun"])
def test_schemes_are_consistent(scheme):
    """With N ≡ 1 and G = 0 a consistent step advances u by exactly Δt."""
    u = torch.zeros(1, dtype=F64)
    out = imex_step(u, 0.3, lambda v: torch.ones_like(v), torch.zeros(1, dtype=F64), scheme)
    assert out.item() == pytest.approx(0.3, rel=1e-13)


@pytest.mark.parametrize(("scheme", "order"), [("rk4cn", 4), ("cnheun", 2)])
def test_explicit_part_order_on_an_ode(scheme, order):
    """u' = −u², u(0) = 1 → u(1) = ½, through ``imex_step`` with linear symbol 0: only the
    explicit Runge–Kutta part acts. RK4-CN's is Carpenter–Kennedy's fourth-order scheme
    (measured 4.05–4.18), CN-Heun's is Heun's (measured 2.03–2.09)."""
    zero = torch.zeros(1, dtype=F64)
    errors = []
    for dt in (0.2, 0.1, 0.05, 0.025):
        u = torch.ones(1, dtype=F64)
        for _ in range(round(1 / dt)):
            u = imex_step(u, dt, lambda v: -(v**2), zero, scheme)
        errors.append(abs(u.item() - 0.5))
    measured = orders(errors)
    assert all(order - 0.15 <= p <= order + 0.3 for p in measured), measured


@pytest.mark.parametrize("scheme", ["rk4cn", "cnheun"])
def test_coupled_order_on_an_ode_with_a_linear_implicit_part(scheme):
    """u' = i u² + 0.3 + g u (complex), g = −0.5 and −3, to t = 1: once G acts, both schemes
    are second order (measured from differences of successive halvings: 2.00–2.09)."""

    def run(dt, g):
        u = torch.ones(1, dtype=C128)
        symbol = torch.full((1,), g, dtype=C128)
        for _ in range(round(1 / dt)):
            u = imex_step(u, dt, lambda v: 1j * v**2 + 0.3, symbol, scheme)
        return u

    for g in (-0.5, -3.0):
        runs = [run(0.1 / 2**j, g) for j in range(5)]
        differences = [abs((runs[j] - runs[j + 1]).item()) for j in range(4)]
        measured = orders(differences)
        assert all(1.9 <= p <= 2.2 for p in measured), (g, measured)


@pytest.mark.parametrize(("scheme", "order"), [("rk4cn", 4), ("cnheun", 2)])
def test_explicit_part_order_on_inviscid_advection(scheme, order):
    """ν = 0, no drag, no forcing: the linear symbol is 0 and the 2D Euler equations are
    advanced by the explicit part alone, on a nonlinear random flow (measured: RK4-CN 4.00,
    4.01; CN-Heun 2.02, 2.07)."""
    n = 32
    solver = VorticitySolver2D(Grid2D(n), nu=0.0, scheme=scheme)
    w0 = gaussian_random_field(n, batch=2, sigma=4 * 7.0**1.5, seed=0, dtype=F64)
    t, dt = 0.4, 0.04
    reference = solver.advance_fixed(w0, t, dt / 16)
    errors = [
        relative_l2(solver.advance_fixed(w0, t, dt / 2**j), reference).max().item()
        for j in range(3)
    ]
    measured = orders(errors)
    assert all(order - 0.2 <= p <= order + 0.3 for p in measured), (measured, errors)
    assert errors[-1] > 1e-11  # above round-off, so the orders mean something


def test_cn_heun_order_on_a_forced_nonlinear_flow():
    """As ``test_temporal_order_on_a_nonlinear_flow`` for RK4-CN: errors at Δt, Δt/2, Δt/4
    against Δt/16 on the forced FNO flow, ν = 1e-3 (measured 2.02, 2.07)."""
    n = 32
    grid = Grid2D(n)
    x, y = grid.coordinates(dtype=F64)
    forcing = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    solver = VorticitySolver2D(grid, nu=1e-3, forcing=forcing, scheme="cnheun")
    w0 = gaussian_random_field(n, batch=2, sigma=4 * 7.0**1.5, seed=0, dtype=F64)
    t, dt = 0.4, 0.04
    reference = solver.advance_fixed(w0, t, dt / 16)
    errors = [
        relative_l2(solver.advance_fixed(w0, t, dt / 2**j), reference).max().item()
        for j in range(3)
    ]
    measured = orders(errors)
    assert min(measured) >= 1.8 and max(measured) <= 2.4, (measured, errors)


def test_cn_heun_is_crank_nicolson_on_linear_problems_and_heun_on_explicit_ones():
    z = torch.tensor([-0.3, -5.0, -200.0], dtype=F64)
    u = torch.ones(3, dtype=F64)
    out = cn_heun_step(u, 1.0, torch.zeros_like, z)
    torch.testing.assert_close(out, (1 + z / 2) / (1 - z / 2), rtol=1e-15, atol=0)
    torch.testing.assert_close(cn_amplification(z, CN_HEUN), out, rtol=1e-15, atol=0)
    assert (cn_amplification(z, "cnheun").abs() <= 1).all()  # A-stable
    # Heun on u' = λu: 1 + z + z²/2.
    lam = torch.tensor([0.3 + 0.2j], dtype=C128)
    out = cn_heun_step(
        torch.ones(1, dtype=C128), 1.0, lambda v: lam * v, torch.zeros(1, dtype=C128)
    )
    torch.testing.assert_close(out, 1 + lam + lam**2 / 2)


def test_cn_heun_stability_bound_holds_for_the_coupled_step():
    """The docstring's claim: advection y = κuΔt (explicit) with damping d = (νκ² + μ)Δt
    (implicit) is stable, |R| ≤ 1, when d ≥ y⁴/8 — and unstable without damping."""
    y = torch.linspace(0.01, 1.5, 150, dtype=F64)
    d = y**4 / 8
    one = torch.ones_like(y, dtype=C128)
    damped = cn_heun_step(one, 1.0, lambda v: 1j * y * v, (-d).to(C128))
    assert damped.abs().max().item() <= 1 + 1e-14
    undamped = cn_heun_step(one, 1.0, lambda v: 1j * y * v, torch.zeros_like(one))
    torch.testing.assert_close(undamped.abs() ** 2, 1 + y**4 / 4)


def test_stable_dt_applies_the_cn_heun_bound_only_where_it_binds():
    n = 64
    grid = Grid2D(n)
    w = gaussian_random_field(n, batch=1, sigma=4 * 7.0**1.5, seed=0, dtype=F64)
    rk4 = VorticitySolver2D(grid, nu=1e-5)
    heun = VorticitySolver2D(grid, nu=1e-5, scheme="cnheun")
    from physics.spectral import velocity_from_vorticity

    u, v = velocity_from_vorticity(w)
    speed = torch.sqrt(u**2 + v**2).max().item()
    kmax = 2 * math.pi * math.sqrt(2) * 21  # corner of the 2/3-rule box, n = 64
    bound = (1e-5 * kmax**2 / (0.125 * (kmax * speed) ** 4)) ** (1 / 3)
    assert rk4.stable_dt(w) == pytest.approx(0.5 / n / speed)
    assert heun.stable_dt(w) == pytest.approx(min(0.25 / n / speed, bound))
    assert heun.stable_dt(w) < 0.25 / n / speed  # at ν = 1e-5 the bound binds
    inviscid = VorticitySolver2D(grid, nu=0.0, scheme="cnheun")
    assert inviscid.stable_dt(w) == pytest.approx(0.25 / n / speed)  # nothing to damp
    assert VorticitySolver2D(grid, nu=1e-3, scheme="cnheun", cfl=0.4).cfl == 0.4


def test_cn_heun_solver_batches_and_dtypes_agree():
    n = 32
    solver = VorticitySolver2D(Grid2D(n), nu=1e-3, scheme="cnheun")
    w0 = gaussian_random_field(n, batch=3, seed=1, dtype=F64)
    together = solver.advance_fixed(w0, 0.2, 0.02)
    alone = solver.advance_fixed(w0[1:2], 0.2, 0.02)
    assert torch.allclose(together[1:2], alone, rtol=0, atol=1e-13)
    single = solver.advance_fixed(w0.float(), 0.2, 0.02)
    assert single.dtype == torch.float32 and single.shape == w0.shape
    assert relative_l2(single.double(), together).max().item() < 1e-5
    # advance plans equal steps from the scheme's own stable_dt.
    dt = solver.stable_dt(w0)
    assert dt < 0.2
    planned = solver.advance(w0, 0.2)
    assert torch.allclose(planned, solver.advance_fixed(w0, 0.2, dt), rtol=0, atol=1e-13)


def test_unknown_scheme_is_refused_by_the_solver():
    with pytest.raises(ValueError, match="choose one of 'rk4cn', 'cnheun'"):
        VorticitySolver2D(Grid2D(32), nu=1e-3, scheme="ab2")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("scheme", ["rk4cn", "cnheun"])
def test_schemes_agree_on_cpu_and_cuda(scheme):
    n = 32
    solver = VorticitySolver2D(Grid2D(n), nu=1e-3, scheme=scheme)
    w0 = gaussian_random_field(n, batch=2, seed=4, dtype=F64)
    cpu = solver.advance_fixed(w0, 0.2, 0.02)
    gpu = solver.advance_fixed(w0.cuda(), 0.2, 0.02)
    assert gpu.device.type == "cuda"
    assert relative_l2(gpu.cpu(), cpu).max().item() < 1e-12
