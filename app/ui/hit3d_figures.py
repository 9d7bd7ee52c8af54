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
live updates of a running job. The pages show them through ``app.ui.components.graph``,
whose config keeps every figure private (no cloud, no share button).
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
    spectrum: Sequence[float] | None,
    n: int,
    *,
    title: str | None = None,
    uirevision: Any = None,
) -> go.Figure:
    """E(k) of one snapshot on log–log axes (shells k ≥ 1), the k^(−5/3) guide over the same
    shells (trace 1, ``meta`` "guide:-5/3") and a dotted line at the last shell the 2/3
    rule keeps on the n³ grid, k = n/3. ``layout.meta`` holds the guide's anchor."""
    if not k or not spectrum:
        return empty_figure(f"The energy spectrum on the {n}³ grid appears here.", uirevision)
    ks, es = _positive(k, spectrum)
    if not ks.size:
        return empty_figure("The spectrum has no shell k ≥ 1 to draw.", uirevision)
    guide = kolmogorov_guide(ks, es)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ks.tolist(),
            y=es.tolist(),
            mode="lines+markers",
            marker=dict(size=4),
            name="E(k)",
            line=dict(color=COLORS["reference"], width=2),
            hovertemplate="k=%{x:.0f}  E=%{y:.3e}<extra></extra>",
        )
    )
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
) -> go.Figure:
    """The PDF ``pdf[kind]`` (``{"x", "density"}`` of ``hit3d_summary.vorticity_pdfs``) on a
    log y axis (empty bins left out), with the Gaussian field's PDF dashed (trace 1)."""
    if kind not in PDF_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PDF_KINDS)}; got {kind!r}.")
    if not pdf or not pdf.get(kind):
        return empty_figure(f"The vorticity PDF on the {n}³ grid appears here.", uirevision)
    x = np.asarray(pdf[kind]["x"], dtype=np.float64)
    density = np.asarray(
        [np.nan if v is None else v for v in pdf[kind]["density"]], dtype=np.float64
    )
    keep = np.isfinite(density) & (density > 0)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x[keep].tolist(),
            y=density[keep].tolist(),
            mode="lines+markers",
            marker=dict(size=3),
            name="PDF",
            line=dict(color=COLORS["error"], width=2),
            hovertemplate="%{x:.3g}  p=%{y:.3e}<extra></extra>",
        )
    )
    reference = gaussian_reference(kind, x)
    shown = reference > (density[keep].min() / 10 if keep.any() else 0)
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
) -> go.Figure:
    """E(t) (left axis, trace 0) and ε(t) (right axis, trace 1) of a trajectory; ``series``
    ``{"t", "energy", "dissipation", "source"}`` ("solver": the solver's own field, the
    budget stored with the dataset; "stored": recomputed from the stored snapshots).
    ``marker_t`` draws a dotted line at the snapshot shown."""
    if not series or not series.get("t"):
        return empty_figure(f"E(t) and ε(t) on the {n}³ grid appear here.", uirevision)
    t = [float(v) for v in series["t"]]
    many = len(t) > 60
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, key, color, secondary in (
        ("energy E", "energy", COLORS["reference"], False),
        ("dissipation ε", "dissipation", COLORS["model"], True),
    ):
        fig.add_trace(
            go.Scatter(
                x=t,
                y=[float(v) for v in series[key]],
                mode="lines" if many else "lines+markers",
                marker=dict(size=5),
                name=name,
                line=dict(color=color, width=2),
                hovertemplate="t=%{x:.4g}  %{y:.4g}<extra>" + name + "</extra>",
            ),
            secondary_y=secondary,
        )
    whose = "the solver's field" if series.get("source") == "solver" else "the stored field"
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
