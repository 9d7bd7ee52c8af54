"""rollout for a periodic-box flow (``physics.hit3d.flow.HITFlow``, hit3d): the reference LES
and optionally a 3D model trained on hit3d data, stepped side by side on the model's grid.

The reference is ``HITSolver`` on the n³ grid the model was trained on (its dataset's stored
grid; without a model the rollout's ``resolution``), with the parameters of that dataset:
ν (unless the job gives ``nu``), its forcing (the energy-holding linear forcing of the shells
1 … k_forcing) and the closure its frames need on that grid (``models.pde_loss_hit3d
.closure_for``: the data's own closure, or Smagorinsky for filtered DNS stored coarser than
its solver's grid; "none" for data stored on the grid they were solved on). A box filter
wider than the grid's own (Δ = 1.5 dx) sets the Smagorinsky length: C_s·Δ_box instead of
C_s·1.5 dx. Without a model the reference is the flow's coarse DNS at its ν.

The first frame is the initial condition made solenoidal and dealiased (``HITSolver
.project``): an uploaded one, or the flow's random field for ``seed`` (with the training
data's k_p and u_rms when it was made from that family). A model reading ``history`` frames
gets the reference's first ones, then runs on its own predictions.

Frames (SWMR, velocity (3, n, n, n) per frame, ``field`` "velocity"): at most ``MAX_FRAMES``
per source, those of steps 0, s, 2s, … and the last (``frame_stride`` s = 1 up to
``MAX_FRAMES`` − 1 steps), so a 10 000-step rollout on 128³ does not store 10 000 cubes.
Per step a ``metrics`` event: ``{"step", "t", "frame"`` (the stored frame's index, or null
for a step not stored), ``"energy_reference", "dissipation_reference"`` and, with a model,
``"rel_l2"`` (‖u_m − u_r‖/‖u_r‖ over the box and components), ``"energy_model",
"dissipation_model"}``: E = ½⟨|u|²⟩, ε = 2ν⟨SᵢⱼSᵢⱼ⟩ (resolved). At stored steps, throttled
as the Data page's (``app.hit3d_summary.Throttle``: at most one per second and 10 % of the
wall time; the last step always), one ``hit3d_stats`` event per source: ``{"source", "step",
"t", "frame", **snapshot_summary}`` (E, ε, u', λ, Re_λ, L, skewness, max |∇·u|, η, k_max·η;
E(k); vorticity PDFs), what the Rollout page's HIT panels draw.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from app.db.tables import Dataset, InitialCondition, Model
from app.hit3d_summary import Throttle, snapshot_summary
from app.jobkinds.rollout_hit3d import velocity_grid
from app.services.initial_conditions import load_initial_condition
from models.checkpoint import load_model
from models.pde_loss_hit3d import closure_for
from models.rollout import autoregressive_rollout
from physics.flows import get_flow
from physics.formats.store import RolloutWriter
from physics.hit3d import diagnostics
from physics.hit3d.grid import Grid3D
from physics.hit3d.les import Smagorinsky, filter_width
from physics.hit3d.solver import HITSolver
from workers.context import JobContext, JobError
from workers.rollout_rows import begin_rollout

DEFAULT_INTERVAL = 0.1
MAX_FRAMES = 101
SMAGORINSKY_CS = 0.17


def frame_stride(steps: int, max_frames: int = MAX_FRAMES) -> int:
    """The step stride s of the stored frames: steps 0, s, 2s, … and the last make at most
    ``max_frames`` frames."""
    return max(1, math.ceil(steps / max(max_frames - 2, 1)))


def is_stored(step: int, steps: int, stride: int) -> bool:
    return step % stride == 0 or step == steps


def reference_settings(flow, training: dict[str, Any], nu: float | None) -> dict[str, Any]:
    """What the reference LES runs with, from the training dataset's parameters
    ``training`` ({} without a model): ``nu``, ``closure``, ``forcing``, ``k_forcing``,
    ``scheme``, the data's ``filter`` and ``filter_width`` and the Smagorinsky ``cs`` (None
    for another closure)."""
    nu = float(nu or training.get("nu") or flow.nu)
    closure = closure_for(training) if training else "none"
    forcing = training.get("forcing") or "none"
    settings = {
        "nu": nu,
        "closure": closure,
        "forcing": forcing,
        "k_forcing": int(training.get("k_forcing") or flow.k_forcing),
        "scheme": training.get("scheme") or "rk4cn",
        "filter": training.get("filter") or "none",
        "filter_width": float(training.get("filter_width") or 0.0),
        "cs": SMAGORINSKY_CS if closure == "smagorinsky" else None,
    }
    return settings


def make_reference(flow, n: int, settings: dict[str, Any]) -> HITSolver:
    """The reference solver of ``reference_settings`` on the n³ grid; the Smagorinsky
    coefficient is scaled so that C_s·Δ uses a box filter's width when it is wider than the
    grid's own Δ = 1.5 dx. Fills ``settings["cs"]`` with the coefficient used."""
    grid = Grid3D(n, flow.length)
    closure: Any = None if settings["closure"] == "none" else settings["closure"]
    if closure == "smagorinsky":
        width = settings["filter_width"] if settings["filter"] == "box" else 0.0
        cs = SMAGORINSKY_CS * max(1.0, width / filter_width(grid))
        settings["cs"] = cs
        closure = Smagorinsky(cs)
    forcing = None if settings["forcing"] == "none" else settings["forcing"]
    return HITSolver(
        grid,
        settings["nu"],
        forcing,
        hold_energy=forcing == "linear",
        k_forcing=settings["k_forcing"],
        closure=closure,
        scheme=settings["scheme"],
    )


def step_metrics(
    step: int,
    t: float,
    frame: int | None,
    reference: torch.Tensor,
    model: torch.Tensor | None,
    nu: float,
    length: float,
) -> dict[str, Any]:
    """The metrics event of one step, from the frames as stored (float32 (1, 3, n, n, n)),
    evaluated in float64; non-finite values (a diverged model) are null."""

    def number(x: torch.Tensor) -> float | None:
        value = float(x)
        return value if math.isfinite(value) else None

    r = reference.double()
    out: dict[str, Any] = {
        "step": step,
        "t": t,
        "frame": frame,
        "energy_reference": number(diagnostics.kinetic_energy(r)[0]),
        "dissipation_reference": number(diagnostics.dissipation(r, nu, length)[0]),
    }
    if model is not None:
        m = model.double()
        out |= {
            "rel_l2": number((m - r).flatten().norm() / r.flatten().norm()),
            "energy_model": number(diagnostics.kinetic_energy(m)[0]),
            "dissipation_model": number(diagnostics.dissipation(m, nu, length)[0]),
        }
    return out


def reference_for(
    base_flow, training: dict[str, Any], nu: float | None, n: int
) -> tuple[Any, dict[str, Any], HITSolver]:
    """The reference LES of a hit3d rollout or comparison: (the flow at the reference's ν,
    its ``reference_settings`` (``cs`` filled in), the ``HITSolver`` on the n³ grid), from
    the training dataset's parameters ``training`` ({}: the flow's coarse DNS)."""
    settings = reference_settings(base_flow, training, nu)
    flow = base_flow.variant(settings["nu"])
    return flow, settings, make_reference(flow, n, settings)


def initial_field(ctx: JobContext, flow, p: dict[str, Any], training: dict[str, Any]):
    """The first velocity (1, 3, n, n, n) on ``ctx.device``, n = ``p["resolution"]``: the
    uploaded ``p["initial_condition_id"]``, else the flow's random field for ``p["seed"]``
    (with the training data's k_p and u_rms when they were made from that family)."""
    n = p["resolution"]
    if p["initial_condition_id"] is None:
        spectrum = {}
        if training.get("initial_condition") == "random":
            spectrum = {k: training[k] for k in ("k_peak", "u_rms") if training.get(k)}
        return flow.make_initial_condition(
            "random", n, 1, p["seed"], ctx.device, torch.float32, **spectrum
        )
    with ctx.db.session() as session:
        ic = session.get(InitialCondition, p["initial_condition_id"])
    if ic is None:
        raise JobError(f"initial condition {p['initial_condition_id']} no longer exists")
    array = np.asarray(load_initial_condition(ctx.artifacts, ic), dtype=np.float32)
    if array.ndim == 4 and array.shape[0] != 3 and array.shape[-1] == 3:
        array = np.moveaxis(array, -1, 0)  # components last → first
    if tuple(array.shape) != (3, n, n, n):
        raise JobError(
            f"the initial condition's velocity {tuple(array.shape)} is not (3, {n}, {n}, {n}); "
            f"its grid {velocity_grid(array.shape)} is not the rollout's {n}³"
        )
    return torch.from_numpy(array).to(ctx.device)[None]


def report_statistics(
    ctx: JobContext,
    throttle: Throttle,
    frames: dict[str, torch.Tensor],
    flow,
    step: int,
    t: float,
    frame: int,
    final: bool,
) -> None:
    """One ``hit3d_stats`` event per source of stored frame ``frame`` when the throttle
    lets it (always at the ``final`` step); a source that diverged or stopped (non-finite
    velocity) has none."""
    if not throttle.due(final=final):
        return
    start = throttle.now()
    for source, velocity in frames.items():
        if not torch.isfinite(velocity).all():
            continue
        summary = snapshot_summary(velocity, flow.nu, flow.length)
        ctx.report(
            "hit3d_stats", {"source": source, "step": step, "t": t, "frame": frame, **summary}
        )
    throttle.spent(throttle.now() - start)


def run_hit3d_rollout(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    base_flow = get_flow(p["flow"])
    model = model_row = None
    training: dict[str, Any] = {}
    if p["model_id"] is not None:
        with ctx.db.session() as session:
            model_row = session.get(Model, p["model_id"])
            dataset = (
                session.get(Dataset, model_row.dataset_id)
                if model_row is not None and model_row.dataset_id
                else None
            )
            training = dict(dataset.params or {}) if dataset is not None else {}
        if model_row is None:
            raise JobError(f"model {p['model_id']} no longer exists")
        model_dir = ctx.artifacts.resolve(model_row.path)
        if not model_dir.is_dir():
            raise JobError(
                f"the files of model {model_row.id} are missing from the artifact store "
                f"({model_dir}); check that workers mount the same artifact volume as the app"
            )
        model, _ = load_model(model_dir, device=str(ctx.device))
        model.eval()
        contract = model.contract
        if contract.dims != 3 or contract.channels != 3:
            raise JobError("a hit3d rollout needs a 3D model of the three velocity components")
    n = p["resolution"]
    flow, settings, solver = reference_for(base_flow, training, p.get("nu"), n)
    if model is not None:
        try:
            model.config.check_grid((n, n, n))
        except ValueError as exc:
            raise JobError(f"the {n}³ grid does not fit the model: {exc}") from None
    interval = p["interval"] or (model_row.interval if model_row else DEFAULT_INTERVAL)
    steps = p["steps"]
    stride = frame_stride(steps)

    # A re-run (the first worker was lost) replaces the earlier attempt's rows and frames.
    rollout_id, relative = begin_rollout(
        ctx,
        model_id=p["model_id"],
        initial_condition_id=p["initial_condition_id"],
        flow=flow.name,
        steps=steps,
        interval=interval,
        resolution=n,
    )
    ctx.set_result({"rollout_id": rollout_id})
    ctx.report(
        "rollout_setup",
        {
            "rollout_id": rollout_id,
            "model_id": p["model_id"],
            "model_name": model_row.name if model_row is not None else None,
            "initial_condition_id": p["initial_condition_id"],
            "interval": interval,
            "steps": steps,
            "resolution": n,
            "frame_stride": stride,
            "reference": settings,
            "input_fit": None,
            "warnings": [],
        },
    )

    sources = ("reference", "model") if model is not None else ("reference",)
    coords = {axis: np.arange(n) * (flow.length / n) for axis in ("x", "y", "z")}
    attrs = {
        "flow": flow.name,
        "nu": flow.nu,
        "length": flow.length,
        "closure": settings["closure"],
        "smagorinsky_cs": settings["cs"] or 0.0,
        "forcing": settings["forcing"],
        "data_filter": settings["filter"],
        "data_filter_width": settings["filter_width"],
        "frame_stride": stride,
        "interval": interval,
        "model_id": p["model_id"] or "",
        "initial_condition_id": p["initial_condition_id"] or "",
        "job_id": ctx.job_id,
    }
    writer = RolloutWriter(
        ctx.artifacts.resolve(relative),
        n,
        sources,
        flow.length,
        attrs,
        field="velocity",
        frame_shape=(3, n, n, n),
        coords=coords,
    )
    throttle = Throttle()
    reference = solver.advance(initial_field(ctx, flow, p, training), 0.0)
    history = model.contract.history if model is not None else 1
    window: list[torch.Tensor] = []
    predictions = None
    predicted = None
    stored = 0
    try:
        for step in range(steps + 1):
            ctx.check_cancelled()
            if step > 0:
                reference = solver.advance(reference, interval)
                if not torch.isfinite(reference).all():
                    raise JobError("the reference solver diverged; try a shorter interval")
            if model is not None:
                if step < history:
                    predicted = reference.clone()  # the solver warms up multi-frame models
                    window.append(predicted)
                else:
                    if predictions is None:
                        predictions = autoregressive_rollout(
                            model, torch.stack(window, dim=1), steps - history + 1
                        )
                    predicted = next(predictions)
            frames = {"reference": reference[0].float().cpu()}
            if predicted is not None:
                frames["model"] = predicted[0].float().cpu()
            t = step * interval
            frame = None
            if is_stored(step, steps, stride):
                frame = stored
                writer.append(t, {k: v.numpy() for k, v in frames.items()})
                stored += 1
            ctx.report(
                "metrics",
                step_metrics(
                    step,
                    t,
                    frame,
                    frames["reference"][None],
                    frames["model"][None] if "model" in frames else None,
                    flow.nu,
                    flow.length,
                ),
                progress=step / steps,
                message=f"step {step}/{steps}",
            )
            if frame is not None:
                report_statistics(ctx, throttle, frames, flow, step, t, frame, step == steps)
    finally:
        writer.close()
    return {"rollout_id": rollout_id, "frames": stored, "steps": steps, "frame_stride": stride}
