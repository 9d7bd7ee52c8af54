"""Channel datasets in the layout of The Well, for 3D velocity:

    t1_fields/velocity   (trajectory, time, nx, ny, nz, 3)  components last (u, v, w)
    dimensions/{x,y,z,time}                                  y: the non-uniform cell centres
    statistics/u_mean    (trajectory, ny)                    mean streamwise profile U(y)
                                                             over x, z and the stored times
    root attributes                                          every parameter (re_tau, nu, …)

A generated dataset may be stored on a coarser training grid than its solver's (filtered
data); its root attributes then say what the stored velocity is: ``solver_grid`` and
``stored_grid`` (nx, ny, nz), and the filter, ``filter`` (x–z: "spectral" cut or "box"
top-hat then the cut), ``filter_y`` ("box": the mean over each stored cell; "none"),
``filter_width`` (Δx, Δz), ``filter_width_cells`` (in stored cells), ``filter_source_grid``,
``filter_target_grid`` and a sentence, ``filter_description``. ``dimensions/y`` holds the
stored grid's cell centres (the solver's tanh stretching with the stored ny cells).

Shards are written by :class:`ChannelDatasetWriter`; :func:`write_virtual_channel_dataset`
joins them into one file through HDF5 virtual datasets, copying nothing (as
``physics.formats.store`` does for 2D flows).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physics.formats.store import set_attrs

FIELD = "velocity"


def _dimensions(f: h5py.File, coords: Mapping[str, np.ndarray], times: np.ndarray) -> None:
    dims = f.require_group("dimensions")
    for name in ("x", "y", "z"):
        dims.create_dataset(name, data=np.asarray(coords[name], dtype=np.float64))
    dims.create_dataset("time", data=np.asarray(times, dtype=np.float64))
    dims.attrs["spatial_dims"] = ["x", "y", "z"]


class ChannelDatasetWriter:
    """Trajectories of cell-centred velocity written batch by batch (flat memory)."""

    def __init__(
        self,
        path: Path,
        n_trajectories: int,
        times: np.ndarray,
        coords: Mapping[str, np.ndarray],
        attrs: Mapping[str, Any],
    ):
        nx, ny, nz = (len(coords[k]) for k in ("x", "y", "z"))
        self.file = h5py.File(path, "w")
        set_attrs(self.file, attrs)
        self.file.attrs["n_trajectories"] = n_trajectories
        # The Well's marker of its layout, so our readers (``physics.formats.channel``) take
        # a snapshot of the file as they take one of The Well's.
        self.file.attrs["n_spatial_dims"] = 3
        _dimensions(self.file, coords, times)
        fields = self.file.create_group("t1_fields")
        fields.attrs["field_names"] = [FIELD]
        self.data = fields.create_dataset(
            FIELD,
            shape=(n_trajectories, len(times), nx, ny, nz, 3),
            dtype=np.float32,
            chunks=(1, 1, nx, ny, nz, 3),
        )
        self.profiles = self.file.create_group("statistics").create_dataset(
            "u_mean", shape=(n_trajectories, ny), dtype=np.float64
        )

    def write(self, start: int, block: np.ndarray, u_mean: np.ndarray) -> None:
        """Trajectories ``start:start+len(block)``: block (b, time, nx, ny, nz, 3), and their
        mean profiles (b, ny)."""
        self.data[start : start + len(block)] = block
        self.profiles[start : start + len(block)] = u_mean

    def close(self) -> None:
        self.file.close()


def write_virtual_channel_dataset(
    path: Path,
    shards: list[tuple[str, int]],
    times: np.ndarray,
    coords: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
) -> None:
    """One file presenting the shard files (names relative to ``path``'s folder, with their
    trajectory counts, in order) as a single dataset, without copying them."""
    nx, ny, nz = (len(coords[k]) for k in ("x", "y", "z"))
    total = sum(count for _, count in shards)
    shape = (len(times), nx, ny, nz, 3)
    velocity = h5py.VirtualLayout(shape=(total, *shape), dtype=np.float32)
    profiles = h5py.VirtualLayout(shape=(total, ny), dtype=np.float64)
    start = 0
    for name, count in shards:
        velocity[start : start + count] = h5py.VirtualSource(
            name, f"t1_fields/{FIELD}", shape=(count, *shape)
        )
        profiles[start : start + count] = h5py.VirtualSource(
            name, "statistics/u_mean", shape=(count, ny)
        )
        start += count
    with h5py.File(path, "w", libver="latest") as f:
        set_attrs(f, attrs)
        f.attrs["n_trajectories"] = total
        f.attrs["n_spatial_dims"] = 3
        f.attrs["shards"] = [name for name, _ in shards]
        _dimensions(f, coords, times)
        fields = f.create_group("t1_fields")
        fields.attrs["field_names"] = [FIELD]
        fields.create_virtual_dataset(FIELD, velocity, fillvalue=np.nan)
        f.create_group("statistics").create_virtual_dataset("u_mean", profiles, fillvalue=np.nan)
