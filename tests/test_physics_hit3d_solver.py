"""The 3D periodic solver on random fields: incompressibility, the energy budget and its
convergence order, forcing, precision and devices."""

from __future__ import annotations

import math

import pytest
import torch

from physics.hit3d import diagnostics as D
from physics.hit3d.grid import Grid3D, irfftn
from physics.hit3d.initial import abc_flow, random_velocity
from physics.hit3d.les import Smagorinsky
from physics.hit3d.solver import HITSolver

F64 = torch.float64
GRID = Grid3D(16)


@pytest.fixture(scope="module")
def u0() -> torch.Tensor:
    return random_velocity(GRID, batch=2, k_peak=2.0, seed=2)


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)


def test_divergence_free_and_momentum_conserved_after_many_steps(u0):
    """∇·u stays at round-off (P(k) removes exactly what i k· measures) and the mean
    momentum at zero, after 120 CFL steps from a random field."""
    solver = HITSolver(GRID, nu=0.02)
    u_hat = solver.project(u0)
    dt = solver.stable_dt(u0)
    for _ in range(120):
        u_hat = solver.step(u_hat, dt)
    u = irfftn(u_hat, GRID.n)
    gradient_scale = D.velocity_gradient(u).abs().amax(dim=(1, 2, 3, 4, 5))
    assert (D.divergence_max(u) / gradient_scale).max() < 1e-13
    assert u.mean(dim=(-3, -2, -1)).abs().max() < 1e-14
    assert D.kinetic_energy(u).max() < D.kinetic_energy(u0).min()  # it decayed


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"forcing": "band", "power": 0.5, "closure": "smagorinsky"},
        {"scheme": "cnheun"},
    ],
    ids=["rk4cn", "rk4cn-band-smagorinsky", "cnheun"],
)
def test_energy_budget_closes_at_second_order(u0, options):
    """E(T) − E(0) = ∫(P_f − ε − ε_sgs) dt holds exactly for the semi-discrete equations
    (u·(u × ω) = 0 pointwise); with the steps' energies and the trapezoidal rule for the
    integral, the residual is the time discretisation error, O(Δt²) for these second-order
    schemes. Measured order between successive halvings of Δt: ≥ 1.8."""
    solver = HITSolver(GRID, nu=0.05, **options)
    duration, residuals = 0.4, []
    for steps in (4, 8, 16):
        dt = duration / steps
        u_hat = solver.project(u0[:1])
        budget = solver.budget(u_hat)
        e0, rates = budget["energy"], []
        for _ in range(steps + 1):
            rates.append(budget["forcing_power"] - budget["dissipation"]
                         - budget["sgs_dissipation"])  # fmt: skip
            if len(rates) <= steps:
                u_hat = solver.step(u_hat, dt)
                budget = solver.budget(u_hat)
        rates = torch.stack(rates)
        integral = dt * (rates.sum(0) - 0.5 * (rates[0] + rates[-1]))
        residuals.append(abs((budget["energy"] - e0 - integral).item()))
    orders = [math.log2(residuals[i] / residuals[i + 1]) for i in range(2)]
    assert min(orders) >= 1.8, (residuals, orders)
    if "closure" in options:
        assert (budget["sgs_dissipation"] > 0).all() and (budget["forcing_power"] > 0).all()


def test_band_forcing_injects_its_power_exactly_into_a_beltrami_flow():
    """ν = 0, ABC flow at k = 1 (all its energy in the forced band): u × ω stays 0, so
    dE/dt = P exactly: u(t) = ((E0 + Pt)/E0)^½ u(0) (RK4 for the explicit part: ~1e-12)."""
    u = abc_flow(GRID)
    solver = HITSolver(GRID, nu=0.0, forcing="band", power=0.3)
    assert solver.budget(u)["forcing_power"].item() == pytest.approx(0.3, rel=1e-14)
    out = solver.advance(u, 1.0, dt=0.05)
    assert D.kinetic_energy(out).item() == pytest.approx(1.5 + 0.3, abs=1e-10)
    assert (out - math.sqrt(1.8 / 1.5) * u).abs().max() < 1e-10


def test_linear_forcing_grows_a_beltrami_flow_at_its_rate():
    """f = A u on the band: with u × ω = 0, u(t) = e^{(A − ν)t} u(0) for the ABC flow at
    k = 1, and the injected power is 2A·E."""
    u = abc_flow(GRID)
    a, nu = 0.5, 0.01
    solver = HITSolver(GRID, nu=nu, forcing="linear", linear_coefficient=a)
    budget = solver.budget(u)
    assert budget["forcing_power"].item() == pytest.approx(2 * a * 1.5, rel=1e-14)
    assert budget["dissipation"].item() == pytest.approx(2 * nu * 1.5, rel=1e-14)
    out = solver.advance(u, 1.0, dt=0.01)
    assert (out - math.exp((a - nu) * 1.0) * u).abs().max() < 1e-9


def test_linear_forcing_reports_the_power_it_injects_into_a_random_field(u0):
    """P_f = 2A·E_band with E_band the energy of shells 1..k_f (from the spectrum); and the
    energy's rate of change is P_f − ε (centred difference over ±h, O(h²))."""
    a = 0.4
    solver = HITSolver(GRID, nu=0.03, forcing="linear", linear_coefficient=a, k_forcing=2)
    _, spectrum = D.energy_spectrum(u0)
    budget = solver.budget(u0)
    assert torch.allclose(budget["forcing_power"], 2 * a * spectrum[:, 1:3].sum(-1), rtol=1e-12)
    h = 1e-3
    forward = solver.advance(u0, h, dt=h)
    # (E(h) − E(0))/h against the mean of the rates at both ends: both are dE/dt at h/2 to
    # O(h²).
    rate = (D.kinetic_energy(forward) - D.kinetic_energy(u0)) / h
    after = solver.budget(forward)
    predicted = 0.5 * (budget["forcing_power"] - budget["dissipation"]
                       + after["forcing_power"] - after["dissipation"])  # fmt: skip
    assert torch.allclose(rate, predicted, rtol=1e-5)


def test_energy_holding_linear_forcing_keeps_the_energy_constant(u0):
    """A = (ε + ε_sgs)/(2E_band) at every stage makes dE/dt = 0 exactly; the stepped energy
    then drifts only by the time discretisation error."""
    solver = HITSolver(GRID, nu=0.05, forcing="linear", hold_energy=True)
    e0 = D.kinetic_energy(u0)
    u = solver.advance(u0, 1.0)
    assert ((D.kinetic_energy(u) / e0 - 1).abs() < 1e-5).all()
    free = HITSolver(GRID, nu=0.05).advance(u0, 1.0)
    assert (D.kinetic_energy(free) / e0 < 0.8).all()  # without forcing it decays


def test_band_forcing_at_the_initial_dissipation_holds_the_energy_near_steady(u0):
    """P = ε(0): the energy stays within 10% of its start over two time units (about two
    large-eddy turnovers), while the unforced flow loses more than half of it."""
    nu = 0.05
    u, e0 = u0[:1], D.kinetic_energy(u0[:1]).item()
    solver = HITSolver(GRID, nu=nu, forcing="band", power=D.dissipation(u, nu).item())
    for _ in range(4):
        u = solver.advance(u, 0.5)
        assert D.kinetic_energy(u).item() / e0 == pytest.approx(1.0, abs=0.1)
    free = HITSolver(GRID, nu=nu).advance(u0[:1], 2.0)
    assert D.kinetic_energy(free).item() < 0.5 * e0


def test_float32_agrees_with_float64(u0):
    solver = HITSolver(GRID, nu=0.02, forcing="band", power=0.2, closure="dynamic")
    double = solver.advance(u0, 0.1, dt=0.02)
    single = solver.advance(u0.float(), 0.1, dt=0.02)
    assert single.dtype == torch.float32
    assert relative_l2(single.double(), double).max() < 1e-5


def test_stable_dt_follows_the_largest_speed(u0):
    solver = HITSolver(GRID, nu=0.02, cfl=0.4)
    speed = torch.sqrt((u0**2).sum(1)).max().item()
    assert solver.stable_dt(u0) == pytest.approx(0.4 * GRID.dx / speed, rel=1e-12)
    assert HITSolver(GRID, nu=0.02, max_dt=1e-3).stable_dt(u0) == 1e-3
    # A strong eddy viscosity adds the explicit diffusion limit 1.5/(max ν_t |k|²max).
    strong = HITSolver(GRID, nu=0.02, closure=Smagorinsky(cs=2.0))
    nu_t = Smagorinsky(cs=2.0).eddy_viscosity(u0, GRID).max().item()
    assert strong.stable_dt(u0) == pytest.approx(1.5 / (nu_t * 3 * 5**2), rel=1e-12)
    assert strong.stable_dt(u0) < HITSolver(GRID, nu=0.02).stable_dt(u0)
    state = solver.step(u0, 0.01)
    assert state.shape == u0.shape and not state.is_complex()


def test_solver_arguments_are_checked():
    with pytest.raises(ValueError, match="forcing"):
        HITSolver(GRID, nu=0.01, forcing="random")
    with pytest.raises(ValueError, match="linear_coefficient"):
        HITSolver(GRID, nu=0.01, forcing="linear")
    with pytest.raises(ValueError, match="power"):
        HITSolver(GRID, nu=0.01, forcing="band")
    with pytest.raises(ValueError, match="closure"):
        HITSolver(GRID, nu=0.01, closure="wale")
    with pytest.raises(ValueError, match="viscosity"):
        HITSolver(GRID, nu=-1.0)
    with pytest.raises(ValueError, match="16"):
        HITSolver(GRID, nu=0.01).advance(torch.zeros(1, 3, 8, 8, 8), 0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("closure", [None, "dynamic"])
def test_cuda_agrees_with_the_cpu(u0, closure):
    solver = HITSolver(GRID, nu=0.02, forcing="band", power=0.2, closure=closure)
    cpu = solver.advance(u0, 0.1, dt=0.02)
    gpu = solver.advance(u0.cuda(), 0.1, dt=0.02)
    assert gpu.device.type == "cuda"
    assert relative_l2(gpu.cpu(), cpu).max() < 1e-12
    single = solver.advance(u0.float().cuda(), 0.1, dt=0.02)
    assert relative_l2(single.double().cpu(), cpu).max() < 1e-5
    assert D.divergence_max(gpu).max().item() < 1e-10
