"""Homogeneous isotropic turbulence (hit3d) for display: what the Data page's HIT panels
draw for one snapshot of a hit3d dataset or for a running hit3d generate job.

A source is ``{"kind": "dataset", "id", "trajectory", "time"}`` (``time`` negative from
the end) or ``{"kind": "job", "job_id"}``. Either gives a *view*:

    label, n, nu, length, trajectory, snapshot, t     what is shown, on which n³ grid
    stats, k, spectrum, pdf                             ``app.hit3d_summary.snapshot_summary``
    series {"t", "energy", "dissipation", "source"}    E(t), ε(t) of the trajectory
    slices {"vorticity"|"q": {"x","y","z"}} or None     midplanes (numpy; not sent as is)
    layout {"n_trajectories", "n_snapshots"}, job, final, version

Files are read in bounded pieces: one snapshot (one HDF5 chunk, (n, n, n, 3)) and the
(trajectory, time) series of ``statistics/``; never a whole dataset. A dataset whose
``statistics/`` is missing or unfinished has E(t), ε(t) computed from at most
``SERIES_SNAPSHOTS`` stored snapshots, one read at a time. A dataset view is cached by
(file, its mtime, trajectory, snapshot), so switching |ω| to Q redraws without recomputing.

A running job shows its newest ``hit3d_stats`` event (the worker's summary of the snapshot
it just stored, ``app.hit3d_summary.LiveSummaries``) and the slices of the newest snapshot
on disk: its finished shards' files (each written whole when its shard ends). Once the job
has succeeded its view is its dataset's (trajectory 0, last snapshot).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from app import jobs
from app.db.tables import Job, JobEvent
from app.hit3d_summary import (
    as_batch,
    series_summary,
    snapshot_slices,
    snapshot_statistics,
    snapshot_summary,
)
from app.services import catalog
from app.services.jobs_view import get_job
from app.services.previews import evenly_spaced
from app.state import AppState

EVENT = "hit3d_stats"
SERIES_SNAPSHOTS = 32
TWO_PI = 2 * math.pi


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _attr(attrs: Any, key: str, default: float) -> float:
    try:
        value = float(np.asarray(attrs.get(key)).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return default
    return value if math.isfinite(value) and value > 0 else default


def _velocity(f) -> Any:
    import h5py

    group = f.get("t1_fields")
    ds = group.get("velocity") if isinstance(group, h5py.Group) else None
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 6 or ds.shape[-1] != 3:
        raise ValueError(
            "The file holds no hit3d velocity: t1_fields/velocity (trajectory, time, n, n, n, "
            "3) is missing or shaped otherwise."
        )
    n = ds.shape[2]
    if not ds.shape[2] == ds.shape[3] == ds.shape[4]:
        raise ValueError(f"t1_fields/velocity is not on a cube: {tuple(ds.shape[2:5])}.")
    return ds, n


def file_layout(path: Path | str) -> dict[str, Any]:
    """The shape of a hit3d file (a dataset or a shard): ``n_trajectories``,
    ``n_snapshots``, ``n``, ``times``, ``nu``, ``length``, the attributes that say how it was
    made (``filter``, ``solver_resolution``, ``forcing``, ``first_trajectory``). ValueError,
    in a sentence, for a file that is not one."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{Path(path).name} cannot be read ({exc}).") from exc
    with f:
        ds, n = _velocity(f)
        n_traj, n_snap = int(ds.shape[0]), int(ds.shape[1])
        times = None
        dims = f.get("dimensions")
        if isinstance(dims, h5py.Group) and isinstance(dims.get("time"), h5py.Dataset):
            raw = np.asarray(dims["time"][()], dtype=np.float64).reshape(-1)
            times = raw.tolist() if raw.size == n_snap else None
        attrs = f.attrs
        return {
            "n_trajectories": n_traj,
            "n_snapshots": n_snap,
            "n": int(n),
            "times": times if times is not None else [float(i) for i in range(n_snap)],
            "nu": _attr(attrs, "nu", 0.04),
            "length": _attr(attrs, "length", TWO_PI),
            "filter": str(attrs.get("filter", "none")),
            "solver_resolution": int(_attr(attrs, "solver_resolution", n)),
            "forcing": str(attrs.get("forcing", "none")),
            "first_trajectory": int(_attr(attrs, "first_trajectory", 0) or 0),
        }


def read_snapshot(path: Path | str, trajectory: int, time: int) -> np.ndarray:
    """One stored velocity (n, n, n, 3), float32: one chunk of the file."""
    import h5py

    with h5py.File(path, "r") as f:
        ds, _ = _velocity(f)
        return np.asarray(ds[trajectory, time], dtype=np.float32)


def read_series(path: Path | str, trajectory: int, layout: dict[str, Any]) -> dict[str, Any]:
    """E(t) and ε(t) of one trajectory: the solver's energy budget from ``statistics/``
    (``source`` "solver") when it is there and finite, else ½⟨|u|²⟩ and 2ν⟨SᵢⱼSᵢⱼ⟩ of at
    most ``SERIES_SNAPSHOTS`` stored snapshots (``source`` "stored")."""
    import h5py

    times = np.asarray(layout["times"], dtype=np.float64)
    with h5py.File(path, "r") as f:
        group = f.get("statistics")
        if isinstance(group, h5py.Group) and all(
            isinstance(group.get(k), h5py.Dataset) for k in ("energy", "dissipation")
        ):
            energy = np.asarray(group["energy"][trajectory], dtype=np.float64)
            dissipation = np.asarray(group["dissipation"][trajectory], dtype=np.float64)
            if np.isfinite(energy).all() and np.isfinite(dissipation).all():
                return {**series_summary(times, energy, dissipation), "source": "solver"}
    picked = evenly_spaced(len(times), SERIES_SNAPSHOTS)
    energy, dissipation = [], []
    for s in picked:
        u = as_batch(read_snapshot(path, trajectory, s))
        stats = snapshot_statistics(u, layout["nu"], layout["length"])
        energy.append(stats["energy"])
        dissipation.append(stats["dissipation"])
    return {**series_summary(times[picked], energy, dissipation), "source": "stored"}


@functools.lru_cache(maxsize=4)
def _cached_snapshot_view(path: str, _mtime_ns: int, trajectory: int, time: int) -> dict[str, Any]:
    layout = file_layout(path)
    velocity = read_snapshot(path, trajectory, time)
    if not np.isfinite(velocity).all():
        raise ValueError(
            f"Trajectory {trajectory}, snapshot {time} is not finite (a shard that failed "
            "or has not been joined yet)."
        )
    return {
        **snapshot_summary(velocity, layout["nu"], layout["length"]),
        "slices": snapshot_slices(velocity, layout["length"]),
        "series": read_series(path, trajectory, layout),
        "nu": layout["nu"],
        "length": layout["length"],
        "t": float(layout["times"][time]),
    }


def snapshot_view(path: Path | str, trajectory: int = 0, time: int = -1) -> dict[str, Any]:
    """The view of one stored snapshot of a hit3d file (``time`` negative from the end),
    without its label. ValueError, in a sentence, for one that is not in the file."""
    layout = file_layout(path)
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
    view = dict(_cached_snapshot_view(str(path), _mtime(Path(path)), int(trajectory), time))
    view.update(
        trajectory=int(trajectory),
        snapshot=time,
        layout={"n_trajectories": n_traj, "n_snapshots": n_snap},
        filter=layout["filter"],
        solver_resolution=layout["solver_resolution"],
        version=f"{path}:{_mtime(Path(path))}:{trajectory}:{time}",
    )
    return view


def hit3d_dataset_layout(state: AppState, dataset_id: str) -> dict[str, Any] | None:
    """``file_layout`` of a hit3d dataset with its ``dataset`` dict and ``path``; None for
    an unknown dataset; ValueError, in a sentence, for a file that is not hit3d's."""
    found = catalog.dataset_file(state, dataset_id)
    if found is None:
        return None
    dataset, relative = found
    path = state.artifacts.resolve(relative)
    try:
        layout = file_layout(path)
    except ValueError as exc:
        raise ValueError(f"The dataset {dataset['name']}: {exc}") from None
    return {**layout, "dataset": dataset, "path": str(path)}


def _grid_words(n: int, view: dict[str, Any]) -> str:
    solver = view.get("solver_resolution")
    if view.get("filter") not in (None, "none") and solver and solver != n:
        return f"{n}³ ({view['filter']} filter of the solver's {solver}³)"
    return f"{n}³"


def hit3d_dataset_view(
    state: AppState, dataset_id: str, trajectory: int = 0, time: int = -1
) -> dict[str, Any] | None:
    """The view of one snapshot of a hit3d dataset; None for an unknown dataset."""
    layout = hit3d_dataset_layout(state, dataset_id)
    if layout is None:
        return None
    view = snapshot_view(layout["path"], trajectory, time)
    d = layout["dataset"]
    view["label"] = (
        f"{d['name']} · {_grid_words(view['n'], view)} · trajectory {view['trajectory']} · "
        f"snapshot {view['snapshot']} of {layout['n_snapshots']} (t = {view['t']:.4g})"
    )
    view["dataset_id"] = dataset_id
    return view


# --- live jobs ---------------------------------------------------------------------------


def latest_event(state: AppState, job_id: str) -> dict[str, Any] | None:
    """The newest ``hit3d_stats`` event of a job or of its shards: ``{"seq", **payload}``,
    or None."""
    with state.db.session() as session:
        ids = [job_id, *session.scalars(select(Job.id).where(Job.parent_id == job_id))]
        row = session.execute(
            select(JobEvent.seq, JobEvent.payload)
            .where(JobEvent.job_id.in_(ids), JobEvent.type == EVENT)
            .order_by(JobEvent.seq.desc())
            .limit(1)
        ).first()
    return None if row is None else {"seq": int(row[0]), **(row[1] or {})}


def newest_shard_file(state: AppState, job_id: str) -> str | None:
    """The path of the job's most recently finished shard file, or None."""
    with state.db.session() as session:
        rows = session.execute(
            select(Job.result)
            .where(Job.parent_id == job_id, Job.status == "succeeded")
            .order_by(Job.finished_at.desc())
        ).all()
    for (result,) in rows:
        relative = (result or {}).get("path")
        if relative:
            path = state.artifacts.resolve(relative)
            if path.is_file():
                return str(path)
    return None


def hit3d_job_view(state: AppState, job_id: str) -> dict[str, Any] | None:
    """The view of a hit3d generate job: its dataset's (trajectory 0, last snapshot) once it
    has succeeded; while it runs, its newest ``hit3d_stats`` event for the statistics,
    spectrum, PDFs and E(t), ε(t), with the slices of the newest snapshot stored so far (a
    finished shard's); None for an unknown job. ``job`` is the job's dict, ``final``
    whether it has ended, ``version`` what changes when there is something new to draw."""
    job = get_job(state, job_id)
    if job is None:
        return None
    status = job["status"]
    final = status not in (*jobs.ACTIVE, "finishing")
    dataset_id = (job.get("result") or {}).get("dataset_id")
    if status == "succeeded" and dataset_id:
        try:
            view = hit3d_dataset_view(state, dataset_id, 0, -1)
        except (ValueError, OSError, KeyError):
            view = None
        if view is not None:
            return {**view, "job": job, "final": True, "version": f"{status}:{view['version']}"}
    event = latest_event(state, job_id)
    n = int((job.get("params") or {}).get("resolution") or 0)
    view: dict[str, Any] = {"job": job, "final": final, "n": n, "slices": None}
    view.update(dict.fromkeys(("stats", "k", "spectrum", "pdf", "series", "t")))
    if event is not None:
        view.update({k: event.get(k) for k in ("stats", "k", "spectrum", "pdf", "t")})
        view.update(
            n=int(event.get("n") or n),
            nu=(event.get("stats") or {}).get("nu"),
            trajectory=event.get("trajectory"),
            snapshot=event.get("snapshot"),
            series={**(event.get("series") or {}), "source": "solver"},
        )
    shard = newest_shard_file(state, job_id)
    slices_at = None
    if shard is not None:
        try:
            stored = snapshot_view(shard, 0, -1)
        except (ValueError, OSError, KeyError):
            stored = None
        if stored is not None:
            view["slices"] = stored["slices"]
            first = file_layout(shard)["first_trajectory"]
            slices_at = f"trajectory {first}, snapshot {stored['snapshot']} (t = {stored['t']:.4g})"
            if event is None:  # a shard on disk but no event read: show the shard's numbers
                view.update({k: stored[k] for k in ("stats", "k", "spectrum", "pdf", "t", "n")})
                view.update(trajectory=first, snapshot=stored["snapshot"])
                view["series"] = stored["series"]
    short = job_id[:8]
    grid = f"{view['n']}³" if view.get("n") else "its grid"
    if view.get("stats") is not None:
        view["label"] = (
            f"Generate job {short} ({status}) · {grid} · trajectory {view['trajectory']} · "
            f"snapshot {view['snapshot']} (t = {float(view['t']):.4g})"
        )
    else:
        view["label"] = f"Generate job {short} ({status}) · {grid} · nothing stored yet"
    view["slices_at"] = slices_at
    view["version"] = f"{status}:{event['seq'] if event else 0}:{shard or ''}"
    return view


def hit3d_view(state: AppState, source: dict[str, Any] | None) -> dict[str, Any] | None:
    """The view of a panel's source (see the module's docstring); None when there is none.
    ValueError, in a sentence, for a snapshot that is not there or a file that is not
    hit3d's."""
    if not source:
        return None
    if source.get("kind") == "dataset":
        time = source.get("time")
        return hit3d_dataset_view(
            state,
            str(source.get("id")),
            int(source.get("trajectory") or 0),
            int(time) if time is not None else -1,
        )
    if source.get("kind") == "job":
        return hit3d_job_view(state, str(source.get("job_id")))
    return None


def active_hit3d_job(state: AppState) -> str | None:
    """The newest queued or running generate job of hit3d (not a shard), or None."""
    from app.services.flows import is_hit3d_flow
    from app.services.jobs_view import active_generate_job

    return active_generate_job(state, is_hit3d_flow)
