"""``/data``: generate training data with the reference solver; the datasets stored, with
their shapes and the status of the job that made each, plus generations in progress."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from app.ui import data
from app.ui.components import (
    alert,
    card,
    empty_row,
    fmt_shape,
    fmt_time,
    form_row,
    number_input,
    page,
    progress_bar,
    status_badge,
    table,
)

REFRESH_MS = 2000
DEFAULT_FLOW = "ns2d-forced"
DEFAULTS = {"n_trajectories": 8, "n_snapshots": 20, "resolution": 64, "interval": 1.0}


def layout(**_query: Any) -> html.Main:
    flows = data.flow_names()
    return page(
        "Data",
        "Training data from the built-in reference solvers: trajectories of snapshots Δt apart, "
        "stored as HDF5 in the layout of The Well.",
        html.Div(
            [
                card(
                    "Generate a dataset",
                    form_row(
                        "Flow",
                        dcc.Dropdown(
                            id="data-flow",
                            options=[{"label": n, "value": n, "title": d} for n, d in flows],
                            value=DEFAULT_FLOW
                            if any(n == DEFAULT_FLOW for n, _ in flows)
                            else None,
                            clearable=False,
                            className="dropdown",
                        ),
                    ),
                    html.Div(
                        [
                            form_row(
                                "Trajectories",
                                number_input(
                                    "data-trajectories", DEFAULTS["n_trajectories"], min=1, step=1
                                ),
                            ),
                            form_row(
                                "Snapshots each",
                                number_input(
                                    "data-snapshots", DEFAULTS["n_snapshots"], min=2, step=1
                                ),
                            ),
                        ],
                        className="form-inline",
                    ),
                    html.Div(
                        [
                            form_row(
                                "Resolution",
                                number_input(
                                    "data-resolution", DEFAULTS["resolution"], min=16, step=2
                                ),
                                "Grid points per side (even).",
                            ),
                            form_row(
                                "Interval Δt",
                                number_input(
                                    "data-interval", DEFAULTS["interval"], min=0, step="any"
                                ),
                                "Time between snapshots.",
                            ),
                        ],
                        className="form-inline",
                    ),
                    form_row(
                        "Name",
                        dcc.Input(
                            id="data-name", type="text", placeholder="optional", className="input"
                        ),
                    ),
                    html.Button(
                        "Generate",
                        id="data-generate",
                        className="button button-primary",
                        n_clicks=0,
                    ),
                    html.Div(id="data-feedback"),
                    className="setup-card",
                ),
                card(
                    "Datasets",
                    html.Div(id="data-active"),
                    html.Div(id="data-table", className="table-wrap"),
                    dcc.Interval(id="data-interval-refresh", interval=REFRESH_MS),
                    className="list-card",
                ),
            ],
            className="grid-setup",
        ),
    )


HEADERS = ["Name", "Flow", "Shape (traj × time × ny × nx)", "Δt", "Job", "Created", ""]


def datasets_table(rows: list[dict[str, Any]]) -> html.Table:
    body = [
        html.Tr(
            [
                html.Td(
                    [
                        html.Span(d["name"], className="strong"),
                        html.Br(),
                        html.Code(d["id"], className="muted small"),
                    ]
                ),
                html.Td(d["flow"]),
                html.Td(fmt_shape(d["shape"])),
                html.Td(f"{d['params'].get('interval', '—')}"),
                html.Td(status_badge(d["job_status"]) if d["job_status"] else "—"),
                html.Td(fmt_time(d["created_at"]), title=d["created_at"] or ""),
                html.Td(
                    dcc.Link(
                        "Train on it →",
                        href=f"/train?dataset={d['id']}",
                        className="button button-small button-primary",
                    )
                ),
            ]
        )
        for d in rows
    ] or [empty_row(len(HEADERS), "No datasets yet.")]
    return table(HEADERS, body)


def active_list(jobs: list[dict[str, Any]]) -> Any:
    if not jobs:
        return None
    items = []
    for job in jobs:
        p = job["params"]
        items.append(
            html.Div(
                [
                    status_badge(job["status"]),
                    html.Span(
                        f"{p.get('flow')} · {p.get('n_trajectories')} trajectories × "
                        f"{p.get('n_snapshots')} snapshots @ {p.get('resolution')}²",
                        className="active-text",
                    ),
                    progress_bar(job["progress"], job["status"]),
                    html.Small(job["message"] or "", className="muted"),
                ],
                className="active-job",
            )
        )
    return html.Div(
        [html.H3("Generating", className="form-section"), *items], className="active-jobs"
    )


@callback(
    Output("data-table", "children"),
    Output("data-active", "children"),
    Input("data-interval-refresh", "n_intervals"),
)
async def refresh(_n: int | None):
    def load():
        return data.list_datasets(), data.active_jobs("generate")

    datasets, active = await asyncio.to_thread(load)
    return datasets_table(datasets), active_list(active)


@callback(
    Output("data-feedback", "children"),
    Input("data-generate", "n_clicks"),
    State("data-flow", "value"),
    State("data-trajectories", "value"),
    State("data-snapshots", "value"),
    State("data-resolution", "value"),
    State("data-interval", "value"),
    State("data-name", "value"),
    prevent_initial_call=True,
)
async def generate(n_clicks, flow, n_traj, n_snap, resolution, interval, name):
    if not n_clicks:
        raise PreventUpdate
    raw = {
        "flow": flow,
        "n_trajectories": n_traj,
        "n_snapshots": n_snap,
        "resolution": resolution,
        "interval": interval,
    }
    missing = [key for key, value in raw.items() if value in (None, "")]
    if missing:
        return alert(f"Fill in {', '.join(m.replace('_', ' ') for m in missing)}.", "error")
    if name:
        raw["name"] = name
    try:
        job = await asyncio.to_thread(data.submit_job, "generate", raw)
    except data.InvalidParams as exc:
        return alert(str(exc), "error")
    return alert(
        [
            html.Strong("Queued. "),
            f"Job {job['id'][:8]} generates the dataset; it appears in the list when done.",
        ],
        "success",
    )
