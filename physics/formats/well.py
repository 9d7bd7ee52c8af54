"""HDF5 files of The Well (PolymathicAI), 2D only.

The layout (the_well's ``docs/data_format.md``, and how ``the_well.data.WellDataset`` reads
it): root attributes ``dataset_name``, ``grid_type``, ``n_spatial_dims``, ``n_trajectories``,
``simulation_parameters`` (names of further root attributes holding parameter values);
``dimensions/`` with the attribute ``spatial_dims`` (e.g. ``['x', 'y']``), ``time`` shaped
(time,) or (trajectory, time) and one coordinate dataset per spatial dimension;
``boundary_conditions/<name>/`` with ``bc_type``; ``scalars/`` (``field_names``);
``t0_fields/`` (scalars), ``t1_fields/`` (vectors, a trailing axis of length D) and
``t2_fields/`` (tensors, two trailing axes), each with ``field_names``. A field is shaped
(trajectory, time, *space, *tensor), but an axis is absent where its attribute says the
field does not vary along it: ``sample_varying``, ``time_varying``, ``dim_varying``
(one flag per spatial dimension).

Space is stored in the order of ``spatial_dims``, which in The Well's files is (x, y); we
transpose to our (y, x). Vector components are named ``<field>_<dim>`` (``velocity_x``,
``velocity_y``) and tensor components ``<field>_<dim><dim>`` (``stress_xy``), as the_well
names them. Fields that do not vary in time get a time axis of length 1 and are listed in
``attrs["constant_fields"]``; fields that do not vary between trajectories or along a
spatial dimension are broadcast.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physics.formats.core import TrajectoryData, common_times, hdf5_attrs, plain, select

TENSOR_GROUPS = ("t0_fields", "t1_fields", "t2_fields")


def is_the_well(f: h5py.File) -> bool:
    return "n_spatial_dims" in f.attrs and (
        "dataset_name" in f.attrs or isinstance(f.get("t0_fields"), h5py.Group)
    )


def _names(group: h5py.Group) -> list[str]:
    listed = plain(group.attrs.get("field_names", []))
    if isinstance(listed, str):
        listed = [listed]
    # field_names should list every dataset; fall back on what is there when it does not.
    present = [k for k, v in group.items() if isinstance(v, h5py.Dataset)]
    return [n for n in listed if n in present] or present


def _flag(ds: h5py.Dataset, name: str, default: bool = True) -> bool:
    return bool(ds.attrs.get(name, default))


def _components(spatial: list[str], order: int) -> list[tuple[str, tuple[int, ...]]]:
    """(suffix, index) per component of a tensor of ``order``: ('x', (0,)), ('xy', (0, 1))…"""
    out = []
    for index in itertools.product(range(len(spatial)), repeat=order):
        out.append(("".join(spatial[i] for i in index), index))
    return out


def _available(f: h5py.File, spatial: list[str]) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    """Exposed name → (group, dataset, component index)."""
    out = {}
    for order, group_name in enumerate(TENSOR_GROUPS):
        group = f.get(group_name)
        if not isinstance(group, h5py.Group):
            continue
        for name in _names(group):
            for suffix, index in _components(spatial, order):
                out[f"{name}_{suffix}" if suffix else name] = (group_name, name, index)
    return out


def _full_field(
    ds: h5py.Dataset,
    index: tuple[int, ...],
    n_traj: int,
    n_time: int,
    sizes: list[int],
    order: int,
) -> tuple[np.ndarray, bool]:
    """One component as (trajectory, time, *space) in file order; and whether it varies in time."""
    sample_varying = _flag(ds, "sample_varying")
    time_varying = _flag(ds, "time_varying")
    dim_varying = [bool(v) for v in np.atleast_1d(ds.attrs.get("dim_varying", [True] * 2))]
    tensor_axes = (slice(None),) * (ds.ndim - order) + index
    data = ds[tensor_axes] if order else ds[()]
    # Put back every axis the file leaves out, then broadcast to the full shape.
    if not sample_varying:
        data = data[None]
    if not time_varying:
        data = data[:, None]
    for axis, varies in enumerate(dim_varying):
        if not varies:
            data = np.expand_dims(data, 2 + axis)
    target = (data.shape[0] if sample_varying else n_traj, n_time if time_varying else 1, *sizes)
    return np.ascontiguousarray(np.broadcast_to(data, target)), time_varying


def read_the_well(path: str | Path, field: str | None = None) -> TrajectoryData:
    path = Path(path)
    with h5py.File(path, "r") as f:
        n_dims = int(plain(f.attrs.get("n_spatial_dims", 2)))
        dims = f["dimensions"]
        spatial = plain(dims.attrs.get("spatial_dims", ["x", "y"]))
        if n_dims != 2 or len(spatial) != 2:
            raise ValueError(
                f"{path.name} is a file of The Well with {n_dims} spatial dimensions "
                f"({', '.join(spatial)}); only 2D data is read here"
            )
        sizes = [int(dims[d].shape[-1]) for d in spatial]
        times = dims["time"][()] if "time" in dims else None
        n_time = int(times.shape[-1]) if times is not None else 1
        n_traj = int(plain(f.attrs.get("n_trajectories", 1)))

        # The file's first spatial axis is x unless it says y: then it is already (y, x).
        swap = spatial[0] != "y"
        x_name, y_name = (spatial[0], spatial[1]) if swap else (spatial[1], spatial[0])
        available = _available(f, spatial)
        fields: dict[str, np.ndarray] = {}
        constant: list[str] = []
        for name in select(available, field, path.name):
            group_name, ds_name, index = available[name]
            order = TENSOR_GROUPS.index(group_name)
            data, varies = _full_field(f[group_name][ds_name], index, n_traj, n_time, sizes, order)
            fields[name] = np.ascontiguousarray(data.swapaxes(-1, -2) if swap else data)
            if not varies:
                constant.append(name)

        coords = {d: dims[d][()] for d in spatial}
        attrs = hdf5_attrs(f)
        attrs.update(_scalars(f))
        bcs = _boundary_conditions(f)
        if bcs:
            attrs["boundary_conditions"] = bcs
        if constant:
            attrs["constant_fields"] = constant
    return TrajectoryData(
        fields=fields,
        times=common_times(times),
        x=coords[x_name],
        y=coords[y_name],
        attrs=attrs,
        source_format="the_well",
    )


def _scalars(f: h5py.File) -> dict[str, Any]:
    group = f.get("scalars")
    if not isinstance(group, h5py.Group):
        return {}
    out = {}
    for name in _names(group):
        value = group[name][()]
        out[name] = plain(value.reshape(()) if value.size == 1 else value)
    return out


def _boundary_conditions(f: h5py.File) -> dict[str, Any]:
    group = f.get("boundary_conditions")
    if not isinstance(group, h5py.Group):
        return {}
    return {
        name: plain(bc.attrs.get("bc_type", ""))
        for name, bc in group.items()
        if isinstance(bc, h5py.Group)
    }
