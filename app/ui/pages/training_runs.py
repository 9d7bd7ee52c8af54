"""``/train/runs``: several training runs overlaid on one plot — training loss, validation
relative L2 or learning rate, by optimiser step or wall time, on a log or linear axis,
smoothed or raw. One run's own page, with its live curves and summary, is
``/train?job=<id>`` (each run in the list links there).

The choice lives in the address (``/train/runs?jobs=a,b&metric=val&x=time&scale=linear&
smooth=0.6``), kept there without a page load, so an overlay can be bookmarked; while a
chosen run is still training the plot is redrawn every few seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from app.services import training_runs
from app.ui import figures, training_figures
from app.ui.components import CHART_GRAPH, card, page
from app.ui.context import get_state

REFRESH_MS = 3000
ACTIVE = ("queued", "running")


def _choice(value: Any, allowed, default: str) -> str:
    return value if value in allowed else default


def _smoothing(value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(round(weight, 2), 0.0), 0.95)


def parse(query: dict[str, Any]) -> dict[str, Any]:
    """The overlay's settings from an address's query, bounded (``MAX_RUNS`` runs)."""
    jobs = [j.strip() for j in str(query.get("jobs") or "").split(",") if j.strip()]
    return {
        "jobs": list(dict.fromkeys(jobs))[: training_runs.MAX_RUNS],
        "metric": _choice(query.get("metric"), training_figures.OVERLAY_METRICS, "loss"),
        "x": _choice(query.get("x"), training_figures.OVERLAY_X, "step"),
        "scale": _choice(query.get("scale"), ("log", "linear"), "log"),
        "smooth": _smoothing(query.get("smooth")),
    }


def query_string(settings: dict[str, Any]) -> str:
    items: dict[str, Any] = {}
    if settings["jobs"]:
        items["jobs"] = ",".join(settings["jobs"])
    for key, default in (("metric", "loss"), ("x", "step"), ("scale", "log")):
        if settings[key] != default:
            items[key] = settings[key]
    if settings["smooth"]:
        items["smooth"] = f"{settings['smooth']:g}"
    return "?" + urlencode(items, safe=",") if items else ""


def _radio(id_: str, options: dict[str, str], value: str) -> dcc.RadioItems:
    return dcc.RadioItems(
        id=id_,
        options=[{"label": label, "value": key} for key, label in options.items()],
        value=value,
        inline=True,
        className="radio-inline",
    )


def layout(**query: Any) -> html.Main:
    chosen = parse(query)
    return page(
        "Training runs",
        "Several training runs on one plot. Each run's own curves and summary are on its page "
        "(Runs → Curves).",
        card(
            None,
            html.Div(
                [
                    dcc.Dropdown(
                        id="overlay-runs",
                        options=[{"label": j, "value": j} for j in chosen["jobs"]],
                        value=chosen["jobs"],
                        multi=True,
                        placeholder="Choose training runs…",
                        className="dropdown",
                    ),
                    _radio(
                        "overlay-metric",
                        training_figures.OVERLAY_LABELS,
                        chosen["metric"],
                    ),
                    _radio("overlay-x", {"step": "by step", "time": "by wall time"}, chosen["x"]),
                    _radio("overlay-scale", {"log": "log", "linear": "linear"}, chosen["scale"]),
                    html.Div(
                        [
                            html.Span("Smoothing", className="form-label"),
                            dcc.Slider(
                                id="overlay-smoothing",
                                min=0,
                                max=0.95,
                                step=0.05,
                                value=chosen["smooth"],
                                marks={0: "0", 0.5: "0.5", 0.95: "0.95"},
                            ),
                        ],
                        className="overlay-smoothing",
                    ),
                ],
                className="overlay-controls",
            ),
            dcc.Graph(
                id="overlay-graph",
                figure=figures.empty_figure("Choose training runs to overlay."),
                config=CHART_GRAPH,
                className="graph graph-tall",
            ),
            html.Div(id="overlay-links", className="row-actions row-actions-start"),
            dcc.Interval(id="overlay-refresh", interval=REFRESH_MS, disabled=True),
            dcc.Store(id="overlay-address"),
            dcc.Store(id="overlay-address-sink"),
        ),
    )


def run_label(run: dict[str, Any]) -> str:
    parts = [run["name"], run.get("arch"), run.get("dataset"), run["status"]]
    return " · ".join(str(p) for p in parts if p)


@callback(
    Output("overlay-runs", "options"),
    Input("overlay-runs", "id"),
    State("overlay-runs", "value"),
)
async def load_runs(_id, chosen):
    runs = await asyncio.to_thread(training_runs.training_jobs, get_state())
    options = [{"label": run_label(r), "value": r["id"]} for r in runs]
    known = {o["value"] for o in options}
    options += [{"label": j, "value": j} for j in chosen or [] if j not in known]
    return options


@callback(
    Output("overlay-graph", "figure"),
    Output("overlay-links", "children"),
    Output("overlay-refresh", "disabled"),
    Output("overlay-address", "data"),
    Input("overlay-runs", "value"),
    Input("overlay-metric", "value"),
    Input("overlay-x", "value"),
    Input("overlay-scale", "value"),
    Input("overlay-smoothing", "value"),
    Input("overlay-refresh", "n_intervals"),
)
async def draw(jobs, metric, x, scale, smoothing, _n):
    settings = parse(
        {
            "jobs": ",".join(jobs or []),
            "metric": metric,
            "x": x,
            "scale": scale,
            "smooth": smoothing,
        }
    )

    def build():
        runs = training_runs.run_curves(get_state(), settings["jobs"])
        fig = training_figures.overlay_figure(
            runs,
            metric=settings["metric"],
            x=settings["x"],
            scale=settings["scale"],
            smoothing=settings["smooth"],
            uirevision=",".join(settings["jobs"]) + settings["metric"] + settings["x"],
        )
        return runs, fig

    runs, fig = await asyncio.to_thread(build)
    links = [
        dcc.Link(f"{r['name']} →", href=f"/train?job={r['id']}", className="button button-small")
        for r in runs
    ]
    active = any(r["status"] in ACTIVE for r in runs)
    return fig, links, not active, query_string(settings) if jobs is not None else no_update


clientside_callback(
    """
    function(search) {
        if (typeof search !== "string") { return window.dash_clientside.no_update; }
        if (window.location.pathname === "/train/runs" && window.location.search !== search) {
            window.history.replaceState(window.history.state, "", "/train/runs" + search);
        }
        return window.dash_clientside.no_update;
    }
    """,
    Output("overlay-address-sink", "data"),
    Input("overlay-address", "data"),
    prevent_initial_call=True,
)
