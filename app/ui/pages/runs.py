"""``/``: every job with its status and progress, refreshed each second, with a way in
for a first visit (a reference rollout of the shipped example)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from dash import ALL, Input, Output, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from app.services import jobs_view
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


def layout(**_query: Any) -> html.Main:
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
            html.Div(id="runs-summary", className="summary-line"),
            html.Div(id="runs-feedback"),
            html.Div(
                data_table(HEADERS, [], empty="Loading…"),
                id="runs-table",
                className="table-wrap",
            ),
            dcc.Interval(id="runs-interval", interval=REFRESH_MS),
        ),
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
        if result.get("model_id") and job["status"] == "succeeded":
            return dcc.Link("Model", href="/models", className="link")
        return dcc.Link("Loss curve", href=f"/train?job={job['id']}", className="link")
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
    actions = [_open_link(job)]
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
            html.Td(html.Code(job["id"][:8], title=job["id"]), className="mono"),
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


@callback(
    Output("runs-table", "children"),
    Output("runs-summary", "children"),
    Input("runs-interval", "n_intervals"),
)
async def refresh(_n: int | None):
    jobs = await asyncio.to_thread(jobs_view.list_jobs, get_state())
    return jobs_table(jobs), summary(jobs)


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
