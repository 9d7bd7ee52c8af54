"""Figures of the Compare page, built by pure functions of plain data (numpy frames, lists of
per-step metrics, summary rows) so tests can call them without a browser or a server.

A comparison has one *entry* per (model, precision) and, usually, the reference solver.
Every entry keeps one colour on every figure (``entry_color``); the reference is drawn in
the reference blue, thicker. Conventions are those of ``app.ui.figures``: vorticity and error
fields in ``RdBu_r`` with colour ranges symmetric about zero, spectra on log-log axes, a
``uirevision`` on every figure so zoom survives the live updates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from app.ui.figures import (
    COLORS,
    DIVERGING,
    FONT,
    INK,
    MUTED,
    SPECTRUM_FLOOR,
    _positive,
    base_layout_dict,
    downsample,
    empty_figure,
    note_annotation,
    symmetric_limit,
    typed_array,
    wrap_figure,
)

REFERENCE = "reference"
REFERENCE_LABEL = "reference solver"
# Distinct from the reference blue and from each other; 8 entries at most.
PALETTE = (
    "#d1495b",
    "#00798c",
    "#edae49",
    "#66a182",
    "#8d5a97",
    "#e07a5f",
    "#2e4057",
    "#a0522d",
)
DECORRELATION = 0.8
# Guide slopes of 2D turbulence: the enstrophy cascade (k⁻³, above the forcing wavenumber)
# and the inverse energy cascade (k⁻⁵ᐟ³, below it).
GUIDES = ((-5.0 / 3.0, "k⁻⁵ᐟ³"), (-3.0, "k⁻³"))
# The figures are wrapped unvalidated (``wrap_figure``): a named scale would reach
# Plotly.js as a name, whose "RdBu" is not plotly.py's, so the scale is sent as its stops.
DIVERGING_SCALE = [[float(v), c] for v, c in get_colorscale(DIVERGING)]
# Side of a field panel sent to the browser, by number of columns.
PANEL_PIXELS = {1: 160, 2: 160, 3: 128, 4: 112}
PANEL_PIXELS_MANY = 96


def entry_color(index: int | str) -> str:
    return PALETTE[int(index) % len(PALETTE)]


def entry_label(entry: Mapping[str, Any]) -> str:
    """How an entry is named on every figure: its model's name and its precision (a model
    can appear at several precisions)."""
    name = entry.get("name") or str(entry.get("model_id") or "")[:8] or f"entry {entry['index']}"
    return f"{name} ({entry.get('precision') or 'float32'})"


def _finite(values: Sequence[Any] | None) -> list[float | None]:
    out: list[float | None] = []
    for v in values or []:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if math.isfinite(f) else None)
    return out


# --- the field grid ------------------------------------------------------------------------


def panel_pixels(columns: int) -> int:
    return PANEL_PIXELS.get(columns, PANEL_PIXELS_MANY)


def field_limits(
    fields: Mapping[str, np.ndarray | None],
    errors: Mapping[str, np.ndarray | None],
    stopped: Sequence[str] = (),
) -> tuple[float, float]:
    """(vorticity, error) colour half-ranges shared by every column: the reference's range
    when there is a reference (the truth stays legible; a model that blows up saturates
    instead of washing everything out), else the largest |ω| over the models; the largest
    |Δω| over the error fields. Columns in ``stopped`` (diverged) count only when every
    column is stopped, so one blown-up model does not wash out the others' errors."""

    def pick(arrays: Mapping[str, np.ndarray | None]) -> list[np.ndarray]:
        live = [a for k, a in arrays.items() if k not in stopped and _has_values(a)]
        return live or [a for a in arrays.values() if _has_values(a)]

    reference = fields.get(REFERENCE)
    if _has_values(reference):
        vorticity = symmetric_limit(reference)
    else:
        vorticity = symmetric_limit(*pick(fields))
    return vorticity, symmetric_limit(*pick(errors))


def _has_values(array: np.ndarray | None) -> bool:
    return array is not None and bool(np.isfinite(np.asarray(array)).any())


def column_figure(
    field: np.ndarray | None,
    error: np.ndarray | None,
    *,
    with_error_row: bool,
    limit: float,
    error_limit: float,
    length: float = 1.0,
    colorbars: bool = False,
    field_note: str | None = None,
    error_note: str | None = None,
    max_pixels: int = 128,
    uirevision: Any = None,
    plain: bool = False,
) -> go.Figure:
    """One column of the grid: the field on top and, ``with_error_row``, the error field
    (model − reference) under it, both square on [0, length)².

    Every column gets the same ranges (``limit`` for ω, ``error_limit`` for Δω) and the same
    margins, so panels line up across columns; only the column with ``colorbars`` draws
    them (horizontal, under each row). A missing or all-NaN field leaves its panel blank
    with ``field_note`` / ``error_note`` (or "no frame") written on it.

    Built as a plain figure dict (no subplot helpers) and wrapped unvalidated
    (``figures.wrap_figure``; ``plain``: the dict itself, as the live page sends it): a live
    page redraws every column each frame.
    """
    # A dict goes to Dash as it is: its arrays are typed-array specs, as plotly.py would
    # send them; a figure keeps numpy arrays (and encodes them the same way).
    array_of = typed_array if plain else (lambda values: np.asarray(values, dtype=np.float32))
    rows = 2 if with_error_row else 1
    gap = 0.09 if rows == 2 else 0.0
    height = (1.0 - gap * (rows - 1)) / rows
    panels = [(field, "coloraxis", field_note, "ω")]
    if with_error_row:
        panels.append((error, "coloraxis2", error_note, "Δω"))
    bare = dict(
        showgrid=False,
        showline=False,
        ticks="",
        showticklabels=False,
        zeroline=False,
        range=[0, length],
        constrain="domain",
    )
    data: list[dict[str, Any]] = []
    # The house template (as every figure has): without one, plotly.py would add its own.
    layout: dict[str, Any] = base_layout_dict(uirevision)
    annotations = []
    for row, (array, axis, note, name) in enumerate(panels, start=1):
        suffix = "" if row == 1 else str(row)
        top = 1.0 - (row - 1) * (height + gap)
        domain = [max(0.0, top - height), top]
        layout[f"xaxis{suffix}"] = dict(bare, domain=[0.0, 1.0], anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = dict(
            bare, domain=domain, anchor=f"x{suffix}", scaleanchor=f"x{suffix}", scaleratio=1
        )
        trace: dict[str, Any] = dict(
            type="heatmap", coloraxis=axis, name=name, xaxis=f"x{suffix}", yaxis=f"y{suffix}"
        )
        if _has_values(array):
            array = np.asarray(array)
            shown, stride = downsample(array, max_pixels)
            ny, nx = array.shape[-2:]
            trace.update(
                z=array_of(shown),
                x=array_of(np.arange(0, nx, stride) * (length / nx)),
                y=array_of(np.arange(0, ny, stride) * (length / ny)),
                hovertemplate="x=%{x:.3f}, y=%{y:.3f}<br>" + name + "=%{z:.4g}<extra></extra>",
            )
        else:
            # One transparent cell: the panel stays blank, and its colour axis still has
            # data, so the colour bar of a column without that field is drawn.
            trace.update(
                z=[[0.0]],
                x=[length / 2],
                y=[length / 2],
                opacity=0,
                hoverinfo="skip",
                meta={"blank": True},
            )
            annotations.append(
                dict(
                    text=note or "no frame",
                    x=0.5,
                    y=0.5,
                    xref=f"x{suffix} domain",
                    yref=f"y{suffix} domain",
                    showarrow=False,
                    font=dict(size=12, color=MUTED),
                )
            )
        data.append(trace)
        layout[axis] = dict(
            colorscale=DIVERGING_SCALE,
            cmin=-(limit if row == 1 else error_limit),
            cmax=limit if row == 1 else error_limit,
            showscale=colorbars,
            colorbar=dict(
                orientation="h",
                x=0.5,
                xanchor="center",
                len=0.8,
                y=domain[0] - 0.005,
                yanchor="top",
                thickness=8,
                title=dict(text=name, side="right", font=dict(size=12, color=INK)),
                tickfont=dict(size=10),
                outlinewidth=0,
            ),
        )
    layout.update(
        font=dict(family=FONT, size=12, color=INK),
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        hovermode="closest",
        showlegend=False,
        margin=dict(l=4, r=4, t=MODEBAR_ROOM, b=34),
    )
    if annotations:  # (validation used to drop an empty list: the same figure either way)
        layout["annotations"] = annotations
    return wrap_figure(data, layout, plain)


def grid_figures(
    columns: Sequence[Mapping[str, Any]],
    fields: Mapping[str, np.ndarray | None],
    errors: Mapping[str, np.ndarray | None],
    *,
    with_error_row: bool,
    length: float = 1.0,
    uirevision: Any = None,
    plain: bool = False,
) -> dict[str, go.Figure]:
    """Every column's figure, by column key: ``columns`` are ``{"key", "note"?,
    "error_note"?, "stopped"?}`` in display order (the reference first); ``fields`` and
    ``errors`` map column keys to frames (the reference has no error). The first column
    draws the colour bars; ``stopped`` columns (diverged) do not set the ranges."""
    stopped = [c["key"] for c in columns if c.get("stopped")]
    limit, error_limit = field_limits(fields, errors, stopped)
    pixels = panel_pixels(len(columns))
    out = {}
    for i, column in enumerate(columns):
        key = column["key"]
        error_row = with_error_row
        out[key] = column_figure(
            fields.get(key),
            errors.get(key) if key != REFERENCE else None,
            with_error_row=error_row,
            limit=limit,
            error_limit=error_limit,
            length=length,
            colorbars=i == 0,
            field_note=column.get("note"),
            error_note=column.get("error_note")
            or ("the reference has no error" if key == REFERENCE else None),
            max_pixels=pixels,
            uirevision=uirevision,
            plain=plain,
        )
    return out


# --- spectra -------------------------------------------------------------------------------


def guide_lines(
    k: np.ndarray, anchor: np.ndarray, floor: float, lift: float = 2.5
) -> list[tuple[str, list[float], list[float | None]]]:
    """The 2D-turbulence guide slopes as (label, k, E) segments: k⁻⁵ᐟ³ over the lowest third
    of the log-wavenumber range, k⁻³ over the rest, each through ``lift`` × the ``anchor``
    spectrum where it starts (drawn above the data, not on it)."""
    positive = (k > 0) & np.isfinite(anchor) & (anchor > floor)
    if positive.sum() < 3:
        return []
    ks, es = k[positive], anchor[positive]
    lo, hi = math.log(ks.min()), math.log(ks.max())
    split = math.exp(lo + (hi - lo) / 3.0)
    out = []
    for slope, label in GUIDES:
        part = ks <= split if slope > -2 else ks >= split
        if part.sum() < 2:
            part = np.ones_like(ks, dtype=bool)
        start = int(np.argmax(part))
        x = ks[part]
        y = lift * es[start] * (x / ks[start]) ** slope
        out.append((label, x.tolist(), _positive(y, floor)))
    return out


def spectra_figure(
    k: Sequence[float] | np.ndarray | None,
    reference: Sequence[float] | np.ndarray | None,
    entries: Sequence[tuple[str, str, Sequence[float] | np.ndarray | None]],
    *,
    title: str | None = None,
    guides: bool = True,
    uirevision: Any = None,
    plain: bool = False,
    waiting: str | None = None,
) -> go.Figure:
    """Energy spectra E(k) of the reference and of every entry, (label, colour, spectrum),
    on one log-log plot, with the k⁻³ and k⁻⁵ᐟ³ guide lines (dotted, grey) anchored to the
    reference (else to the first entry with a spectrum). k = 0 and round-off values are
    dropped as in ``figures.spectrum_figure``; an entry without a spectrum (stopped) keeps
    its legend entry with no line, so the legend always lists every column.

    Built as a plain figure dict (``plain``: returned as such), like ``column_figure``: the
    live page rebuilds it on every pushed frame. ``waiting``: no spectrum yet (a reference
    given as an empty list gets its line), every line laid out empty on the axes of ``k``
    with this note, as in ``error_growth_figure``."""
    spectra = [(REFERENCE_LABEL, COLORS["reference"], reference)] if reference is not None else []
    spectra += list(entries)
    present = [s for _, _, s in spectra if s is not None and len(s)]
    if k is None or not len(k) or not (present or waiting is not None):
        return empty_figure("The energy spectra appear when the comparison starts.", uirevision)
    k = np.asarray(k, dtype=float)
    keep = k > 0
    ks = k[keep]
    x = ks.tolist()
    peaks = [np.nanmax(np.asarray(s, dtype=float)) for s in present]
    peak = max((float(p) for p in peaks if np.isfinite(p)), default=0.0)
    floor = peak * SPECTRUM_FLOOR if peak > 0 else 0.0
    data: list[dict[str, Any]] = []
    for label, color, values in spectra:
        is_reference = label == REFERENCE_LABEL
        y = (
            _positive(np.asarray(values, dtype=float)[keep], floor)
            if values is not None and len(values)
            else [None] * len(ks)
        )
        data.append(
            dict(
                type="scatter",
                x=list(x),
                y=y,
                mode="lines",
                name=label,
                line=dict(color=color, width=3 if is_reference else 1.8),
                connectgaps=False,
                hovertemplate="k=%{x:.0f}  E=%{y:.3e}<extra>" + label + "</extra>",
            )
        )
    if guides:
        # Waiting, the guides are laid out empty too: the first frame then adds no trace.
        lines = (
            guide_lines(ks, np.asarray(present[0], dtype=float)[keep], floor)
            if present
            else [(label, [], []) for _, label in GUIDES]
        )
        for label, gx, gy in lines:
            data.append(
                dict(
                    type="scatter",
                    x=gx,
                    y=gy,
                    mode="lines",
                    name=label,
                    line=dict(color=COLORS["guide"], width=1.2, dash="dot"),
                    hoverinfo="skip",
                    meta={"guide": True},
                )
            )
    layout = base_layout_dict(uirevision, title)
    layout["hovermode"] = "closest"
    _legend_room(layout)
    ticks = [m * 10**e for e in range(0, 5) for m in (1, 2, 5) if m * 10**e <= ks.max() * 1.5]
    layout["xaxis"] = dict(
        type="log",
        title=dict(text="wavenumber k"),
        tickvals=ticks,
        ticktext=[str(t) for t in ticks],
    )
    layout["yaxis"] = dict(
        type="log", title=dict(text="energy spectrum E(k)"), exponentformat="power"
    )
    _waiting_note(layout, waiting)
    return wrap_figure(data, layout, plain)


# --- curves against time -------------------------------------------------------------------

# While a comparison is followed live, every pushed frame redraws the three curve charts:
# they are drawn as lines only then, and get a marker on each point (a series of 60 points
# or fewer) once the run has ended or the user browses its frames. The markers are an SVG
# node per point per trace: with them, plotly's redraw of a 3-model comparison's curves took
# about 150 ms a frame, without them about 60 ms (headless Chromium, 2-core VM; the
# ``Plotly.react`` times of one bench/ui_latency.py run each way).


def _curve(
    x: list[float],
    values: Sequence[Any] | None,
    *,
    name: str,
    color: str,
    width: float = 2.0,
    dash: str = "solid",
    log_y: bool = False,
    legendgroup: str | None = None,
    showlegend: bool = True,
    markers: bool = True,
) -> dict[str, Any]:
    """One curve against time, as a plain scatter trace dict: a marker on each point of a
    short series (``markers``), lines only past 60 points."""
    y = _finite(values)
    if log_y:
        y = [v if v is not None and v > 0 else None for v in y]
    trace: dict[str, Any] = dict(
        type="scatter",
        x=x[: len(y)],
        y=y,
        mode="lines+markers" if markers and len(y) <= 60 else "lines",
        marker=dict(size=3.5),
        name=name,
        line=dict(color=color, width=width, dash=dash),
        showlegend=showlegend,
        hovertemplate="t=%{x:.4g}  %{y:.4g}<extra>" + name + "</extra>",
    )
    if legendgroup is not None:
        trace["legendgroup"] = legendgroup
    return trace


def _stop_markers(
    x: list[float], entries: Sequence[Mapping[str, Any]], values_of: Any, log_y: bool = False
) -> list[dict[str, Any]]:
    """An ✕ at the last value of each entry that diverged, with its message on hover (plain
    scatter trace dicts)."""
    out = []
    for entry in entries:
        if entry.get("status") != "diverged":
            continue
        y = _finite(values_of(entry))
        last = max(
            (i for i, v in enumerate(y) if v is not None and (v > 0 or not log_y)), default=None
        )
        if last is None or last >= len(x):
            continue
        out.append(
            dict(
                type="scatter",
                x=[x[last]],
                y=[y[last]],
                mode="markers",
                marker=dict(symbol="x", size=10, color=entry["color"], line=dict(width=2)),
                name=f"{entry['label']}: {entry.get('message') or 'diverged'}",
                showlegend=False,
                hovertemplate=(entry.get("message") or "diverged")
                + "<extra>"
                + entry["label"]
                + "</extra>",
            )
        )
    return out


# Room above a field panel for the mode bar (zoom, PNG download), so it never covers the
# field: plotly draws the bar over the top right of the figure, about 26 px tall.
MODEBAR_ROOM = 30
# The overlays' legend: one entry per line, outside the plot on the right, under the mode
# bar; the title alone on the line above the plot.
LEGEND = dict(
    orientation="v",
    x=1.02,
    xanchor="left",
    xref="paper",
    y=1.0,
    yanchor="top",
    yref="paper",
    font=dict(size=11),
    itemwidth=30,
    tracegroupgap=2,
)
TITLE_ROOM = 56
# make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08), written out: the
# energy on top, the enstrophy under it, both on the bottom row's time axis.
_STACKED_AXES = dict(
    xaxis=dict(anchor="y", domain=[0.0, 1.0], matches="x2", showticklabels=False),
    yaxis=dict(anchor="x", domain=[0.54, 1.0]),
    xaxis2=dict(anchor="y2", domain=[0.0, 1.0]),
    yaxis2=dict(anchor="x2", domain=[0.0, 0.46]),
)


def _legend_room(layout: dict[str, Any]) -> None:
    """The legend to the right of the plot, one entry a line (plotly widens the right
    margin to fit it), the title alone above the plot: they never overlap, and an exported
    PNG keeps its plot however many columns the comparison has."""
    layout["legend"] = dict(LEGEND)
    layout["margin"] = {**layout.get("margin", {}), "t": TITLE_ROOM, "r": 8}


def _vline(x: float, yref: str = "y domain") -> dict[str, Any]:
    """A dotted vertical line at time ``x`` over the plot's height (what ``add_vline``
    draws)."""
    return dict(
        type="line",
        x0=x,
        x1=x,
        xref="x",
        y0=0,
        y1=1,
        yref=yref,
        line=dict(color=MUTED, width=1, dash="dot"),
    )


def _marker(layout: dict[str, Any], marker_t: float | None) -> None:
    if marker_t is not None:
        layout.setdefault("shapes", []).append(_vline(float(marker_t)))


def _waiting_note(layout: dict[str, Any], waiting: str | None) -> None:
    """The note of a figure laid out before its first frame (``waiting``): its traces,
    legend and axes are there, with no data yet, so that the first frame only fills them
    in (the browser creates them while the worker loads the models, not on the frame's
    clock)."""
    if waiting is not None:
        layout.setdefault("annotations", []).append(note_annotation(waiting))


def error_growth_figure(
    t: Sequence[float] | None,
    entries: Sequence[Mapping[str, Any]],
    series: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    marker_t: float | None = None,
    uirevision: Any = None,
    plain: bool = False,
    live: bool = False,
    waiting: str | None = None,
) -> go.Figure:
    """Relative L2 (solid) and relative H1 (dotted) error of every entry against time, on a
    log y axis; ``entries`` are ``{"key", "label", "color", "status"?, "message"?}``,
    ``series`` maps entry keys to ``{"rel_l2": [...], "rel_h1": [...]}``. An ✕ marks where
    a model diverged. ``live``: the run is followed as it is produced (lines only; see above).
    ``waiting``: no data yet, every curve laid out empty with this note (``_waiting_note``)."""
    x = [float(v) for v in t or []]
    has = any(
        any(v is not None for v in (series.get(e["key"]) or {}).get("rel_l2") or [])
        for e in entries
    )
    if (not x or not has) and waiting is None:
        return empty_figure(
            "The error curves appear once the models take their first step."
            if x or not entries
            else "The error curves appear when the comparison starts.",
            uirevision,
        )
    data: list[dict[str, Any]] = []
    for e in entries:
        s = series.get(e["key"]) or {}
        data.append(
            _curve(
                x,
                s.get("rel_l2"),
                name=f"{e['label']} L2",
                color=e["color"],
                log_y=True,
                legendgroup=e["key"],
                markers=not live,
            )
        )
        if waiting is not None or any(v is not None for v in s.get("rel_h1") or []):
            data.append(
                _curve(
                    x,
                    s.get("rel_h1"),
                    name=f"{e['label']} H1",
                    color=e["color"],
                    width=1.4,
                    dash="dot",
                    log_y=True,
                    legendgroup=e["key"],
                    showlegend=False,
                    markers=not live,
                )
            )
    data += _stop_markers(
        x, entries, lambda e: (series.get(e["key"]) or {}).get("rel_l2"), log_y=True
    )
    layout = base_layout_dict(uirevision, "Error growth · relative L2 (solid), H1 (dotted)")
    _legend_room(layout)
    layout["xaxis"] = dict(title=dict(text="time t"))
    layout["yaxis"] = dict(title=dict(text="relative error"), type="log", exponentformat="power")
    _marker(layout, marker_t)
    _waiting_note(layout, waiting)
    return wrap_figure(data, layout, plain)


def correlation_figure(
    t: Sequence[float] | None,
    entries: Sequence[Mapping[str, Any]],
    series: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    threshold: float = DECORRELATION,
    marker_t: float | None = None,
    uirevision: Any = None,
    plain: bool = False,
    live: bool = False,
    waiting: str | None = None,
) -> go.Figure:
    """Pearson correlation of every entry with the reference against time, with the
    decorrelation threshold (0.8) as a dashed line (the layout's first shape); ``live`` and
    ``waiting`` as in ``error_growth_figure``."""
    x = [float(v) for v in t or []]
    has = any(
        any(v is not None for v in (series.get(e["key"]) or {}).get("corr") or []) for e in entries
    )
    if (not x or not has) and waiting is None:
        return empty_figure("The correlation curves appear when the comparison starts.", uirevision)
    data = [
        _curve(
            x,
            (series.get(e["key"]) or {}).get("corr"),
            name=e["label"],
            color=e["color"],
            markers=not live,
        )
        for e in entries
    ]
    data += _stop_markers(x, entries, lambda e: (series.get(e["key"]) or {}).get("corr"))
    layout = base_layout_dict(uirevision, "Correlation with the reference")
    _legend_room(layout)
    # The threshold across the plot's width, labelled under its left end (what add_hline
    # with annotation_position="bottom left" draws).
    layout["shapes"] = [
        dict(
            type="line",
            x0=0,
            x1=1,
            xref="x domain",
            y0=threshold,
            y1=threshold,
            yref="y",
            line=dict(color=COLORS["error"], width=1.2, dash="dash"),
        )
    ]
    layout["annotations"] = [
        dict(
            text=f"{threshold:g} (decorrelated below)",
            font=dict(size=11, color=MUTED),
            showarrow=False,
            x=0,
            xanchor="left",
            xref="x domain",
            y=threshold,
            yanchor="top",
            yref="y",
        )
    ]
    values = [
        v
        for e in entries
        for v in _finite((series.get(e["key"]) or {}).get("corr"))
        if v is not None
    ]
    low = min([threshold - 0.1, *values]) if values else threshold - 0.1
    layout["yaxis"] = dict(title=dict(text="correlation"), range=[max(-1.0, low - 0.05), 1.02])
    layout["xaxis"] = dict(title=dict(text="time t"))
    _marker(layout, marker_t)
    _waiting_note(layout, waiting)
    return wrap_figure(data, layout, plain)


def energy_enstrophy_figure(
    t: Sequence[float] | None,
    reference: Mapping[str, Sequence[Any]] | None,
    entries: Sequence[Mapping[str, Any]],
    series: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    marker_t: float | None = None,
    uirevision: Any = None,
    plain: bool = False,
    live: bool = False,
    waiting: str | None = None,
) -> go.Figure:
    """Kinetic energy (top) and enstrophy (bottom) of the reference (thick) and of every
    entry against time, on a shared time axis; one legend entry per column; ``live`` and
    ``waiting`` as in ``error_growth_figure`` (waiting, a ``reference`` that is not None
    gets its lines)."""
    x = [float(v) for v in t or []]
    if not x and waiting is None:
        return empty_figure("Energy and enstrophy appear when the comparison starts.", uirevision)
    lines = []
    if (reference is not None and waiting is not None) or (
        reference and any(v is not None for v in reference.get("energy") or [])
    ):
        lines.append((REFERENCE_LABEL, COLORS["reference"], reference, 3.0, REFERENCE))
    lines += [(e["label"], e["color"], series.get(e["key"]) or {}, 1.8, e["key"]) for e in entries]
    data: list[dict[str, Any]] = []
    for name, color, s, width, group in lines:
        for row, key in ((1, "energy"), (2, "enstrophy")):
            trace = _curve(
                x,
                s.get(key),
                name=name,
                color=color,
                width=width,
                legendgroup=group,
                showlegend=row == 1,
                markers=not live,
            )
            trace["xaxis"], trace["yaxis"] = ("x", "y") if row == 1 else ("x2", "y2")
            data.append(trace)
    layout = base_layout_dict(uirevision, "Energy and enstrophy")
    _legend_room(layout)
    axes = {name: dict(axis) for name, axis in _STACKED_AXES.items()}
    axes["yaxis"].update(title=dict(text="energy E"), exponentformat="power")
    axes["yaxis2"].update(title=dict(text="enstrophy Z"), exponentformat="power")
    axes["xaxis2"]["title"] = dict(text="time t")
    layout.update(axes)
    if marker_t is not None:
        layout["shapes"] = [_vline(float(marker_t), yref="paper")]
    _waiting_note(layout, waiting)
    return wrap_figure(data, layout, plain)


# --- the summary table ---------------------------------------------------------------------

STATUS_ORDER = {"completed": 0, "running": 1, "diverged": 2, "failed": 3}


def _time_key(t: Any) -> str:
    return f"err_t{str(t).replace('.', '_').replace('-', 'm')}"


def summary_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary rows as a DataTable: ``{"columns", "data", "sort_by"}``.

    One column per report time ("rel. L2 @ t=…", from the rows' ``errors_at``), then
    decorrelation time, band errors, ms per step, speedup, parameters, precision, status.
    Numbers stay numbers (``type: numeric`` with a format), so the table's native sort is
    numeric; rows come ordered by the error at the last report time, smallest first, with
    entries that diverged or failed after those that completed (``sort_rows``).
    """
    times: list[str] = []
    for row in rows:
        for t in row.get("errors_at") or {}:
            if t not in times:
                times.append(t)
    times.sort(key=lambda s: float(s) if _is_number(s) else math.inf)
    three = {"specifier": ".3~g"}
    columns: list[dict[str, Any]] = [
        {"name": "Model", "id": "model", "type": "text"},
        {"name": "Arch", "id": "arch", "type": "text"},
        {"name": "Precision", "id": "precision", "type": "text"},
    ]
    columns += [
        {"name": f"rel. L2 @ t={t}", "id": _time_key(t), "type": "numeric", "format": three}
        for t in times
    ]
    columns += [
        {"name": "Decorrelation t", "id": "decorrelation_time", "type": "numeric", "format": three},
        {"name": "Band error low", "id": "band_low", "type": "numeric", "format": three},
        {"name": "Band error mid", "id": "band_mid", "type": "numeric", "format": three},
        {"name": "Band error high", "id": "band_high", "type": "numeric", "format": three},
        {"name": "Model ms/step", "id": "model_ms", "type": "numeric", "format": three},
        {"name": "Solver ms/step", "id": "solver_ms", "type": "numeric", "format": three},
        {"name": "Speedup ×", "id": "speedup", "type": "numeric", "format": three},
        {"name": "Parameters", "id": "parameters", "type": "numeric", "format": {"specifier": ","}},
        {"name": "Status", "id": "status", "type": "text"},
    ]
    data = []
    for row in sort_rows(rows):
        bands = row.get("band_errors") or {}
        status = row.get("status") or ""
        if status in ("diverged", "failed") and row.get("message"):
            status = f"{status}: {row['message']}" if status == "failed" else row["message"]
        item = {
            "index": row.get("index"),
            "model": row.get("name") or row.get("model_id") or "",
            "arch": row.get("arch") or "",
            "precision": row.get("precision") or "",
            "decorrelation_time": _num(row.get("decorrelation_time")),
            "band_low": _num(bands.get("low")),
            "band_mid": _num(bands.get("mid")),
            "band_high": _num(bands.get("high")),
            "model_ms": _num(row.get("model_ms")),
            "solver_ms": _num(row.get("solver_ms")),
            "speedup": _num(row.get("speedup")),
            "parameters": row.get("parameters"),
            "status": status,
        }
        for t in times:
            item[_time_key(t)] = _num((row.get("errors_at") or {}).get(t))
        data.append(item)
    return {"columns": columns, "data": data, "times": times}


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sort_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Completed entries first, then diverged, then failed; within each, by the error at
    the last report time (smallest first; no error last), then by entry index."""

    def last_error(row: Mapping[str, Any]) -> float:
        errors = row.get("errors_at") or {}
        if not errors:
            return math.inf
        key = max(errors, key=lambda s: float(s) if _is_number(s) else -math.inf)
        value = _num(errors[key])
        return math.inf if value is None else value

    return sorted(
        rows,
        key=lambda r: (
            STATUS_ORDER.get(r.get("status") or "", 4),
            last_error(r),
            int(r.get("index") or 0),
        ),
    )
