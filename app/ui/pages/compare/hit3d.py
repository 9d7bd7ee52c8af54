"""The Compare page's hit3d mode (issue 13 item 2): HIT panels for a comparison in the
periodic box, switched in the way the channel mode is (``app.ui.pages.compare.channel``).

When the chosen initial condition is a hit3d velocity the models picker offers the 3D hit3d
models (``hit3d_entries``, merged into the page's catalog). Once the job's ``compare_setup``
says ``"geometry": "hit3d"`` (or, before, when the start is a hit3d field) the 2D grid,
overlays and summary hide (``channel.toggle_mode``) and ``compare-hit3d-results`` shows:

- the HIT panels of ``app.ui.hit3d_panels`` under the prefix ``compare``: the statistics
  columns (reference and each model), E(k) of every source with the k^(−5/3) guide, the
  vorticity PDFs, E(t) and ε(t) of every source, the |ω| (or Q) midplanes of every source;
- each model's relative L² against the reference per step (``errors_figure``);
- the summary (errors at the report times, ms per step of each model and of the LES,
  speedup) once the job ended.

Every panel, the statistics card and the summary name each model by its name and precision
(``source_labels``: ``compare_figures.entry_label``, as the 2D grid does), never by its key
``model:<i>``. The run's exports are the metrics CSV only, as a channel comparison's
(``helpers.export_links(..., channel=True)``): netCDF and GIF are of 2D vorticity frames and
the API answers 409 for a hit3d rollout (the run callbacks pass ``channel=True`` for it).

What is drawn comes from ``app.services.hit3d_compare.hit3d_compare_view``; the panels
redraw when ``compare-hit3d-tick`` changes (the push or the poll wrote news of a hit3d
comparison: the run store, written each frame of every comparison, would call them for 2D
runs too) or the frame slider moves (a chosen step once the job ended), skipping a view
whose version was drawn.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, State, callback, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog as catalog_service
from app.services.flows import is_hit3d_flow
from app.services.hit3d_compare import hit3d_compare_view, is_hit3d_setup
from app.ui import compare_figures as cf
from app.ui import hit3d_figures as hf
from app.ui import hit3d_panels
from app.ui.components import CHART_GRAPH, card, graph
from app.ui.context import get_state
from app.ui.figures import _base_layout, empty_figure
from app.ui.pages.compare.helpers import models_of_flow, source_flow, velocity_models

PREFIX = "compare"
HIDDEN = " hidden"


# --- pure helpers ------------------------------------------------------------------------------


def hit3d_entries(
    ics: list[dict[str, Any]],
    datasets: list[dict[str, Any]],
    models: list[dict[str, Any]],
    contracts: dict[str, Any],
) -> dict[str, list[dict[str, Any]]]:
    """The catalog's hit3d entries: uploaded velocities (3, n, n, n) of hit3d and the 3D
    models of the three velocity components trained on hit3d, each with ``grid_label`` (its
    training data's n³). No datasets: a hit3d comparison starts from an upload or a random
    field."""
    out_ics = [i for i in ics if is_hit3d_flow(i.get("flow")) and len(i.get("shape") or []) == 4]
    out_models = velocity_models(models, contracts, datasets, is_hit3d_flow, held_out=False)
    return {"initial_conditions": out_ics, "datasets": [], "models": out_models}


def load_hit3d_catalog(state: Any) -> dict[str, list[dict[str, Any]]]:
    """``hit3d_entries`` of everything stored (through the catalog service)."""
    models, contracts = models_of_flow(state, is_hit3d_flow)
    return hit3d_entries(
        catalog_service.list_initial_conditions(state),
        catalog_service.list_datasets(state),
        models,
        contracts,
    )


def is_hit3d_mode(catalog, source, ic, dataset, setup) -> bool:
    """hit3d mode: the run's setup says so, else (no run yet) the chosen start is hit3d."""
    if setup:
        return is_hit3d_setup(setup)
    return bool(catalog) and is_hit3d_flow(source_flow(catalog, source, ic, dataset))


REFERENCE_LABEL = "reference LES"


def source_labels(setup: dict[str, Any] | None) -> dict[str, str]:
    """Each source of a hit3d comparison by name: the reference LES, and each model
    (``model:<i>``) by its model's name and precision (``compare_figures.entry_label``)."""
    models = (setup or {}).get("models") or []
    return {"reference": REFERENCE_LABEL} | {
        f"model:{m['index']}": cf.entry_label(m) for m in models
    }


def errors_figure(errors: dict[str, Any] | None, labels: dict[str, str], n: int) -> go.Figure:
    """Each model's relative L² against the reference LES per step (one curve per model, in
    the colour its E(t) has; a stopped model's curve ends)."""
    if not errors or not errors.get("t"):
        return empty_figure(f"The models' errors on the {n}³ grid appear here.", "hit3d-errors")
    t = [float(v) for v in errors["t"]]
    fig = go.Figure()
    for i, (source, values) in enumerate((errors.get("rel_l2") or {}).items(), start=1):
        name = labels.get(source, source)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=[None if v is None else float(v) for v in values],
                mode="lines+markers" if len(t) <= 60 else "lines",
                name=name,
                line=dict(color=hf._color(source, i), width=2),
                hovertemplate="t=%{x:.4g}  %{y:.4g}<extra>" + name + "</extra>",
            )
        )
    _base_layout(fig, "hit3d-errors", f"Relative L² error against the reference LES, {n}³")
    fig.update_xaxes(title_text="time t")
    fig.update_yaxes(title_text="‖u − u_ref‖ / ‖u_ref‖")
    return fig


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):.{digits}g}"


def summary_table(summary: dict[str, Any] | None) -> Any:
    """The summary of an ended hit3d comparison as a table (None before it ended)."""
    if not summary or summary.get("geometry") != "hit3d":
        return html.P("The summary appears when the comparison ends.", className="muted")
    times = [f"{t:g}" for t in summary.get("report_times") or []]
    head = ["source", "status", *(f"rel L² at t = {t}" for t in times), "ms / step", "speedup"]
    rows = [
        html.Tr(
            [
                html.Td(REFERENCE_LABEL),
                html.Td(""),
                *(html.Td("") for _ in times),
                html.Td(_fmt(summary.get("reference_ms")), className="hit3d-ms-reference"),
                html.Td(""),
            ]
        )
    ]
    for column in summary.get("columns") or []:
        key = column.get("key") or f"model:{column.get('index')}"
        status = column.get("status") or ""
        if column.get("message"):
            status += f": {column['message']}"
        errors = column.get("errors_at") or {}
        rows.append(
            html.Tr(
                [
                    html.Td(cf.entry_label(column), title=column.get("model_id")),
                    html.Td(status),
                    *(html.Td(_fmt(errors.get(t), 4), className="hit3d-error-at") for t in times),
                    html.Td(_fmt(column.get("model_ms"))),
                    html.Td(_fmt(column.get("speedup")), className="hit3d-speedup"),
                ],
                **{"data-source": key},
            )
        )
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
        className="table hit3d-summary-table",
    )


# --- layout ------------------------------------------------------------------------------------


def results() -> html.Div:
    """The hit3d panels, errors and summary, hidden until hit3d mode."""
    return html.Div(
        [
            card(
                "Isotropic turbulence (hit3d): models beside the reference LES",
                hit3d_panels.panel_layout(PREFIX),
            ),
            card(
                None,
                graph(
                    id="compare-hit3d-errors",
                    figure=empty_figure("The models' errors appear here."),
                    config=CHART_GRAPH,
                    className="graph channel-graph",
                ),
            ),
            card("Summary", html.Div(id="compare-hit3d-table")),
        ],
        id="compare-hit3d-results",
        className="compare-hit3d" + HIDDEN,
    )


# --- callbacks ---------------------------------------------------------------------------------


@callback(
    Output("compare-hit3d-results", "className"),
    Input("compare-catalog", "data"),
    Input("compare-source", "value"),
    Input("compare-ic", "value"),
    Input("compare-dataset", "value"),
    Input("compare-setup", "data"),
)
def toggle(catalog, source, ic, dataset, setup):
    on = is_hit3d_mode(catalog, source, ic, dataset, setup)
    return "compare-hit3d" + ("" if on else HIDDEN)


PANEL_OUTPUTS = [
    Output(f"{PREFIX}-hit3d-{name}", "children" if name in ("summary", "note") else "figure")
    for name in hit3d_panels.OUTPUTS
]


@callback(
    *PANEL_OUTPUTS,
    Output("compare-hit3d-errors", "figure"),
    Output("compare-hit3d-table", "children"),
    # Not the run store, which the push of every comparison writes each frame: the tick,
    # which it bumps for a hit3d one only.
    Input("compare-hit3d-tick", "data"),
    Input("compare-slider", "value"),
    Input(f"{PREFIX}-hit3d-quantity", "value"),
    Input(f"{PREFIX}-hit3d-pdf-kind", "value"),
    Input("compare-setup", "data"),
    State("compare-run", "data"),
    prevent_initial_call=True,
)
async def draw(_tick, slider, quantity, pdf_kind, setup, run):
    """The HIT panels of the run: the newest reported step while it runs, the slider's step
    once it ended."""
    run = run or {}
    if not is_hit3d_setup(setup) or not run.get("job_id"):
        raise PreventUpdate
    step = None
    if run.get("final") and slider is not None:
        step = int(slider)
    view = await asyncio.to_thread(hit3d_compare_view, get_state(), run["job_id"], step)
    if view is None:
        raise PreventUpdate
    n = int(view.get("n") or 0)
    labels = source_labels(setup)
    drawn = hit3d_panels.render(
        {**view, "labels": labels}, quantity or "vorticity", pdf_kind or "magnitude"
    )
    summary = view.get("summary")
    return (
        *drawn,
        errors_figure(view.get("errors"), labels, n),
        summary_table(summary) if summary else no_update,
    )
