"""Storing an initial condition: parse and validate, write the array, then the row.
Used by the REST upload, the Upload page and the shipped examples alike.

2D flows store the vorticity (ny, nx) as ``.npy``. Channel flows (``is_channel_flow``) store
one velocity snapshot as an ``.npz`` (never pickled) with the arrays ``velocity``
(3, nx, ny, nz), ``y`` (ny,) and the 0-d ``nu``, ``lx``, ``lz`` (and ``re_tau`` when the
file gave one), so ``physics.formats.channel.read_channel_snapshot`` reads it back. Its row
has the shape [3, nx, ny, nz], the fields ["u", "v", "w"] and scalar stats (all floats, as
the API's schema wants): ``nu`` with ``nu_source`` (an index into ``NU_SOURCES``: the file,
the form, 1/Re_τ from the file's re_tau, or the default 1/180) and ``nu_assumed`` (1 when ν
was not given but inferred), ``lx``/``lz`` with ``lx_assumed``/``lz_assumed`` (MKM's box
4π × 4π/3 when the file has none), ``kinetic_energy`` ½⟨|u|²⟩ over the volume, and, when the
mean wall shear is positive, the wall units of ``physics.channel.stats``: ``u_tau``,
``re_tau``, ``tau_wall``, ``bulk_u_plus``, ``centreline_u_plus``, ``stress_balance_error``
(else ``wall_units`` = 0); ``y_interpolated`` 1 when the file's y points were not the
solver's cell centres and the velocity was interpolated onto them
(``app.services.uploads.fit_channel_grid``), with ``y_points_uploaded``, ``y_stretching``,
``y_interpolation_max_change`` and ``y_interpolation_relative_change``; 0 when stored as
uploaded. ``channel_grid_note`` says it in words.

Periodic-box flows (hit3d, ``snapshot_format`` "periodic-velocity") store one velocity
snapshot as an ``.npz`` with ``velocity`` (3, n, n, n) and the 0-d ``nu`` and ``length``.
Its row has the shape [3, n, n, n], the fields ["u", "v", "w"] and the statistics of the
Data page's HIT card (``hit3d_stats``: ``energy`` (= ``kinetic_energy``), ``dissipation``
2ν⟨SᵢⱼSᵢⱼ⟩ at the stored ν, ``u_rms``, ``taylor_microscale``, ``taylor_reynolds``,
``integral_scale``, ``skewness``, ``divergence_max``, ``kolmogorov_scale``, ``kmax_eta``),
``nu`` with ``nu_source`` (an index into ``HIT3D_NU_SOURCES``), ``length``, and what the
divergence check did (``app.services.uploads.make_solenoidal``): ``leray_projected`` 1 when
the uploaded field was projected onto its divergence-free part, with
``divergence_relative_uploaded`` (max |∇·u| / max ‖∇u‖ as uploaded) and the change made;
``hit3d_divergence_note`` says it in words."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import InitialCondition, new_id
from app.services import auth
from app.services.flows import is_channel_flow
from app.services.uploads import (
    UploadError,
    parse_channel_upload,
    parse_upload,
    upload_limits,
)
from app.state import AppState
from physics.diagnostics import enstrophy, kinetic_energy
from physics.flows import UnknownFlowError, get_flow
from physics.formats.untrusted import DEFAULT_LIMITS, Limits

# Where a channel snapshot's ν came from (the stats hold the index as ``nu_source``).
NU_SOURCES = ("file", "form", "re_tau", "default")
DEFAULT_RE_TAU = 180.0
# Moser, Kim & Mansour's box at Re_τ = 180 (and the channel solver's default).
DEFAULT_LX = 4 * math.pi
DEFAULT_LZ = 4 * math.pi / 3


def field_stats(field: np.ndarray, length: float) -> dict[str, float]:
    w = torch.from_numpy(field.astype(np.float64))[None, None]
    return {
        "min": float(field.min()),
        "max": float(field.max()),
        "mean": float(field.mean()),
        "std": float(field.std()),
        "kinetic_energy": float(kinetic_energy(w, length)[0]),
        "enstrophy": float(enstrophy(w)[0]),
    }


def store_initial_condition(
    db: Database,
    artifacts: ArtifactStore,
    flow_name: str,
    filename: str,
    content: bytes,
    max_bytes: int | None = None,
    nu: Any = None,
    limits: Limits = DEFAULT_LIMITS,
    owner_id: str | None = None,
) -> InitialCondition:
    """Raises UploadError (with an HTTP status and a sentence) and stores nothing on failure.

    ``nu`` (a number, a numeric string, or None/"") is the viscosity of a channel snapshot
    whose file gives none; 2D flows ignore it. ``limits``: what the file may declare
    (``app.services.uploads.upload_limits``)."""
    if max_bytes is not None and len(content) > max_bytes:
        raise UploadError(f"The file is larger than the upload limit of {max_bytes:,} bytes.", 413)
    if is_channel_flow(flow_name):
        return store_channel_initial_condition(
            db, artifacts, flow_name, filename, content, nu=nu, limits=limits, owner_id=owner_id
        )
    try:
        flow = get_flow(flow_name)
    except UnknownFlowError as exc:
        raise UploadError(str(exc)) from exc
    if flow.snapshot_format == "periodic-velocity":
        return store_hit3d_initial_condition(
            db, artifacts, flow, filename, content, nu=nu, limits=limits, owner_id=owner_id
        )
    if flow.snapshot_format != "vorticity2d":  # a flow whose snapshots have no reader
        raise UploadError(f"Snapshots of {flow.name} cannot be uploaded yet.")
    parsed = parse_upload(filename, content, limits)
    try:
        flow.check_grid(parsed.array.shape)
    except ValueError as exc:
        raise UploadError(str(exc)) from exc

    ic_id = new_id()
    relative = artifacts.initial_condition(ic_id)
    with artifacts.atomic_write(relative) as tmp, open(tmp, "wb") as out:
        np.save(out, parsed.array, allow_pickle=False)
    row = InitialCondition(
        id=ic_id,
        name=filename,
        flow=flow.name,
        shape=list(parsed.array.shape),
        fields=list(flow.fields),
        stats=field_stats(parsed.array, flow.length),
        path=relative,
        owner_id=owner_id,
    )
    try:
        with db.session() as session:
            session.add(row)
            session.commit()
    except Exception:
        artifacts.resolve(relative).unlink(missing_ok=True)
        raise
    return row


def load_initial_condition(artifacts: ArtifactStore, row: InitialCondition) -> np.ndarray:
    """The stored array: the vorticity (ny, nx) of a 2D flow, the velocity (3, nx, ny, nz)
    of a channel snapshot (``load_channel_initial_condition`` gives its y and parameters) or
    of a periodic-box snapshot (``load_hit3d_initial_condition`` gives its ν)."""
    path = artifacts.resolve(row.path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return archive["velocity"]
    return np.load(path, allow_pickle=False)


def load_hit3d_initial_condition(artifacts: ArtifactStore, row: InitialCondition):
    """A stored periodic-box snapshot as a ``physics.formats.periodic.PeriodicSnapshot``
    (velocity (3, n, n, n), nu and length as stored)."""
    from physics.formats.periodic import read_periodic_velocity

    return read_periodic_velocity(artifacts.resolve(row.path), limits=None)  # stored by us


def load_channel_initial_condition(artifacts: ArtifactStore, row: InitialCondition):
    """A stored channel snapshot as a ``physics.formats.channel.ChannelSnapshot`` (velocity
    (3, nx, ny, nz), y, lx, lz, nu as stored: ν and the lengths always present)."""
    from physics.formats.channel import read_channel_snapshot

    return read_channel_snapshot(artifacts.resolve(row.path), limits=None)  # stored by us


# --- channel snapshots -------------------------------------------------------------------


def parse_nu(value: Any) -> float | None:
    """A viscosity from a form: None for nothing, else a positive finite number
    (UploadError otherwise)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise UploadError(f"The viscosity ν must be a positive number; got {value!r}.")
    return number


def channel_viscosity(
    file_nu: float | None, form_nu: float | None, file_re_tau: float | None
) -> tuple[float, str]:
    """ν of a channel snapshot and where it came from (one of ``NU_SOURCES``): the file's
    ν, else the form's, else 1/Re_τ from the file's re_tau (a field in units of u_τ and h),
    else 1/180."""
    if file_nu is not None:
        return float(file_nu), "file"
    if form_nu is not None:
        return float(form_nu), "form"
    if file_re_tau is not None:
        return 1.0 / float(file_re_tau), "re_tau"
    return 1.0 / DEFAULT_RE_TAU, "default"


def channel_kinetic_energy(velocity: np.ndarray, y: np.ndarray) -> float:
    """½⟨|u|²⟩ over the channel: x–z means, then the y quadrature of
    ``physics.channel.stats.quadrature_weights`` over the points (normalised)."""
    from physics.channel.stats import quadrature_weights

    order = np.argsort(y)
    planes = 0.5 * (np.asarray(velocity, dtype=np.float64) ** 2).sum(axis=0).mean(axis=(0, 2))
    weights = quadrature_weights(np.asarray(y, dtype=np.float64)[order])
    return float(weights @ planes[order] / weights.sum())


def channel_stats(
    velocity: np.ndarray, y: np.ndarray, nu: float, lx: float, lz: float
) -> dict[str, float]:
    """The scalar statistics of one snapshot (see the module docstring), all floats."""
    from physics.channel.stats import snapshot_statistics

    out = {
        "min_u": float(velocity[0].min()),
        "max_u": float(velocity[0].max()),
        "kinetic_energy": channel_kinetic_energy(velocity, y),
    }
    try:
        result = snapshot_statistics(velocity, y, nu, lx, lz, spectra_at_yplus=())
    except ValueError:  # no positive mean wall shear: no wall units
        return {**out, "wall_units": 0.0}
    return {
        **out,
        "wall_units": 1.0,
        "u_tau": float(result.u_tau),
        "re_tau": float(result.re_tau),
        "tau_wall": float(result.tau_wall),
        "bulk_u_plus": float(result.bulk_u_plus),
        "centreline_u_plus": float(result.centreline_u_plus),
        "stress_balance_error": float(result.stress_balance_error),
    }


def store_channel_initial_condition(
    db: Database,
    artifacts: ArtifactStore,
    flow_name: str,
    filename: str,
    content: bytes,
    nu: Any = None,
    limits: Limits = DEFAULT_LIMITS,
    owner_id: str | None = None,
) -> InitialCondition:
    """Parse a channel velocity snapshot, write it as ``.npz``, then its row; UploadError
    and nothing stored on failure."""
    form_nu = parse_nu(nu)
    try:
        flow = get_flow(flow_name)
    except UnknownFlowError as exc:
        raise UploadError(str(exc)) from exc
    snapshot = parse_channel_upload(filename, content, limits, flow=flow)
    value, source = channel_viscosity(snapshot.nu, form_nu, snapshot.re_tau)
    lx = snapshot.lx if snapshot.lx is not None else DEFAULT_LX
    lz = snapshot.lz if snapshot.lz is not None else DEFAULT_LZ
    velocity = snapshot.velocity
    stats = {
        "nu": value,
        "nu_source": float(NU_SOURCES.index(source)),
        "nu_assumed": float(source in ("re_tau", "default")),
        "lx": float(lx),
        "lz": float(lz),
        "lx_assumed": float(snapshot.lx is None),
        "lz_assumed": float(snapshot.lz is None),
        **channel_stats(velocity, snapshot.y, value, lx, lz),
    }
    if snapshot.re_tau is not None:
        stats["re_tau_nominal"] = float(snapshot.re_tau)
    stats["y_interpolated"] = 0.0
    stats.update(snapshot.regrid)

    ic_id = new_id()
    relative = f"initial_conditions/{ic_id}.npz"
    arrays: dict[str, np.ndarray] = {
        "velocity": velocity,
        "y": np.asarray(snapshot.y, dtype=np.float64),
        "nu": np.float64(value),
        "lx": np.float64(lx),
        "lz": np.float64(lz),
    }
    if snapshot.re_tau is not None:
        arrays["re_tau"] = np.float64(snapshot.re_tau)
    with artifacts.atomic_write(relative) as tmp, open(tmp, "wb") as out:
        np.savez(out, **arrays)
    row = InitialCondition(
        id=ic_id,
        name=filename,
        flow=flow_name,
        shape=[int(s) for s in velocity.shape],
        fields=["u", "v", "w"],
        stats=stats,
        path=relative,
        owner_id=owner_id,
    )
    try:
        with db.session() as session:
            session.add(row)
            session.commit()
    except Exception:
        artifacts.resolve(relative).unlink(missing_ok=True)
        raise
    return row


# --- periodic-box snapshots (hit3d) -----------------------------------------------------------

# Where a hit3d snapshot's ν came from (the stats hold the index as ``nu_source``).
HIT3D_NU_SOURCES = ("file", "form", "default")


def hit3d_stats(velocity: np.ndarray, nu: float, length: float) -> dict[str, float]:
    """The statistics card of one snapshot (``app.hit3d_summary.snapshot_statistics``:
    ``physics.hit3d.diagnostics``' definitions, float64 up to 64³) with ``kinetic_energy``
    (= ``energy``, the IC lists' column); non-finite values (λ of a field without vorticity)
    left out."""
    from app.hit3d_summary import as_batch, snapshot_statistics

    stats = snapshot_statistics(as_batch(velocity), nu, length)
    stats["kinetic_energy"] = stats["energy"]
    return {k: float(v) for k, v in stats.items() if v is not None and math.isfinite(v)}


def store_hit3d_initial_condition(
    db: Database,
    artifacts: ArtifactStore,
    flow: Any,
    filename: str,
    content: bytes,
    nu: Any = None,
    limits: Limits = DEFAULT_LIMITS,
    owner_id: str | None = None,
) -> InitialCondition:
    """Parse a periodic-box velocity snapshot (``app.services.uploads.parse_hit3d_upload``:
    grid, box and divergence checked, a slightly divergent field Leray-projected), write it
    as ``.npz`` (``velocity`` (3, n, n, n) in the file's float type, 0-d ``nu`` and
    ``length``), then its row: shape [3, n, n, n], fields ["u", "v", "w"], the statistics of
    ``hit3d_stats`` at ν (the file's, else the form's, else the flow's; ``nu_source`` an
    index into ``HIT3D_NU_SOURCES``), ``length``, and the divergence record of
    ``make_solenoidal`` (``leray_projected`` 1 when the stored field is the projection of
    the uploaded one). UploadError and nothing stored on failure."""
    from app.services.uploads import parse_hit3d_upload

    form_nu = parse_nu(nu)
    snapshot = parse_hit3d_upload(filename, content, limits, flow=flow)
    value, source = (
        (snapshot.nu, "file")
        if snapshot.nu is not None
        else (form_nu, "form")
        if form_nu is not None
        else (flow.nu, "default")
    )
    try:
        flow = flow.variant(value)
    except ValueError as exc:
        raise UploadError(f"The viscosity from the {source}: {exc}") from None
    length = float(flow.lengths[0])
    velocity = snapshot.velocity
    stats = {
        **hit3d_stats(velocity, flow.nu, length),
        "nu": float(flow.nu),
        "nu_source": float(HIT3D_NU_SOURCES.index(source)),
        "length": length,
        **snapshot.divergence,
    }

    ic_id = new_id()
    relative = f"initial_conditions/{ic_id}.npz"
    with artifacts.atomic_write(relative) as tmp, open(tmp, "wb") as out:
        np.savez(out, velocity=velocity, nu=np.float64(flow.nu), length=np.float64(length))
    row = InitialCondition(
        id=ic_id,
        name=filename,
        flow=flow.name,
        shape=[int(s) for s in velocity.shape],
        fields=list(flow.fields),
        stats=stats,
        path=relative,
        owner_id=owner_id,
    )
    try:
        with db.session() as session:
            session.add(row)
            session.commit()
    except Exception:
        artifacts.resolve(relative).unlink(missing_ok=True)
        raise
    return row


def hit3d_divergence_note(stats: dict[str, Any]) -> str:
    """What the divergence check did to a stored hit3d snapshot, in words."""
    if "leray_projected" not in stats:
        return ""
    ratio = stats.get("divergence_relative_uploaded", 0.0)
    if not stats["leray_projected"]:
        return (
            f"Divergence-free as uploaded (max |∇·u| is {ratio:.2g} of max |∇u|): stored as "
            "uploaded."
        )
    return (
        f"Leray-projected: as uploaded, max |∇·u| was {100 * ratio:.3g} % of max |∇u|; "
        f"the divergence-free part is stored (largest change "
        f"{stats.get('projection_change', 0):.3g}, "
        f"{100 * stats.get('projection_relative_change', 0):.2g} % of max |u|)."
    )


# --- with this server's state: what the REST endpoint and the Upload page call ----------------


def store(
    state: AppState, flow: str, filename: str, content: bytes, nu: Any = None
) -> InitialCondition:
    """Store an upload with this server's limits (upload size, declared arrays), owned by
    the current user; raises UploadError with an HTTP status and a sentence, storing
    nothing, and ``auth.Forbidden`` for a viewer."""
    owner_id = auth.require_create()
    return store_initial_condition(
        state.db,
        state.artifacts,
        flow,
        filename,
        content,
        state.settings.max_upload_bytes,
        nu=nu,
        limits=upload_limits(state.settings.max_array_bytes),
        owner_id=owner_id,
    )


def store_upload(
    state: AppState, filename: str, content: bytes, flow: str
) -> tuple[dict[str, Any], np.ndarray]:
    """Store an uploaded 2D field (``store``): its row as ``catalog.initial_condition_dict``
    with ``model_fit`` (the models of its flow whose training inputs it is far from,
    ``app.services.model_fit.fits_for_field``), and the stored field."""
    from app.services.catalog import initial_condition_dict
    from app.services.model_fit import fits_for_field

    row = store(state, flow, filename, content)
    field = load_initial_condition(state.artifacts, row)
    out = initial_condition_dict(row)
    out["model_fit"] = fits_for_field(state, row.flow, field)
    return out, field


def store_hit3d_upload(
    state: AppState, filename: str, content: bytes, flow: str, nu: Any = None
) -> tuple[dict[str, Any], np.ndarray]:
    """Store an uploaded periodic-box snapshot (``store``): its row as a dict and the stored
    velocity (3, n, n, n)."""
    from app.services.catalog import initial_condition_dict

    row = store(state, flow, filename, content, nu)
    return initial_condition_dict(row), load_initial_condition(state.artifacts, row)


def store_channel_upload(
    state: AppState, filename: str, content: bytes, flow: str, nu: Any = None
) -> dict[str, Any]:
    """Store an uploaded channel snapshot (``store``): its row as a dict."""
    from app.services.catalog import initial_condition_dict

    return initial_condition_dict(store(state, flow, filename, content, nu))


def initial_condition_field(
    state: AppState, ic_id: str
) -> tuple[dict[str, Any], np.ndarray] | None:
    """A stored initial condition's row (as a dict) and its array, or None."""
    from app.services.catalog import initial_condition_dict, initial_condition_row

    with state.db.session() as session:
        row = initial_condition_row(session, ic_id)
    if row is None:
        return None
    return initial_condition_dict(row), load_initial_condition(state.artifacts, row)


def channel_grid_note(stats: dict[str, Any], ny: int | None = None) -> str:
    """What was done to a stored channel snapshot's y points, in words ("" for a snapshot
    stored before this was recorded)."""
    if "y_interpolated" not in stats:
        return ""
    where = f"the solver's {ny} cell centres" if ny else "the solver's cell centres"
    if not stats["y_interpolated"]:
        return f"Its y points are {where} (tanh-stretched grid): stored as uploaded."
    return (
        f"Interpolated from {int(stats.get('y_points_uploaded', 0))} y points onto {where} "
        f"(tanh stretching γ = {stats.get('y_stretching', 0):g}, no-slip walls), max change "
        f"{stats.get('y_interpolation_max_change', 0):.3g} "
        f"({100 * stats.get('y_interpolation_relative_change', 0):.2g} % of max |u|)."
    )


def channel_nu_note(stats: dict[str, Any]) -> str:
    """Where a stored channel snapshot's ν (and box) came from, in words."""
    nu = stats.get("nu")
    if nu is None:
        return ""
    try:
        source = NU_SOURCES[int(stats.get("nu_source", 0))]
    except (IndexError, TypeError, ValueError):
        source = "file"
    text = {
        "file": f"ν = {nu:.4g} from the file",
        "form": f"ν = {nu:.4g} as entered",
        "re_tau": f"ν = {nu:.4g} assumed: 1/Re_τ from the file's re_tau (a field in wall units)",
        "default": f"ν = {nu:.4g} assumed (1/180): the file gives neither ν nor Re_τ",
    }[source]
    if stats.get("lx_assumed") or stats.get("lz_assumed"):
        text += (
            f"; box {stats.get('lx', 0):.4g} × 2 × {stats.get('lz', 0):.4g} "
            "assumed (the file gives no lx, lz)"
        )
    return text + "."
