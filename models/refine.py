"""Spectral-Refiner's few-iteration refinement: after the epochs, the output layer alone is
fitted to the training windows by a full-batch quasi-Newton method.

With every other weight frozen, the model's output is an affine function of the output
layer's parameters θ (a spectral convolution with bias is linear in its weights, and the
residual adds a frame that does not depend on θ). The objective, over the N predicted
frames of the windows,

    J(θ) = (1/N) Σᵢ (‖ŷᵢ(θ) − yᵢ‖_{H⁻¹} / ‖yᵢ‖_{H⁻¹})²,

is then a convex quadratic in θ, and L-BFGS (``torch.optim.LBFGS`` with a strong-Wolfe
line search) closes in on its minimum in a few iterations, where stochastic first-order
steps would need many epochs. The square is there because the norm itself has a kink at
zero error, where quasi-Newton steps stall; both have the same minimiser when the targets
are reachable. Reported alongside J is the fine-tune's own loss, the mean relative H⁻¹
error. Each iteration evaluates J on every window (full batch), in chunks whose gradients
are summed, so memory is that of one chunk. The line search never accepts a step that
raises J.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from physics import norms

# Objective evaluations one iteration's strong-Wolfe line search may spend (torch's default
# for a line search of its own).
LINE_SEARCH_EVALUATIONS = 25


class RefinementStopped(Exception):
    """Raised when ``should_stop()`` returns True between iterations; the output layer keeps
    the parameters of the last finished iteration."""


def output_layer_of(model: nn.Module) -> nn.Module:
    """The model's ``output_layer`` (the spatiotemporal FNO's); ValueError for a model
    without one."""
    layer = getattr(model, "output_layer", None)
    if not isinstance(layer, nn.Module) or not any(True for _ in layer.parameters()):
        raise ValueError(
            f"{type(model).__name__} has no output layer to refine; the refinement applies "
            "to the spatiotemporal FNO (sfno)"
        )
    return layer


def full_batch(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    length: float,
    chunk_size: int,
    backward: bool,
) -> tuple[float, float]:
    """(J, mean relative H⁻¹ error) over every predicted frame of every window, evaluated
    ``chunk_size`` windows at a time; with ``backward`` the gradient of J is accumulated
    into the parameters' ``.grad``."""
    device = next(model.parameters()).device
    frames = targets.shape[0] * targets.shape[1]
    objective = mean = 0.0
    for start in range(0, inputs.shape[0], chunk_size):
        x = inputs[start : start + chunk_size].to(device)
        y = targets[start : start + chunk_size].to(device)
        with torch.set_grad_enabled(backward):
            pred = model(x).flatten(0, 1).float()
            errors = norms.relative_h_minus1(pred, y.flatten(0, 1).float(), length)
            part = errors.square().sum() / frames
        if backward:
            part.backward()
        objective += float(part.detach())
        mean += float(errors.detach().sum()) / frames
    return objective, mean


def refine_output_layer(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    iterations: int,
    *,
    length: float = 1.0,
    chunk_size: int = 64,
    history_size: int = 20,
    should_stop: Callable[[], bool] | None = None,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fits ``model.output_layer`` alone to windows ``inputs`` (N, history, C, n, n) →
    ``targets`` (N, out_steps, C, n, n) by ``iterations`` L-BFGS iterations on the full
    batch, minimising J (H⁻¹ on a periodic box of side ``length``); every other parameter
    is left exactly as it was.

    ``on_iteration`` gets ``{"iteration", "iterations", "objective"}`` after each (J where
    that iteration began: the step evaluates it anyway). Returns ``{"iterations",
    "objective_before", "objective_after", "loss_before", "loss_after" (mean relative H⁻¹
    error), "evaluations" (of J, line searches included), "windows": N}``. Raises
    :class:`RefinementStopped` when ``should_stop()`` is True before an iteration.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be non-negative, got {iterations}")
    if inputs.shape[0] != targets.shape[0] or inputs.shape[0] == 0:
        raise ValueError(
            f"need as many target windows as input windows, at least one; got "
            f"{inputs.shape[0]} and {targets.shape[0]}"
        )
    layer = output_layer_of(model)
    trainable = {id(p) for p in layer.parameters()}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(id(p) in trainable)
    model.eval()
    optimizer = torch.optim.LBFGS(
        layer.parameters(),
        lr=1.0,
        max_iter=1,  # one iteration per step() call, so a cancel is seen between them
        # The line search's budget is max_eval less the step's first evaluation; LBFGS's
        # default (max_iter·5/4 = 1) would leave it none, and every step would be refused.
        max_eval=1 + LINE_SEARCH_EVALUATIONS,
        history_size=history_size,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
    )
    evaluations = 0

    def objective() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad(set_to_none=False)
        value, _ = full_batch(model, inputs, targets, length, chunk_size, backward=True)
        return torch.tensor(value)

    try:
        before = full_batch(model, inputs, targets, length, chunk_size, backward=False)
        for done in range(1, iterations + 1):
            if should_stop is not None and should_stop():
                raise RefinementStopped(f"refinement stopped after {done - 1} iteration(s)")
            start = float(optimizer.step(objective))  # J where this iteration began
            if on_iteration is not None:
                on_iteration({"iteration": done, "iterations": iterations, "objective": start})
        after = full_batch(model, inputs, targets, length, chunk_size, backward=False)
    finally:
        optimizer.zero_grad(set_to_none=True)
        for p, flag in flags:
            p.requires_grad_(flag)
    return {
        "iterations": iterations,
        "objective_before": before[0],
        "objective_after": after[0],
        "loss_before": before[1],
        "loss_after": after[1],
        "evaluations": evaluations,
        "windows": int(inputs.shape[0]),
    }
