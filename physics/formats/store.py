"""HDF5 files in the layout of The Well: ``t0_fields/<name>`` shaped (trajectory, time, *space),
``dimensions/{time,x,y}``, and the parameters as root attributes.

Rollouts are written one frame per chunk in SWMR mode, so a reader in another process sees
every finished frame while the writer is still running.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

# Opening a file that a writer is creating can briefly fail; readers retry for this long.
_OPEN_RETRY_S = 2.0


def set_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        obj.attrs[key] = "" if value is None else value


def write_square_dimensions(f: h5py.File, n: int, length: float) -> None:
    dims = f.require_group("dimensions")
    coords = np.arange(n) * (length / n)
    dims.create_dataset("x", data=coords)
    dims.create_dataset("y", data=coords)
    # Arrays are stored (…, ny, nx): in The Well's terms the spatial axes are y then x.
    dims.attrs["spatial_dims"] = ["y", "x"]


class DatasetWriter:
    """Trajectories (trajectory, time, n, n) written batch by batch, so memory stays flat."""

    def __init__(
        self,
        path: Path,
        field: str,
        n_trajectories: int,
        times: np.ndarray,
        n: int,
        length: float,
        attrs: Mapping[str, Any],
    ):
        self.file = h5py.File(path, "w")
        set_attrs(self.file, attrs)
        self.file.attrs["n_trajectories"] = n_trajectories
        write_square_dimensions(self.file, n, length)
        self.file["dimensions"].create_dataset("time", data=np.asarray(times, dtype=np.float64))
        fields = self.file.create_group("t0_fields")
        fields.attrs["field_names"] = [field]
        self.data = fields.create_dataset(
            field, shape=(n_trajectories, len(times), n, n), dtype=np.float32, chunks=(1, 1, n, n)
        )

    def write(self, start: int, block: np.ndarray) -> None:
        """Write trajectories ``start:start+len(block)``; block is (b, time, n, n)."""
        self.data[start : start + len(block)] = block

    def close(self) -> None:
        self.file.close()


def write_virtual_dataset(
    path: Path,
    shards: list[tuple[str, int]],
    field: str,
    times: np.ndarray,
    n: int,
    length: float,
    attrs: Mapping[str, Any],
) -> None:
    """One file that presents shard files as a single dataset, without copying them.

    ``shards`` lists (file name relative to ``path``'s folder, number of trajectories) in
    trajectory order; each shard holds ``t0_fields/<field>`` shaped (count, time, n, n). The
    result has the same layout as a ``DatasetWriter`` file, its field an HDF5 virtual dataset
    whose sources are found relative to this file, so the folder can be moved as a whole.
    """
    total = sum(count for _, count in shards)
    layout = h5py.VirtualLayout(shape=(total, len(times), n, n), dtype=np.float32)
    start = 0
    for name, count in shards:
        source = h5py.VirtualSource(name, f"t0_fields/{field}", shape=(count, len(times), n, n))
        layout[start : start + count] = source
        start += count
    with h5py.File(path, "w", libver="latest") as f:
        set_attrs(f, attrs)
        f.attrs["n_trajectories"] = total
        f.attrs["shards"] = [name for name, _ in shards]
        write_square_dimensions(f, n, length)
        f["dimensions"].create_dataset("time", data=np.asarray(times, dtype=np.float64))
        fields = f.create_group("t0_fields")
        fields.attrs["field_names"] = [field]
        fields.create_virtual_dataset(field, layout, fillvalue=np.nan)


def read_dataset(path: Path, field: str = "vorticity") -> tuple[np.ndarray, dict[str, Any]]:
    with h5py.File(path, "r") as f:
        return f["t0_fields"][field][...], dict(f.attrs)


def read_trajectory(
    path: Path, index: int, field: str = "vorticity"
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One trajectory (time, n, n), its times and the file's attributes, reading only it."""
    with h5py.File(path, "r") as f:
        data = f["t0_fields"][field]
        if not 0 <= index < data.shape[0]:
            raise IndexError(f"trajectory {index} is not in the dataset; it has {data.shape[0]}")
        times = (
            f["dimensions"]["time"][...] if "time" in f["dimensions"] else np.arange(data.shape[1])
        )
        return data[index], times, {k: _plain(v) for k, v in f.attrs.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode()
    return value


class FrameAppender:
    """What the SWMR writers (:class:`RolloutWriter`, and
    ``physics.formats.comparison.ComparisonWriter``) share once their datasets exist:
    ``file``, the growing ``time`` dataset and one growing dataset per source in
    ``frames``; appending a frame to every source, then its time; closing. One append for
    both, so the write order that readers in other processes rely on is stated once."""

    file: h5py.File
    time: h5py.Dataset
    frames: dict[str, h5py.Dataset]

    def append(self, t: float, frames: Mapping[str, np.ndarray]) -> int:
        """Appends ``frames[source]`` to every source and ``t`` to the times; returns the
        number of frames now written."""
        k = self.time.shape[0]
        for source, data in self.frames.items():
            data.resize(k + 1, axis=0)
            data[k] = frames[source]
            data.flush()
        # Time last: a reader counts frames by the time axis, so a frame is visible only
        # once all of its sources are on disk.
        self.time.resize(k + 1, axis=0)
        self.time[k] = t
        self.time.flush()
        return k + 1

    def close(self) -> None:
        self.file.close()


class RolloutWriter(FrameAppender):
    """Frames of each source (``reference``, ``model``) appended one chunk per frame."""

    def __init__(
        self,
        path: Path,
        n: int,
        sources: tuple[str, ...],
        length: float,
        attrs: Mapping[str, Any],
        field: str = "vorticity",
        frame_shape: tuple[int, ...] | None = None,
        coords: Mapping[str, np.ndarray] | None = None,
    ):
        """2D vorticity frames (n, n) on the periodic box by default; a 3D flow passes its
        ``field`` name, ``frame_shape`` (e.g. (3, nx, ny, nz) for velocity) and ``coords``
        (1D coordinate arrays by name, e.g. the channel's non-uniform y)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        shape = tuple(frame_shape) if frame_shape is not None else (n, n)
        self.file = h5py.File(path, "w", libver="latest")
        set_attrs(self.file, attrs)
        self.file.attrs["sources"] = list(sources)
        self.file.attrs["field"] = field
        if coords is None:
            write_square_dimensions(self.file, n, length)
        else:
            dims = self.file.require_group("dimensions")
            for name, values in coords.items():
                dims.create_dataset(name, data=np.asarray(values, dtype=np.float64))
        self.time = self.file["dimensions"].create_dataset(
            "time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(256,)
        )
        self.frames = {
            source: self.file.create_group(source).create_dataset(
                field,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=np.float32,
                chunks=(1, *shape),
            )
            for source in sources
        }
        # Every dataset must exist before SWMR starts; from here on only appends.
        self.file.swmr_mode = True


def open_swmr(path: Path) -> h5py.File:
    deadline = time.monotonic() + _OPEN_RETRY_S
    while True:
        try:
            return h5py.File(path, "r", libver="latest", swmr=True)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def rollout_length(path: Path) -> int:
    with open_swmr(path) as f:
        return int(f["dimensions"]["time"].shape[0])


def read_rollout_frames(
    path: Path, k: int, sources: list[str] | tuple[str, ...]
) -> tuple[dict[str, np.ndarray | None], float | None]:
    """Frame ``k`` (as in ``read_rollout_frame``) of each of ``sources`` from one opening of
    the file (a live page reads a comparison's 7 frames each frame); a source the file
    lacks, or a frame not written yet, is None, and so is the time then."""
    out: dict[str, np.ndarray | None] = dict.fromkeys(sources)
    with open_swmr(path) as f:
        times = f["dimensions"]["time"]
        count = int(times.shape[0])
        index = k + count if k < 0 else k
        if not 0 <= index < count:
            return out, None
        stored = set(f.attrs["sources"])
        field = f.attrs.get("field", "vorticity")
        for source in sources:
            if source == "error" and {"model", "reference"} <= stored:
                out[source] = np.asarray(f["model"][field][index] - f["reference"][field][index])
            elif source in stored:
                out[source] = np.asarray(f[source][field][index])
        return out, float(times[index])


def read_rollout_frame(path: Path, k: int, source: str) -> tuple[np.ndarray, float]:
    """Frame ``k`` (negative counts from the newest) of ``source``: ``model``, ``reference``
    or ``error`` (model − reference). Raises IndexError / KeyError with a clear message."""
    with open_swmr(path) as f:
        times = f["dimensions"]["time"]
        count = int(times.shape[0])
        index = k + count if k < 0 else k
        if not 0 <= index < count:
            raise IndexError(f"Frame {k} is not available; the rollout has {count} frames so far.")
        sources = [s for s in f.attrs["sources"]]
        field = f.attrs.get("field", "vorticity")
        if source == "error":
            if "model" not in sources:
                raise KeyError("this rollout has no model, so it has no error field")
            frame = f["model"][field][index] - f["reference"][field][index]
        elif source in sources:
            frame = f[source][field][index]
        else:
            raise KeyError(f"source {source!r} is not in this rollout; it has {', '.join(sources)}")
        return np.asarray(frame), float(times[index])
