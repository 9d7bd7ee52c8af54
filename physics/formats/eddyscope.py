"""Eddyscope's own HDF5 files, as ``physics.formats.store`` writes them.

Datasets (``DatasetWriter``): ``t0_fields/<name>`` shaped (trajectory, time, ny, nx) in our
(y, x) order, ``dimensions/{time,x,y}``, the parameters as root attributes. Unlike a file of
The Well it has no ``dataset_name`` / ``n_spatial_dims`` root attributes, which is how the
two are told apart (``detect_format``).

Rollouts (``RolloutWriter``): one group per source (``reference``, ``model``) holding
``vorticity`` shaped (time, ny, nx), ``dimensions/time`` (which counts the finished frames),
and the root attribute ``sources``. They read as one trajectory: the reference solver's
frames as ``vorticity`` and every other source ``s`` as ``s_vorticity``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from physics.formats.core import TrajectoryData, hdf5_attrs, select


def is_eddyscope_dataset(f: h5py.File) -> bool:
    return (
        isinstance(f.get("t0_fields"), h5py.Group)
        and "dataset_name" not in f.attrs
        and "n_spatial_dims" not in f.attrs
    )


def is_eddyscope_rollout(f: h5py.File) -> bool:
    return (
        "sources" in f.attrs
        and isinstance(f.get("dimensions/time"), h5py.Dataset)
        and any(isinstance(f.get(f"{s}/vorticity"), h5py.Dataset) for s in _sources(f))
    )


def _sources(f: h5py.File) -> list[str]:
    value = f.attrs.get("sources", [])
    if isinstance(value, str | bytes):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value]


def _coords(f: h5py.File) -> tuple[np.ndarray | None, ...]:
    dims = f.get("dimensions")
    if not isinstance(dims, h5py.Group):
        return None, None, None
    out = []
    for name in ("time", "x", "y"):
        ds = dims.get(name)
        out.append(ds[()] if isinstance(ds, h5py.Dataset) else None)
    return tuple(out)


def read_eddyscope(path: str | Path, field: str | None = None) -> TrajectoryData:
    """A dataset or a rollout file written by ``physics.formats.store``."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        if not is_eddyscope_dataset(f) and is_eddyscope_rollout(f):
            return _read_rollout(f, path, field)
        group = f["t0_fields"]
        names = [k for k, v in group.items() if isinstance(v, h5py.Dataset)]
        fields = {k: group[k][()] for k in select(names, field, path.name)}
        times, x, y = _coords(f)
        attrs = hdf5_attrs(f)
    return TrajectoryData(
        fields=fields, times=times, x=x, y=y, attrs=attrs, source_format="eddyscope"
    )


def _read_rollout(f: h5py.File, path: Path, field: str | None) -> TrajectoryData:
    times, x, y = _coords(f)
    count = len(times)
    by_name = {
        ("vorticity" if s == "reference" else f"{s}_vorticity"): s
        for s in _sources(f)
        if isinstance(f.get(f"{s}/vorticity"), h5py.Dataset)
    }
    # Frames past the time axis are still being written; leave them out.
    fields = {
        name: f[by_name[name]]["vorticity"][:count][None]
        for name in select(by_name, field, path.name)
    }
    return TrajectoryData(
        fields=fields,
        times=times,
        x=x,
        y=y,
        attrs=hdf5_attrs(f),
        source_format="eddyscope-rollout",
    )
