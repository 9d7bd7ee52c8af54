"""Plotly figures for the UI, built by pure functions of plain data (numpy arrays, lists,
dicts of metrics) so tests can call them without a browser or a server.

Conventions: vorticity and error fields use the diverging ``RdBu_r`` map with a colour range
symmetric about zero (so white is ω = 0); spectra are drawn on log-log axes; every figure
takes a ``uirevision`` so a user's zoom survives the live updates of a running job.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"

COLORS = {
    "reference": "#1f4e79",
    "model": "#d1495b",
    "error": "#6c5b7b",
    "train": "#7a9cc6",
    "validation": "#d1495b",
    "persistence": "#8d99ae",
    "guide": "#b0b8c1",
}
DIVERGING = "RdBu_r"
FIELD_TITLES = {
    "model": "Model",
    "reference": "Reference solver",
    "error": "Error (model − reference)",
}
# Largest side of a heatmap sent to the browser; bigger fields are shown every s-th point.
MAX_PIXELS = 192
# Spectral values this far below the peak are round-off, not physics: they are not drawn.
SPECTRUM_FLOOR = 1e-14

_AXIS = dict(
    showgrid=True,
    gridcolor=GRID,
    zeroline=False,
    showline=True,
    linecolor="#9aa5b1",
    mirror=True,
    ticks="outside",
    tickcolor="#9aa5b1",
    ticklen=4,
    automargin=True,
    title_font=dict(size=12, color=MUTED),
    title_standoff=8,
)

TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family=FONT, size=12, color=INK),
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        modebar=dict(bgcolor="rgba(255,255,255,0.8)", color="#9aa5b1", activecolor="#1f4e79"),
        colorway=[COLORS["reference"], COLORS["model"], COLORS["error"], "#edae49", "#00798c"],
        xaxis=_AXIS,
        yaxis=_AXIS,
        margin=dict(l=64, r=16, t=48, b=48),
        legend=dict(
            orientation="h", yanchor="bottom", y=1.01, x=0, xanchor="left", bgcolor="rgba(0,0,0,0)"
        ),
        title=dict(font=dict(size=13, color=INK), x=0, xanchor="left", xref="paper"),
        hoverlabel=dict(font=dict(family=FONT, size=12)),
        hovermode="x unified",
    )
)


def _base_layout(fig: go.Figure, uirevision: Any, title: str | None = None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, uirevision=uirevision)
    if title:
        # Title on the first line, the legend on the second, both above the plot.
        fig.update_layout(
            title=dict(text=title, y=1.0, yref="container", yanchor="top", pad=dict(t=10)),
            margin=dict(t=72),
        )
    return fig


def wrap_figure(
    data: list[dict[str, Any]], layout: dict[str, Any], plain: bool = False
) -> go.Figure | dict[str, Any]:
    """A figure built as one plain dict, wrapped without plotly.py's validation (or, with
    ``plain``, the dict itself): a live page rebuilds its figures on every pushed frame, and
    validating one column of the Compare grid took 36 ms against 4 ms unvalidated and none
    as a dict (8 figures a frame). The tests validate every such figure instead, and check
    that validation would change nothing the browser receives
    (``tests/test_ui_compare_figures.py``)."""
    if plain:
        return {"data": data, "layout": layout}
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def typed_array(values: np.ndarray) -> dict[str, str]:
    """``values`` as Plotly's typed-array spec (float32, base64): what plotly.py sends for
    a numpy array, made here for figures that reach Dash as plain dicts."""
    array = np.ascontiguousarray(values, dtype=np.float32)
    spec = {"dtype": "f4", "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if array.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in array.shape)
    return spec


def base_layout_dict(uirevision: Any, title: str | None = None) -> dict[str, Any]:
    """What ``_base_layout`` sets, as a plain layout dict, for figures built as one dict and
    wrapped once (``go.Figure({"data": ..., "layout": ...})``): the same template,
    ``uirevision`` and title."""
    layout: dict[str, Any] = {"template": TEMPLATE}
    if uirevision is not None:
        layout["uirevision"] = uirevision
    if title:
        layout["title"] = dict(text=title, y=1.0, yref="container", yanchor="top", pad=dict(t=10))
        layout["margin"] = dict(t=72)
    return layout


def empty_figure(message: str = "No data yet.", uirevision: Any = None) -> go.Figure:
    """A blank figure that says why it is blank (no axes, one centred note)."""
    fig = go.Figure()
    _base_layout(fig, uirevision)
    fig.update_layout(
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        hovermode=False,
        margin=dict(l=16, r=16, t=16, b=16),
        annotations=[note_annotation(message)],
    )
    return fig


def note_annotation(text: str) -> dict[str, Any]:
    """A note centred on a figure (why it is blank, or what it waits for)."""
    return dict(
        text=text,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font=dict(size=13, color=MUTED),
    )


# --- fields ---------------------------------------------------------------------------


def symmetric_limit(*arrays: np.ndarray | None) -> float:
    """The largest |value| over the arrays (finite values only), never 0: the half-width of
    a colour range centred on zero."""
    peak = 0.0
    for array in arrays:
        if array is None:
            continue
        values = np.asarray(array)
        finite = values[np.isfinite(values)]
        if finite.size:
            peak = max(peak, float(np.abs(finite).max()))
    return peak if peak > 0 else 1.0


def downsample(field: np.ndarray, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, int]:
    """Every s-th point along each axis so neither side exceeds ``max_pixels``; returns the
    view and the stride s."""
    field = np.asarray(field)
    stride = max(1, math.ceil(max(field.shape) / max_pixels))
    return field[::stride, ::stride], stride


def _field_limits(panels: list[tuple[str, np.ndarray]]) -> tuple[dict[str, float], list, list]:
    vorticity = [a for name, a in panels if name == "reference"] or [
        a for name, a in panels if name != "error"
    ]
    errors = [a for name, a in panels if name == "error"]
    limits = {"coloraxis": symmetric_limit(*vorticity), "coloraxis2": symmetric_limit(*errors)}
    return limits, vorticity, errors


def _fields_label(t: float, step: int | None) -> str:
    return f"t = {t:.4g}" + (f"  ·  step {step}" if step is not None else "")


def fields_update(
    fields: Mapping[str, np.ndarray | None],
    *,
    t: float | None,
    step: int | None,
    max_pixels: int = MAX_PIXELS,
) -> dict[str, Any] | None:
    """What changes from one frame to the next in a ``fields_figure`` of the same panels (the
    heatmaps' values, the colour ranges, the title), as ``{path: value}`` for a Patch: a live
    page sends this instead of the whole figure. None when the panels differ (``panels``
    names them) or there is no time: draw the whole figure then."""
    panels = [(name, np.asarray(a)) for name, a in fields.items() if a is not None]
    if not panels or t is None:
        return None
    limits, vorticity, errors = _field_limits(panels)
    out: dict[str, Any] = {"panels": [name for name, _ in panels]}
    for i, (_, array) in enumerate(panels):
        shown, _stride = downsample(array, max_pixels)
        out[f"data.{i}.z"] = shown.astype(np.float32)
    if vorticity:
        out["layout.coloraxis.cmin"] = -limits["coloraxis"]
        out["layout.coloraxis.cmax"] = limits["coloraxis"]
    if errors:
        out["layout.coloraxis2.cmin"] = -limits["coloraxis2"]
        out["layout.coloraxis2.cmax"] = limits["coloraxis2"]
    out["layout.title.text"] = _fields_label(t, step)
    return out


def fields_figure(
    fields: Mapping[str, np.ndarray | None],
    *,
    length: float = 1.0,
    t: float | None = None,
    step: int | None = None,
    titles: Mapping[str, str] | None = None,
    uirevision: Any = None,
    max_pixels: int = MAX_PIXELS,
) -> go.Figure:
    """Side-by-side heatmaps of 2D fields shaped (ny, nx) on [0, length)².

    Keys are panel names in display order; ``"error"`` panels get their own colour range,
    every other panel shares one (so model and reference are directly comparable). The shared
    range is the reference's when there is one: the ground truth stays legible, and a model
    that drifts or blows up saturates instead of washing the reference out. Both ranges are
    symmetric about zero. ``None`` values are skipped.
    """
    panels = [(name, np.asarray(a)) for name, a in fields.items() if a is not None]
    if not panels:
        return empty_figure("No field to show yet.", uirevision)
    titles = {**FIELD_TITLES, **(titles or {})}
    limits, vorticity, errors = _field_limits(panels)

    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[titles.get(name, name) for name, _ in panels],
        horizontal_spacing=0.04 if len(panels) > 1 else 0.0,
    )
    for col, (name, array) in enumerate(panels, start=1):
        shown, stride = downsample(array, max_pixels)
        ny, nx = array.shape[-2:]
        x = (np.arange(0, nx, stride) * (length / nx)).astype(np.float32)
        y = (np.arange(0, ny, stride) * (length / ny)).astype(np.float32)
        axis = "coloraxis2" if name == "error" else "coloraxis"
        fig.add_trace(
            go.Heatmap(
                z=shown.astype(np.float32),
                x=x,
                y=y,
                coloraxis=axis,
                name=titles.get(name, name),
                hovertemplate="x=%{x:.3f}, y=%{y:.3f}<br>%{z:.4g}<extra>"
                + titles.get(name, name)
                + "</extra>",
            ),
            row=1,
            col=col,
        )
        xaxis = "x" if col == 1 else f"x{col}"
        bare = dict(showgrid=False, showline=False, ticks="", showticklabels=False)
        fig.update_xaxes(row=1, col=col, range=[0, length], constrain="domain", **bare)
        fig.update_yaxes(
            row=1,
            col=col,
            range=[0, length],
            scaleanchor=xaxis,
            scaleratio=1,
            constrain="domain",
            **bare,
        )

    def colorbar(names: set[str], title: str) -> dict[str, Any]:
        # Horizontal, under the panels it belongs to: centred on their (paper) domain, and
        # sized in pixels, since square panels are narrower than their domain when wide.
        domains = [
            fig.layout[f"xaxis{'' if i == 1 else i}"].domain
            for i, (name, _) in enumerate(panels, start=1)
            if (name == "error") == ("error" in names)
        ]
        lo, hi = min(d[0] for d in domains), max(d[1] for d in domains)
        return dict(
            orientation="h",
            x=(lo + hi) / 2,
            xanchor="center",
            lenmode="pixels",
            len=200 * len(domains),
            y=-0.03,
            yanchor="top",
            thickness=10,
            title=dict(text=title, side="right", font=dict(size=13, color=INK)),
            tickfont=dict(size=11),
            outlinewidth=0,
        )

    layout: dict[str, Any] = {}
    if vorticity:
        lim = limits["coloraxis"]
        layout["coloraxis"] = dict(
            colorscale=DIVERGING, cmin=-lim, cmax=lim, colorbar=colorbar({"vorticity"}, "ω")
        )
    if errors:
        lim = limits["coloraxis2"]
        layout["coloraxis2"] = dict(
            colorscale=DIVERGING, cmin=-lim, cmax=lim, colorbar=colorbar({"error"}, "Δω")
        )
    _base_layout(fig, uirevision)
    fig.update_layout(
        **layout,
        hovermode="closest",
        plot_bgcolor="#ffffff",
        margin=dict(l=8, r=8, t=36 if t is None else 56, b=56),
    )
    if t is not None:
        fig.update_layout(title=dict(text=_fields_label(t, step), y=0.98, yanchor="top"))
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=12, color=INK)
    return fig


# --- spectra --------------------------------------------------------------------------


_SUPERSCRIPT = str.maketrans("-0123456789.", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹·")


def _positive(values: Sequence[float] | np.ndarray, floor: float) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        v = float(v)
        out.append(v if math.isfinite(v) and v > floor else None)
    return out


def spectrum_figure(
    k: Sequence[float] | np.ndarray | None,
    spectra: Mapping[str, Sequence[float] | np.ndarray | None],
    *,
    title: str | None = None,
    slope: float | None = -3.0,
    uirevision: Any = None,
) -> go.Figure:
    """Energy spectra E(k) on log-log axes, one line per named spectrum.

    k = 0 (the mean) and values at round-off level (below ``SPECTRUM_FLOOR`` × the peak)
    cannot be shown on a log axis and are dropped. With ``slope``, a dotted guide line
    k^slope (−3: the 2D enstrophy cascade) is drawn through the first spectrum at k = 4.
    """
    present = {name: s for name, s in spectra.items() if s is not None and len(s)}
    if k is None or not len(k) or not present:
        return empty_figure("No spectrum yet.", uirevision)
    k = np.asarray(k, dtype=float)
    keep = k > 0
    ks = k[keep]
    peak = max(float(np.nanmax(np.asarray(s, dtype=float))) for s in present.values())
    floor = peak * SPECTRUM_FLOOR if peak > 0 else 0.0

    fig = go.Figure()
    for name, values in present.items():
        values = np.asarray(values, dtype=float)[keep]
        key = name.lower().split()[0]
        fig.add_trace(
            go.Scatter(
                x=ks.tolist(),
                y=_positive(values, floor),
                mode="lines",
                name=name,
                line=dict(color=COLORS.get(key), width=2),
                connectgaps=False,
                hovertemplate="k=%{x:.0f}  E=%{y:.3e}<extra>" + name + "</extra>",
            )
        )
    if slope is not None and len(ks) > 4:
        first = np.asarray(next(iter(present.values())), dtype=float)[keep]
        anchor = min(3, len(ks) - 1)  # k = 4 when k runs 1, 2, 3, ...
        if math.isfinite(first[anchor]) and first[anchor] > 0:
            guide = first[anchor] * (ks / ks[anchor]) ** slope
            label = "k" + f"{slope:g}".translate(_SUPERSCRIPT)
            fig.add_trace(
                go.Scatter(
                    x=ks.tolist(),
                    y=_positive(guide, floor),
                    mode="lines",
                    name=label,
                    line=dict(color=COLORS["guide"], width=1, dash="dot"),
                    hoverinfo="skip",
                )
            )
    _base_layout(fig, uirevision, title)
    fig.update_layout(hovermode="closest")
    # Plain integers on the wavenumber axis (1 2 5 10 20 …), not 1 2 5 10 2 5.
    ticks = [m * 10**e for e in range(0, 5) for m in (1, 2, 5) if m * 10**e <= ks.max() * 1.5]
    fig.update_xaxes(
        type="log", title_text="wavenumber k", tickvals=ticks, ticktext=[str(t) for t in ticks]
    )
    fig.update_yaxes(type="log", title_text="energy spectrum E(k)", exponentformat="power")
    return fig


# --- time series ----------------------------------------------------------------------


MARKERS_UP_TO = 60  # points per curve drawn with markers; more: lines only


def present_series(series: Mapping[str, Sequence[float | None] | None]) -> dict[str, Sequence]:
    """The series a ``time_series_figure`` draws (one trace each, in this order)."""
    return {
        name: s for name, s in series.items() if s is not None and any(v is not None for v in s)
    }


def _curve_values(values: Sequence[Any], log_y: bool = False) -> list[float | None]:
    y = [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]
    if log_y:
        y = [v if v is not None and v > 0 else None for v in y]
    return y


def time_series_update(
    t: Sequence[float],
    series: Mapping[str, Sequence[float | None] | None],
    shown: int,
    log_y: bool = False,
) -> dict[str, Any] | None:
    """The points after the first ``shown`` of a ``time_series_figure`` already drawn with
    them, as ``{"extend": {trace index: (x, y)}, "names": [...]}`` for a Patch that extends
    each trace; None when the whole figure must be drawn (nothing shown yet, the curves
    present changed, or the markers go at ``MARKERS_UP_TO`` points)."""
    present = present_series(series)
    n = len(t)
    if not shown or not present or (shown <= MARKERS_UP_TO < n):
        return None
    x = [float(v) for v in t[shown:]]
    extend = {
        i: (x, _curve_values(values[shown:], log_y)) for i, values in enumerate(present.values())
    }
    return {"names": list(present), "extend": extend}


def error_curve_series(series: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any] | None]:
    has_model = any(v is not None for v in series.get("rel_l2") or [])
    return {"model vs reference": series.get("rel_l2")} if has_model else {}


def energy_curve_series(series: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any] | None]:
    return {"reference": series.get("energy_reference"), "model": series.get("energy_model")}


def time_series_figure(
    t: Sequence[float] | None,
    series: Mapping[str, Sequence[float | None] | None],
    *,
    y_title: str,
    x_title: str = "time t",
    title: str | None = None,
    log_y: bool = False,
    marker_t: float | None = None,
    dashed: Sequence[str] = (),
    empty_message: str = "No data yet.",
    uirevision: Any = None,
) -> go.Figure:
    """Curves against time, one per named series (missing or None series are skipped);
    ``marker_t`` draws a vertical line at the frame being shown."""
    present = present_series(series)
    if not t or not present:
        return empty_figure(empty_message, uirevision)
    fig = go.Figure()
    x = [float(v) for v in t]
    for name, values in present.items():
        key = name.lower().split()[0]
        y = _curve_values(values, log_y)
        fig.add_trace(
            go.Scatter(
                x=x[: len(y)],
                y=y,
                mode="lines+markers" if len(y) <= MARKERS_UP_TO else "lines",
                marker=dict(size=4),
                name=name,
                line=dict(
                    color=COLORS.get(key), width=2, dash="dash" if name in dashed else "solid"
                ),
            )
        )
    _base_layout(fig, uirevision, title)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear", exponentformat="power")
    if marker_t is not None:
        fig.add_vline(x=float(marker_t), line=dict(color=MUTED, width=1, dash="dot"))
    return fig


def error_curve_figure(
    series: Mapping[str, Sequence[Any]], *, marker_t: float | None = None, uirevision: Any = None
) -> go.Figure:
    """Relative L2 error of the model against the reference solver, against time."""
    return time_series_figure(
        series.get("t"),
        error_curve_series(series),
        y_title="relative L2 error",
        title="Error growth",
        marker_t=marker_t,
        empty_message=(
            "Reference solver only: no model, so no error curve."
            if series.get("t")
            else "The error curve appears when the rollout starts."
        ),
        uirevision=uirevision,
    )


def energy_curve_figure(
    series: Mapping[str, Sequence[Any]], *, marker_t: float | None = None, uirevision: Any = None
) -> go.Figure:
    """Kinetic energy of the reference and (when present) the model against time."""
    return time_series_figure(
        series.get("t"),
        energy_curve_series(series),
        y_title="kinetic energy ½⟨|u|²⟩",
        title="Energy",
        marker_t=marker_t,
        empty_message="The energy curve appears when the rollout starts.",
        uirevision=uirevision,
    )


# --- dataset previews -----------------------------------------------------------------

# An animation sends every frame to the browser at once: at most this many frames, each at
# most this many points per side (float32, base64 in the figure JSON: 100 × 128² ≈ 9 MB).
ANIMATION_FRAMES = 100
ANIMATION_PIXELS = 128
SHOWN_COLOR = "#d1495b"
# Spectra of stored (float32) fields: values this far below the peak are round-off.
DATASET_SPECTRUM_FLOOR = 1e-12


def _frame_title(t: float, snapshot: int, total: int | None) -> str:
    of = f" of {total}" if total else ""
    return f"t = {t:.4g}  ·  snapshot {snapshot + 1}{of}"


def trajectory_animation(
    frames: np.ndarray,
    times: Sequence[float] | np.ndarray,
    length: float = 1.0,
    *,
    snapshots: Sequence[int] | None = None,
    total: int | None = None,
    limit: float | None = None,
    max_pixels: int = ANIMATION_PIXELS,
    uirevision: Any = None,
) -> go.Figure:
    """An animated vorticity heatmap: one Plotly frame per snapshot of ``frames`` (F, ny, nx)
    on [0, length)², with play/pause buttons and a time slider.

    The colour range is one symmetric range for the whole animation, ``±limit`` (default: the
    largest |ω| of the frames), so a field that decays looks paler instead of being
    re-stretched frame by frame. ``snapshots`` are the frames' indices in the trajectory
    (default 0…F−1) and ``total`` its number of snapshots, for the titles; frames are named by
    their snapshot index. Frames larger than ``max_pixels`` are thinned like ``downsample``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or not len(frames):
        return empty_figure("No snapshot to show.", uirevision)
    times = [float(t) for t in times]
    snapshots = list(range(len(frames))) if snapshots is None else [int(s) for s in snapshots]
    lim = float(limit) if limit and math.isfinite(limit) and limit > 0 else symmetric_limit(frames)
    ny, nx = frames.shape[-2:]
    stride = max(1, math.ceil(max(ny, nx) / max_pixels))
    x = (np.arange(0, nx, stride) * (length / nx)).astype(np.float32)
    y = (np.arange(0, ny, stride) * (length / ny)).astype(np.float32)
    shown = [np.ascontiguousarray(f[::stride, ::stride], dtype=np.float32) for f in frames]

    def heatmap(z: np.ndarray) -> go.Heatmap:
        return go.Heatmap(
            z=z,
            x=x,
            y=y,
            coloraxis="coloraxis",
            name="vorticity",
            hovertemplate="x=%{x:.3f}, y=%{y:.3f}<br>ω=%{z:.4g}<extra></extra>",
        )

    names = [str(s) for s in snapshots]
    titles = [_frame_title(t, s, total) for t, s in zip(times, snapshots, strict=True)]
    fig = go.Figure(
        data=[heatmap(shown[0])],
        frames=[
            go.Frame(name=name, data=[heatmap(z)], traces=[0], layout=dict(title_text=title))
            for name, z, title in zip(names, shown, titles, strict=True)
        ],
    )
    _base_layout(fig, uirevision)
    # About 8 s for a whole run, never faster than ~16 frames/s.
    duration = int(min(300, max(60, 8000 / max(len(frames), 1))))
    play = dict(
        frame=dict(duration=duration, redraw=True),
        transition=dict(duration=0),
        fromcurrent=True,
        mode="immediate",
    )
    pause = dict(
        frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate"
    )
    bare = dict(showgrid=False, showline=False, ticks="", showticklabels=False)
    fig.update_xaxes(range=[0, length], constrain="domain", **bare)
    fig.update_yaxes(range=[0, length], scaleanchor="x", scaleratio=1, constrain="domain", **bare)
    fig.update_layout(
        title=dict(text=titles[0], y=0.98, yanchor="top"),
        hovermode="closest",
        margin=dict(l=8, r=8, t=40, b=8),
        coloraxis=dict(
            colorscale=DIVERGING,
            cmin=-lim,
            cmax=lim,
            colorbar=dict(
                thickness=10,
                len=0.75,
                outlinewidth=0,
                title=dict(text="ω", side="top", font=dict(size=14, color=INK)),
                tickfont=dict(size=11),
            ),
        ),
        meta=dict(times=times, snapshots=snapshots),
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                showactive=False,
                x=0.0,
                xanchor="left",
                y=-0.02,
                yanchor="top",
                pad=dict(r=6, t=0),
                bgcolor="#ffffff",
                bordercolor="#cbd2d9",
                font=dict(size=12, color=INK),
                buttons=[
                    dict(label="▶ Play", method="animate", args=[None, play]),
                    dict(label="❚❚ Pause", method="animate", args=[[None], pause]),
                ],
            )
        ],
        sliders=[
            dict(
                active=0,
                x=0.27,
                len=0.73,
                xanchor="left",
                y=-0.01,
                yanchor="top",
                pad=dict(t=0, b=0),
                bgcolor="#e9edf2",
                bordercolor="#cbd2d9",
                activebgcolor="#1f4e79",
                tickcolor="#9aa5b1",
                font=dict(size=10, color=MUTED),
                currentvalue=dict(visible=False),
                transition=dict(duration=0),
                minorticklen=0,
                steps=[
                    dict(
                        # Plotly labels every k-th step, k chosen so the labels do not overlap.
                        label=f"{t:.3g}",
                        method="animate",
                        args=[[name], {**pause, "frame": dict(duration=0, redraw=True)}],
                    )
                    for name, t in zip(names, times, strict=True)
                ],
            )
        ],
    )
    fig.update_layout(margin=dict(b=72))
    return fig


def snapshot_spectra_figure(
    k: Sequence[float] | np.ndarray | None,
    spectra: np.ndarray | None,
    times: Sequence[float] | np.ndarray,
    *,
    snapshots: Sequence[int] | None = None,
    slope: float | None = -3.0,
    floor_ratio: float = DATASET_SPECTRUM_FLOOR,
    uirevision: Any = None,
) -> go.Figure:
    """Energy spectra of a trajectory's snapshots, ``spectra`` (F, K) at ``times`` (F,), on
    log-log axes: the first and the last snapshot stay drawn, and a third line on top (trace
    2), the snapshot shown, carries one Plotly frame per snapshot (named by its index in
    ``snapshots``, as ``trajectory_animation`` names its frames), so it can follow the
    animation.

    Axis ranges are fixed to cover every snapshot, so the frames do not rescale the axes.
    Values below ``floor_ratio`` × the largest are not drawn (datasets are stored in float32:
    below that is its round-off).
    """
    if k is None or spectra is None or not len(k) or not np.asarray(spectra).size:
        return empty_figure("No spectrum to show.", uirevision)
    spectra = np.atleast_2d(np.asarray(spectra, dtype=float))
    times = [float(t) for t in times]
    snapshots = list(range(len(spectra))) if snapshots is None else [int(s) for s in snapshots]
    first, last = spectra[0], spectra[-1]
    fig = spectrum_figure(
        k,
        {
            f"first (t = {times[0]:.3g})": first,
            f"last (t = {times[-1]:.3g})": last,
            "shown snapshot": first,  # drawn last: on top
        },
        slope=slope,
        uirevision=uirevision,
    )
    styles = [
        dict(color=COLORS["train"], width=1.5, dash="dash"),
        dict(color=COLORS["reference"], width=1.5),
        dict(color=SHOWN_COLOR, width=2.5),
    ]
    k = np.asarray(k, dtype=float)
    keep = k > 0
    ks = k[keep]
    peak = float(np.nanmax(spectra)) if np.isfinite(spectra).any() else 0.0
    floor = peak * floor_ratio if peak > 0 else 0.0
    for trace, line, values in zip(fig.data, styles, (first, last, first), strict=False):
        trace.line = line
        trace.y = _positive(values[keep], floor)
    frames = [
        go.Frame(
            name=str(s),
            data=[go.Scatter(x=ks.tolist(), y=_positive(e[keep], floor), name="shown snapshot")],
            traces=[2],
        )
        for s, e in zip(snapshots, spectra, strict=True)
    ]
    fig.frames = frames
    values = spectra[:, keep]
    positive = values[np.isfinite(values) & (values > floor)]
    if positive.size and len(ks):
        lo, hi = math.log10(float(positive.min())), math.log10(float(positive.max()))
        pad = 0.3
        fig.update_yaxes(range=[lo - pad, hi + pad], autorange=False)
        # Up to the largest wavenumber any snapshot has above round-off.
        seen = ks[(np.isfinite(values) & (values > floor)).any(axis=0)]
        k_max = float(seen.max()) if seen.size else float(ks.max())
        fig.update_xaxes(range=[math.log10(ks.min()) - 0.05, math.log10(k_max) + 0.08])
    fig.update_layout(margin=dict(t=56))
    return fig


def energy_enstrophy_figure(
    times: Sequence[float] | np.ndarray | None,
    energy: Sequence[float] | np.ndarray | None,
    enstrophy: Sequence[float] | np.ndarray | None,
    *,
    marker_t: float | None = None,
    uirevision: Any = None,
) -> go.Figure:
    """Kinetic energy E = ½⟨|u|²⟩ (top) and enstrophy Z = ½⟨ω²⟩ (bottom) of one trajectory
    against time, on a shared time axis. ``marker_t`` draws a vertical line (the layout's first
    shape, spanning both panels) at the snapshot shown."""
    if times is None or not len(times) or energy is None or enstrophy is None:
        return empty_figure("No time series to show.", uirevision)
    t = [float(v) for v in times]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for row, (name, values, color) in enumerate(
        (
            ("energy E", energy, COLORS["reference"]),
            ("enstrophy Z", enstrophy, COLORS["error"]),
        ),
        start=1,
    ):
        y = [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]
        fig.add_trace(
            go.Scatter(
                x=t[: len(y)],
                y=y,
                mode="lines+markers" if len(y) <= 60 else "lines",
                marker=dict(size=4),
                name=name,
                line=dict(color=color, width=2),
                hovertemplate="t=%{x:.4g}  %{y:.4g}<extra>" + name + "</extra>",
            ),
            row=row,
            col=1,
        )
    _base_layout(fig, uirevision)
    fig.update_layout(showlegend=False, hovermode="x unified", margin=dict(t=16, b=44))
    fig.update_yaxes(title_text="energy E", exponentformat="power", row=1, col=1)
    fig.update_yaxes(title_text="enstrophy Z", exponentformat="power", row=2, col=1)
    fig.update_xaxes(title_text="time t", row=2, col=1)
    fig.update_xaxes(title_text=None, row=1, col=1)
    if marker_t is not None:
        fig.add_shape(
            type="line",
            x0=float(marker_t),
            x1=float(marker_t),
            xref="x",
            y0=0,
            y1=1,
            yref="paper",
            line=dict(color=SHOWN_COLOR, width=1, dash="dot"),
        )
    return fig
