"""NumPy ``.npy`` and ``.npz`` files, loaded with ``allow_pickle=False`` always.

``.npy``: one array shaped (trajectory, time, ny, nx), (time, ny, nx) or (ny, nx), already in
our (y, x) order. It has no name; it is taken to be vorticity (as the upload page does) and
read as the field ``vorticity``.

``.npz``: named arrays. Every numeric array with 2 to 4 axes is a field (shaped as for
``.npy``); 1D arrays named ``t``/``time``/``times`` give the times and ``x``/``y`` the
coordinates; 0-d numeric arrays become attributes. Object arrays (which would need pickle)
are refused. Both go through ``physics.formats.untrusted`` (pass ``limits`` for a file from
elsewhere: sizes are then checked from the headers before anything is read).
"""

from __future__ import annotations

from pathlib import Path

from physics.formats.core import (
    TrajectoryData,
    UnrecognisedLayout,
    as_trajectories,
    mapping_contents,
    select,
)
from physics.formats.untrusted import UNBOUNDED, Limits, load_npy, load_npz

TIME_KEYS = ("times", "time", "t")
COORD_KEYS = ("x", "y")

_PICKLE_REFUSED = (
    "holds Python objects (an object array needs pickle, which is never loaded); "
    "save numeric float arrays instead"
)


def read_npy(
    path: str | Path, field: str | None = None, limits: Limits = UNBOUNDED
) -> TrajectoryData:
    path = Path(path)
    select(["vorticity"], field, str(path.name))
    array = load_npy(path, limits)
    return TrajectoryData(
        fields={"vorticity": as_trajectories(array, "the array in " + path.name)},
        source_format="npy",
    )


def read_npz(
    path: str | Path, field: str | None = None, limits: Limits = UNBOUNDED
) -> TrajectoryData:
    path = Path(path)
    arrays = load_npz(path, limits)
    numeric = {k: a for k, a in arrays.items() if a.dtype.kind in "fiu"}
    field_names = [k for k, a in numeric.items() if 2 <= a.ndim <= 4]
    if not field_names:
        raise UnrecognisedLayout(
            f"{path.name} has no array shaped (ny, nx), (time, ny, nx) or "
            f"(trajectory, time, ny, nx); it holds {mapping_contents(arrays, 'arrays')}"
        )
    names = select(field_names, field, path.name)
    times = next((numeric[k] for k in TIME_KEYS if k in numeric and numeric[k].ndim == 1), None)
    coords = {k: numeric[k] for k in COORD_KEYS if k in numeric and numeric[k].ndim == 1}
    attrs = {k: a.item() for k, a in arrays.items() if a.ndim == 0 and a.dtype.kind in "fiubUS"}
    return TrajectoryData(
        fields={k: as_trajectories(numeric[k], k) for k in names},
        times=times,
        x=coords.get("x"),
        y=coords.get("y"),
        attrs=attrs,
        source_format="npz",
    )
