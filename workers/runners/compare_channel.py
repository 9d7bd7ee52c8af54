"""compare for a channel flow: 3D models trained on filtered channel data rolled out beside
the reference (the fine channel solver, filtered onto the models' coarse grid) and beside
LES baselines (the channel solver on the coarse grid with a closure), all on one grid.

This is the job adapter of ``models.channel_compare.ChannelComparison`` (the engine; the
columns are ``physics.channel.columns`` and ``models.channel_column``). It reads the rows,
loads the models at their precisions, takes the reference's settings (Re_τ, drive, closure,
box, filter, grids) from the first model's dataset, picks the initial condition (an
uploaded snapshot on the fine or the coarse grid, the first frame of a stored trajectory,
or a random solver field), writes the frames (``RolloutWriter``: ``velocity`` frames
(3, ox, oy, oz), sources ``reference`` and each column key) and reports the events of
docs/channel_compare_contract.md: ``compare_setup`` once, ``metrics`` every step,
``channel_stats`` per source when due, ``summary`` last (also the result's ``summary``).

A model that cannot run (missing files, a precision this worker cannot give) is listed with
status "failed" and its message, its frames NaN and its metrics null; the others go on. If
no model can run the job fails after its setup event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
import torch

from app.channel_params import (
    channel_config,
    channel_coords,
    channel_filter,
    filter_attrs,
    stored_y_grid,
    training_grid,
)
from app.db.tables import Dataset, InitialCondition, Model
from app.services.initial_conditions import load_channel_initial_condition
from models.channel_column import ModelColumn
from models.channel_compare import ChannelComparison
from models.checkpoint import load_model
from models.quantize import InferenceModel, PrecisionUnavailable, prepare
from physics.channel.columns import CLOSURE_LABELS, CoarseLES, FilteredReference
from physics.channel.skill import PROFILES, Guard
from physics.formats.store import RolloutWriter
from workers.context import JobContext, JobError
from workers.rollout_rows import begin_rollout

SPECTRA_YPLUS = (5.0, 15.0, 30.0, 100.0)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/Inf become None, tuples lists, numpy scalars floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float | np.floating):
        return _num(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class ModelEntry:
    """One (model, precision) entry of the job and what became of it."""

    index: int
    model_id: str
    precision: str
    name: str = ""
    arch: str = ""
    parameters: int = 0
    dataset_id: str | None = None
    metadata: dict[str, Any] | None = None
    runner: InferenceModel | None = None
    history: int = 1
    out_steps: int = 1
    status: str = "running"
    message: str | None = None

    @property
    def key(self) -> str:
        return f"model:{self.index}"

    @property
    def label(self) -> str:
        name = self.name or self.model_id
        return name if self.precision == "float32" else f"{name} ({self.precision})"

    def fail(self, message: str) -> None:
        self.status, self.message, self.runner = "failed", message, None


def _load_models(ctx: JobContext, p: dict[str, Any]) -> list[ModelEntry]:
    entries = []
    for index, item in enumerate(p["models"]):
        entry = ModelEntry(index, item["model_id"], item["precision"])
        entries.append(entry)
        with ctx.db.session() as session:
            row = session.get(Model, item["model_id"])
        if row is None:
            entry.fail(f"model {item['model_id']} no longer exists")
            continue
        entry.name, entry.arch = row.name, row.arch
        entry.parameters = int(row.parameter_count or 0)
        entry.dataset_id = row.dataset_id
        directory = ctx.artifacts.resolve(row.path)
        if not directory.is_dir():
            entry.fail(
                f"the files of model {row.id} are missing from the artifact store "
                f"({directory}); check that workers mount the same artifact volume as the app"
            )
            continue
        try:
            model, info = load_model(directory, device="cpu")
        except Exception as exc:
            entry.fail(f"could not load model {row.id}: {exc}")
            continue
        entry.metadata = info.get("metadata") or {}
        contract = model.contract
        entry.history, entry.out_steps = contract.history, contract.out_steps
        entry.runner = model  # prepared at its precision once the grid is known
    return entries


def _prepare(entry: ModelEntry, grid: tuple[int, int, int], device: torch.device) -> None:
    model = entry.runner
    example = torch.zeros(1, entry.history, 3, *grid)
    try:
        entry.runner = prepare(model, entry.precision, device, example=example)
    except PrecisionUnavailable as exc:
        entry.fail(str(exc))
    except Exception as exc:
        entry.fail(f"could not prepare the model at {entry.precision}: {exc}")


def _dataset_params(ctx: JobContext, entries: list[ModelEntry]) -> tuple[str, dict[str, Any]]:
    """The id and parameters of the first model's dataset (the reference's settings)."""
    for entry in entries:
        if entry.dataset_id:
            with ctx.db.session() as session:
                dataset = session.get(Dataset, entry.dataset_id)
            if dataset is not None:
                return dataset.id, dict(dataset.params or {})
    raise JobError(
        "none of the models' training datasets exists any more; a channel comparison takes "
        "its reference solver, filter and grid from the first model's dataset"
    )


def _upright(snapshot) -> torch.Tensor:
    velocity = torch.as_tensor(np.asarray(snapshot.velocity), dtype=torch.float32)
    y = np.asarray(snapshot.y)
    if y[0] > y[-1]:  # stored top-down
        velocity = velocity.flip(2)
    return velocity[None]


def _initial_condition(
    ctx: JobContext, p: dict[str, Any], config, entries: list[ModelEntry]
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The centred initial velocity (1, 3, ...) on the fine or the coarse grid, and where it
    came from (``upsampled`` is filled in once the reference has started)."""
    if p.get("initial_condition_id"):
        with ctx.db.session() as session:
            ic = session.get(InitialCondition, p["initial_condition_id"])
        if ic is None:
            raise JobError(f"initial condition {p['initial_condition_id']} no longer exists")
        snapshot = load_channel_initial_condition(ctx.artifacts, ic)
        info = {"id": ic.id, "source": "upload", "name": ic.name}
        return _upright(snapshot), info
    if p.get("dataset_id"):
        with ctx.db.session() as session:
            dataset = session.get(Dataset, p["dataset_id"])
        if dataset is None:
            raise JobError(f"dataset {p['dataset_id']} no longer exists")
        index, choice = _choose_trajectory(p, dataset, entries)
        try:
            snapshot = _dataset_frame(ctx.artifacts.resolve(dataset.path), index)
        except (OSError, IndexError, KeyError, ValueError) as exc:
            raise JobError(
                f"could not read trajectory {index} of dataset {dataset.id}: {exc}"
            ) from None
        info = {"id": dataset.id, "source": "dataset", "trajectory": index, "choice": choice}
        return _upright(snapshot), info
    from physics.channel.solver import ChannelSolver

    solver = ChannelSolver(config)
    faces = solver.initial_condition(1, seed=p["seed"], device="cpu")
    info = {"id": None, "source": "random", "seed": p["seed"]}
    return solver.grid.to_centres(faces).float(), info


@dataclass
class _Frame:
    velocity: np.ndarray  # (3, nx, ny, nz)
    y: np.ndarray


def _dataset_frame(path, trajectory: int) -> _Frame:
    """Frame 0 of a trajectory of a channel dataset we wrote (``physics.formats.
    channel_store``: ``t1_fields/velocity`` (trajectory, time, nx, ny, nz, 3) and
    ``dimensions/y``), read directly: the upload reader wants The Well's attributes, which
    our files do not carry."""
    with h5py.File(path, "r") as f:
        data = np.asarray(f["t1_fields/velocity"][trajectory, 0], dtype=np.float32)
        y = np.asarray(f["dimensions/y"][...], dtype=np.float64)
    return _Frame(np.moveaxis(data, -1, 0), y)


def _choose_trajectory(p: dict[str, Any], dataset, entries: list[ModelEntry]) -> tuple[int, str]:
    if p.get("trajectory") is not None:
        return int(p["trajectory"]), "given"
    first = entries[0]
    held_out = (first.metadata or {}).get("val_trajectories") or []
    if first.dataset_id == dataset.id and held_out:
        return int(held_out[0]), (
            f"the first validation trajectory of model {first.model_id} (held out from its "
            "training)"
        )
    return 0, "trajectory 0 (no held-out trajectory of the first model in this dataset)"


def _setup_model(entry: ModelEntry, grid: tuple[int, int, int]) -> dict[str, Any]:
    runner = entry.runner
    return {
        "index": entry.index,
        "model_id": entry.model_id,
        "name": entry.name,
        "arch": entry.arch,
        "parameters": entry.parameters,
        "precision": entry.precision,
        "resolution": grid[0],
        "grid": list(grid),
        "resampled_from": None,
        "history": entry.history,
        "out_steps": entry.out_steps,
        "device": runner.device.type if runner is not None else None,
        "quantized_fraction": runner.quantized_fraction if runner is not None else None,
        "status": entry.status,
        "message": entry.message,
    }


def _model_column(entry: ModelEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "kind": "model",
        "label": entry.label,
        "model_id": entry.model_id,
        "arch": entry.arch,
        "parameters": entry.parameters,
        "precision": entry.precision,
        "closure": None,
        "status": entry.status,
        "message": entry.message,
    }


def _closure_column(closure: str) -> dict[str, Any]:
    return {
        "key": f"les:{closure}",
        "kind": "closure",
        "label": CLOSURE_LABELS.get(closure, closure),
        "model_id": None,
        "arch": None,
        "parameters": None,
        "precision": None,
        "closure": closure,
        "status": "running",
        "message": None,
    }


def _failed_metrics(entry: ModelEntry) -> dict[str, Any]:
    return {
        "rel_l2": None,
        "energy": None,
        "bulk": None,
        "ms": None,
        "status": entry.status,
        "message": entry.message,
    }


def _failed_row(entry: ModelEntry, closures: list[str]) -> dict[str, Any]:
    return {
        "key": entry.key,
        "kind": "model",
        "label": entry.label,
        "model_id": entry.model_id,
        "closure": None,
        "status": "failed",
        "message": entry.message,
        "stopped_at": None,
        "errors": dict.fromkeys(PROFILES),
        "window_errors": dict.fromkeys(PROFILES),
        "rel_l2_at": {},
        "ms": None,
        "speedup": dict.fromkeys(closures),
    }


def run_channel_compare(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    device = ctx.device
    steps, interval = int(p["steps"]), float(p["interval"])
    closures = list(p.get("baselines") or [])
    entries = _load_models(ctx, p)
    dataset_id, data_params = _dataset_params(ctx, entries)
    config = channel_config({"drive": "pressure", **data_params, "flow": p["flow"]})
    grid = training_grid(data_params, config)
    ox, oy, oz = grid
    coarse_grid = stored_y_grid(data_params, config)
    if (coarse_grid.nx, coarse_grid.ny, coarse_grid.nz) != grid:
        raise JobError(f"the models' grid {ox}×{oy}×{oz} is too coarse for the channel grid")
    to_coarse = channel_filter(data_params, config)
    filter_sentence = (
        data_params.get("filter_description")
        or (filter_attrs(data_params, config)["filter_description"])
    )
    for entry in entries:
        if entry.runner is not None:
            _prepare(entry, grid, device)

    u0, ic_info = _initial_condition(ctx, p, config, entries)
    reference = FilteredReference(config, to_coarse, coarse_grid)
    columns: dict[str, Any] = {}
    for entry in entries:
        if entry.runner is not None:
            columns[entry.key] = ModelColumn(
                entry.runner, entry.history, label=entry.label, model_id=entry.model_id
            )
    les: dict[str, CoarseLES] = {}
    for closure in closures:
        les[f"les:{closure}"] = CoarseLES(config, grid, closure)
    columns |= les
    y = coarse_grid.y_centres.numpy().astype(np.float64)
    comparison = ChannelComparison(
        reference,
        columns,
        y,
        config.nu,
        config.lx,
        config.lz,
        window=int(p["window"]),
        guard=Guard(divergence_factor=float(p["divergence_factor"]), drift=float(p["drift"])),
        spectra_at_yplus=SPECTRA_YPLUS,
        device=device,
    )
    column_rows = [_model_column(e) for e in entries] + [_closure_column(c) for c in closures]
    source_rows = [
        {
            "name": "reference",
            "role": "reference",
            "resolution": ox,
            "grid": list(grid),
            "label": "Reference (fine solver, filtered)",
        }
    ]
    for row in column_rows:
        source_rows.append(
            {
                "name": row["key"],
                "role": row["kind"],
                "resolution": ox,
                "grid": list(grid),
                "label": row["label"],
                **({"index": int(row["key"].split(":")[1])} if row["kind"] == "model" else {}),
                **{k: row[k] for k in ("model_id", "precision", "closure") if row[k] is not None},
            }
        )
    names = tuple(s["name"] for s in source_rows)

    # A re-run (the first worker was lost) replaces the earlier attempt's rows and frames.
    rollout_id, relative = begin_rollout(
        ctx,
        model_id=None,
        initial_condition_id=p.get("initial_condition_id"),
        flow=p["flow"],
        steps=steps,
        interval=interval,
        resolution=ox,
        kind="compare",
        sources=source_rows,
    )
    ctx.set_result({"rollout_id": rollout_id})
    fine = (config.nx, config.ny, config.nz)
    ic_info["upsampled"] = tuple(u0.shape[-3:]) != fine
    setup = {
        "geometry": "channel",
        "flow": p["flow"],
        "steps": steps,
        "interval": interval,
        "nu": config.nu,
        "re_tau": config.re_tau,
        "rollout_id": rollout_id,
        "grid": list(grid),
        "reference": {
            "grid": list(fine),
            "closure": config.les or "none",
            "filter": filter_sentence,
            "dataset_id": dataset_id,
        },
        "columns": column_rows,
        "window": int(p["window"]),
        "drift": float(p["drift"]),
        "divergence_factor": float(p["divergence_factor"]),
        "spectra_yplus": list(SPECTRA_YPLUS),
        "initial_condition": ic_info,
        "models": [_setup_model(e, grid) for e in entries],
    }
    ctx.report("compare_setup", _clean(setup))
    if not any(e.runner is not None for e in entries):
        raise JobError(
            "no model could run: " + "; ".join(f"entry {e.index}: {e.message}" for e in entries)
        )

    attrs = {
        "kind": "compare",
        "geometry": "channel",
        "flow": p["flow"],
        "re_tau": config.re_tau,
        "nu": config.nu,
        "lx": config.lx,
        "lz": config.lz,
        "closure": config.les or "none",
        "interval": interval,
        "job_id": ctx.job_id,
        "initial_condition_id": p.get("initial_condition_id") or "",
        "dataset_id": p.get("dataset_id") or "",
        "trajectory": ic_info.get("trajectory", -1),
        "filter_description": filter_sentence,
        "reference_grid": list(fine),
    }
    writer = RolloutWriter(
        ctx.artifacts.resolve(relative),
        ox,
        names,
        config.lx,
        attrs,
        field="velocity",
        frame_shape=(3, ox, oy, oz),
        coords=channel_coords(data_params, config),
    )
    failed = [e for e in entries if e.runner is None]
    rel_l2: dict[str, dict[int, float | None]] = {key: {} for key in columns}
    blank = np.full((3, ox, oy, oz), np.nan, dtype=np.float32)

    def on_step(record: dict[str, Any]) -> None:
        step, t = int(record["step"]), float(record["t"])
        frames = {}
        for name in names:
            tensor = record["frames"].get(name)
            frames[name] = blank if tensor is None else tensor.reshape(3, ox, oy, oz).cpu().numpy()
        writer.append(t, frames)
        metrics = dict(record["metrics"])
        metrics["columns"] = dict(metrics.get("columns") or {})
        for key, values in metrics["columns"].items():
            if key in rel_l2:
                rel_l2[key][step] = values.get("rel_l2")
        for entry in failed:
            metrics["columns"][entry.key] = _failed_metrics(entry)
        ctx.report(
            "metrics", _clean(metrics), progress=step / steps, message=f"step {step}/{steps}"
        )
        if record.get("stats_due"):
            for source in ("reference", *columns):
                stats = comparison.statistics(source)
                if stats.get("running") is None:
                    continue
                ctx.report(
                    "channel_stats",
                    _clean(
                        {
                            "step": step,
                            "t": t,
                            "source": source,
                            "running": stats["running"],
                            "window": stats.get("window"),
                        }
                    ),
                )

    try:
        ic_info["upsampled"] = _run(comparison, reference, u0, steps, interval, on_step, ctx)
    finally:
        writer.close()
    summary = dict(comparison.summary())
    by_key = {row["key"]: row for row in summary.get("rows") or []}
    for entry in failed:
        by_key[entry.key] = _failed_row(entry, closures)
    summary["rows"] = [by_key[row["key"]] for row in column_rows if row["key"] in by_key]
    summary["geometry"] = "channel"
    if p.get("report_times"):  # the engine reports at quarters of the run; these were asked
        chosen = sorted({min(steps, max(1, round(t / interval))) for t in p["report_times"]})
        for row in summary["rows"]:
            row["rel_l2_at"] = {
                f"{s * interval:.6g}": rel_l2.get(row["key"], {}).get(s) for s in chosen
            }
        summary["report_times"] = [s * interval for s in chosen]
    summary["initial_condition"] = ic_info
    summary = _clean(summary)
    ctx.report("summary", summary, progress=1.0)
    return {
        "rollout_id": rollout_id,
        "frames": steps + 1,
        "interval": interval,
        "nu": config.nu,
        "initial_condition": _clean(ic_info),
        "summary": summary,
    }


def _run(comparison, reference, u0, steps, interval, on_step, ctx) -> bool:
    """Run the comparison from ``u0`` (a cancel raises out of ``check_cancelled``);
    returns whether the reference upsampled it."""
    comparison.run(steps, interval, on_step, should_stop=ctx.check_cancelled, initial=u0)
    return bool(reference.upsampled)
