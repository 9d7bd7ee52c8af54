"""Export of vorticity trajectories to files other tools read: netCDF (CF-style, through
xarray and h5netcdf) and HDF5 in The Well's layout. Both read back through
``physics.formats.read_trajectories`` to the same arrays.

Input: vorticity shaped (time, ny, nx) or (trajectory, time, ny, nx), our (y, x) order, on
the periodic box [0, Lx) × [0, Ly) with points at i·Lx/nx, j·Ly/ny (``physics.grid``).
Eddyscope's flows are nondimensional, so units are written as "1" (CF's dimensionless).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import h5py
import numpy as np

FIELD = "vorticity"


def _as_4d(vorticity: np.ndarray) -> np.ndarray:
    array = np.asarray(vorticity)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"vorticity must be a numeric array; got {array.dtype}")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(
            "vorticity must be shaped (time, ny, nx) or (trajectory, time, ny, nx); "
            f"got {tuple(array.shape)}"
        )
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def _lengths(length: float | tuple[float, float]) -> tuple[float, float]:
    if np.ndim(length) == 0:
        return float(length), float(length)  # type: ignore[arg-type]
    lx, ly = length  # type: ignore[misc]
    return float(lx), float(ly)


def attr_value(value: Any) -> Any:
    """A value netCDF and HDF5 attributes can hold: numbers, strings, numeric arrays."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.number):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return np.asarray(value)
    return json.dumps(value, default=str)


def export_trajectory(
    path: str | Path,
    vorticity: np.ndarray,
    times: np.ndarray,
    length: float | tuple[float, float],
    attrs: Mapping[str, Any] | None = None,
    format: Literal["netcdf", "hdf5"] = "netcdf",
) -> Path:
    """Write ``vorticity`` (and its ``times``, the box ``length`` L or (Lx, Ly), parameters
    ``attrs``) to ``path`` as netCDF or as HDF5 in The Well's layout; returns the path."""
    path = Path(path)
    data = _as_4d(vorticity)
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (data.shape[1],):
        raise ValueError(
            f"times has shape {times.shape}; the vorticity has {data.shape[1]} time steps"
        )
    lx, ly = _lengths(length)
    ny, nx = data.shape[-2:]
    x = np.arange(nx) * (lx / nx)
    y = np.arange(ny) * (ly / ny)
    params = {str(k): attr_value(v) for k, v in (attrs or {}).items()}
    trajectories = _Trajectories(data, times, x, y, lx, ly, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "netcdf":
        _write_netcdf(path, trajectories)
    elif format == "hdf5":
        _write_well(path, trajectories)
    else:
        raise ValueError(f"format must be 'netcdf' or 'hdf5'; got {format!r}")
    return path


class _Trajectories(NamedTuple):
    """What every format writes, checked and prepared once by ``export_trajectory``: the
    vorticity (trajectory, time, ny, nx), its times, the point coordinates and box lengths,
    and the parameters as attribute values. One bundle, so that what the writers take is
    declared once (a new piece of content is added here, not to every writer's signature)."""

    data: np.ndarray
    times: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lx: float
    ly: float
    params: dict[str, Any]


def _write_netcdf(path: Path, trajectories: _Trajectories) -> None:
    data, times, x, y, lx, ly, params = trajectories
    import xarray as xr  # imported here: it takes a second, and only netCDF needs it

    nondim = "nondimensional (simulation units)"
    ds = xr.Dataset(
        {
            FIELD: (
                ("trajectory", "time", "y", "x"),
                data,
                {
                    "long_name": "vorticity (z component), curl of the velocity",
                    "units": "1",
                    "comment": nondim,
                },
            )
        },
        coords={
            "trajectory": ("trajectory", np.arange(data.shape[0]), {"long_name": "trajectory"}),
            "time": ("time", times, {"long_name": "time", "units": "1", "axis": "T"}),
            "y": ("y", y, {"long_name": "y coordinate", "units": "1", "axis": "Y"}),
            "x": ("x", x, {"long_name": "x coordinate", "units": "1", "axis": "X"}),
        },
        attrs={
            **params,
            "Conventions": "CF-1.8",
            "title": "Eddyscope vorticity trajectories",
            "source": "eddyscope",
            "comment": f"periodic box [0, {lx}) x [0, {ly}); {nondim}",
            "length_x": lx,
            "length_y": ly,
        },
    )
    encoding = {name: {"_FillValue": None} for name in ("trajectory", "time", "x", "y", FIELD)}
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)


def _strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=h5py.string_dtype())


def _write_well(path: Path, trajectories: _Trajectories) -> None:
    """The Well's layout: space stored (x, y), so our (y, x) arrays are transposed."""
    data, times, x, y, lx, ly, params = trajectories
    numeric = [k for k, v in params.items() if isinstance(v, int | float | np.number)]
    with h5py.File(path, "w") as f:
        for key, value in params.items():
            f.attrs[key] = value
        f.attrs["dataset_name"] = str(params.get("dataset_name", params.get("flow", "eddyscope")))
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = data.shape[0]
        f.attrs["simulation_parameters"] = _strings(numeric)
        f.attrs["generator"] = "eddyscope"
        f.attrs["length_x"] = lx
        f.attrs["length_y"] = ly

        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = _strings(["x", "y"])
        time = dims.create_dataset("time", data=times)
        time.attrs["sample_varying"] = False
        for name, coords in (("x", x), ("y", y)):
            ds = dims.create_dataset(name, data=coords)
            ds.attrs["sample_varying"] = False
            ds.attrs["time_varying"] = False

        bcs = f.create_group("boundary_conditions")
        for name, n in (("x", len(x)), ("y", len(y))):
            bc = bcs.create_group(f"{name}_periodic")
            bc.attrs["associated_dims"] = _strings([name])
            bc.attrs["associated_fields"] = _strings([])
            bc.attrs["bc_type"] = "periodic"
            bc.attrs["sample_varying"] = False
            bc.attrs["time_varying"] = False
            mask = np.zeros(n, dtype=bool)
            mask[[0, -1]] = True
            bc.create_dataset("mask", data=mask)
            bc.create_dataset("values", data=np.zeros(0, dtype=np.float32))

        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = _strings(numeric)
        for key in numeric:
            ds = scalars.create_dataset(key, data=np.asarray(params[key]))
            ds.attrs["sample_varying"] = False
            ds.attrs["time_varying"] = False

        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = _strings([FIELD])
        ny, nx = data.shape[-2:]
        # Stored (trajectory, time, x, y), as The Well does; one frame per chunk.
        ds = t0.create_dataset(FIELD, data=data.swapaxes(-1, -2), chunks=(1, 1, nx, ny))
        ds.attrs["dim_varying"] = [True, True]
        ds.attrs["sample_varying"] = True
        ds.attrs["time_varying"] = True
        for group in ("t1_fields", "t2_fields"):
            f.create_group(group).attrs["field_names"] = _strings([])
