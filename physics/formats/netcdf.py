"""netCDF files through xarray (netCDF-4/HDF5 with the h5netcdf engine; classic netCDF-3
with scipy's).

Every data variable whose dimensions are a y and an x dimension, optionally a time and a
trajectory dimension, and nothing else, is a field; it is transposed to
(trajectory, time, y, x) whatever order the file stores it in. Dimension names accepted:

- x: ``x``, ``lon``, ``longitude``; y: ``y``, ``lat``, ``latitude``
- time: ``time``, ``t``
- trajectory: ``trajectory``, ``traj``, ``sample``, ``batch``, ``member``, ``ensemble``,
  ``realization``

Times are read undecoded (numbers, not dates). ``physics.formats.export`` writes this layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from physics.formats.core import (
    TrajectoryData,
    UnrecognisedLayout,
    check_numeric,
    plain,
    select,
)

X_DIMS = ("x", "lon", "longitude")
Y_DIMS = ("y", "lat", "latitude")
TIME_DIMS = ("time", "t")
TRAJECTORY_DIMS = ("trajectory", "traj", "sample", "batch", "member", "ensemble", "realization")

NETCDF3_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")

if TYPE_CHECKING:
    import xarray as xr


def _open(path: Path) -> xr.Dataset:
    import xarray as xr  # imported here: it takes a second, and only netCDF needs it

    with open(path, "rb") as fh:
        magic = fh.read(4)
    engine = "scipy" if magic in NETCDF3_MAGIC else "h5netcdf"
    return xr.open_dataset(path, engine=engine, decode_times=False, decode_timedelta=False)


def _role(dim: str) -> str | None:
    name = dim.lower()
    for role, names in (
        ("x", X_DIMS),
        ("y", Y_DIMS),
        ("time", TIME_DIMS),
        ("trajectory", TRAJECTORY_DIMS),
    ):
        if name in names:
            return role
    return None


def _field_dims(var: xr.DataArray) -> dict[str, str] | None:
    """role → dimension name, when the variable is a field; else None."""
    roles: dict[str, str] = {}
    for dim in var.dims:
        role = _role(str(dim))
        if role is None or role in roles:
            return None
        roles[role] = str(dim)
    if "x" not in roles or "y" not in roles or var.dtype.kind not in "fiu":
        return None
    return roles


def describe(ds: xr.Dataset) -> str:
    parts = [
        f"{name} ({', '.join(map(str, var.dims))}) {var.dtype}"
        for name, var in ds.variables.items()
    ]
    return "variables: " + ("; ".join(parts) if parts else "none")


def read_netcdf(path: str | Path, field: str | None = None) -> TrajectoryData:
    path = Path(path)
    with _open(path) as ds:
        candidates = {
            str(name): roles
            for name, var in ds.data_vars.items()
            if (roles := _field_dims(var)) is not None
        }
        if not candidates:
            raise UnrecognisedLayout(
                f"{path.name} has no variable with dimensions (trajectory?, time?, y, x); "
                f"it holds {describe(ds)}"
            )
        fields = {}
        constant = []
        roles_seen: dict[str, str] = {}
        for name in select(candidates, field, path.name):
            roles = candidates[name]
            var = ds[name]
            for role in ("trajectory", "time"):
                if role not in roles:
                    var = var.expand_dims(role)
                    roles = {**roles, role: role}
            array = var.transpose(roles["trajectory"], roles["time"], roles["y"], roles["x"]).values
            check_numeric(array, name)
            fields[name] = np.ascontiguousarray(array)
            if "time" not in candidates[name]:
                constant.append(name)
            roles_seen.update({r: d for r, d in candidates[name].items()})
        attrs: dict[str, Any] = {k: plain(v) for k, v in ds.attrs.items()}
        if constant:
            attrs["constant_fields"] = constant

        def coord(role: str) -> np.ndarray | None:
            dim = roles_seen.get(role)
            if dim is None or dim not in ds.variables:
                return None
            return np.asarray(ds[dim].values)

        return TrajectoryData(
            fields=fields,
            times=coord("time"),
            x=coord("x"),
            y=coord("y"),
            attrs=attrs,
            source_format="netcdf",
        )
