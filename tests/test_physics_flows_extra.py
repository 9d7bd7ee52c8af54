"""The flows beyond the FNO benchmark: kolmogorov2d, decaying2d, taylor-green2d; viscosity
variants; initial-condition families; exact and steady solutions each flow must reproduce."""

from __future__ import annotations

import math

import pytest
import torch

from physics.diagnostics import kinetic_energy, relative_l2
from physics.flows import FLOWS, INITIAL_CONDITIONS, get_flow, kolmogorov_body_force
from physics.grid import Grid2D
from physics.ns2d.solver import VorticitySolver2D
from physics.ns2d.time_stepping import CN_HEUN, RK4_CN, cn_amplification
from physics.spectra import energy_spectrum
from physics.spectral import derivative_wavenumbers, irfft2, rfft2

F64 = torch.float64


def test_registry_holds_the_design_flows_with_their_parameters():
    expected = {
        # name: (length, nu, drag, forced)
        "ns2d-forced": (1.0, 1e-3, 0.0, True),
        "kolmogorov2d": (2 * math.pi, 1e-3, 0.1, True),
        "decaying2d": (2 * math.pi, 1e-3, 0.0, False),
        "taylor-green2d": (2 * math.pi, 1e-2, 0.0, False),
    }
    assert set(expected) <= set(FLOWS)
    for name, (length, nu, drag, forced) in expected.items():
        flow = get_flow(name)
        assert flow.name == name and flow.fields == ("vorticity",)
        assert (flow.length, flow.nu, flow.drag) == (length, nu, drag)
        assert (flow.forcing(32) is not None) == forced
        assert flow.nu in flow.allowed_nu
        assert flow.initial_conditions and all(
            k in INITIAL_CONDITIONS for k in flow.initial_conditions
        )
        assert flow.description


def test_kolmogorov_forcing_is_the_curl_of_sin4y_along_x():
    """f = ∂F_y/∂x − ∂F_x/∂y for F = (sin 4y, 0), computed spectrally from F, equals the
    flow's vorticity forcing and −4 cos 4y (not +4 cos 4y, nor sin 4y)."""
    flow = get_flow("kolmogorov2d")
    n = 32
    grid = Grid2D(n, flow.length)
    x, y = grid.coordinates(dtype=F64)
    fx, fy = kolmogorov_body_force(x, y)
    torch.testing.assert_close(fx, torch.sin(4 * y))
    kx, ky = derivative_wavenumbers(grid, dtype=F64)
    curl = irfft2(1j * kx * rfft2(fy) - 1j * ky * rfft2(fx), n)
    f = flow.forcing(n, dtype=F64)
    assert f.shape == (n, n)
    torch.testing.assert_close(f, curl, rtol=0, atol=1e-13)
    torch.testing.assert_close(f, -4 * torch.cos(4 * y), rtol=0, atol=1e-14)


def test_kolmogorov_spins_up_to_its_laminar_state_exactly():
    """A pure shear ω(y, t) has u = (u(y), 0), so u·∇ω ≡ 0 and each mode obeys a linear ODE:
    from rest, ω = ω_L (1 − e^{−λt}) with λ = 16ν + μ and the laminar state
    ω_L = −4 cos 4y / λ. The solver must follow it to the scheme's accuracy, both schemes."""
    flow = get_flow("kolmogorov2d")
    n, t = 32, 2.0
    lam = 16 * flow.nu + flow.drag
    _, y = Grid2D(n, flow.length).coordinates(dtype=F64)
    laminar = (-4 * torch.cos(4 * y) / lam)[None, None]
    exact = laminar * (1 - math.exp(-lam * t))
    for scheme in ("rk4cn", "cnheun"):
        solver = flow.make_solver(n, dtype=F64, scheme=scheme)
        w = solver.advance_fixed(torch.zeros(1, 1, n, n, dtype=F64), t, 0.05)
        assert relative_l2(w, exact).item() < 1e-5, scheme
        # The laminar state itself is steady.
        steady = solver.advance_fixed(laminar, 1.0, 0.05)
        assert relative_l2(steady, laminar).item() < 1e-12, scheme


def test_variant_accepts_the_allowed_viscosities_and_rejects_others():
    flow = get_flow("ns2d-forced")
    assert flow.allowed_nu == (1e-3, 1e-4, 1e-5)
    assert flow.variant() is flow and flow.variant(1e-3) is flow
    for nu in (1e-4, 1e-5):
        other = flow.variant(nu)
        assert other.nu == nu and other.name == flow.name and other.length == flow.length
        assert f"viscosity {nu:.0e}".replace("e-0", "e-") in other.description
        assert "1e-3" not in other.description
        assert flow.nu == 1e-3  # the registered flow is unchanged
        assert other.make_solver(32).nu == nu
        assert other.variant(1e-3).nu == 1e-3
    assert flow.variant(1.0000000001e-4).nu == 1e-4  # round-off in a parsed value is fine
    with pytest.raises(ValueError) as info:
        flow.variant(2e-3)
    assert str(info.value) == ("ns2d-forced allows the viscosities 1e-3, 1e-4 and 1e-5; got 2e-3.")
    with pytest.raises(ValueError, match="allows the viscosities 1e-3; got 1e-4"):
        get_flow("kolmogorov2d").variant(1e-4)
    with pytest.raises(ValueError, match="allows the viscosities 1e-2; got 1e-3"):
        get_flow("taylor-green2d").variant(1e-3)


@pytest.mark.parametrize("name", ["ns2d-forced", "kolmogorov2d", "decaying2d", "taylor-green2d"])
def test_every_initial_condition_family_of_every_flow(name):
    flow = get_flow(name)
    n = 32
    for kind in flow.initial_conditions:
        w = flow.make_initial_condition(kind, n, batch=2, seed=7, dtype=F64)
        assert w.shape == (2, 1, n, n) and w.dtype == F64 and torch.isfinite(w).all()
        assert w.mean(dim=(-2, -1)).abs().max().item() < 1e-12 * max(1.0, w.abs().max().item())
        again = flow.make_initial_condition(kind, n, batch=2, seed=7, dtype=F64)
        assert torch.equal(w, again)
        single = flow.make_initial_condition(kind, n, batch=2, seed=7)
        assert single.dtype == torch.float32 and torch.equal(single, w.float())
        assert flow.initial_condition_description(kind)
    default = flow.random_initial_condition(n, batch=2, seed=7, dtype=F64)
    first = flow.make_initial_condition(flow.initial_conditions[0], n, batch=2, seed=7, dtype=F64)
    assert torch.equal(default, first)
    with pytest.raises(ValueError, match=f"{name} offers the initial conditions"):
        flow.make_initial_condition("vortex-soup", n)
    with pytest.raises(ValueError, match="square grid"):
        flow.make_initial_condition(flow.initial_conditions[0], 31)


def test_default_families_and_their_parameters():
    assert get_flow("ns2d-forced").initial_conditions[0] == "grf"
    assert get_flow("decaying2d").initial_conditions[0] == "mcwilliams"
    assert get_flow("kolmogorov2d").initial_conditions[0] == "mcwilliams"
    assert get_flow("taylor-green2d").initial_conditions == ("taylor-green",)
    # McWilliams defaults: peak at k0 = 4 and energy 0.5 on [0, 2π]².
    flow = get_flow("decaying2d")
    w = flow.random_initial_condition(64, batch=3, seed=1, dtype=F64)
    _, e = energy_spectrum(w, flow.length)
    assert (e.argmax(dim=-1) == 4).all()
    torch.testing.assert_close(kinetic_energy(w, flow.length), torch.full((3,), 0.5, dtype=F64))
    # Parameters pass through.
    w = flow.make_initial_condition("mcwilliams", 64, seed=1, dtype=F64, k0=8, energy=2.0)
    _, e = energy_spectrum(w, flow.length)
    assert e.argmax().item() == 8
    assert e.sum().item() == pytest.approx(2.0, rel=1e-12)
    w = flow.make_initial_condition("filtered", 32, seed=1, dtype=F64, slope=2.0, kmax=6)
    _, e = energy_spectrum(w, flow.length)
    assert e[0, 7:].abs().max().item() < 1e-15
    assert e[0, 1].item() / e[0, 2].item() == pytest.approx(4.0, rel=1e-10)
    # The ns2d-forced GRF default is the FNO amplitude, unchanged.
    from physics.ns2d.random_fields import gaussian_random_field

    grf = gaussian_random_field(32, seed=3, sigma=math.sqrt(2) * 7.0**1.5, dtype=F64)
    assert torch.equal(get_flow("ns2d-forced").random_initial_condition(32, seed=3, dtype=F64), grf)


def test_taylor_green_flow_ic_ignores_the_seed_and_is_its_exact_solution_at_zero():
    flow = get_flow("taylor-green2d")
    n = 32
    w0 = flow.random_initial_condition(n, batch=2, seed=1, dtype=F64)
    assert torch.equal(w0, flow.random_initial_condition(n, batch=2, seed=99, dtype=F64))
    assert torch.equal(w0, flow.exact_vorticity(n, 0.0, batch=2, dtype=F64))
    x, y = Grid2D(n, flow.length).coordinates(dtype=F64)
    # u = sin x cos y, v = −cos x sin y ⇒ ω = ∂v/∂x − ∂u/∂y = 2 sin x sin y, max speed 1.
    torch.testing.assert_close(w0[1, 0], 2 * torch.sin(x) * torch.sin(y))
    assert kinetic_energy(w0, flow.length)[0].item() == pytest.approx(0.25, rel=1e-12)
    with pytest.raises(ValueError, match="no exact solution"):
        get_flow("kolmogorov2d").exact_vorticity(n, 1.0)
    with pytest.raises(ValueError, match="mode"):
        flow.exact_vorticity(n, 0.0, mode=11)


@pytest.mark.parametrize("scheme", ["rk4cn", "cnheun"])
def test_taylor_green_flow_decays_as_its_exact_solution(scheme):
    """taylor-green2d through its own solver, modes 1 and 2 (u·∇ω ≡ 0: a linear decay at
    rate λ = −2νk²). Against the scheme's CN amplification to round-off; against the exact
    solution to CN's predicted error t|λ|³Δt²/12 (e^z − (1 + z/2)/(1 − z/2) ≈ z³/12 per
    step), which for mode 1 with Δt = 0.01 up to t = 1 is 7e-11: below 1e-10 in float64."""
    flow = get_flow("taylor-green2d")
    n, t, dt = 32, 1.0, 0.01
    solver = flow.make_solver(n, dtype=F64, scheme=scheme)
    for mode in (1, 2):
        w0 = flow.make_initial_condition("taylor-green", n, dtype=F64, mode=mode, amplitude=0.7)
        w = solver.advance_fixed(w0, t, dt)
        lam = -2 * flow.nu * mode**2
        factor = cn_amplification(lam * dt, RK4_CN if scheme == "rk4cn" else CN_HEUN)
        assert relative_l2(w, w0 * factor ** round(t / dt)).item() < 1e-12
        exact = flow.exact_vorticity(n, t, dtype=F64, mode=mode, amplitude=0.7)
        error = relative_l2(w, exact).item()
        predicted = t * abs(lam) ** 3 * dt**2 / 12
        assert error <= 1.05 * predicted + 1e-13, (mode, error, predicted)
        if mode == 1:
            assert error < 1e-10


def test_decaying_flow_loses_energy_monotonically():
    """Unforced, drag-free: dE/dt = −2νZ ≤ 0 at every instant."""
    flow = get_flow("decaying2d")
    assert flow.forcing(32) is None and flow.drag == 0
    solver = flow.make_solver(32, dtype=F64)
    w = flow.random_initial_condition(32, batch=2, seed=0, dtype=F64)
    energies = [kinetic_energy(w, flow.length)]
    for _ in range(5):
        w = solver.advance(w, 0.2)
        energies.append(kinetic_energy(w, flow.length))
    energies = torch.stack(energies)
    assert torch.isfinite(w).all()
    assert (energies[1:] < energies[:-1]).all()
    assert (energies[-1] > 0.9 * energies[0]).all()  # ν = 1e-3: a slow decay


def test_make_solver_takes_a_scheme_and_keeps_its_old_signature():
    flow = get_flow("kolmogorov2d")
    solver = flow.make_solver(32, device="cpu", dtype=torch.float32)
    assert isinstance(solver, VorticitySolver2D) and solver.scheme is RK4_CN
    assert solver.cfl == 0.5 and solver.drag == 0.1 and solver.grid.length == flow.length
    heun = flow.make_solver(32, scheme="cnheun")
    assert heun.scheme is CN_HEUN and heun.cfl == CN_HEUN.default_cfl
    with pytest.raises(ValueError, match="'rk4cn', 'cnheun'"):
        flow.make_solver(32, scheme="rk3")
