"""The Compare page's channel mode (issue 12 item 3; payloads in
``docs/channel_compare_contract.md``).

When the chosen initial condition (or dataset) is a channel flow, the models picker offers
the 3D channel models of that flow and a "Baselines" checklist (coarse DNS, Smagorinsky,
WALE, dynamic Smagorinsky) appears; its choice goes into the job's ``baselines``. Once the
job's ``compare_setup`` says ``"geometry": "channel"``, the 2D grid and overlays give way to:

- U⁺ against y⁺ of the reference and every column, and their u′⁺, v′⁺, w′⁺ and −u′v′⁺, from
  each source's newest ``channel_stats`` event (the page's poll keeps them in the
  ``compare-ch-stats`` store), running or windowed;
- slices of one component, one panel per source, at the frame slider's step (frames from
  ``rollouts.comparison_frames``, sources ``reference`` and the column keys);
- each column's status and its relative L2 curve (from the ``metrics`` events, which the
  page's poll keeps in the ``compare-series`` store in the channel shape below);
- the summary table (statistics errors, ms per step, speedup over each closure).

Pure helpers (the catalog's channel entries, the series store) come first; tests call them
without a browser. Figures are ``app.ui.channel_compare_figures``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dash import Input, Output, Patch, State, callback, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog as catalog_service
from app.services import rollouts
from app.services.flows import is_channel_flow, is_hit3d_flow
from app.services.jobs_view import grid_label
from app.ui import channel_compare_figures as ccf
from app.ui.components import card, fmt_count, graph, png_config
from app.ui.context import get_state
from app.ui.figures import FONT, empty_figure
from app.ui.pages.compare.helpers import (
    BADGE_CLASSES,
    models_of_flow,
    source_flow,
    velocity_models,
)

CHANNEL = "channel"
COLUMN_METRICS = ("rel_l2", "energy", "bulk", "ms")
BASELINE_OPTIONS = [
    {"label": " coarse DNS (none)", "value": "none"},
    {"label": " Smagorinsky", "value": "smagorinsky"},
    {"label": " WALE", "value": "wale"},
    {"label": " dynamic Smagorinsky", "value": "dynamic"},
]
HIDDEN = " hidden"


# --- pure helpers ------------------------------------------------------------------------------


def is_channel_setup(setup: dict[str, Any] | None) -> bool:
    return bool(setup) and setup.get("geometry") == CHANNEL


def is_channel_summary(summary: dict[str, Any] | None) -> bool:
    return bool(summary) and summary.get("geometry") == CHANNEL


def channel_entries(
    ics: list[dict[str, Any]],
    datasets: list[dict[str, Any]],
    models: list[dict[str, Any]],
    contracts: dict[str, Any],
) -> dict[str, list[dict[str, Any]]]:
    """The catalog's channel entries: snapshots (3, nx, ny, nz) of a channel flow, finished
    channel datasets (n, t, nx, ny, nz, 3) with ``n_trajectories``, and the 3D models with 3
    channels trained on a channel flow (``contracts``: model id → its contract), each with
    ``grid_label``: its training data's nx×ny×nz."""
    out_ics = [i for i in ics if is_channel_flow(i.get("flow")) and len(i.get("shape") or []) == 4]
    out_datasets = [
        {**d, "n_trajectories": int(d["shape"][0])}
        for d in datasets
        if is_channel_flow(d.get("flow"))
        and len(d.get("shape") or []) == 6
        and d.get("job_status") in (None, "succeeded")
    ]
    out_models = velocity_models(models, contracts, datasets, is_channel_flow, held_out=True)
    return {"initial_conditions": out_ics, "datasets": out_datasets, "models": out_models}


def load_channel_catalog(state: Any) -> dict[str, list[dict[str, Any]]]:
    """``channel_entries`` of everything stored (through the catalog service)."""
    models, contracts = models_of_flow(state, is_channel_flow)
    return channel_entries(
        catalog_service.list_initial_conditions(state),
        catalog_service.list_datasets(state),
        models,
        contracts,
    )


def merge_catalog(catalog: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    """The Compare page's catalog with the channel entries added (ids not yet listed)."""
    out = dict(catalog)
    for name in ("initial_conditions", "datasets", "models"):
        seen = {e["id"] for e in catalog.get(name) or []}
        out[name] = list(catalog.get(name) or []) + [
            e for e in channel.get(name) or [] if e["id"] not in seen
        ]
    return out


def empty_series() -> dict[str, Any]:
    return {
        "geometry": CHANNEL,
        "t": [],
        "step": [],
        "reference": {"energy": [], "bulk": []},
        "columns": {},
        "status": {},
        "latest": None,
    }


def series_values(metrics: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    """What channel ``metrics`` events add to each list of the series store."""
    return {
        "t": [m.get("t") for m in metrics],
        "step": [m.get("step") for m in metrics],
        "reference": {
            name: [(m.get("reference") or {}).get(name) for m in metrics]
            for name in ("energy", "bulk")
        },
        "columns": {
            key: {
                name: [((m.get("columns") or {}).get(key) or {}).get(name) for m in metrics]
                for name in COLUMN_METRICS
            }
            for key in keys
        },
    }


def status_after(
    status: dict[str, dict[str, Any]], metrics: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each column's status after ``metrics``: running, or how and at which step it stopped
    (kept from the first event that reported it)."""
    status = {k: dict(v) for k, v in (status or {}).items()}
    for m in metrics:
        for key, values in (m.get("columns") or {}).items():
            now = (values or {}).get("status") or "running"
            if (status.get(key) or {}).get("status") in ("diverged", "failed"):
                continue
            entry: dict[str, Any] = {"status": now, "message": (values or {}).get("message")}
            if now != "running":
                entry["step"] = m.get("step")
            status[key] = entry
    return status


def series_from(setup: dict[str, Any] | None, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """A fresh channel series store from the setup's columns and ``metrics`` events."""
    series = empty_series()
    keys = [str(c["key"]) for c in (setup or {}).get("columns") or []]
    for column in (setup or {}).get("columns") or []:
        series["status"][str(column["key"])] = {
            "status": column.get("status") or "running",
            "message": column.get("message"),
        }
    series["columns"] = {k: {name: [] for name in COLUMN_METRICS} for k in keys}
    if metrics:
        values = series_values(metrics, keys)
        series["t"], series["step"] = values["t"], values["step"]
        series["reference"] = values["reference"]
        series["columns"] = values["columns"]
        series["status"] = status_after(series["status"], metrics)
        series["latest"] = metrics[-1]
    return series


def series_patch(series: dict[str, Any] | None, metrics: list[dict[str, Any]]) -> Patch:
    """A Patch appending channel ``metrics`` events to the series store."""
    keys = list((series or {}).get("columns") or {})
    values = series_values(metrics, keys)
    patch = Patch()
    for name in ("t", "step"):
        patch[name].extend(values[name])
    for name in ("energy", "bulk"):
        patch["reference"][name].extend(values["reference"][name])
    for key in keys:
        for name in COLUMN_METRICS:
            patch["columns"][key][name].extend(values["columns"][key][name])
    patch["status"] = status_after((series or {}).get("status") or {}, metrics)
    patch["latest"] = metrics[-1]
    return patch


def stats_update(
    held: dict[str, Any] | None, events: list[dict[str, Any]], reset: bool
) -> dict[str, Any] | Any:
    """The statistics store after ``events`` (a poll's): each source's newest
    ``channel_stats`` payload (``{"step", "t", "running", "window", "seq"}``); the store
    starts again on ``reset``. ``no_update`` when nothing changed."""
    found = {}
    for event in events:
        if event.get("type") == "channel_stats" and event.get("source"):
            found[str(event["source"])] = {
                k: event.get(k) for k in ("step", "t", "running", "window", "seq")
            }
    if not found and not reset:
        return no_update
    sources = {} if reset else dict((held or {}).get("sources") or {})
    sources.update(found)
    return {"sources": sources}


def channel_params(params: dict[str, Any], baselines: list[str] | None, window: Any) -> dict:
    """The job's parameters with the channel ones: ``baselines`` (in the checklist's order)
    and ``window`` when given."""
    order = [o["value"] for o in BASELINE_OPTIONS]
    out = dict(params)
    out["baselines"] = [b for b in order if b in (baselines or [])]
    if window not in (None, ""):
        out["window"] = int(window)
    return out


def run_details(run: dict[str, Any], setup: dict[str, Any] | None) -> list[Any]:
    setup = setup or {}
    ic = setup.get("initial_condition") or {}
    reference = setup.get("reference") or {}
    origin = None
    if ic:
        origin = {"upload": "uploaded snapshot", "dataset": "dataset frame"}.get(
            ic.get("source"), ic.get("source")
        )
        if ic.get("id"):
            origin = f"{origin} {str(ic['id'])[:8]}"
        if ic.get("upsampled"):
            origin += " (coarse: upsampled for the reference)"
    rows = [
        ("Job", run.get("job_id")),
        ("Rollout", run.get("rollout_id")),
        ("Flow", setup.get("flow") or run.get("flow")),
        ("Start", origin),
        ("Grid", grid_label(setup["grid"]) if setup.get("grid") else None),
        (
            "Reference",
            " · ".join(
                p
                for p in (
                    grid_label(reference["grid"]) if reference.get("grid") else None,
                    ccf.closure_label(reference.get("closure"))
                    if reference.get("closure")
                    else None,
                    reference.get("filter"),
                )
                if p
            )
            or None,
        ),
        ("Re_τ", f"{setup['re_tau']:g}" if setup.get("re_tau") else None),
        ("Δt", f"{setup['interval']:g}" if setup.get("interval") else None),
        ("ν", f"{setup['nu']:.3g}" if setup.get("nu") else None),
        ("Window", f"{setup['window']} steps" if setup.get("window") else None),
    ]
    return [
        html.Dl(
            [el for label, value in rows if value for el in (html.Dt(label), html.Dd(value))],
            className="details",
        )
    ]


def mkm_marks(setup: dict[str, Any] | None) -> bool:
    """MKM 1999's marks are for Re_τ ≈ 180: shown unless the setup says another Re_τ."""
    re_tau = (setup or {}).get("re_tau")
    return re_tau is None or abs(float(re_tau) - 180.0) <= 30.0


def status_items(
    sources: list[dict[str, Any]], states: dict[str, dict[str, Any]], series: dict | None
) -> list[Any]:
    """One line per column: swatch, label, kind · parameters, the status badge ("diverged at
    step k") and its latest relative L2 and ms per step."""
    columns = (series or {}).get("columns") or {}
    items = []
    for source in sources:
        key = source["key"]
        state = states.get(key) or {"status": "running", "text": "running"}
        values = columns.get(key) or {}
        rel = [v for v in values.get("rel_l2") or [] if v is not None]
        ms = [v for v in values.get("ms") or [] if v is not None]
        meta = []
        if source["kind"] == "model":
            meta += [source.get("arch"), source.get("precision")]
            if source.get("parameters"):
                meta.append(f"{fmt_count(source['parameters'])} params")
        elif source["kind"] == "closure":
            meta.append("LES on the coarse grid")
        else:
            meta.append("fine solver, filtered")
        numbers = []
        if rel:
            numbers.append(f"rel. L2 {rel[-1]:.3g}")
        if ms:
            numbers.append(f"{ms[-1]:.3g} ms/step")
        badge = html.Span(
            state["text"],
            className=BADGE_CLASSES.get(state["status"], "badge badge-unknown"),
            id=f"compare-ch-badge-{key.replace(':', '-')}",
        )
        items.append(
            html.Li(
                [
                    html.Span(className="compare-swatch", style={"background": source["color"]}),
                    html.Strong(source["label"], className="compare-col-name"),
                    " ",
                    html.Span(" · ".join(m for m in meta if m), className="muted small"),
                    " ",
                    badge,
                    " ",
                    html.Span(" · ".join(numbers), className="muted small"),
                    html.Div(state["message"], className="error-text small")
                    if state.get("message") and state["status"] in ("failed", "diverged")
                    else None,
                ],
                className="compare-ch-status-item",
                id=f"compare-ch-status-{key.replace(':', '-')}",
                title=state.get("message") or state["text"],
            )
        )
    return [html.Ul(items, className="compare-ch-status-list")]


# --- layout pieces -------------------------------------------------------------------------------


def setup_rows() -> html.Div:
    """The set-up card's channel rows, hidden until a channel flow is chosen."""
    return html.Div(
        [
            html.Label("Baselines", className="form-label", htmlFor="compare-baselines"),
            dcc.Checklist(
                id="compare-baselines",
                options=BASELINE_OPTIONS,
                value=[],
                inline=True,
                className="compare-check",
            ),
            html.Small(
                "Each closure runs the channel solver on the models' coarse grid from the "
                "same filtered initial condition, beside the reference (the fine solver, "
                "filtered).",
                className="form-help",
            ),
            html.Label("Statistics window (steps)", className="form-label"),
            dcc.Input(
                id="compare-window",
                type="number",
                min=1,
                step=1,
                placeholder="a quarter of the horizon",
                className="input",
            ),
        ],
        id="compare-baselines-row",
        className="form-row" + HIDDEN,
    )


def slices_panel() -> html.Div:
    """The channel slices (in the fields card, above its frame player)."""
    return html.Div(
        [
            html.Div(
                [
                    dcc.Dropdown(
                        id="compare-ch-component",
                        options=[
                            {"label": "u (streamwise)", "value": "u"},
                            {"label": "v (wall-normal)", "value": "v"},
                            {"label": "w (spanwise)", "value": "w"},
                            {"label": "|u|", "value": "magnitude"},
                        ],
                        value="u",
                        clearable=False,
                        className="dropdown",
                    ),
                    dcc.RadioItems(
                        id="compare-ch-plane",
                        options=[
                            {"label": " x–y", "value": "xy"},
                            {"label": " x–z (near the wall)", "value": "xz"},
                            {"label": " y–z", "value": "yz"},
                        ],
                        value="xy",
                        inline=True,
                    ),
                ],
                className="form-inline",
            ),
            graph(
                id="compare-ch-slices",
                figure=empty_figure("The slices appear here when the comparison starts."),
                config=png_config("eddyscope-compare-slices"),
                className="graph graph-tall",
            ),
        ],
        id="compare-ch-slices-wrap",
        className="compare-ch-slices" + HIDDEN,
    )


def _graph(graph_id: str, message: str, tall: bool = False) -> Any:
    return graph(
        id=graph_id,
        figure=empty_figure(message),
        config=png_config(graph_id.replace("compare-", "eddyscope-compare-")),
        className="graph graph-tall" if tall else "graph",
    )


def stores() -> list[Any]:
    """The channel stores every Compare page carries, with or without the channel views:
    the polling callback reads the statistics store."""
    return [dcc.Store(id="compare-ch-stats", data={"sources": {}})]


def results() -> html.Div:
    """The channel statistics, columns and summary cards, hidden until channel mode."""
    return html.Div(
        [
            dcc.Store(id="compare-ch-shown", data=None),
            card(
                "Statistics",
                dcc.RadioItems(
                    id="compare-ch-which",
                    options=[
                        {"label": " running (every frame so far)", "value": ccf.RUNNING},
                        {"label": " windowed (the last window)", "value": ccf.WINDOW},
                    ],
                    value=ccf.RUNNING,
                    inline=True,
                ),
                _graph("compare-ch-mean", "The U⁺ profiles appear here.", tall=True),
                graph(
                    id="compare-ch-rms",
                    figure=empty_figure("The rms and shear-stress profiles appear here."),
                    config=png_config("eddyscope-compare-ch-rms"),
                    className="graph",
                    style={"height": "600px"},
                ),
            ),
            card(
                "Columns",
                html.Div(id="compare-ch-status"),
                _graph("compare-ch-error", "The error growth appears here."),
            ),
            card(
                "Summary",
                html.P(
                    "The summary appears when the comparison ends: each column's status, the "
                    "relative error of its U⁺, u′rms, v′rms, w′rms and −u′v′ profiles against "
                    "the reference's (running statistics and the last window), its median ms "
                    "per step and its speedup over each closure. Click a header to sort.",
                    id="compare-ch-summary-note",
                    className="muted small",
                ),
                dash_table.DataTable(
                    id="compare-ch-table",
                    columns=[],
                    data=[],
                    sort_action="native",
                    sort_mode="single",
                    merge_duplicate_headers=True,
                    style_as_list_view=True,
                    style_table={"overflowX": "auto"},
                    style_cell={
                        "fontFamily": FONT,
                        "fontSize": "13px",
                        "padding": "6px 10px",
                        "textAlign": "right",
                        "whiteSpace": "nowrap",
                    },
                    style_header={
                        "fontWeight": 600,
                        "backgroundColor": "#f8fafc",
                        "fontFamily": FONT,
                        "textAlign": "center",
                    },
                    style_cell_conditional=[
                        {"if": {"column_id": c}, "textAlign": "left"} for c in ("column", "status")
                    ],
                ),
                id="compare-ch-summary-card",
            ),
        ],
        id="compare-channel-results",
        className="compare-channel" + HIDDEN,
    )


# --- callbacks -----------------------------------------------------------------------------------


def _flow_is_channel(catalog, source, ic, dataset) -> bool:
    return bool(catalog) and is_channel_flow(source_flow(catalog, source, ic, dataset))


def _mode(catalog, source, ic, dataset, setup) -> tuple[bool, bool]:
    """(channel, hit3d): what the run's setup says, else what the chosen start's flow is."""
    channel = is_channel_setup(setup) if setup else _flow_is_channel(catalog, source, ic, dataset)
    box = (setup or {}).get("geometry") == "hit3d" or (
        not setup and bool(catalog) and is_hit3d_flow(source_flow(catalog, source, ic, dataset))
    )
    return channel, box


MODE_INPUTS = [
    Input("compare-catalog", "data"),
    Input("compare-source", "value"),
    Input("compare-ic", "value"),
    Input("compare-dataset", "value"),
    Input("compare-setup", "data"),
]


@callback(
    Output("compare-baselines-row", "className"),
    Output("compare-grid", "className"),
    Output("compare-overlays", "className"),
    Output("compare-summary-card", "className"),
    *MODE_INPUTS,
)
def toggle_mode(catalog, source, ic, dataset, setup):
    """Channel mode when the run's setup says so, else when the chosen start is a channel
    flow: the baselines row shows, the 2D grid and overlays hide (a hit3d comparison hides
    them too; its panels: ``compare.hit3d``)."""
    channel, box = _mode(catalog, source, ic, dataset, setup)
    on, off = "", HIDDEN
    return (
        "form-row" + (on if channel else off),
        "compare-grid" + (off if channel or box else on),
        "grid-2 compare-overlays" + (off if channel or box else on),
        "card" + (off if channel or box else on),
    )


# A callback of its own: the page of a followed 2D comparison leaves the channel views out
# (``layout.flow_panels``), and the renderer then skips this one whole, where a callback
# with only some of its outputs on the page would be sent with a short output list.
@callback(
    Output("compare-channel-results", "className"),
    Output("compare-ch-slices-wrap", "className"),
    *MODE_INPUTS,
)
def toggle_views(catalog, source, ic, dataset, setup):
    """The channel views show in channel mode."""
    channel, _box = _mode(catalog, source, ic, dataset, setup)
    suffix = "" if channel else HIDDEN
    return "compare-channel" + suffix, "compare-ch-slices" + suffix


@callback(
    Output("compare-ch-mean", "figure"),
    Output("compare-ch-rms", "figure"),
    Input("compare-ch-stats", "data"),
    Input("compare-ch-which", "value"),
    State("compare-setup", "data"),
    State("compare-run", "data"),
    prevent_initial_call=True,
)
def statistics_figures(held, which, setup, run):
    if not is_channel_setup(setup):
        raise PreventUpdate
    sources = ccf.sources_of(setup)
    stats = (held or {}).get("sources") or {}
    revision = (run or {}).get("rollout_id") or (run or {}).get("job_id")
    marks = mkm_marks(setup)
    return (
        ccf.mean_overlay_figure(sources, stats, which=which, marks=marks, uirevision=revision),
        ccf.rms_overlay_figure(sources, stats, which=which, marks=marks, uirevision=revision),
    )


@callback(
    Output("compare-ch-status", "children"),
    Output("compare-ch-error", "figure"),
    Input("compare-ch-tick", "data"),
    Input("compare-summary", "data"),
    State("compare-series", "data"),
    State("compare-setup", "data"),
    State("compare-run", "data"),
    prevent_initial_call=True,
)
def columns_view(_tick, summary, series, setup, run):
    if not is_channel_setup(setup) or (series or {}).get("geometry") != CHANNEL:
        raise PreventUpdate
    run = run or {}
    sources = ccf.sources_of(setup)
    states = ccf.column_states(
        sources,
        series.get("status"),
        summary if is_channel_summary(summary) else None,
        run.get("status"),
    )
    revision = run.get("rollout_id") or run.get("job_id")
    return (
        status_items(sources, states, series),
        ccf.error_figure(sources, series, states, uirevision=revision),
    )


@callback(
    Output("compare-ch-slices", "figure"),
    Output("compare-ch-shown", "data"),
    Input("compare-ch-tick", "data"),
    Input("compare-slider", "value"),
    Input("compare-ch-component", "value"),
    Input("compare-ch-plane", "value"),
    State("compare-series", "data"),
    State("compare-setup", "data"),
    State("compare-run", "data"),
    State("compare-ch-stats", "data"),
    State("compare-ch-shown", "data"),
    State("compare-summary", "data"),
    prevent_initial_call=True,
)
async def slices(_tick, slider, component, plane, series, setup, run, held, shown, summary):
    """The shown step's frame of every source, side by side (read again only when the step,
    the component or the plane changes)."""
    if not is_channel_setup(setup) or (series or {}).get("geometry") != CHANNEL:
        raise PreventUpdate
    run = run or {}
    steps = series.get("step") or []
    if not steps or not run.get("rollout_id"):
        raise PreventUpdate
    step = steps[slider] if slider is not None and 0 <= slider < len(steps) else steps[-1]
    wanted = {"step": step, "component": component, "plane": plane, "run": run["rollout_id"]}
    if wanted == shown:
        raise PreventUpdate
    sources = ccf.sources_of(setup)
    keys = [s["key"] for s in sources]
    frames, _t = await asyncio.to_thread(
        rollouts.comparison_frames, get_state(), run["rollout_id"], int(step), keys
    )
    stats = (held or {}).get("sources") or {}
    ref = (
        (stats.get(ccf.REFERENCE) or {}).get("running")
        or next((s.get("running") for s in stats.values() if s.get("running")), None)
        or {}
    )
    grid = setup.get("grid") or [None, None, None]
    y = ccf.full_y(ref.get("y"), int(grid[1] or 0)) if grid[1] else []
    states = ccf.column_states(
        sources,
        series.get("status"),
        summary if is_channel_summary(summary) else None,
        run.get("status"),
    )
    notes = {}
    for key, state in states.items():
        if state["status"] in ("diverged", "failed"):
            notes[key] = state["text"]
    fig = ccf.slices_figure(
        sources,
        frames,
        y,
        lx=float(ref.get("lx") or 4 * 3.141592653589793),
        lz=float(ref.get("lz") or 4 * 3.141592653589793 / 3),
        plane=plane or "xy",
        component=component or "u",
        notes=notes,
        step=step,
        uirevision=run["rollout_id"],
    )
    if all(frames.get(k) is None for k in keys):
        return fig, no_update  # not written yet: read again next time
    return fig, wanted


@callback(
    Output("compare-ch-table", "columns"),
    Output("compare-ch-table", "data"),
    Output("compare-ch-table", "style_data_conditional"),
    Input("compare-summary", "data"),
    State("compare-setup", "data"),
    prevent_initial_call=True,
)
def summary_table(summary, setup):
    if not is_channel_summary(summary):
        raise PreventUpdate
    sources = ccf.sources_of(setup)
    table = ccf.summary_table(summary, sources)
    colours = {s["key"]: s["color"] for s in sources}
    styles = [
        {
            "if": {"filter_query": f'{{key}} = "{key}"', "column_id": "column"},
            "color": colour,
            "fontWeight": 600,
        }
        for key, colour in colours.items()
    ]
    styles += [
        {
            "if": {"filter_query": '{status} contains "diverged"', "column_id": "status"},
            "color": "#b45309",
            "fontWeight": 600,
        },
        {
            "if": {"filter_query": '{status} contains "failed"', "column_id": "status"},
            "color": "#b91c1c",
            "fontWeight": 600,
        },
    ]
    return table["columns"], table["data"], styles
