"""The Compare page's layout: the set-up and run cards, the grid of fields with its frame
player, the overlays and the summary table (no data access, so navigation never waits)."""

from __future__ import annotations

from typing import Any

from dash import dash_table, dcc, html

from app.ui.components import (
    cancel_button,
    card,
    form_row,
    frame_player,
    graph,
    number_input,
    page,
    png_config,
)
from app.ui.figures import FONT, empty_figure
from app.ui.pages.compare import channel
from app.ui.pages.compare.helpers import (
    DATASET,
    DEFAULT_DIVERGENCE,
    DEFAULT_STEPS,
    UPLOAD,
    empty_series,
)

POLL_MS = 700
PLAY_MS = 400


def layout(
    compare_id: str | None = None,
    ic: str | None = None,
    dataset: str | None = None,
    trajectory: str | None = None,
    models: str | None = None,
    **_query: Any,
) -> html.Main:
    query = {
        "ref": compare_id,
        "ic": ic,
        "dataset": dataset,
        "trajectory": trajectory,
        "models": [m for m in (models or "").split(",") if m],
    }
    return page(
        "Compare",
        "Several models rolled out from one initial condition beside the reference solver: "
        "fields, error fields, spectra, error growth and a summary, as they are produced.",
        # "callback-nav": after Start the address names the run and the pages router draws
        # the page for /compare/<id>, exactly as when a comparison is reopened.
        dcc.Location(id="compare-url", refresh="callback-nav"),
        dcc.Store(id="compare-query", data=query),
        dcc.Store(id="compare-catalog"),
        dcc.Store(id="compare-prefill", data={}),
        dcc.Store(id="compare-run", data={"ref": compare_id} if compare_id else {}),
        dcc.Store(id="compare-setup", data=None),
        dcc.Store(id="compare-series", data=empty_series()),
        dcc.Store(id="compare-summary", data=None),
        dcc.Store(id="compare-shown", data=None),
        dcc.Interval(id="compare-interval", interval=POLL_MS, disabled=compare_id is None),
        dcc.Interval(id="compare-play-timer", interval=PLAY_MS, disabled=True),
        html.Div(
            [setup_card(), run_card()],
            className="grid-compare-top",
        ),
        card(
            None,
            html.Div(
                [
                    html.H2("Fields", className="card-title"),
                    html.Span(id="compare-frame-label", className="compare-frame-label muted"),
                ],
                className="compare-fields-head",
            ),
            html.Div(
                html.P(
                    "One column per model and one for the reference solver appear here when "
                    "the comparison starts: the vorticity on top, the error (model − "
                    "reference) under it.",
                    className="muted empty-note",
                ),
                id="compare-grid",
                className="compare-grid",
            ),
            channel.slices_panel(),
            frame_player("compare", play=True, className="compare-player"),
            className="fields-card",
            id="compare-fields-card",
        ),
        html.Div(
            [
                card(None, _graph("compare-spectra", "The energy spectra appear here.")),
                card(None, _graph("compare-error", "The error growth appears here.")),
                card(None, _graph("compare-corr", "The correlations appear here.")),
                card(
                    None,
                    _graph("compare-energy", "Energy and enstrophy appear here.", tall=True),
                ),
            ],
            className="grid-2 compare-overlays",
            id="compare-overlays",
        ),
        channel.results(),
        card(
            "Summary",
            html.P(
                "The summary appears when the comparison ends: each model's error at the "
                "report times, its decorrelation time (correlation below 0.8), band errors, "
                "time per step and speedup over the solver. Click a header to sort.",
                id="compare-summary-note",
                className="muted small",
            ),
            dash_table.DataTable(
                id="compare-table",
                columns=[],
                data=[],
                sort_action="native",
                sort_mode="single",
                style_as_list_view=True,
                style_table={"overflowX": "auto"},
                style_cell={
                    "fontFamily": FONT,
                    "fontSize": "13px",
                    "padding": "6px 10px",
                    "textAlign": "right",
                    "whiteSpace": "nowrap",
                },
                style_header={"fontWeight": 600, "backgroundColor": "#f8fafc", "fontFamily": FONT},
                style_cell_conditional=[
                    {"if": {"column_id": c}, "textAlign": "left"}
                    for c in ("model", "arch", "precision", "status")
                ],
            ),
            id="compare-summary-card",
        ),
    )


def _graph(graph_id: str, message: str, tall: bool = False) -> Any:
    return graph(
        id=graph_id,
        figure=empty_figure(message),
        config=png_config(graph_id.replace("compare-", "eddyscope-compare-")),
        className="graph graph-tall" if tall else "graph",
    )


def setup_card() -> html.Section:
    return card(
        "Set up",
        form_row(
            "Initial condition",
            dcc.RadioItems(
                id="compare-source",
                options=[
                    {"label": "Uploaded field", "value": UPLOAD},
                    {"label": "Dataset trajectory", "value": DATASET},
                ],
                value=UPLOAD,
                inline=True,
                className="compare-source",
                inputClassName="compare-radio",
            ),
        ),
        html.Div(
            dcc.Dropdown(
                id="compare-ic", placeholder="Loading…", clearable=False, className="dropdown"
            ),
            id="compare-upload-row",
            className="form-row",
        ),
        html.Div(
            [
                dcc.Dropdown(
                    id="compare-dataset",
                    placeholder="Choose a dataset",
                    clearable=False,
                    className="dropdown",
                ),
                dcc.Dropdown(
                    id="compare-trajectory",
                    placeholder="Trajectory",
                    clearable=False,
                    className="dropdown",
                ),
                html.Small(id="compare-trajectory-note", className="form-help"),
            ],
            id="compare-dataset-row",
            className="form-row hidden",
        ),
        form_row(
            "Models",
            dcc.Dropdown(
                id="compare-models",
                options=[],
                value=[],
                multi=True,
                placeholder="Choose two or more models",
                className="dropdown",
            ),
            html_for="compare-models",
        ),
        html.Small(id="compare-models-note", className="form-help compare-models-note"),
        html.Div(id="compare-precisions", className="compare-precisions"),
        channel.setup_rows(),
        html.Div(
            [
                form_row(
                    "Horizon (steps)",
                    number_input("compare-steps", DEFAULT_STEPS, min=1, max=10_000, step=1),
                ),
                form_row(
                    "Divergence factor",
                    number_input("compare-divergence", DEFAULT_DIVERGENCE, min=1, step="any"),
                    "Stop a model whose energy passes this × the reference's.",
                ),
                form_row(
                    "Interval Δt",
                    number_input("compare-dt", None, min=0, step="any", placeholder="auto"),
                    "Empty: the models' Δt.",
                ),
            ],
            className="form-inline",
        ),
        form_row(
            "Report times",
            dcc.Input(
                id="compare-report-times",
                type="text",
                placeholder="25, 50 and 100 % of the horizon",
                className="input",
            ),
            "Times at which the summary gives each model's error, e.g. 1, 2.5, 5.",
        ),
        dcc.Checklist(
            id="compare-reference",
            options=[{"label": " Run the reference solver beside the models", "value": "on"}],
            value=["on"],
            className="compare-check",
        ),
        html.Button(
            "Start comparison", id="compare-start", className="button button-primary", n_clicks=0
        ),
        html.Div(id="compare-feedback"),
        className="setup-card",
    )


def run_card() -> html.Section:
    return card(
        "Run",
        html.Div(
            html.Span(
                "Nothing running. Choose an initial condition and two or more models, then "
                "press Start.",
                className="muted",
            ),
            id="compare-status",
            className="status-line",
        ),
        html.Div(id="compare-ic-note"),
        html.Div(id="compare-details", className="run-details"),
        html.Div(id="compare-exports", className="compare-exports"),
        cancel_button("compare"),
        html.Div(id="compare-cancel-feedback"),
        className="status-card",
    )
