"""Plotly figures of homogeneous isotropic turbulence (hit3d), built by pure functions of
plain data: the summary of one snapshot (``app.hit3d_summary.snapshot_summary``: statistics,
shell spectrum, vorticity PDFs), its midplane slices and a trajectory's E(t), ε(t).

- ``spectrum_figure``: E(k) on log–log axes, with the Kolmogorov guide C·k^(−5/3) anchored
  where the compensated spectrum k^(5/3)E(k) peaks (C is that peak: the guide touches the
  spectrum there and lies on it across an inertial range when there is one, above it
  elsewhere), and the 2/3 rule's last resolved shell n/3 marked;
- ``slices_figure``: the x-, y- and z-midplanes of |ω| (sequential colours from 0) or of
  the Q-criterion (diverging, symmetric about 0), one colour scale for the three;
- ``vorticity_pdf_figure``: the PDF of |ω|/ω_rms or of one component ωᵢ/σ on a log y
  axis, with the PDF a Gaussian vorticity field would have (Maxwell's χ₃ for |ω|, the
  standard normal for a component);
- ``series_figure``: E(t) and ε(t) of the trajectory on two y axes;
- ``statistics_items``: the statistics card's (label, value, hint) rows.

Every label carries the grid n³. Every figure takes a ``uirevision`` so zoom survives the
live updates of a running job.

Several sources at once (a rollout's model beside its reference solver): the spectrum, the
PDF and the series take a mapping ``{source: values}`` in place of one source's values
(one trace per source, in ``SOURCE_COLORS``), ``slices_grid_figure`` draws one row of
midplanes per source and ``statistics_columns`` gives the card's rows with one value per
source. Each names its sources by ``source_label``: ``labels`` ``{source: name}`` where given
(a comparison's ``model:<i>`` by its model's name and precision), else ``SOURCE_LABELS``.
The pages show them through ``app.ui.components.graph``, whose config keeps every figure
private (no cloud, no share button).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.ui.figures import COLORS, DIVERGING, _base_layout, empty_figure

KOLMOGOROV_SLOPE = -5.0 / 3.0
SEQUENTIAL = "Viridis"
QUANTITIES = ("vorticity", "q")
QUANTITY_LABELS = {"vorticity": "|ω|", "q": "Q"}
PDF_KINDS = ("magnitude", "component")
PDF_LABELS = {"magnitude": "|ω|/ω_rms", "component": "ωᵢ/σ (components pooled)"}
# (axis, the two axes a midplane spans as columns and rows) of ``hit3d_summary.midplanes``.
PLANES = (("x", "y", "z"), ("y", "x", "z"), ("z", "x", "y"))
# Spectrum values this far below the peak are float32 round-off of a stored field.
SPECTRUM_FLOOR = 1e-12
# Several sources in one figure: their colours and names (others take the palette's next).
SOURCE_COLORS = {
    "model": COLORS["model"],
    "reference": COLORS["reference"],
    "error": COLORS["error"],
}
SOURCE_LABELS = {"model": "model", "reference": "reference solver", "error": "error"}


def source_label(source: str, labels: Mapping[str, str] | None = None) -> str:
    """How a source is named on the figures: ``labels[source]`` when given (a comparison's
    model by its name and precision), else ``SOURCE_LABELS``, else the source's key."""
    return (labels or {}).get(source) or SOURCE_LABELS.get(source, source)


def _by_source(values: Any, single: str) -> dict[str, Any]:
    """``values`` as ``{source: values}``: a mapping as it is, one source's values as
    ``{single: values}``."""
    return dict(values) if isinstance(values, Mapping) else {single: values}


def _color(source: str, i: int) -> str:
    palette = (COLORS["train"], COLORS["persistence"], COLORS["error"])
    return SOURCE_COLORS.get(source, palette[i % len(palette)])


def _positive(k: Sequence[float], e: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The shells k ≥ 1 with a finite E above round-off (what a log–log plot can draw)."""
    k = np.asarray(k, dtype=np.float64)
    e = np.asarray([np.nan if v is None else v for v in e], dtype=np.float64)
    finite = np.isfinite(e)
    peak = float(e[finite].max()) if finite.any() else 0.0
    keep = (k >= 1) & finite & (e > peak * SPECTRUM_FLOOR)
    return k[keep], e[keep]


def kolmogorov_guide(k: Sequence[float], e: Sequence[float]) -> dict[str, float] | None:
    """The guide C·k^(−5/3) anchored at the shell ``k_anchor`` where k^(5/3)E(k) is largest:
    ``{"k_anchor", "constant"}``, C = k_anchor^(5/3)·E(k_anchor); None without a shell to
    anchor on."""
    ks, es = _positive(k, e)
    if not ks.size:
        return None
    compensated = ks ** (-KOLMOGOROV_SLOPE) * es
    i = int(np.argmax(compensated))
    return {"k_anchor": float(ks[i]), "constant": float(compensated[i])}


def spectrum_figure(
    k: Sequence[float] | None,
    spectrum: Sequence[float] | Mapping[str, Sequence[float] | None] | None,
    n: int,
    *,
    title: str | None = None,
    uirevision: Any = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """E(k) of one snapshot on log–log axes (shells k ≥ 1), the k^(−5/3) guide over the same
    shells (trace 1, ``meta`` "guide:-5/3") and a dotted line at the last shell the 2/3
    rule keeps on the n³ grid, k = n/3. ``layout.meta`` holds the guide's anchor.

    ``spectrum`` may be ``{source: E}`` (a model and its reference): one trace per source
    in that order, then the guide (last), anchored on the reference's spectrum (else the
    first source's)."""
    curves = {
        name: values
        for name, values in _by_source(spectrum, "E(k)").items()
        if values is not None and len(values)
    }
    if not k or not curves:
        return empty_figure(f"The energy spectrum on the {n}³ grid appears here.", uirevision)
    drawn = {name: _positive(k, values) for name, values in curves.items()}
    drawn = {name: (ks, es) for name, (ks, es) in drawn.items() if ks.size}
    if not drawn:
        return empty_figure("The spectrum has no shell k ≥ 1 to draw.", uirevision)
    anchor = "reference" if "reference" in drawn else next(iter(drawn))
    ks, es = drawn[anchor]
    guide = kolmogorov_guide(ks, es)
    single = not isinstance(spectrum, Mapping)
    fig = go.Figure()
    for i, (name, (kx, ey)) in enumerate(drawn.items()):
        fig.add_trace(
            go.Scatter(
                x=kx.tolist(),
                y=ey.tolist(),
                mode="lines+markers",
                marker=dict(size=4),
                name="E(k)" if single else f"E(k), {source_label(name, labels)}",
                line=dict(color=COLORS["reference"] if single else _color(name, i), width=2),
                hovertemplate="k=%{x:.0f}  E=%{y:.3e}<extra></extra>",
            )
        )
    ks = np.unique(np.concatenate([kx for kx, _ in drawn.values()]))
    fig.add_trace(
        go.Scatter(
            x=ks.tolist(),
            y=(guide["constant"] * ks**KOLMOGOROV_SLOPE).tolist(),
            mode="lines",
            name="k^(−5/3)",
            line=dict(color=COLORS["guide"], width=1.5, dash="dash"),
            hoverinfo="skip",
            meta="guide:-5/3",
        )
    )
    cut = n / 3
    fig.add_shape(
        type="line",
        x0=cut,
        x1=cut,
        xref="x",
        y0=0,
        y1=1,
        yref="paper",
        line=dict(color=COLORS["persistence"], width=1, dash="dot"),
    )
    fig.add_annotation(
        x=math.log10(cut),
        y=1,
        xref="x",
        yref="paper",
        text="n/3",
        showarrow=False,
        yanchor="top",
        xanchor="left",
        font=dict(size=11, color=COLORS["persistence"]),
    )
    _base_layout(fig, uirevision, title or f"Energy spectrum E(k), {n}³")
    # From just below k = 1 (plotly would label 0.9 otherwise) to past the n/3 mark.
    top = max(float(ks.max()), cut) * 1.1
    fig.update_xaxes(type="log", title_text="wavenumber k", range=[-0.02, math.log10(top)])
    fig.update_yaxes(type="log", title_text="E(k)", exponentformat="power")
    fig.update_layout(hovermode="closest", meta={**guide, "n": int(n)})
    return fig


def _coordinates(n: int, length: float) -> np.ndarray:
    return np.arange(n) * (length / n)


def slices_figure(
    slices: Mapping[str, np.ndarray] | None,
    quantity: str,
    n: int,
    length: float = 2 * math.pi,
    *,
    title: str | None = None,
    uirevision: Any = None,
) -> go.Figure:
    """The midplanes x = x[n//2], y = y[n//2], z = z[n//2] of |ω| (``quantity``
    "vorticity") or Q ("q") side by side, as ``app.hit3d_summary.midplanes`` gives them
    (rows the vertical axis), with one colour scale: 0 to the largest |ω|, or symmetric
    about 0 for Q. Traces 0, 1, 2 are the x, y, z planes."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}; got {quantity!r}.")
    name = QUANTITY_LABELS[quantity]
    if not slices:
        return empty_figure(f"Midplane slices of {name} on the {n}³ grid appear here.", uirevision)
    coords = _coordinates(n, length)
    m = coords[n // 2]
    planes = [np.asarray(slices[axis], dtype=np.float64) for axis, _, _ in PLANES]
    finite = np.concatenate([p[np.isfinite(p)] for p in planes])
    if quantity == "q":
        lim = float(np.abs(finite).max()) if finite.size else 1.0
        colour = dict(colorscale=DIVERGING, cmin=-(lim or 1.0), cmax=lim or 1.0)
    else:
        top = float(finite.max()) if finite.size else 1.0
        colour = dict(colorscale=SEQUENTIAL, cmin=0.0, cmax=top if top > 0 else 1.0)
    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.07,
        subplot_titles=[f"{axis} = {m:.3g} ({a}–{b} plane)" for axis, a, b in PLANES],
    )
    for col, ((axis, a, b), values) in enumerate(zip(PLANES, planes, strict=True), start=1):
        fig.add_trace(
            go.Heatmap(
                z=values.astype(np.float32),
                x=coords.astype(np.float32),
                y=coords.astype(np.float32),
                coloraxis="coloraxis",
                name=f"{axis} midplane",
                hovertemplate=f"{a}=%{{x:.3f}}, {b}=%{{y:.3f}}<br>{name}=%{{z:.4g}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=a, showgrid=False, constrain="domain", row=1, col=col)
        fig.update_yaxes(
            title_text=b,
            showgrid=False,
            scaleanchor=f"x{col if col > 1 else ''}",
            constrain="domain",
            row=1,
            col=col,
        )
    label = "|ω|" if quantity == "vorticity" else "Q = ½(‖Ω‖² − ‖S‖²)"
    _base_layout(fig, uirevision, title or f"{label} on the midplanes, {n}³")
    fig.update_layout(
        coloraxis=dict(
            colorbar=dict(title=dict(text=name, side="right"), thickness=10, outlinewidth=0),
            **colour,
        ),
        hovermode="closest",
        meta={"quantity": quantity, "n": int(n), "index": n // 2},
    )
    return fig


def slices_grid_figure(
    rows: Mapping[str, Mapping[str, np.ndarray] | None],
    quantity: str,
    n: int,
    length: float = 2 * math.pi,
    *,
    title: str | None = None,
    uirevision: Any = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """The midplanes of ``slices_figure`` for several sources, one row per source (``rows``
    ``{source: {"x", "y", "z"}}`` in order; a None row is left out), each row with its own
    colour scale (an error field is much weaker than the fields): traces 3r, 3r+1, 3r+2 are
    row r's x, y, z planes. ``layout.meta`` has the ``quantity``, ``n`` and the ``rows``;
    the height is the page's (``slices_height``)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}; got {quantity!r}.")
    name = QUANTITY_LABELS[quantity]
    rows = {source: planes for source, planes in rows.items() if planes}
    if not rows:
        return empty_figure(f"Midplane slices of {name} on the {n}³ grid appear here.", uirevision)
    coords = _coordinates(n, length)
    m = coords[n // 2]
    count = len(rows)
    fig = make_subplots(
        rows=count,
        cols=3,
        horizontal_spacing=0.07,
        vertical_spacing=0.1 if count > 1 else 0.0,
        subplot_titles=[
            f"{source_label(source, labels)} · {axis} = {m:.3g}"
            for source in rows
            for axis, _, _ in PLANES
        ],
    )
    layout: dict[str, Any] = {}
    for r, (source, slices) in enumerate(rows.items(), start=1):
        planes = [np.asarray(slices[axis], dtype=np.float64) for axis, _, _ in PLANES]
        finite = np.concatenate([p[np.isfinite(p)] for p in planes])
        if quantity == "q":
            lim = float(np.abs(finite).max()) if finite.size else 1.0
            colour = dict(colorscale=DIVERGING, cmin=-(lim or 1.0), cmax=lim or 1.0)
        else:
            top = float(finite.max()) if finite.size else 1.0
            colour = dict(colorscale=SEQUENTIAL, cmin=0.0, cmax=top if top > 0 else 1.0)
        shown = source_label(source, labels)
        axis_name = "coloraxis" if r == 1 else f"coloraxis{r}"
        # Each row's colour bar beside its own row (rows fill the height top-down).
        middle = 1 - (r - 0.5) / count
        layout[axis_name] = dict(
            colorbar=dict(
                title=dict(text=name, side="right"),
                thickness=10,
                outlinewidth=0,
                len=0.9 / count,
                y=middle,
                yanchor="middle",
            ),
            **colour,
        )
        for col, ((axis, a, b), values) in enumerate(zip(PLANES, planes, strict=True), start=1):
            fig.add_trace(
                go.Heatmap(
                    z=values.astype(np.float32),
                    x=coords.astype(np.float32),
                    y=coords.astype(np.float32),
                    coloraxis=axis_name,
                    name=f"{shown} {axis} midplane",
                    hovertemplate=f"{a}=%{{x:.3f}}, {b}=%{{y:.3f}}<br>{name}=%{{z:.4g}}"
                    f"<extra>{shown}</extra>",
                ),
                row=r,
                col=col,
            )
            index = (r - 1) * 3 + col
            fig.update_xaxes(
                title_text=a if r == count else None,
                showgrid=False,
                constrain="domain",
                row=r,
                col=col,
            )
            fig.update_yaxes(
                title_text=b,
                showgrid=False,
                scaleanchor=f"x{index if index > 1 else ''}",
                constrain="domain",
                row=r,
                col=col,
            )
    label = "|ω|" if quantity == "vorticity" else "Q = ½(‖Ω‖² − ‖S‖²)"
    _base_layout(fig, uirevision, title or f"{label} on the midplanes, {n}³")
    fig.update_layout(
        **layout,
        hovermode="closest",
        meta={"quantity": quantity, "n": int(n), "index": n // 2, "rows": list(rows)},
    )
    return fig


def slices_height(rows: int) -> int:
    """Pixels a ``slices_grid_figure`` of ``rows`` rows wants on the page."""
    return 120 + 300 * max(int(rows), 1)


def gaussian_reference(kind: str, x: Sequence[float]) -> np.ndarray:
    """The PDF a Gaussian isotropic vorticity field would give: for ``kind`` "component"
    the standard normal φ(x); for "magnitude", x = |ω|/ω_rms = χ₃/√3 with χ₃ Maxwell's
    distribution, p(x) = √3·√(2/π)·(√3x)²·exp(−(√3x)²/2). Each has unit area."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "component":
        return np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    s = math.sqrt(3) * x
    return math.sqrt(3) * math.sqrt(2 / math.pi) * s**2 * np.exp(-0.5 * s**2)


def vorticity_pdf_figure(
    pdf: Mapping[str, Any] | None,
    kind: str,
    n: int,
    *,
    uirevision: Any = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """The PDF ``pdf[kind]`` (``{"x", "density"}`` of ``hit3d_summary.vorticity_pdfs``) on a
    log y axis (empty bins left out), with the Gaussian field's PDF dashed (trace 1)."""
    if kind not in PDF_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PDF_KINDS)}; got {kind!r}.")
    single = not pdf or any(key in pdf for key in PDF_KINDS)
    pdfs = {"PDF": pdf} if single else dict(pdf)
    pdfs = {name: p for name, p in pdfs.items() if p and p.get(kind)}
    if not pdfs:
        return empty_figure(f"The vorticity PDF on the {n}³ grid appears here.", uirevision)
    fig = go.Figure()
    xs, floor = [], []
    for i, (name, p) in enumerate(pdfs.items()):
        x = np.asarray(p[kind]["x"], dtype=np.float64)
        density = np.asarray(
            [np.nan if v is None else v for v in p[kind]["density"]], dtype=np.float64
        )
        keep = np.isfinite(density) & (density > 0)
        fig.add_trace(
            go.Scatter(
                x=x[keep].tolist(),
                y=density[keep].tolist(),
                mode="lines+markers",
                marker=dict(size=3),
                name="PDF" if single else f"PDF, {source_label(name, labels)}",
                line=dict(color=COLORS["error"] if single else _color(name, i), width=2),
                hovertemplate="%{x:.3g}  p=%{y:.3e}<extra></extra>",
            )
        )
        xs.append(x)
        if keep.any():
            floor.append(density[keep].min())
    x = xs[0] if len(xs) == 1 else np.unique(np.concatenate(xs))
    reference = gaussian_reference(kind, x)
    shown = reference > (min(floor) / 10 if floor else 0)
    fig.add_trace(
        go.Scatter(
            x=x[shown].tolist(),
            y=reference[shown].tolist(),
            mode="lines",
            name="Gaussian field",
            line=dict(color=COLORS["guide"], width=1.5, dash="dash"),
            hoverinfo="skip",
        )
    )
    what = "|ω|" if kind == "magnitude" else "a vorticity component"
    _base_layout(fig, uirevision, f"PDF of {what}, {n}³")
    fig.update_xaxes(title_text=PDF_LABELS[kind])
    fig.update_yaxes(type="log", title_text="probability density", exponentformat="power")
    fig.update_layout(hovermode="closest")
    return fig


def series_figure(
    series: Mapping[str, Any] | None,
    n: int,
    *,
    marker_t: float | None = None,
    uirevision: Any = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """E(t) (left axis, trace 0) and ε(t) (right axis, trace 1) of a trajectory; ``series``
    ``{"t", "energy", "dissipation", "source"}`` ("solver": the solver's own field, the
    budget stored with the dataset; "stored": recomputed from the stored snapshots).
    ``marker_t`` draws a dotted line at the snapshot shown.

    Several sources (``source`` "rollout"): ``energy`` and ``dissipation`` are ``{source:
    values}``; per source E (solid, left axis) then ε (dotted, right axis), in its colour;
    a None value (a diverged model) leaves a gap."""
    if not series or not series.get("t"):
        return empty_figure(f"E(t) and ε(t) on the {n}³ grid appear here.", uirevision)
    t = [float(v) for v in series["t"]]
    many = len(t) > 60
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    single = not isinstance(series.get("energy"), Mapping)
    if single:
        curves = [
            ("energy E", series["energy"], COLORS["reference"], False, "solid"),
            ("dissipation ε", series["dissipation"], COLORS["model"], True, "solid"),
        ]
    else:
        curves = [
            (f"{symbol} {source_label(source, labels)}", values, _color(source, i),
             symbol == "ε", "solid" if symbol == "E" else "dot")
            for i, source in enumerate(series["energy"])
            for symbol, values in (
                ("E", series["energy"][source]),
                ("ε", (series.get("dissipation") or {}).get(source) or []),
            )
        ]  # fmt: skip
    for name, values, color, secondary, dash in curves:
        fig.add_trace(
            go.Scatter(
                x=t,
                y=[None if v is None else float(v) for v in values],
                mode="lines" if many else "lines+markers",
                marker=dict(size=5),
                name=name,
                line=dict(color=color, width=2, dash=dash),
                hovertemplate="t=%{x:.4g}  %{y:.4g}<extra>" + name + "</extra>",
            ),
            secondary_y=secondary,
        )
    whose = {
        "solver": "the solver's field",
        "rollout": "the model and the reference solver",
    }.get(series.get("source"), "the stored field")
    _base_layout(fig, uirevision, f"Energy and dissipation of {whose}, {n}³")
    fig.update_xaxes(title_text="time t")
    fig.update_yaxes(title_text="E", secondary_y=False)
    fig.update_yaxes(title_text="ε", secondary_y=True, showgrid=False)
    if marker_t is not None:
        fig.add_shape(
            type="line",
            x0=float(marker_t),
            x1=float(marker_t),
            xref="x",
            y0=0,
            y1=1,
            yref="paper",
            line=dict(color=COLORS["persistence"], width=1, dash="dot"),
        )
    return fig


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.{digits}g}" if math.isfinite(value) else "—"


def statistics_items(stats: Mapping[str, Any] | None, n: int) -> list[tuple[str, str, str]]:
    """The statistics card's rows (label, value, hint): grid, E, ε, u', λ, Re_λ, L, the
    gradient skewness, max |∇·u|, η and k_max·η, ν."""
    if not stats:
        return []
    return [
        ("grid", f"{n}³", "points per side of the stored field, cubed"),
        ("energy E", _fmt(stats.get("energy")), "½⟨|u|²⟩"),
        ("dissipation ε", _fmt(stats.get("dissipation")), "2ν⟨SᵢⱼSᵢⱼ⟩"),
        ("u′ (rms)", _fmt(stats.get("u_rms")), "rms of one velocity component"),
        ("Taylor λ", _fmt(stats.get("taylor_microscale")), "(15u′²/⟨|ω|²⟩)^½"),
        ("Re_λ", _fmt(stats.get("taylor_reynolds")), "u′λ/ν"),
        ("integral L", _fmt(stats.get("integral_scale")), "(π/2u′²)∫E(k)/k dk"),
        (
            "skewness S",
            _fmt(stats.get("skewness"), 3),
            "⟨(∂u/∂x)³⟩/⟨(∂u/∂x)²⟩^{3/2}; ≈ −0.5 in developed turbulence, 0 for a Gaussian field",
        ),
        ("max |∇·u|", _fmt(stats.get("divergence_max"), 3), "round-off for a solenoidal field"),
        ("Kolmogorov η", _fmt(stats.get("kolmogorov_scale")), "(ν³/ε)^¼"),
        ("k_max η", _fmt(stats.get("kmax_eta"), 3), "k_max = n/3; ≥ 1 resolves the dissipation"),
        ("ν", _fmt(stats.get("nu")), "viscosity"),
    ]


def statistics_columns(
    stats: Mapping[str, Mapping[str, Any] | None], n: int
) -> list[tuple[str, dict[str, str], str]]:
    """The statistics card's rows for several sources (``stats`` ``{source: stats}``, in
    order): (label, {source: value}, hint), the rows of ``statistics_items``; a source
    without statistics (a diverged model) shows "—"."""
    items = {source: statistics_items(values, n) for source, values in stats.items()}
    rows = next((rows for rows in items.values() if rows), [])
    out = []
    for i, (label, _, hint) in enumerate(rows):
        values = {
            source: (source_rows[i][1] if source_rows else "—")
            for source, source_rows in items.items()
        }
        out.append((label, values, hint))
    return out
