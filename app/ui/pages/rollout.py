"""``/rollout`` and ``/rollout/<id>``: start a rollout and watch it live, or reopen one.

Live updates by push (``app.ui.live``): a WebSocket callback follows the run on the
server, waits for the job's next event, reads only the metrics recorded after the last one
sent (``seq``) and sends the newest frame's fields, spectra, status line and curves in one
batch, so they always show the same step; when it falls behind it skips to the newest frame,
while every step's metrics go into the curves and, with a Patch, into the ``rollout-series``
store. Fallback (push off, or no push within a few seconds): an Interval (500 ms) polls the
job row and the metrics after ``seq`` and appends them to ``rollout-series``; the ``views``
callback then redraws the fields (read from the SWMR HDF5 file), the spectra and the curves.
Once the run has ended, ``views`` also redraws when the frame slider moves.

A 3D velocity rollout shows its own panels below the curves instead of 2D fields: a channel
rollout the channel panel (``app.ui.channel_panels``, wall-unit statistics and slices), a
hit3d rollout the HIT panels (``app.ui.hit3d_panels`` with
``app.services.hit3d_rollouts``: statistics card, E(k), vorticity PDF and E(t), ε(t) of the
model beside the reference solver, midplane slices of |ω| or Q of both and of the error),
polled every second while the job runs (like the Data page's HIT card) and, once it has
ended, drawn for the step the frame slider shows.

``<id>`` is a rollout id or the id of a rollout job (a queued job has no rollout yet).
Start submits the job and moves to ``/rollout/<job id>``, so a live run and a reopened one
are the same page.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dash import Input, Output, Patch, State, callback, ctx, dcc, html, no_update, set_props
from dash.exceptions import PreventUpdate

from app.services import catalog, channel_views, hit3d_rollouts, jobs_view, rollouts
from app.services.flows import flow_length, is_channel_flow, is_hit3d_flow
from app.services.jobs_view import grid_label
from app.ui import figures, fit_advice, hit3d_figures, hit3d_panels, live
from app.ui.channel_panels import ChannelPanel
from app.ui.components import (
    CHART_GRAPH,
    FIELD_GRAPH,
    alert,
    cancel_button,
    card,
    eta_text,
    fmt_shape,
    form_row,
    frame_player,
    graph,
    number_input,
    page,
    progress_bar,
    slider_marks,
    status_badge,
    waiting_text,
)
from app.ui.context import get_state

POLL_MS = 500
HIT3D_POLL_MS = 1000
# Channel rollouts (3D velocity) show wall-unit statistics and slices instead of 2D fields.
CHANNEL = ChannelPanel("rollout")
REFERENCE_ONLY = "__reference__"
RANDOM_FIELD = "__random__"
RANDOM_FLOW = "ns2d-forced"
# hit3d's own random field (E(k) ~ k^4 exp(-2(k/k_p)^2)) on the model's grid, else 32³.
RANDOM_HIT3D = "__random_hit3d__"
RANDOM_HIT3D_FLOW = "hit3d"
DEFAULT_STEPS = 50
FINAL = ("succeeded", "failed", "cancelled")
SERIES_KEYS = (
    "t",
    "step",
    "rel_l2",
    "energy_reference",
    "energy_model",
    "enstrophy_reference",
    "enstrophy_model",
)


def empty_series() -> dict[str, Any]:
    return {**{key: [] for key in SERIES_KEYS}, "latest": None}


def layout(
    rollout_id: str | None = None,
    ic: str | None = None,
    model: str | None = None,
    example: str | None = None,
    **_query: Any,
) -> html.Main:
    query = {"ref": rollout_id, "ic": ic, "model": model, "example": bool(example)}
    return page(
        "Rollout",
        "A model stepped autoregressively beside the reference solver, frame by frame.",
        # "callback-nav": setting the address after Start makes the pages router draw the
        # page for /rollout/<id>, exactly as when a run is reopened.
        dcc.Location(id="rollout-url", refresh="callback-nav"),
        dcc.Store(id="rollout-query", data=query),
        dcc.Store(id="rollout-catalog"),
        dcc.Store(id="rollout-run", data={"ref": rollout_id} if rollout_id else {}),
        dcc.Store(id="rollout-series", data=empty_series()),
        # What the polling fallback bumps when the series grew: views redraws then.
        dcc.Store(id="rollout-redraw", data=None),
        dcc.Interval(
            id="rollout-interval", interval=POLL_MS, disabled=not live.polls_first(rollout_id)
        ),
        *live.components("rollout", rollout_id),
        html.Div(
            [
                html.Div(
                    [
                        card(
                            "Set up",
                            form_row(
                                "Initial condition",
                                dcc.Dropdown(
                                    id="rollout-ic",
                                    placeholder="Loading…",
                                    clearable=False,
                                    className="dropdown",
                                ),
                                html_for="rollout-ic",
                            ),
                            form_row(
                                "Model",
                                dcc.Dropdown(
                                    id="rollout-model",
                                    options=[
                                        {"label": "Reference solver only", "value": REFERENCE_ONLY}
                                    ],
                                    value=REFERENCE_ONLY,
                                    clearable=False,
                                    className="dropdown",
                                ),
                                html_for="rollout-model",
                            ),
                            html.Small(id="rollout-model-note", className="form-help"),
                            html.Div(
                                [
                                    form_row(
                                        "Steps",
                                        number_input(
                                            "rollout-steps",
                                            DEFAULT_STEPS,
                                            min=1,
                                            max=10_000,
                                            step=1,
                                        ),
                                    ),
                                    form_row(
                                        "Interval Δt",
                                        number_input(
                                            "rollout-dt",
                                            None,
                                            min=0,
                                            step="any",
                                            placeholder="auto",
                                        ),
                                        "Empty: the model's Δt, else 0.25 (hit3d: 0.1).",
                                    ),
                                ],
                                className="form-inline",
                            ),
                            html.Button(
                                "Start",
                                id="rollout-start",
                                className="button button-primary",
                                n_clicks=0,
                            ),
                            html.Div(id="rollout-fit"),
                            html.Div(id="rollout-feedback"),
                            className="setup-card",
                        ),
                        card(
                            "Run",
                            html.Div(
                                [
                                    html.Span(
                                        "Nothing running. Choose a field and press Start.",
                                        className="muted",
                                    )
                                ],
                                id="rollout-status",
                                className="status-line",
                            ),
                            html.Div(id="rollout-details", className="run-details"),
                            cancel_button("rollout"),
                            html.Div(id="rollout-cancel-feedback"),
                            className="status-card",
                        ),
                    ],
                    className="side-column",
                ),
                card(
                    None,
                    graph(
                        id="rollout-fields",
                        figure=figures.empty_figure("Fields appear here when the rollout starts."),
                        config=FIELD_GRAPH,
                        className="graph graph-fields",
                    ),
                    frame_player("rollout", label="Frame"),
                    className="fields-card",
                ),
            ],
            className="grid-rollout",
        ),
        html.Div(
            [
                card(
                    None,
                    graph(
                        id="rollout-spectrum",
                        figure=figures.empty_figure("The energy spectra appear here."),
                        config=CHART_GRAPH,
                        className="graph",
                    ),
                ),
                card(
                    None,
                    graph(
                        id="rollout-error-curve",
                        figure=figures.empty_figure("The error curve appears here."),
                        config=CHART_GRAPH,
                        className="graph",
                    ),
                ),
                card(
                    None,
                    graph(
                        id="rollout-energy-curve",
                        figure=figures.empty_figure("The energy curve appears here."),
                        config=CHART_GRAPH,
                        className="graph",
                    ),
                ),
            ],
            className="grid-3",
            id="rollout-charts-2d",
        ),
        html.Div(
            [
                html.Div(
                    [
                        html.Span("Statistics of ", className="form-label"),
                        dcc.RadioItems(
                            id="rollout-channel-of",
                            options=[
                                {"label": "the model", "value": "model"},
                                {"label": "the reference solver", "value": "reference"},
                            ],
                            value="model",
                            inline=True,
                            className="radio-inline",
                        ),
                    ],
                    className="form-inline",
                ),
                CHANNEL.layout(),
            ],
            id="rollout-channel-section",
            hidden=True,
        ),
        html.Div(
            [
                dcc.Store(id="rollout-hit3d-source"),
                dcc.Store(id="rollout-hit3d-live"),
                dcc.Interval(id="rollout-hit3d-interval", interval=HIT3D_POLL_MS, disabled=True),
                html.H2("Isotropic turbulence", className="card-title"),
                hit3d_panels.panel_layout("rollout"),
            ],
            id="rollout-hit3d-section",
            className="card",
            hidden=True,
        ),
    )


# --- options --------------------------------------------------------------------------


def ic_options(ics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    options = [
        {
            "label": f"{ic['name']} · {ic['flow']} · {fmt_shape(ic['shape'])}"
            + (" · example" if ic["example"] else ""),
            "value": ic["id"],
        }
        for ic in ics
    ]
    options.append({"label": "Random field (Gaussian, 64², ns2d-forced)", "value": RANDOM_FIELD})
    options.append(
        {
            "label": "Random field (hit3d: E(k) ~ k⁴exp(−2(k/k_p)²), the model's n³ or 32³)",
            "value": RANDOM_HIT3D,
        }
    )
    return options


def ic_flow(ics: list[dict[str, Any]], ic: str | None) -> str | None:
    """The flow of the chosen initial condition (the random field is an ns2d-forced one);
    None when none is chosen."""
    if ic == RANDOM_FIELD:
        return RANDOM_FLOW
    if ic == RANDOM_HIT3D:
        return RANDOM_HIT3D_FLOW
    return next((i["flow"] for i in ics if i["id"] == ic), None)


def model_grid(m: dict[str, Any], datasets: dict[str, dict[str, Any]] | None = None) -> str:
    """A model's grid as the pages write it: its training data's nx×ny×nz for a channel
    model (the row keeps one ``resolution``), else ``N²``."""
    shape = ((datasets or {}).get(m.get("dataset_id") or "") or {}).get("shape") or []
    if is_channel_flow(m.get("flow")) and len(shape) == 6:
        return grid_label(shape[2:5])
    if is_hit3d_flow(m.get("flow")):
        return f"{m['resolution']}³"
    return f"{m['resolution']}²"


def fits(m: dict[str, Any], flow: str | None) -> bool:
    """A model can roll out an initial condition of ``flow``: trained on that flow and, for
    a 3D flow (channel, hit3d), a 3D architecture (``dims`` of its registry entry)."""
    if flow is None or m.get("flow") != flow:
        return False
    return not (is_channel_flow(flow) or is_hit3d_flow(flow)) or m.get("dims") == 3


def model_options(
    models: list[dict[str, Any]],
    datasets: dict[str, dict[str, Any]] | None = None,
    flow: str | None = None,
) -> list[dict[str, Any]]:
    """The Model picker for an initial condition of ``flow``: the reference solver and the
    models that fit that flow (``fits``), never a model of another flow. With no initial
    condition chosen (``flow`` None) only the reference solver."""
    return [{"label": "Reference solver only", "value": REFERENCE_ONLY}] + [
        {
            "label": f"{m['name']} · {m['arch']} · {m['flow']} · {model_grid(m, datasets)}"
            f" · Δt={m['interval']:g}",
            "value": m["id"],
        }
        for m in models
        if fits(m, flow)
    ]


def model_note(models: list[dict[str, Any]], flow: str | None) -> str:
    hidden = [m for m in models if not fits(m, flow)]
    if not models:
        return "No trained models yet: the reference solver alone."
    if flow is None:
        return "Choose an initial condition to see the models that fit it."
    if not hidden:
        return ""
    n = len(models) - len(hidden)
    fit = f"{n} model{'s' if n != 1 else ''} fit {flow}"
    return f"{fit}; {len(hidden)} of other flows (or 2D models for a 3D field) are not listed."


def pick_initial_condition(
    query: dict[str, Any],
    ics: list[dict[str, Any]],
    reopened: dict | None,
    model: dict[str, Any] | None = None,
) -> str | None:
    """The initial condition the form starts with: the one asked for (``?ic=``), the
    reopened run's, an example when asked; with a model asked for (``?model=``, the Models
    page's "Roll out →"), only one of that model's flow, an example first, else none (the
    random field for an ns2d-forced model, hit3d's random field for a hit3d model);
    otherwise the newest upload. A reopened hit3d run from a random field gets that field."""
    ids = {ic["id"] for ic in ics}
    if query.get("ic") in ids:
        return query["ic"]
    if reopened and reopened.get("initial_condition_id") in ids:
        return reopened["initial_condition_id"]
    hit3d_random = (reopened or {}).get("flow") == RANDOM_HIT3D_FLOW
    if hit3d_random and not reopened.get("initial_condition_id"):
        return RANDOM_HIT3D
    if model is not None:
        mine = [ic for ic in ics if fits(model, ic["flow"])]
        mine.sort(key=lambda ic: not ic["example"])  # stable: examples first, newest first
        if mine:
            return mine[0]["id"]
        if fits(model, RANDOM_FLOW):
            return RANDOM_FIELD
        return RANDOM_HIT3D if fits(model, RANDOM_HIT3D_FLOW) else None
    if query.get("example"):
        examples = [ic for ic in ics if ic["example"]]
        if examples:
            return examples[0]["id"]
    return ics[0]["id"] if ics else RANDOM_FIELD


@callback(
    Output("rollout-catalog", "data"),
    Output("rollout-ic", "options"),
    Output("rollout-ic", "value"),
    Output("rollout-ic", "placeholder"),
    Output("rollout-steps", "value"),
    Output("rollout-dt", "value"),
    Input("rollout-query", "data"),
)
async def load_options(query: dict[str, Any] | None):
    query = query or {}

    def load():
        from models.registry import MODELS

        ics = catalog.list_initial_conditions(get_state())
        models = catalog.list_models(get_state())
        for m in models:
            spec = MODELS.get(m["arch"])
            m["dims"] = getattr(spec, "dims", None)
        datasets = (
            {d["id"]: d for d in catalog.list_datasets(get_state())}
            if any(is_channel_flow(m["flow"]) for m in models)
            else {}
        )
        run = rollouts.resolve(get_state(), query["ref"]) if query.get("ref") else None
        return ics, models, datasets, run

    ics, models, datasets, run = await asyncio.to_thread(load)
    reopened = (run or {}).get("rollout")
    params = ((run or {}).get("job") or {}).get("params") or {}
    by_id = {m["id"]: m for m in models}
    asked = by_id.get(query.get("model") or "")
    model = (asked or {}).get("id") or params.get("model_id") or REFERENCE_ONLY
    steps = params.get("steps") or DEFAULT_STEPS
    dt = params.get("interval")
    ic_value = pick_initial_condition(query, ics, reopened or params, asked)
    if ic_value is None:
        placeholder = (
            f"No {asked['flow']} field uploaded yet: upload one for {asked['name']}"
            if asked
            else "Choose an initial condition"
        )
    else:
        placeholder = "Choose an initial condition" if ics else "No uploads yet: a random field"
    store = {
        "ics": [{"id": i["id"], "name": i["name"], "flow": i["flow"]} for i in ics],
        "models": models,
        "datasets": datasets,
        "model": model,
    }
    return store, ic_options(ics), ic_value, placeholder, steps, dt


@callback(
    Output("rollout-model", "options"),
    Output("rollout-model", "value"),
    Output("rollout-model-note", "children"),
    Input("rollout-ic", "value"),
    Input("rollout-catalog", "data"),
    State("rollout-model", "value"),
)
def update_models(ic: str | None, store: dict[str, Any] | None, current: str | None):
    """Only the models that fit the chosen initial condition's flow are offered, so a
    mismatch (a 2D model for a channel field) cannot be chosen."""
    if not store:
        raise PreventUpdate
    models = store.get("models") or []
    flow = ic_flow(store.get("ics") or [], ic)
    options = model_options(models, store.get("datasets"), flow)
    offered = {o["value"] for o in options}
    wanted = store.get("model") if ctx.triggered_id == "rollout-catalog" else current
    value = wanted if wanted in offered else REFERENCE_ONLY
    return options, value, model_note(models, flow)


@callback(
    Output("rollout-fit", "children"),
    Input("rollout-ic", "value"),
    Input("rollout-model", "value"),
)
async def update_fit(ic: str | None, model: str | None):
    """Before Start: is the chosen field far from what the chosen model was trained on?"""
    return await fit_advice.advice_for(ic, [model] if model else [], "rollout")


# --- start ----------------------------------------------------------------------------


def rollout_params(ic: str | None, model: str | None, steps: Any, dt: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"steps": steps}
    if ic == RANDOM_HIT3D:
        params["flow"] = RANDOM_HIT3D_FLOW  # n³: the model's grid, else the flow's
    elif ic and ic != RANDOM_FIELD:
        params["initial_condition_id"] = ic
    if model and model != REFERENCE_ONLY:
        params["model_id"] = model
    if dt not in (None, ""):
        params["interval"] = dt
    return params


@callback(
    # One change of address (href): setting the path and the query as two props made two
    # navigations, the second back to the old path when the page had a query (?model=…).
    Output("rollout-url", "href"),
    Output("rollout-feedback", "children"),
    Input("rollout-start", "n_clicks"),
    State("rollout-ic", "value"),
    State("rollout-model", "value"),
    State("rollout-steps", "value"),
    State("rollout-dt", "value"),
    prevent_initial_call=True,
)
async def start(n_clicks: int, ic: str | None, model: str | None, steps: Any, dt: Any):
    """Submit the rollout, then go to its address, /rollout/<job id>: the page is drawn
    again for that run (the same view as reopening it later), and follows it live."""
    if not n_clicks:
        raise PreventUpdate
    if not ic:
        message = alert(
            "Initial condition: choose one (or upload one on the Upload page).", "error"
        )
        return no_update, message
    if steps in (None, ""):
        message = alert("Steps: enter how many steps to roll out (1 to 10,000).", "error")
        return no_update, message
    try:
        job = await asyncio.to_thread(
            jobs_view.submit_job, get_state(), "rollout", rollout_params(ic, model, steps, dt)
        )
    except jobs_view.InvalidParams as exc:
        return no_update, alert(str(exc), "error")
    # The query (?ic=…, ?example=1) only prefilled the form: it is not part of the address.
    return f"/rollout/{job['id']}", None


# --- poll -----------------------------------------------------------------------------


def status_line(run: dict[str, Any]) -> list[Any]:
    status = run.get("status") or "unknown"
    steps = run.get("steps")
    done = run.get("frames", 0)
    if status == "queued":
        text = waiting_text(run.get("place"))
    elif status == "running":
        step = max(done - 1, 0)
        text = f"Running · step {step} of {steps}" if steps else "Running"
        text += eta_text(run.get("progress"), run.get("started_at"))
    elif status == "succeeded":
        text = f"Succeeded · {done} frames" + (f" · {steps} steps" if steps else "")
    elif status == "failed":
        text = "Failed: " + (run.get("error") or run.get("message") or "no reason recorded.")
    elif status == "cancelled":
        text = f"Cancelled after {done} frames."
    else:
        text = run.get("message") or status
    return [
        html.Div(
            [status_badge(status), html.Span(text, className="status-text")],
            className="status-head",
        ),
        progress_bar(run.get("progress"), status),
    ]


def run_details(run: dict[str, Any], names: dict[str, str] | None = None) -> list[Any]:
    """The run's facts; ``names``: model and initial-condition ids → names (the catalog's),
    so the details say which model and which field, not their ids."""
    names = names or {}
    model_id = run.get("model_id")
    ic_id = run.get("initial_condition_id")
    rows = [
        ("Rollout", run.get("rollout_id")),
        ("Job", run.get("job_id")),
        ("Flow", run.get("flow")),
        (
            "Grid",
            grid_label(run["grid"])
            if run.get("grid")
            else (f"{run['resolution']}²" if run.get("resolution") else None),
        ),
        ("Δt", f"{run['interval']:g}" if run.get("interval") else None),
        ("Model", (names.get(model_id) or model_id) if model_id else "reference solver only"),
        (
            "Initial condition",
            (names.get(ic_id) or ic_id) if ic_id else "random field (Gaussian)",
        ),
    ]
    return [
        html.Dl(
            [el for label, value in rows if value for el in (html.Dt(label), html.Dd(value))],
            className="details",
        )
    ]


def series_patch(new: list[dict[str, Any]]) -> Patch:
    patch = Patch()
    for key in SERIES_KEYS:
        patch[key].extend([m.get(key) for m in new])
    patch["latest"] = new[-1]
    return patch


def series_of(new: list[dict[str, Any]]) -> dict[str, Any]:
    """A fresh series store holding ``new``."""
    series = empty_series()
    for key in SERIES_KEYS:
        series[key] = [m.get(key) for m in new]
    series["latest"] = new[-1] if new else None
    return series


def extend_series(series: dict[str, Any], new: list[dict[str, Any]]) -> None:
    for key in SERIES_KEYS:
        series[key].extend(m.get(key) for m in new)
    if new:
        series["latest"] = new[-1]


def run_with(run: dict[str, Any], job: dict[str, Any], rollout: dict[str, Any] | None) -> None:
    """``run`` (the page's run store) updated with the job row and its rollout row."""
    run.update(
        status=job["status"],
        progress=job["progress"],
        message=job["message"],
        error=job["error"],
        queue=job["queue"],
        steps=job["params"].get("steps"),
        has_model=job["params"].get("model_id") is not None,
        model_id=job["params"].get("model_id"),
        initial_condition_id=job["params"].get("initial_condition_id"),
        started_at=job.get("started_at"),
    )
    if rollout is not None:
        run.update(
            rollout_id=rollout["id"],
            flow=rollout["flow"],
            resolution=rollout["resolution"],
            interval=rollout["interval"],
        )


async def _run_extras(run: dict[str, Any]) -> None:
    """The queue place of a queued job, and a channel rollout's nx×ny×nz grid."""
    if run.get("status") == "queued":
        run["place"] = await asyncio.to_thread(
            jobs_view.queue_place, get_state(), run["job_id"], run.get("queue")
        )
    if run.get("rollout_id") and is_hit3d_flow(run.get("flow")) and run.get("resolution"):
        run["grid"] = [run["resolution"]] * 3  # a cube
    if run.get("rollout_id") and is_channel_flow(run.get("flow")) and not run.get("grid"):
        # The row keeps one resolution; a channel grid is nx×ny×nz, read from its file.
        run["grid"] = await asyncio.to_thread(
            channel_views.rollout_grid, get_state(), run["rollout_id"]
        )


def names_of(store: dict[str, Any] | None) -> dict[str, str]:
    store = store or {}
    names = {m["id"]: m["name"] for m in store.get("models") or []}
    return names | {i["id"]: i["name"] for i in store.get("ics") or []}


def final_slider(frames: int) -> tuple[Any, ...]:
    last = frames - 1
    return last, last, slider_marks(last), "slider-wrap"


@callback(
    Output("rollout-run", "data"),
    Output("rollout-series", "data"),
    Output("rollout-status", "children"),
    Output("rollout-details", "children"),
    Output("rollout-interval", "disabled"),
    Output("rollout-slider", "max"),
    Output("rollout-slider", "value"),
    Output("rollout-slider", "marks"),
    Output("rollout-slider-wrap", "className"),
    Output("rollout-cancel", "hidden"),
    Output("rollout-redraw", "data"),
    Input("rollout-interval", "n_intervals"),
    State("rollout-run", "data"),
    State("rollout-catalog", "data"),
    prevent_initial_call=True,
)
async def poll(_n: int, run: dict[str, Any] | None, store: dict[str, Any] | None):
    """The polling fallback (push off or unavailable): one HTTP update per tick."""
    run = dict(run or {})
    if not run.get("ref"):
        raise PreventUpdate
    reset_series = False
    # A run store this poll did not fill (the page's first tick, or one the push wrote
    # before the page fell back to polling) is read again from the first step.
    if not run.get("job_id") or not run.get("polled"):
        found = await asyncio.to_thread(rollouts.resolve, get_state(), run["ref"])
        if found is None or found["job"] is None:
            message = alert(f"There is no rollout or rollout job with id {run['ref']!r}.", "error")
            return ({}, no_update, message, [], True) + (no_update,) * 4 + (True, no_update)
        run = {"ref": run["ref"], "job_id": found["job"]["id"], "seq": 0, "polled": True}
        reset_series = True
    update = await asyncio.to_thread(
        rollouts.poll_rollout, get_state(), run["job_id"], run.get("seq") or 0
    )
    job, rollout, new = update["job"], update["rollout"], update["metrics"]
    if update["replaced"]:
        reset_series = True  # a re-run (lost worker) started again at step 0
    if job is None:
        gone = alert("The job was deleted.", "error")
        return ({}, no_update, gone, [], True) + (no_update,) * 4 + (True, no_update)
    run_with(run, job, rollout)
    await _run_extras(run)
    if new:
        run["seq"] = new[-1]["seq"]
        run["frames"] = (0 if reset_series else run.get("frames", 0)) + len(new)
    final = job["status"] in FINAL and update["complete"]

    if reset_series:
        series: Any = series_of(new)
    else:
        series = series_patch(new) if new else no_update

    frames = run.get("frames", 0)
    slider = final_slider(frames) if final and frames > 0 else (no_update,) * 4
    run["final"] = final
    active = job["status"] in ("queued", "running")
    details = run_details(run, names_of(store))
    redraw = frames if (new or reset_series) else no_update
    return (run, series, status_line(run), details, final, *slider, not active, redraw)


@callback(
    # An output, so the callback also fires when the pages router draws the page (Dash
    # fires output-less callbacks only on the app's first load); the push sets it as it goes.
    Output("rollout-push-beat", "data"),
    Input("rollout-push", "data"),
    State("rollout-catalog", "data"),
    websocket=True,
)
async def push(data: dict[str, Any] | None, store: dict[str, Any] | None):
    """Follow the run on the server and push what is new (see the module docstring and
    ``app.ui.live``); nothing when there is no socket (the page then polls)."""
    ws = ctx.websocket
    if ws is None or not isinstance(data, dict) or not data.get("ref") or data.get("off"):
        raise PreventUpdate
    async with live.slot(ws) as free:
        if free:
            await follow(live.Push(ws, "rollout", data), store)
    return no_update


async def follow(push_: live.Push, store: dict[str, Any] | None) -> None:
    state, ref = get_state(), push_.ref
    found = await asyncio.to_thread(rollouts.resolve, state, ref)
    if found is None or found["job"] is None:
        message = alert(f"There is no rollout or rollout job with id {ref!r}.", "error")
        set_props("rollout-status", {"children": message})
        set_props("rollout-cancel", {"hidden": True})
        push_.beat(final=True)
        return
    run: dict[str, Any] = {"ref": ref, "job_id": found["job"]["id"], "seq": 0, "frames": 0}
    series = empty_series()
    pending: list[dict[str, Any]] = []  # metrics not yet in the page's series store
    series_sent = False  # whether the page's store holds the series up to ``pending``
    sent: dict[str, Any] = {}  # what the page was last sent: run store, details, status
    names = names_of(store)
    drawn: dict[str, Any] = {}  # what the page's figures hold (live_views)
    newest = 0
    next_place = 0.0
    while await push_.page_shows_run():
        update = await asyncio.to_thread(rollouts.poll_rollout, state, run["job_id"], run["seq"])
        job, new = update["job"], update["metrics"]
        if job is None:
            set_props("rollout-status", {"children": alert("The job was deleted.", "error")})
            set_props("rollout-cancel", {"hidden": True})
            push_.beat(final=True)
            return
        if update["replaced"]:  # a re-run (lost worker) started again at step 0
            series, pending, series_sent, run["frames"] = empty_series(), [], False, 0
        run_with(run, job, update["rollout"])
        if run["status"] != "queued" or time.monotonic() >= next_place:
            await _run_extras(run)
            next_place = time.monotonic() + live.HEARTBEAT_S
        if new:
            run["seq"] = new[-1]["seq"]
            run["frames"] += len(new)
            extend_series(series, new)
            pending.extend(new)
        final = job["status"] in FINAL and update["complete"]
        run["final"] = final
        if not update["complete"]:
            continue  # more than one page of metrics behind: read on before drawing
        status = status_line(run)
        details = run_details(run, names)
        skip = ("seq", "frames", "progress", "place", "message")
        meta = {k: v for k, v in run.items() if k not in skip}
        status_json, details_json = live.as_sent(status), live.as_sent(details)
        changed = bool(new) or final or status_json != sent.get("status")
        if changed:
            # One batch: the renderer applies it in one render, so the field, the status
            # line and the curves always show the same step.
            if series["step"] and run.get("rollout_id"):
                shown = series["step"][-1]
                figs = await asyncio.to_thread(live_views, run, series, shown, drawn)
                for graph_id, fig in figs.items():
                    set_props(graph_id, {"figure": fig})
            set_props("rollout-status", {"children": status})
            if details_json != sent.get("details"):
                set_props("rollout-details", {"children": details})
            set_props("rollout-cancel", {"hidden": job["status"] not in ("queued", "running")})
            if pending:
                value = series_patch(pending) if series_sent else series
                set_props("rollout-series", {"data": value})
                pending, series_sent = [], True
            if meta != sent.get("meta") or final:
                set_props("rollout-run", {"data": run})
            if final and run["frames"] > 0:
                slider = final_slider(run["frames"])
                set_props(
                    "rollout-slider", {"max": slider[0], "value": slider[1], "marks": slider[2]}
                )
                set_props("rollout-slider-wrap", {"className": slider[3]})
            push_.beat(final=final)
            sent.update(status=status_json, details=details_json, meta=meta)
            if not final and not await push_.page_shows_run(now=True):
                return
        if final:
            return
        push_.beat_if_due()
        newest = await push_.wait_for_news(run["job_id"], newest, run["status"] == "queued")


@callback(
    Output("rollout-cancel-feedback", "children"),
    Output("rollout-cancel", "disabled"),
    Input("rollout-cancel", "n_clicks"),
    State("_pages_location", "pathname"),
    prevent_initial_call=True,
)
async def cancel(n_clicks: int, pathname: str | None):
    """Cancel the run shown (its address names it: /rollout/<job or rollout id>) through the
    same service as the Runs page's Cancel; the next poll shows it cancelled."""
    ref = (pathname or "").rstrip("/").rsplit("/", 1)[-1]
    if not n_clicks or not (pathname or "").startswith("/rollout/") or not ref:
        raise PreventUpdate

    def stop():
        found = rollouts.resolve(get_state(), ref)
        if not found or not found["job"]:
            return None
        return jobs_view.cancel_job(get_state(), found["job"]["id"])

    job = await asyncio.to_thread(stop)
    if job is None:
        return alert("The job was deleted.", "error"), True
    if job["status"] == "cancelled":
        return alert("Cancelled: a running worker stops at its next step.", "info"), True
    return alert(f"The job had already ended ({job['status']}).", "info"), True


# --- views ----------------------------------------------------------------------------

VIEW_GRAPHS = ("rollout-fields", "rollout-spectrum", "rollout-error-curve", "rollout-energy-curve")


def draw(run: dict[str, Any], series: dict[str, Any], shown: int) -> tuple[Any, ...]:
    """The fields, spectra, error and energy figures of step ``shown`` (the fields read from
    the SWMR file); the push and ``views`` both draw with it. Blocking: call it in a thread."""
    latest = series.get("latest") or {}
    has_model = bool(run.get("has_model"))
    sources = ("model", "reference", "error") if has_model else ("reference",)
    revision = run["rollout_id"]
    marker_on = bool(run.get("final"))
    if is_velocity_3d(run):
        # 3D velocity: the channel or HIT section below shows statistics and slices.
        error = figures.error_curve_figure(series, uirevision=revision)
        energy = figures.energy_curve_figure(series, uirevision=revision)
        note = (
            "Isotropic turbulence: statistics, spectra and midplane slices of the 3D velocity "
            "are below."
            if is_hit3d_flow(run.get("flow"))
            else "Channel flow: statistics and slices of the 3D velocity are below."
        )
        return figures.empty_figure(note), figures.empty_figure(note), error, energy
    frames, t = rollouts.rollout_frames(get_state(), run["rollout_id"], int(shown), sources)
    metrics = (
        latest
        if latest.get("step") == shown
        else rollouts.step_metrics(get_state(), run["job_id"], int(shown))
    ) or {}
    length = flow_length(run.get("flow") or "ns2d-forced")
    fields = figures.fields_figure(frames, length=length, t=t, step=shown, uirevision=revision)
    # The step each figure shows, for tests and bench/ui_latency.py (Plotly keeps `meta`).
    fields.update_layout(meta={"step": shown})
    spectrum = spectrum_of(run, metrics, shown)
    error, energy = curve_figures(run, series, metrics.get("t") if marker_on else None)
    return fields, spectrum, error, energy


def is_velocity_3d(run: dict[str, Any]) -> bool:
    """A rollout of 3D velocity (a channel or hit3d flow): no 2D fields or spectra to draw."""
    return is_channel_flow(run.get("flow")) or is_hit3d_flow(run.get("flow"))


def _patch(changes: dict[str, Any], meta: dict[str, Any]) -> Patch:
    patch = Patch()
    for path, value in changes.items():
        target = patch
        *head, last = path.split(".")
        for part in head:
            target = target[int(part) if part.isdigit() else part]
        target[int(last) if last.isdigit() else last] = value
    patch["layout"]["meta"] = meta
    return patch


LIVE_CURVES = (
    ("rollout-error-curve", figures.error_curve_series),
    ("rollout-energy-curve", figures.energy_curve_series),
)


def live_views(
    run: dict[str, Any], series: dict[str, Any], shown: int, drawn: dict[str, Any]
) -> dict[str, Any]:
    """The push's figures of the newest step ``shown``: after the first frame only what
    changed (the heatmaps' values and ranges, the new points of each curve) as Patches, so a
    frame costs little to build, send and draw; whole figures when the panels or the curves
    change and at the end (``draw``). ``drawn`` remembers what the page holds."""
    if run.get("final") or is_velocity_3d(run):
        drawn.clear()
        return dict(zip(VIEW_GRAPHS, draw(run, series, shown), strict=True))
    has_model = bool(run.get("has_model"))
    sources = ("model", "reference", "error") if has_model else ("reference",)
    frames, t = rollouts.rollout_frames(get_state(), run["rollout_id"], int(shown), sources)
    latest = series.get("latest") or {}
    metrics = (
        latest
        if latest.get("step") == shown
        else rollouts.step_metrics(get_state(), run["job_id"], int(shown))
    ) or {}
    out: dict[str, Any] = {}
    update = figures.fields_update(frames, t=t, step=shown)
    if update is not None and update.pop("panels") == drawn.get("panels"):
        out["rollout-fields"] = _patch(update, {"step": shown})
    else:
        length = flow_length(run.get("flow") or "ns2d-forced")
        fig = figures.fields_figure(
            frames, length=length, t=t, step=shown, uirevision=run["rollout_id"]
        )
        fig.update_layout(meta={"step": shown})
        out["rollout-fields"] = fig
        drawn["panels"] = [name for name, a in frames.items() if a is not None]
    out["rollout-spectrum"] = spectrum_of(run, metrics, shown)
    last = series["step"][-1]
    for graph_id, curves_of in LIVE_CURVES:
        curves = curves_of(series)
        names, points = drawn.get(graph_id) or ([], 0)
        update = figures.time_series_update(series["t"], curves, points)
        if update is not None and update["names"] == names:
            patch = Patch()
            for i, (x, y) in update["extend"].items():
                patch["data"][i]["x"].extend(x)
                patch["data"][i]["y"].extend(y)
            patch["layout"]["meta"] = {"step": last}
            out[graph_id] = patch
        else:
            error, energy = curve_figures(run, series, None)
            out[graph_id] = error if graph_id == "rollout-error-curve" else energy
        drawn[graph_id] = (list(figures.present_series(curves)), len(series["t"]))
    return out


def spectrum_of(run: dict[str, Any], metrics: dict[str, Any], shown: int) -> Any:
    spectra = {"reference": metrics.get("spectrum_reference")}
    if run.get("has_model"):
        spectra = {"model": metrics.get("spectrum_model"), **spectra}
    t_label = f"t = {metrics['t']:.4g}" if "t" in metrics else ""
    spectrum = figures.spectrum_figure(
        metrics.get("k"),
        spectra,
        title=f"Energy spectra · {t_label}".rstrip(" ·"),
        uirevision=run["rollout_id"],
    )
    spectrum.update_layout(meta={"step": shown})
    return spectrum


def curve_figures(run: dict[str, Any], series: dict[str, Any], marker: float | None) -> tuple:
    revision = run["rollout_id"]
    error = figures.error_curve_figure(series, marker_t=marker, uirevision=revision)
    energy = figures.energy_curve_figure(series, marker_t=marker, uirevision=revision)
    for curve in (error, energy):
        curve.update_layout(meta={"step": series["step"][-1]})
    return error, energy


@callback(
    Output("rollout-fields", "figure"),
    Output("rollout-spectrum", "figure"),
    Output("rollout-error-curve", "figure"),
    Output("rollout-energy-curve", "figure"),
    Input("rollout-redraw", "data"),
    Input("rollout-slider", "value"),
    State("rollout-series", "data"),
    State("rollout-run", "data"),
    prevent_initial_call=True,
)
async def views(
    _redraw: Any, slider: int | None, series: dict[str, Any] | None, run: dict[str, Any] | None
):
    """Redraw when the polling fallback read new steps, or when the slider moves once the
    run has ended (the push draws the live frames itself)."""
    run = run or {}
    series = series or empty_series()
    steps = series.get("step") or []
    if not steps or not run.get("rollout_id"):
        raise PreventUpdate
    shown = steps[-1]
    if run.get("final") and slider is not None and 0 <= slider < len(steps):
        shown = steps[slider]
    return await asyncio.to_thread(draw, run, series, shown)


@callback(
    Output("rollout-channel-section", "hidden"),
    Output(CHANNEL.source, "data"),
    Input("rollout-run", "data"),
    Input("rollout-channel-of", "value"),
    State(CHANNEL.source, "data"),
)
async def channel_section(run: dict[str, Any] | None, of: str | None, current: Any):
    """Points the channel panel at a channel rollout's live statistics (model or reference)."""
    run = run or {}
    if not is_channel_flow(run.get("flow")) or not run.get("job_id"):
        return True, None if current else no_update
    source = {"kind": "job", "job_id": run["job_id"]}
    source["source"] = of if (of == "reference" or not run.get("has_model")) else "model"
    if not run.get("has_model"):
        source["source"] = "reference"
    return False, (no_update if source == current else source)


@callback(
    Output("rollout-hit3d-section", "hidden"),
    Output("rollout-hit3d-source", "data"),
    Input("rollout-run", "data"),
    State("rollout-hit3d-source", "data"),
)
async def hit3d_section(run: dict[str, Any] | None, current: Any):
    """Shows the HIT panels for a hit3d rollout and points them at its job."""
    run = run or {}
    if not is_hit3d_flow(run.get("flow")) or not run.get("job_id"):
        return True, None if current else no_update
    source = {"job_id": run["job_id"]}
    return False, (no_update if source == current else source)


def hit3d_step(run: dict[str, Any] | None, series: dict[str, Any] | None, slider: Any):
    """The step the HIT panels show: the slider's once the run has ended, else None (the
    newest the worker reported)."""
    steps = (series or {}).get("step") or []
    if (run or {}).get("final") and slider is not None and 0 <= int(slider) < len(steps):
        return int(steps[int(slider)])
    return None


@callback(
    *(
        Output(f"rollout-hit3d-{name}", "children" if name in ("summary", "note") else "figure")
        for name in hit3d_panels.OUTPUTS
    ),
    Output("rollout-hit3d-live", "data"),
    Output("rollout-hit3d-interval", "disabled"),
    Output("rollout-hit3d-slices", "style"),
    Input("rollout-hit3d-source", "data"),
    Input("rollout-hit3d-quantity", "value"),
    Input("rollout-hit3d-pdf-kind", "value"),
    Input("rollout-hit3d-interval", "n_intervals"),
    Input("rollout-slider", "value"),
    State("rollout-hit3d-live", "data"),
    State("rollout-run", "data"),
    State("rollout-series", "data"),
)
async def hit3d_draw(
    source: dict[str, Any] | None,
    quantity: str | None,
    pdf_kind: str | None,
    _n: int | None,
    slider: Any,
    drawn: dict[str, Any] | None,
    run: dict[str, Any] | None,
    series: dict[str, Any] | None,
):
    """The HIT panels of the rollout (see the module docstring); on a poll only when the job
    recorded something new."""
    if not source or not source.get("job_id"):
        if ctx.triggered_id not in (None, "rollout-hit3d-source"):
            raise PreventUpdate  # the slider of a run that is not hit3d's
        return (*hit3d_panels.render(None), None, True, no_update)
    job_id = source["job_id"]
    step = hit3d_step(run, series, slider)
    if ctx.triggered_id == "rollout-hit3d-interval" and drawn:
        version = await asyncio.to_thread(hit3d_rollouts.rollout_version, get_state(), job_id)
        if drawn.get("version") == f"{version}:{step}":
            raise PreventUpdate
    view = await asyncio.to_thread(hit3d_rollouts.hit3d_rollout_view, get_state(), job_id, step)
    if view is None:
        blank = hit3d_panels.render(None)
        note = alert(f"There is no rollout job {job_id}.", "error")
        return (*blank[:-1], note, None, True, no_update)
    outputs = await asyncio.to_thread(
        hit3d_panels.render, view, quantity or "vorticity", pdf_kind or "magnitude"
    )
    # One row of midplanes per source and one for the error (model − reference).
    rows = len(view.get("sources") or []) + (1 if len(view.get("sources") or []) > 1 else 0)
    style = {"height": f"{hit3d_figures.slices_height(rows)}px"}
    return (*outputs, {"version": view["version"]}, bool(view.get("final")), style)


live.register_watchdog("rollout")
