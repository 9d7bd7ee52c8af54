"""The channel-flow solver: wall-normal operators and their orders, exact Poiseuille flow, the
exact pressure Poisson solve and projection, the flow-rate drive, time accuracy, stability."""

from __future__ import annotations

import math

import pytest
import torch

from physics.channel.grid import ChannelGrid, factor_tridiagonal, solve_tridiagonal
from physics.channel.solver import ChannelConfig, ChannelSolver

F64 = torch.float64
SMALL = {"nx": 16, "ny": 33, "nz": 16}


def solver(**kwargs) -> ChannelSolver:
    return ChannelSolver(ChannelConfig(**{**SMALL, **kwargs}))


# -- the grid ------------------------------------------------------------------------------


def smooth(y: torch.Tensor, order: int = 0) -> torch.Tensor:
    """f = (1 − y²) e^{y/2} cos 2y (zero at the walls) or its first or second derivative."""
    y = y.clone().requires_grad_(True)
    f = (1 - y**2) * torch.exp(y / 2) * torch.cos(2 * y)
    for _ in range(order):
        (f,) = torch.autograd.grad(f.sum(), y, create_graph=True)
    return f.detach()


def orders(errors: list[float]) -> list[float]:
    return [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]


def test_grid_is_symmetric_stretched_and_staggered():
    g = ChannelGrid(8, 33, 8, stretching=2.0)
    yf, yc = g.y_faces, g.y_centres
    assert yf[0] == -1 and yf[-1] == 1 and torch.equal(yf, -yf.flip(0))
    assert torch.all(yc > yf[:-1]) and torch.all(yc < yf[1:])
    assert torch.allclose(yc, -yc.flip(0), atol=1e-15)
    assert g.dy[0] < g.dy[16] / 5  # refined towards the walls
    uniform = ChannelGrid(8, 10, 8, stretching=0.0)
    assert torch.allclose(uniform.dy, torch.full((10,), 0.2, dtype=F64))
    x, y_c, y_f, z = g.coordinates()
    assert x.shape == (8,) and y_c.shape == (33,) and y_f.shape == (33,) and z.shape == (8,)
    assert y_f[0] == -1  # v is stored from the lower wall up


def test_wall_normal_operators_are_second_order_on_the_stretched_grid():
    """Manufactured f (zero at the walls) at 16, 32, 64 cells: every operator's max-norm
    error falls as Δy², except on the first and last row of the centre second derivative,
    whose parabola through the wall and two unequally spaced centres is first order there
    (a single row; the solutions of Poisson/Helmholtz problems stay second order)."""
    errors: dict[str, list[float]] = {}
    boundary: list[float] = []
    for ny in (16, 32, 64):
        g = ChannelGrid(8, ny, 8, stretching=2.0)
        yc, yf = g.y_centres, g.y_faces[:-1]
        fc, ff = smooth(yc)[:, None], smooth(yf)[:, None]
        cases = {
            "ddy_centres": (g.ddy_centres.apply(fc), smooth(yc, 1), slice(None)),
            "d2dy2_centres": (g.d2dy2_centres.apply(fc), smooth(yc, 2), slice(1, -1)),
            "d2dy2_faces": (g.d2dy2_faces.apply(ff), smooth(yf, 2), slice(1, None)),
            "ddy_faces_to_centres": (g.ddy_faces_to_centres.apply(ff), smooth(yc, 1), slice(None)),
            "ddy_centres_to_faces": (g.ddy_centres_to_faces.apply(fc), smooth(yf, 1),
                                     slice(1, None)),
            "faces_to_centres": (g.faces_to_centres.apply(ff), smooth(yc), slice(None)),
        }  # fmt: skip
        for weights in ("linear", "arithmetic", "volume"):
            cases[weights] = (g.centres_to_faces(weights).apply(fc), smooth(yf), slice(1, None))
        for name, (approx, exact, rows) in cases.items():
            error = (approx[:, 0] - exact)[rows].abs().max().item()
            errors.setdefault(name, []).append(error)
        edge = g.d2dy2_centres.apply(fc)[:, 0] - smooth(yc, 2)
        boundary.append(max(edge[0].abs().item(), edge[-1].abs().item()))
    for name, errs in errors.items():
        assert min(orders(errs)) > 1.8, (name, orders(errs), errs)
    assert min(orders(boundary)) > 0.9, orders(boundary)
    # Dense matrices agree with the stencils.
    g = ChannelGrid(8, 16, 8)
    f = torch.randn(16, 3, dtype=F64)
    assert torch.allclose(g.d2dy2_centres.matrix() @ f, g.d2dy2_centres.apply(f), atol=1e-10)


def test_poiseuille_parabola_is_differentiated_exactly():
    g = ChannelGrid(8, 33, 8, stretching=2.5)
    parabola = (1 - g.y_centres**2)[:, None]
    assert torch.allclose(g.d2dy2_centres.apply(parabola), torch.tensor(-2.0, dtype=F64),
                          rtol=0, atol=1e-11)  # fmt: skip
    lower, upper = g.wall_derivatives(parabola[:, 0])
    assert lower.item() == pytest.approx(2.0, abs=1e-12)
    assert upper.item() == pytest.approx(-2.0, abs=1e-12)


def test_batched_tridiagonal_solve_matches_dense():
    n = 17
    gen = torch.Generator().manual_seed(0)
    lower, upper = torch.rand(4, n, 3, generator=gen), torch.rand(4, n, 3, generator=gen)
    diag = 3 + torch.rand(4, n, 3, generator=gen)
    rhs = torch.randn(2, 4, n, 3, dtype=torch.complex128, generator=gen)
    x = solve_tridiagonal(factor_tridiagonal(lower, diag, upper), rhs)
    for k in range(4):
        for m in range(3):
            a = (torch.diag(diag[k, :, m]) + torch.diag(lower[k, 1:, m], -1)
                 + torch.diag(upper[k, :-1, m], 1)).to(torch.complex128)  # fmt: skip
            assert torch.allclose(a @ x[:, k, :, m].T, rhs[:, k, :, m].T, atol=1e-12)


# -- laminar flow ----------------------------------------------------------------------------


@pytest.mark.parametrize("drive", ["pressure", "flow_rate"])
def test_laminar_poiseuille_is_a_steady_state_to_round_off(drive):
    s = solver(drive=drive)
    u0 = s.laminar(batch=2, dtype=F64)
    u = u0
    for _ in range(5):
        u = s.step(u, 0.02)
    assert (u - u0).abs().max().item() <= 1e-13 * u0.abs().max().item()
    tau, u_tau = s.wall_shear(u0)
    if drive == "pressure":
        # dP/dx = −1: U = (1 − y²)/(2ν), τ_w = 1, u_τ = 1, centreline Re_τ/2.
        assert torch.allclose(tau, torch.ones(2, dtype=F64), atol=1e-12)
        assert torch.allclose(u_tau, torch.ones(2, dtype=F64), atol=1e-12)
        assert torch.allclose(s.pressure_gradient, torch.ones(2, dtype=F64))
    else:
        bulk = s.bulk_velocity(u0)
        assert torch.allclose(bulk, torch.full((2,), 15.7, dtype=F64), rtol=1e-14)
        # The flow-rate drive supplies exactly the wall shear as the mean pressure gradient.
        assert torch.allclose(s.pressure_gradient, tau, rtol=1e-10)


# -- pressure and projection -------------------------------------------------------------


def test_pressure_poisson_matches_a_manufactured_solution_at_second_order():
    """φ = cos π(y+1) (1 + cos(2πx/Lx) cos(2πz/Lz)) + sin(4πz/Lz) cos 3π(y+1) has zero normal
    derivative at the walls; the exact solve of D G φ = ∇²φ converges to it as Δy²."""
    errors = []
    for ny in (32, 64, 128):
        s = solver(nx=8, ny=ny, nz=8)
        g = s.grid
        x, y, _, z = g.coordinates()
        x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
        kx, kz = 2 * math.pi / g.lx, 2 * math.pi / g.lz
        a = torch.cos(math.pi * (y + 1)) * (1 + torch.cos(kx * x) * torch.cos(kz * z))
        b = torch.sin(2 * kz * z) * torch.cos(3 * math.pi * (y + 1))
        phi = a + b
        lap = (
            -(math.pi**2) * torch.cos(math.pi * (y + 1))
            - (math.pi**2 + kx**2 + kz**2) * (a - torch.cos(math.pi * (y + 1)))
            - (9 * math.pi**2 + 4 * kz**2) * b
        )
        numeric = s.pressure_poisson(lap[None].expand(2, -1, -1, -1))
        # The mean mode is defined up to a constant: compare with zero cell means.
        dy = g.dy[None, :, None]
        exact = phi - (phi * dy).sum() / (dy.sum() * g.nx * g.nz)
        assert torch.equal(numeric[0], numeric[1])
        errors.append((numeric[0] - exact).abs().max().item())
    assert min(orders(errors)) > 1.8, (orders(errors), errors)
    assert errors[-1] < 1e-2


def test_pressure_poisson_inverts_the_discrete_operator_to_round_off():
    s = solver()
    g = s.grid
    gen = torch.Generator().manual_seed(1)
    # The divergence of a field satisfies the solvability condition
    # of every mode (with v = 0 at the walls).
    u = torch.randn(2, 3, g.nx, g.ny, g.nz, dtype=F64, generator=gen)
    u[:, 1, :, 0, :] = 0
    rhs = s.divergence(u)
    dy = g.dy[:, None]
    phi_hat = g.rfft(s.pressure_poisson(rhs))
    kx, kz = g.wavenumbers(dtype=F64)
    applied = g.pressure_laplacian.apply(phi_hat) - (kx**2 + kz**2) * phi_hat
    assert (g.irfft(applied) - rhs).abs().max().item() < 1e-11 * rhs.abs().max().item()
    # Zero cell mean of the (0, 0) mode.
    assert (phi_hat[..., 0, :, 0] * dy[:, 0]).sum(-1).abs().max().item() < 1e-12


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_projection_makes_random_fields_divergence_free_to_round_off(dtype):
    s = solver()
    gen = torch.Generator().manual_seed(2)
    u = torch.randn(3, 3, 16, 33, 16, dtype=F64, generator=gen).to(dtype)
    p = s.project(u)
    scale = s.divergence(u).abs().max().item()
    tolerance = 1e-13 if dtype == F64 else 2e-6
    assert s.divergence(p).abs().max().item() < tolerance * scale
    assert p.dtype == dtype and p.shape == u.shape
    assert torch.all(p[:, 1, :, 0, :] == 0)  # v = 0 at the lower wall
    again = s.project(p)  # a projection: applying it twice changes nothing
    assert (again - p).abs().max().item() < 50 * tolerance * p.abs().max().item()


@pytest.mark.parametrize("stretching", [0.0, 2.5])
def test_advection_conserves_kinetic_energy_on_the_stretched_grid(stretching):
    """For a band-limited, divergence-free field the advection term does no work:
    Σ Δy_j (u·N_u + w·N_w) + Σ h_j v·N_v = 0 to round-off (flow-rate drive: N has no
    forcing), the property the flux interpolations were chosen for."""
    s = solver(drive="flow_rate", stretching=stretching)
    g = s.grid
    u = s.initial_condition(batch=2, seed=1, amplitude=0.3, dtype=F64)
    ops = s._ops(u.device, F64)
    u_hat, _ = s._project_hat(s._to_hat(u) * ops.mask, ops)
    n = s._irfft(s.explicit_terms(u_hat))  # y-first (B, 3, ny, nx, nz)
    v = s._irfft(u_hat)
    dy = g.dy[:, None, None]
    h = torch.cat([torch.zeros(1, dtype=F64), g.y_centres.diff()])[:, None, None]
    work = ((v[:, 0] * n[:, 0] + v[:, 2] * n[:, 2]) * dy + v[:, 1] * n[:, 1] * h).sum((1, 2, 3))
    scale = ((v[:, 0] * n[:, 0]).abs() * dy).sum((1, 2, 3))
    assert (work / scale).abs().max().item() < 1e-14


# -- initial conditions and steps -----------------------------------------------------------


def test_initial_condition_is_divergence_free_reproducible_and_near_the_target_profile():
    s = solver()
    u = s.initial_condition(batch=2, seed=5, dtype=F64)
    assert u.shape == (2, 3, 16, 33, 16)
    assert s.divergence(u).abs().max().item() < 1e-12 * u.abs().max().item()
    assert torch.equal(u, s.initial_condition(batch=2, seed=5, dtype=F64))
    assert not torch.equal(u, s.initial_condition(batch=2, seed=6, dtype=F64))
    assert not torch.equal(u[0], u[1])
    fluctuation = u - u.mean(dim=(2, 4), keepdim=True)
    bulk = s.bulk_velocity(u)
    assert torch.allclose(fluctuation.square().mean(dim=(1, 2, 3, 4)).sqrt(), 0.1 * bulk,
                          rtol=0.2)  # fmt: skip
    assert 14 < bulk.mean().item() < 17  # Reichardt's profile at Re_τ = 180
    assert s.initial_condition(seed=5).dtype == torch.float32
    laminar = solver(drive="flow_rate").initial_condition(seed=5, profile="laminar", dtype=F64)
    assert s.bulk_velocity(laminar).item() == pytest.approx(15.7, rel=0.02)


def test_steps_stay_divergence_free_and_flow_rate_holds_the_bulk_velocity():
    s = solver(drive="flow_rate", bulk_velocity=12.0)
    u = s.initial_condition(batch=2, seed=0, dtype=F64)
    assert s.bulk_velocity(u).max().item() == pytest.approx(12.0, rel=0.05)
    for _ in range(20):
        u = s.step(u, s.cfl_dt(u))
        assert s.divergence(u).abs().max().item() < 1e-12 * u.abs().max().item()
        assert torch.allclose(s.bulk_velocity(u), torch.full((2,), 12.0, dtype=F64),
                              rtol=1e-13, atol=0)  # fmt: skip
    assert torch.all(s.pressure_gradient > 0)


def test_time_accuracy_is_second_order():
    """Errors at Δt, Δt/2, Δt/4 against Δt/16 on a nonlinear, perturbed flow near the CFL
    limit. The scheme is second order overall (the implicit viscous part) and third order in
    the explicit terms, which dominate at these steps (measured ≈ 3.0). A projection without
    the pressure at the old level in the predictor (Chorin's splitting) measured 1.3–1.6
    here: its wall slip error is first order."""
    s = solver(nx=12, ny=16, nz=12, drive="flow_rate")
    u0 = s.initial_condition(seed=1, amplitude=0.2, dtype=F64)
    t, dt = 0.04, 0.01
    assert dt < s.cfl_dt(u0) * 2.5

    def run(h):
        u = u0
        for _ in range(round(t / h)):
            u = s.step(u, h)
        return u

    reference = run(dt / 16)
    errors = [(run(dt / 2**j) - reference).norm().item() for j in range(3)]
    assert min(orders(errors)) > 1.8, (orders(errors), errors)
    assert errors[0] > 1e-8


def test_batch_members_are_independent_and_float32_agrees():
    s = solver()
    u = s.initial_condition(batch=3, seed=2, dtype=F64)
    together = s.step(s.step(u, 0.01), 0.01)
    alone = s.step(s.step(u[1:2], 0.01), 0.01)
    assert torch.allclose(together[1:2], alone, rtol=0, atol=1e-12)
    single = s.step(s.step(u.float(), 0.01), 0.01)
    assert single.dtype == torch.float32
    assert (single.double() - together).abs().max().item() < 1e-4 * together.abs().max().item()


def test_cfl_dt_and_advance():
    s = solver(cfl=0.5)
    g = s.grid
    uniform = torch.zeros(1, 3, 16, 33, 16, dtype=F64)
    uniform[:, 0] = 10.0
    assert s.cfl_dt(uniform) == pytest.approx(0.5 * g.dx / 10.0)
    assert s.cfl_dt(2 * s.laminar(dtype=F64)) == pytest.approx(s.cfl_dt(s.laminar(dtype=F64)) / 2)
    assert ChannelSolver(ChannelConfig(**SMALL, max_dt=1e-4)).cfl_dt(uniform) == 1e-4
    u0 = s.initial_condition(seed=3, dtype=F64)
    dt = s.cfl_dt(u0)
    duration = 2.5 * dt  # not a multiple: three equal steps of duration/3
    out = s.advance(u0, duration)
    manual = u0
    for _ in range(3):
        manual = s.step(manual, duration / 3)
    assert torch.allclose(out, manual, rtol=0, atol=1e-12)
    assert s.steps_taken == 3
    assert torch.equal(s.advance(u0, 0.0), u0)


def test_coarse_dns_stays_stable_for_hundreds_of_steps():
    """16 × 33 × 16 without a model, 300 CFL steps from the turbulent-like start: finite,
    divergence-free, the energy bounded and the perturbations still alive."""
    s = solver()
    u = s.initial_condition(seed=4)
    energy0 = u.square().mean().item()
    for _ in range(30):
        u = s.advance(u, 10 * s.cfl_dt(u))
    assert torch.isfinite(u).all()
    energy = u.square().mean().item()
    assert 0.5 * energy0 < energy < 2 * energy0
    assert s.divergence(u).abs().max().item() < 1e-4 * u.abs().max().item()
    fluctuation = (u - u.mean(dim=(2, 4), keepdim=True)).square().mean().sqrt().item()
    assert fluctuation > 0.2
    tau, _ = s.wall_shear(u)
    assert 0.2 < tau.item() < 5


def test_bad_inputs_say_what_is_wrong():
    s = solver()
    with pytest.raises(ValueError, match="16, 33, 16"):
        s.step(torch.zeros(1, 3, 8, 33, 16), 0.01)
    with pytest.raises(ValueError, match="drive"):
        ChannelConfig(drive="wind")
    with pytest.raises(ValueError, match="LES closure"):
        ChannelSolver(ChannelConfig(**SMALL, les="eddy"))
    with pytest.raises(ValueError, match="duration"):
        s.advance(s.laminar(), -1.0)
    with pytest.raises(ValueError, match="profile"):
        s.initial_condition(profile="plug")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    s = solver(les="wale")
    u = s.initial_condition(batch=2, seed=1, dtype=F64)
    cpu = s.step(u, 0.01)
    cuda = s.step(u.cuda(), 0.01).cpu()
    assert torch.allclose(cpu, cuda, rtol=0, atol=1e-10)
