"""compare for the periodic box (hit3d): several 3D models, each at its inference precision,
rolled out side by side beside one reference LES on the models' n³ grid.

The reference is the one a hit3d rollout of the first model would run
(``workers.runners.rollout_hit3d.reference_for``: the training data's ν, closure, forcing,
filter width); the job's check (``app.jobkinds.compare_hit3d``) made sure every model was
trained on data that agree on these. The first frame is an uploaded velocity or the flow's
random field for ``seed`` (``rollout_hit3d.initial_field``), made solenoidal by the solver. A
model reading ``history`` frames gets the reference's first ones, then its own predictions
(``models.channel_column.ModelColumn``, which also times each call, GPU-synchronised).

Frames (``RolloutWriter``, ``velocity`` (3, n, n, n)): sources ``reference`` and
``model:<i>``, at most ``rollout_hit3d.MAX_FRAMES`` (steps 0, s, 2s, … and the last); a
stopped model's frames are NaN.

Events:

* ``compare_setup`` once: ``{"geometry": "hit3d", "flow", "steps", "interval", "nu",
  "rollout_id", "resolution", "frame_stride", "reference": true, "reference_les": {...the
  reference's settings}, "models": [{"index", "model_id", "name", "arch", "parameters",
  "precision", "resolution", "history", "device", "status", "message"}],
  "initial_condition": {"kind": "upload" | "random", ...}}``.
* ``metrics`` every step k = 0 … steps: ``{"step", "t", "frame"`` (stored frame or null),
  ``"reference": {"energy", "dissipation", "ms"}, "models": {"<i>": {"rel_l2", "energy",
  "dissipation", "ms", "status", "message"}}}``; rel L² = ‖u_m − u_r‖/‖u_r‖ over the box
  and components, E = ½⟨|u|²⟩, ε = 2ν⟨SᵢⱼSᵢⱼ⟩, all from the frames as stored (float32),
  evaluated in float64 (``rollout_hit3d.step_metrics``); ``ms`` null where nothing ran.
* ``hit3d_stats`` per source at stored steps, throttled (``app.hit3d_summary.Throttle``; the
  last step always): ``{"source", "step", "t", "frame", **snapshot_summary}``.
* ``summary`` last (also the result's ``summary``): ``{"geometry": "hit3d", "columns":
  [{"index", "model_id", "name", "label", "arch", "precision", "parameters", "status",
  "message", "stopped_at", "errors_at": {"<t>": rel_l2}, "model_ms", "speedup"}],
  "reference_ms", "report_times", "initial_condition"}``: errors at the report times
  (default 25, 50, 100 % of the horizon, rounded to whole steps), median ms per step of each
  model and of the LES on this worker, speedup = reference_ms / model_ms. (The list is
  ``columns``, not the 2D summary's ``rows``.)

Guards: a prediction with NaN/Inf, or whose energy exceeds ``divergence_factor`` × the
reference's, stops that model ("diverged at step k"); a model that cannot load or run is
"failed"; the others go on. If none can run the job fails after its setup event.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from app.db.tables import Dataset, InitialCondition
from app.hit3d_summary import Throttle
from models.channel_column import ModelColumn, synchronize
from physics.flows import get_flow
from physics.formats.store import RolloutWriter
from workers.context import JobContext, JobError
from workers.rollout_rows import begin_rollout
from workers.runners.compare import report_steps
from workers.runners.compare_channel import ModelEntry, _clean, _load_models, _prepare
from workers.runners.rollout_hit3d import (
    frame_stride,
    initial_field,
    is_stored,
    reference_for,
    report_statistics,
    step_metrics,
)


def _training(ctx: JobContext, entries: list[ModelEntry]) -> dict[str, Any]:
    """The parameters of the first model's dataset that still exists (the reference's)."""
    for entry in entries:
        if entry.dataset_id:
            with ctx.db.session() as session:
                dataset = session.get(Dataset, entry.dataset_id)
            if dataset is not None:
                return dict(dataset.params or {})
    raise JobError(
        "none of the models' training datasets exists any more; a hit3d comparison takes its "
        "reference LES from them"
    )


def _ic_info(ctx: JobContext, p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("initial_condition_id"):
        return {"kind": "random", "seed": p["seed"]}
    with ctx.db.session() as session:
        ic = session.get(InitialCondition, p["initial_condition_id"])
    name = ic.name if ic is not None else None
    return {"kind": "upload", "initial_condition_id": p["initial_condition_id"], "name": name}


def _setup_row(entry: ModelEntry, n: int) -> dict[str, Any]:
    runner = entry.runner
    return {
        "index": entry.index,
        "model_id": entry.model_id,
        "name": entry.name,
        "arch": entry.arch,
        "parameters": entry.parameters,
        "precision": entry.precision,
        "resolution": n,
        "history": entry.history,
        "device": runner.device.type if runner is not None else None,
        "status": entry.status,
        "message": entry.message,
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_hit3d_compare(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    steps, interval = int(p["steps"]), float(p["interval"])
    n = int(p["resolution"])
    entries = _load_models(ctx, p)
    training = _training(ctx, entries)
    flow, settings, solver = reference_for(get_flow(p["flow"]), training, None, n)
    for entry in entries:
        if entry.runner is not None:
            _prepare(entry, (n, n, n), ctx.device)
    stride = frame_stride(steps)
    sources = ["reference", *(entry.key for entry in entries)]
    source_rows = [{"name": "reference", "role": "reference", "resolution": n}] + [
        {
            "name": entry.key,
            "role": "model",
            "resolution": n,
            "index": entry.index,
            "model_id": entry.model_id,
            "precision": entry.precision,
            "label": entry.label,
        }
        for entry in entries
    ]
    rollout_id, relative = begin_rollout(
        ctx,
        model_id=None,
        initial_condition_id=p.get("initial_condition_id"),
        flow=flow.name,
        steps=steps,
        interval=interval,
        resolution=n,
        kind="compare",
        sources=source_rows,
    )
    ctx.set_result({"rollout_id": rollout_id})
    ic_info = _ic_info(ctx, p)
    setup = {
        "geometry": "hit3d",
        "flow": flow.name,
        "steps": steps,
        "interval": interval,
        "nu": flow.nu,
        "rollout_id": rollout_id,
        "resolution": n,
        "frame_stride": stride,
        "reference": True,
        "reference_les": settings,
        "models": [_setup_row(entry, n) for entry in entries],
        "initial_condition": ic_info,
    }
    ctx.report("compare_setup", _clean(setup))
    if not any(entry.runner is not None for entry in entries):
        raise JobError(
            "no model could run: " + "; ".join(f"entry {e.index}: {e.message}" for e in entries)
        )

    attrs = {
        "kind": "compare",
        "geometry": "hit3d",
        "flow": flow.name,
        "nu": flow.nu,
        "length": flow.length,
        "closure": settings["closure"],
        "smagorinsky_cs": settings["cs"] or 0.0,
        "forcing": settings["forcing"],
        "frame_stride": stride,
        "interval": interval,
        "initial_condition_id": p.get("initial_condition_id") or "",
        "job_id": ctx.job_id,
    }
    coords = {axis: np.arange(n) * (flow.length / n) for axis in ("x", "y", "z")}
    writer = RolloutWriter(
        ctx.artifacts.resolve(relative),
        n,
        tuple(sources),
        flow.length,
        attrs,
        field="velocity",
        frame_shape=(3, n, n, n),
        coords=coords,
    )
    columns = {
        e.key: ModelColumn(e.runner, e.history, label=e.label, model_id=e.model_id)
        for e in entries
        if e.runner is not None
    }
    stopped_at: dict[str, int] = {}
    model_ms: dict[str, list[float]] = {e.key: [] for e in entries}
    reference_ms: list[float] = []
    rel_l2: dict[str, dict[int, float | None]] = {e.key: {} for e in entries}
    blank = torch.full((3, n, n, n), float("nan"))
    throttle = Throttle()
    warmup: list[torch.Tensor] = []
    stored = 0
    device = ctx.device
    reference = solver.advance(initial_field(ctx, flow, p, training), 0.0)
    try:
        for step in range(steps + 1):
            ctx.check_cancelled()
            ref_ms = None
            if step > 0:
                synchronize(device)
                began = time.perf_counter()
                reference = solver.advance(reference, interval)
                synchronize(device)
                ref_ms = 1000.0 * (time.perf_counter() - began)
                reference_ms.append(ref_ms)
                if not torch.isfinite(reference).all():
                    raise JobError("the reference solver diverged; try a shorter interval")
            ref_frame = reference[0].float().cpu()
            warmup.append(reference.float())
            frames: dict[str, torch.Tensor] = {"reference": ref_frame}
            rows: dict[str, dict[str, Any]] = {}
            ref_metrics = step_metrics(step, 0.0, None, ref_frame[None], None, flow.nu, flow.length)
            for entry in entries:
                key, ms, predicted = entry.key, None, None
                column = columns.get(key)
                if column is not None and entry.status == "running":
                    try:
                        if step < column.history:
                            predicted = ref_frame  # the solver warms up multi-frame models
                            if step == column.history - 1:
                                column.start(warmup[: column.history])
                        else:
                            predicted = column.advance(interval)[0].float().cpu()
                            ms = column.last_ms
                            model_ms[key].append(ms)
                    except Exception as exc:  # its forward pass failed: the others go on
                        entry.fail(f"the model failed at step {step}: {exc}")
                        stopped_at[key] = step
                        predicted = None
                if predicted is None:
                    frames[key] = blank
                    rows[str(entry.index)] = {
                        "rel_l2": None,
                        "energy": None,
                        "dissipation": None,
                        "ms": None,
                        "status": entry.status,
                        "message": entry.message,
                    }
                    continue
                frames[key] = predicted
                m = step_metrics(step, 0.0, None, ref_frame[None], predicted[None], flow.nu,
                                 flow.length)  # fmt: skip
                energy, energy_ref = m["energy_model"], ref_metrics["energy_reference"]
                if energy is None or (
                    energy_ref is not None and energy > p["divergence_factor"] * energy_ref
                ):
                    entry.status, entry.message = "diverged", f"diverged at step {step}"
                    stopped_at[key] = step
                    columns.pop(key, None)
                rel_l2[key][step] = m["rel_l2"]
                rows[str(entry.index)] = {
                    "rel_l2": m["rel_l2"],
                    "energy": energy,
                    "dissipation": m["dissipation_model"],
                    "ms": ms,
                    "status": entry.status,
                    "message": entry.message,
                }
            if len(warmup) > max((e.history for e in entries), default=1):
                warmup.pop()  # only the first frames are ever read
            t = step * interval
            frame = None
            if is_stored(step, steps, stride):
                frame = stored
                writer.append(t, {k: v.numpy() for k, v in frames.items()})
                stored += 1
            ctx.report(
                "metrics",
                _clean(
                    {
                        "step": step,
                        "t": t,
                        "frame": frame,
                        "reference": {
                            "energy": ref_metrics["energy_reference"],
                            "dissipation": ref_metrics["dissipation_reference"],
                            "ms": ref_ms,
                        },
                        "models": rows,
                    }
                ),
                progress=step / steps,
                message=f"step {step}/{steps}",
            )
            if frame is not None:
                report_statistics(ctx, throttle, frames, flow, step, t, frame, step == steps)
    finally:
        writer.close()

    chosen = report_steps(p, interval)
    solver_ms = _median(reference_ms)
    out_columns = []
    for entry in entries:
        if entry.status == "running":
            entry.status = "completed"
        ms = _median(model_ms[entry.key])
        out_columns.append(
            {
                "index": entry.index,
                "key": entry.key,
                "model_id": entry.model_id,
                "name": entry.name,
                "label": entry.label,
                "arch": entry.arch,
                "precision": entry.precision,
                "parameters": entry.parameters,
                "status": entry.status,
                "message": entry.message,
                "stopped_at": stopped_at.get(entry.key),
                "errors_at": {f"{s * interval:g}": rel_l2[entry.key].get(s) for s in chosen},
                "model_ms": ms,
                "speedup": solver_ms / ms if solver_ms and ms else None,
            }
        )
    summary = _clean(
        {
            "geometry": "hit3d",
            "columns": out_columns,
            "reference_ms": solver_ms,
            "report_times": [s * interval for s in chosen],
            "initial_condition": ic_info,
        }
    )
    ctx.report("summary", summary, progress=1.0)
    return {
        "rollout_id": rollout_id,
        "frames": stored,
        "frame_stride": stride,
        "interval": interval,
        "nu": flow.nu,
        "initial_condition": ic_info,
        "summary": summary,
    }
