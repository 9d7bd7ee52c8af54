"""rollout: a model stepped autoregressively beside the reference solver, frame by frame.

Once, before the first frame, a ``rollout_setup`` event: ``{"rollout_id", "model_id",
"model_name", "initial_condition_id", "interval", "steps", "resolution", "input_fit",
"warnings"}``, where ``input_fit`` is ``models.input_stats.input_fit`` of the starting field
against the model's training inputs (null without a model) and ``warnings`` its message
when the start is far from them ([] otherwise).

Each step appends one frame per source to a SWMR HDF5 file (visible to readers at once)
and records one ``metrics`` event: relative L2 of model vs reference, kinetic energy and
enstrophy of both, and both energy spectra.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from app.db.tables import Dataset, InitialCondition, Model
from app.services.flows import is_channel_flow, is_hit3d_flow
from models.checkpoint import load_model
from models.input_stats import field_summary, input_fit
from models.rollout import autoregressive_rollout
from physics.diagnostics import enstrophy, kinetic_energy, relative_l2
from physics.flows import get_flow
from physics.formats.store import RolloutWriter
from physics.spectra import energy_spectrum
from workers.context import JobContext, JobError
from workers.rollout_rows import begin_rollout

DEFAULT_INTERVAL = 0.25


def _round(values: torch.Tensor) -> list[float]:
    # Six significant digits keep the event rows small without losing anything a plot shows.
    return [float(f"{v:.6g}") for v in values.tolist()]


def step_metrics(
    step: int, t: float, reference: torch.Tensor, model: torch.Tensor | None, length: float
) -> dict[str, Any]:
    k, e_ref = energy_spectrum(reference, length)
    out: dict[str, Any] = {
        "step": step,
        "t": t,
        "energy_reference": float(kinetic_energy(reference, length)[0]),
        "enstrophy_reference": float(enstrophy(reference)[0]),
        "k": [int(x) for x in k.tolist()],
        "spectrum_reference": _round(e_ref[0]),
    }
    if model is not None:
        _, e_model = energy_spectrum(model, length)
        out |= {
            "rel_l2": float(relative_l2(model, reference)[0]),
            "energy_model": float(kinetic_energy(model, length)[0]),
            "enstrophy_model": float(enstrophy(model)[0]),
            "spectrum_model": _round(e_model[0]),
        }
    return out


def _initial_field(ctx: JobContext, flow, p: dict[str, Any]) -> torch.Tensor:
    if p["initial_condition_id"] is None:
        return flow.random_initial_condition(
            p["resolution"], batch=1, seed=p["seed"], device=ctx.device
        )
    with ctx.db.session() as session:
        ic = session.get(InitialCondition, p["initial_condition_id"])
    if ic is None:
        raise JobError(f"initial condition {p['initial_condition_id']} no longer exists")
    array = np.load(ctx.artifacts.resolve(ic.path), allow_pickle=False)
    return torch.from_numpy(array).to(ctx.device, torch.float32)[None, None]


def _training_viscosity(ctx: JobContext, model_row: Model | None) -> float | None:
    """The viscosity of the data a model learned from, so its reference matches it."""
    if model_row is None or model_row.dataset_id is None:
        return None
    with ctx.db.session() as session:
        dataset = session.get(Dataset, model_row.dataset_id)
    return dataset.params.get("nu") if dataset is not None else None


def run_rollout(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    if is_channel_flow(p["flow"]):
        from workers.runners.rollout_channel import run_channel_rollout

        return run_channel_rollout(ctx)
    if is_hit3d_flow(p["flow"]):
        from workers.runners.rollout_hit3d import run_hit3d_rollout

        return run_hit3d_rollout(ctx)
    flow = get_flow(p["flow"])
    model = None
    model_row = None
    if p["model_id"] is not None:
        with ctx.db.session() as session:
            model_row = session.get(Model, p["model_id"])
        if model_row is None:
            raise JobError(f"model {p['model_id']} no longer exists")
        model_dir = ctx.artifacts.resolve(model_row.path)
        if not model_dir.is_dir():
            raise JobError(
                f"the files of model {model_row.id} are missing from the artifact store "
                f"({model_dir}); check that workers mount the same artifact volume as the app"
            )
        model, _info = load_model(model_dir, device=str(ctx.device))
        model.eval()
    interval = p["interval"] or (model_row.interval if model_row else DEFAULT_INTERVAL)
    flow = flow.variant(p.get("nu") or _training_viscosity(ctx, model_row) or flow.nu)

    w0 = _initial_field(ctx, flow, p)
    n = w0.shape[-1]
    if model is not None:
        try:
            model.config.check_grid((n, n))
        except ValueError as exc:
            raise JobError(
                f"the initial condition's {n}×{n} grid does not fit the model: {exc}"
            ) from None
    solver = flow.make_solver(n, device=ctx.device, dtype=torch.float32)

    # A re-run (the first worker was lost) replaces the earlier attempt's rows and frames.
    rollout_id, relative = begin_rollout(
        ctx,
        model_id=p["model_id"],
        initial_condition_id=p["initial_condition_id"],
        flow=flow.name,
        steps=p["steps"],
        interval=interval,
        resolution=n,
    )
    ctx.set_result({"rollout_id": rollout_id})

    fit = None
    if model_row is not None:
        stats = (model_row.metrics or {}).get("input_stats")
        fit = input_fit(field_summary(w0.cpu(), flow.length), stats, model_row.name)
    ctx.report(
        "rollout_setup",
        {
            "rollout_id": rollout_id,
            "model_id": p["model_id"],
            "model_name": model_row.name if model_row is not None else None,
            "initial_condition_id": p["initial_condition_id"],
            "interval": interval,
            "steps": p["steps"],
            "resolution": n,
            "input_fit": fit,
            "warnings": [fit["message"]] if fit and fit["far"] else [],
        },
    )

    sources = ("reference", "model") if model is not None else ("reference",)
    attrs = {
        "flow": flow.name,
        "nu": flow.nu,
        "interval": interval,
        "model_id": p["model_id"] or "",
        "initial_condition_id": p["initial_condition_id"] or "",
        "job_id": ctx.job_id,
    }
    writer = RolloutWriter(ctx.artifacts.resolve(relative), n, sources, flow.length, attrs)
    reference = w0
    predicted = w0.clone() if model is not None else None
    # A model that reads `history` frames starts from the reference's first `history`
    # frames (the solver warms it up); from then on it runs on its own predictions.
    history = model.contract.history if model is not None else 1
    warmup: list[torch.Tensor] = [w0]
    frames_of_model = None
    try:
        for step in range(p["steps"] + 1):
            if step > 0:
                reference = solver.advance(reference, interval)
                if model is not None and step < history:
                    predicted = reference.clone()
                    warmup.append(predicted)
                elif model is not None:
                    if frames_of_model is None:
                        window = torch.stack(warmup, dim=1)  # (1, history, 1, n, n)
                        frames_of_model = autoregressive_rollout(
                            model, window, p["steps"] - history + 1
                        )
                    predicted = next(frames_of_model)
            t = step * interval
            frames = {"reference": reference[0, 0].cpu().numpy()}
            if predicted is not None:
                frames["model"] = predicted[0, 0].cpu().numpy()
            writer.append(t, frames)
            ctx.report(
                "metrics",
                step_metrics(step, t, reference, predicted, flow.length),
                progress=step / p["steps"],
                message=f"step {step}/{p['steps']}",
            )
            if not torch.isfinite(reference).all():
                raise JobError("the reference solver diverged; try a shorter interval")
    finally:
        writer.close()
    return {"rollout_id": rollout_id, "frames": p["steps"] + 1}
