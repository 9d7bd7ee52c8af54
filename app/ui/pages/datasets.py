"""``/data``: generate training data with the reference solvers, follow the generation
(progress over its shards, cancel, retry the failed shards), and look at what was made: the
datasets stored, and a preview of one trajectory (animated vorticity, its energy spectrum,
its energy and enstrophy against time).

``/data?preview=<dataset id>&trajectory=<i>`` opens with that preview.

Channel flows (``channel3d``): Preview on a channel dataset (velocity in The Well's layout,
``t1_fields/velocity`` with ``dimensions/y``) shows the channel panel
(``app.ui.channel_panels``) for the chosen trajectory and snapshot: statistics in wall units
and slices of the velocity. A channel generate job that is queued or running is followed
live (its ``channel_stats`` events) by the same panel, at once when nothing else is shown
there, or with its Statistics button.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog, channel_views, jobs_view, previews, training_options
from app.services.flows import generate_form_flows, is_channel_flow
from app.ui import figures
from app.ui.channel_panels import ChannelPanel
from app.ui.components import (
    CHART_GRAPH,
    FIELD_GRAPH,
    alert,
    card,
    empty_row,
    fmt_shape,
    fmt_time,
    form_row,
    job_duration,
    number_input,
    page,
    progress_bar,
    status_badge,
    table,
)
from app.ui.context import get_state

ACTIVE_MS = 1000  # refresh while a generation is active
IDLE_MS = 4000  # otherwise, to notice jobs started elsewhere (the API, the CLI)
DEFAULT_FLOW = "ns2d-forced"
FINISHING = ("queued", "running", "finishing")
SCHEME_LABELS = {
    "rk4cn": "RK4–Crank–Nicolson (IMEX, 4th order)",
    "cnheun": "Crank–Nicolson–Heun (RK2)",
}
DEFAULT_IC = "__default__"  # the IC dropdown's value for "the flow's own" (sent as None)

CHANNEL = ChannelPanel("data")


# --- form helpers ---------------------------------------------------------------------


def fmt_nu(nu: float) -> str:
    """1e-3, 5e-4, 0.01: short and unambiguous."""
    mantissa, exponent = f"{nu:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}" if abs(int(exponent)) >= 3 else f"{nu:g}"


def flow_choices(flow: dict[str, Any] | None) -> dict[str, Any]:
    """The viscosity and initial-condition options (and defaults) of one flow."""
    if flow is None:
        return {"nu": [], "nu_value": None, "ic": [], "ic_value": None, "description": ""}
    nu_options = [
        {"label": fmt_nu(nu) + (" (default)" if nu == flow["nu"] else ""), "value": nu}
        for nu in flow["allowed_nu"]
    ]
    families = flow["initial_conditions"]
    if families:
        # The first family is the flow's default.
        ic_options = [
            {
                "label": name + (" (default)" if i == 0 else ""),
                "value": name,
                "title": flow["ic_descriptions"].get(name, ""),
            }
            for i, name in enumerate(families)
        ]
        ic_value = families[0]
    else:
        ic_options = [{"label": "the flow's default", "value": DEFAULT_IC}]
        ic_value = DEFAULT_IC
    return {
        "nu": nu_options,
        "nu_value": flow["nu"],
        "ic": ic_options,
        "ic_value": ic_value,
        "description": flow["description"],
    }


def ic_description(flow: dict[str, Any] | None, family: str | None) -> str:
    if flow is None or family in (None, DEFAULT_IC):
        return ""
    text = flow["ic_descriptions"].get(family, "")
    return f"Initial condition: {text}." if text else ""


def _flows_by_name() -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in generate_form_flows()}


def _dropdown(id: str, options: list[dict[str, Any]], value: Any, **kwargs: Any) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=id,
        options=options,
        value=value,
        clearable=False,
        searchable=False,
        className="dropdown",
        **kwargs,
    )


def _pair(*rows: Any) -> html.Div:
    return html.Div(list(rows), className="form-inline form-pair")


def generate_form(flows: dict[str, dict[str, Any]], defaults: dict[str, Any]) -> list[Any]:
    flow_name = DEFAULT_FLOW if DEFAULT_FLOW in flows else next(iter(flows), None)
    choices = flow_choices(flows.get(flow_name))
    # A server whose API has no choice of scheme solves with RK4–CN: shown, not editable.
    schemes = defaults.get("schemes") or ["rk4cn"]
    return [
        form_row(
            "Flow",
            _dropdown(
                "data-flow",
                [
                    {"label": name, "value": name, "title": f["description"]}
                    for name, f in flows.items()
                ],
                flow_name,
            ),
            html.Span(choices["description"], id="data-flow-description"),
        ),
        _pair(
            form_row("Viscosity ν", _dropdown("data-nu", choices["nu"], choices["nu_value"])),
            form_row("Initial condition", _dropdown("data-ic", choices["ic"], choices["ic_value"])),
        ),
        html.Small(
            ic_description(flows.get(flow_name), choices["ic_value"]),
            id="data-ic-description",
            className="form-help form-help-block",
        ),
        form_row(
            "Time stepper",
            _dropdown(
                "data-scheme",
                [{"label": SCHEME_LABELS.get(s, s), "value": s} for s in schemes],
                defaults.get("scheme") or schemes[0],
                disabled=not defaults.get("schemes"),
            ),
        ),
        html.H3("Size", className="form-section"),
        _pair(
            form_row("Trajectories N", number_input("data-n", defaults["n_trajectories"], step=1)),
            form_row("Snapshots T", number_input("data-t", defaults["n_snapshots"], step=1)),
        ),
        _pair(
            form_row(
                "Resolution",
                number_input("data-resolution", defaults["resolution"], step=2),
                "Points per side of the saved fields.",
            ),
            form_row(
                "Solver resolution",
                number_input("data-solver-resolution", None, step=2, placeholder="same"),
                "Optional: a finer grid to solve on.",
            ),
        ),
        html.H3("Time", className="form-section"),
        _pair(
            form_row(
                "Interval Δt",
                number_input("data-interval", defaults["interval"], step="any"),
                "Time between snapshots.",
            ),
            form_row(
                "Warm-up",
                number_input("data-warmup", defaults["warmup"], step="any"),
                "Time solved before the first snapshot.",
            ),
        ),
        html.H3("Run", className="form-section"),
        _pair(
            form_row(
                "Shard size",
                number_input("data-shard-size", defaults["shard_size"], step=1),
                "Trajectories per task.",
            ),
            form_row("Seed", number_input("data-seed", defaults["seed"], step=1)),
        ),
        form_row(
            "Name",
            dcc.Input(id="data-name", type="text", placeholder="optional", className="input"),
        ),
        html.Div(id="data-summary", className="form-summary"),
        html.Button("Start generation", id="data-generate", className="button button-primary"),
        html.Div(id="data-feedback"),
    ]


def layout(preview: str | None = None, trajectory: str | None = None, **_query: Any) -> html.Main:
    flows = _flows_by_name()
    defaults = training_options.generate_defaults()
    try:
        index = max(0, int(trajectory)) if trajectory is not None else 0
    except ValueError:
        index = 0
    return page(
        "Data",
        "Training data from the built-in reference solvers: N trajectories of T snapshots Δt "
        "apart, solved in shards across the workers and stored as HDF5 in the layout of The "
        "Well.",
        html.Div(
            [
                card("Generate a dataset", *generate_form(flows, defaults), className="setup-card"),
                html.Div(
                    [
                        card(
                            "Generation",
                            html.Div(id="data-jobs-feedback"),
                            html.Div(
                                html.P("Loading…", className="muted"),
                                id="data-jobs",
                                className="gen-jobs",
                            ),
                        ),
                        card(
                            "Datasets",
                            html.Div(
                                table(HEADERS, [empty_row(len(HEADERS), "Loading…")]),
                                id="data-table",
                                className="table-wrap",
                            ),
                            className="list-card",
                        ),
                    ],
                    className="side-column",
                ),
            ],
            className="grid-setup",
        ),
        card(
            None,
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Preview", className="card-title"),
                            html.Div(
                                "Choose Preview on a dataset to see one of its trajectories.",
                                id="data-preview-title",
                                className="preview-title-line",
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Label(
                                "Trajectory",
                                htmlFor="data-preview-trajectory",
                                className="form-label",
                            ),
                            dcc.Input(
                                id="data-preview-trajectory",
                                type="number",
                                value=index,
                                min=0,
                                step=1,
                                debounce=True,
                                className="input input-narrow",
                            ),
                            html.Small(id="data-preview-count", className="muted"),
                        ],
                        className="preview-controls",
                    ),
                ],
                className="preview-head",
            ),
            html.Div(id="data-preview-note", className="preview-note"),
            dcc.Loading(
                html.Div(id="data-preview", className="preview-body"),
                type="circle",
                color="#1f4e79",
                delay_show=300,
            ),
            id="data-preview-card",
            className="preview-card",
        ),
        card(
            None,
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Channel flow", className="card-title"),
                            html.Div(
                                "Statistics in wall units and slices of the velocity.",
                                id="data-channel-title",
                                className="preview-title-line",
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Label(
                                "Snapshot", htmlFor="data-channel-time", className="form-label"
                            ),
                            dcc.Input(
                                id="data-channel-time",
                                type="number",
                                value=None,
                                step=1,
                                placeholder="last",
                                debounce=True,
                                className="input input-narrow",
                            ),
                            html.Small(id="data-channel-count", className="muted"),
                        ],
                        id="data-channel-controls",
                        className="preview-controls hidden",
                    ),
                ],
                className="preview-head",
            ),
            CHANNEL.layout(),
            id="data-channel-card",
            className="preview-card channel-card hidden",
        ),
        dcc.Interval(id="data-refresh", interval=ACTIVE_MS),
        dcc.Store(id="data-table-key"),
        dcc.Store(id="data-preview-target", data={"id": preview} if preview else None),
        dcc.Store(id="data-preview-hook"),
        dcc.Store(id="data-preview-scroll"),
    )


# --- generation jobs --------------------------------------------------------------------


def job_detail(p: dict[str, Any]) -> str:
    parts = [
        str(p.get("flow")),
        f"{p.get('n_trajectories')} × {p.get('n_snapshots')} snapshots @ {p.get('resolution')}²",
    ]
    if p.get("nu") is not None:
        parts.append(f"ν = {fmt_nu(float(p['nu']))}")
    if p.get("initial_condition"):
        parts.append(str(p["initial_condition"]))
    return " · ".join(parts)


def _shards_text(job: dict[str, Any]) -> str:
    total = job.get("shards_total") or 0
    text = f"{job.get('shards_done', 0)}/{total} shards done" if total else job["message"] or ""
    if job.get("shards_failed"):
        text += f" · {job['shards_failed']} failed"
    if job["status"] == "finishing":
        text += " · joining shards"
    return text


def job_item(job: dict[str, Any], now: datetime) -> html.Div:
    status = job["status"]
    active = status in FINISHING
    duration = job_duration(job, now)
    if not duration and status == "queued":
        duration = "waiting for a worker"
    elif duration:
        duration = f"elapsed {duration}" if active else f"took {duration}"
    actions: list[Any] = []
    if active:
        actions.append(
            html.Button(
                "Cancel",
                id={"type": "data-cancel", "id": job["id"]},
                className="button button-small button-danger",
                n_clicks=0,
            )
        )
    elif status in ("failed", "cancelled"):
        actions.append(
            html.Button(
                "Retry failed shards" if status == "failed" else "Resume",
                id={"type": "data-retry", "id": job["id"]},
                className="button button-small button-primary",
                title="Rerun only the shards that did not finish; finished shards are kept.",
                n_clicks=0,
            )
        )
    elif status == "succeeded" and job["result"].get("dataset_id"):
        actions.append(
            html.Button(
                "Preview",
                id={
                    "type": "data-preview-open",
                    "id": job["result"]["dataset_id"],
                    "from": "jobs",
                },
                className="button button-small button-primary",
                n_clicks=0,
            )
        )
    if is_channel_flow((job.get("params") or {}).get("flow")):
        actions.insert(
            0,
            html.Button(
                "Statistics",
                id={"type": "data-channel-live", "id": job["id"]},
                className="button button-small",
                title="Follow this job's channel statistics (channel_stats events) below.",
                n_clicks=0,
            ),
        )
    pct = max(0.0, min(1.0, job["progress"])) * 100
    error = None
    if status == "failed" and job["error"]:
        error = html.Div(job["error"], className="gen-error", title=job["error"])
    return html.Div(
        [
            html.Div(
                [
                    status_badge(status),
                    html.Span(job_detail(job["params"]), className="gen-title"),
                    html.Code(job["id"][:8], title=job["id"], className="muted small"),
                    html.Div(actions, className="row-actions gen-actions"),
                ],
                className="gen-head",
            ),
            html.Div(
                [
                    progress_bar(job["progress"], status),
                    html.Span(f"{pct:.0f}%", className="progress-label"),
                ],
                className="progress-cell",
            ),
            html.Div(
                [
                    html.Span(_shards_text(job), className="gen-shards"),
                    html.Span(duration, className="muted") if duration else None,
                ],
                className="gen-meta",
            ),
            error,
        ],
        className=f"gen-job gen-{status}",
    )


def jobs_list(jobs: list[dict[str, Any]], now: datetime | None = None) -> Any:
    now = now or datetime.now(UTC)
    if not jobs:
        return html.P(
            "Nothing is generating. Start a dataset with the form; its progress shows here.",
            className="muted empty-note",
        )
    return [job_item(job, now) for job in jobs]


# --- the datasets table -------------------------------------------------------------------


# Headers are shown in capitals: no symbols that change meaning there (ν, Δt, n).
HEADERS = ["Name", "Flow", "Viscosity", "N × T", "Grid", "Interval", "Job", "Created", ""]


def datasets_table(rows: list[dict[str, Any]], now: datetime | None = None) -> html.Table:
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
                html.Td(
                    fmt_nu(float(d["params"]["nu"])) if d["params"].get("nu") else "—",
                    className="num",
                ),
                html.Td(
                    f"{d['shape'][0]} × {d['shape'][1]}" if len(d["shape"]) in (4, 6) else "—",
                    className="num",
                    title=f"{fmt_shape(d['shape'])} ("
                    + (
                        "trajectories × snapshots × nx × ny × nz × components)"
                        if len(d["shape"]) == 6
                        else "trajectories × snapshots × ny × nx)"
                    ),
                ),
                html.Td(
                    f"{d['shape'][-1]}²"
                    if len(d["shape"]) == 4
                    else fmt_shape(d["shape"][2:5] if len(d["shape"]) == 6 else d["shape"]),
                    className="num",
                ),
                html.Td(f"{d['params'].get('interval', '—')}", className="num"),
                html.Td(status_badge(d["job_status"]) if d["job_status"] else "—"),
                html.Td(fmt_time(d["created_at"], now), title=d["created_at"] or ""),
                html.Td(
                    html.Div(
                        [
                            html.Button(
                                "Preview",
                                id={"type": "data-preview-open", "id": d["id"], "from": "table"},
                                className="button button-small",
                                n_clicks=0,
                            ),
                            dcc.Link(
                                "Train on it →",
                                href=f"/train?dataset={d['id']}",
                                className="button button-small button-primary",
                            ),
                        ],
                        className="row-actions",
                    )
                ),
            ],
            id={"type": "data-row", "id": d["id"]},
        )
        for d in rows
    ] or [empty_row(len(HEADERS), "No datasets yet. Generate one with the form.")]
    return table(HEADERS, body, className="datasets-table")


def _table_key(rows: list[dict[str, Any]]) -> list[Any]:
    # The table is redrawn only when this changes (not each second): a stable table keeps
    # its buttons under the pointer.
    today = datetime.now(UTC).date().isoformat()
    return [today, *[[d["id"], d["job_status"]] for d in rows]]


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
    new_key = _table_key(datasets)
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


@callback(
    Output("data-nu", "options"),
    Output("data-nu", "value"),
    Output("data-ic", "options"),
    Output("data-ic", "value"),
    Output("data-flow-description", "children"),
    Input("data-flow", "value"),
    prevent_initial_call=True,
)
async def choose_flow(flow_name: str | None):
    flows = await asyncio.to_thread(_flows_by_name)
    c = flow_choices(flows.get(flow_name or ""))
    return c["nu"], c["nu_value"], c["ic"], c["ic_value"], c["description"]


@callback(
    Output("data-ic-description", "children"),
    Input("data-ic", "value"),
    State("data-flow", "value"),
    prevent_initial_call=True,
)
async def choose_ic(family: str | None, flow_name: str | None):
    flows = await asyncio.to_thread(_flows_by_name)
    return ic_description(flows.get(flow_name or ""), family)


# A line under the form: what the request amounts to (shards, size on disk), as typed.
dash.clientside_callback(
    """
    function(n, t, res, shard) {
        const ok = [n, t, res].every(v => typeof v === 'number' && v > 0);
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
)


def generate_request(
    flows: dict[str, dict[str, Any]],
    flow: str | None,
    nu: float | None,
    ic: str | None,
    scheme: str | None,
    values: dict[str, Any],
    name: str | None,
) -> dict[str, Any]:
    """The generate job's parameters from the form. The flow's default viscosity and its
    default initial condition are sent as None (the job then uses the flow's own); empty
    optional boxes are left out (the API's defaults apply)."""
    raw: dict[str, Any] = {"flow": flow}
    info = flows.get(flow or "")
    if nu is not None and (info is None or float(nu) != info["nu"]):
        raw["nu"] = float(nu)
    if ic not in (None, DEFAULT_IC):
        raw["initial_condition"] = ic
    if scheme:
        raw["scheme"] = scheme
    for key, value in values.items():
        if value not in (None, ""):
            raw[key] = value
    if name and name.strip():
        raw["name"] = name.strip()
    return raw


REQUIRED = {
    "n_trajectories": "the number of trajectories N",
    "n_snapshots": "the number of snapshots T",
    "resolution": "the resolution",
    "interval": "the interval Δt",
}


@callback(
    Output("data-feedback", "children"),
    Output("data-refresh", "interval", allow_duplicate=True),
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
    missing = [label for key, label in REQUIRED.items() if values[key] in (None, "")]
    if missing:
        return alert(
            f"Fill in {', '.join(missing)} (a number).", "error", id="data-feedback-error"
        ), no_update
    flows = await asyncio.to_thread(_flows_by_name)
    schemes = (await asyncio.to_thread(training_options.generate_defaults))["schemes"]
    raw = generate_request(flows, flow, nu, ic, scheme if schemes else None, values, name)
    try:
        job = await asyncio.to_thread(jobs_view.submit_job, get_state(), "generate", raw)
    except jobs_view.InvalidParams as exc:
        return alert(str(exc), "error", id="data-feedback-error"), no_update
    shards = math.ceil(job["params"]["n_trajectories"] / job["params"]["shard_size"])
    return alert(
        [
            html.Strong("Started. "),
            f"Job {job['id'][:8]} solves {job['params']['n_trajectories']} trajectories in "
            f"{shards} shard{'s' if shards != 1 else ''}; follow it under Generation.",
        ],
        "success",
        id="data-feedback-ok",
    ), ACTIVE_MS


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


def preview_note(p: dict[str, Any]) -> list[Any]:
    """What the preview shows of the trajectory, in words (thinning included)."""
    shown, total = len(p["frame_snapshots"]), p["n_snapshots"]
    n, stride = p["resolution"], p["stride"]
    frames = (
        f"all {total} snapshots"
        if shown == total
        else f"{shown} of {total} snapshots, evenly spaced (first and last included)"
    )
    if stride == 1:
        grid = f"shown at the full {n}²"
    elif n % stride == 0:
        grid = f"shown at {n // stride}² ({stride}×{stride} block means of {n}²)"
    else:
        grid = f"shown at {math.ceil(n / stride)}² (every {stride}-th point of {n}²)"
    series = len(p["series_snapshots"])
    curves = (
        "energy and enstrophy over every snapshot"
        if series == total
        else f"energy and enstrophy over {series} of {total} snapshots"
    )
    return [
        html.Span(f"Animation: {frames}; {grid}. "),
        html.Span(
            f"One colour range for the whole trajectory, ±{p['limit']:.3g} (its largest |ω|). "
        ),
        html.Span(f"Spectra at full resolution; {curves}."),
    ]


def _channel_clear(source: dict[str, Any] | None) -> Any:
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
    keep = _channel_clear(channel_source)
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
                dcc.Graph(
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
                    dcc.Graph(
                        id="data-preview-spectrum",
                        figure=spectrum,
                        config=CHART_GRAPH,
                        className="graph-preview-spectrum",
                    ),
                    html.H3("Energy and enstrophy", className="form-section"),
                    dcc.Graph(
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


# --- channel flow: the panel's card, live generate jobs ----------------------------------


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
