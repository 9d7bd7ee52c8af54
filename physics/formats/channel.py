"""One velocity snapshot of a channel flow (walls at y = ±1), from a file or its bytes.

``read_channel_snapshot(source)`` returns a ``ChannelSnapshot`` whose velocity is shaped
(3, nx, ny, nz), components (u, v, w) = (streamwise, wall-normal, spanwise), with its
wall-normal points ``y`` (ny,). The y points are required: a wall-normal grid is non-uniform
and cannot be guessed, so a bare ``.npy`` array is refused. Layouts read:

- ``.npz``: ``velocity`` shaped (3, nx, ny, nz) or (nx, ny, nz, 3), or ``u``, ``v``, ``w``
  each (nx, ny, nz); ``y`` (ny,); optional 0-d ``nu`` (or ``viscosity``), ``re_tau``, ``lx``,
  ``lz``. Loaded with ``allow_pickle=False``: object arrays are refused.
- HDF5: datasets ``velocity`` (either order) or ``u``, ``v``, ``w`` at the root, ``y`` at the
  root or ``dimensions/y``; the optional parameters as attributes of the root or of
  ``velocity``.
- HDF5 in The Well's layout (``n_spatial_dims`` = 3 among the root attributes):
  ``t1_fields/velocity`` shaped (trajectory, time, *space, 3) with space and components in
  the order of ``dimensions.attrs["spatial_dims"]`` (normally x, y, z), an axis absent where
  ``sample_varying`` / ``time_varying`` is false; ``dimensions/y``; the parameters among the
  root attributes or in ``scalars/``. One snapshot is taken: ``trajectory`` and ``time`` pick
  it (default: the first trajectory's last time).

Files from elsewhere are read through ``physics.formats.untrusted`` (sizes checked from the
headers before any data is read; HDF5 external storage, virtual datasets and external links
refused): bytes always, paths unless ``limits=None`` says the file is one we wrote.

Leading axes of length 1 (a batch of one) are dropped. A component axis of length 3 comes
first when both ends could be it. Parameter names are matched without regard to case.
``re_tau`` is reported as found; it gives ν = 1/Re_τ only for a field in units of u_τ and h,
which the caller decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physics.formats.core import hdf5_contents, mapping_contents, plain
from physics.formats.untrusted import DEFAULT_LIMITS, UNBOUNDED, Limits, load_npz, open_hdf5

PARAMETER_NAMES = {
    "nu": ("nu", "viscosity"),
    "re_tau": ("re_tau", "retau"),
    "lx": ("lx",),
    "lz": ("lz",),
}
VELOCITY_NAMES = ("velocity",)
COMPONENT_NAMES = ("u", "v", "w")

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_Y_TOL = 1e-6


class YPointsError(ValueError):
    """The file's y points cannot be used (not one axis, too few, not finite, not monotonic,
    outside the walls); the caller may add which grid it needs."""


@dataclass
class ChannelSnapshot:
    """A velocity snapshot (3, nx, ny, nz) (float32 or float64) on the wall-normal points ``y``
    (ny,) float64, in the file's order; the domain lengths ``lx``, ``lz``, viscosity ``nu`` and
    nominal ``re_tau`` where the file gives them (else None); ``source`` says which arrays
    were read, ``source_format`` is ``npz``, ``hdf5`` or ``the_well``."""

    velocity: np.ndarray
    y: np.ndarray
    lx: float | None = None
    lz: float | None = None
    nu: float | None = None
    re_tau: float | None = None
    source: str = ""
    source_format: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    # How an upload was fitted onto a solver grid (``app.services.uploads.fit_channel_grid``):
    # empty when the file's y points were the solver's cell centres already.
    regrid: dict[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nx, ny, nz)."""
        return tuple(self.velocity.shape[1:])


def read_channel_snapshot(
    source: str | Path | bytes,
    *,
    trajectory: int = 0,
    time: int = -1,
    limits: Limits | None = DEFAULT_LIMITS,
) -> ChannelSnapshot:
    """Read one channel velocity snapshot from a path or the file's bytes (ValueError with a
    sentence saying what is wrong otherwise); ``trajectory``/``time`` apply to The Well's
    layout. ``limits`` bound what the file may declare (``untrusted.UnsafeFile`` past them);
    None reads a file we wrote ourselves (our datasets join shards through virtual
    datasets), and is refused for bytes."""
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
    if head.startswith(NPY_MAGIC):
        raise ValueError(
            f"{name} is a .npy file, which holds one array and no y coordinates; save the "
            "velocity and y together, e.g. numpy.savez(path, velocity=u, y=y)."
        )
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l"):
        raise ValueError(
            f"{name} is a Python pickle, which is never loaded; save numeric arrays with "
            "numpy.savez or h5py instead."
        )
    if head.startswith(ZIP_MAGIC):
        snapshot = _read_npz(opened, name, limits)
    elif head.startswith(HDF5_MAGIC) or (isinstance(opened, Path) and h5py.is_hdf5(opened)):
        snapshot = _read_hdf5(opened, name, trajectory, time, limits)
    else:
        raise ValueError(
            f"{name} is neither a .npz archive nor an HDF5 file (it starts with {head!r}); "
            "a channel snapshot is read from those two."
        )
    _check_snapshot(snapshot, name)
    return snapshot


# --- .npz ----------------------------------------------------------------------------------


def _read_npz(opened: Any, name: str, limits: Limits | None) -> ChannelSnapshot:
    arrays: dict[str, Any] = load_npz(opened, limits or UNBOUNDED)
    lower = {k.lower(): k for k in arrays}
    velocity, source = _velocity_from(arrays, lower, name, mapping_contents(arrays, "arrays"))
    y = _y_from(arrays.get(lower["y"]) if "y" in lower else None, name, "the array 'y'")
    attrs = {k: plain(v) for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim == 0}
    return _snapshot(velocity, y, attrs, source, "npz", name)


def _velocity_from(
    arrays: dict[str, Any], lower: dict[str, str], name: str, contents: str
) -> tuple[np.ndarray, str]:
    """The velocity array (or the stacked u, v, w) as read, with where it came from."""
    for key in VELOCITY_NAMES:
        if key in lower:
            return _numeric(arrays[lower[key]], name, lower[key]), lower[key]
    if all(c in lower for c in COMPONENT_NAMES):
        parts = [_numeric(arrays[lower[c]], name, lower[c]) for c in COMPONENT_NAMES]
        parts = [_squeeze(p, 3) for p in parts]
        if any(p.ndim != 3 for p in parts) or len({p.shape for p in parts}) != 1:
            shapes = ", ".join(str(tuple(p.shape)) for p in parts)
            raise ValueError(
                f"{name}: u, v and w must each be one field shaped (nx, ny, nz), all alike; "
                f"got {shapes}."
            )
        return np.stack(parts), "u, v, w"
    raise ValueError(
        f"{name} has no velocity: expected an array 'velocity' shaped (3, nx, ny, nz) or "
        f"(nx, ny, nz, 3), or arrays 'u', 'v', 'w'; it holds {contents}."
    )


# --- HDF5 ----------------------------------------------------------------------------------


def _read_hdf5(
    opened: Any, name: str, trajectory: int, time: int, limits: Limits | None
) -> ChannelSnapshot:
    if limits is not None:
        with open_hdf5(opened, limits) as f:
            return _read_hdf5_file(f, name, trajectory, time)
    try:
        f = h5py.File(opened, "r")
    except OSError as exc:
        raise ValueError(f"{name} is not a readable HDF5 file ({exc}).") from exc
    with f:
        return _read_hdf5_file(f, name, trajectory, time)


def _read_hdf5_file(f: h5py.File, name: str, trajectory: int, time: int) -> ChannelSnapshot:
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
    y_ds = datasets.get(lower["y"]) if "y" in lower else f.get("dimensions/y")
    if isinstance(y_ds, h5py.Dataset):
        _numeric(y_ds, name, y_ds.name.lstrip("/"))
        y_raw = y_ds[()]
    else:
        y_raw = None
    y = _y_from(y_raw, name, "the dataset 'y'")
    attrs = _hdf5_attrs(f.attrs)
    if source in datasets:
        attrs = {**_hdf5_attrs(datasets[source].attrs), **attrs}
    return _snapshot(velocity, y, attrs, source, "hdf5", name)


def _read_the_well(f: h5py.File, name: str, trajectory: int, time: int) -> ChannelSnapshot:
    n_dims = int(plain(f.attrs["n_spatial_dims"]))
    dims = f.get("dimensions")
    if n_dims != 3 or not isinstance(dims, h5py.Group):
        raise ValueError(
            f"{name} is a file of The Well with {n_dims} spatial dimensions; a channel "
            "snapshot needs 3 (x, y, z)."
        )
    spatial = [str(s) for s in plain(dims.attrs.get("spatial_dims", ["x", "y", "z"]))]
    if sorted(spatial) != ["x", "y", "z"]:
        raise ValueError(
            f"{name}: The Well's spatial_dims are {spatial}; a channel snapshot needs x, y, z."
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
    data = ds[tuple(index)]  # (*space, 3) in spatial_dims order
    order = [spatial.index(c) for c in ("x", "y", "z")]
    velocity = np.moveaxis(data.transpose(*order, 3)[..., order], -1, 0)
    y_ds = dims.get("y")
    y = _y_from(y_ds[()] if isinstance(y_ds, h5py.Dataset) else None, name, "dimensions/y")
    attrs = _hdf5_attrs(f.attrs)
    scalars = f.get("scalars")
    if isinstance(scalars, h5py.Group):
        for key, value in scalars.items():
            if isinstance(value, h5py.Dataset) and value.size == 1:
                attrs[key] = plain(value[()].reshape(()))
    where = "t1_fields/velocity" + (f"[{', '.join(map(str, index))}]" if index else "")
    return _snapshot(velocity, y, attrs, where, "the_well", name)


def _hdf5_attrs(attributes: h5py.AttributeManager) -> dict[str, Any]:
    out = {}
    for key in attributes:
        try:
            out[key] = plain(attributes[key])
        except (OSError, TypeError):
            continue
    return out


# --- shared checks -------------------------------------------------------------------------


def _numeric(array: Any, name: str, key: str) -> Any:
    kind = getattr(getattr(array, "dtype", None), "kind", None)
    if kind not in ("f", "i", "u"):
        what = getattr(array, "dtype", type(array).__name__)
        raise ValueError(
            f"{name}: {key!r} is not a numeric array ({what}); only float or integer arrays "
            "are read."
        )
    return array


def _squeeze(array: np.ndarray, rank: int) -> np.ndarray:
    """Drop leading axes of length 1 down to ``rank`` axes (a batch of one)."""
    while array.ndim > rank and array.shape[0] == 1:
        array = array[0]
    return array


def _y_from(raw: Any, name: str, what: str) -> np.ndarray:
    if raw is None:
        raise YPointsError(
            f"{name} has no y coordinates; add the wall-normal points as an array 'y' (ny,) "
            "in [-1, 1]."
        )
    _numeric(raw, name, "y")
    y = np.asarray(raw, dtype=np.float64)
    if y.ndim != 1:
        y = _squeeze(y, 1)
    if y.ndim != 1:
        raise YPointsError(f"{name}: {what} must be one axis (ny,); it has shape {y.shape}.")
    if y.size < 3:
        raise YPointsError(f"{name}: {what} has {y.size} points; at least 3 are needed.")
    if not np.isfinite(y).all():
        raise YPointsError(f"{name}: {what} contains NaN or infinite values.")
    steps = np.diff(y)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise YPointsError(
            f"{name}: {what} must be strictly monotonic (all increasing or all decreasing)."
        )
    if y.min() < -1 - _Y_TOL or y.max() > 1 + _Y_TOL:
        raise YPointsError(
            f"{name}: {what} must lie in [-1, 1] (walls at y = ±1, half-height 1); it spans "
            f"[{y.min():.6g}, {y.max():.6g}]."
        )
    return y


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
        if not (np.isfinite(number) and number > 0):
            raise ValueError(f"{name}: the parameter {param!r} must be positive; it is {number}.")
        out[param] = number
    return out


def _snapshot(
    velocity: np.ndarray,
    y: np.ndarray,
    attrs: dict[str, Any],
    source: str,
    source_format: str,
    name: str,
) -> ChannelSnapshot:
    params = _parameters(attrs, name)
    ny = y.size
    array = _squeeze(np.asarray(velocity), 4)
    if array.ndim != 4:
        raise ValueError(
            f"{name}: {source!r} has shape {tuple(np.shape(velocity))}; expected one snapshot "
            "(3, nx, ny, nz) or (nx, ny, nz, 3) (a batch of one is accepted)."
        )
    first, last = array.shape[0] == 3, array.shape[-1] == 3
    if not (first or last):
        raise ValueError(
            f"{name}: {source!r} has shape {tuple(array.shape)}, with no axis of the 3 "
            "velocity components (u, v, w) first or last."
        )
    if first and array.shape[2] == ny:
        pass
    elif last and array.shape[1] == ny:
        array = np.moveaxis(array, -1, 0)
    else:
        axis = array.shape[2] if first else array.shape[1]
        raise ValueError(
            f"{name}: y has {ny} points but {source!r} (shape {tuple(array.shape)}) has {axis} "
            "along its y axis."
        )
    dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float64
    if array.dtype == np.float16:
        dtype = np.float32
    array = np.ascontiguousarray(array, dtype=dtype)
    return ChannelSnapshot(
        velocity=array,
        y=y,
        lx=params["lx"],
        lz=params["lz"],
        nu=params["nu"],
        re_tau=params["re_tau"],
        source=source,
        source_format=source_format,
        attrs=attrs,
    )


def _check_snapshot(snapshot: ChannelSnapshot, name: str) -> None:
    finite = np.isfinite(snapshot.velocity)
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(
            f"{name}: the velocity has {bad} NaN or infinite values; every value must be finite."
        )
