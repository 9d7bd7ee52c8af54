"""The Data page's channel-flow card: what the preview hands to the channel panel for a
channel dataset, the card's visibility and title, and following a live channel generate job
(its Statistics button, or at once when the panel shows nothing)."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from app.services import jobs_view
from app.ui.context import get_state
from app.ui.pages.datasets.helpers import CHANNEL, fmt_nu


def channel_clear(source: dict[str, Any] | None) -> Any:
    """What a 2D preview leaves in the channel panel: a dataset snapshot goes, a live job
    stays."""
    return None if source and source.get("kind") == "dataset" else no_update


def channel_preview(
    layout: dict[str, Any], index: int, time: int | None
) -> tuple[Any, Any, Any, Any, dict[str, Any], str, str]:
    """The preview card's outputs for a channel dataset: a pointer to the channel card, the
    title, the count of trajectories; the channel panel's source and the snapshot control's
    class and count."""
    d = layout["dataset"]
    n_traj, n_snap = layout["n_trajectories"], layout["n_snapshots"]
    shown = (n_snap - 1) if time is None else int(time) % max(n_snap, 1)
    grid = "×".join(str(g) for g in layout["grid"])
    body = html.P(
        f"A channel-flow dataset: trajectory {index}, snapshot {shown} of {n_snap}, is shown "
        "under Channel flow below (statistics in wall units and slices of the velocity).",
        className="muted empty-note",
    )
    params = d["params"]
    facts = [
        d["flow"],
        f"ν = {fmt_nu(float(params['nu']))}" if params.get("nu") else None,
        f"Re_τ = {params['re_tau']}" if params.get("re_tau") else None,
        grid,
    ]
    title = [
        html.Span(d["name"], className="strong"),
        html.Span(" · " + " · ".join(f for f in facts if f), className="muted"),
    ]
    count = f"of {n_traj} (0–{n_traj - 1})"
    source = {"kind": "dataset", "id": d["id"], "trajectory": index, "time": shown}
    return (
        body,
        title,
        None,
        count,
        source,
        "preview-controls",
        f"of {n_snap} (0–{n_snap - 1})",
    )


@callback(
    Output("data-channel-card", "className"),
    Output("data-channel-title", "children"),
    Input(CHANNEL.source, "data"),
)
async def show_channel(source: dict[str, Any] | None):
    if not source:
        return "card preview-card channel-card hidden", no_update
    if source.get("kind") == "job":
        title = f"Live statistics of generate job {str(source.get('job_id'))[:8]}."
    else:
        title = "Statistics in wall units and slices of the velocity."
    return "card preview-card channel-card", title


@callback(
    Output(CHANNEL.source, "data", allow_duplicate=True),
    Output("data-channel-controls", "className", allow_duplicate=True),
    Input({"type": "data-channel-live", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def follow_job(_clicks: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    return {"kind": "job", "job_id": trigger["id"]}, "preview-controls hidden"


@callback(
    Output(CHANNEL.source, "data", allow_duplicate=True),
    Output("data-channel-controls", "className", allow_duplicate=True),
    Input("data-refresh", "n_intervals"),
    State(CHANNEL.source, "data"),
    prevent_initial_call=True,
)
async def attach_live_job(_n: int | None, source: dict[str, Any] | None):
    """An active channel generate job is followed at once when the panel shows nothing."""
    if source:
        raise PreventUpdate
    job_id = await asyncio.to_thread(jobs_view.active_channel_job, get_state())
    if job_id is None:
        raise PreventUpdate
    return {"kind": "job", "job_id": job_id}, "preview-controls hidden"
