"""A finetune job's ``refine_iterations``: after the epochs, Spectral-Refiner's few full-batch
L-BFGS iterations of the output layer alone under the H⁻¹ objective
(``models.refine.refine_output_layer``), on windows of the fine-tune's training
trajectories only (never its held-out ones, on which the before/after report scores it).
Each iteration is a ``refine_iteration`` event; the outcome a ``refine`` event and
``metrics.refine`` of the new model."""

from __future__ import annotations

from typing import Any

import torch

from models.refine import RefinementStopped, refine_output_layer
from models.windows import Windows
from workers.context import JobCancelled

# The full batch is at most this many training windows, evenly spread over them: every
# iteration evaluates the model on all of them, a few times in its line search.
REFINE_MAX_WINDOWS = 256


def refine(ctx, model, trajectories: torch.Tensor, result: dict[str, Any], config) -> dict:
    """Runs the refinement on ``model`` in place; returns what ``refine_output_layer``
    reports and the trajectories its windows came from."""
    iterations = int(ctx.params["refine_iterations"])
    train_idx = [int(i) for i in result["train_trajectories"]]
    contract = model.contract
    windows = Windows(trajectories, train_idx, contract.history, contract.out_steps)
    count = min(len(windows), REFINE_MAX_WINDOWS)
    rows = torch.linspace(0, len(windows) - 1, count).round().long().unique()
    inputs, targets = windows.batch(rows, torch.device("cpu"))
    ctx.report(
        "progress",
        {"stage": "refine", "iterations": iterations},
        message="refining the output layer (L-BFGS, H⁻¹)",
    )

    def on_iteration(event: dict[str, Any]) -> None:
        ctx.report("refine_iteration", event)

    try:
        outcome = refine_output_layer(
            model.to(ctx.device),
            inputs,
            targets,
            iterations,
            length=config.length,
            chunk_size=config.batch_size,
            should_stop=ctx.should_stop,
            on_iteration=on_iteration,
        )
    except RefinementStopped as exc:
        raise JobCancelled(ctx.job_id) from exc
    outcome["trajectories"] = train_idx
    ctx.report("refine", outcome)
    return outcome
