"""compare: several models, each at its own inference precision, rolled out side by side
with the reference solver in one job, frame by frame. A channel flow's comparison (3D
models beside LES baselines) is ``workers/runners/compare_channel.py``'s, a hit3d flow's
(3D models beside one reference LES) ``workers/runners/compare_hit3d.py``'s.

Every step, the solver advances one interval and every model still running advances one
step (one after another, in entry order), so all columns stream together. Each model runs on
its own training grid: the initial condition is spectrally resampled to it when the grids
differ; a model reading ``history > 1`` frames gets its first ``history`` frames from the
reference solver (resampled to its grid), then runs on its own predictions; a model that
predicts ``out_steps > 1`` frames per call is called once per ``out_steps`` steps and each
of those steps is charged ``call ms / out_steps``. Errors, correlations, spectra and band
errors are computed on the reference grid (the prediction spectrally resampled to it);
energy and enstrophy on the model's own frame.

Wall times are measured around each solver advance and each model call only (after
``torch.cuda.synchronize`` on CUDA), so the summary's speedup, median solver ms / median
model ms, is measured on this worker, not claimed. An int8 entry runs on the CPU (dynamic
quantisation) even on a GPU worker, and its time is the CPU's.

Guards: a prediction with NaN/Inf, or whose energy exceeds ``divergence_factor`` × the
reference's energy (without a reference: × the initial field's energy), stops that model
with status "diverged" and message "diverged at step k". The frame that tripped the guard
is written as predicted; from the next step on the model's frames (and errors) are NaN, so
the file stays rectangular. A model that cannot run (missing files, a precision this worker
cannot give, an exception in its forward pass) gets status "failed", its message, and NaN
frames; the others go on. If no model can run at all the job fails. Memory stays flat with
the horizon: frames go to the SWMR HDF5 file as they are made, each model keeps only its
input window, and per-step times live in arrays sized once at the start.

File (``physics.formats.comparison.ComparisonWriter``): sources ``reference`` (reference grid),
``model:<i>`` (entry i's prediction on its own grid) and ``error:<i>`` (entry i's prediction
resampled to the reference grid, minus the reference); without a reference only
``model:<i>``. The frames endpoint takes these names.

Events (``ctx.report``; JSON, NaN/Inf written as null):

* once, first: ``{"type": "compare_setup", "models": [{"index", "model_id", "name", "arch",
  "parameters", "precision", "resolution", "resampled_from", "history", "out_steps",
  "device", "quantized_fraction", "status", "message", "input_fit"}], "reference": bool,
  "steps", "interval", "nu", "rollout_id", "reference_resolution", "initial_condition":
  {...}, "warnings": [...]}``. ``input_fit`` is ``models.input_stats.input_fit`` of the
  starting field against the model's training inputs (``known`` false when it recorded
  none); ``warnings`` has its ``message`` for each model the start is far from.
  ``resampled_from`` is the reference grid size when the model's grid differs (the
  initial condition was resampled "64→32"), else null; ``quantized_fraction`` is set for
  int8 (the share of the parameters stored as int8); ``status`` is "running" or "failed".
* every step k = 0 … steps (step 0 is the initial condition): ``{"type": "metrics",
  "step", "t", "reference": {"energy", "enstrophy", "spectrum": [...], "ms"} | null,
  "k": [...], "models": {"<i>": {"rel_l2", "rel_h1", "corr", "energy", "enstrophy",
  "spectrum": [...], "band_errors": {"low", "mid", "high"}, "ms", "status": "running" |
  "diverged" | "failed", "message"}}}``. ``ms`` is null where nothing ran (step 0, the
  reference's warm-up frames of a multi-frame model, a stopped model); every metric of a
  stopped model is null after its last frame. ``k`` and every spectrum are on the
  reference grid's shells; band errors are ‖P_b(model − reference)‖/‖reference‖ over
  ``physics.norms.default_bands(n)`` (low |k| < n/8, mid < n/4, high the rest): each band's
  share of the relative L2 error (their squares sum to rel_l2²). ``reference`` is null
  without a reference, and then so are the errors, correlations and band errors.
* once, last: ``{"type": "summary", "rows": [{"index", "model_id", "name", "arch",
  "precision", "parameters", "resolution", "resampled_from", "errors_at": {"<t>":
  rel_l2}, "decorrelation_time", "band_errors": {"low", "mid", "high"}, "model_ms",
  "solver_ms", "speedup", "quantized_fraction", "status", "message"}], "report_times",
  "initial_condition"}``; also the job's result under ``summary``. ``errors_at`` keys are
  the report times rounded to whole steps, formatted with ``:g``; ``decorrelation_time``
  is the first t at which the Pearson correlation with the reference fell below 0.8 (null
  if it never did); ``band_errors`` are time averages over the model's steps; ``model_ms``
  and ``solver_ms`` are medians per step; ``status`` "completed", "diverged" or "failed".
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from app.db.tables import Dataset, InitialCondition, Model
from app.services.flows import is_channel_flow, is_hit3d_flow
from models.checkpoint import load_model
from models.input_stats import field_summary, input_fit
from models.quantize import InferenceModel, PrecisionUnavailable, prepare
from physics.diagnostics import enstrophy, kinetic_energy
from physics.flows import get_flow
from physics.formats.comparison import BANDS, ComparisonWriter
from physics.formats.store import read_trajectory
from physics.norms import band_norms, l2_norm, relative_h1, relative_l2
from physics.resample import spectral_resample
from physics.spectra import energy_spectrum
from workers.context import JobContext, JobError
from workers.rollout_rows import begin_rollout

DECORRELATION = 0.8


def _round(values: torch.Tensor) -> list[float]:
    return [float(f"{v:.6g}") for v in values.tolist()]


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN and Inf become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two fields over all their points."""
    a = a.flatten().double()
    b = b.flatten().double()
    a = a - a.mean()
    b = b - b.mean()
    denominator = torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)
    return float((a @ b) / denominator) if denominator > 0 else math.nan


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Column:
    """One (model, precision) entry and its running state."""

    index: int
    model_id: str
    precision: str
    name: str
    arch: str
    parameters: int
    resolution: int
    steps: int
    status: str = "running"
    message: str | None = None
    model: nn.Module | None = None  # as loaded (float32, CPU)
    runner: InferenceModel | None = None  # at its precision, on its device
    quantized_fraction: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    resampled_from: int | None = None
    history: int = 1
    out_steps: int = 1
    window: deque = field(default_factory=deque)
    pending: list[torch.Tensor] = field(default_factory=list)
    pending_ms: float | None = None
    ms: np.ndarray = field(init=False)
    band_sum: np.ndarray = field(default_factory=lambda: np.zeros(3))
    band_count: np.ndarray = field(default_factory=lambda: np.zeros(3))
    errors_at: dict[int, float | None] = field(default_factory=dict)
    decorrelation_time: float | None = None
    input_fit: dict[str, Any] | None = None  # models.input_stats.input_fit of the start

    def __post_init__(self) -> None:
        self.ms = np.full(self.steps + 1, np.nan)

    @property
    def active(self) -> bool:
        return self.status == "running"

    def _stop(self, status: str, message: str) -> None:
        self.status, self.message = status, message
        self.window.clear()
        self.pending.clear()
        self.model = self.runner = None  # free its memory; nothing of it is needed again

    def fail(self, message: str) -> None:
        self._stop("failed", message)

    def diverge(self, step: int) -> None:
        self._stop("diverged", f"diverged at step {step}")

    def advance(self, step: int, reference: torch.Tensor) -> torch.Tensor:
        """This column's frame at ``step`` on its own grid, (1, 1, n, n) float32 on the
        reference's device; warm-up frames come from ``reference``."""
        runner = self.runner
        if step < self.history:
            frame = spectral_resample(reference, self.resolution).to(runner.device)
            self.window.append(frame)
            return frame.to(reference.device)
        if not self.pending:
            window = torch.stack(list(self.window), dim=1)  # (1, history, 1, n, n)
            runner.synchronize()
            started = time.perf_counter()
            out = runner(window)
            runner.synchronize()
            call_ms = (time.perf_counter() - started) * 1000
            if out.shape[0] != 1 or out.shape[2:] != window.shape[2:]:
                raise ValueError(
                    f"the model maps {tuple(window.shape)} to {tuple(out.shape)}, not to "
                    "frames shaped like its input"
                )
            self.pending = [out[:, j] for j in range(out.shape[1])]
            self.pending_ms = call_ms / out.shape[1]
        frame = self.pending.pop(0)
        self.ms[step] = self.pending_ms
        self.window.append(frame)
        return frame.to(reference.device)

    def summary(self, solver_ms: float | None, report_steps: list[int], interval: float):
        ran = self.ms[np.isfinite(self.ms)]
        model_ms = float(np.median(ran)) if ran.size else None
        bands = {
            b: (float(self.band_sum[j] / self.band_count[j]) if self.band_count[j] else None)
            for j, b in enumerate(BANDS)
        }
        return {
            "index": self.index,
            "model_id": self.model_id,
            "name": self.name,
            "arch": self.arch,
            "precision": self.precision,
            "parameters": self.parameters,
            "resolution": self.resolution,
            "resampled_from": self.resampled_from,
            "errors_at": {f"{s * interval:g}": self.errors_at.get(s) for s in report_steps},
            "decorrelation_time": self.decorrelation_time,
            "band_errors": bands,
            "model_ms": model_ms,
            "solver_ms": solver_ms,
            "speedup": (solver_ms / model_ms) if solver_ms and model_ms else None,
            "quantized_fraction": self.quantized_fraction,
            "status": "completed" if self.status == "running" else self.status,
            "message": self.message,
        }


# --- setup -------------------------------------------------------------------------------


def _load_columns(ctx: JobContext, p: dict[str, Any]) -> list[Column]:
    columns = []
    for index, entry in enumerate(p["models"]):
        with ctx.db.session() as session:
            row = session.get(Model, entry["model_id"])
        if row is None:
            column = Column(index, entry["model_id"], entry["precision"], "", "", 0, 0, p["steps"])
            column.fail(f"model {entry['model_id']} no longer exists")
            columns.append(column)
            continue
        column = Column(
            index,
            row.id,
            entry["precision"],
            row.name,
            row.arch,
            int(row.parameter_count),
            int(row.resolution or 0),
            p["steps"],
        )
        column.metadata = {"dataset_id": row.dataset_id, "interval": row.interval}
        directory = ctx.artifacts.resolve(row.path)
        if not directory.is_dir():
            column.fail(
                f"the files of model {row.id} are missing from the artifact store "
                f"({directory}); check that workers mount the same artifact volume as the app"
            )
        else:
            try:
                model, info = load_model(directory, device="cpu")
            except Exception as exc:
                column.fail(f"could not load model {row.id}: {exc}")
            else:
                column.metadata |= info.get("metadata") or {}
                column.model = model  # prepared for its precision once the grid is known
                contract = model.contract
                column.history, column.out_steps = contract.history, contract.out_steps
        columns.append(column)
    return columns


def _initial_condition(
    ctx: JobContext, p: dict[str, Any], flow, columns: list[Column]
) -> tuple[torch.Tensor, dict[str, Any], float | None]:
    """(w0 as (1, 1, n, n), a description of where it came from, the dataset's ν or None)."""
    if p.get("initial_condition_id"):
        with ctx.db.session() as session:
            ic = session.get(InitialCondition, p["initial_condition_id"])
        if ic is None:
            raise JobError(f"initial condition {p['initial_condition_id']} no longer exists")
        array = np.load(ctx.artifacts.resolve(ic.path), allow_pickle=False)
        w0 = torch.from_numpy(np.asarray(array, dtype=np.float32))
        info = {"kind": "upload", "initial_condition_id": ic.id, "name": ic.name}
        return w0[None, None], info, None
    if p.get("dataset_id"):
        with ctx.db.session() as session:
            dataset = session.get(Dataset, p["dataset_id"])
        if dataset is None:
            raise JobError(f"dataset {p['dataset_id']} no longer exists")
        index, choice = _choose_trajectory(p, dataset, columns)
        try:
            frames, _times, _attrs = read_trajectory(ctx.artifacts.resolve(dataset.path), index)
        except (OSError, IndexError) as exc:
            raise JobError(
                f"could not read trajectory {index} of dataset {dataset.id}: {exc}"
            ) from None
        seen_by = [
            f"model {c.model_id} (entry {c.index})"
            for c in columns
            if c.metadata.get("dataset_id") == dataset.id
            and index in (c.metadata.get("train_trajectories") or [])
        ]
        info = {
            "kind": "dataset",
            "dataset_id": dataset.id,
            "trajectory": index,
            "choice": choice,
            "in_training_data_of": seen_by,
        }
        if seen_by:
            info["warning"] = f"trajectory {index} was in the training data of {', '.join(seen_by)}"
        w0 = torch.from_numpy(np.asarray(frames[0], dtype=np.float32))
        return w0[None, None], info, dataset.params.get("nu")
    n = next((c.resolution for c in columns if c.resolution), 64)
    w0 = flow.random_initial_condition(n, batch=1, seed=p["seed"], device="cpu")
    info = {"kind": "random", "seed": p["seed"], "resolution": n, "family": flow.name}
    return w0.float(), info, None


def _choose_trajectory(p: dict[str, Any], dataset, columns: list[Column]) -> tuple[int, str]:
    if p.get("trajectory") is not None:
        return int(p["trajectory"]), "given"
    first = columns[0]
    held_out = first.metadata.get("val_trajectories") or []
    if first.metadata.get("dataset_id") == dataset.id and held_out:
        return int(held_out[0]), (
            f"the first validation trajectory of model {first.model_id} (held out from its "
            "training)"
        )
    reason = (
        "the first model was not trained on this dataset"
        if first.metadata.get("dataset_id") != dataset.id
        else "the first model records no validation trajectories"
    )
    return 0, f"trajectory 0 ({reason}, so there is no held-out split to draw from)"


def _training_viscosity(ctx: JobContext, columns: list[Column]) -> float | None:
    for column in columns:
        dataset_id = column.metadata.get("dataset_id")
        if dataset_id:
            with ctx.db.session() as session:
                dataset = session.get(Dataset, dataset_id)
            if dataset is not None and dataset.params.get("nu"):
                return dataset.params["nu"]
    return None


def _prepare(column: Column, n_ref: int, device: torch.device) -> None:
    """Fix the column's grid and put its model at its precision; failures mark it failed."""
    model = column.model
    column.resolution = column.resolution or n_ref
    if column.resolution != n_ref:
        column.resampled_from = n_ref
    try:
        model.config.check_grid((column.resolution, column.resolution))
    except ValueError as exc:
        column.fail(f"the model cannot run on its {column.resolution}² grid: {exc}")
        return
    example = torch.zeros(1, column.history, 1, column.resolution, column.resolution)
    try:
        column.runner = prepare(model, column.precision, device, example=example)
    except PrecisionUnavailable as exc:
        column.fail(str(exc))
        return
    except Exception as exc:
        column.fail(f"could not prepare the model at {column.precision}: {exc}")
        return
    column.quantized_fraction = column.runner.quantized_fraction
    column.window = deque(maxlen=column.history)


def _setup_row(column: Column) -> dict[str, Any]:
    runner = column.runner
    return {
        "index": column.index,
        "model_id": column.model_id,
        "name": column.name,
        "arch": column.arch,
        "parameters": column.parameters,
        "precision": column.precision,
        "resolution": column.resolution,
        "resampled_from": column.resampled_from,
        "history": column.history,
        "out_steps": column.out_steps,
        "device": runner.device.type if runner else None,
        "quantized_fraction": column.quantized_fraction,
        "status": column.status,
        "message": column.message,
        "input_fit": column.input_fit,
    }


def report_steps(p: dict[str, Any], interval: float) -> list[int]:
    steps = p["steps"]
    times = p.get("report_times")
    if times:
        chosen = [min(steps, max(1, round(t / interval))) for t in times]
    else:
        chosen = [max(1, round(steps * f)) for f in (0.25, 0.5, 1.0)]
    return sorted(set(chosen))


# --- the run -----------------------------------------------------------------------------


def _empty_metrics(column: Column) -> dict[str, Any]:
    return {
        "rel_l2": None,
        "rel_h1": None,
        "corr": None,
        "energy": None,
        "enstrophy": None,
        "spectrum": None,
        "band_errors": None,
        "ms": None,
        "status": column.status,
        "message": column.message,
    }


def run_compare(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    if is_channel_flow(p["flow"]):
        from workers.runners.compare_channel import run_channel_compare

        return run_channel_compare(ctx)
    if is_hit3d_flow(p["flow"]):
        from workers.runners.compare_hit3d import run_hit3d_compare

        return run_hit3d_compare(ctx)
    columns = _load_columns(ctx, p)
    base_flow = get_flow(p["flow"])
    w0, ic_info, dataset_nu = _initial_condition(ctx, p, base_flow, columns)
    nu = p.get("nu") or dataset_nu or _training_viscosity(ctx, columns) or base_flow.nu
    try:
        flow = base_flow.variant(nu)
    except ValueError as exc:
        raise JobError(f"the reference cannot run at ν = {nu}: {exc}") from None
    intervals = {c.metadata.get("interval") for c in columns if c.metadata.get("interval")}
    interval = p.get("interval") or (intervals.pop() if intervals else 0.25)

    device = ctx.device
    w0 = w0.to(device)
    n_ref = w0.shape[-1]
    try:
        flow.check_grid((n_ref, n_ref))
    except ValueError as exc:
        raise JobError(f"the initial condition's grid does not fit {flow.name}: {exc}") from None
    for column in columns:
        if column.active:
            _prepare(column, n_ref, device)
    steps = p["steps"]
    use_reference = bool(p.get("reference", True))
    warmup = max((c.history for c in columns if c.active), default=1)
    solver = flow.make_solver(n_ref, device=device, dtype=torch.float32)
    length = flow.length

    sources = _sources(columns, use_reference, n_ref)
    # A re-run (the first worker was lost) replaces the earlier attempt's rows and frames.
    rollout_id, relative = begin_rollout(
        ctx,
        model_id=None,
        initial_condition_id=p.get("initial_condition_id"),
        flow=flow.name,
        steps=steps,
        interval=interval,
        resolution=n_ref,
        kind="compare",
        sources=sources,
    )
    ctx.set_result({"rollout_id": rollout_id})
    start = field_summary(w0.cpu(), length)
    for column in columns:
        column.input_fit = input_fit(start, column.metadata.get("input_stats"), column.name)
    ctx.report(
        "compare_setup",
        _clean(
            {
                "type": "compare_setup",
                "models": [_setup_row(c) for c in columns],
                "reference": use_reference,
                "steps": steps,
                "interval": interval,
                "nu": flow.nu,
                "rollout_id": rollout_id,
                "reference_resolution": n_ref,
                "initial_condition": ic_info,
                # One sentence per model whose training inputs the start is far from.
                "warnings": [c.input_fit["message"] for c in columns if c.input_fit["far"]],
            }
        ),
    )
    if not any(c.active for c in columns):
        raise JobError(
            "no model could run: " + "; ".join(f"entry {c.index}: {c.message}" for c in columns)
        )

    attrs = {
        "kind": "compare",
        "flow": flow.name,
        "nu": flow.nu,
        "interval": interval,
        "job_id": ctx.job_id,
        "initial_condition_id": p.get("initial_condition_id") or "",
        "dataset_id": p.get("dataset_id") or "",
        "trajectory": ic_info.get("trajectory", -1),
    }
    writer = ComparisonWriter(
        ctx.artifacts.resolve(relative),
        {s["name"]: s["resolution"] for s in sources},
        n_ref,
        length,
        attrs,
        {s["name"]: {k: v for k, v in s.items() if k != "name"} for s in sources},
    )
    solver_ms = np.full(steps + 1, np.nan)
    e0 = float(kinetic_energy(w0, length)[0])
    chosen_steps = report_steps(p, interval)
    k_list = [int(x) for x in energy_spectrum(w0, length)[0].tolist()]
    reference = w0
    try:
        for step in range(steps + 1):
            t = step * interval
            ref_ms = None
            if step > 0 and (use_reference or step < warmup):
                _sync(device)
                started = time.perf_counter()
                reference = solver.advance(reference, interval)
                _sync(device)
                ref_ms = (time.perf_counter() - started) * 1000
                solver_ms[step] = ref_ms
                if not torch.isfinite(reference).all():
                    raise JobError("the reference solver diverged; try a shorter interval")
            payload, frames = _step(
                step, t, reference, ref_ms, columns, use_reference, p, e0, length, k_list
            )
            writer.append(t, frames)
            if step in chosen_steps:
                for column in columns:
                    column.errors_at[step] = payload["models"][str(column.index)]["rel_l2"]
            ctx.report(
                "metrics", _clean(payload), progress=step / steps, message=f"step {step}/{steps}"
            )
    finally:
        writer.close()

    ran = solver_ms[np.isfinite(solver_ms)]
    median_solver = float(np.median(ran)) if use_reference and ran.size else None
    summary = _clean(
        {
            "type": "summary",
            "rows": [c.summary(median_solver, chosen_steps, interval) for c in columns],
            "report_times": [s * interval for s in chosen_steps],
            "initial_condition": ic_info,
        }
    )
    ctx.report("summary", summary, progress=1.0)
    return {
        "rollout_id": rollout_id,
        "frames": steps + 1,
        "interval": interval,
        "nu": flow.nu,
        "initial_condition": ic_info,
        "summary": summary,
    }


def _sources(columns: list[Column], use_reference: bool, n_ref: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if use_reference:
        out.append({"name": "reference", "role": "reference", "resolution": n_ref})
    for c in columns:
        about = {
            "index": c.index,
            "model_id": c.model_id,
            "precision": c.precision,
            "label": f"{c.name or c.model_id} ({c.precision})",
        }
        resolution = c.resolution or n_ref
        out.append({"name": f"model:{c.index}", "role": "model", "resolution": resolution, **about})
    if use_reference:
        for c in columns:
            out.append(
                {
                    "name": f"error:{c.index}",
                    "role": "error",
                    "resolution": n_ref,
                    "index": c.index,
                    "model_id": c.model_id,
                    "precision": c.precision,
                }
            )
    return out


@torch.no_grad()
def _step(step, t, reference, ref_ms, columns, use_reference, p, e0, length, k_list):
    """One step of every column: frames to write and the metrics event."""
    frames: dict[str, np.ndarray | None] = {}
    payload: dict[str, Any] = {
        "type": "metrics",
        "step": step,
        "t": t,
        "reference": None,
        "k": k_list,
        "models": {},
    }
    ref_energy = e0
    if use_reference:
        _, e_ref = energy_spectrum(reference, length)
        ref_energy = float(kinetic_energy(reference, length)[0])
        payload["reference"] = {
            "energy": ref_energy,
            "enstrophy": float(enstrophy(reference)[0]),
            "spectrum": _round(e_ref[0]),
            "ms": ref_ms,
        }
        frames["reference"] = reference[0, 0].cpu().numpy()
    threshold = p["divergence_factor"] * ref_energy
    for column in columns:
        key = str(column.index)
        if not column.active:
            payload["models"][key] = _empty_metrics(column)
            continue
        try:
            frame = column.advance(step, reference)
        except Exception as exc:
            column.fail(f"failed at step {step}: {type(exc).__name__}: {exc}")
            payload["models"][key] = _empty_metrics(column)
            continue
        n = reference.shape[-1]
        finite = bool(torch.isfinite(frame).all())
        energy = float(kinetic_energy(frame, length)[0]) if finite else math.nan
        metrics: dict[str, Any] = {
            "rel_l2": None,
            "rel_h1": None,
            "corr": None,
            "energy": energy,
            "enstrophy": float(enstrophy(frame)[0]) if finite else None,
            "spectrum": None,
            "band_errors": None,
            "ms": _num(column.ms[step]),
            "status": "running",
            "message": None,
        }
        frames[f"model:{column.index}"] = frame[0, 0].cpu().numpy()
        if finite:
            on_ref = spectral_resample(frame, n)
            _, spectrum = energy_spectrum(on_ref, length)
            metrics["spectrum"] = _round(spectrum[0])
            if use_reference:
                corr = pearson(on_ref, reference)
                # Each band's error as a fraction of the whole reference field (their
                # squares sum to rel_l2²): per-band relative errors blow up in the high band,
                # where a smooth reference holds almost nothing.
                bands = (band_norms(on_ref - reference, length) / l2_norm(reference)[..., None])[
                    0
                ].tolist()
                metrics |= {
                    "rel_l2": float(relative_l2(on_ref, reference)[0]),
                    "rel_h1": float(relative_h1(on_ref, reference, length)[0]),
                    "corr": corr,
                    "band_errors": dict(zip(BANDS, bands, strict=True)),
                }
                frames[f"error:{column.index}"] = (on_ref - reference)[0, 0].cpu().numpy()
                if column.decorrelation_time is None and corr < DECORRELATION:
                    column.decorrelation_time = t
                if step > 0:
                    for j, value in enumerate(bands):
                        if math.isfinite(value):
                            column.band_sum[j] += value
                            column.band_count[j] += 1
        if not finite or energy > threshold:
            column.diverge(step)
            metrics["status"], metrics["message"] = column.status, column.message
        payload["models"][key] = metrics
    return payload, frames
