"""The physics loss of the 2D vorticity flows (``models.pde_loss``): the two-frame
Crank–Nicolson residual of an exact Taylor–Green solution is its known truncation error and
falls at second order; the reference solver's frames score orders of magnitude below
persistence, a time-reversed, negated, wrongly viscous or wrongly forced trajectory; the
loss is dimensionless, cannot be lowered by scaling the prediction, has the gradient its
finite differences say; and only flows with a physics loss get one."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from models.pde_loss import (
    VORTICITY_FLOWS,
    VorticityPdeLoss,
    crank_nicolson_residual,
    has_pde_loss,
    make_pde_loss,
    pde_loss_flows,
)
from physics.flows import get_flow
from physics.grid import Grid2D
from physics.ns2d.solver import VorticitySolver2D

F64 = torch.float64


def taylor_green(n: int, k: float, rate: float, times: list[float]) -> torch.Tensor:
    """ω = 2k sin(kx) sin(ky) e^{−λt} on [0, 2π)², frames (1, T, 1, n, n)."""
    x, y = Grid2D(n, 2 * math.pi).coordinates(dtype=F64)
    w0 = 2 * k * torch.sin(k * x) * torch.sin(k * y)
    return torch.stack([w0 * math.exp(-rate * t) for t in times])[None, :, None]


def test_taylor_green_residual_is_the_trapezoidal_error_and_falls_at_second_order():
    """Taylor–Green has u·∇ω ≡ 0 and N(ω) = −λω, λ = 2νk² + μ. With x = λh a pair
    (ω_j, ω_j e^{−x}) has R = ω_j[(e^{−x} − 1)/h + λ(1 + e^{−x})/2], and the scale is
    ‖N(ω⁰)‖ = λ‖ω⁰‖, so pair j scores e^{−jx}·|(e^{−x} − 1)/x + (1 + e^{−x})/2| ≈ e^{−jx}x²/12.
    The loss must equal this, and halving h must divide it by 4."""
    n, nu, drag, k = 16, 0.01, 0.05, 2.0
    rate = 2 * nu * k**2 + drag
    loss_of = {}
    for h in (0.4, 0.2, 0.1, 0.05):
        frames = taylor_green(n, k, rate, [0.0, h, 2 * h])
        loss = make_pde_loss("taylor-green2d", {"nu": nu, "drag": drag}, h, 2 * math.pi)
        value = loss(frames[:, :1], frames[:, 1:]).item()
        x = rate * h
        per_pair = abs((math.exp(-x) - 1) / x + (1 + math.exp(-x)) / 2)
        assert value == pytest.approx(per_pair * (1 + math.exp(-x)) / 2, rel=1e-6)
        assert value == pytest.approx(x**2 / 12, rel=0.1)
        loss_of[h] = value
    # Measured orders 1.96, 1.98, 1.99: the higher-order terms fade as h shrinks.
    orders = [math.log2(loss_of[h] / loss_of[h / 2]) for h in (0.4, 0.2, 0.1)]
    assert all(1.9 < order < 2.05 for order in orders), orders
    assert abs(orders[-1] - 2) < 0.02, orders


def test_crank_nicolson_residual_of_a_linear_decay_by_hand():
    # N(ω) = −ω, Δt = 0.5: frames 1 → 0.5 give (0.5 − 1)/0.5 + (1 + 0.5)/2 = −0.25, and
    # 0.5 → 0.4 give (0.4 − 0.5)/0.5 + (0.5 + 0.4)/2 = 0.25.
    frames = torch.tensor([1.0, 0.5, 0.4]).reshape(1, 3, 1)
    residual = crank_nicolson_residual(frames, 0.5, lambda w: -w)
    torch.testing.assert_close(residual, torch.tensor([-0.25, 0.25]).reshape(1, 2, 1))
    with pytest.raises(ValueError, match="at least 2 frames"):
        crank_nicolson_residual(frames[:, :1], 0.5, lambda w: -w)


FRAME_DT = 0.02


def solver_frames(solver, w: torch.Tensor, count: int = 3) -> torch.Tensor:
    frames = [w]
    for _ in range(count - 1):
        w = solver.advance(w, FRAME_DT)
        frames.append(w)
    return torch.stack(frames, dim=1)


@pytest.fixture(scope="module")
def kolmogorov():
    """Two Kolmogorov-flow trajectories on 32², three frames 0.02 apart after a short
    spin-up, with the loss built from the dataset-style parameters."""
    flow = get_flow("kolmogorov2d")
    n = 32
    solver = flow.make_solver(n)
    start = solver.advance(flow.make_initial_condition("mcwilliams", n, batch=2, seed=1), 0.5)
    loss = make_pde_loss("kolmogorov2d", {"nu": flow.nu, "drag": flow.drag}, FRAME_DT, flow.length)
    return flow, n, start, solver_frames(solver, start), loss


def score(loss, frames: torch.Tensor) -> float:
    return loss(frames[:, :1], frames[:, 1:]).item()


def test_solver_frames_score_orders_of_magnitude_below_wrong_trajectories(kolmogorov):
    flow, n, start, truth, loss = kolmogorov
    grid, f = Grid2D(n, flow.length), flow.forcing(n)
    too_viscous = VorticitySolver2D(grid, nu=10 * flow.nu, forcing=f, drag=flow.drag)
    anti_forced = VorticitySolver2D(grid, nu=flow.nu, forcing=-f, drag=flow.drag)
    truth_score = score(loss, truth)
    persistence = score(loss, truth[:, :1].expand_as(truth))
    wrong = {
        "time-reversed": score(loss, truth.flip(1)),
        "negated": score(loss, -truth),
        "10× viscous": score(loss, solver_frames(too_viscous, start)),
        "forcing flipped": score(loss, solver_frames(anti_forced, start)),
    }
    # Measured: truth 1.6e-3; persistence 1 by construction; reversed and negated ≈ 2;
    # too viscous 0.23, forcing flipped 0.30.
    assert truth_score < 5e-3
    assert persistence == pytest.approx(1.0, abs=1e-6)
    assert wrong["time-reversed"] > 1.5 and wrong["negated"] > 1.5
    for name, value in wrong.items():
        assert value > 50 * truth_score, (name, value, truth_score)


def test_the_loss_built_with_the_datas_viscosity_is_the_one_that_fits(kolmogorov):
    # Data from ν = 1e-4 of ns2d-forced: a loss built from those parameters scores it far
    # below one built with the flow's default ν = 1e-3.
    flow = get_flow("ns2d-forced").variant(1e-4)
    solver = flow.make_solver(32)
    start = solver.advance(flow.make_initial_condition("grf", 32, batch=2, seed=2), 0.5)
    frames = solver_frames(solver, start)
    right = make_pde_loss("ns2d-forced", {"nu": 1e-4, "drag": 0.0}, FRAME_DT, 1.0)
    default = make_pde_loss("ns2d-forced", {}, FRAME_DT, 1.0)
    assert score(right, frames) * 20 < score(default, frames)


def test_the_residual_falls_at_second_order_in_the_frame_spacing_on_solver_output():
    flow = get_flow("decaying2d")
    solver = flow.make_solver(32, dtype=F64)
    start = solver.advance(flow.make_initial_condition("mcwilliams", 32, seed=3, dtype=F64), 0.5)
    values = []
    for dt in (0.02, 0.01):
        frames = torch.stack([start, solver.advance(start, dt)], dim=1)
        values.append(score(make_pde_loss("decaying2d", {}, dt, flow.length), frames))
    assert 3.5 < values[0] / values[1] < 4.5, values


def test_scaling_the_prediction_cannot_lower_the_loss(kolmogorov):
    _, _, _, truth, loss = kolmogorov
    truth_score = score(loss, truth)
    for factor in (0.0, 0.5, 0.9, 1.1, 2.0):
        scaled = torch.cat([truth[:, :1], factor * truth[:, 1:]], dim=1)
        assert score(loss, scaled) > 10 * truth_score, factor


def test_the_loss_is_dimensionless(kolmogorov):
    """In a time unit a times the old one, ω' = aω, Δt' = Δt/a, ν' = aν, μ' = aμ, f' = a²f:
    the same flow in other units scores the same."""
    flow, _, _, truth, loss = kolmogorov
    a = 3.0
    forcing = flow.vorticity_forcing
    rescaled = VorticityPdeLoss(
        a * flow.nu, a * flow.drag, lambda x, y: a**2 * forcing(x, y), FRAME_DT / a, flow.length
    )
    assert score(rescaled, a * truth) == pytest.approx(score(loss, truth), rel=1e-4)


def test_gradients_flow_and_match_finite_differences(kolmogorov):
    flow, _, _, truth, _ = kolmogorov
    loss = make_pde_loss("kolmogorov2d", {}, FRAME_DT, flow.length)
    x = truth[:, :1].double()
    pred = (truth[:, 1:].double() + 0.01 * torch.randn_like(truth[:, 1:].double())).requires_grad_()
    value = loss(x, pred)
    assert value.ndim == 0 and value.dtype == F64
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().max() > 0
    direction = torch.randn_like(pred)
    eps = 1e-6
    with torch.no_grad():
        slope = (loss(x, pred + eps * direction) - loss(x, pred - eps * direction)) / (2 * eps)
    assert (pred.grad * direction).sum().item() == pytest.approx(slope.item(), rel=1e-5)


def test_float32_predictions_under_bfloat16_give_a_float32_loss(kolmogorov):
    _, _, _, truth, loss = kolmogorov
    value = loss(truth[:, :1], truth[:, 1:].to(torch.bfloat16))
    assert value.dtype == torch.float32 and value.item() < 0.05


def test_only_flows_with_a_physics_loss_get_one():
    assert set(VORTICITY_FLOWS) <= set(pde_loss_flows())
    assert all(has_pde_loss(name) for name in VORTICITY_FLOWS)
    assert not has_pde_loss("channel3d")
    with pytest.raises(ValueError, match=r"no physics loss for flow .channel3d.*kolmogorov2d"):
        make_pde_loss("channel3d", {}, 0.1, 2.0)
    with pytest.raises(ValueError, match="no physics loss for flow 'nope'"):
        make_pde_loss("nope", {}, 0.1, 1.0)
    if importlib.util.find_spec("models.pde_loss_hit3d") is None:
        assert not has_pde_loss("hit3d")
        with pytest.raises(ValueError, match="no physics loss for flow 'hit3d'"):
            make_pde_loss("hit3d", {"nu": 0.04}, 0.1, 2 * math.pi)
    else:
        assert has_pde_loss("hit3d")
        assert callable(make_pde_loss("hit3d", {"nu": 0.04}, 0.1, 2 * math.pi))


def test_bad_arguments_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="frame_dt must be finite and positive"):
        make_pde_loss("kolmogorov2d", {}, 0.0, 1.0)
    with pytest.raises(ValueError, match="nu must be finite and non-negative"):
        make_pde_loss("kolmogorov2d", {"nu": -1.0}, 0.1, 1.0)
    loss = make_pde_loss("decaying2d", {}, 0.1, 2 * math.pi)
    with pytest.raises(ValueError, match="preds shaped"):
        loss(torch.zeros(1, 1, 1, 8, 8), torch.zeros(1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ in batch or grid"):
        loss(torch.zeros(1, 1, 1, 8, 8), torch.zeros(1, 1, 1, 16, 16))
