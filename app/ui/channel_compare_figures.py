"""Figures of the Compare page's channel mode, built by pure functions of plain data: the
``compare_setup``, ``metrics``, ``channel_stats`` and ``summary`` payloads of a channel
comparison (``docs/channel_compare_contract.md``) and velocity frames (3, ox, oy, oz).

A channel comparison has *sources*: the reference (the fine solver, filtered onto the
coarse grid) and one column per model (``model:<i>``) and per closure (``les:<closure>``).
Every source keeps one colour and line style on every figure (``sources_of``): the
reference thick in the reference blue, models solid in the compare palette, closures dashed
in colours of their own.

- ``mean_overlay_figure``: U⁺ against y⁺ (log axis) of every source, with the viscous
  sublayer and log-law guides and Moser, Kim & Mansour's (1999) Re_τ = 180 marks;
- ``rms_overlay_figure``: u′⁺, v′⁺, w′⁺ and −u′v′⁺ against y⁺, one panel each, one trace
  per source per panel, MKM's u′⁺ peak in the first;
- ``slices_figure``: one plane of one component of every source's frame, side by side, on a
  colour range shared with the reference;
- ``error_figure``: each column's relative L2 against the filtered reference over time;
- ``column_states`` / ``summary_table``: what the status list and the summary table say.

``which`` picks the running statistics (every frame so far) or the windowed ones (the last
``window`` frames). Every figure takes a ``uirevision`` so zoom survives live updates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.ui.channel_figures import (
    COMPONENT_LABELS,
    COMPONENTS,
    PLANE_LABELS,
    PLANES,
    SEQUENTIAL,
    component_field,
    wall_law_traces,
)
from app.ui.compare_figures import PALETTE
from app.ui.figures import COLORS, DIVERGING, MAX_PIXELS, _base_layout, empty_figure
from physics.channel.stats import MKM_RE180

REFERENCE = "reference"
REFERENCE_LABEL = "reference (fine solver, filtered)"
RUNNING, WINDOW = "running", "window"
CLOSURES = ("none", "smagorinsky", "wale", "dynamic")
CLOSURE_LABELS = {
    "none": "coarse DNS (no closure)",
    "smagorinsky": "Smagorinsky",
    "wale": "WALE",
    "dynamic": "dynamic Smagorinsky",
}
CLOSURE_COLORS = {
    "none": "#7b8794",
    "smagorinsky": "#3a7d44",
    "wale": "#9c6ade",
    "dynamic": "#b5651d",
}
MKM_COLOR = "#2a9d8f"
# The statistics errors of the summary, in the contract's order, with their table headers.
PROFILES = ("u_mean", "u_rms", "v_rms", "w_rms", "uv")
PROFILE_LABELS = {
    "u_mean": "U⁺",
    "u_rms": "u′rms",
    "v_rms": "v′rms",
    "w_rms": "w′rms",
    "uv": "−u′v′",
}
# The panels of the rms figure: (stats key, axis title).
RMS_PANELS = (
    ("u_rms_plus", "u′⁺"),
    ("v_rms_plus", "v′⁺"),
    ("w_rms_plus", "w′⁺"),
    ("reynolds_stress_plus", "−u′v′⁺"),
)
STATUS_TEXT = {"running", "completed", "diverged", "failed", "stopped"}
FINAL = ("succeeded", "failed", "cancelled")


# --- sources -------------------------------------------------------------------------------


def closure_label(closure: str | None) -> str:
    return CLOSURE_LABELS.get(str(closure), str(closure))


def sources_of(setup: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The sources of a channel comparison, in order: the reference, then the setup's
    columns. Each ``{"key", "label", "kind" ("reference" | "model" | "closure"), "color",
    "dash", "width", ...the setup's column}``."""
    if not setup:
        return []
    out: list[dict[str, Any]] = [
        {
            "key": REFERENCE,
            "label": REFERENCE_LABEL,
            "kind": "reference",
            "color": COLORS["reference"],
            "dash": None,
            "width": 3.0,
        }
    ]
    models = 0
    for column in setup.get("columns") or []:
        key = str(column.get("key"))
        kind = column.get("kind") or ("closure" if key.startswith("les:") else "model")
        if kind == "closure":
            closure = column.get("closure") or key.split(":", 1)[-1]
            color = CLOSURE_COLORS.get(closure, "#555555")
            label = column.get("label") or f"{closure_label(closure)} LES"
            dash = "dash"
        else:
            color = PALETTE[models % len(PALETTE)]
            models += 1
            label = column.get("label") or key
            dash = None
        out.append(
            {**column, "key": key, "label": label, "kind": kind, "color": color, "dash": dash}
        )
        out[-1]["width"] = 2.0
    return out


def _stats(source_stats: Mapping[str, Any] | None, which: str) -> Mapping[str, Any] | None:
    """The running or windowed statistics dict of one source's newest ``channel_stats``."""
    if not source_stats:
        return None
    found = source_stats.get(WINDOW if which == WINDOW else RUNNING)
    return found if isinstance(found, Mapping) else None


def _profile(stats: Mapping[str, Any], key: str) -> tuple[list[float], list[float | None]]:
    """(y⁺, values) off the wall (y⁺ > 0: a log axis cannot show the wall)."""
    yplus = np.asarray(stats.get("yplus") or [], dtype=np.float64)
    values = stats.get(key) or []
    xs, ys = [], []
    for i, yp in enumerate(yplus.tolist()):
        if not (math.isfinite(yp) and yp > 0) or i >= len(values):
            continue
        v = values[i]
        xs.append(float(yp))
        ys.append(float(v) if v is not None and math.isfinite(float(v)) else None)
    return xs, ys


def _line(source: Mapping[str, Any]) -> dict[str, Any]:
    return dict(color=source["color"], width=source.get("width") or 2.0, dash=source.get("dash"))


def _missing_note(sources: Sequence[Mapping[str, Any]], drawn: set[str]) -> str | None:
    missing = [s["label"] for s in sources if s["key"] not in drawn]
    return f"Not yet: {', '.join(missing)}." if missing else None


# --- statistics overlays -------------------------------------------------------------------


def mean_overlay_figure(
    sources: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Mapping[str, Any] | None],
    *,
    which: str = RUNNING,
    marks: bool = True,
    uirevision: Any = None,
) -> go.Figure:
    """U⁺(y⁺) of every source with statistics (``stats``: source key → its newest
    ``channel_stats`` payload, ``{"running", "window"}``), on a log y⁺ axis. Traces: one per
    source with statistics, in the sources' order (``meta`` the source key), then the dashed
    viscous sublayer U⁺ = y⁺ and log law over the profiles' y⁺ range, then (``marks``) MKM
    1999's Re_τ = 180 centreline and bulk U⁺."""
    curves = []
    for source in sources:
        found = _stats(stats.get(source["key"]), which)
        if found and found.get("yplus"):
            x, y = _profile(found, "u_mean_plus")
            if x:
                curves.append((source, x, y))
    if not curves:
        return empty_figure(
            "The U⁺ profiles appear here when the first statistics arrive.", uirevision
        )
    fig = go.Figure()
    for source, x, y in curves:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=source["label"],
                meta=source["key"],
                legendgroup=source["key"],
                line=_line(source),
                hovertemplate=f"{source['label']}<br>y⁺=%{{x:.3g}}  U⁺=%{{y:.3g}}<extra></extra>",
            )
        )
    lo = min(min(x) for _, x, _ in curves)
    hi = max(max(x) for _, x, _ in curves)
    guides = wall_law_traces(
        lo, hi, log_hi=max(hi, MKM_RE180.re_tau), width=1.2, dash="dot", tagged=True
    )
    for trace in guides:
        fig.add_trace(trace)
    if marks:
        ref = MKM_RE180
        fig.add_trace(
            go.Scatter(
                x=[ref.re_tau, ref.re_tau],
                y=[ref.centreline_u_plus, ref.bulk_u_plus],
                mode="markers",
                name="MKM 1999 Re_τ = 180",
                meta="mkm",
                marker=dict(symbol=["diamond-open", "square-open"], size=10, color=MKM_COLOR),
                text=["centreline U⁺", "bulk U⁺"],
                hovertemplate="MKM 1999 %{text} = %{y:.3g}<extra></extra>",
            )
        )
    title = "Mean velocity U⁺ · " + ("windowed" if which == WINDOW else "running") + " statistics"
    _base_layout(fig, uirevision, title)
    fig.update_layout(hovermode="closest", meta={"which": which})
    fig.update_xaxes(type="log", title_text="y⁺")
    fig.update_yaxes(title_text="U⁺", rangemode="tozero")
    note = _missing_note(sources, {s["key"] for s, _, _ in curves})
    if note:
        _note(fig, note)
    return fig


def rms_overlay_figure(
    sources: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Mapping[str, Any] | None],
    *,
    which: str = RUNNING,
    marks: bool = True,
    uirevision: Any = None,
) -> go.Figure:
    """Four panels against y⁺ (log axes): u′⁺, v′⁺, w′⁺ (rms) and −u′v′⁺, each with one
    trace per source with statistics (``meta`` the source key; the legend shows each source
    once), then (``marks``) MKM 1999's u′⁺ peak in the first panel."""
    drawn = [
        (source, found)
        for source in sources
        if (found := _stats(stats.get(source["key"]), which)) and found.get("yplus")
    ]
    if not drawn:
        return empty_figure(
            "The rms and shear-stress profiles appear here when the first statistics arrive.",
            uirevision,
        )
    fig = make_subplots(
        rows=2,
        cols=2,
        horizontal_spacing=0.1,
        vertical_spacing=0.16,
        subplot_titles=[title for _, title in RMS_PANELS],
    )
    for panel, (key, title) in enumerate(RMS_PANELS):
        row, col = panel // 2 + 1, panel % 2 + 1
        for source, found in drawn:
            x, y = _profile(found, key)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=source["label"],
                    meta=source["key"],
                    legendgroup=source["key"],
                    showlegend=panel == 0,
                    line=_line(source),
                    hovertemplate=f"{source['label']}<br>y⁺=%{{x:.3g}}  {title}=%{{y:.3g}}"
                    "<extra></extra>",
                ),
                row=row,
                col=col,
            )
        if panel == 0 and marks:
            ref = MKM_RE180
            fig.add_trace(
                go.Scatter(
                    x=[ref.peak_u_rms_yplus],
                    y=[ref.peak_u_rms_plus],
                    mode="markers",
                    name="MKM 1999 u′⁺ peak",
                    meta="mkm",
                    marker=dict(symbol="diamond-open", size=10, color=MKM_COLOR),
                    hovertemplate="MKM 1999 u′⁺ peak %{y:.3g} at y⁺ ≈ %{x:.3g}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(type="log", title_text="y⁺", row=row, col=col)
        fig.update_yaxes(title_text=title, rangemode="tozero", row=row, col=col)
    title = (
        "Fluctuations and shear stress · "
        + ("windowed" if which == WINDOW else "running")
        + " statistics"
    )
    _base_layout(fig, uirevision, title)
    # The legend on the right: above the plot it would cover the panels' titles.
    fig.update_layout(
        hovermode="closest",
        meta={"which": which},
        legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top"),
        margin=dict(t=64, r=16),
    )
    return fig


def _note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.0,
        y=-0.22,
        showarrow=False,
        xanchor="left",
        font=dict(size=11, color="#7b8794"),
    )


# --- slices ----------------------------------------------------------------------------------


def full_y(folded: Sequence[float] | None, ny: int) -> np.ndarray:
    """The ``ny`` wall-normal points (−1 … 1) of a grid from its folded half-channel distances
    from the wall (a statistics dict's ``y``, wall to centre, ceil(ny/2) points); uniform
    cell centres when ``folded`` does not fit."""
    half = np.asarray(folded if folded is not None else [], dtype=np.float64)
    ny = int(ny)
    if half.size == (ny + 1) // 2 and ny > 0:
        lower = half - 1.0
        upper = (1.0 - half)[::-1]
        if ny % 2:  # the centre point is in both halves once
            upper = upper[1:]
        return np.concatenate([lower, upper])
    return -1.0 + (np.arange(ny) + 0.5) * (2.0 / max(ny, 1))


def slices_figure(
    sources: Sequence[Mapping[str, Any]],
    frames: Mapping[str, np.ndarray | None],
    y: Sequence[float] | np.ndarray,
    *,
    lx: float,
    lz: float,
    plane: str = "xy",
    index: int | None = None,
    component: str = "u",
    notes: Mapping[str, str] | None = None,
    step: int | None = None,
    uirevision: Any = None,
    max_pixels: int = MAX_PIXELS,
) -> go.Figure:
    """One panel per source, side by side: ``component`` ("u", "v", "w" or "magnitude") of
    its frame (3, ox, oy, oz) on ``plane`` ("xy" at z index ``index``, "xz" at y index, "yz"
    at x index; None: the middle), all on one colour range (the reference's when it has a
    frame, else all frames'): sequential for u and |u|, diverging about 0 for v and w. A
    source without a frame (not written yet, failed, stopped) keeps a blank panel with its
    note. One heatmap trace per source (``meta`` its key), in the sources' order."""
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}; got {plane!r}.")
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {', '.join(COMPONENTS)}; got {component!r}.")
    if not sources:
        return empty_figure("The slices appear here when the comparison starts.", uirevision)
    notes = notes or {}
    y = np.asarray(y, dtype=np.float64)
    panels: list[tuple[Mapping[str, Any], np.ndarray | None]] = []
    shape = None
    for source in sources:
        frame = frames.get(source["key"])
        field = None
        if frame is not None:
            frame = np.asarray(frame)
            while frame.ndim > 4 and frame.shape[0] == 1:
                frame = frame[0]
            if frame.ndim == 4 and frame.shape[0] == 3 and np.isfinite(frame).any():
                field = component_field(frame, component)
                shape = shape or field.shape
        panels.append((source, field))
    if shape is None:
        return empty_figure("No frame of this step yet.", uirevision)
    nx, ny, nz = shape
    if len(y) != ny:
        y = full_y(None, ny)
    size = {"xy": nz, "xz": ny, "yz": nx}[plane]
    index = size // 2 if index is None else min(max(int(index), 0), size - 1)
    x_axis = np.arange(nx) * (lx / nx)
    z_axis = np.arange(nz) * (lz / nz)
    if plane == "xy":
        hx, hy, labels, where = x_axis, y, ("x", "y"), f"z = {z_axis[index]:.3g}"
    elif plane == "xz":
        hx, hy, labels = x_axis, z_axis, ("x", "z")
        where = f"y = {0.0 if abs(y[index]) < 1e-12 else y[index]:.3g}"
    else:
        hx, hy, labels, where = z_axis, y, ("z", "y"), f"x = {x_axis[index]:.3g}"

    def cut(field: np.ndarray) -> np.ndarray:
        if plane == "xy":
            return field[:, :, index].T
        if plane == "xz":
            return field[:, index, :].T
        return field[index, :, :]

    sx = max(1, math.ceil(len(hx) / max_pixels))
    sy = max(1, math.ceil(len(hy) / max_pixels)) if labels[1] != "y" else 1
    cuts = {
        s["key"]: cut(f)[::sy, ::sx] if f is not None and f.shape == shape else None
        for s, f in panels
    }
    basis = [cuts[REFERENCE]] if cuts.get(REFERENCE) is not None else list(cuts.values())
    finite = np.concatenate(
        [c[np.isfinite(c)].ravel() for c in basis if c is not None] or [np.zeros(0)]
    )
    name = COMPONENT_LABELS[component]
    if component in ("v", "w"):
        lim = float(np.abs(finite).max()) if finite.size else 1.0
        colour = dict(colorscale=DIVERGING, cmin=-(lim or 1.0), cmax=lim or 1.0)
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        colour = dict(colorscale=SEQUENTIAL, cmin=lo, cmax=hi if hi > lo else lo + 1.0)
    n = len(panels)
    fig = make_subplots(
        rows=1,
        cols=n,
        horizontal_spacing=min(0.04, 0.5 / n),
        subplot_titles=[_short(s["label"]) for s, _ in panels],
        shared_yaxes=True,
    )
    hx_shown, hy_shown = hx[::sx].astype(np.float32), hy[::sy].astype(np.float32)
    for col, (source, _field) in enumerate(panels, start=1):
        values = cuts[source["key"]]
        trace: dict[str, Any] = dict(
            name=source["label"], meta=source["key"], coloraxis="coloraxis", showscale=False
        )
        if values is not None:
            trace.update(
                z=values.astype(np.float32),
                x=hx_shown,
                y=hy_shown,
                hovertemplate=f"{source['label']}<br>{labels[0]}=%{{x:.3f}}, "
                f"{labels[1]}=%{{y:.4f}}<br>{name}=%{{z:.4g}}<extra></extra>",
            )
        else:
            trace.update(z=[[None]], x=[float(hx_shown.mean())], y=[float(hy_shown.mean())])
            fig.add_annotation(
                text=notes.get(source["key"]) or "no frame",
                x=float(hx_shown.mean()),
                y=float(hy_shown.mean()),
                showarrow=False,
                font=dict(size=11, color="#7b8794"),
                row=1,
                col=col,
            )
        fig.add_trace(go.Heatmap(**trace), row=1, col=col)
        fig.update_xaxes(title_text=labels[0], showgrid=False, zeroline=False, row=1, col=col)
    fig.update_yaxes(title_text=labels[1], showgrid=False, zeroline=False, row=1, col=1)
    title = f"{name} on the {PLANE_LABELS[plane]} plane at {where}"
    if step is not None:
        title += f" · step {step}"
    _base_layout(fig, uirevision, title)
    fig.update_layout(
        coloraxis=dict(
            **colour,
            colorbar=dict(title=dict(text=name, side="right"), thickness=10, outlinewidth=0),
        ),
        hovermode="closest",
        meta={"plane": plane, "index": index, "component": component},
    )
    for annotation in fig.layout.annotations:
        annotation.font.size = 11
    return fig


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


# --- error growth and status -----------------------------------------------------------------


def error_figure(
    sources: Sequence[Mapping[str, Any]],
    series: Mapping[str, Any] | None,
    states: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    marker_t: float | None = None,
    uirevision: Any = None,
) -> go.Figure:
    """Each column's relative L2 against the filtered reference over t (one trace per
    column, ``meta`` its key); a column that diverged ends in an ✕ at its last value."""
    series = series or {}
    t = list(series.get("t") or [])
    columns = series.get("columns") or {}
    if not t:
        return empty_figure("The error growth appears here as the comparison runs.", uirevision)
    fig = go.Figure()
    for source in sources:
        if source["key"] == REFERENCE:
            continue
        values = _finite((columns.get(source["key"]) or {}).get("rel_l2"))
        fig.add_trace(
            go.Scatter(
                x=t[: len(values)],
                y=values,
                mode="lines",
                name=source["label"],
                meta=source["key"],
                legendgroup=source["key"],
                line=_line(source),
                hovertemplate=f"{source['label']}<br>t=%{{x:.4g}}  rel. L2=%{{y:.3g}}"
                "<extra></extra>",
            )
        )
        state = (states or {}).get(source["key"]) or {}
        last = [(tt, v) for tt, v in zip(t, values, strict=False) if v is not None]
        if state.get("status") == "diverged" and last:
            fig.add_trace(
                go.Scatter(
                    x=[last[-1][0]],
                    y=[last[-1][1]],
                    mode="markers",
                    name=f"{source['label']}: {state.get('text') or 'diverged'}",
                    meta=f"stop:{source['key']}",
                    legendgroup=source["key"],
                    showlegend=False,
                    marker=dict(symbol="x", size=11, color=source["color"]),
                    hovertemplate=f"{state.get('text') or 'diverged'}<extra></extra>",
                )
            )
    _base_layout(fig, uirevision, "Relative L2 error against the filtered reference")
    fig.update_layout(hovermode="x unified")
    fig.update_xaxes(title_text="t")
    fig.update_yaxes(title_text="relative L2", rangemode="tozero")
    if marker_t is not None:
        fig.add_vline(x=marker_t, line=dict(color="#b0b8c1", width=1, dash="dot"))
    return fig


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


def column_states(
    sources: Sequence[Mapping[str, Any]],
    status: Mapping[str, Mapping[str, Any]] | None,
    summary: Mapping[str, Any] | None,
    job_status: str | None,
) -> dict[str, dict[str, Any]]:
    """Each source's ``{"status", "text", "message", "step"}``: status running, completed,
    diverged, failed or stopped (the job ended before the column did); text "diverged at
    step k" for a guard's stop. The summary's row wins, then the newest metrics (``status``:
    key → ``{"status", "message", "step"}``), then the setup's column."""
    rows = {str(r.get("key")): r for r in (summary or {}).get("rows") or []}
    out: dict[str, dict[str, Any]] = {}
    for source in sources:
        key = source["key"]
        if key == REFERENCE:
            state = "running"
            if job_status in FINAL:
                state = "completed" if job_status == "succeeded" else "stopped"
            out[key] = {"status": state, "text": state, "message": None, "step": None}
            continue
        row = rows.get(key)
        now = (status or {}).get(key) or {}
        if row:
            state, message, step = row.get("status"), row.get("message"), row.get("stopped_at")
            state = state or "completed"
        else:
            state = now.get("status") or source.get("status") or "running"
            message = now.get("message") or source.get("message")
            step = now.get("step")
        if state == "running" and job_status in FINAL:
            state = "completed" if job_status == "succeeded" else "stopped"
        if state == "diverged":
            text = f"diverged at step {step}" if step is not None else "diverged"
        elif state == "failed":
            text = f"failed at step {step}" if step is not None else "failed"
        else:
            text = state
        out[key] = {"status": state, "text": text, "message": message, "step": step}
    return out


# --- the summary table -------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def summary_table(
    summary: Mapping[str, Any] | None, sources: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The summary event as a DataTable: ``{"columns", "data"}``. One row per column (plus
    the reference's time per step): label, status ("diverged at step k"), stopped at, the
    relative errors of the U⁺, u′rms, v′rms, w′rms and −u′v′ profiles against the
    reference's, of the running statistics and of the window's, ms per step (median) and
    the speedup over each closure column. Numbers stay numbers (numeric columns with a
    format) so the native sort is numeric; None for what the payload does not have."""
    summary = summary or {}
    rows = list(summary.get("rows") or [])
    labels = {s["key"]: s["label"] for s in sources}
    closures: list[str] = []
    for row in rows:
        for closure in row.get("speedup") or {}:
            if closure not in closures:
                closures.append(closure)
    closures.sort(key=lambda c: CLOSURES.index(c) if c in CLOSURES else len(CLOSURES))
    pct = {"specifier": ".2~%"}
    three = {"specifier": ".3~g"}
    columns: list[dict[str, Any]] = [
        {"name": ["", "Column"], "id": "column", "type": "text"},
        {"name": ["", "Status"], "id": "status", "type": "text"},
        {"name": ["", "Stopped at"], "id": "stopped_at", "type": "numeric"},
    ]
    for group, prefix in (("Error vs reference · running", ""), ("· window", "window_")):
        columns += [
            {
                "name": [group, PROFILE_LABELS[p]],
                "id": f"{prefix}{p}",
                "type": "numeric",
                "format": pct,
            }
            for p in PROFILES
        ]
    columns.append({"name": ["", "ms/step"], "id": "ms", "type": "numeric", "format": three})
    columns += [
        {
            "name": ["Speedup over", closure_label(c)],
            "id": f"speedup_{c}",
            "type": "numeric",
            "format": {"specifier": ".3~g"},
        }
        for c in closures
    ]
    data = []
    for row in rows:
        key = str(row.get("key"))
        state = row.get("status") or "completed"
        stopped = row.get("stopped_at")
        if state == "diverged":
            status = f"diverged at step {stopped}" if stopped is not None else "diverged"
        elif state == "failed":
            status = "failed" + (f": {row['message']}" if row.get("message") else "")
        else:
            status = state
        label = labels.get(key) or row.get("label") or key
        if row.get("kind") == "closure" and not labels.get(key) and row.get("closure"):
            label = row.get("label") or f"{closure_label(row['closure'])} LES"
        item: dict[str, Any] = {
            "key": key,
            "kind": row.get("kind"),
            "column": label,
            "status": status,
            "stopped_at": stopped,
            "ms": _num(row.get("ms")),
        }
        errors = row.get("errors") or {}
        window = row.get("window_errors") or {}
        for p in PROFILES:
            item[p] = _num(errors.get(p))
            item[f"window_{p}"] = _num(window.get(p))
        for c in closures:
            item[f"speedup_{c}"] = _num((row.get("speedup") or {}).get(c))
        data.append(item)
    if summary.get("reference_ms") is not None:
        data.append(
            {
                "key": REFERENCE,
                "kind": "reference",
                "column": labels.get(REFERENCE) or REFERENCE_LABEL,
                "status": "reference",
                "stopped_at": None,
                "ms": _num(summary.get("reference_ms")),
            }
        )
    return {"columns": columns, "data": data, "closures": closures}
