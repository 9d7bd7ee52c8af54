"""What the pages read and write, as plain JSON-ready dicts.

Every function here is synchronous (SQL, HDF5, torch) and quick; callbacks call them
through ``asyncio.to_thread`` so the event loop that also serves the API never waits on
them. The same services as the REST API are used (job submission, rollouts, the
initial-condition store), so the UI and the API cannot disagree.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from sqlalchemy import select

from app.db.tables import Dataset, InitialCondition, Job, JobEvent
from app.services import catalog, rollouts
from app.services.flows import flow_length
from app.services.initial_conditions import channel_nu_note
from app.services.jobs_view import get_job, job_dict
from app.ui.context import get_state

# --- jobs -----------------------------------------------------------------------------


# --- catalog --------------------------------------------------------------------------


# --- rollouts -------------------------------------------------------------------------


def field_spectrum(field: np.ndarray, flow_name: str) -> tuple[list[int], list[float]]:
    """Energy spectrum of one 2D vorticity field on the flow's domain."""
    import torch

    from physics.flows import get_flow
    from physics.spectra import energy_spectrum

    w = torch.from_numpy(np.asarray(field, dtype=np.float64))[None, None]
    k, e = energy_spectrum(w, get_flow(flow_name).length)
    return [int(x) for x in k.tolist()], [float(x) for x in e[0].tolist()]


# --- the Data page: generation form, generation jobs, dataset previews --------------------


def generate_defaults() -> dict[str, Any]:
    """The generate parameters' defaults and the schemes, from the API's schema."""
    from typing import get_args

    from app.schemas import GenerateParams

    fields = GenerateParams.model_fields
    defaults = {name: field.default for name, field in fields.items()}
    scheme = fields.get("scheme")
    defaults["schemes"] = list(get_args(scheme.annotation)) if scheme is not None else []
    return defaults


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

    dataset = catalog.get_dataset(get_state(), dataset_id)
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


# --- channel flow: uploads, snapshots, statistics, live channel_stats events ------------------

# The y⁺ at which the statistics of a stored snapshot report 1D spectra (each at its nearest
# plane, those beyond the centreline dropped; the centre plane is always added).
CHANNEL_SPECTRA_YPLUS = (1, 2, 5, 10, 15, 20, 30, 50, 100, 150, 200, 300, 500, 1000, 2000)


def _snapshot_statistics(
    velocity: np.ndarray, y: np.ndarray, nu: float, lx: float, lz: float
) -> dict[str, Any]:
    """``ChannelStatisticsResult.to_dict()`` of one snapshot with spectra at the planes
    nearest ``CHANNEL_SPECTRA_YPLUS`` and the centre plane (one FFT pass: the accumulator's
    result is asked twice, the second time for the planes the first one found)."""
    from physics.channel_stats import ChannelStatistics

    acc = ChannelStatistics(y, nu, lx, lz, spectra_at_yplus=(15.0,))
    acc.update(np.asarray(velocity)[None])
    first = acc.result()
    yplus = np.asarray(first.yplus)
    wanted = [t for t in CHANNEL_SPECTRA_YPLUS if t <= yplus[-1]] + [float(yplus[-1])]
    planes = sorted({int(np.argmin(np.abs(yplus - t))) for t in wanted if yplus.size})
    planes = [p for p in planes if yplus[p] > 0] or planes
    acc.spectra_at_yplus = np.asarray([yplus[p] for p in planes], dtype=np.float64)
    return acc.result().to_dict()


def _frame_meta(frame: dict[str, Any], stats: dict[str, Any] | None) -> dict[str, Any]:
    """What the browser needs to set the slice controls (no field values)."""
    y = np.asarray(frame["y"], dtype=np.float64)
    meta = {
        "shape": [int(s) for s in frame["velocity"].shape[1:]],
        "y": y.tolist(),
        "lx": float(frame["lx"]),
        "lz": float(frame["lz"]),
        "label": frame.get("label") or "",
        "version": frame.get("version"),
        "yplus": None,
    }
    if stats and stats.get("u_tau") and stats.get("nu"):
        meta["yplus"] = ((1 - np.abs(y)) * stats["u_tau"] / stats["nu"]).tolist()
    return meta


def _mtime(path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=4)
def _cached_ic_frame(path: str, _mtime_ns: int) -> dict[str, Any]:
    from physics.formats.channel import read_channel_snapshot

    s = read_channel_snapshot(path, limits=None)  # a file we stored
    return {"velocity": s.velocity, "y": s.y, "lx": s.lx, "lz": s.lz, "nu": s.nu}


@functools.lru_cache(maxsize=4)
def _cached_dataset_frame(path: str, _mtime_ns: int, trajectory: int, time: int) -> dict:
    from physics.formats.channel import read_channel_snapshot

    s = read_channel_snapshot(path, trajectory=trajectory, time=time, limits=None)
    return {"velocity": s.velocity, "y": s.y, "lx": s.lx, "lz": s.lz, "nu": s.nu, "attrs": s.attrs}


# Statistics of the last few static snapshots, by (snapshot, ν, lx, lz): moving a slider or
# picking a spectrum plane redraws without recomputing them.
_STATS_CACHE: OrderedDict[tuple, dict[str, Any] | str] = OrderedDict()
_STATS_LOCK = threading.Lock()
_STATS_CACHE_SIZE = 8


def _statistics_of(
    key: tuple, frame: dict[str, Any], nu: float, lx: float, lz: float
) -> dict[str, Any] | str:
    """The snapshot's statistics dict, or the sentence saying why there are none."""
    full = (key, nu, lx, lz)
    with _STATS_LOCK:
        if full in _STATS_CACHE:
            _STATS_CACHE.move_to_end(full)
            return _STATS_CACHE[full]
    try:
        result: dict[str, Any] | str = _snapshot_statistics(
            frame["velocity"], frame["y"], nu, lx, lz
        )
    except ValueError as exc:
        result = str(exc)
    with _STATS_LOCK:
        _STATS_CACHE[full] = result
        while len(_STATS_CACHE) > _STATS_CACHE_SIZE:
            _STATS_CACHE.popitem(last=False)
    return result


def channel_ic_frame(ic_id: str) -> dict[str, Any] | None:
    """A stored channel initial condition's snapshot: ``velocity`` (3, nx, ny, nz), ``y``,
    ``lx``, ``lz``, ``nu``, ``stats`` (its row's), ``label``, ``version``; None if there is
    no such channel initial condition."""
    state = get_state()
    with state.db.session() as session:
        row = session.get(InitialCondition, ic_id)
    if row is None or not str(row.path).endswith(".npz"):
        return None
    path = state.artifacts.resolve(row.path)
    frame = dict(_cached_ic_frame(str(path), _mtime(path)))
    stats = dict(row.stats or {})
    frame["nu"] = frame["nu"] or stats.get("nu") or 1 / 180
    frame["lx"] = frame["lx"] or stats.get("lx") or 4 * math.pi
    frame["lz"] = frame["lz"] or stats.get("lz") or 4 * math.pi / 3
    shape = "×".join(str(s) for s in frame["velocity"].shape[1:])
    frame.update(
        stats=stats, label=f"{row.name} · {shape}", version=f"ic:{row.id}", key=("ic", row.id)
    )
    return frame


def channel_dataset_layout(dataset_id: str) -> dict[str, Any] | None:
    """The trajectories and snapshots of a channel dataset laid out like The Well
    (``t1_fields/velocity`` (trajectory, time, nx, ny, nz, 3), ``dimensions/y``, optional
    ``dimensions/time``): ``{"dataset", "n_trajectories", "n_snapshots", "times",
    "grid"}``; None for an unknown dataset; ValueError with a sentence for a file that is
    not such a dataset."""
    import h5py

    dataset = catalog.get_dataset(get_state(), dataset_id)
    if dataset is None:
        return None
    state = get_state()
    with state.db.session() as session:
        relative = session.get(Dataset, dataset_id).path
    path = state.artifacts.resolve(relative)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"The dataset's file {relative} cannot be read ({exc}).") from exc
    with f:
        group = f.get("t1_fields")
        ds = group.get("velocity") if isinstance(group, h5py.Group) else None
        if not isinstance(ds, h5py.Dataset):
            raise ValueError(
                f"The dataset {dataset['name']} has no t1_fields/velocity; a channel dataset "
                "holds the velocity (trajectory, time, nx, ny, nz, 3) in The Well's layout."
            )
        lead = [
            bool(ds.attrs.get("sample_varying", True)),
            bool(ds.attrs.get("time_varying", True)),
        ]
        shape = list(ds.shape)
        n_traj = shape.pop(0) if lead[0] else 1
        n_snap = shape.pop(0) if lead[1] else 1
        dims = f.get("dimensions")
        times = None
        if isinstance(dims, h5py.Group) and isinstance(dims.get("time"), h5py.Dataset):
            raw = np.asarray(dims["time"][()], dtype=np.float64).reshape(-1)
            times = raw.tolist() if raw.size == n_snap else None
    return {
        "dataset": dataset,
        "path": str(path),
        "n_trajectories": int(n_traj),
        "n_snapshots": int(n_snap),
        "times": times if times is not None else [float(i) for i in range(n_snap)],
        "grid": [int(s) for s in shape[:3]],
    }


def channel_dataset_frame(
    dataset_id: str, trajectory: int = 0, time: int = -1
) -> dict[str, Any] | None:
    """One snapshot of a channel dataset (as ``channel_ic_frame``): ``trajectory`` and
    ``time`` (negative from the end) pick it; ν, lx, lz from the file's attributes, else the
    dataset's parameters (``nu`` or ``re_tau``), else the defaults. ValueError with a
    sentence for a snapshot that is not in it."""
    layout = channel_dataset_layout(dataset_id)
    if layout is None:
        return None
    n_traj, n_snap = layout["n_trajectories"], layout["n_snapshots"]
    if not 0 <= trajectory < n_traj:
        raise ValueError(
            f"Trajectory {trajectory} is not in the dataset; it has {n_traj} (0–{n_traj - 1})."
        )
    if not -n_snap <= time < n_snap:
        raise ValueError(
            f"Snapshot {time} is not in trajectory {trajectory}; it has {n_snap} (0–{n_snap - 1})."
        )
    time = time % n_snap
    path = layout["path"]
    from pathlib import Path

    frame = dict(_cached_dataset_frame(path, _mtime(Path(path)), int(trajectory), int(time)))
    params = layout["dataset"]["params"]
    re_tau = params.get("re_tau")
    nu = frame["nu"] or params.get("nu") or (1.0 / float(re_tau) if re_tau else None)
    frame["nu"] = float(nu or 1 / 180)
    frame["lx"] = float(frame["lx"] or params.get("lx") or 4 * math.pi)
    frame["lz"] = float(frame["lz"] or params.get("lz") or 4 * math.pi / 3)
    t = layout["times"][time]
    d = layout["dataset"]
    frame.update(
        stats={},
        t=t,
        label=f"{d['name']} · trajectory {trajectory} · snapshot {time} (t = {t:.4g})",
        version=f"dataset:{dataset_id}:{trajectory}:{time}",
        key=("dataset", dataset_id, int(trajectory), int(time)),
        layout={k: layout[k] for k in ("n_trajectories", "n_snapshots")},
    )
    return frame


def latest_channel_stats(job_id: str, after: int = 0, source: str | None = None) -> dict[str, Any]:
    """One live update of a job's channel statistics: ``job`` (its row, or None),
    ``event``: the newest ``channel_stats`` event after ``after`` (``{"seq", "t", "stats",
    ...}``, only the newest is read: each carries the statistics so far), or None, and
    ``new``: how many arrived. Events of the job's children (a generate job's shards)
    count as the job's. With ``source``, only events whose payload says ``"source":
    source`` count (a rollout may report its model and its reference)."""
    from sqlalchemy import func

    with get_state().db.session() as session:
        job = session.get(Job, job_id)
        # A job that fans out (the shards of a generate job) reports through its children too.
        ids = [job_id, *session.scalars(select(Job.id).where(Job.parent_id == job_id))]
        where = (
            JobEvent.job_id.in_(ids),
            JobEvent.type == "channel_stats",
            JobEvent.seq > after,
        )
        new = int(session.scalar(select(func.count()).select_from(JobEvent).where(*where)) or 0)
        event = None
        if new:
            query = select(JobEvent.seq, JobEvent.payload).where(*where)
            for seq, payload in session.execute(query.order_by(JobEvent.seq.desc()).limit(50)):
                payload = payload or {}
                if source is None or payload.get("source") in (None, source):
                    event = {"seq": seq, **payload}
                    break
            if event is None:  # only other sources among the newest: step past them
                top = session.scalar(select(func.max(JobEvent.seq)).where(*where))
                event = {"seq": int(top), "stats": None}
        return {"job": job_dict(job) if job else None, "event": event, "new": new}


def channel_job_frame(job_id: str, source: str | None = None) -> dict[str, Any] | None:
    """The newest 3D velocity of a channel job, for the slices, or None when there is none
    yet: a generate job's dataset once it exists (trajectory 0, last snapshot), a rollout's
    last frame (``source`` "model" or "reference"; y from the rollout's ``dimensions/y``,
    else from its channel initial condition)."""
    job = get_job(get_state(), job_id)
    if job is None:
        return None
    dataset_id = (job.get("result") or {}).get("dataset_id")
    if dataset_id:
        try:
            frame = channel_dataset_frame(dataset_id, 0, -1)
        except (ValueError, OSError, KeyError):
            frame = None
        if frame is not None:
            return frame
    if job["kind"] == "rollout":
        try:
            return _channel_rollout_frame(job_id, source)
        except (ValueError, OSError, KeyError, IndexError, TypeError):
            return None
    return None


def _channel_rollout_frame(job_id: str, source: str | None) -> dict[str, Any] | None:
    import h5py

    state = get_state()
    with state.db.session() as session:
        rollout = rollouts.rollout_for_job(session, job_id)
        ic = (
            session.get(InitialCondition, rollout.initial_condition_id)
            if rollout is not None and rollout.initial_condition_id
            else None
        )
    if rollout is None:
        return None
    count = rollouts.frame_count(state.artifacts, rollout)
    if count == 0:
        return None
    velocity, t = None, None
    for name in [source] if source else ["model", "reference"]:
        try:
            velocity, t = rollouts.frame(state.artifacts, rollout, count - 1, name)
            source = name
            break
        except (KeyError, IndexError, OSError):
            continue
    if velocity is None:
        return None
    velocity = np.asarray(velocity)
    while velocity.ndim > 4 and velocity.shape[0] == 1:
        velocity = velocity[0]
    if velocity.ndim != 4 or velocity.shape[0] != 3:
        return None
    y = None
    with h5py.File(state.artifacts.resolve(rollout.path), "r", swmr=True) as f:
        raw = f.get("dimensions/y")
        if isinstance(raw, h5py.Dataset) and raw.shape == (velocity.shape[2],):
            y = np.asarray(raw[()], dtype=np.float64)
    base: dict[str, Any] = {}
    if ic is not None and str(ic.path).endswith(".npz"):
        base = channel_ic_frame(ic.id) or {}
        if y is None and len(base.get("y", ())) == velocity.shape[2]:
            y = base["y"]
    if y is None or np.abs(y).max() > 1 + 1e-6:
        return None
    return {
        "velocity": velocity,
        "y": y,
        "lx": base.get("lx") or 4 * math.pi,
        "lz": base.get("lz") or 4 * math.pi / 3,
        "nu": base.get("nu") or 1 / 180,
        "t": t,
        "label": f"rollout {rollout.id[:8]} · {source} · frame {count - 1} (t = {t:.4g})",
        "version": f"rollout:{rollout.id}:{source}:{count - 1}",
    }


def channel_frame(source: dict[str, Any] | None) -> dict[str, Any] | None:
    """The 3D velocity a channel panel shows for its source: ``{"kind": "ic", "id"}``,
    ``{"kind": "dataset", "id", "trajectory", "time"}`` or ``{"kind": "job", "job_id",
    "source"?}``; None when there is none (yet)."""
    if not source:
        return None
    kind = source.get("kind")
    if kind == "ic":
        return channel_ic_frame(str(source.get("id")))
    if kind == "dataset":
        return channel_dataset_frame(
            str(source.get("id")),
            int(source.get("trajectory") or 0),
            int(source.get("time") if source.get("time") is not None else -1),
        )
    if kind == "job":
        return channel_job_frame(str(source.get("job_id")), source.get("source"))
    return None


def channel_view(source: dict[str, Any] | None, loader: Any = None) -> dict[str, Any]:
    """Everything a channel panel draws for a static source (an initial condition or a
    dataset snapshot): ``stats`` (``ChannelStatisticsResult.to_dict()`` of the snapshot,
    or None), ``error`` (why there are no statistics), ``note`` (where ν came from),
    ``frame`` (the slice controls' metadata), ``layout`` (a dataset's trajectories and
    snapshots). ``loader`` (default ``channel_frame``) maps the source to its frame.
    ValueError with a sentence for a source that cannot be read."""
    frame = (loader or channel_frame)(source)
    if frame is None:
        return {"stats": None, "error": "There is no such channel snapshot.", "frame": None}
    key = frame.get("key") or (frame.get("version"),)
    result = _statistics_of(key, frame, float(frame["nu"]), float(frame["lx"]), float(frame["lz"]))
    stats, error = (None, result) if isinstance(result, str) else (result, None)
    if stats is not None and frame.get("t") is not None:
        stats["t"] = float(frame["t"])
    note = channel_nu_note(frame.get("stats") or {})
    if not note and frame.get("nu"):
        note = f"ν = {frame['nu']:.4g}."
    return {
        "stats": stats,
        "error": error,
        "note": note,
        "frame": _frame_meta(frame, stats),
        "layout": frame.get("layout"),
    }


def channel_frame_meta(
    source: dict[str, Any] | None, stats: dict[str, Any] | None = None, loader: Any = None
) -> dict[str, Any] | None:
    """The slice controls' metadata of a live source's newest frame, or None."""
    frame = (loader or channel_frame)(source)
    return None if frame is None else _frame_meta(frame, stats)


# --- the Compare page: what can be compared, a comparison's events and frames ---------------
