"""The Data page's homogeneous-isotropic-turbulence (hit3d) parts: the generate form's hit3d
parameters and the request they make, and the HIT card (``app.ui.hit3d_panels``) that shows
a hit3d dataset's snapshot or follows a hit3d generate job live.

The card's source (the store ``data-hit3d-source``) is ``{"kind": "dataset", "id",
"trajectory", "time"}`` (set by Preview on a hit3d dataset) or ``{"kind": "job",
"job_id"}`` (a job started from the form, its Statistics button, or the newest active
hit3d job when the card shows nothing). A job is polled every second while it runs; the
panels redraw when it reported a newer ``hit3d_stats`` event or stored a newer shard.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog, hit3d_views, jobs_view
from app.services.flows import is_hit3d_flow
from app.ui import hit3d_panels
from app.ui.components import alert, form_row, number_input
from app.ui.context import get_state
from app.ui.pages.datasets.helpers import DEFAULT_IC, flows_by_name, fmt_nu

PARAM = "data-hit3d-param"
SOURCE = "data-hit3d-source"
POLL_MS = 1000
FORCING_LABELS = {"none": "none (decaying)", "linear": "linear forcing (holds E)"}
CLOSURE_LABELS = {"none": "none (DNS)", "smagorinsky": "Smagorinsky", "dynamic": "dynamic"}
FILTER_LABELS = {"spectral": "spectral cut (default)", "box": "box (top-hat), then the cut"}
# The 2D form's defaults the resolution box goes back to when hit3d is left.
TWO_D_RESOLUTION = 64


def _param(name: str) -> dict[str, str]:
    return {"type": PARAM, "name": name}


def _dropdown(name: str, labels: dict[str, str], values: list[str]) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=_param(name),
        options=[{"label": labels.get(v, v), "value": v} for v in values],
        value=values[0] if values else None,
        clearable=False,
        searchable=False,
        className="dropdown",
    )


def _default(flow: dict[str, Any], key: str) -> str:
    """A box's placeholder: the flow's default value."""
    return f"{flow[key]:g}" if flow.get(key) is not None else ""


def hit3d_flow(flows: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The form's first hit3d flow, or None."""
    return next((f for f in flows.values() if f.get("hit3d")), None)


def hit3d_section(flows: dict[str, dict[str, Any]], shown: bool = False) -> html.Div:
    """The hit3d parameters (ν, the random field's k_p and u_rms, forcing, closure, the
    filter onto a coarser stored grid), shown while hit3d is chosen. The grid is the form's
    Resolution (stored n³) and Solver resolution boxes."""
    f = hit3d_flow(flows) or {}
    nu_help = (
        f"{f['nu_min']:g} to {f['nu_max']:g}; the default {f['nu']:g} resolves the decay from "
        f"the default spectrum on the default {f['default_n']}³ grid (k_max·η ≥ 1)."
        if f
        else None
    )
    return html.Div(
        [
            html.H3("Isotropic turbulence", className="form-section"),
            html.Div(
                [
                    form_row(
                        "Viscosity ν",
                        number_input(_param("nu"), f.get("nu"), step="any"),
                        nu_help,
                    ),
                    form_row(
                        "Forcing",
                        _dropdown("forcing", FORCING_LABELS, f.get("forcings") or ["none"]),
                    ),
                ],
                className="form-inline form-pair",
            ),
            html.Div(
                [
                    form_row(
                        "Spectrum peak k_p",
                        number_input(
                            _param("k_peak"),
                            None,
                            step="any",
                            placeholder=f"{f.get('k_peak', 2):g}",
                        ),
                        "Random field only: E(k) ~ k⁴ exp(−2(k/k_p)²).",
                    ),
                    form_row(
                        "u_rms",
                        number_input(
                            _param("u_rms"), None, step="any", placeholder=_default(f, "u_rms")
                        ),
                        "Random field only: the rms of one velocity component.",
                    ),
                ],
                className="form-inline form-pair",
            ),
            html.Div(
                [
                    form_row(
                        "LES closure",
                        _dropdown("closure", CLOSURE_LABELS, f.get("closures") or ["none"]),
                    ),
                    form_row(
                        "Filter to the stored grid",
                        _dropdown("filter", FILTER_LABELS, f.get("filters") or ["spectral"]),
                        "When the stored grid is coarser than the solver's.",
                    ),
                ],
                className="form-inline form-pair",
            ),
            form_row(
                "Box width",
                number_input(_param("filter_width"), None, step="any", placeholder="1"),
                "Box filter only: its width in stored-grid cells.",
            ),
        ],
        id="data-hit3d-params",
        className="hit3d-params" + ("" if shown else " hidden"),
    )


def hit3d_card() -> html.Section:
    """The HIT card: its title line, the snapshot control, and the panels."""
    return html.Section(
        [
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Isotropic turbulence", className="card-title"),
                            html.Div(
                                "Statistics, energy spectrum, vorticity PDF and midplane slices.",
                                id="data-hit3d-title",
                                className="preview-title-line",
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Label(
                                "Snapshot", htmlFor="data-hit3d-time", className="form-label"
                            ),
                            dcc.Input(
                                id="data-hit3d-time",
                                type="number",
                                value=None,
                                step=1,
                                placeholder="last",
                                debounce=True,
                                className="input input-narrow",
                            ),
                            html.Small(id="data-hit3d-count", className="muted"),
                        ],
                        id="data-hit3d-controls",
                        className="preview-controls hidden",
                    ),
                ],
                className="preview-head",
            ),
            dcc.Store(id=SOURCE),
            dcc.Store(id="data-hit3d-live"),
            dcc.Interval(id="data-hit3d-interval", interval=POLL_MS, disabled=True),
            hit3d_panels.panel_layout("data"),
        ],
        id="data-hit3d-card",
        className="card preview-card hit3d-card hidden",
    )


# --- the generate request -------------------------------------------------------------------


def hit3d_values(ids: list[dict[str, str]], values: list[Any]) -> dict[str, Any]:
    """The hit3d boxes' values by name, from the form's pattern-matched ids and values."""
    return {i["name"]: v for i, v in zip(ids or [], values or [], strict=False)}


def hit3d_request(
    flow: dict[str, Any],
    ic: str | None,
    scheme: str | None,
    values: dict[str, Any],
    hit: dict[str, Any],
    name: str | None,
) -> dict[str, Any]:
    """The generate job's parameters for hit3d: the size, time and run boxes and the stored
    grid (``resolution``) and solver grid as the 2D flows send them; ν when it is not the
    flow's; k_p and u_rms only when typed (the API refuses them for a family that is not
    random, with its own sentence); forcing, closure and filter only when not the default;
    the box width with the box filter only."""
    raw: dict[str, Any] = {"flow": flow["name"]}
    for key, value in values.items():
        if value not in (None, ""):
            raw[key] = value
    if ic not in (None, DEFAULT_IC):
        raw["initial_condition"] = ic
    if scheme:
        raw["scheme"] = scheme
    if hit.get("nu") not in (None, "") and float(hit["nu"]) != float(flow["nu"]):
        raw["nu"] = float(hit["nu"])
    for key in ("k_peak", "u_rms"):
        if hit.get(key) not in (None, ""):
            raw[key] = float(hit[key])
    for key in ("forcing", "closure"):
        if hit.get(key) not in (None, "", "none"):
            raw[key] = hit[key]
    if hit.get("filter") == "box":
        raw["filter"] = "box"
        if hit.get("filter_width") not in (None, ""):
            raw["filter_width"] = float(hit["filter_width"])
    if name and name.strip():
        raw["name"] = name.strip()
    return raw


# --- the preview card's pointer ---------------------------------------------------------------


def hit3d_pointer(layout: dict[str, Any], index: int) -> tuple[Any, Any, Any]:
    """The preview card's body, title and trajectory count for a hit3d dataset: the
    dataset is shown in the HIT card below."""
    d = layout["dataset"]
    n, n_traj, n_snap = layout["n"], layout["n_trajectories"], layout["n_snapshots"]
    body = html.P(
        f"A hit3d dataset on the {n}³ grid: trajectory {index} ({n_snap} snapshots) is shown "
        "under Isotropic turbulence below (statistics, energy spectrum, vorticity PDF, "
        "E(t) and ε(t), midplane slices).",
        className="muted empty-note",
        id="data-preview-hit3d",
    )
    params = d["params"]
    grid = f"{n}³"
    if layout.get("solver_resolution") and layout["solver_resolution"] != n:
        grid += f" (solver {layout['solver_resolution']}³)"
    facts = [
        d["flow"],
        f"ν = {fmt_nu(float(layout['nu']))}",
        f"Δt = {params.get('interval')}" if params.get("interval") is not None else None,
        grid,
    ]
    title = [
        html.Span(d["name"], className="strong"),
        html.Span(" · " + " · ".join(f for f in facts if f), className="muted"),
    ]
    return body, title, f"of {n_traj} (0–{n_traj - 1})"


def preview_outputs(state, dataset_id: str, index: int, keep: Any, hidden: str) -> tuple:
    """``show_preview``'s outputs for a hit3d dataset (the channel card left as ``keep``)."""
    try:
        layout = hit3d_views.hit3d_dataset_layout(state, dataset_id)
    except ValueError as exc:
        error = alert(str(exc), "error", id="data-preview-error")
        return error, no_update, None, no_update, keep, hidden, None
    if layout is None:
        error = alert(f"There is no dataset {dataset_id}.", "error", id="data-preview-error")
        return error, "No dataset chosen.", None, None, keep, hidden, None
    n_traj = layout["n_trajectories"]
    if not 0 <= index < n_traj:
        error = alert(
            f"Trajectory {index} is not in the dataset; it has {n_traj} (0–{n_traj - 1}).",
            "error",
            id="data-preview-error",
        )
        return error, no_update, None, no_update, keep, hidden, None
    body, title, count = hit3d_pointer(layout, index)
    return body, title, None, count, keep, hidden, None


# --- callbacks ---------------------------------------------------------------------------------


@callback(
    Output("data-hit3d-params", "className"),
    Output(_param("nu"), "value"),
    Output("data-resolution", "value", allow_duplicate=True),
    Input("data-flow", "value"),
    State("data-hit3d-params", "className"),
    prevent_initial_call=True,
)
async def choose_flow(flow_name: str | None, shown_class: str | None):
    """hit3d shows its parameters with the flow's ν and its default grid in the Resolution
    box; leaving hit3d puts the 2D default grid back."""
    flows = await asyncio.to_thread(flows_by_name)
    flow = flows.get(flow_name or "") or {}
    was_hit3d = "hidden" not in (shown_class or "hidden").split()
    if flow.get("hit3d"):
        return "hit3d-params", flow["nu"], flow["default_n"]
    return "hit3d-params hidden", no_update, TWO_D_RESOLUTION if was_hit3d else no_update


@callback(
    Output("data-hit3d-card", "className"),
    Output("data-hit3d-title", "children"),
    Input(SOURCE, "data"),
)
async def show_card(source: dict[str, Any] | None):
    if not source:
        return "card preview-card hit3d-card hidden", no_update
    if source.get("kind") == "job":
        title = f"Live statistics of generate job {str(source.get('job_id'))[:8]}."
    else:
        title = "Statistics, energy spectrum, vorticity PDF and midplane slices."
    return "card preview-card hit3d-card", title


@callback(
    Output(SOURCE, "data"),
    Output("data-hit3d-controls", "className"),
    Output("data-hit3d-count", "children"),
    Input("data-preview-target", "data"),
    Input("data-preview-trajectory", "value"),
    Input("data-hit3d-time", "value"),
    State(SOURCE, "data"),
)
async def preview_source(
    target: dict[str, Any] | None, index: int | None, time: int | None, source: dict | None
):
    """Preview on a hit3d dataset points the card at the chosen trajectory and snapshot;
    on another dataset a dataset shown here goes (a live job stays)."""
    dataset_id = (target or {}).get("id")
    found = (
        await asyncio.to_thread(catalog.get_dataset, get_state(), dataset_id)
        if dataset_id
        else None
    )
    if found is None or not is_hit3d_flow(found["flow"]) or index is None:
        if source and source.get("kind") == "dataset":
            return None, "preview-controls hidden", None
        raise PreventUpdate
    try:
        layout = await asyncio.to_thread(hit3d_views.hit3d_dataset_layout, get_state(), dataset_id)
    except ValueError:
        layout = None  # the preview card says why
    if layout is None or not 0 <= int(index) < layout["n_trajectories"]:
        return None, "preview-controls hidden", None
    n_snap = layout["n_snapshots"]
    shown = n_snap - 1 if time is None else int(time) % n_snap
    return (
        {"kind": "dataset", "id": dataset_id, "trajectory": int(index), "time": shown},
        "preview-controls",
        f"of {n_snap} (0–{n_snap - 1})",
    )


def _follow(job_id: str) -> tuple[dict[str, Any], str]:
    return {"kind": "job", "job_id": job_id}, "preview-controls hidden"


@callback(
    Output(SOURCE, "data", allow_duplicate=True),
    Output("data-hit3d-controls", "className", allow_duplicate=True),
    Input("data-started", "data"),
    prevent_initial_call=True,
)
async def follow_started(started: dict[str, Any] | None):
    """A hit3d job started from the form is followed in the card at once."""
    job_id = (started or {}).get("job_id")
    if not job_id:
        raise PreventUpdate
    job = await asyncio.to_thread(jobs_view.get_job, get_state(), job_id)
    if job is None or not is_hit3d_flow((job.get("params") or {}).get("flow")):
        raise PreventUpdate
    return _follow(job_id)


@callback(
    Output(SOURCE, "data", allow_duplicate=True),
    Output("data-hit3d-controls", "className", allow_duplicate=True),
    Input({"type": "data-hit3d-live", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def follow_job(_clicks: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    return _follow(trigger["id"])


@callback(
    Output(SOURCE, "data", allow_duplicate=True),
    Output("data-hit3d-controls", "className", allow_duplicate=True),
    Input("data-refresh", "n_intervals"),
    State(SOURCE, "data"),
    prevent_initial_call=True,
)
async def attach_live_job(_n: int | None, source: dict[str, Any] | None):
    """An active hit3d generate job is followed at once when the card shows nothing."""
    if source:
        raise PreventUpdate
    job_id = await asyncio.to_thread(hit3d_views.active_hit3d_job, get_state())
    if job_id is None:
        raise PreventUpdate
    return _follow(job_id)


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:]


@callback(
    *(
        Output(f"data-hit3d-{name}", "children" if name in ("summary", "note") else "figure")
        for name in hit3d_panels.OUTPUTS
    ),
    Output("data-hit3d-live", "data"),
    Output("data-hit3d-interval", "disabled"),
    Input(SOURCE, "data"),
    Input("data-hit3d-quantity", "value"),
    Input("data-hit3d-pdf-kind", "value"),
    Input("data-hit3d-interval", "n_intervals"),
    State("data-hit3d-live", "data"),
)
async def draw(
    source: dict[str, Any] | None,
    quantity: str | None,
    pdf_kind: str | None,
    _n: int | None,
    live: dict[str, Any] | None,
):
    """The panels for the card's source; on the poll of a live job, only when the job has
    something new (a newer event, a newer shard, another status)."""
    if not source:
        return (*hit3d_panels.render(None), None, True)
    try:
        view = await asyncio.to_thread(hit3d_views.hit3d_view, get_state(), source)
    except (ValueError, OSError, KeyError) as exc:
        blank = hit3d_panels.render(None)
        return (*blank[:-1], alert(_sentence(exc), "error", id="data-hit3d-error"), None, True)
    if view is None:
        what = "job" if source.get("kind") == "job" else "dataset"
        name = source.get("job_id") or source.get("id")
        blank = hit3d_panels.render(None)
        return (*blank[:-1], alert(f"There is no {what} {name}.", "error"), None, True)
    version = view.get("version")
    polled = ctx.triggered_id == "data-hit3d-interval"
    if polled and live and live.get("version") == version:
        raise PreventUpdate
    outputs = await asyncio.to_thread(
        hit3d_panels.render, view, quantity or "vorticity", pdf_kind or "magnitude"
    )
    following = source.get("kind") == "job" and not view.get("final")
    return (*outputs, {"version": version}, not following)
