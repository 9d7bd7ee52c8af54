"""The HIT panels (homogeneous isotropic turbulence, hit3d), reusable by any page: the
statistics card, the energy spectrum with its k^(−5/3) guide, the vorticity PDF (|ω| or a
component), E(t) and ε(t), and the midplane slices of |ω| or Q.

``panel_layout(prefix)`` lays them out under the ids ``<prefix>-hit3d-…``; ``render(view,
quantity, pdf_kind)`` turns a view of ``app.services.hit3d_views`` into what those
components show, in the order of ``OUTPUTS``. Both are pure (no data access, no callbacks):
the page that shows the panels wires them (the Data page: ``app.ui.pages.datasets.hit3d``;
the Rollout page: ``app.ui.pages.rollout``).

A view with ``sources`` (a rollout's, ``app.services.hit3d_rollouts``) holds several
sources side by side: the card has one value per source (a ``span`` with the class
``stat-<source>``), the spectrum, PDF and E(t), ε(t) one curve per source, and the slices
one row per source plus the error (model − reference). A view's ``labels`` ``{source: name}``
(a comparison's: each model by its name and precision) name the sources on the card and
the figures.
"""

from __future__ import annotations

import math
from typing import Any

from dash import dcc, html

from app.ui import hit3d_figures as hf
from app.ui.components import CHART_GRAPH, FIELD_GRAPH, graph
from app.ui.figures import empty_figure

# The components ``render`` fills, by their name after ``<prefix>-hit3d-``.
OUTPUTS = ("summary", "spectrum", "pdf", "series", "slices", "note")


def panel_layout(prefix: str) -> html.Div:
    def i(name: str) -> str:
        return f"{prefix}-hit3d-{name}"

    return html.Div(
        [
            html.Div(id=i("note"), className="channel-note"),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3("Statistics", className="form-section"),
                            html.Dl(id=i("summary"), className="stats channel-summary"),
                        ]
                    ),
                    graph(
                        id=i("series"),
                        figure=empty_figure("E(t) and ε(t) appear here."),
                        config=CHART_GRAPH,
                        className="graph channel-graph",
                    ),
                    graph(
                        id=i("spectrum"),
                        figure=empty_figure("The energy spectrum appears here."),
                        config=CHART_GRAPH,
                        className="graph channel-graph",
                    ),
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.Label("Vorticity PDF of", className="form-label"),
                                    dcc.RadioItems(
                                        id=i("pdf-kind"),
                                        options=[
                                            {"label": hf.PDF_LABELS[k], "value": k}
                                            for k in hf.PDF_KINDS
                                        ],
                                        value="magnitude",
                                        inline=True,
                                        className="channel-radio",
                                    ),
                                ],
                                className="channel-control",
                            ),
                            graph(
                                id=i("pdf"),
                                figure=empty_figure("The vorticity PDF appears here."),
                                config=CHART_GRAPH,
                                className="graph channel-graph",
                            ),
                        ]
                    ),
                ],
                className="channel-grid",
            ),
            html.H3("Midplane slices", className="form-section"),
            html.Div(
                html.Div(
                    [
                        html.Label("Quantity", className="form-label"),
                        dcc.RadioItems(
                            id=i("quantity"),
                            options=[
                                {"label": "|ω| (vorticity magnitude)", "value": "vorticity"},
                                {"label": "Q-criterion", "value": "q"},
                            ],
                            value="vorticity",
                            inline=True,
                            className="channel-radio",
                        ),
                    ],
                    className="channel-control",
                ),
                className="channel-controls",
            ),
            graph(
                id=i("slices"),
                figure=empty_figure("Slices of |ω| on the three midplanes appear here."),
                config=FIELD_GRAPH,
                className="graph channel-slice",
            ),
        ],
        id=i("panel"),
        className="channel-panel hit3d-panel",
    )


def summary(stats: dict[str, Any] | None, n: int) -> list[Any]:
    """The statistics card as definition-list items (each hint on hover)."""
    return [
        el
        for label, value, hint in hf.statistics_items(stats, n)
        for el in (html.Dt(label, title=hint), html.Dd(value, title=hint))
    ]


def summary_columns(
    stats: dict[str, dict[str, Any] | None], n: int, labels: dict[str, str] | None = None
) -> list[Any]:
    """The statistics card of several sources: a head row naming them (``hf.source_label``:
    ``labels`` where given), then per statistic its label and one ``span.stat-<source>``
    value per source (each hint on hover)."""
    rows = hf.statistics_columns(stats, n)
    if not rows:
        return []

    def values(cells: dict[str, str], head: bool = False) -> list[Any]:
        out: list[Any] = []
        for i, (source, value) in enumerate(cells.items()):
            if i:
                out.append(html.Span(" · ", className="muted"))
            out.append(html.Span(value, className=f"stat-{source}" + (" muted" if head else "")))
        return out

    head = {source: hf.source_label(source, labels) for source in stats}
    items: list[Any] = [html.Dt(""), html.Dd(values(head, head=True))]
    for label, cells, hint in rows:
        items += [html.Dt(label, title=hint), html.Dd(values(cells), title=hint)]
    return items


def render(
    view: dict[str, Any] | None, quantity: str = "vorticity", pdf_kind: str = "magnitude"
) -> tuple[Any, ...]:
    """What the panels show for a view (None: nothing chosen), in the order of ``OUTPUTS``."""
    quantity = quantity if quantity in hf.QUANTITIES else "vorticity"
    pdf_kind = pdf_kind if pdf_kind in hf.PDF_KINDS else "magnitude"
    if view is None:
        blank = empty_figure("Nothing to show.")
        return [], blank, blank, blank, blank, None
    if view.get("sources") is not None:
        return render_sources(view, quantity, pdf_kind)
    n = int(view.get("n") or 0)
    rev = str(view.get("dataset_id") or (view.get("job") or {}).get("id") or "hit3d")
    length = float(view.get("length") or 2 * math.pi)
    slices_title = None
    if view.get("slices_at"):
        slices_title = (
            f"{hf.QUANTITY_LABELS[quantity]} on the midplanes, {n}³, stored so far: "
            f"{view['slices_at']}"
        )
    slices = (
        hf.slices_figure(
            view["slices"][quantity], quantity, n, length, title=slices_title, uirevision=rev
        )
        if view.get("slices")
        else empty_figure(
            f"No {n}³ snapshot stored yet: the slices appear when the first shard is written.",
            rev,
        )
    )
    note = html.Div(
        [html.Span(view.get("label") or "", className="strong")]
        + (
            [html.Span(" · live: the newest snapshot the worker reported", className="muted")]
            if view.get("job") and not view.get("final")
            else []
        )
    )
    return (
        summary(view.get("stats"), n),
        hf.spectrum_figure(view.get("k"), view.get("spectrum"), n, uirevision=rev),
        hf.vorticity_pdf_figure(view.get("pdf"), pdf_kind, n, uirevision=rev),
        hf.series_figure(view.get("series"), n, marker_t=view.get("t"), uirevision=rev),
        slices,
        note,
    )


def render_sources(view: dict[str, Any], quantity: str, pdf_kind: str) -> tuple[Any, ...]:
    """``render`` for a view of several sources (see the module docstring)."""
    n = int(view.get("n") or 0)
    rev = str(view.get("rollout_id") or (view.get("job") or {}).get("id") or "hit3d")
    length = float(view.get("length") or 2 * math.pi)
    sources = list(view.get("sources") or [])
    labels = view.get("labels") or None
    stats = view.get("stats") or {}
    spectra = view.get("spectrum") or {}
    pdfs = view.get("pdf") or {}
    at = f" · {view['at']}" if view.get("at") else ""
    slices = view.get("slices") or {}
    rows = {source: (slices.get(source) or {}).get(quantity) for source in (*sources, "error")}
    slices_figure = (
        hf.slices_grid_figure(
            rows,
            quantity,
            n,
            length,
            title=f"{hf.QUANTITY_LABELS[quantity]} on the midplanes, {n}³{at}",
            uirevision=rev,
            labels=labels,
        )
        if any(rows.values())
        else empty_figure(f"The midplanes of the {n}³ frames appear with the first frame.", rev)
    )
    note = html.Div(
        [html.Span(view.get("label") or "", className="strong")]
        + (
            [html.Span(" · live: the newest statistics the worker reported", className="muted")]
            if view.get("job") and not view.get("final")
            else []
        )
    )
    return (
        summary_columns({s: stats.get(s) for s in sources}, n, labels) if stats else [],
        hf.spectrum_figure(
            view.get("k"),
            {s: spectra.get(s) for s in sources},
            n,
            title=f"Energy spectra E(k), {n}³{at}",
            uirevision=rev,
            labels=labels,
        ),
        hf.vorticity_pdf_figure(
            {s: pdfs.get(s) for s in sources}, pdf_kind, n, uirevision=rev, labels=labels
        ),
        hf.series_figure(
            view.get("series"), n, marker_t=view.get("t"), uirevision=rev, labels=labels
        ),
        slices_figure,
        note,
    )
