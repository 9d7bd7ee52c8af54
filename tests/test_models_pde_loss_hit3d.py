"""The physics-informed loss of hit3d (``models.pde_loss_hit3d``): the Crank–Nicolson residual
of the coarse-grid LES equations between frames, plus a divergence term, on 16³ grids.

Checked against an exact solution (the ABC flow's viscous decay gives a residual in closed
form), against the coarse LES solver's own output with each closure (far below persistence,
which scores 1 by construction, and below the output of another viscosity), for its order
in the frame spacing (measured ≈ 4 when Δt halves), for the divergence term's value on an
added gradient field, for the input-only normalisation, and for its gradient."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from models.pde_loss_hit3d import (
    DIVERGENCE_WEIGHT,
    HITResidual,
    closure_for,
    make_hit3d_pde_loss,
)
from physics.hit3d.diagnostics import velocity_gradient
from physics.hit3d.grid import Grid3D, rfftn
from physics.hit3d.initial import abc_flow, random_velocity
from physics.hit3d.solver import HITSolver

N = 16
NU = 0.04
GRID = Grid3D(N)
TWO_PI = 2 * math.pi


def solver_of(closure: str, nu: float = NU, forcing: str | None = None) -> HITSolver:
    return HITSolver(
        GRID,
        nu,
        forcing,
        hold_energy=forcing == "linear",
        closure=None if closure == "none" else closure,
    )


@pytest.fixture(scope="module")
def u0() -> torch.Tensor:
    """Two random solenoidal fields, float64, projected and dealiased (the solver's state)."""
    u = random_velocity(GRID, 2, k_peak=3, u_rms=1.0, seed=1)
    return solver_of("none").advance(u, 0.0)


def pair(u0: torch.Tensor, closure: str, frame_dt: float, **kw) -> tuple[torch.Tensor, ...]:
    """(inputs, preds) shaped (B, 1, 3, n, n, n): u0 and the LES solver's u(frame_dt), in
    ten steps of the solver's RK4–CN."""
    u1 = solver_of(closure, **kw).advance(u0, frame_dt, dt=frame_dt / 10)
    return u0[:, None], u1[:, None]


def test_abc_flow_residual_is_the_closed_form_of_crank_nicolson():
    """u = e^{−νt} u₀ exactly (a Beltrami field: u × ω = 0, N(u) = −ν|k|²u, |k| = 1), so
    R = u₀[(e^{−a} − 1)/Δt + ν(1 + e^{−a})/2], a = νΔt, and ‖N(u₀)‖ = ν‖u₀‖: the momentum
    term is |(e^{−a} − 1)/a + (1 + e^{−a})/2| ≈ a²/12."""
    nu, dt = 0.1, 0.2
    u = abc_flow(GRID)
    a = nu * dt
    terms = HITResidual(nu, dt, closure="none").terms(u[:, None], math.exp(-a) * u[:, None])
    expected = abs((math.exp(-a) - 1) / a + (1 + math.exp(-a)) / 2)
    assert expected == pytest.approx(a**2 / 12, rel=1e-2)
    assert terms["momentum"].item() == pytest.approx(expected, rel=1e-9)
    assert terms["divergence"].item() < 1e-14


@pytest.mark.parametrize("closure", ["smagorinsky", "dynamic", "none"])
def test_the_les_solvers_own_output_has_a_residual_far_below_persistence(u0, closure):
    loss = make_hit3d_pde_loss({"nu": NU, "closure": closure}, 0.02, TWO_PI)
    inputs, preds = pair(u0, closure, 0.02)
    terms = loss.terms(inputs, preds)
    persistence = loss.terms(inputs, inputs)
    # Persistence is exactly −N(u⁰): 1 by the normalisation.
    torch.testing.assert_close(persistence["momentum"], torch.ones(2, 1, dtype=torch.float64))
    # Measured 1.2e-3–1.6e-3 for the three closures.
    assert terms["momentum"].max() < 3e-3
    assert terms["divergence"].max() < 1e-14  # the solver's output is solenoidal
    # Data of twice the viscosity: its residual in this loss is ν's term, ~0.18–0.21.
    _, other = pair(u0, closure, 0.02, nu=2 * NU)
    wrong = loss.terms(inputs, other)["momentum"]
    assert (wrong > 50 * terms["momentum"]).all() and (wrong < 0.5).all()
    assert loss(inputs, preds).item() == pytest.approx(terms["momentum"].mean().item(), rel=1e-9)


def test_the_closure_is_part_of_the_residual(u0):
    """Smagorinsky-LES data: its own closure's loss is small, the closure-free one is not."""
    inputs, preds = pair(u0, "smagorinsky", 0.02)
    smagorinsky = make_hit3d_pde_loss({"nu": NU}, 0.02, TWO_PI)  # the default closure
    none = make_hit3d_pde_loss({"nu": NU, "closure": "none"}, 0.02, TWO_PI)
    assert smagorinsky.closure == "smagorinsky"
    own = smagorinsky.terms(inputs, preds)["momentum"]
    assert (none.terms(inputs, preds)["momentum"] > 10 * own).all()


@pytest.mark.parametrize(
    ("params", "closure"),
    [
        ({}, "smagorinsky"),
        ({"closure": "none"}, "none"),
        ({"closure": "dynamic"}, "dynamic"),
        # A hit3d dataset's attributes: DNS stored on its own grid keeps its equation ...
        ({"closure": "none", "filter": "none"}, "none"),
        ({"closure": "smagorinsky", "filter": "none"}, "smagorinsky"),
        # ... filtered DNS needs a subgrid model on the coarse grid.
        ({"closure": "none", "filter": "box"}, "smagorinsky"),
        ({"closure": "dynamic", "filter": "spectral"}, "dynamic"),
        ({"closure": "none", "filter": "box", "pde_closure": "dynamic"}, "dynamic"),
    ],
)
def test_the_closure_follows_how_the_data_were_made(params, closure):
    assert closure_for(params) == closure
    assert make_hit3d_pde_loss(params, 0.1, TWO_PI).closure == closure


def test_the_declared_forcing_is_part_of_the_residual(u0):
    """Energy-holding linear forcing: the LES solver's forced output against a loss with and
    without the forcing."""
    inputs, preds = pair(u0, "smagorinsky", 0.02, forcing="linear")
    forced = make_hit3d_pde_loss({"nu": NU, "forcing": "linear"}, 0.02, TWO_PI)
    unforced = make_hit3d_pde_loss({"nu": NU, "forcing": "none"}, 0.02, TWO_PI)
    own = forced.terms(inputs, preds)["momentum"]
    assert own.max() < 3e-3
    assert (unforced.terms(inputs, preds)["momentum"] > 10 * own).all()


def test_the_residual_falls_at_second_order_with_the_frame_spacing(u0):
    """Crank–Nicolson's truncation error: halving Δt divides the residual by 4 (measured
    3.75 from 0.04 to 0.02 and 3.87 from 0.02 to 0.01 with Smagorinsky)."""
    residuals = []
    for frame_dt in (0.04, 0.02, 0.01):
        loss = make_hit3d_pde_loss({"nu": NU}, frame_dt, TWO_PI)
        residuals.append(loss.terms(*pair(u0, "smagorinsky", frame_dt))["momentum"])
    for coarse, fine in itertools.pairwise(residuals):
        order = torch.log2(coarse / fine)
        assert ((order > 1.8) & (order < 2.2)).all(), order


def test_a_gradient_field_added_to_the_prediction_raises_the_divergence_term(u0):
    """u¹ + ε∇φ, φ = sin 2x cos y: ∇·(ε∇φ) = εΔφ = −5εφ, whose rms over the box is
    5ε/2, so the divergence term becomes (5ε/2)/‖∇u⁰‖ exactly; the loss adds it with its
    weight (1 by default, ``divergence_weight`` otherwise)."""
    inputs, preds = pair(u0, "smagorinsky", 0.02)
    x, y, _ = GRID.coordinates()
    eps = 0.05
    grad_phi = torch.stack([2 * torch.cos(2 * x) * torch.cos(y), -torch.sin(2 * x) * torch.sin(y),
                            torch.zeros_like(x)])  # fmt: skip
    perturbed = preds + eps * grad_phi
    loss = make_hit3d_pde_loss({"nu": NU}, 0.02, TWO_PI)
    before, after = loss.terms(inputs, preds), loss.terms(inputs, perturbed)
    scale = torch.sqrt((velocity_gradient(u0) ** 2).sum(dim=(1, 2)).mean(dim=(-3, -2, -1)))
    torch.testing.assert_close(after["divergence"][:, 0], 2.5 * eps / scale)
    assert (before["divergence"] < 1e-14).all()
    assert DIVERGENCE_WEIGHT == 1.0
    weighted = make_hit3d_pde_loss({"nu": NU, "divergence_weight": 3.0}, 0.02, TWO_PI)
    expected = (after["momentum"] + 3.0 * after["divergence"]).mean()
    assert weighted(inputs, perturbed).item() == pytest.approx(expected.item(), rel=1e-12)


def test_shrinking_or_inflating_the_prediction_cannot_lower_the_loss(u0):
    """The denominators depend on the inputs only."""
    loss = make_hit3d_pde_loss({"nu": NU}, 0.02, TWO_PI)
    inputs, preds = pair(u0, "smagorinsky", 0.02)
    best = loss(inputs, preds).item()
    for factor in (0.0, 0.5, 0.9, 1.1, 2.0):
        assert loss(inputs, factor * preds).item() > 10 * best
    # Zero predicts ∂u/∂t = −u/Δt: far worse than persistence.
    assert loss(inputs, 0 * preds).item() > 10


def test_frames_of_a_multi_step_prediction_pair_with_their_predecessor(u0):
    """preds (B, 2, …): frame 1 is paired with frame 0 and scaled by the inputs' N(u⁰)."""
    inputs, first = pair(u0, "smagorinsky", 0.02)
    _, second = pair(first[:, 0], "smagorinsky", 0.02)
    loss = make_hit3d_pde_loss({"nu": NU}, 0.02, TWO_PI)
    both = loss.terms(torch.cat([inputs, inputs], 1), torch.cat([first, second], 1))
    assert both["momentum"].shape == (2, 2)
    torch.testing.assert_close(both["momentum"][:, :1], loss.terms(inputs, first)["momentum"])
    alone = loss.terms(first, second)["momentum"][:, 0]
    solver = loss.solver(N)

    def tendency_norm(u: torch.Tensor) -> torch.Tensor:
        u_hat = rfftn(u)
        weights = solver.operators(u_hat)["weights"]
        return torch.sqrt((loss.tendency(u_hat, solver).abs() ** 2 * weights).sum((1, 2, 3, 4)))

    rescaled = alone * tendency_norm(first[:, 0]) / tendency_norm(u0)
    torch.testing.assert_close(both["momentum"][:, 1], rescaled)


def test_the_gradient_is_the_derivative_of_the_loss(u0):
    """backward works, and its directional derivative matches a central difference."""
    loss = make_hit3d_pde_loss({"nu": NU, "closure": "dynamic"}, 0.02, TWO_PI)
    inputs, preds = pair(u0, "dynamic", 0.02)
    generator = torch.Generator().manual_seed(0)
    preds = preds + 0.01 * torch.randn(preds.shape, generator=generator, dtype=preds.dtype)
    preds = preds.requires_grad_()
    value = loss(inputs, preds)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(preds.grad).all() and preds.grad.abs().max() > 0
    direction = torch.randn(preds.shape, generator=generator, dtype=preds.dtype)
    h = 1e-6
    with torch.no_grad():
        numeric = (loss(inputs, preds + h * direction) - loss(inputs, preds - h * direction)) / (
            2 * h
        )
    assert (preds.grad * direction).sum().item() == pytest.approx(numeric.item(), rel=1e-5)


def test_float32_predictions_give_the_float64_value(u0):
    loss = make_hit3d_pde_loss({"nu": NU}, 0.02, TWO_PI)
    inputs, preds = pair(u0, "smagorinsky", 0.02)
    noisy = preds + 0.01 * torch.sin(GRID.coordinates()[1])  # a residual well above round-off
    value = loss(inputs.float(), noisy.float())
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(loss(inputs, noisy).item(), rel=1e-4)


@pytest.mark.parametrize(
    ("params", "frame_dt", "message"),
    [
        ({"closure": "wale"}, 0.1, "takes the closures smagorinsky, dynamic, none; got 'wale'"),
        ({"forcing": "band"}, 0.1, "takes the forcings none, linear; got 'band'"),
        ({"nu": -1.0}, 0.1, "viscosity must be finite and non-negative"),
        ({}, 0.0, "frame spacing must be positive; got frame_dt=0.0"),
        ({"divergence_weight": -1}, 0.1, "divergence weight must be non-negative"),
    ],
)
def test_parameters_it_cannot_take_are_refused_with_a_sentence(params, frame_dt, message):
    with pytest.raises(ValueError, match=message):
        make_hit3d_pde_loss(params, frame_dt, TWO_PI)


def test_shapes_it_cannot_take_are_refused_with_a_sentence():
    loss = make_hit3d_pde_loss({}, 0.1, TWO_PI)
    cube = torch.zeros(1, 1, 3, 8, 8, 8)
    with pytest.raises(ValueError, match="input frames \\(B, history, 3, n, n, n\\)"):
        loss(torch.zeros(1, 1, 1, 8, 8, 8), cube)
    with pytest.raises(ValueError, match="predicted frames"):
        loss(cube, torch.zeros(1, 1, 3, 8, 8, 4))
    with pytest.raises(ValueError, match="cubic grid"):
        box = torch.zeros(1, 1, 3, 8, 4, 8)
        loss(box, box)
