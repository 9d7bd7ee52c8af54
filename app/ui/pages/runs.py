"""``/``: every job with its status and progress, refreshed each second, with a way in
for a first visit (a reference rollout of the shipped example).

The table is filtered by kind, status, owner and flow and searched (id, name, tags, notes,
message) through ``app.services.run_filters``; the filters live in the address
(``/?kind=train&q=sweep``), so a view can be bookmarked, and at most ``run_filters.PAGE``
newest matching runs are listed. Each row opens its run (a training run's curves at
``/train?job=<id>``) and has Edit (name, tags, notes), Lineage and, once finished, Delete
(``app.ui.manage``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import jobs_view, run_filters
from app.ui import manage
from app.ui.components import (
    alert,
    card,
    data_table,
    fmt_time,
    job_duration,
    page,
    progress_bar,
    status_badge,
)
from app.ui.context import get_state

REFRESH_MS = 1000
KIND_LABELS = {
    "generate": "Generate data",
    "train": "Train",
    "finetune": "Fine-tune",
    "rollout": "Rollout",
    "compare": "Compare",
}


def layout(**query: Any) -> html.Main:
    chosen = run_filters.parse(query)
    return page(
        "Runs",
        "Every job on this server: data generation, training, rollouts and comparisons, live.",
        html.Section(
            [
                html.Div(
                    [
                        html.H2("Try it", className="hero-title"),
                        html.P(
                            "Roll the shipped example initial condition (2D forced turbulence, "
                            "64²) forward with the reference solver and watch its fields, "
                            "energy spectrum and energy evolve live.",
                            className="hero-text",
                        ),
                    ]
                ),
                dcc.Link(
                    "Try it: reference rollout of the example →",
                    href="/rollout?example=1",
                    id="runs-try-example",
                    className="button button-primary button-large",
                ),
            ],
            className="hero",
        ),
        card(
            "Jobs",
            filters_row(chosen),
            html.Div(id="runs-summary", className="summary-line"),
            html.Div(id="runs-feedback"),
            html.Div(
                data_table(HEADERS, [], empty="Loading…"),
                id="runs-table",
                className="table-wrap",
            ),
            dcc.Store(id="runs-table-key"),
            dcc.Store(id="runs-address"),
            dcc.Store(id="runs-address-sink"),
            dcc.Interval(id="runs-interval", interval=REFRESH_MS),
        ),
        manage.dialog(),
    )


FILTERS = ("kind", "status", "owner", "flow")


def filters_row(chosen: run_filters.RunFilter) -> html.Div:
    """Kind, status, owner and flow pickers and the search box, set from the address."""

    def picker(name: str, placeholder: str, options: list[Any]) -> dcc.Dropdown:
        value = getattr(chosen, name)
        if value and value not in [o["value"] for o in options]:
            options = [*options, {"label": value, "value": value}]
        return dcc.Dropdown(
            id=f"runs-filter-{name}",
            options=options,
            value=value,
            placeholder=placeholder,
            clearable=True,
            searchable=False,
            className="dropdown",
        )

    return html.Div(
        [
            picker(
                "kind",
                "Any kind",
                [{"label": KIND_LABELS.get(k, k), "value": k} for k in run_filters.KINDS],
            ),
            picker(
                "status", "Any status", [{"label": s, "value": s} for s in run_filters.STATUSES]
            ),
            picker("owner", "Anyone", []),
            picker("flow", "Any flow", []),
            dcc.Input(
                id="runs-search",
                type="search",
                value=chosen.q or "",
                placeholder="Search id, name, tags, notes…",
                debounce=0.4,
                maxLength=run_filters.MAX_SEARCH,
                className="input",
            ),
            dcc.Link(
                "Overlay training runs →",
                href="/train/runs",
                id="runs-overlay-link",
                className="button button-small",
            ),
        ],
        className="runs-filters",
    )


HEADERS = ["Job", "Kind", "Status", "Progress", "Message", "Created", "Started", "Finished", ""]


def _open_link(job: dict[str, Any]) -> Any:
    kind, result = job["kind"], job["result"]
    if kind == "rollout":
        ref = result.get("rollout_id") or job["id"]
        return dcc.Link("Open rollout", href=f"/rollout/{ref}", className="link")
    if kind == "compare":
        ref = result.get("rollout_id") or job["id"]
        return dcc.Link("Open comparison", href=f"/compare/{ref}", className="link")
    if kind in ("train", "finetune"):
        curves = dcc.Link("Curves", href=f"/train?job={job['id']}", className="link")
        if result.get("model_id") and job["status"] == "succeeded":
            return html.Span([curves, " · ", dcc.Link("Model", href="/models", className="link")])
        return curves
    if kind == "generate":
        return dcc.Link("Datasets", href="/data", className="link")
    return None


# How the Runs page names a channel comparison's LES baselines.
BASELINE_NAMES = {
    "none": "coarse DNS",
    "smagorinsky": "Smagorinsky",
    "wale": "WALE",
    "dynamic": "dynamic Smagorinsky",
}


def job_detail(job: dict[str, Any]) -> str:
    """One line on what the job does, from its parameters."""
    p = job["params"]
    if job["kind"] == "rollout":
        who = f"model {p['model_id'][:8]}" if p.get("model_id") else "reference solver"
        return f"{who} · {p.get('steps')} steps"
    if job["kind"] == "compare":
        entries = p.get("models") or []
        n = len({e.get("model_id") for e in entries})
        columns = f"{n} model{'s' if n != 1 else ''}"
        if len(entries) != n:
            columns += f" · {len(entries)} columns"
        if p.get("baselines"):
            names = ", ".join(BASELINE_NAMES.get(b, b) for b in p["baselines"])
            columns += f" + {names}"
        if p.get("grid"):  # a channel comparison's coarse grid
            columns += f" @ {jobs_view.grid_label(p['grid'])}"
        return f"{columns} · {p.get('steps')} steps" + (
            "" if p.get("reference", True) else " · no reference"
        )
    if job["kind"] in ("train", "finetune"):
        return f"{p.get('arch', 'fine-tune')} · {p.get('epochs')} epochs"
    if job["kind"] == "generate":
        return (
            f"{p.get('flow')} · {p.get('n_trajectories')}×{p.get('n_snapshots')}"
            f" @ {jobs_view.generate_grid_label(p)}"
        )
    return ""


def job_row(job: dict[str, Any], now: datetime) -> html.Tr:
    active = job["status"] in ("queued", "running")
    message = job["error"] if job["status"] == "failed" and job["error"] else job["message"]
    actions = [_open_link(job), *manage.item_actions("job", job["id"], delete=not active)]
    if active:
        actions.append(
            html.Button(
                "Cancel",
                id={"type": "cancel-job", "id": job["id"]},
                className="button button-small button-danger",
                n_clicks=0,
            )
        )
    duration = job_duration(job, now)
    return html.Tr(
        [
            html.Td(
                [
                    html.Span(job["name"], className="strong run-name")
                    if job.get("name")
                    else None,
                    html.Br() if job.get("name") else None,
                    html.Code(job["id"][:8], title=job["id"]),
                    tag_list(job.get("tags")),
                    html.Small(job["owner"], className="muted run-owner")
                    if job.get("owner")
                    else None,
                ],
                className="mono",
                title=job.get("notes") or None,
            ),
            html.Td(
                [
                    KIND_LABELS.get(job["kind"], job["kind"]),
                    html.Br(),
                    html.Small(job_detail(job), className="muted"),
                ]
            ),
            html.Td(status_badge(job["status"])),
            html.Td(
                html.Div(
                    [
                        progress_bar(job["progress"], job["status"]),
                        html.Span(f"{job['progress'] * 100:.0f}%", className="progress-label"),
                    ],
                    className="progress-cell",
                )
            ),
            html.Td(
                message or "",
                className="message-cell error-text"
                if job["status"] == "failed"
                else "message-cell",
                title=message or "",
            ),
            html.Td(fmt_time(job["created_at"], now), title=job["created_at"] or ""),
            html.Td(fmt_time(job["started_at"], now), title=job["started_at"] or ""),
            html.Td(
                [
                    fmt_time(job["finished_at"], now) if not active else None,
                    html.Small(
                        f"running {duration}" if active else f" ({duration})", className="muted"
                    )
                    if duration
                    else ("—" if active else None),
                ],
                title=job["finished_at"] or "",
            ),
            html.Td(html.Div(actions, className="row-actions")),
        ],
        className=f"row-{job['status']}",
    )


def jobs_table(jobs: list[dict[str, Any]], now: datetime | None = None) -> html.Table:
    now = now or datetime.now(UTC)
    return data_table(
        HEADERS,
        [job_row(job, now) for job in jobs],
        empty="No jobs yet. Start one from Rollout, Compare, Data or Train.",
        className="jobs-table",
    )


def summary(jobs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    order = ("running", "queued", "succeeded", "failed", "cancelled")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    return f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}" + (
        " · " + ", ".join(parts) if parts else ""
    )


def tag_list(tags: list[str] | None) -> Any:
    if not tags:
        return None
    return html.Span([html.Span(t, className="tag") for t in tags], className="item-tags")


def current_filter(kind, status, owner, flow, q) -> run_filters.RunFilter:
    return run_filters.parse({"kind": kind, "status": status, "owner": owner, "flow": flow, "q": q})


def table_key(jobs: list[dict[str, Any]], chosen: run_filters.RunFilter, now: float) -> list:
    """The table is redrawn only when this changes: a row's state, or every 30 s for the
    relative times (a stable table keeps its buttons under the pointer)."""
    return [
        chosen.query_string(),
        int(now // 30),
        *[
            [
                j["id"],
                j["status"],
                round(j["progress"], 2),
                j.get("name"),
                j.get("tags"),
                j.get("notes"),
                j.get("message"),
                j.get("error"),
            ]
            for j in jobs
        ],
    ]


def summary_text(jobs: list[dict[str, Any]], chosen: run_filters.RunFilter) -> str:
    text = summary(jobs)
    if len(jobs) >= run_filters.PAGE:
        text += f" · the newest {run_filters.PAGE} shown"
    if chosen.active:
        text += " matching the filters"
    return text


@callback(
    Output("runs-table", "children"),
    Output("runs-summary", "children"),
    Output("runs-table-key", "data"),
    Output("runs-address", "data"),
    Input("runs-interval", "n_intervals"),
    Input("runs-filter-kind", "value"),
    Input("runs-filter-status", "value"),
    Input("runs-filter-owner", "value"),
    Input("runs-filter-flow", "value"),
    Input("runs-search", "value"),
    State("runs-table-key", "data"),
)
async def refresh(_n: int | None, kind, status, owner, flow, q, key):
    chosen = current_filter(kind, status, owner, flow, q)
    jobs = await asyncio.to_thread(run_filters.list_runs, get_state(), chosen)
    new_key = table_key(jobs, chosen, datetime.now(UTC).timestamp())
    if new_key == key:
        return no_update, summary_text(jobs, chosen), no_update, chosen.query_string()
    return jobs_table(jobs), summary_text(jobs, chosen), new_key, chosen.query_string()


@callback(
    Output("runs-filter-owner", "options"),
    Output("runs-filter-flow", "options"),
    Input("runs-table-key", "data"),
    State("runs-filter-owner", "value"),
    State("runs-filter-flow", "value"),
)
async def filter_choices(_key, owner, flow):
    found = await asyncio.to_thread(run_filters.choices, get_state())
    owners = [{"label": "me", "value": "me"}] + [{"label": u, "value": u} for u in found["owners"]]
    flows = [{"label": f, "value": f} for f in found["flows"]]
    for options, value in ((owners, owner), (flows, flow)):
        if value and value not in [o["value"] for o in options]:
            options.append({"label": value, "value": value})
    return owners, flows


# The filters go into the address without a page load (history.replaceState, not the
# pages router), so reloading or bookmarking the address shows the same view.
clientside_callback(
    """
    function(search) {
        if (typeof search !== "string") { return window.dash_clientside.no_update; }
        if (window.location.pathname === "/" && window.location.search !== search) {
            window.history.replaceState(window.history.state, "", "/" + search);
        }
        return window.dash_clientside.no_update;
    }
    """,
    Output("runs-address-sink", "data"),
    Input("runs-address", "data"),
    prevent_initial_call=True,
)


@callback(
    Output("runs-feedback", "children"),
    Input({"type": "cancel-job", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def cancel(clicks: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not any(clicks) or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    job = await asyncio.to_thread(jobs_view.cancel_job, get_state(), trigger["id"])
    if job is None:
        return alert(f"There is no job {trigger['id']}.", "error")
    if job["status"] == "cancelled":
        return alert(f"Job {job['id'][:8]} was cancelled.", "info")
    return alert(f"Job {job['id'][:8]} had already {job['status']}.", "info")
