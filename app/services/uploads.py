"""Reading an uploaded initial condition safely: numeric arrays only (never a pickle),
a 2D field or a batch of one, finite, on a grid the flow can take; or, for a channel flow,
one 3D velocity snapshot with its wall-normal points (``parse_channel_upload``). Which
reader a flow's snapshots go through is the flow's ``snapshot_format`` (a key of
``SNAPSHOT_READERS``); ``read_snapshot`` asks the registry and dispatches.

Every file goes through ``physics.formats.untrusted``: declared sizes are checked against
``Limits`` before any data is read, and HDF5 external storage, virtual datasets, external
links and unknown filters are refused. A refusal is an UploadError: 413 for sizes past the
limits, 422 for the rest, 415 for a file type not read here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from physics.formats.untrusted import (
    DEFAULT_LIMITS,
    Limits,
    TooLarge,
    UnsafeFile,
    load_npy,
    load_npz,
    open_hdf5,
)

FORMATS = (".npy", ".npz", ".h5", ".hdf5")
MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK", ".h5": b"\x89HDF", ".hdf5": b"\x89HDF"}
# Names looked for, in order, when a container holds several arrays.
FIELD_NAMES = ("vorticity", "omega", "w", "t0_fields/vorticity")
CHANNEL_FORMATS = (".npz", ".h5", ".hdf5")


class UploadError(ValueError):
    """A refused upload; ``status`` is the HTTP code, the message a sentence for the user."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass
class ParsedField:
    array: np.ndarray  # (ny, nx) float32
    source: str  # which array in the file it came from


def _suffix(filename: str) -> str:
    return "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def upload_limits(max_array_bytes: int) -> Limits:
    """What one uploaded file may declare (``Settings.max_array_bytes`` in all)."""
    return Limits(max_bytes=max_array_bytes)


def refusal(exc: UnsafeFile) -> UploadError:
    return UploadError(str(exc), 413 if isinstance(exc, TooLarge) else 422)


def parse_upload(filename: str, content: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedField:
    suffix = _suffix(filename)
    if suffix not in FORMATS:
        raise UploadError(
            f"{filename!r} is not a supported file type; upload a .npy, .npz, .h5 or .hdf5 file.",
            status=415,
        )
    if content[:1] == b"\x80" or content[:2] in (b"(d", b"(l"):
        raise UploadError(
            "This file is a Python pickle, which is never loaded; "
            "save a numeric array with numpy.save instead."
        )
    magic = MAGIC[suffix]
    if not content.startswith(magic):
        raise UploadError(
            f"This is not a readable {suffix} file: it does not start the way such files do."
        )
    try:
        if suffix == ".npy":
            array, source = load_npy(content, limits), "array"
        elif suffix == ".npz":
            array, source = _load_npz(content, limits)
        else:
            array, source = _load_hdf5(content, limits)
    except UnsafeFile as exc:
        raise refusal(exc) from None
    return ParsedField(_as_field(array, source), source)


# Names listed in a refusal before the list is cut short.
_LISTED = 12


def _pick(names: list[str], kind: str) -> str:
    for name in FIELD_NAMES:
        if name in names:
            return name
    if len(names) == 1:
        return names[0]
    listed = ", ".join(n[:80] for n in names[:_LISTED]) if names else "nothing"
    if len(names) > _LISTED:
        listed += f", … ({len(names)} in all)"
    raise UploadError(
        f"The {kind} holds {listed}; name the vorticity array 'vorticity' "
        "(or hold exactly one array)."
    )


def _load_npz(content: bytes, limits: Limits) -> tuple[np.ndarray, str]:
    arrays = load_npz(content, limits)
    name = _pick(list(arrays), ".npz archive")
    return arrays[name], name


def _load_hdf5(content: bytes, limits: Limits) -> tuple[np.ndarray, str]:
    with open_hdf5(content, limits) as f:
        names: list[str] = []
        f.visititems(
            lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        name = _pick(names, "HDF5 file")
        dataset = f[name]
        if dataset.dtype.kind not in "fiu":
            raise UploadError(
                f"The dataset {name!r} is not numeric ({dataset.dtype}); upload a float array."
            )
        try:
            return dataset[()], name
        except (OSError, ValueError) as exc:  # damaged storage, a failed checksum
            raise UploadError(f"The dataset {name!r} could not be read ({exc}).") from None


def _as_field(array: np.ndarray, source: str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        kind = getattr(array, "dtype", type(array))
        raise UploadError(f"The array {source!r} is not numeric ({kind}); upload a float array.")
    squeezed = array
    # A batch of one, or a batch of one with one channel, is accepted.
    while squeezed.ndim > 2 and squeezed.shape[0] == 1:
        squeezed = squeezed[0]
    if squeezed.ndim != 2:
        raise UploadError(
            f"Expected one 2D vorticity field shaped (ny, nx), or a batch of one; got an array "
            f"of shape {tuple(array.shape)}."
        )
    if not np.isfinite(squeezed).all():
        bad = int((~np.isfinite(squeezed)).sum())
        raise UploadError(
            f"The field has {bad} NaN or infinite values; every value must be finite."
        )
    return np.ascontiguousarray(squeezed, dtype=np.float32)


def parse_channel_upload(filename: str, content: bytes, limits: Limits = DEFAULT_LIMITS):
    """One channel velocity snapshot (``physics.formats.channel.ChannelSnapshot``: velocity
    (3, nx, ny, nz), y (ny,), lx, lz, nu, re_tau where the file gives them) from an uploaded
    .npz or HDF5 file; UploadError with the reader's sentence otherwise (415 for another
    kind of file). The wall-normal points must also fold onto each other (symmetric about
    y = 0), as the channel statistics need."""
    from physics.channel.stats import channel_grid
    from physics.formats.channel import read_channel_snapshot

    suffix = _suffix(filename)
    if suffix not in CHANNEL_FORMATS:
        extra = (
            " A .npy file holds one array and no y coordinates; save the velocity and y "
            "together, e.g. numpy.savez(path, velocity=u, y=y)."
            if suffix == ".npy"
            else ""
        )
        raise UploadError(
            f"{filename!r} is not a supported file type for a channel snapshot; upload a .npz, "
            f".h5 or .hdf5 file holding the velocity and its y coordinates.{extra}",
            status=415,
        )
    try:
        snapshot = read_channel_snapshot(content, limits=limits)
        channel_grid(snapshot.y)
    except UnsafeFile as exc:
        raise refusal(exc) from None
    except ValueError as exc:
        raise UploadError(str(exc)) from exc
    except (OSError, KeyError, TypeError, IndexError) as exc:  # a damaged file
        raise UploadError(f"The upload could not be read as a channel snapshot ({exc}).") from exc
    return snapshot


# The reader of each snapshot format a flow may name (``FlowProtocol.snapshot_format``).
SNAPSHOT_READERS: dict[str, Callable[..., Any]] = {
    "vorticity2d": parse_upload,
    "channel-velocity": parse_channel_upload,
}


def read_snapshot(flow_name: str, filename: str, content: bytes, limits: Limits = DEFAULT_LIMITS):
    """An uploaded snapshot of the flow read by the reader its ``snapshot_format`` names: a
    ``ParsedField`` for a 2D vorticity flow, a ``ChannelSnapshot`` for a channel. The grid
    is not checked against the flow here. UploadError (422) for a flow the registry does not
    know or whose snapshots cannot be uploaded."""
    from physics.flows import UnknownFlowError, get_flow

    try:
        flow = get_flow(flow_name)
    except UnknownFlowError as exc:
        raise UploadError(str(exc)) from exc
    reader = SNAPSHOT_READERS.get(flow.snapshot_format)
    if reader is None:
        raise UploadError(f"Snapshots of {flow.name} cannot be uploaded yet.")
    return reader(filename, content, limits)
