"""One velocity snapshot of a triply periodic box (hit3d), from a file or its bytes.

``read_periodic_velocity(source)`` returns a ``PeriodicSnapshot`` whose velocity is shaped
(3, nx, ny, nz), components (u, v, w) along (x, y, z), the axes in that order (the layout of
``physics.hit3d.grid``: point (i, j, l) at (i, j, l)·L/n). Layouts read:

- ``.npy``: one array shaped (3, nx, ny, nz) (components first) or (nx, ny, nz, 3)
  (components last), optionally with leading axes of length 1 (a batch of one). No other
  order is guessed: a component axis of length 3 must be first or last.
- ``.npz``: ``velocity`` in either of those orders, or ``u``, ``v``, ``w`` each
  (nx, ny, nz); optional 0-d ``nu`` (or ``viscosity``) and ``length`` (or ``l``, ``lx``:
  the box side), and optional 1-D ``x``, ``y``, ``z`` point coordinates. Loaded with
  ``allow_pickle=False``: object arrays are refused.
- HDF5: datasets ``velocity`` (either order) or ``u``, ``v``, ``w`` at the root; the optional
  parameters as attributes of the root or of ``velocity``; coordinates ``x``, ``y``, ``z`` at
  the root or in ``dimensions/``.
- HDF5 in The Well's layout (``n_spatial_dims`` = 3 among the root attributes, as our hit3d
  datasets are stored by ``physics.formats.hit3d_store``): ``t1_fields/velocity`` shaped
  (trajectory, time, *space, 3), space and components in the order of
  ``dimensions.attrs["spatial_dims"]`` (normally x, y, z), an axis absent where
  ``sample_varying`` / ``time_varying`` is false; ``trajectory`` and ``time`` pick the
  snapshot (default: the first trajectory's last time); only that snapshot is read.

Coordinates, when a file gives them, must be uniformly spaced by L/n along each axis (any
offset: a periodic field translated is the same field); their spacing gives ``length``
when no ``length`` parameter does. The box side and the grid are the caller's to check
against its flow (``HITFlow.check_grid``); this reader checks only what a velocity on a
periodic grid is: a numeric array with three components and three spatial axes, finite.

Files from elsewhere are read through ``physics.formats.untrusted`` (sizes checked from the
headers before any data is read; HDF5 external storage, virtual datasets, external links and
unknown filters refused; .npz members bounded; pickles never loaded): bytes always, paths
unless ``limits=None`` says the file is one we wrote. Refusals are ValueError (``UnsafeFile``
from ``untrusted``, a subclass) with a sentence for the user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physics.formats.channel import (
    COMPONENT_NAMES,
    HDF5_MAGIC,
    NPY_MAGIC,
    VELOCITY_NAMES,
    ZIP_MAGIC,
    _hdf5_attrs,
    _numeric,
    _squeeze,
    _velocity_from,
)
from physics.formats.core import hdf5_contents, mapping_contents, plain
from physics.formats.untrusted import (
    DEFAULT_LIMITS,
    UNBOUNDED,
    Limits,
    load_npy,
    load_npz,
    open_hdf5,
)

PARAMETER_NAMES = {
    "nu": ("nu", "viscosity"),
    "length": ("length", "l", "lx"),
}
COORDINATE_NAMES = ("x", "y", "z")
# Coordinates are uniform with spacing L/n when every step is within this of their mean.
_SPACING_TOL = 1e-6


@dataclass
class PeriodicSnapshot:
    """A velocity (3, nx, ny, nz) (float32 or float64) on a periodic grid; ``length`` the box
    side and ``nu`` the viscosity where the file gives them (else None); ``source`` says
    which arrays were read, ``source_format`` is ``npy``, ``npz``, ``hdf5`` or ``the_well``,
    ``layout`` ``components-first`` or ``components-last`` (as the file stored them)."""

    velocity: np.ndarray
    length: float | None = None
    nu: float | None = None
    source: str = ""
    source_format: str = ""
    layout: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    # What was done to make an upload solenoidal (``app.services.uploads.make_solenoidal``):
    # its measured divergence, and the projection's change when one was made.
    divergence: dict[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nx, ny, nz)."""
        return tuple(self.velocity.shape[1:])


def read_periodic_velocity(
    source: str | Path | bytes,
    *,
    trajectory: int = 0,
    time: int = -1,
    limits: Limits | None = DEFAULT_LIMITS,
) -> PeriodicSnapshot:
    """Read one periodic-box velocity snapshot from a path or the file's bytes (ValueError
    with a sentence saying what is wrong otherwise); ``trajectory``/``time`` apply to The
    Well's layout. ``limits`` bound what the file may declare (``untrusted.UnsafeFile`` past
    them); None reads a file we wrote ourselves, and is refused for bytes."""
    if isinstance(source, bytes | bytearray | memoryview):
        content = bytes(source)
        name = "The upload"
        head = content[:8]
        opened: Any = content
        limits = limits or DEFAULT_LIMITS
    else:
        path = Path(source)
        name = path.name
        with open(path, "rb") as fh:
            head = fh.read(8)
        opened = path
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l"):
        raise ValueError(
            f"{name} is a Python pickle, which is never loaded; save numeric arrays with "
            "numpy.save, numpy.savez or h5py instead."
        )
    if head.startswith(NPY_MAGIC):
        array = load_npy(opened, limits or UNBOUNDED)
        snapshot = _snapshot(_numeric(array, name, "the array"), {}, {}, "array", "npy", name)
    elif head.startswith(ZIP_MAGIC):
        snapshot = _read_npz(opened, name, limits)
    elif head.startswith(HDF5_MAGIC) or (isinstance(opened, Path) and h5py.is_hdf5(opened)):
        snapshot = _read_hdf5(opened, name, trajectory, time, limits)
    else:
        raise ValueError(
            f"{name} is neither a .npy array, a .npz archive nor an HDF5 file (it starts with "
            f"{head!r}); a periodic velocity snapshot is read from those three."
        )
    finite = np.isfinite(snapshot.velocity)
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(
            f"{name}: the velocity has {bad} NaN or infinite values; every value must be finite."
        )
    return snapshot


# --- .npz ----------------------------------------------------------------------------------


def _read_npz(opened: Any, name: str, limits: Limits | None) -> PeriodicSnapshot:
    arrays: dict[str, Any] = load_npz(opened, limits or UNBOUNDED)
    lower = {k.lower(): k for k in arrays}
    velocity, source = _velocity_from(arrays, lower, name, mapping_contents(arrays, "arrays"))
    attrs = {k: plain(v) for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim == 0}
    coords = {c: arrays[lower[c]] for c in COORDINATE_NAMES if c in lower}
    return _snapshot(velocity, attrs, coords, source, "npz", name)


# --- HDF5 ----------------------------------------------------------------------------------


def _read_hdf5(
    opened: Any, name: str, trajectory: int, time: int, limits: Limits | None
) -> PeriodicSnapshot:
    if limits is not None:
        with open_hdf5(opened, limits) as f:
            return _read_hdf5_file(f, name, trajectory, time)
    try:
        f = h5py.File(opened, "r")
    except OSError as exc:
        raise ValueError(f"{name} is not a readable HDF5 file ({exc}).") from exc
    with f:
        return _read_hdf5_file(f, name, trajectory, time)


def _coordinates_of(f: h5py.File, datasets: dict[str, h5py.Dataset]) -> dict[str, Any]:
    lower = {k.lower(): k for k in datasets}
    dims = f.get("dimensions")
    out = {}
    for c in COORDINATE_NAMES:
        ds = datasets.get(lower[c]) if c in lower else None
        if ds is None and isinstance(dims, h5py.Group):
            ds = dims.get(c)
        if isinstance(ds, h5py.Dataset):
            out[c] = ds
    return out


def _read_hdf5_file(f: h5py.File, name: str, trajectory: int, time: int) -> PeriodicSnapshot:
    if "n_spatial_dims" in f.attrs and isinstance(f.get("t1_fields"), h5py.Group):
        return _read_the_well(f, name, trajectory, time)
    datasets = {k: v for k, v in f.items() if isinstance(v, h5py.Dataset)}
    lower = {k.lower(): k for k in datasets}
    contents = hdf5_contents(f)
    wanted = VELOCITY_NAMES if any(k in lower for k in VELOCITY_NAMES) else COMPONENT_NAMES
    loaded = {}
    for key in wanted:
        if key in lower:
            loaded[lower[key]] = _numeric(datasets[lower[key]], name, lower[key])[()]
    velocity, source = _velocity_from(loaded, {k.lower(): k for k in loaded}, name, contents)
    attrs = _hdf5_attrs(f.attrs)
    if source in datasets:
        attrs = {**_hdf5_attrs(datasets[source].attrs), **attrs}
    return _snapshot(velocity, attrs, _coordinates_of(f, datasets), source, "hdf5", name)


def _read_the_well(f: h5py.File, name: str, trajectory: int, time: int) -> PeriodicSnapshot:
    n_dims = int(plain(f.attrs["n_spatial_dims"]))
    dims = f.get("dimensions")
    if n_dims != 3 or not isinstance(dims, h5py.Group):
        raise ValueError(
            f"{name} is a file of The Well with {n_dims} spatial dimensions; a periodic "
            "velocity snapshot needs 3 (x, y, z)."
        )
    spatial = [str(s) for s in plain(dims.attrs.get("spatial_dims", ["x", "y", "z"]))]
    if sorted(spatial) != ["x", "y", "z"]:
        raise ValueError(
            f"{name}: The Well's spatial_dims are {spatial}; a periodic velocity snapshot "
            "needs x, y, z."
        )
    ds = f["t1_fields"].get("velocity")
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(
            f"{name} is a file of The Well without t1_fields/velocity; it holds {hdf5_contents(f)}."
        )
    _numeric(ds, name, "t1_fields/velocity")
    lead = []
    if bool(ds.attrs.get("sample_varying", True)):
        lead.append(("trajectory", trajectory))
    if bool(ds.attrs.get("time_varying", True)):
        lead.append(("time", time))
    if ds.ndim != len(lead) + 4 or ds.shape[-1] != 3:
        axes = ", ".join([w for w, _ in lead] + spatial + ["3"])
        raise ValueError(
            f"{name}: t1_fields/velocity has shape {tuple(ds.shape)}; expected ({axes})."
        )
    index = []
    for (what, i), size in zip(lead, ds.shape, strict=False):
        if not -size <= i < size:
            raise ValueError(f"{name} has {size} {what} entries; {what} = {i} is out of range.")
        index.append(i)
    data = ds[tuple(index)]  # (*space, 3) in spatial_dims order: one snapshot read
    order = [spatial.index(c) for c in ("x", "y", "z")]
    velocity = np.moveaxis(data.transpose(*order, 3)[..., order], -1, 0)
    attrs = _hdf5_attrs(f.attrs)
    scalars = f.get("scalars")
    if isinstance(scalars, h5py.Group):
        for key, value in scalars.items():
            if isinstance(value, h5py.Dataset) and value.size == 1:
                attrs[key] = plain(value[()].reshape(()))
    coords = {c: dims[c] for c in COORDINATE_NAMES if isinstance(dims.get(c), h5py.Dataset)}
    where = "t1_fields/velocity" + (f"[{', '.join(map(str, index))}]" if index else "")
    return _snapshot(velocity, attrs, coords, where, "the_well", name, layout="components-last")


# --- shared checks -------------------------------------------------------------------------


def _parameters(values: dict[str, Any], name: str) -> dict[str, float | None]:
    lower = {k.lower(): v for k, v in values.items()}
    out: dict[str, float | None] = {}
    for param, aliases in PARAMETER_NAMES.items():
        value = next((lower[a] for a in aliases if a in lower), None)
        if value is None:
            out[param] = None
            continue
        try:
            number = float(np.asarray(value).reshape(()))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name}: the parameter {param!r} is not a number ({value!r})."
            ) from exc
        if not (math.isfinite(number) and number > 0):
            raise ValueError(f"{name}: the parameter {param!r} must be positive; it is {number}.")
        out[param] = number
    return out


def _spacing_length(coords: dict[str, Any], shape: tuple[int, ...], name: str) -> float | None:
    """The box side n·Δ from the coordinates the file gives (each uniform, one Δ for all);
    ValueError, in a sentence, for coordinates that are not such points."""
    lengths = []
    for axis, (c, n) in enumerate(zip(COORDINATE_NAMES, shape, strict=True)):
        if c not in coords:
            continue
        _numeric(coords[c], name, c)
        points = _squeeze(np.asarray(coords[c][()], dtype=np.float64), 1)
        if points.ndim != 1 or points.size != n:
            raise ValueError(
                f"{name}: the coordinate {c!r} has shape {tuple(points.shape)}; the velocity "
                f"has {n} points along axis {axis} ({c})."
            )
        steps = np.diff(points)
        spacing = float(steps.mean()) if steps.size else 0.0
        if not (
            np.isfinite(points).all()
            and spacing > 0
            and np.all(np.abs(steps - spacing) <= _SPACING_TOL * max(spacing, 1.0))
        ):
            raise ValueError(
                f"{name}: the coordinate {c!r} is not uniformly spaced and increasing; a "
                "periodic box has its points at i·L/n."
            )
        lengths.append(spacing * n)
    if not lengths:
        return None
    if max(lengths) - min(lengths) > _SPACING_TOL * max(lengths):
        shown = ", ".join(f"{x:.6g}" for x in lengths)
        raise ValueError(
            f"{name}: the coordinates span boxes of different sides ({shown}); a periodic "
            "box is a cube."
        )
    return lengths[0]


def _snapshot(
    velocity: np.ndarray,
    attrs: dict[str, Any],
    coords: dict[str, Any],
    source: str,
    source_format: str,
    name: str,
    layout: str | None = None,
) -> PeriodicSnapshot:
    params = _parameters(attrs, name)
    array = _squeeze(np.asarray(velocity), 4)
    if array.ndim != 4:
        raise ValueError(
            f"{name}: {source!r} has shape {tuple(np.shape(velocity))}; expected one velocity "
            "snapshot (3, nx, ny, nz) or (nx, ny, nz, 3) (a batch of one is accepted)."
        )
    first, last = array.shape[0] == 3, array.shape[-1] == 3
    if layout is None:
        if first:
            layout = "components-first"
        elif last:
            layout = "components-last"
            array = np.moveaxis(array, -1, 0)
        else:
            raise ValueError(
                f"{name}: {source!r} has shape {tuple(array.shape)}, with no axis of the 3 "
                "velocity components (u, v, w) first or last; save it as (3, nx, ny, nz) or "
                "(nx, ny, nz, 3)."
            )
    dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float64
    if array.dtype == np.float16:
        dtype = np.float32
    array = np.ascontiguousarray(array, dtype=dtype)
    spaced = _spacing_length(coords, array.shape[1:], name)
    length = params["length"] if params["length"] is not None else spaced
    given = params["length"]
    if given is not None and spaced is not None and abs(spaced - given) > _SPACING_TOL * given:
        raise ValueError(
            f"{name}: the file's length {given:.6g} and its coordinates' n·Δ = {spaced:.6g} "
            "disagree."
        )
    return PeriodicSnapshot(
        velocity=array,
        length=length,
        nu=params["nu"],
        source=source,
        source_format=source_format,
        layout=layout,
        attrs=attrs,
    )
