"""Reading an uploaded initial condition safely: numeric arrays only (never a pickle),
a 2D field or a batch of one, finite, on a grid the flow can take; or, for a channel flow,
one 3D velocity snapshot with its wall-normal points (``parse_channel_upload``), fitted
onto the cell centres of the solver grid the channel rollout accepts (interpolated when
its points are others, refused with the grid needed when they cannot be). A file of the
other kind (a 2D field for a channel, a channel snapshot for a 2D flow) is refused with a
sentence saying so. Which
reader a flow's snapshots go through is the flow's ``snapshot_format`` (a key of
``SNAPSHOT_READERS``); ``read_snapshot`` asks the registry and dispatches.

Every file goes through ``physics.formats.untrusted``: declared sizes are checked against
``Limits`` before any data is read, and HDF5 external storage, virtual datasets, external
links and unknown filters are refused. A refusal is an UploadError: 413 for sizes past the
limits, 422 for the rest, 415 for a file type not read here."""

from __future__ import annotations

import math
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


CHANNEL_HINT = (
    "a channel velocity snapshot; this flow takes one 2D vorticity field (ny, nx). Choose a "
    "channel flow (channel3d) for it, or upload a 2D field."
)


def _refuse_channel_like(names: list[str], kind: str) -> None:
    """A container holding a velocity (or u, v, w) and y, and no vorticity, is a channel
    snapshot: say so."""
    lower = {n.lower().rsplit("/", 1)[-1] for n in names}
    has_velocity = "velocity" in lower or {"u", "v", "w"} <= lower
    has_y = "y" in lower or "t1_fields/velocity" in names
    if has_velocity and has_y and not lower & {"vorticity", "omega"}:
        raise UploadError(f"The {kind} holds {', '.join(names[:_LISTED])}: {CHANNEL_HINT}")


def _load_npz(content: bytes, limits: Limits) -> tuple[np.ndarray, str]:
    arrays = load_npz(content, limits)
    _refuse_channel_like(list(arrays), ".npz archive")
    name = _pick(list(arrays), ".npz archive")
    return arrays[name], name


def _load_hdf5(content: bytes, limits: Limits) -> tuple[np.ndarray, str]:
    with open_hdf5(content, limits) as f:
        names: list[str] = []
        f.visititems(
            lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        _refuse_channel_like(names, "HDF5 file")
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
    if squeezed.ndim == 4 and 3 in (squeezed.shape[0], squeezed.shape[-1]):
        raise UploadError(
            f"The array {source!r} has shape {tuple(array.shape)}, a 3D velocity with its 3 "
            "components; this flow takes one 2D vorticity field (ny, nx). Choose hit3d for a "
            "velocity on a periodic box, or a channel flow (channel3d) and upload the velocity "
            "with its y points as .npz or HDF5."
        )
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


def _npy_shape(content: bytes) -> tuple[int, ...] | None:
    """The shape a .npy file's header declares (None when it cannot be read); no data read."""
    import io

    from numpy.lib import format as npy_format

    try:
        buffer = io.BytesIO(content[:65536])
        version = npy_format.read_magic(buffer)
        if version == (1, 0):
            shape, _, _ = npy_format.read_array_header_1_0(buffer)
        else:
            shape, _, _ = npy_format.read_array_header_2_0(buffer)
        return tuple(int(n) for n in shape)
    except Exception:  # any unreadable header: no shape to name
        return None


def _npy_for_channel(filename: str, content: bytes) -> str:
    """The sentence for a .npy file uploaded for a channel flow: what it holds and what a
    channel snapshot needs instead."""
    shape = _npy_shape(content) if content.startswith(MAGIC[".npy"]) else None
    if shape is None:
        held = "one array"
    else:
        squeezed = list(shape)
        while len(squeezed) > 2 and squeezed[0] == 1:
            squeezed.pop(0)
        held = f"one array of shape {tuple(shape)}"
        if len(squeezed) == 2:
            held += ", a 2D field such as the vorticity of a 2D flow (choose that flow for it)"
    return (
        f"{filename!r} is not a supported file type for a channel snapshot: a .npy file holds "
        f"{held} and no y coordinates. A channel flow needs a 3D velocity (3, nx, ny, nz) with "
        "its wall-normal points; save them together in a .npz, .h5 or .hdf5 file, e.g. "
        "numpy.savez(path, velocity=u, y=y)."
    )


def needed_grid(flow: Any, ny: int) -> str:
    """The wall-normal grid the flow's solver takes, in a sentence, for ny cells."""
    from physics.channel.grid import ChannelGrid

    ny = min(max(int(ny), flow.min_ny), flow.max_ny)
    centres = ChannelGrid(flow.min_nxz, ny, flow.min_nxz, stretching=flow.stretching).y_centres
    return (
        f"{flow.name} takes the velocity at the {ny} cell centres of its tanh-stretched y grid "
        f"(γ = {flow.stretching:g}; y_c from {float(centres[0]):.6g} to "
        f"{float(centres[-1]):.6g}), or at {MIN_Y_POINTS} or more strictly monotonic points "
        "inside the walls y = ±1 and reaching both of them, which are interpolated onto "
        "those centres."
    )


# The fewest y points a snapshot on another grid may have to be interpolated.
MIN_Y_POINTS = 8
# The solver's own check: y equal to its cell centres within this (rollout_channel.py).
CENTRES_TOL = 1e-6


def fit_channel_grid(snapshot: Any, flow: Any) -> Any:
    """The snapshot on the cell centres of the flow's solver grid, as the channel rollout
    accepts it (``workers/runners/rollout_channel.py``: shape (3, nx, ny, nz) with y equal to
    ``ChannelGrid(nx, ny, nz, stretching=flow.stretching).y_centres`` within 1e-6, either
    order). Points that are those centres already are kept as they are. Other points are
    interpolated (``physics.channel.grid.interpolate_y``: piecewise cubic with the no-slip
    walls as nodes) onto the centres of ny cells, ny the file's point count within the
    flow's limits; ``snapshot.regrid`` then records ``y_interpolated`` 1, ``y_points_uploaded``
    N, ``y_stretching`` γ and ``y_interpolation_max_change``: the largest change of any
    velocity value at the file's points when the result is interpolated back onto them
    (``y_interpolation_relative_change`` the same over max |u|). UploadError (422) with the
    grid needed when the points are too few, leave a gap at a wall wider than their own
    largest spacing, or the x–z grid is outside the flow's rules."""
    import torch

    from physics.channel.grid import ChannelGrid, interpolate_y

    y = np.asarray(snapshot.y, dtype=np.float64)
    nx, n, nz = snapshot.shape
    ny = min(max(n, flow.min_ny), flow.max_ny)
    try:
        flow.check_grid((nx, ny, nz))
    except ValueError as exc:
        raise UploadError(f"The snapshot's grid is {nx} × {n} × {nz}: {exc}") from None
    centres = ChannelGrid(nx, ny, nz, stretching=flow.stretching).y_centres.numpy()
    ascending = y[0] < y[-1]
    ordered = y if ascending else y[::-1].copy()
    if ny == n and np.allclose(ordered, centres, atol=CENTRES_TOL):
        return snapshot
    if n < MIN_Y_POINTS:
        raise UploadError(
            f"The snapshot's {n} y points are too few to interpolate onto the solver grid. "
            + needed_grid(flow, ny)
        )
    spacing = float(np.diff(ordered).max())
    gaps = {"lower": float(ordered[0] + 1), "upper": float(1 - ordered[-1])}
    for wall, gap in gaps.items():
        if gap > spacing + CENTRES_TOL:
            raise UploadError(
                f"The snapshot's y points span [{ordered[0]:.6g}, {ordered[-1]:.6g}], leaving a "
                f"gap of {gap:.4g} at the {wall} wall, wider than their largest spacing "
                f"{spacing:.4g}: they do not span the channel (−1, 1). " + needed_grid(flow, ny)
            )
    velocity = torch.from_numpy(np.ascontiguousarray(snapshot.velocity, dtype=np.float64))
    if not ascending:
        velocity = velocity.flip(2)
    fitted = interpolate_y(velocity, ordered, centres)
    back = interpolate_y(fitted, centres, ordered)
    change = float((back - velocity).abs().max())
    scale = float(velocity.abs().max()) or 1.0
    snapshot.velocity = np.ascontiguousarray(fitted.numpy(), dtype=snapshot.velocity.dtype)
    snapshot.y = centres.copy()
    snapshot.regrid = {
        "y_interpolated": 1.0,
        "y_points_uploaded": float(n),
        "y_stretching": float(flow.stretching),
        "y_interpolation_max_change": change,
        "y_interpolation_relative_change": change / scale,
    }
    return snapshot


def parse_channel_upload(
    filename: str, content: bytes, limits: Limits = DEFAULT_LIMITS, flow: Any = None
):
    """One channel velocity snapshot (``physics.formats.channel.ChannelSnapshot``: velocity
    (3, nx, ny, nz), y (ny,), lx, lz, nu, re_tau where the file gives them) from an uploaded
    .npz or HDF5 file, fitted onto the cell centres of the flow's solver grid
    (``fit_channel_grid``; ``flow`` a ``ChannelFlow``, the registered channel3d by default);
    UploadError with the reader's sentence otherwise (415 for another kind of file, a
    sentence naming the grid needed for y points that cannot be used)."""
    from physics.channel.flow import CHANNEL3D
    from physics.channel.stats import channel_grid
    from physics.formats.channel import YPointsError, read_channel_snapshot

    flow = flow or CHANNEL3D
    suffix = _suffix(filename)
    if suffix not in CHANNEL_FORMATS:
        if suffix == ".npy":
            raise UploadError(_npy_for_channel(filename, content), status=415)
        raise UploadError(
            f"{filename!r} is not a supported file type for a channel snapshot; upload a .npz, "
            ".h5 or .hdf5 file holding the velocity and its y coordinates.",
            status=415,
        )
    try:
        snapshot = read_channel_snapshot(content, limits=limits)
        snapshot = fit_channel_grid(snapshot, flow)
        channel_grid(snapshot.y)
    except UnsafeFile as exc:
        raise refusal(exc) from None
    except UploadError:
        raise
    except YPointsError as exc:
        raise UploadError(f"{exc} {needed_grid(flow, flow.default_grid[1])}") from exc
    except ValueError as exc:
        raise UploadError(str(exc)) from exc
    except (OSError, KeyError, TypeError, IndexError) as exc:  # a damaged file
        raise UploadError(f"The upload could not be read as a channel snapshot ({exc}).") from exc
    return snapshot


# --- periodic-box velocity snapshots (hit3d) -------------------------------------------------

# The divergence policy of an uploaded periodic velocity, on the ratio
# r = max |∇·u| / max ‖∇u‖ (spectral derivatives on the flow's box, ‖∇u‖ the Frobenius norm of
# the velocity gradient at a point; r ≤ √3 for any field, r ≈ 0.6 for white noise):
# r ≤ DIVERGENCE_KEEP: divergence-free to round-off (a float32 field's is ~1e-6): stored as
#     uploaded, bit for bit;
# DIVERGENCE_KEEP < r ≤ DIVERGENCE_REFUSE: the divergence of a field discretised otherwise
#     (finite differences, interpolation): Leray-projected with the solver's own projection
#     (``physics.hit3d.operators.leray_project``), and the row says so (``leray_projected``,
#     the uploaded ratio and the largest change);
# r > DIVERGENCE_REFUSE: not the velocity of an incompressible flow on this grid as read (most
#     often axes or components in another order): refused with the measured numbers.
DIVERGENCE_KEEP = 1e-4
DIVERGENCE_REFUSE = 0.1
PERIODIC_HINT = (
    "a velocity (3, n, n, n) or (n, n, n, 3), or u, v, w, on the n³ points i·2π/n of the box"
)


def divergence_ratio(velocity: np.ndarray, length: float) -> tuple[float, float]:
    """(max |∇·u|, max ‖∇u‖) of a velocity (3, n, n, n) on [0, length)³, spectral derivatives
    in float64 (``physics.hit3d.grid``'s derivative wavenumbers, as every hit3d diagnostic),
    one gradient component at a time so memory stays a few n³ fields."""
    import torch

    from physics.hit3d.grid import Grid3D, irfftn, rfftn

    n = velocity.shape[-1]
    k = Grid3D(n, length).derivative_wavenumbers(dtype=torch.float64)
    divergence = torch.zeros((n, n, n), dtype=torch.float64)
    squared = torch.zeros((n, n, n), dtype=torch.float64)
    for i in range(3):
        u_hat = rfftn(torch.from_numpy(np.asarray(velocity[i], dtype=np.float64)))
        for j in range(3):
            g = irfftn(1j * k[j] * u_hat, n)
            squared += g**2
            if i == j:
                divergence += g
    return float(divergence.abs().max()), float(torch.sqrt(squared.max()))


def leray_projected(velocity: np.ndarray, length: float) -> np.ndarray:
    """The divergence-free part of a velocity (3, n, n, n), in float64 (``leray_project``
    with the derivative wavenumbers, so the projected field's spectral divergence is zero to
    round-off)."""
    import torch

    from physics.hit3d.grid import Grid3D, irfftn, rfftn
    from physics.hit3d.operators import leray_project

    n = velocity.shape[-1]
    k = Grid3D(n, length).derivative_wavenumbers(dtype=torch.float64)
    u_hat = rfftn(torch.from_numpy(np.asarray(velocity, dtype=np.float64)))
    return irfftn(leray_project(u_hat, k), n).numpy()


def make_solenoidal(snapshot: Any, length: float) -> Any:
    """Apply the divergence policy (``DIVERGENCE_KEEP``, ``DIVERGENCE_REFUSE``) to a
    ``PeriodicSnapshot``: kept, projected (``snapshot.velocity`` replaced, in its dtype) or
    refused (UploadError 422 with the measured numbers). ``snapshot.divergence`` records
    ``divergence_max_uploaded``, ``gradient_max_uploaded``, ``divergence_relative_uploaded``
    and ``leray_projected`` (0 or 1), with ``projection_change`` (max |Δu|) and
    ``projection_relative_change`` (over max |u|) when projected."""
    div, grad = divergence_ratio(snapshot.velocity, length)
    ratio = div / grad if grad > 0 else 0.0
    record = {
        "divergence_max_uploaded": div,
        "gradient_max_uploaded": grad,
        "divergence_relative_uploaded": ratio,
        "leray_projected": 0.0,
    }
    if ratio > DIVERGENCE_REFUSE:
        raise UploadError(
            f"The velocity is not divergence-free: max |∇·u| = {div:.4g} is {100 * ratio:.3g} % "
            f"of max |∇u| = {grad:.4g} (spectral derivatives on the periodic box). Up to "
            f"{100 * DIVERGENCE_REFUSE:g} % it would be Leray-projected; more is not the "
            "velocity of an incompressible flow as read: check that the axes are (x, y, z) and "
            "the components (u, v, w)."
        )
    if ratio > DIVERGENCE_KEEP:
        projected = leray_projected(snapshot.velocity, length)
        change = float(np.abs(projected - snapshot.velocity).max())
        scale = float(np.abs(snapshot.velocity).max()) or 1.0
        snapshot.velocity = np.ascontiguousarray(projected, dtype=snapshot.velocity.dtype)
        record |= {
            "leray_projected": 1.0,
            "projection_change": change,
            "projection_relative_change": change / scale,
        }
    snapshot.divergence = record
    return snapshot


def parse_hit3d_upload(
    filename: str, content: bytes, limits: Limits = DEFAULT_LIMITS, flow: Any = None
):
    """One periodic-box velocity snapshot (``physics.formats.periodic.PeriodicSnapshot``:
    velocity (3, n, n, n), nu and length where the file gives them) from an uploaded .npy,
    .npz or HDF5 file, on a grid the flow takes (``flow.check_grid``), on its box, made
    solenoidal by ``make_solenoidal``; ``flow`` a ``HITFlow``, the registered hit3d by
    default. UploadError with a sentence otherwise (415 for another kind of file, 413 for
    declared sizes past the limits)."""
    from physics.formats.periodic import read_periodic_velocity
    from physics.hit3d.flow import HIT3D

    flow = flow or HIT3D
    suffix = _suffix(filename)
    if suffix not in FORMATS:
        raise UploadError(
            f"{filename!r} is not a supported file type for a {flow.name} snapshot; upload a "
            f".npy, .npz, .h5 or .hdf5 file holding {PERIODIC_HINT}.",
            status=415,
        )
    try:
        snapshot = read_periodic_velocity(content, limits=limits)
    except UnsafeFile as exc:
        raise refusal(exc) from None
    except ValueError as exc:
        raise UploadError(str(exc)) from None
    except (OSError, KeyError, TypeError, IndexError) as exc:  # a damaged file
        raise UploadError(
            f"The upload could not be read as a {flow.name} velocity snapshot ({exc})."
        ) from None
    nx, ny, nz = snapshot.shape
    try:
        flow.check_grid((nx, ny, nz))
    except ValueError as exc:
        raise UploadError(f"The snapshot's grid is {nx} × {ny} × {nz}: {exc}") from None
    length = float(flow.lengths[0])
    if snapshot.length is not None and not math.isclose(snapshot.length, length, rel_tol=1e-6):
        raise UploadError(
            f"The file's box side is {snapshot.length:.6g}; {flow.name} is the box "
            f"[0, {length:.6g})³ (2π). Give the velocity on the points i·2π/n, or leave out "
            "the length and coordinates if the field is already scaled to that box."
        )
    return make_solenoidal(snapshot, length)


# The reader of each snapshot format a flow may name (``FlowProtocol.snapshot_format``).
SNAPSHOT_READERS: dict[str, Callable[..., Any]] = {
    "vorticity2d": parse_upload,
    "channel-velocity": parse_channel_upload,
    "periodic-velocity": parse_hit3d_upload,
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
