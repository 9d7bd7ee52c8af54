"""rollout for a channel flow (``physics.channel.flow.ChannelFlow``): the channel solver (with
the LES closure the data were made with) and optionally a 3D model trained on channel data,
stepped side by side, with running wall-unit statistics of both.

The state the user sees is the cell-centred velocity (``ChannelGrid.to_centres``), on the
grid the model was trained on (the solver grid, or its spectrally filtered x–z grid). Each
step writes one frame per source (SWMR, (3, nx, ny, nz) per frame), a ``metrics`` event
(relative L2 of the model against the filtered reference, kinetic energies), and one
``channel_stats`` event per source: the statistics accumulated over every frame so far, so
the UI's U⁺, rms, stress and spectra panels show the drift of the model's statistics live.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from app.channel_params import channel_config, output_grid
from app.db.tables import Dataset, InitialCondition, Model
from app.services.initial_conditions import load_channel_initial_condition
from models.checkpoint import load_model
from models.rollout import autoregressive_rollout
from physics.channel.fields import faces_from_centres, filter_xz
from physics.channel.solver import ChannelSolver
from physics.channel.stats import ChannelStatistics
from physics.formats.store import RolloutWriter
from workers.context import JobContext, JobError
from workers.rollout_rows import begin_rollout

DEFAULT_INTERVAL = 0.1


def _training_params(ctx: JobContext, model_row: Model | None) -> dict[str, Any]:
    if model_row is None or model_row.dataset_id is None:
        return {}
    with ctx.db.session() as session:
        dataset = session.get(Dataset, model_row.dataset_id)
    return dict(dataset.params) if dataset is not None else {}


def _statistics(result: ChannelStatistics) -> dict[str, Any] | None:
    try:
        return result.result().to_dict()
    except ValueError:  # no positive mean wall shear (a field at rest, a diverged model)
        return None


def run_channel_rollout(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    model = model_row = None
    if p["model_id"] is not None:
        with ctx.db.session() as session:
            model_row = session.get(Model, p["model_id"])
        if model_row is None:
            raise JobError(f"model {p['model_id']} no longer exists")
        model, _ = load_model(ctx.artifacts.resolve(model_row.path), device=str(ctx.device))
    training = _training_params(ctx, model_row)
    ic_row = None
    if p["initial_condition_id"] is not None:
        with ctx.db.session() as session:
            ic_row = session.get(InitialCondition, p["initial_condition_id"])
        if ic_row is None:
            raise JobError(f"initial condition {p['initial_condition_id']} no longer exists")
        snapshot = load_channel_initial_condition(ctx.artifacts, ic_row)
        nx, ny, nz = snapshot.velocity.shape[1:]
        training = {"channel_grid": [nx, ny, nz], **training}
        if snapshot.nu and "re_tau" not in training:
            training["re_tau"] = 1.0 / snapshot.nu
    # The rollout's flow (a channel flow: run_rollout sent it here) with the solver settings
    # of the data the model learned from.
    config = channel_config({"drive": "pressure", **training, "flow": p["flow"]})
    solver = ChannelSolver(config)
    grid = config.grid()
    ox, oz = output_grid(training, config)

    if ic_row is not None:
        if tuple(snapshot.velocity.shape[1:]) != (config.nx, config.ny, config.nz):
            raise JobError(
                f"the snapshot's grid {tuple(snapshot.velocity.shape[1:])} is not the solver grid "
                f"{(config.nx, config.ny, config.nz)} the model's data were made on"
            )
        y = np.sort(np.asarray(snapshot.y, dtype=np.float64))
        if not np.allclose(y, grid.y_centres.numpy(), atol=1e-6):
            raise JobError(
                "the snapshot's y points are not the solver's cell centres (tanh stretching "
                f"{config.stretching}); upload a snapshot from an Eddyscope channel dataset"
            )
        velocity = torch.as_tensor(snapshot.velocity, dtype=torch.float32)
        if snapshot.y[0] > snapshot.y[-1]:  # stored top-down
            velocity = velocity.flip(2)
        reference = solver.project(faces_from_centres(velocity[None].to(ctx.device)))
    else:
        reference = solver.initial_condition(1, seed=p["seed"], device=ctx.device)

    interval = p["interval"] or (model_row.interval if model_row else DEFAULT_INTERVAL)
    sources = ("reference", "model") if model is not None else ("reference",)
    if model is not None:
        contract = model.contract
        if contract.dims != 3 or contract.channels != 3:
            raise JobError("a channel rollout needs a 3D model of the three velocity components")
        try:
            model.config.check_grid((ox, config.ny, oz))
        except ValueError as exc:
            raise JobError(f"the channel grid does not fit the model: {exc}") from None

    # A re-run (the first worker was lost) replaces the earlier attempt's rows and frames.
    rollout_id, relative = begin_rollout(
        ctx,
        model_id=p["model_id"],
        initial_condition_id=p["initial_condition_id"],
        flow=p["flow"],
        steps=p["steps"],
        interval=interval,
        resolution=ox,
    )
    ctx.set_result({"rollout_id": rollout_id})

    coords = {
        "x": np.arange(ox) * (config.lx / ox),
        "y": grid.y_centres.numpy(),
        "z": np.arange(oz) * (config.lz / oz),
    }
    attrs = {
        "flow": p["flow"],
        "re_tau": config.re_tau,
        "nu": config.nu,
        "lx": config.lx,
        "lz": config.lz,
        "closure": config.les or "none",
        "interval": interval,
        "model_id": p["model_id"] or "",
        "initial_condition_id": p["initial_condition_id"] or "",
        "job_id": ctx.job_id,
    }
    writer = RolloutWriter(
        ctx.artifacts.resolve(relative),
        ox,
        sources,
        config.lx,
        attrs,
        field="velocity",
        frame_shape=(3, ox, config.ny, oz),
        coords=coords,
    )
    y = grid.y_centres.numpy()
    stats = {s: ChannelStatistics(y, config.nu, config.lx, config.lz) for s in sources}
    history = model.contract.history if model is not None else 1
    window: list[torch.Tensor] = []
    predictions = None
    predicted = None
    try:
        for step in range(p["steps"] + 1):
            ctx.check_cancelled()
            if step > 0:
                reference = solver.advance(reference, interval)
            seen = filter_xz(grid.to_centres(reference), ox, oz)
            if model is not None:
                if step < history:
                    predicted = seen.clone()  # the solver warms up multi-frame models
                    window.append(predicted)
                else:
                    if predictions is None:
                        predictions = autoregressive_rollout(
                            model, torch.stack(window, dim=1), p["steps"] - history + 1
                        )
                    predicted = next(predictions)
            frames = {"reference": seen[0].cpu().numpy()}
            stats["reference"].update(seen)
            metrics: dict[str, Any] = {
                "step": step,
                "t": step * interval,
                "energy_reference": float(0.5 * seen.square().sum(dim=1).mean()),
            }
            if predicted is not None:
                frames["model"] = predicted[0].cpu().numpy()
                finite = bool(torch.isfinite(predicted).all())
                if finite:
                    stats["model"].update(predicted)
                diff = (predicted - seen).flatten().norm() / seen.flatten().norm()
                metrics |= {
                    "rel_l2": float(diff),
                    "energy_model": float(0.5 * predicted.square().sum(dim=1).mean()),
                }
            writer.append(step * interval, frames)
            ctx.report(
                "metrics", metrics, progress=step / p["steps"], message=f"step {step}/{p['steps']}"
            )
            for source, accumulator in stats.items():
                result = _statistics(accumulator)
                if result is not None:
                    ctx.report(
                        "channel_stats", {"t": step * interval, "stats": result, "source": source}
                    )
    finally:
        writer.close()
    return {"rollout_id": rollout_id, "frames": p["steps"] + 1}
