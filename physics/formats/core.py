"""What every reader returns, the errors they raise, and small helpers they share.

Axis convention (the same as ``physics.grid``): a field is an array shaped
(trajectory, time, ny, nx): y runs along the second-to-last axis and x along the last.
Files that store space as (x, y) (The Well, PDEBench, the FNO benchmark) are transposed
on reading, so ``fields[name][b, t, j, i]`` is the value at (x[i], y[j]).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

# Names taken to mean vorticity, in order of preference, by ``TrajectoryData.vorticity``.
VORTICITY_NAMES = ("vorticity", "omega", "vort", "w", "vorticity_z", "omega_z")

# Entries listed in an error message before the list is cut short.
_LIST_LIMIT = 40


class UnrecognisedLayout(ValueError):
    """The file is not in any layout we read; the message lists what the file contains."""


class FieldNotFound(KeyError):
    """A named field is not in the file; the message lists the fields that are."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


@dataclass
class TrajectoryData:
    """Trajectories of 2D scalar fields read from a file.

    ``fields``: name → array shaped (trajectory, time, ny, nx). A field that does not vary in
    time in the file (a forcing, a coefficient) has a time axis of length 1 and is named in
    ``attrs["constant_fields"]``.
    ``times``: (time,), or (trajectory, time) where trajectories have different clocks;
    None when the file has no time coordinate.
    ``x``, ``y``: point coordinates, (nx,) and (ny,), or None when the file has none.
    ``attrs``: parameters found in the file (plain Python values where possible).
    ``source_format``: what ``detect_format`` calls the layout.
    """

    fields: dict[str, np.ndarray]
    times: np.ndarray | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    source_format: str = ""

    @property
    def vorticity(self) -> np.ndarray:
        """The vorticity-like field (named one of ``VORTICITY_NAMES``)."""
        for name in VORTICITY_NAMES:
            if name in self.fields:
                return self.fields[name]
        raise FieldNotFound(
            f"no vorticity field here (looked for {', '.join(VORTICITY_NAMES)}); "
            f"the fields are {', '.join(self.fields) or 'none'}"
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """(trajectory, time, ny, nx) of the first field."""
        first = next(iter(self.fields.values()))
        return tuple(first.shape)


def select(names: Iterable[str], wanted: str | None, where: str) -> list[str]:
    """The names to read: all of them, or just ``wanted`` (FieldNotFound if absent)."""
    names = list(names)
    if wanted is None:
        return names
    if wanted not in names:
        raise FieldNotFound(
            f"{where} has no field {wanted!r}; it has {', '.join(names) or 'no fields'}"
        )
    return [wanted]


def as_trajectories(array: np.ndarray, name: str) -> np.ndarray:
    """(ny, nx), (time, ny, nx) or (trajectory, time, ny, nx) → (trajectory, time, ny, nx)."""
    check_numeric(array, name)
    if array.ndim == 2:
        return array[None, None]
    if array.ndim == 3:
        return array[None]
    if array.ndim == 4:
        return array
    raise ValueError(
        f"{name!r} has shape {tuple(array.shape)}; expected (ny, nx), (time, ny, nx) or "
        "(trajectory, time, ny, nx)"
    )


def check_numeric(array: Any, name: str) -> None:
    kind = getattr(getattr(array, "dtype", None), "kind", None)
    if kind not in ("f", "i", "u"):
        what = getattr(array, "dtype", type(array).__name__)
        raise ValueError(
            f"{name!r} is not a numeric array ({what}); only float or integer arrays are read"
        )


def common_times(times: np.ndarray | None) -> np.ndarray | None:
    """A (trajectory, time) clock collapsed to (time,) when every trajectory shares it."""
    if times is None:
        return None
    times = np.asarray(times)
    if times.ndim == 2 and (times.shape[0] == 1 or np.all(times == times[:1])):
        return times[0]
    return times


def plain(value: Any) -> Any:
    """An attribute value as plain Python where that is lossless (bytes → str, scalars)."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [plain(v) for v in value.tolist()]
        if value.ndim == 0:
            return value.item()
        return value
    return value


def hdf5_attrs(obj: h5py.HLObject) -> dict[str, Any]:
    out = {}
    for key in obj.attrs:
        try:
            out[key] = plain(obj.attrs[key])
        except (OSError, TypeError):  # an attribute type h5py cannot read: skip it
            continue
    return out


def hdf5_contents(f: h5py.File) -> str:
    """Every dataset (path, shape, dtype) and the root attributes, for error messages."""
    lines: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            lines.append(f"{name} {tuple(obj.shape)} {obj.dtype}")

    f.visititems(visit)
    return _listing(lines, "datasets") + _attr_listing(list(f.attrs))


def mapping_contents(items: dict[str, Any], kind: str) -> str:
    lines = [
        f"{name} {tuple(getattr(v, 'shape', ()))} {getattr(v, 'dtype', type(v).__name__)}"
        for name, v in items.items()
    ]
    return _listing(lines, kind)


def _listing(lines: list[str], kind: str) -> str:
    if not lines:
        return f"no {kind}"
    shown = lines[:_LIST_LIMIT]
    more = len(lines) - len(shown)
    text = f"{kind}: " + "; ".join(shown)
    return text + (f"; … and {more} more" if more else "")


def _attr_listing(names: list[str]) -> str:
    if not names:
        return ""
    shown = names[:_LIST_LIMIT]
    more = f", … and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return "; root attributes: " + ", ".join(shown) + more
