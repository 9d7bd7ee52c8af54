"""A finetune job's before/after report (``models.finetune_report``), adapted to the job.

Before the first epoch the base model, as registered, is scored on the trajectories the
fine-tune will hold out (its split is known in advance, ``held_out_split``) and a
``finetune_baseline`` event says how good it was; after the last epoch the fine-tuned
model is scored on the same trajectories and horizons, and the report (a ``finetune_report``
event, and ``metrics.finetune_report`` of the new model) puts the two side by side with
persistence. 2D models only: the H⁻¹ norm and the rollout skill are defined for them.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import torch

from models.checkpoint import load_model
from models.finetune_report import (
    finetune_report,
    held_out_split,
    model_errors,
    report_horizons,
)
from physics.diagnostics import kinetic_energy

# The report scores at most this many held-out trajectories (all their windows, and one
# rollout each): enough for a mean, small next to an epoch's validation.
REPORT_TRAJECTORIES = 8


def json_safe(value: Any) -> Any:
    """``value`` with every NaN/Inf float, however deep, made None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _energy(length: float):
    return lambda w: kinetic_energy(w.double(), length)


def baseline(ctx, base, dataset, trajectories: torch.Tensor, config) -> dict[str, Any] | None:
    """The base model's errors on the fine-tune's held-out trajectories, before training;
    reported as a ``finetune_baseline`` event. None for 3D models (no report); a dict with
    an ``error`` sentence when there is nothing held out or the trajectories are too short.
    The returned state (the base model on the CPU among it) is what :func:`report` needs;
    None too for a train job (no ``base``)."""
    if base is None or trajectories.ndim != 5:
        return None
    model, info = load_model(ctx.artifacts.resolve(base.path), device=ctx.device)
    train_idx, held = held_out_split(trajectories.shape[0], config.val_fraction, config.seed)
    state: dict[str, Any] = {"base": {"id": base.id, "name": base.name}}
    if train_idx == held:
        state["error"] = (
            f"nothing held out ({trajectories.shape[0]} trajectory(ies), val_fraction "
            f"{config.val_fraction:g}): no before/after report on data the fine-tune trains on"
        )
        ctx.report("finetune_baseline", state)
        return state
    chosen = held[:REPORT_TRAJECTORIES]
    try:
        horizons = report_horizons(trajectories.shape[1], model.contract.history)
    except ValueError as exc:
        state["error"] = str(exc)
        ctx.report("finetune_baseline", state)
        return state
    ctx.report("progress", {"stage": "finetune_baseline"}, message="scoring the base model")
    before = model_errors(
        model,
        trajectories[chosen],
        horizons,
        length=config.length,
        batch_size=config.batch_size,
        energy=_energy(config.length),
    )
    metadata = info.get("metadata") or {}
    if metadata.get("dataset_id") == dataset.id:
        # The base may have trained on some of the fine-tune's held-out trajectories (another
        # seed or val_fraction); the report says so rather than hiding it.
        seen = sorted(set(chosen) & {int(i) for i in metadata.get("train_trajectories") or []})
        if seen:
            state["base_trained_on"] = seen
    state |= {"trajectories": chosen, "horizons": horizons, "before": asdict(before)}
    ctx.report("finetune_baseline", json_safe(state))
    state |= {"model": model.cpu(), "errors": before}
    return state


def report(
    ctx,
    state: dict[str, Any],
    trained,
    trajectories: torch.Tensor,
    result: dict[str, Any],
    config,
    interval: float,
) -> dict[str, Any]:
    """The before/after report of a fine-tune whose baseline ``state`` was taken before
    training; reported as a ``finetune_report`` event and returned (JSON) for the metrics."""
    public = {k: v for k, v in state.items() if k not in ("model", "errors", "before")}
    if state.get("error"):
        return public
    held = [int(i) for i in result["val_trajectories"]][:REPORT_TRAJECTORIES]
    base = state["model"].to(ctx.device)
    # The trainer's split is the one predicted; were it not, the base is scored again on
    # the trajectories actually held out rather than reporting on two different sets.
    before = state["errors"] if held == state["trajectories"] else None
    ctx.report("progress", {"stage": "finetune_report"}, message="before/after report")
    outcome = finetune_report(
        base,
        trained.to(ctx.device),
        trajectories,
        held,
        horizons=state["horizons"],
        interval=interval,
        length=config.length,
        batch_size=config.batch_size,
        energy=_energy(config.length),
        before=before,
    )
    state["model"] = base.cpu()
    out = json_safe({**public, **outcome.to_dict(), "loss": config.loss})
    ctx.report("finetune_report", out)
    return out
