"""Plotly figures of turbulent channel flow, built by pure functions of plain data: the
statistics dict of ``physics.channel.stats.ChannelStatisticsResult.to_dict()`` and velocity
snapshots (3, nx, ny, nz) on their wall-normal points y.

- ``mean_profile_figure``: U⁺ against y⁺ on a log axis, with the viscous sublayer U⁺ = y⁺
  and the log law U⁺ = (1/κ) ln y⁺ + B (κ = 0.41, B = 5.2) as dashed guide lines, and
  optionally Moser, Kim & Mansour's (1999) Re_τ = 180 centreline and bulk U⁺ as marks;
- ``rms_figure``: u′⁺, v′⁺, w′⁺ (rms) against y⁺ (log axis), MKM's u′⁺ peak as a mark;
- ``stress_figure``: −⟨u′v′⟩⁺, the viscous stress dU⁺/dy⁺, their sum and the steady-state
  line 1 − y against y/h;
- ``spectra_figure``: E_uu, E_vv, E_ww against k_x and against k_z (log-log) at one plane;
- ``slice_figure``: one plane of one component (u, v, w or |u|) of a snapshot as a heatmap on
  the true (non-uniform) y points: x–y at a chosen z, x–z at a chosen y, y–z at a chosen x.

The wall point (y⁺ = 0) and the k = 0 bin cannot be drawn on log axes and are left out.
Every figure takes a ``uirevision`` so zoom survives live updates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.ui.figures import COLORS, DIVERGING, MAX_PIXELS, _base_layout, empty_figure
from physics.channel.stats import LOG_LAW_B, LOG_LAW_KAPPA, MKM_RE180, log_law, viscous_sublayer

COMPONENT_COLORS = {"u": "#1f4e79", "v": "#d1495b", "w": "#edae49"}
STRESS_COLORS = {
    "reynolds": "#1f4e79",
    "viscous": "#d1495b",
    "total": "#2a9d8f",
    "linear": COLORS["guide"],
}
SEQUENTIAL = "Viridis"
# The guide lines are drawn where they hold (and a little beyond): the sublayer up to this
# y⁺, the log law from this y⁺.
SUBLAYER_MAX_YPLUS = 15.0
LOG_LAW_MIN_YPLUS = 5.0
COMPONENTS = ("u", "v", "w", "magnitude")
COMPONENT_LABELS = {"u": "u", "v": "v", "w": "w", "magnitude": "|u|"}
PLANES = ("xy", "xz", "yz")
PLANE_LABELS = {"xy": "x–y", "xz": "x–z", "yz": "y–z"}


def _array(stats: Mapping[str, Any], key: str) -> np.ndarray:
    return np.asarray(stats.get(key) if stats.get(key) is not None else [], dtype=np.float64)


def _off_wall(stats: Mapping[str, Any], *keys: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """y⁺ > 0 and the profiles at those points."""
    yplus = _array(stats, "yplus")
    keep = np.isfinite(yplus) & (yplus > 0)
    return yplus[keep], [_array(stats, k)[keep] if len(_array(stats, k)) else [] for k in keys]


def _guide_points(lo: float, hi: float, n: int = 48) -> np.ndarray:
    return np.geomspace(lo, hi, n) if hi > lo > 0 else np.asarray([], dtype=np.float64)


def wall_law_traces(
    lo: float,
    hi: float,
    *,
    log_hi: float | None = None,
    width: float = 1.5,
    dash: str = "dash",
    tagged: bool = False,
) -> list[go.Scatter]:
    """The law-of-the-wall guides of a U⁺(y⁺) plot over the profiles' range [lo, hi]: the
    viscous sublayer U⁺ = y⁺ up to y⁺ = ``SUBLAYER_MAX_YPLUS`` and the log law from y⁺ =
    ``LOG_LAW_MIN_YPLUS`` to ``log_hi`` (default ``hi``), each only where its range meets
    the profiles'. ``tagged`` puts ``meta`` "guide:sublayer" / "guide:log-law" on them."""
    out = []
    sub = _guide_points(lo, min(hi, SUBLAYER_MAX_YPLUS))
    if sub.size:
        out.append(
            go.Scatter(
                x=sub.tolist(),
                y=viscous_sublayer(sub).tolist(),
                mode="lines",
                name="U⁺ = y⁺",
                line=dict(color="#8d99ae", width=width, dash=dash),
                hoverinfo="skip",
                **({"meta": "guide:sublayer"} if tagged else {}),
            )
        )
    log = _guide_points(max(lo, LOG_LAW_MIN_YPLUS), hi if log_hi is None else log_hi)
    if log.size:
        out.append(
            go.Scatter(
                x=log.tolist(),
                y=log_law(log).tolist(),
                mode="lines",
                name=f"U⁺ = ln(y⁺)/{LOG_LAW_KAPPA:g} + {LOG_LAW_B:g}",
                line=dict(color="#6c5b7b", width=width, dash=dash),
                hoverinfo="skip",
                **({"meta": "guide:log-law"} if tagged else {}),
            )
        )
    return out


def mean_profile_figure(
    stats: Mapping[str, Any] | None,
    *,
    reference: bool = True,
    uirevision: Any = None,
    title: str | None = "Mean velocity U⁺",
) -> go.Figure:
    """U⁺(y⁺) on a log y⁺ axis; the dashed viscous sublayer U⁺ = y⁺ (up to y⁺ = 15) and log
    law (from y⁺ = 5) over the profile's y⁺ range; with ``reference``, MKM's Re_τ = 180
    centreline U⁺ (at y⁺ = Re_τ) and bulk U⁺ as marks. Traces: profile, sublayer, log law
    (each guide only where its range meets the profile's), then the reference marks."""
    if not stats or not len(_array(stats, "yplus")):
        return empty_figure("No channel statistics yet.", uirevision)
    yplus, (u_plus,) = _off_wall(stats, "u_mean_plus")
    if not yplus.size:
        return empty_figure("The profile has no point off the wall.", uirevision)
    lo, hi = float(yplus.min()), float(yplus.max())
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=yplus.tolist(),
            y=np.asarray(u_plus).tolist(),
            mode="lines+markers",
            name="U⁺",
            marker=dict(size=5),
            line=dict(color=COLORS["reference"], width=2),
            hovertemplate="y⁺=%{x:.3g}  U⁺=%{y:.3g}<extra></extra>",
        )
    )
    for trace in wall_law_traces(lo, hi):
        fig.add_trace(trace)
    if reference:
        ref = MKM_RE180
        fig.add_trace(
            go.Scatter(
                x=[ref.re_tau, ref.re_tau],
                y=[ref.centreline_u_plus, ref.bulk_u_plus],
                mode="markers",
                name="MKM Re_τ = 180",
                marker=dict(symbol=["diamond-open", "square-open"], size=9, color="#2a9d8f"),
                text=["centreline U⁺", "bulk U⁺"],
                hovertemplate="MKM %{text} = %{y:.3g}<extra></extra>",
            )
        )
    _base_layout(fig, uirevision, title)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(type="log", title_text="y⁺")
    fig.update_yaxes(title_text="U⁺", rangemode="tozero")
    return fig


def rms_figure(
    stats: Mapping[str, Any] | None,
    *,
    reference: bool = True,
    uirevision: Any = None,
    title: str | None = "Velocity fluctuations (rms)",
) -> go.Figure:
    """u′⁺, v′⁺, w′⁺ (rms, wall units) on a log y⁺ axis; with ``reference`` MKM's u′⁺ peak
    (≈ 2.6 near y⁺ ≈ 15) as a mark. Traces: u, v, w, then the mark."""
    if not stats or not len(_array(stats, "yplus")):
        return empty_figure("No channel statistics yet.", uirevision)
    yplus, profiles = _off_wall(stats, "u_rms_plus", "v_rms_plus", "w_rms_plus")
    if not yplus.size:
        return empty_figure("The profile has no point off the wall.", uirevision)
    fig = go.Figure()
    for c, values in zip(("u", "v", "w"), profiles, strict=True):
        fig.add_trace(
            go.Scatter(
                x=yplus.tolist(),
                y=np.asarray(values).tolist(),
                mode="lines",
                name=f"{c}′⁺",
                line=dict(color=COMPONENT_COLORS[c], width=2),
                hovertemplate=f"y⁺=%{{x:.3g}}  {c}′⁺=%{{y:.3g}}<extra></extra>",
            )
        )
    if reference:
        ref = MKM_RE180
        fig.add_trace(
            go.Scatter(
                x=[ref.peak_u_rms_yplus],
                y=[ref.peak_u_rms_plus],
                mode="markers",
                name="MKM u′⁺ peak",
                marker=dict(symbol="diamond-open", size=9, color="#2a9d8f"),
                hovertemplate="MKM u′⁺ peak %{y:.3g} at y⁺ ≈ %{x:.3g}<extra></extra>",
            )
        )
    _base_layout(fig, uirevision, title)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(type="log", title_text="y⁺")
    fig.update_yaxes(title_text="rms⁺", rangemode="tozero")
    return fig


def stress_figure(
    stats: Mapping[str, Any] | None,
    *,
    uirevision: Any = None,
    title: str | None = "Shear stress",
) -> go.Figure:
    """Against y/h from the wall (0) to the centreline (1): the Reynolds shear stress
    −⟨u′v′⟩⁺, the viscous stress dU⁺/dy⁺, the total, and the line 1 − y a steady channel's
    total stress follows. Traces in that order (the line dashed)."""
    if not stats or not len(_array(stats, "y")):
        return empty_figure("No channel statistics yet.", uirevision)
    y = _array(stats, "y")
    yplus = _array(stats, "yplus")
    custom = yplus.tolist() if len(yplus) == len(y) else None
    fig = go.Figure()
    for key, name, color, dash in (
        ("reynolds_stress_plus", "−⟨u′v′⟩⁺", STRESS_COLORS["reynolds"], None),
        ("viscous_stress_plus", "dU⁺/dy⁺ (viscous)", STRESS_COLORS["viscous"], None),
        ("total_stress_plus", "total", STRESS_COLORS["total"], None),
        ("total_stress_linear", "1 − y", STRESS_COLORS["linear"], "dash"),
    ):
        values = _array(stats, key)
        if key == "total_stress_linear" and not len(values):
            values = 1.0 - y
        fig.add_trace(
            go.Scatter(
                x=y.tolist(),
                y=values.tolist(),
                mode="lines",
                name=name,
                customdata=custom,
                line=dict(color=color, width=1.5 if dash else 2, dash=dash),
                hovertemplate=(
                    "y=%{x:.3g}"
                    + ("  (y⁺=%{customdata:.3g})" if custom else "")
                    + f"  {name}=%{{y:.3g}}<extra></extra>"
                ),
            )
        )
    _base_layout(fig, uirevision, title)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title_text="distance from the wall y/h", range=[0, 1])
    fig.update_yaxes(title_text="stress / τ_w")
    return fig


def spectra_planes(stats: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The planes with spectra in ``stats``: ``{"index", "yplus", "requested"}``, one per
    distinct plane (the first request wins), in order of y⁺."""
    if not stats:
        return []
    yplus = _array(stats, "spectra_yplus")
    requested = _array(stats, "spectra_yplus_requested")
    out: dict[float, dict[str, Any]] = {}
    for i, value in enumerate(yplus.tolist()):
        key = round(value, 9)
        if key not in out:
            req = float(requested[i]) if i < len(requested) else value
            out[key] = {"index": i, "yplus": float(value), "requested": req}
    return sorted(out.values(), key=lambda p: p["yplus"])


def nearest_spectra_plane(stats: Mapping[str, Any] | None, yplus: float = 15.0) -> int | None:
    """The index (into the spectra) of the plane nearest ``yplus``, or None."""
    planes = spectra_planes(stats)
    if not planes:
        return None
    return min(planes, key=lambda p: abs(math.log(max(p["yplus"], 1e-9) / yplus)))["index"]


def spectra_figure(
    stats: Mapping[str, Any] | None,
    plane: int | None = None,
    *,
    uirevision: Any = None,
) -> go.Figure:
    """E_uu, E_vv, E_ww against k_x (left) and k_z (right) at spectra plane ``plane`` (an
    index into ``stats["spectra_yplus"]``; None: the one nearest y⁺ = 15), log-log, in
    velocity² (each spectrum sums to the variance at its plane). Six traces: u, v, w against
    k_x, then against k_z; the k = 0 bin and values ≤ 0 are not drawn."""
    spectra_x = _array(stats or {}, "spectra_x")
    spectra_z = _array(stats or {}, "spectra_z")
    if not stats or spectra_x.ndim != 3 or not spectra_x.shape[0]:
        return empty_figure("No spectra in these statistics.", uirevision)
    if plane is None or not 0 <= int(plane) < spectra_x.shape[0]:
        plane = nearest_spectra_plane(stats) or 0
    plane = int(plane)
    at = float(_array(stats, "spectra_yplus")[plane])
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1)
    for col, (k, spectra, axis) in enumerate(
        ((_array(stats, "kx"), spectra_x, "x"), (_array(stats, "kz"), spectra_z, "z")), start=1
    ):
        keep = k > 0
        for c, values in zip(("u", "v", "w"), spectra[plane], strict=True):
            values = np.asarray(values)[keep]
            y = [float(v) if math.isfinite(v) and v > 0 else None for v in values]
            fig.add_trace(
                go.Scatter(
                    x=k[keep].tolist(),
                    y=y,
                    mode="lines+markers",
                    marker=dict(size=4),
                    name=f"E_{c}{c}",
                    legendgroup=c,
                    showlegend=col == 1,
                    line=dict(color=COMPONENT_COLORS[c], width=2),
                    hovertemplate=f"k_{axis}=%{{x:.3g}}  E_{c}{c}=%{{y:.3e}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        label = "streamwise wavenumber k_x" if axis == "x" else "spanwise wavenumber k_z"
        fig.update_xaxes(type="log", title_text=label, row=1, col=col)
        fig.update_yaxes(type="log", exponentformat="power", row=1, col=col)
    fig.update_yaxes(title_text="E(k)", row=1, col=1)
    _base_layout(fig, uirevision, f"1D spectra at y⁺ = {at:.3g}")
    fig.update_layout(hovermode="closest")
    return fig


# --- slices ---------------------------------------------------------------------------------


def _clean(value: float) -> float:
    """0 for round-off around zero (a Chebyshev centre point), else the value."""
    return 0.0 if abs(value) < 1e-12 else float(value)


def component_field(velocity: np.ndarray, component: str) -> np.ndarray:
    """One component (nx, ny, nz) of a snapshot (3, nx, ny, nz): "u", "v", "w", or
    "magnitude" |u| = (u² + v² + w²)^½."""
    velocity = np.asarray(velocity)
    if component == "magnitude":
        return np.sqrt((velocity.astype(np.float64) ** 2).sum(axis=0))
    return velocity[("u", "v", "w").index(component)]


def plane_size(shape: Sequence[int], plane: str) -> int:
    """How many positions the slider of a plane has: z points for x–y, y points for x–z,
    x points for y–z."""
    nx, ny, nz = (int(s) for s in shape)
    return {"xy": nz, "xz": ny, "yz": nx}[plane]


def slice_figure(
    velocity: np.ndarray | None,
    y: Sequence[float] | np.ndarray | None,
    *,
    lx: float,
    lz: float,
    plane: str = "xy",
    index: int | None = None,
    component: str = "u",
    yplus: Sequence[float] | np.ndarray | None = None,
    uirevision: Any = None,
    max_pixels: int = MAX_PIXELS,
) -> go.Figure:
    """One plane of one component of a snapshot (3, nx, ny, nz) as a heatmap: ``plane``
    "xy" (at z index ``index``; axes x, y), "xz" (at y index ``index``; axes x, z) or "yz"
    (at x index ``index``; axes z, y). The y axis uses the true points ``y`` (non-uniform);
    x and z are uniform on [0, lx) and [0, lz). u and |u| use a sequential colour map, v and
    w a diverging one symmetric about zero. ``yplus`` (per y point) labels the x–z plane's
    height in wall units. ``index`` None: the middle."""
    if velocity is None or y is None:
        return empty_figure("No 3D field to slice yet.", uirevision)
    velocity = np.asarray(velocity)
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}; got {plane!r}.")
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {', '.join(COMPONENTS)}; got {component!r}.")
    nx, ny, nz = velocity.shape[1:]
    y = np.asarray(y, dtype=np.float64)
    size = plane_size((nx, ny, nz), plane)
    index = size // 2 if index is None else min(max(int(index), 0), size - 1)
    field = component_field(velocity, component)
    x = np.arange(nx) * (lx / nx)
    z = np.arange(nz) * (lz / nz)
    if plane == "xy":
        values, hx, hy = field[:, :, index].T, x, y  # rows y, columns x
        labels = ("x", "y")
        where = f"z = {z[index]:.3g}"
    elif plane == "xz":
        values, hx, hy = field[:, index, :].T, x, z  # rows z, columns x
        labels = ("x", "z")
        where = f"y = {_clean(y[index]):.3g}"
        if yplus is not None and len(yplus) == ny:
            where += f" (y⁺ = {float(yplus[index]):.3g})"
    else:
        values, hx, hy = field[index, :, :], z, y  # rows y, columns z
        labels = ("z", "y")
        where = f"x = {x[index]:.3g}"
    # Thin along the periodic directions only: every y point stays, as the grid is stretched.
    sx = max(1, math.ceil(len(hx) / max_pixels))
    sy = max(1, math.ceil(len(hy) / max_pixels)) if labels[1] != "y" else 1
    values, hx, hy = values[::sy, ::sx], hx[::sx], hy[::sy]
    finite = values[np.isfinite(values)]
    if component in ("v", "w"):
        lim = float(np.abs(finite).max()) if finite.size else 1.0
        lim = lim if lim > 0 else 1.0
        colour = dict(colorscale=DIVERGING, zmin=-lim, zmax=lim)
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        colour = dict(colorscale=SEQUENTIAL, zmin=lo, zmax=hi if hi > lo else lo + 1.0)
    name = COMPONENT_LABELS[component]
    fig = go.Figure(
        go.Heatmap(
            z=values.astype(np.float32),
            x=hx.astype(np.float32),
            y=hy.astype(np.float32),
            name=name,
            colorbar=dict(title=dict(text=name, side="right"), thickness=10, outlinewidth=0),
            hovertemplate=f"{labels[0]}=%{{x:.3f}}, {labels[1]}=%{{y:.4f}}<br>{name}=%{{z:.4g}}"
            "<extra></extra>",
            **colour,
        )
    )
    _base_layout(fig, uirevision, f"{name} on the {PLANE_LABELS[plane]} plane at {where}")
    bare = dict(showgrid=False, zeroline=False)
    fig.update_xaxes(title_text=labels[0], **bare)
    fig.update_yaxes(title_text=labels[1], **bare)
    fig.update_layout(hovermode="closest", meta={"plane": plane, "index": index})
    return fig


def summary_items(stats: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) of the headline numbers: u_τ, Re_τ, bulk and centreline U⁺, the
    stress-balance error, snapshots averaged, ν, and t when the stats carry one."""
    if not stats:
        return []

    def fmt(key: str, digits: int = 4) -> str:
        value = stats.get(key)
        return "—" if value is None else f"{float(value):.{digits}g}"

    items = [
        ("u_τ", fmt("u_tau")),
        ("Re_τ", fmt("re_tau")),
        ("bulk U⁺", fmt("bulk_u_plus")),
        ("centreline U⁺", fmt("centreline_u_plus")),
        ("stress balance error", fmt("stress_balance_error", 3)),
        ("snapshots", str(int(stats.get("n_snapshots") or 0))),
        ("ν", fmt("nu")),
    ]
    if stats.get("t") is not None:
        items.append(("t", fmt("t")))
    return items
