"""The Data page's callbacks: refresh the generation list and the datasets table, cancel
and retry jobs, follow the form's flow, start a generation, and draw the preview (with the
clientside hooks that keep its spectrum and energy marker on the animation's frame)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog, channel_views, jobs_view, previews, training_options
from app.services.flows import is_channel_flow, is_hit3d_flow
from app.ui import figures
from app.ui.components import CHART_GRAPH, FIELD_GRAPH, alert, graph
from app.ui.context import get_state
from app.ui.pages.datasets.channel import channel_clear, channel_preview
from app.ui.pages.datasets.helpers import (
    ACTIVE_MS,
    CHANNEL,
    FINAL_STATUSES,
    FINISHING,
    IDLE_MS,
    datasets_table,
    flow_choices,
    flows_by_name,
    fmt_nu,
    generate_request,
    ic_description,
    jobs_list,
    missing_values,
    outcome_note,
    preview_note,
    table_key,
)
from app.ui.pages.datasets.hit3d import PARAM, hit3d_request, hit3d_values
from app.ui.pages.datasets.hit3d import preview_outputs as hit3d_preview


@callback(
    Output("data-jobs", "children"),
    Output("data-table", "children"),
    Output("data-table-key", "data"),
    Output("data-refresh", "interval"),
    Input("data-refresh", "n_intervals"),
    State("data-table-key", "data"),
)
async def refresh(_n: int | None, key: list[Any] | None):
    def load():
        return jobs_view.generation_jobs(get_state()), catalog.list_datasets(get_state())

    jobs, datasets = await asyncio.to_thread(load)
    new_key = table_key(datasets)
    same = key == new_key
    active = any(job["status"] in FINISHING for job in jobs)
    return (
        jobs_list(jobs),
        no_update if same else datasets_table(datasets),
        no_update if same else new_key,
        ACTIVE_MS if active else IDLE_MS,
    )


@callback(
    Output("data-jobs-feedback", "children"),
    Output("data-refresh", "interval", allow_duplicate=True),
    Input({"type": "data-cancel", "id": ALL}, "n_clicks"),
    Input({"type": "data-retry", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def job_action(_cancel: list[int | None], _retry: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    job_id = trigger["id"]
    if trigger["type"] == "data-cancel":
        job = await asyncio.to_thread(jobs_view.cancel_job, get_state(), job_id)
        if job is None:
            return alert(f"There is no job {job_id}.", "error"), ACTIVE_MS
        if job["status"] == "cancelled":
            return alert(
                f"Job {job_id[:8]} was cancelled; Resume reruns its unfinished shards.", "info"
            ), ACTIVE_MS
        return alert(f"Job {job_id[:8]} had already {job['status']}.", "info"), ACTIVE_MS
    try:
        await asyncio.to_thread(jobs_view.retry_generate, get_state(), job_id)
    except ValueError as exc:
        return alert(str(exc), "error"), ACTIVE_MS
    return alert(
        f"Job {job_id[:8]} is running again: only its unfinished shards are rerun.", "success"
    ), ACTIVE_MS


# --- the form -----------------------------------------------------------------------------


def _shown(base: str, show: bool) -> str:
    return base if show else f"{base} hidden"


@callback(
    Output("data-nu", "options"),
    Output("data-nu", "value"),
    Output("data-ic", "options"),
    Output("data-ic", "value"),
    Output("data-flow-description", "children"),
    Output("data-nu-row", "className"),
    Output("data-scheme-row", "className"),
    Output("data-resolution-row", "className"),
    Output("data-channel-params", "className"),
    Output("data-ch-nx", "value"),
    Output("data-ch-ny", "value"),
    Output("data-ch-nz", "value"),
    Output("data-ch-re-tau", "value"),
    Output("data-ch-closure", "options"),
    Output("data-ch-closure", "value"),
    Output("data-ch-drive", "options"),
    Output("data-ch-drive", "value"),
    Input("data-flow", "value"),
    prevent_initial_call=True,
)
async def choose_flow(flow_name: str | None):
    """The form follows the flow: a channel flow shows its parameters (with the flow's
    defaults) and hides the 2D-only ones (ν, time stepper, resolutions)."""
    flows = await asyncio.to_thread(flows_by_name)
    c = flow_choices(flows.get(flow_name or ""))
    channel = c["channel"]
    hit3d = bool((flows.get(flow_name or "") or {}).get("hit3d"))  # its ν: a number box
    rows = (
        _shown("form-row", not (channel or hit3d)),
        _shown("form-row", not channel),
        _shown("form-inline form-pair", not channel),
        _shown("channel-params", channel),
    )
    if channel:
        nx, ny, nz = c["grid"]
        values = (nx, ny, nz, c["re_tau"], c["closures"], c["closure"], c["drives"], c["drive"])
    else:
        values = (no_update,) * 8
    return (c["nu"], c["nu_value"], c["ic"], c["ic_value"], c["description"], *rows, *values)


@callback(
    Output("data-ic-description", "children"),
    Input("data-ic", "value"),
    State("data-flow", "value"),
    prevent_initial_call=True,
)
async def choose_ic(family: str | None, flow_name: str | None):
    flows = await asyncio.to_thread(flows_by_name)
    return ic_description(flows.get(flow_name or ""), family)


# A line under the form: what the request amounts to (shards, size on disk), as typed.
dash.clientside_callback(
    """
    function(n, t, res, shard, channelClass, nx, ny, nz, onx, ony, onz, hitClass, solver) {
        const channel = !(channelClass || '').split(' ').includes('hidden');
        const pos = v => typeof v === 'number' && v > 0;
        if (!(hitClass || 'hidden').split(' ').includes('hidden')) {
            if (![n, t, res].every(pos)) { return ''; }
            const mb = n * t * res * res * res * 3 * 4 / (1024 * 1024);
            const shards = pos(shard) ? Math.ceil(n / shard) : null;
            let text = n + ' × ' + t + ' snapshots at ' + res + '³ (velocity) ≈ '
                + (mb >= 100 ? mb.toFixed(0) : mb.toPrecision(3)) + ' MB';
            if (pos(solver) && solver !== res) { text += ', solved on ' + solver + '³'; }
            if (shards) { text += ' · ' + shards + ' shard' + (shards === 1 ? '' : 's'); }
            return text;
        }
        if (channel) {
            if (![n, t, nx, ny, nz].every(pos)) { return ''; }
            const stored = pos(onx) && pos(onz);
            const sx = stored ? onx : nx, sz = stored ? onz : nz;
            const sy = stored && pos(ony) ? ony : ny;
            const mb = n * t * sx * sy * sz * 3 * 4 / (1024 * 1024);
            const shards = pos(shard) ? Math.ceil(n / shard) : null;
            let text = n + ' × ' + t + ' snapshots at ' + sx + '×' + sy + '×' + sz
                + ' (velocity) ≈ ' + (mb >= 100 ? mb.toFixed(0) : mb.toPrecision(3)) + ' MB';
            if (sx !== nx || sy !== ny || sz !== nz) {
                text += ', solved on ' + nx + '×' + ny + '×' + nz;
            }
            if (shards) { text += ' · ' + shards + ' shard' + (shards === 1 ? '' : 's'); }
            return text;
        }
        const ok = [n, t, res].every(pos);
        if (!ok) { return ''; }
        const bytes = n * t * res * res * 4;
        const units = ['B', 'KB', 'MB', 'GB', 'TB'];
        let size = bytes, u = 0;
        while (size >= 1024 && u < units.length - 1) { size /= 1024; u += 1; }
        const shards = (typeof shard === 'number' && shard > 0) ? Math.ceil(n / shard) : null;
        const fmt = size >= 100 || u === 0 ? size.toFixed(0) : size.toPrecision(3);
        let text = n + ' × ' + t + ' snapshots at ' + res + '² ≈ ' + fmt + ' ' + units[u];
        if (shards) { text += ' · ' + shards + ' shard' + (shards === 1 ? '' : 's'); }
        return text;
    }
    """,
    Output("data-summary", "children"),
    Input("data-n", "value"),
    Input("data-t", "value"),
    Input("data-resolution", "value"),
    Input("data-shard-size", "value"),
    Input("data-channel-params", "className"),
    Input("data-ch-nx", "value"),
    Input("data-ch-ny", "value"),
    Input("data-ch-nz", "value"),
    Input("data-ch-out-nx", "value"),
    Input("data-ch-out-ny", "value"),
    Input("data-ch-out-nz", "value"),
    Input("data-hit3d-params", "className"),
    Input("data-solver-resolution", "value"),
)


@callback(
    Output("data-feedback", "children"),
    Output("data-refresh", "interval", allow_duplicate=True),
    Output(CHANNEL.source, "data", allow_duplicate=True),
    Output("data-channel-controls", "className", allow_duplicate=True),
    Output("data-started", "data"),
    Input("data-generate", "n_clicks"),
    State("data-flow", "value"),
    State("data-nu", "value"),
    State("data-ic", "value"),
    State("data-scheme", "value"),
    State("data-n", "value"),
    State("data-t", "value"),
    State("data-resolution", "value"),
    State("data-solver-resolution", "value"),
    State("data-interval", "value"),
    State("data-warmup", "value"),
    State("data-shard-size", "value"),
    State("data-seed", "value"),
    State("data-name", "value"),
    State("data-ch-nx", "value"),
    State("data-ch-ny", "value"),
    State("data-ch-nz", "value"),
    State("data-ch-out-nx", "value"),
    State("data-ch-out-ny", "value"),
    State("data-ch-out-nz", "value"),
    State("data-ch-re-tau", "value"),
    State("data-ch-closure", "value"),
    State("data-ch-drive", "value"),
    State("data-ch-filter", "value"),
    State("data-ch-filter-width", "value"),
    State({"type": PARAM, "name": ALL}, "id"),
    State({"type": PARAM, "name": ALL}, "value"),
    prevent_initial_call=True,
)
async def generate(
    n_clicks,
    flow,
    nu,
    ic,
    scheme,
    n_traj,
    n_snap,
    resolution,
    solver_resolution,
    interval,
    warmup,
    shard_size,
    seed,
    name,
    ch_nx=None,
    ch_ny=None,
    ch_nz=None,
    ch_out_nx=None,
    ch_out_ny=None,
    ch_out_nz=None,
    re_tau=None,
    closure=None,
    drive=None,
    xz_filter=None,
    filter_width=None,
    hit_ids=None,
    hit_values=None,
):
    if not n_clicks:
        raise PreventUpdate
    values = {
        "n_trajectories": n_traj,
        "n_snapshots": n_snap,
        "resolution": resolution,
        "solver_resolution": solver_resolution,
        "interval": interval,
        "warmup": warmup,
        "shard_size": shard_size,
        "seed": seed,
    }
    flows = await asyncio.to_thread(flows_by_name)
    is_channel = bool((flows.get(flow or "") or {}).get("channel"))
    channel = (
        {
            "grid": [ch_nx, ch_ny, ch_nz],
            "output_grid": [ch_out_nx, ch_out_ny, ch_out_nz],
            "re_tau": re_tau,
            "closure": closure,
            "drive": drive,
            "filter": xz_filter,
            "filter_width": filter_width,
        }
        if is_channel
        else None
    )
    missing = missing_values(values, channel)
    if missing:
        return (
            alert(f"Fill in {', '.join(missing)} (a number).", "error", id="data-feedback-error"),
            no_update,
            no_update,
            no_update,
            no_update,
        )
    schemes = (await asyncio.to_thread(training_options.generate_defaults))["schemes"]
    info = flows.get(flow or "") or {}
    if info.get("hit3d"):
        hit = hit3d_values(hit_ids, hit_values)
        raw = hit3d_request(info, ic, scheme if schemes else None, values, hit, name)
    else:
        raw = generate_request(
            flows, flow, nu, ic, scheme if schemes else None, values, name, channel=channel
        )
    try:
        job = await asyncio.to_thread(jobs_view.submit_job, get_state(), "generate", raw)
    except jobs_view.InvalidParams as exc:
        error = alert(str(exc), "error", id="data-feedback-error")
        return error, no_update, no_update, no_update, no_update
    shards = math.ceil(job["params"]["n_trajectories"] / job["params"]["shard_size"])
    # A channel job's statistics are followed live in the channel card at once.
    follow = (
        ({"kind": "job", "job_id": job["id"]}, "preview-controls hidden")
        if is_channel
        else (no_update, no_update)
    )
    return (
        alert(
            [
                html.Strong("Started. "),
                f"Job {job['id'][:8]} solves {job['params']['n_trajectories']} trajectories in "
                f"{shards} shard{'s' if shards != 1 else ''}; follow it under Generation"
                + (
                    " and its statistics under Channel flow."
                    if is_channel
                    else " and its statistics under Isotropic turbulence."
                    if info.get("hit3d")
                    else "."
                ),
            ],
            "success",
            id="data-feedback-ok",
        ),
        ACTIVE_MS,
        *follow,
        {"job_id": job["id"]},
    )


@callback(
    Output("data-feedback", "children", allow_duplicate=True),
    Output("data-started", "data", allow_duplicate=True),
    Input("data-jobs", "children"),
    State("data-started", "data"),
    prevent_initial_call=True,
)
async def started_outcome(_jobs, started):
    """The "Started." note gives way to the job's outcome once it ends."""
    job_id = (started or {}).get("job_id")
    if not job_id:
        raise PreventUpdate
    job = await asyncio.to_thread(jobs_view.get_job, get_state(), job_id)
    if job is not None and job["status"] not in FINAL_STATUSES:
        raise PreventUpdate
    return outcome_note(job, job_id), None


# --- the preview ----------------------------------------------------------------------------


@callback(
    Output("data-preview-target", "data"),
    Output("data-preview-trajectory", "value"),
    Input({"type": "data-preview-open", "id": ALL, "from": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def open_preview(_clicks: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    return {"id": trigger["id"]}, 0


@callback(
    Output("data-preview", "children"),
    Output("data-preview-title", "children"),
    Output("data-preview-note", "children"),
    Output("data-preview-count", "children"),
    Output(CHANNEL.source, "data"),
    Output("data-channel-controls", "className"),
    Output("data-channel-count", "children"),
    Input("data-preview-target", "data"),
    Input("data-preview-trajectory", "value"),
    Input("data-channel-time", "value"),
    State(CHANNEL.source, "data"),
)
async def show_preview(
    target: dict[str, Any] | None,
    index: int | None,
    time: int | None = None,
    channel_source: dict[str, Any] | None = None,
):
    hidden = "preview-controls hidden"
    keep = channel_clear(channel_source)
    if not target or not target.get("id"):
        return (
            html.P(
                "Choose Preview on a dataset above to see one of its trajectories: the "
                "vorticity animated over its snapshots, its energy spectrum, and its energy "
                "and enstrophy against time.",
                className="muted empty-note",
            ),
            "No dataset chosen.",
            None,
            None,
            keep,
            hidden,
            None,
        )
    if index is None:
        raise PreventUpdate
    dataset_id = target["id"]
    found = await asyncio.to_thread(catalog.get_dataset, get_state(), dataset_id)
    if found is not None and is_channel_flow(found["flow"]):
        try:
            layout = await asyncio.to_thread(
                channel_views.channel_dataset_layout, get_state(), dataset_id
            )
        except ValueError as exc:
            error = alert(str(exc), "error", id="data-preview-error")
            return error, no_update, None, no_update, keep, hidden, None
        if layout is not None:
            n_traj = layout["n_trajectories"]
            if not 0 <= int(index) < n_traj:
                error = alert(
                    f"Trajectory {index} is not in the dataset; it has {n_traj} (0–{n_traj - 1}).",
                    "error",
                    id="data-preview-error",
                )
                return error, no_update, None, no_update, keep, hidden, None
            return channel_preview(layout, int(index), time)
    if found is not None and is_hit3d_flow(found["flow"]):  # shown in the HIT card
        return await asyncio.to_thread(
            hit3d_preview, get_state(), dataset_id, int(index), keep, hidden
        )
    if ctx.triggered_id == "data-channel-time":
        raise PreventUpdate
    try:
        p = await asyncio.to_thread(
            previews.dataset_preview,
            get_state(),
            dataset_id,
            int(index),
            figures.ANIMATION_FRAMES,
            figures.ANIMATION_PIXELS,
        )
    except (ValueError, KeyError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else f"It has no field {exc}."
        return (
            alert(message, "error", id="data-preview-error"),
            no_update,
            None,
            no_update,
            keep,
            hidden,
            None,
        )
    if p is None:
        return (
            alert(f"There is no dataset {dataset_id}.", "error", id="data-preview-error"),
            "No dataset chosen.",
            None,
            None,
            keep,
            hidden,
            None,
        )
    d = p["dataset"]
    rev = f"{dataset_id}:{p['index']}"
    anim = figures.trajectory_animation(
        p["frames"],
        p["frame_t"],
        p["length"],
        snapshots=p["frame_snapshots"],
        total=p["n_snapshots"],
        limit=p["limit"],
        uirevision=rev,
    )
    spectrum = figures.snapshot_spectra_figure(
        p["k"], p["spectra"], p["frame_t"], snapshots=p["frame_snapshots"], uirevision=rev
    )
    curves = figures.energy_enstrophy_figure(
        p["series_t"], p["energy"], p["enstrophy"], marker_t=p["frame_t"][0], uirevision=rev
    )
    body = html.Div(
        [
            html.Div(
                graph(
                    id="data-preview-animation",
                    figure=anim,
                    config=FIELD_GRAPH,
                    className="graph-animation",
                ),
                className="preview-main",
            ),
            html.Div(
                [
                    html.H3("Energy spectrum", className="form-section"),
                    graph(
                        id="data-preview-spectrum",
                        figure=spectrum,
                        config=CHART_GRAPH,
                        className="graph-preview-spectrum",
                    ),
                    html.H3("Energy and enstrophy", className="form-section"),
                    graph(
                        id="data-preview-energy",
                        figure=curves,
                        config=CHART_GRAPH,
                        className="graph-preview-energy",
                    ),
                ],
                className="preview-side",
            ),
        ],
        className="preview-grid",
    )
    params = d["params"]
    facts = [
        d["flow"],
        f"ν = {fmt_nu(float(params['nu']))}" if params.get("nu") else None,
        f"Δt = {params.get('interval')}" if params.get("interval") is not None else None,
        f"{p['resolution']}²",
    ]
    title = [
        html.Span(d["name"], className="strong"),
        html.Span(" · " + " · ".join(f for f in facts if f), className="muted"),
    ]
    count = f"of {p['n_trajectories']} (0–{p['n_trajectories'] - 1})"
    return body, title, preview_note(p), count, keep, hidden, None


# The spectrum and the time marker follow the animation: on each frame the animation shows
# (playing, or moved with its slider), the spectrum figure animates to the frame of the same
# name and the energy figure's marker moves to its time. Hooked once per plot element.
dash.clientside_callback(
    """
    function(fig) {
        function follow(tries) {
            const anim = document.querySelector('#data-preview-animation .js-plotly-plot');
            if (!anim || typeof anim.on !== 'function') {
                if (tries > 0) { setTimeout(function() { follow(tries - 1); }, 200); }
                return;
            }
            if (anim.__eddyscopeFollow) { return; }
            anim.__eddyscopeFollow = true;
            anim.on('plotly_animatingframe', function(ev) {
                if (!ev || ev.name === undefined || ev.name === null) { return; }
                const name = String(ev.name);
                const spec = document.querySelector('#data-preview-spectrum .js-plotly-plot');
                const frames = spec && spec._transitionData && spec._transitionData._frameHash;
                if (frames && frames[name]) {
                    // An animation interrupted by the next frame rejects its promise: fine.
                    Plotly.animate(spec, [name], {
                        mode: 'immediate',
                        frame: {duration: 0, redraw: false},
                        transition: {duration: 0}
                    }).catch(function() {});
                }
                const meta = anim.layout && anim.layout.meta;
                const energy = document.querySelector('#data-preview-energy .js-plotly-plot');
                if (meta && meta.snapshots && energy && energy.layout &&
                        energy.layout.shapes && energy.layout.shapes.length) {
                    const k = meta.snapshots.indexOf(Number(name));
                    if (k >= 0) {
                        Plotly.relayout(energy, {
                            'shapes[0].x0': meta.times[k], 'shapes[0].x1': meta.times[k]
                        }).catch(function() {});
                    }
                }
            });
        }
        if (fig) { follow(25); }
        return window.dash_clientside.no_update;
    }
    """,
    Output("data-preview-hook", "data"),
    Input("data-preview-animation", "figure"),
)

# Opening a preview brings it into view.
dash.clientside_callback(
    """
    function(target) {
        if (target && target.id) {
            const card = document.getElementById('data-preview-card');
            if (card) { setTimeout(function() {
                card.scrollIntoView({behavior: 'smooth', block: 'start'});
            }, 50); }
        }
        return window.dash_clientside.no_update;
    }
    """,
    Output("data-preview-scroll", "data"),
    Input("data-preview-target", "data"),
    prevent_initial_call=True,
)
