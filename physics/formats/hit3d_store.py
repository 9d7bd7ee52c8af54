"""Datasets of periodic-box velocity (hit3d) in the layout of The Well:

    t1_fields/velocity          (trajectory, time, n, n, n, 3)  components last (u, v, w)
    dimensions/{x,y,z,time}                                       x = y = z = i·L/n
    statistics/<term>           (trajectory, time)                the solver's energy budget
    root attributes                                               every parameter (nu, …)

The layout is the channel's (``physics.formats.channel_store``) on a uniform cube, so the
trainer reads both alike (``workers.runners.train.load_trajectories``). ``statistics`` holds,
per stored time, the terms of ``physics.hit3d.solver.HITSolver.budget`` of the solver's own
(unfiltered) field: ``energy`` ½⟨|u|²⟩, ``dissipation`` ν⟨|∇u|²⟩, ``sgs_dissipation``
⟨2ν_t S:S⟩ and ``forcing_power``. A dataset stored on a coarser grid than its solver's
(filtered DNS) says which filter made it in its root attributes (``filter``, ``filter_width``,
``filter_cutoff``, ``filter_source_grid``, ``filter_target_grid``, ``filter_description``).

Shards are written by :class:`HITDatasetWriter`; :func:`write_virtual_hit3d_dataset` joins
them into one file through HDF5 virtual datasets, copying nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physics.formats.store import set_attrs

FIELD = "velocity"
STATISTICS = ("energy", "dissipation", "sgs_dissipation", "forcing_power")


def _dimensions(f: h5py.File, n: int, length: float, times: np.ndarray) -> None:
    dims = f.require_group("dimensions")
    coords = np.arange(n) * (length / n)
    for name in ("x", "y", "z"):
        dims.create_dataset(name, data=coords)
    dims.create_dataset("time", data=np.asarray(times, dtype=np.float64))
    dims.attrs["spatial_dims"] = ["x", "y", "z"]


class HITDatasetWriter:
    """Trajectories of velocity on the n³ grid written batch by batch (flat memory)."""

    def __init__(
        self,
        path: Path,
        n_trajectories: int,
        times: np.ndarray,
        n: int,
        length: float,
        attrs: Mapping[str, Any],
    ):
        self.file = h5py.File(path, "w")
        set_attrs(self.file, attrs)
        self.file.attrs["n_trajectories"] = n_trajectories
        self.file.attrs["n_spatial_dims"] = 3
        _dimensions(self.file, n, length, times)
        fields = self.file.create_group("t1_fields")
        fields.attrs["field_names"] = [FIELD]
        self.data = fields.create_dataset(
            FIELD,
            shape=(n_trajectories, len(times), n, n, n, 3),
            dtype=np.float32,
            chunks=(1, 1, n, n, n, 3),
        )
        group = self.file.create_group("statistics")
        self.statistics = {
            name: group.create_dataset(name, shape=(n_trajectories, len(times)), dtype=np.float64)
            for name in STATISTICS
        }

    def write(self, start: int, block: np.ndarray, statistics: Mapping[str, np.ndarray]) -> None:
        """Trajectories ``start:start+len(block)``: block (b, time, n, n, n, 3) and each of
        ``STATISTICS`` as (b, time)."""
        self.data[start : start + len(block)] = block
        for name, values in statistics.items():
            self.statistics[name][start : start + len(block)] = values

    def close(self) -> None:
        self.file.close()


def write_virtual_hit3d_dataset(
    path: Path,
    shards: list[tuple[str, int]],
    times: np.ndarray,
    n: int,
    length: float,
    attrs: Mapping[str, Any],
) -> None:
    """One file presenting the shard files (names relative to ``path``'s folder, with their
    trajectory counts, in order) as a single dataset, without copying them."""
    total = sum(count for _, count in shards)
    shape = (len(times), n, n, n, 3)
    velocity = h5py.VirtualLayout(shape=(total, *shape), dtype=np.float32)
    series = {
        name: h5py.VirtualLayout(shape=(total, len(times)), dtype=np.float64) for name in STATISTICS
    }
    start = 0
    for name, count in shards:
        velocity[start : start + count] = h5py.VirtualSource(
            name, f"t1_fields/{FIELD}", shape=(count, *shape)
        )
        for term, layout in series.items():
            layout[start : start + count] = h5py.VirtualSource(
                name, f"statistics/{term}", shape=(count, len(times))
            )
        start += count
    with h5py.File(path, "w", libver="latest") as f:
        set_attrs(f, attrs)
        f.attrs["n_trajectories"] = total
        f.attrs["n_spatial_dims"] = 3
        f.attrs["shards"] = [name for name, _ in shards]
        _dimensions(f, n, length, times)
        fields = f.create_group("t1_fields")
        fields.attrs["field_names"] = [FIELD]
        fields.create_virtual_dataset(FIELD, velocity, fillvalue=np.nan)
        group = f.create_group("statistics")
        for term, layout in series.items():
            group.create_virtual_dataset(term, layout, fillvalue=np.nan)
