"""PDEBench's 2D HDF5 layouts (pdebench/PDEBench). Space is stored (x, y); we transpose.

Incompressible Navier–Stokes (``ns_incom_inhom_2d_*.h5``, written by
``pdebench/data_gen/src/data_io.py``): ``velocity`` (N, T, X, Y, 2), ``particles``
(N, T, X, Y, 1), ``force`` (N, X, Y, 2), ``t`` (N, T), the generator's settings as a YAML
string in the root attribute ``config``; no spatial coordinates. Read as ``velocity_x``,
``velocity_y``, ``particles`` and the constant ``force_x``, ``force_y``. No vorticity is
derived here: where the box is periodic, ``physics.spectral`` gives it from the velocity
(ω = ∂v/∂x − ∂u/∂y); PDEBench's incompressible runs are not periodic, so take finite
differences there.

Per-sample groups (2D diffusion–reaction ``2D_diff-react_NA_NA.h5``, shallow water
``2D_rdb_NA_NA.h5``): groups ``0000``, ``0001``, … each holding ``data`` (T, X, Y, C) and
``grid/x``, ``grid/y``, ``grid/t``. Read as one trajectory per group; channel ``c`` is the
field ``data_<c>`` (``data`` when C = 1). The files do not name the channels (diffusion–
reaction holds the activator u and inhibitor v, shallow water the height h).

Compressible Navier–Stokes (``2D_CFD_*.hdf5``): ``density``, ``Vx``, ``Vy``, ``pressure``
(N, T, X, Y), ``t-coordinate``, ``x-coordinate``, ``y-coordinate``.

Where a time grid holds one more entry than the data has steps (some PDEBench generators
store the end time too), the extra entry is dropped.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from physics.formats.core import TrajectoryData, common_times, hdf5_attrs, select

CFD_FIELDS = ("density", "Vx", "Vy", "pressure")


def pdebench_layout(f: h5py.File) -> str | None:
    """``pdebench-ns-incomp``, ``pdebench-per-sample``, ``pdebench-cfd`` or None."""
    velocity = f.get("velocity")
    if isinstance(velocity, h5py.Dataset) and velocity.ndim == 5 and velocity.shape[-1] == 2:
        return "pdebench-ns-incomp"
    cfd = [f.get(name) for name in CFD_FIELDS]
    if any(isinstance(d, h5py.Dataset) and d.ndim == 4 for d in cfd) and "x-coordinate" in f:
        return "pdebench-cfd"
    samples = _sample_groups(f)
    if samples and isinstance(f[samples[0]].get("data"), h5py.Dataset):
        return "pdebench-per-sample"
    return None


def _sample_groups(f: h5py.File) -> list[str]:
    return sorted(k for k, v in f.items() if k.isdigit() and isinstance(v, h5py.Group))


def _fit_times(t: np.ndarray | None, n_steps: int) -> np.ndarray | None:
    if t is None:
        return None
    t = np.asarray(t)
    if t.shape[-1] == n_steps + 1:
        t = t[..., :n_steps]
    return t if t.shape[-1] == n_steps else None


def _xy(array: np.ndarray) -> np.ndarray:
    """(..., x, y) → (..., y, x)."""
    return np.ascontiguousarray(array.swapaxes(-1, -2))


def read_pdebench(path: str | Path, field: str | None = None) -> TrajectoryData:
    path = Path(path)
    with h5py.File(path, "r") as f:
        layout = pdebench_layout(f)
        if layout == "pdebench-ns-incomp":
            data = _read_ns_incomp(f, path, field)
        elif layout == "pdebench-cfd":
            data = _read_cfd(f, path, field)
        elif layout == "pdebench-per-sample":
            data = _read_per_sample(f, path, field)
        else:
            raise ValueError(f"{path.name} is not in a PDEBench 2D layout")
        data.attrs = {**hdf5_attrs(f), **data.attrs}
    data.source_format = layout
    return data


def _read_ns_incomp(f: h5py.File, path: Path, field: str | None) -> TrajectoryData:
    velocity = f["velocity"]
    n_steps = velocity.shape[1]
    sources: dict[str, tuple[str, int, bool]] = {
        "velocity_x": ("velocity", 0, True),
        "velocity_y": ("velocity", 1, True),
    }
    if isinstance(f.get("particles"), h5py.Dataset):
        sources["particles"] = ("particles", 0, True)
    if isinstance(f.get("force"), h5py.Dataset):
        sources["force_x"] = ("force", 0, False)
        sources["force_y"] = ("force", 1, False)
    fields = {}
    for name in select(sources, field, path.name):
        ds_name, component, in_time = sources[name]
        array = f[ds_name][..., component]
        fields[name] = _xy(array if in_time else array[:, None])
    t = f["t"][()] if isinstance(f.get("t"), h5py.Dataset) else None
    constant = [n for n in fields if not sources[n][2]]
    return TrajectoryData(
        fields=fields,
        times=common_times(_fit_times(t, n_steps)),
        attrs={"constant_fields": constant} if constant else {},
    )


def _read_cfd(f: h5py.File, path: Path, field: str | None) -> TrajectoryData:
    present = [n for n in CFD_FIELDS if isinstance(f.get(n), h5py.Dataset) and f[n].ndim == 4]
    fields = {name: _xy(f[name][()]) for name in select(present, field, path.name)}
    n_steps = f[present[0]].shape[1]

    def coord(name: str) -> np.ndarray | None:
        ds = f.get(name)
        return ds[()] if isinstance(ds, h5py.Dataset) else None

    return TrajectoryData(
        fields=fields,
        times=common_times(_fit_times(coord("t-coordinate"), n_steps)),
        x=coord("x-coordinate"),
        y=coord("y-coordinate"),
    )


def _read_per_sample(f: h5py.File, path: Path, field: str | None) -> TrajectoryData:
    samples = [s for s in _sample_groups(f) if isinstance(f[s].get("data"), h5py.Dataset)]
    first = f[samples[0]]["data"]
    if first.ndim != 4:
        raise ValueError(
            f"{path.name}: {samples[0]}/data has shape {first.shape}; "
            "expected a 2D layout (time, x, y, channel)"
        )
    n_channels = first.shape[-1]
    names = ["data"] if n_channels == 1 else [f"data_{c}" for c in range(n_channels)]
    wanted = select(names, field, path.name)
    per_channel: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    for sample in samples:
        data = f[sample]["data"]
        if data.shape != first.shape:
            raise ValueError(
                f"{path.name}: {sample}/data has shape {data.shape} but {samples[0]}/data has "
                f"{first.shape}; samples of different shapes are not read as one set"
            )
        block = data[()]
        for name in wanted:
            per_channel[name].append(block[..., names.index(name)])
    fields = {name: _xy(np.stack(arrays)) for name, arrays in per_channel.items()}
    grid = f[samples[0]].get("grid")

    def coord(name: str) -> np.ndarray | None:
        ds = grid.get(name) if isinstance(grid, h5py.Group) else None
        return ds[()] if isinstance(ds, h5py.Dataset) else None

    config = f[samples[0]].attrs.get("config")
    attrs = {"samples": samples}
    if config is not None:
        attrs["config"] = config.decode() if isinstance(config, bytes) else str(config)
    return TrajectoryData(
        fields=fields,
        times=_fit_times(coord("t"), first.shape[0]),
        x=coord("x"),
        y=coord("y"),
        attrs=attrs,
    )
