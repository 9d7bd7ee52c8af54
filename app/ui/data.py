"""What the pages read and write, as plain JSON-ready dicts.

Every function here is synchronous (SQL, HDF5, torch) and quick; callbacks call them
through ``asyncio.to_thread`` so the event loop that also serves the API never waits on
them. The same services as the REST API are used (job submission, rollouts, the
initial-condition store), so the UI and the API cannot disagree.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select

from app import jobs, rollouts
from app.db.tables import Dataset, InitialCondition, Job, JobEvent, Model, Rollout
from app.ic_store import load_initial_condition, store_initial_condition
from app.job_params import InvalidParams, validate_params
from app.ui.context import get_state
from app.uploads import UploadError

__all__ = ["InvalidParams", "UploadError"]


def _time(value: datetime | None) -> str | None:
    # Stored naive UTC; the browser is told so with the trailing Z.
    return value.isoformat(timespec="seconds") + "Z" if value else None


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "queue": job.queue,
        "params": job.params or {},
        "progress": float(job.progress or 0.0),
        "message": job.message,
        "error": job.error,
        "result": job.result or {},
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
    }


# --- jobs -----------------------------------------------------------------------------


def list_jobs(limit: int = 100) -> list[dict[str, Any]]:
    state = get_state()
    with state.db.session() as session:
        # Shards are shown through their parent's progress, not as rows of their own.
        top = select(Job).where(Job.parent_id.is_(None))
        rows = session.scalars(top.order_by(Job.created_at.desc()).limit(limit)).all()
        out = [job_dict(job) for job in rows]
        # A rollout publishes its id early, but look it up too for jobs that did not.
        missing = [
            j["id"] for j in out if j["kind"] == "rollout" and "rollout_id" not in j["result"]
        ]
        if missing:
            found = dict(
                session.execute(
                    select(Rollout.job_id, Rollout.id).where(Rollout.job_id.in_(missing))
                ).all()
            )
            for j in out:
                if j["id"] in found:
                    j["result"] = {**j["result"], "rollout_id": found[j["id"]]}
    return out


def get_job(job_id: str) -> dict[str, Any] | None:
    with get_state().db.session() as session:
        job = session.get(Job, job_id)
        return job_dict(job) if job else None


def submit_job(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate then submit, exactly as ``POST /api/jobs``; raises InvalidParams."""
    state = get_state()
    with state.db.session() as session:
        params, queue = validate_params(session, kind, raw)
    job = jobs.submit(state.db, state.dispatcher, kind, params, queue)
    return {"id": job.id, "kind": job.kind, "status": job.status, "params": params}


def cancel_job(job_id: str) -> dict[str, Any] | None:
    state = get_state()
    try:
        job = jobs.cancel(state.db, state.dispatcher, job_id)
    except jobs.JobNotFound:
        return None
    return job_dict(job)


def job_events(
    job_id: str, after: int = 0, types: tuple[str, ...] | None = None, limit: int = 5000
) -> list[dict[str, Any]]:
    with get_state().db.session() as session:
        query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after)
        if types:
            query = query.where(JobEvent.type.in_(types))
        rows = session.scalars(query.order_by(JobEvent.seq).limit(limit)).all()
        return [{"seq": e.seq, "type": e.type, **(e.payload or {})} for e in rows]


# --- catalog --------------------------------------------------------------------------


def list_initial_conditions() -> list[dict[str, Any]]:
    with get_state().db.session() as session:
        rows = session.scalars(
            select(InitialCondition).order_by(InitialCondition.created_at.desc())
        ).all()
        return [initial_condition_dict(r) for r in rows]


def initial_condition_dict(row: InitialCondition) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "flow": row.flow,
        "shape": list(row.shape),
        "fields": list(row.fields),
        "stats": dict(row.stats or {}),
        "created_at": _time(row.created_at),
        "example": row.name.lower().startswith("example"),
    }


def example_initial_condition() -> dict[str, Any] | None:
    """The newest initial condition registered as an example (its name starts with
    "example"), or None."""
    with get_state().db.session() as session:
        row = session.scalars(
            select(InitialCondition)
            .where(InitialCondition.name.ilike("example%"))
            .order_by(InitialCondition.created_at.desc())
            .limit(1)
        ).first()
        return initial_condition_dict(row) if row else None


def initial_condition_field(ic_id: str) -> tuple[dict[str, Any], np.ndarray] | None:
    state = get_state()
    with state.db.session() as session:
        row = session.get(InitialCondition, ic_id)
    if row is None:
        return None
    return initial_condition_dict(row), load_initial_condition(state.artifacts, row)


def store_upload(filename: str, content: bytes, flow: str) -> tuple[dict[str, Any], np.ndarray]:
    """Store an uploaded initial condition through the same path as the REST endpoint
    (size limit, parse, grid check, write, row); raises UploadError with a sentence."""
    state = get_state()
    row = store_initial_condition(
        state.db, state.artifacts, flow, filename, content, state.settings.max_upload_bytes
    )
    return initial_condition_dict(row), load_initial_condition(state.artifacts, row)


def list_models() -> list[dict[str, Any]]:
    with get_state().db.session() as session:
        rows = session.scalars(select(Model).order_by(Model.created_at.desc())).all()
        return [
            {
                "id": m.id,
                "name": m.name,
                "arch": m.arch,
                "flow": m.flow,
                "config": dict(m.config or {}),
                "val_rel_l2": (m.metrics or {}).get("val_rel_l2"),
                "persistence_rel_l2": (m.metrics or {}).get("persistence_rel_l2"),
                "parameter_count": m.parameter_count,
                "resolution": m.resolution,
                "interval": m.interval,
                "dataset_id": m.dataset_id,
                "job_id": m.job_id,
                "created_at": _time(m.created_at),
            }
            for m in rows
        ]


def list_datasets() -> list[dict[str, Any]]:
    with get_state().db.session() as session:
        rows = session.execute(
            select(Dataset, Job.status)
            .outerjoin(Job, Job.id == Dataset.job_id)
            .order_by(Dataset.created_at.desc())
        ).all()
        return [
            {
                "id": d.id,
                "name": d.name,
                "flow": d.flow,
                "shape": list(d.shape),
                "params": dict(d.params or {}),
                "job_id": d.job_id,
                "job_status": status,
                "created_at": _time(d.created_at),
            }
            for d, status in rows
        ]


def active_jobs(kind: str) -> list[dict[str, Any]]:
    with get_state().db.session() as session:
        rows = session.scalars(
            select(Job)
            .where(Job.kind == kind, Job.status.in_(jobs.ACTIVE))
            .order_by(Job.created_at.desc())
        ).all()
        return [job_dict(j) for j in rows]


# --- rollouts -------------------------------------------------------------------------


def _rollout_dict(rollout: Rollout) -> dict[str, Any]:
    # Not rollouts.describe: it opens the HDF5 file to count frames, and a poll must stay
    # quick; the UI counts frames by the metrics it has read (one per frame).
    return {
        "id": rollout.id,
        "job_id": rollout.job_id,
        "model_id": rollout.model_id,
        "initial_condition_id": rollout.initial_condition_id,
        "flow": rollout.flow,
        "steps": rollout.steps,
        "interval": rollout.interval,
        "resolution": rollout.resolution,
        "created_at": _time(rollout.created_at),
    }


def resolve_run(ref: str) -> dict[str, Any] | None:
    """A rollout id or a rollout job's id → {"job": ..., "rollout": ... or None}."""
    with get_state().db.session() as session:
        rollout = rollouts.find_rollout(session, ref)
        if rollout is not None:
            job = session.get(Job, rollout.job_id)
        else:
            job = session.get(Job, ref)
            if job is None or job.kind != "rollout":
                return None
            rollout = rollouts.rollout_for_job(session, job.id)
        return {
            "job": job_dict(job) if job else None,
            "rollout": _rollout_dict(rollout) if rollout else None,
        }


def poll_rollout(job_id: str, after: int, limit: int = 2000) -> dict[str, Any]:
    """One live update: the job row, its rollout (once the worker created it) and at most
    ``limit`` per-step metrics recorded after event ``after`` (as ``rollouts.metrics``).

    The job is read before the metrics: a job already final here has written all of its
    metrics, so a poll that sees a final status and fewer than ``limit`` metrics is the last.
    """
    with get_state().db.session() as session:
        job = session.get(Job, job_id)
        rollout = rollouts.rollout_for_job(session, job_id)
        new: list[dict[str, Any]] = []
        if rollout is not None:
            rows = session.execute(
                select(JobEvent.seq, JobEvent.payload)
                .where(JobEvent.job_id == job_id, JobEvent.type == "metrics", JobEvent.seq > after)
                .order_by(JobEvent.seq)
                .limit(limit)
            ).all()
            new = [{"seq": seq, **payload} for seq, payload in rows]
        return {
            "job": job_dict(job) if job else None,
            "rollout": _rollout_dict(rollout) if rollout else None,
            "metrics": new,
            "complete": len(new) < limit,
        }


def rollout_step_metrics(job_id: str, step: int) -> dict[str, Any] | None:
    """The metrics event of one step (the step-th metrics event, checked by its payload)."""
    with get_state().db.session() as session:
        base = (
            select(JobEvent.seq, JobEvent.payload)
            .where(JobEvent.job_id == job_id, JobEvent.type == "metrics")
            .order_by(JobEvent.seq)
        )
        row = session.execute(base.offset(max(step, 0)).limit(1)).first()
        if row is not None and row.payload.get("step") == step:
            return {"seq": row.seq, **row.payload}
        for seq, payload in session.execute(base):
            if payload.get("step") == step:
                return {"seq": seq, **payload}
    return None


def rollout_frames(
    rollout_id: str, k: int, sources: tuple[str, ...]
) -> tuple[dict[str, np.ndarray | None], float | None]:
    """Frame ``k`` of each source; a source that is missing or not yet written is None."""
    state = get_state()
    with state.db.session() as session:
        rollout = rollouts.find_rollout(session, rollout_id)
    out: dict[str, np.ndarray | None] = dict.fromkeys(sources)
    t = None
    if rollout is None:
        return out, None
    # The error is model − reference: computed here from the two frames already read.
    for source in [s for s in ("model", "reference") if s in sources or "error" in sources]:
        try:
            out[source], t = rollouts.frame(state.artifacts, rollout, k, source)
        except (IndexError, KeyError, OSError):
            out[source] = None
    if "error" in sources and out.get("model") is not None and out.get("reference") is not None:
        out["error"] = out["model"] - out["reference"]
    return {s: out.get(s) for s in sources}, t


def field_spectrum(field: np.ndarray, flow_name: str) -> tuple[list[int], list[float]]:
    """Energy spectrum of one 2D vorticity field on the flow's domain."""
    import torch

    from physics.flows import get_flow
    from physics.spectra import energy_spectrum

    w = torch.from_numpy(np.asarray(field, dtype=np.float64))[None, None]
    k, e = energy_spectrum(w, get_flow(flow_name).length)
    return [int(x) for x in k.tolist()], [float(x) for x in e[0].tolist()]


def flow_names() -> list[tuple[str, str]]:
    """(name, description) of every registered flow."""
    from physics.flows import FLOWS

    return [(name, flow.description) for name, flow in FLOWS.items()]


def flow_length(flow_name: str) -> float:
    from physics.flows import get_flow

    try:
        return float(get_flow(flow_name).length)
    except ValueError:
        return 1.0


# --- the Data page: generation form, generation jobs, dataset previews --------------------


def generate_form_flows() -> list[dict[str, Any]]:
    """What the generate form offers per flow: its description, the viscosities it allows
    (its default first) and its initial-condition families.

    Read from the flow registry; a flow that does not list allowed viscosities offers its
    own, and one that lists no initial-condition families offers only its default (sent as
    None, so the job uses the flow's own)."""
    from physics import flows as registry

    described = getattr(registry, "INITIAL_CONDITIONS", {})
    out = []
    for name, flow in registry.FLOWS.items():
        allowed = tuple(getattr(flow, "allowed_nu", None) or (flow.nu,))
        families = tuple(getattr(flow, "initial_conditions", None) or ())
        out.append(
            {
                "name": name,
                "description": flow.description,
                "nu": float(flow.nu),
                "allowed_nu": [float(nu) for nu in allowed],
                "initial_conditions": list(families),
                "ic_descriptions": {
                    f: str(getattr(described.get(f), "description", "") or "") for f in families
                },
                "length": float(flow.length),
            }
        )
    return out


def generate_defaults() -> dict[str, Any]:
    """The generate parameters' defaults and the schemes, from the API's schema."""
    from typing import get_args

    from app.schemas import GenerateParams

    fields = GenerateParams.model_fields
    defaults = {name: field.default for name, field in fields.items()}
    scheme = fields.get("scheme")
    defaults["schemes"] = list(get_args(scheme.annotation)) if scheme is not None else []
    return defaults


# A finished generate job stays on the page this long (its dataset's Preview, its error).
RECENT_S = 24 * 3600
RECENT_SUCCESS_S = 120


def generation_jobs(limit: int = 8) -> list[dict[str, Any]]:
    """Generate jobs worth showing: every active one (queued, running, finishing), failed or
    cancelled ones of the last day (they can be retried) and ones that succeeded in the last
    two minutes; each with ``shards_done``, ``shards_total`` and ``shards_failed`` counted
    from its shard rows."""
    from datetime import timedelta

    from sqlalchemy import func

    from app.db.tables import utcnow

    now = utcnow()
    with get_state().db.session() as session:
        rows = session.scalars(
            select(Job)
            .where(
                Job.kind == "generate",
                Job.parent_id.is_(None),
                Job.status.in_((*jobs.ACTIVE, "finishing"))
                | (
                    Job.status.in_(("failed", "cancelled"))
                    & (Job.created_at >= now - timedelta(seconds=RECENT_S))
                )
                | (
                    (Job.status == "succeeded")
                    & (Job.finished_at >= now - timedelta(seconds=RECENT_SUCCESS_S))
                ),
            )
            .order_by(Job.created_at.desc())
            .limit(limit)
        ).all()
        out = [job_dict(job) for job in rows]
        ids = [j["id"] for j in out]
        counts: dict[str, dict[str, int]] = {}
        if ids:
            for parent, status, count in session.execute(
                select(Job.parent_id, Job.status, func.count())
                .where(Job.parent_id.in_(ids))
                .group_by(Job.parent_id, Job.status)
            ):
                counts.setdefault(parent, {})[status] = count
    for job in out:
        c = counts.get(job["id"], {})
        job["shards_total"] = sum(c.values()) or int(job["params"].get("shards") or 0)
        job["shards_done"] = c.get("succeeded", 0)
        job["shards_failed"] = c.get("failed", 0)
    return out


def retry_generate(job_id: str) -> dict[str, Any]:
    """Rerun the failed (or cancelled) shards of a generate job, as
    ``POST /api/jobs/{id}/retry``; raises ValueError with a sentence when it cannot."""
    from app import generation

    state = get_state()
    with state.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise ValueError(f"There is no job with id {job_id!r}.")
        if job.kind != "generate":
            raise ValueError("Only generate jobs can be retried.")
        if job.status not in ("failed", "cancelled"):
            raise ValueError(f"The job is {job.status}; only a failed or cancelled job is retried.")
    return job_dict(generation.retry(state.db, state.dispatcher, state.artifacts, job_id))


def get_dataset(dataset_id: str) -> dict[str, Any] | None:
    with get_state().db.session() as session:
        d = session.get(Dataset, dataset_id)
        if d is None:
            return None
        return {
            "id": d.id,
            "name": d.name,
            "flow": d.flow,
            "shape": list(d.shape),
            "params": dict(d.params or {}),
            "job_id": d.job_id,
            "created_at": _time(d.created_at),
        }


# Energy and enstrophy are computed on at most this many snapshots of a trajectory.
SERIES_SNAPSHOTS = 500


def _thin(frame: np.ndarray, stride: int) -> np.ndarray:
    """Block means of stride × stride when they tile the field, else every stride-th point."""
    if stride == 1:
        return frame
    ny, nx = frame.shape
    if ny % stride == 0 and nx % stride == 0:
        return frame.reshape(ny // stride, stride, nx // stride, stride).mean(axis=(1, 3))
    return frame[::stride, ::stride]


def dataset_preview(
    dataset_id: str,
    index: int = 0,
    max_frames: int = 100,
    max_pixels: int = 128,
    max_series: int = SERIES_SNAPSHOTS,
) -> dict[str, Any] | None:
    """One trajectory of a dataset, for the preview: at most ``max_frames`` snapshots
    (evenly spaced, first and last included) thinned to at most ``max_pixels`` per side for
    the animation, their energy spectra at full resolution, and energy and enstrophy over at
    most ``max_series`` snapshots. Only the chosen trajectory is read, one block of snapshots
    at a time, so memory stays small for big datasets.

    Returns None for an unknown dataset; raises ValueError with a sentence for a trajectory
    that is not in it or a file that cannot be read.
    """
    import h5py
    import torch

    from app.ui.figures import evenly_spaced
    from physics.diagnostics import enstrophy, kinetic_energy
    from physics.spectra import energy_spectrum

    dataset = get_dataset(dataset_id)
    if dataset is None:
        return None
    state = get_state()
    with state.db.session() as session:
        relative = session.get(Dataset, dataset_id).path
    path = state.artifacts.resolve(relative)
    length = float(dataset["params"].get("length") or flow_length(dataset["flow"]))
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"The dataset's file {relative} cannot be read ({exc}).") from exc
    with f:
        data = f["t0_fields"]["vorticity"]
        n_traj, n_snap, ny, nx = data.shape
        if not 0 <= index < n_traj:
            last = f" (0–{n_traj - 1})" if n_traj > 1 else " (0)"
            raise ValueError(f"Trajectory {index} is not in the dataset; it has {n_traj}{last}.")
        dims = f["dimensions"]
        all_times = dims["time"][...] if "time" in dims else np.arange(n_snap, dtype=float)
        shown = evenly_spaced(n_snap, max_frames)
        series = sorted(set(evenly_spaced(n_snap, max_series)) | set(shown))
        stride = max(1, math.ceil(max(ny, nx) / max_pixels))
        shown_set = set(shown)
        energy, enstrophy_values, frames, spectra = [], [], [], []
        peak, k = 0.0, None
        block = max(1, min(16, (1 << 22) // (ny * nx)))
        for start in range(0, len(series), block):
            which = series[start : start + block]
            raw = np.asarray(data[index, which], dtype=np.float64)  # (b, ny, nx)
            w = torch.from_numpy(raw)[:, None]
            energy += kinetic_energy(w, length).tolist()
            enstrophy_values += enstrophy(w).tolist()
            finite = np.abs(raw[np.isfinite(raw)])  # a blown-up run leaves NaN: not drawn
            peak = max(peak, float(finite.max()) if finite.size else 0.0)
            picked = [i for i, s in enumerate(which) if s in shown_set]
            if picked:
                k_t, e = energy_spectrum(w[picked], length)
                k = k_t
                spectra.append(e.numpy())
                frames += [_thin(raw[i], stride).astype(np.float32) for i in picked]
    return {
        "dataset": dataset,
        "index": index,
        "n_trajectories": int(n_traj),
        "n_snapshots": int(n_snap),
        "resolution": int(nx),
        "length": length,
        "stride": stride,
        "frame_snapshots": shown,
        "frame_t": [float(all_times[s]) for s in shown],
        "frames": np.stack(frames),
        "limit": peak,
        "k": [int(x) for x in k.tolist()] if k is not None else [],
        "spectra": np.concatenate(spectra),
        "series_snapshots": series,
        "series_t": [float(all_times[s]) for s in series],
        "energy": energy,
        "enstrophy": enstrophy_values,
    }


# --- the Train and Models pages: the model zoo, training options, models ---------------------


def spatial_shape(shape: list[int] | tuple[int, ...] | None) -> tuple[int, ...]:
    """The grid of a dataset from its stored shape: ``(trajectory, time, *space)`` for a
    scalar field, ``(trajectory, time, X, Y, Z, component)`` for 3D velocity (The Well keeps
    a vector's components last)."""
    shape = tuple(int(s) for s in (shape or ()))
    return shape[2:5] if len(shape) == 6 else shape[2:]


def dataset_channels(shape: list[int] | tuple[int, ...] | None) -> int | None:
    """Physical channels of a dataset's fields: the component axis of a 3D vector field,
    else 1 (a scalar such as vorticity); None for no shape."""
    shape = tuple(shape or ())
    if len(shape) < 3:
        return None
    return int(shape[-1]) if len(shape) == 6 else 1


def architectures() -> list[dict[str, Any]]:
    """Every registered architecture, in registry order: ``name``, ``label``, ``dims``,
    ``description``, its config's ``title`` and ``fields`` (``form_fields()``), and
    ``error``: None, or why it cannot be used (its module failed to import, its config
    class is missing or its defaults do not validate). Modules are imported here, once."""
    from models.registry import MODELS

    out = []
    for name, spec in MODELS.items():
        entry: dict[str, Any] = {
            "name": name,
            "label": spec.label,
            "dims": int(spec.dims),
            "description": spec.description,
            "title": "",
            "fields": [],
            "error": None,
        }
        try:
            config_cls = spec.config_cls
            entry["fields"] = _plain(config_cls.form_fields())
            entry["title"] = str(getattr(config_cls, "title", "") or "")
            config_cls()  # the defaults must make a valid config
        except Exception as exc:  # a family still being written must not break the page
            entry["fields"] = []
            entry["error"] = _reason(exc)
        out.append(entry)
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError):
        return f"its module cannot be imported ({exc})."
    if isinstance(exc, ImportError | AttributeError):
        return f"it cannot be loaded ({exc})."
    return f"it cannot be loaded ({type(exc).__name__}: {exc})."


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, other non-JSON leaves become strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def evaluate_config(
    arch: str,
    config: dict[str, Any],
    space: tuple[int, ...] | list[int] | None = None,
    channels: int | None = None,
    snapshots: int | None = None,
) -> dict[str, Any]:
    """What the form shows under a model's config: ``{"parameters", "contract"}`` when
    ``config`` makes a valid model for a grid of shape ``space`` (None: any grid), data of
    ``channels`` physical channels and trajectories of ``snapshots`` frames (None: any),
    else ``{"error": sentence}`` (the config's own sentence, or the data's)."""
    from models.registry import count_parameters, get_spec, make_config

    try:
        spec = get_spec(arch)
        parsed = make_config(arch, config)
    except (TypeError, ValueError) as exc:
        return {"error": _sentence(exc)}
    except Exception as exc:
        return {"error": f"{arch} {_reason(exc)}"}
    space = tuple(int(s) for s in space) if space else ()
    if space:
        if len(space) != spec.dims:
            grid = "×".join(map(str, space))
            return {
                "error": f"{spec.label} works on {spec.dims}D fields; the dataset's grid "
                f"is {grid} ({len(space)}D)."
            }
        check_grid = getattr(parsed, "check_grid", None)
        if callable(check_grid):
            try:
                check_grid(space)
            except ValueError as exc:
                return {"error": _sentence(exc)}
    out: dict[str, Any] = {"parameters": None, "contract": None}
    try:
        out["contract"] = parsed.contract().to_dict()
    except Exception:  # a config without a contract yet: the form still shows its size
        out["contract"] = None
    contract = out["contract"] or {}
    wanted = contract.get("channels")
    if channels is not None and wanted is not None and wanted != channels:
        return {
            "error": f"The dataset's fields have {channels} channel"
            f"{'' if channels == 1 else 's'}; this config reads {wanted} (channels)."
        }
    if snapshots is not None and contract.get("history") is not None:
        needed = int(contract["history"]) + int(contract.get("out_steps") or 1)
        if snapshots < needed:
            return {
                "error": f"A training sample needs {needed} consecutive snapshots "
                f"({contract['history']} in, {contract.get('out_steps') or 1} out); the "
                f"dataset's trajectories have {snapshots}."
            }
    try:
        out["parameters"] = int(count_parameters(arch, parsed.to_dict()))
    except (TypeError, ValueError) as exc:
        return {"error": _sentence(exc)}
    except Exception as exc:
        return {"error": f"The model could not be built to count its parameters ({exc})."}
    return out


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:]


def train_options() -> list[dict[str, Any]]:
    """The training options as form fields (``name``, ``type``, ``default``, ``help``,
    ``min``, ``max``, ``choices``, ``exclusive_min``), read from the API's schema so the
    form's defaults, bounds and choices are the ones the API checks. What the rest of the
    form sets (dataset, name, architecture, config) and the queue are left out."""
    from app.schemas import TrainParams
    from app.ui.config_form import schema_fields

    return schema_fields(TrainParams, exclude=("queue", "dataset_id", "name", "arch", "config"))


def models_overview() -> list[dict[str, Any]]:
    """Every model, newest first, as ``list_models`` plus ``label`` (the architecture's),
    ``metrics`` and the training data's ``dataset_name`` (None when it was deleted)."""
    from models.registry import MODELS

    with get_state().db.session() as session:
        rows = session.execute(
            select(Model, Dataset.name)
            .outerjoin(Dataset, Dataset.id == Model.dataset_id)
            .order_by(Model.created_at.desc())
        ).all()
        out = []
        for m, dataset_name in rows:
            metrics = dict(m.metrics or {})
            spec = MODELS.get(m.arch)
            out.append(
                {
                    "id": m.id,
                    "name": m.name,
                    "arch": m.arch,
                    "label": spec.label if spec is not None else m.arch,
                    "flow": m.flow,
                    "config": dict(m.config or {}),
                    "metrics": metrics,
                    "val_rel_l2": metrics.get("val_rel_l2"),
                    "persistence_rel_l2": metrics.get("persistence_rel_l2"),
                    "parameter_count": m.parameter_count,
                    "resolution": m.resolution,
                    "interval": m.interval,
                    "dataset_id": m.dataset_id,
                    "dataset_name": dataset_name,
                    "job_id": m.job_id,
                    "created_at": _time(m.created_at),
                }
            )
    return out
