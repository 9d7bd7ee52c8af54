"""The Compare page's layout: the set-up and run cards, the grid of fields with its frame
player, the overlays and the summary table (no data access, so navigation never waits)."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, clientside_callback, dash_table, dcc, html

from app.services import rollouts
from app.ui import live
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
from app.ui.context import get_state
from app.ui.figures import FONT, empty_figure
from app.ui.pages.compare import channel, hit3d
from app.ui.pages.compare.helpers import (
    DATASET,
    DEFAULT_DIVERGENCE,
    DEFAULT_STEPS,
    UPLOAD,
    empty_series,
    grid_shells,
    planned_overlays,
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
    plan = planned(compare_id)
    grid = grid_shells(*plan) if plan else None
    overlays = planned_overlays(*plan) if plan else None
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
        # Live updates by push (app.ui.live; callbacks.push), else this Interval polls.
        dcc.Interval(
            id="compare-interval", interval=POLL_MS, disabled=not live.polls_first(compare_id)
        ),
        *live.components("compare", compare_id),
        # What the polling fallback bumps when the series grew: views redraws then.
        dcc.Store(id="compare-redraw", data=None),
        # Bumped only when a channel comparison's series grew: the channel views listen to
        # it, not to the series store, so a 2D run's live updates never call them.
        dcc.Store(id="compare-ch-tick", data=None),
        # The same for a hit3d comparison's panels (``hit3d.draw``).
        dcc.Store(id="compare-hit3d-tick", data=None),
        *channel.stores(),
        dcc.Store(id="compare-grid-ready", data=grid[2] if grid else None),
        dcc.Interval(id="compare-play-timer", interval=PLAY_MS, disabled=True),
        # A run's page (after Start, or reopened) puts the run and its live fields first,
        # the set-up form last, so the fields are in view without scrolling;
        # "compare-scroll" brings them into view if the window was scrolled down.
        dcc.Store(id="compare-scroll", data=bool(compare_id)),
        dcc.Store(id="compare-scrolled", data=False),
        dcc.Store(id="compare-typed", data=None),
        *(_run_page(grid, overlays) if compare_id else _setup_page()),
    )


def planned(ref: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(the plan, the run) of a followed 2D comparison: its job's parameters in the setup's
    shape (``rollouts.planned_comparison``), from which the page lays out its blank grid
    (``grid_shells``) and charts (``planned_overlays``), drawn with the page while the worker
    loads the models, so that its first frame only fills graphs the browser has already
    drawn. None without push (the polling page lays the grid out when the setup arrives),
    for another kind of run, or when ``ref`` names no comparison."""
    if not ref or not live.enabled():
        return None
    try:
        state = get_state()
    except RuntimeError:  # a layout built without the app (tests of the pages' layouts)
        return None
    found = rollouts.resolve(state, ref, "compare")
    if found is None or found["job"] is None:
        return None
    plan = rollouts.planned_comparison(state, found["job"])
    if plan is None:
        return None
    run = {
        "flow": plan["flow"],
        "job_id": found["job"]["id"],
        "rollout_id": (found["rollout"] or {}).get("id"),
    }
    return plan, run


def flow_panels(planned, *panels: Any) -> list[Any]:
    """The channel and hit3d views, hidden until a run of theirs shows: every page has them
    but that of a followed 2D comparison (``planned``), whose first frames would otherwise
    wait while the browser draws their nine hidden graphs (bench/ui_latency.py, 4 runs
    each: the first frame drawn in 463–599 ms without them, 565–626 ms with them). Their
    callbacks are skipped there by the renderer (every one of their outputs is missing)."""
    return [] if planned else [make() for make in panels]


def _setup_page() -> list[Any]:
    return [
        html.Div([setup_card(), run_card()], className="grid-compare-top"),
        *_results(),
    ]


def _run_page(planned=None, overlays=None) -> list[Any]:
    return [
        html.Div(run_card(), className="compare-run-top"),
        *_results(planned, overlays),
        setup_later(),
    ]


def setup_later() -> html.Div:
    """A run's page ends with its set-up form folded away: a button shows it, filled in with
    the run's parameters to start another comparison from them (the form and its catalogue
    load then, not while the run's first frames are drawn)."""
    return html.Div(
        [
            html.Button(
                "Set up another comparison from this one",
                id="compare-setup-open",
                className="button",
                n_clicks=0,
            ),
            html.Div(setup_card(), id="compare-setup-wrap", className="hidden"),
        ],
        className="compare-setup-bottom",
    )


def _results(planned=None, overlays=None) -> list[Any]:
    """The fields card, the overlays, the flow views and the summary; ``planned`` (the blank
    grid) and ``overlays`` (``planned_overlays``) lay out a followed 2D run before its first
    frame."""
    overlays = overlays or {}
    return [
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
                planned[0]
                if planned
                else html.P(
                    "One column per model and one for the reference solver appear here when "
                    "the comparison starts: the vorticity on top, the error (model − "
                    "reference) under it.",
                    className="muted empty-note",
                ),
                id="compare-grid",
                className="compare-grid",
                style=planned[1] if planned else None,
            ),
            *flow_panels(planned, channel.slices_panel),
            frame_player("compare", play=True, className="compare-player"),
            className="fields-card",
            id="compare-fields-card",
        ),
        html.Div(
            [
                card(
                    None,
                    _graph(
                        graph_id, message, tall, overlays.get(graph_id.removeprefix("compare-"))
                    ),
                )
                for graph_id, message, tall in OVERLAYS
            ],
            className="grid-2 compare-overlays",
            id="compare-overlays",
        ),
        *flow_panels(planned, channel.results, hit3d.results),
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
                # Headers wrap onto two or three lines (narrow columns); what is still too
                # wide for the card scrolls sideways inside it, every column reachable.
                style_table={"overflowX": "auto", "maxWidth": "100%", "minWidth": "100%"},
                style_cell={
                    "fontFamily": FONT,
                    "fontSize": "13px",
                    "padding": "6px 8px",
                    "textAlign": "right",
                    "whiteSpace": "nowrap",
                },
                style_header={
                    "fontWeight": 600,
                    "backgroundColor": "#f8fafc",
                    "fontFamily": FONT,
                    "whiteSpace": "normal",
                    "height": "auto",
                    "minWidth": "64px",
                    "maxWidth": "110px",
                    "lineHeight": "1.25",
                    "verticalAlign": "bottom",
                },
                style_cell_conditional=[
                    {"if": {"column_id": c}, "textAlign": "left"}
                    for c in ("model", "arch", "precision", "status")
                ],
            ),
            id="compare-summary-card",
        ),
    ]


# The overlay charts under the fields: id, what the empty chart says, whether it is tall.
OVERLAYS = (
    ("compare-spectra", "The energy spectra appear here.", False),
    ("compare-error", "The error growth appears here.", False),
    ("compare-corr", "The correlations appear here.", False),
    ("compare-energy", "Energy and enstrophy appear here.", True),
)


def _graph(graph_id: str, message: str, tall: bool = False, figure: Any = None) -> Any:
    return graph(
        id=graph_id,
        figure=figure if figure is not None else empty_figure(message),
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
        html.Div(id="compare-fit"),
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


# The folded set-up form of a run's page opens on its button (which then goes away).
clientside_callback(
    """
    function(n) {
        const no = window.dash_clientside.no_update;
        return n ? ["", "button hidden"] : [no, no];
    }
    """,
    Output("compare-setup-wrap", "className"),
    Output("compare-setup-open", "className"),
    Input("compare-setup-open", "n_clicks"),
)

# After Start (or on reopening a run), bring the live fields into view once if they are not:
# the run page puts them near the top, but a window scrolled down to the Start button
# stays scrolled after the address changes.
clientside_callback(
    """
    function(scroll, done) {
        const no = window.dash_clientside.no_update;
        if (!scroll || done) { return no; }
        window.requestAnimationFrame(() => {
            const card = document.getElementById("compare-fields-card");
            if (!card) { return; }
            const top = card.getBoundingClientRect().top;
            const bar = document.querySelector(".navbar");
            const below = bar ? bar.getBoundingClientRect().height + 8 : 8;
            if (top < below || top > window.innerHeight * 0.6) {
                window.scrollBy({top: top - below, behavior: "instant"});
            }
        });
        return true;
    }
    """,
    Output("compare-scrolled", "data"),
    Input("compare-scroll", "data"),
    State("compare-scrolled", "data"),
)

# A frame number typed into the slider's box applies after a pause in typing (and on
# Enter), not only when the box loses focus: the slider reports each keystroke as its
# drag_value; once it has not changed for TYPED_MS it becomes the value. A drag ends on
# mouse-up as before (the slider sets the value itself then).
TYPED_MS = 400
clientside_callback(
    """
    function(typed, value) {
        const dc = window.dash_clientside;
        if (typed === null || typed === undefined || typed === value) { return dc.no_update; }
        window._eddyscopeTyped = (window._eddyscopeTyped || 0) + 1;
        const mine = window._eddyscopeTyped;
        return new Promise(resolve => setTimeout(() => {
            if (mine !== window._eddyscopeTyped) { resolve(dc.no_update); return; }
            const n = Number(typed);
            if (Number.isFinite(n)) { dc.set_props("compare-slider", {value: Math.round(n)}); }
            resolve(n);
        }, TYPED_MS));
    }
    """.replace("TYPED_MS", str(TYPED_MS)),
    Output("compare-typed", "data"),
    Input("compare-slider", "drag_value"),
    State("compare-slider", "value"),
    prevent_initial_call=True,
)

# Enter in the slider's box applies the number at once (blurring the box, which commits it).
clientside_callback(
    """
    function(id) {
        if (!window._eddyscopeEnter) {
            window._eddyscopeEnter = true;
            document.addEventListener("keydown", event => {
                const box = event.target;
                if (event.key === "Enter" && box && box.closest &&
                        box.closest("#compare-slider-wrap") && box.tagName === "INPUT") {
                    box.blur();
                }
            });
        }
        return window.dash_clientside.no_update;
    }
    """,
    Output("compare-slider-wrap", "title"),
    Input("compare-slider-wrap", "id"),
)
