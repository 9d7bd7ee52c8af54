"""Channel flow for display: the 3D velocity a channel panel slices and the wall-unit
statistics it draws, for a stored channel initial condition, one snapshot of a channel
dataset (The Well's layout) or a live job (a generate job's dataset once written, a
rollout's newest frame), and a live job's newest ``channel_stats`` event.

A source is ``{"kind": "ic", "id"}``, ``{"kind": "dataset", "id", "trajectory", "time"}``
or ``{"kind": "job", "job_id", "source"?}``. Snapshot reads and statistics are cached (a
few of each), so moving a slider or picking a spectrum plane does not recompute them.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from app.db.tables import InitialCondition, Job, JobEvent
from app.services import catalog, rollouts
from app.services.initial_conditions import channel_nu_note
from app.services.jobs_view import get_job, grid_label, job_dict
from app.state import AppState

FrameLoader = Callable[[dict[str, Any] | None], dict[str, Any] | None]


# The y⁺ at which the statistics of a stored snapshot report 1D spectra (each at its nearest
# plane, those beyond the centreline dropped; the centre plane is always added).
CHANNEL_SPECTRA_YPLUS = (1, 2, 5, 10, 15, 20, 30, 50, 100, 150, 200, 300, 500, 1000, 2000)


def _snapshot_statistics(
    velocity: np.ndarray, y: np.ndarray, nu: float, lx: float, lz: float
) -> dict[str, Any]:
    """``ChannelStatisticsResult.to_dict()`` of one snapshot with spectra at the planes
    nearest ``CHANNEL_SPECTRA_YPLUS`` and the centre plane (one FFT pass: the accumulator's
    result is asked twice, the second time for the planes the first one found)."""
    from physics.channel.stats import ChannelStatistics

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


def _attr_float(value: Any) -> float | None:
    try:
        out = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return out if math.isfinite(out) and out > 0 else None


@functools.lru_cache(maxsize=4)
def _cached_dataset_frame(path: str, _mtime_ns: int, trajectory: int, time: int) -> dict:
    """One snapshot of a channel dataset we stored in The Well's layout
    (``t1_fields/velocity`` (trajectory, time, nx, ny, nz, 3), ``dimensions/y``), read
    directly: the files the generate job writes carry the layout but not The Well's
    ``n_spatial_dims`` attribute, which the upload reader uses to recognise it."""
    import h5py

    with h5py.File(path, "r") as f:
        ds = f["t1_fields/velocity"]
        index = []
        if bool(ds.attrs.get("sample_varying", True)):
            index.append(trajectory)
        if bool(ds.attrs.get("time_varying", True)):
            index.append(time)
        data = np.asarray(ds[tuple(index)], dtype=np.float64)  # (*space, 3)
        dims = f.get("dimensions")
        spatial = ["x", "y", "z"]
        y_raw = None
        if isinstance(dims, h5py.Group):
            raw = dims.attrs.get("spatial_dims")
            if raw is not None:
                spatial = [s.decode() if isinstance(s, bytes) else str(s) for s in raw]
            if isinstance(dims.get("y"), h5py.Dataset):
                y_raw = dims["y"][()]
        if y_raw is None:
            raise ValueError(
                f"{Path(path).name} has no dimensions/y; a channel dataset stores the "
                "wall-normal cell centres there."
            )
        attrs = {}
        for key in f.attrs:
            try:
                value = f.attrs[key]
            except (OSError, TypeError):
                continue
            attrs[key] = value.tolist() if isinstance(value, np.ndarray) else value
    if data.ndim != 4 or data.shape[-1] != 3 or sorted(spatial) != ["x", "y", "z"]:
        raise ValueError(
            f"{Path(path).name}: t1_fields/velocity has shape {tuple(data.shape)} per "
            "snapshot; expected (nx, ny, nz, 3)."
        )
    order = [spatial.index(c) for c in ("x", "y", "z")]
    velocity = np.moveaxis(data.transpose(*order, 3)[..., order], -1, 0)
    y = np.asarray(y_raw, dtype=np.float64).reshape(-1)
    nu = _attr_float(attrs.get("nu"))
    if nu is None and _attr_float(attrs.get("re_tau")):
        nu = 1.0 / _attr_float(attrs["re_tau"])
    return {
        "velocity": velocity,
        "y": y,
        "lx": _attr_float(attrs.get("lx")),
        "lz": _attr_float(attrs.get("lz")),
        "nu": nu,
        "attrs": attrs,
    }


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


def channel_ic_frame(state: AppState, ic_id: str) -> dict[str, Any] | None:
    """A stored channel initial condition's snapshot: ``velocity`` (3, nx, ny, nz), ``y``,
    ``lx``, ``lz``, ``nu``, ``stats`` (its row's), ``label``, ``version``; None if there is
    no such channel initial condition."""
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
    shape = grid_label(frame["velocity"].shape[1:])
    frame.update(
        stats=stats, label=f"{row.name} · {shape}", version=f"ic:{row.id}", key=("ic", row.id)
    )
    return frame


def channel_dataset_layout(state: AppState, dataset_id: str) -> dict[str, Any] | None:
    """The trajectories and snapshots of a channel dataset laid out like The Well
    (``t1_fields/velocity`` (trajectory, time, nx, ny, nz, 3), ``dimensions/y``, optional
    ``dimensions/time``): ``{"dataset", "n_trajectories", "n_snapshots", "times",
    "grid"}``; None for an unknown dataset; ValueError with a sentence for a file that is
    not such a dataset."""
    import h5py

    found = catalog.dataset_file(state, dataset_id)
    if found is None:
        return None
    dataset, relative = found
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
    state: AppState, dataset_id: str, trajectory: int = 0, time: int = -1
) -> dict[str, Any] | None:
    """One snapshot of a channel dataset (as ``channel_ic_frame``): ``trajectory`` and
    ``time`` (negative from the end) pick it; ν, lx, lz from the file's attributes, else the
    dataset's parameters (``nu`` or ``re_tau``), else the defaults. ValueError with a
    sentence for a snapshot that is not in it."""
    layout = channel_dataset_layout(state, dataset_id)
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
        label=f"{d['name']} · {grid_label(frame['velocity'].shape[1:])} · trajectory "
        f"{trajectory} · snapshot {time} (t = {t:.4g})",
        version=f"dataset:{dataset_id}:{trajectory}:{time}",
        key=("dataset", dataset_id, int(trajectory), int(time)),
        layout={k: layout[k] for k in ("n_trajectories", "n_snapshots")},
    )
    return frame


def latest_channel_stats(
    state: AppState, job_id: str, after: int = 0, source: str | None = None
) -> dict[str, Any]:
    """One live update of a job's channel statistics: ``job`` (its row, or None),
    ``event``: the newest ``channel_stats`` event after ``after`` (``{"seq", "t", "stats",
    ...}``, only the newest is read: each carries the statistics so far), or None, and
    ``new``: how many arrived. Events of the job's children (a generate job's shards)
    count as the job's. With ``source``, only events whose payload says ``"source":
    source`` count (a rollout may report its model and its reference)."""
    with state.db.session() as session:
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


def channel_job_frame(
    state: AppState, job_id: str, source: str | None = None
) -> dict[str, Any] | None:
    """The newest 3D velocity of a channel job, for the slices, or None when there is none
    yet: a generate job's dataset once it exists (trajectory 0, last snapshot), a rollout's
    last frame (``source`` "model" or "reference"; y from the rollout's ``dimensions/y``,
    else from its channel initial condition)."""
    job = get_job(state, job_id)
    if job is None:
        return None
    dataset_id = (job.get("result") or {}).get("dataset_id")
    if dataset_id:
        try:
            frame = channel_dataset_frame(state, dataset_id, 0, -1)
        except (ValueError, OSError, KeyError):
            frame = None
        if frame is not None:
            return frame
    if job["kind"] == "rollout":
        try:
            return _channel_rollout_frame(state, job_id, source)
        except (ValueError, OSError, KeyError, IndexError, TypeError):
            return None
    return None


def rollout_grid(state: AppState, rollout_id: str) -> list[int] | None:
    """The grid (nx, ny, nz) of a channel rollout's stored velocity frames, read from its
    file (the row keeps one ``resolution`` only); None for a 2D rollout or no file yet."""
    import h5py

    from app.db.tables import Rollout

    with state.db.session() as session:
        rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        return None
    try:
        with h5py.File(state.artifacts.resolve(rollout.path), "r", swmr=True) as f:
            for source in f.attrs.get("sources", ["reference", "model"]):
                group = f.get(source.decode() if isinstance(source, bytes) else str(source))
                if not isinstance(group, h5py.Group):
                    continue
                for ds in group.values():
                    if isinstance(ds, h5py.Dataset) and ds.ndim == 5 and ds.shape[1] == 3:
                        return [int(s) for s in ds.shape[2:]]
    except (OSError, KeyError, ValueError):
        return None
    return None


def _channel_rollout_frame(
    state: AppState, job_id: str, source: str | None
) -> dict[str, Any] | None:
    import h5py

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
        base = channel_ic_frame(state, ic.id) or {}
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
        "label": f"rollout {rollout.id[:8]} · {source} · {grid_label(velocity.shape[1:])} · "
        f"frame {count - 1} (t = {t:.4g})",
        "version": f"rollout:{rollout.id}:{source}:{count - 1}",
    }


def channel_frame(state: AppState, source: dict[str, Any] | None) -> dict[str, Any] | None:
    """The 3D velocity a channel panel shows for its source: ``{"kind": "ic", "id"}``,
    ``{"kind": "dataset", "id", "trajectory", "time"}`` or ``{"kind": "job", "job_id",
    "source"?}``; None when there is none (yet)."""
    if not source:
        return None
    kind = source.get("kind")
    if kind == "ic":
        return channel_ic_frame(state, str(source.get("id")))
    if kind == "dataset":
        return channel_dataset_frame(
            state,
            str(source.get("id")),
            int(source.get("trajectory") or 0),
            int(source.get("time") if source.get("time") is not None else -1),
        )
    if kind == "job":
        return channel_job_frame(state, str(source.get("job_id")), source.get("source"))
    return None


def channel_view(
    state: AppState, source: dict[str, Any] | None, loader: FrameLoader | None = None
) -> dict[str, Any]:
    """Everything a channel panel draws for a static source (an initial condition or a
    dataset snapshot): ``stats`` (``ChannelStatisticsResult.to_dict()`` of the snapshot,
    or None), ``error`` (why there are no statistics), ``note`` (where ν came from),
    ``frame`` (the slice controls' metadata), ``layout`` (a dataset's trajectories and
    snapshots). ``loader`` (default ``channel_frame``) maps the source to its frame.
    ValueError with a sentence for a source that cannot be read."""
    frame = (loader or functools.partial(channel_frame, state))(source)
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
    state: AppState,
    source: dict[str, Any] | None,
    stats: dict[str, Any] | None = None,
    loader: FrameLoader | None = None,
) -> dict[str, Any] | None:
    """The slice controls' metadata of a live source's newest frame, or None."""
    frame = (loader or functools.partial(channel_frame, state))(source)
    return None if frame is None else _frame_meta(frame, stats)
