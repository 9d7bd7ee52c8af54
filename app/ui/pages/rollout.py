"""``/rollout`` and ``/rollout/<id>``: start a rollout and watch it live, or reopen one.

Live updates: an Interval (500 ms) polls the job row and the per-step metrics recorded
after the last event already read (``seq``), and appends them to the ``rollout-series``
store with a Patch, so each poll moves only what is new. A second callback redraws the
fields (read from the SWMR HDF5 file), the spectra and the curves whenever the series grows
or, once the run has ended, when the frame slider moves.

``<id>`` is a rollout id or the id of a rollout job (a queued job has no rollout yet).
Start submits the job and moves to ``/rollout/<job id>``, so a live run and a reopened one
are the same page.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dash import Input, Output, Patch, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog, channel_views, jobs_view, rollouts
from app.services.flows import flow_length, is_channel_flow
from app.services.jobs_view import grid_label
from app.ui import figures
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
# Channel rollouts (3D velocity) show wall-unit statistics and slices instead of 2D fields.
CHANNEL = ChannelPanel("rollout")
REFERENCE_ONLY = "__reference__"
RANDOM_FIELD = "__random__"
RANDOM_FLOW = "ns2d-forced"
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
        dcc.Interval(id="rollout-interval", interval=POLL_MS, disabled=rollout_id is None),
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
                                        "Empty: the model's Δt, else 0.25.",
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
    return options


def ic_flow(ics: list[dict[str, Any]], ic: str | None) -> str | None:
    """The flow of the chosen initial condition (the random field is an ns2d-forced one);
    None when none is chosen."""
    if ic == RANDOM_FIELD:
        return RANDOM_FLOW
    return next((i["flow"] for i in ics if i["id"] == ic), None)


def model_grid(m: dict[str, Any], datasets: dict[str, dict[str, Any]] | None = None) -> str:
    """A model's grid as the pages write it: its training data's nx×ny×nz for a channel
    model (the row keeps one ``resolution``), else ``N²``."""
    shape = ((datasets or {}).get(m.get("dataset_id") or "") or {}).get("shape") or []
    if is_channel_flow(m.get("flow")) and len(shape) == 6:
        return grid_label(shape[2:5])
    return f"{m['resolution']}²"


def fits(m: dict[str, Any], flow: str | None) -> bool:
    """A model can roll out an initial condition of ``flow``: trained on that flow and, for
    a channel flow, a 3D architecture (``dims`` of its registry entry)."""
    if flow is None or m.get("flow") != flow:
        return False
    return not is_channel_flow(flow) or m.get("dims") == 3


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
    random field for an ns2d-forced model); otherwise the newest upload."""
    ids = {ic["id"] for ic in ics}
    if query.get("ic") in ids:
        return query["ic"]
    if reopened and reopened.get("initial_condition_id") in ids:
        return reopened["initial_condition_id"]
    if model is not None:
        mine = [ic for ic in ics if fits(model, ic["flow"])]
        mine.sort(key=lambda ic: not ic["example"])  # stable: examples first, newest first
        if mine:
            return mine[0]["id"]
        return RANDOM_FIELD if fits(model, RANDOM_FLOW) else None
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


# --- start ----------------------------------------------------------------------------


def rollout_params(ic: str | None, model: str | None, steps: Any, dt: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"steps": steps}
    if ic and ic != RANDOM_FIELD:
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
    Input("rollout-interval", "n_intervals"),
    State("rollout-run", "data"),
    State("rollout-catalog", "data"),
    prevent_initial_call=True,
)
async def poll(_n: int, run: dict[str, Any] | None, store: dict[str, Any] | None):
    run = dict(run or {})
    if not run.get("ref"):
        raise PreventUpdate
    reset_series = False
    if not run.get("job_id"):
        found = await asyncio.to_thread(rollouts.resolve, get_state(), run["ref"])
        if found is None or found["job"] is None:
            message = alert(f"There is no rollout or rollout job with id {run['ref']!r}.", "error")
            return ({}, no_update, message, [], True) + (no_update,) * 4 + (True,)
        run["job_id"] = found["job"]["id"]
        run["seq"] = 0
        reset_series = True
    update = await asyncio.to_thread(
        rollouts.poll_rollout, get_state(), run["job_id"], run.get("seq") or 0
    )
    job, rollout, new = update["job"], update["rollout"], update["metrics"]
    if update["replaced"]:
        reset_series = True  # a re-run (lost worker) started again at step 0
    if job is None:
        gone = alert("The job was deleted.", "error")
        return ({}, no_update, gone, [], True) + (no_update,) * 4 + (True,)
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
    if job["status"] == "queued":
        run["place"] = await asyncio.to_thread(
            jobs_view.queue_place, get_state(), job["id"], job["queue"]
        )
    if rollout is not None:
        run.update(
            rollout_id=rollout["id"],
            flow=rollout["flow"],
            resolution=rollout["resolution"],
            interval=rollout["interval"],
        )
        if is_channel_flow(rollout["flow"]) and not run.get("grid"):
            # The row keeps one resolution; a channel grid is nx×ny×nz, read from its file.
            run["grid"] = await asyncio.to_thread(
                channel_views.rollout_grid, get_state(), rollout["id"]
            )
    if new:
        run["seq"] = new[-1]["seq"]
        run["frames"] = (0 if reset_series else run.get("frames", 0)) + len(new)
    final = job["status"] in FINAL and update["complete"]

    if reset_series:
        series: Any = empty_series()
        if new:
            for key in SERIES_KEYS:
                series[key] = [m.get(key) for m in new]
            series["latest"] = new[-1]
    else:
        series = series_patch(new) if new else no_update

    frames = run.get("frames", 0)
    if final and frames > 0:
        last = frames - 1
        marks = slider_marks(last)
        slider = (last, last, marks, "slider-wrap")
    else:
        slider = (no_update,) * 4
    run["final"] = final
    store = store or {}
    names = {m["id"]: m["name"] for m in store.get("models") or []}
    names |= {i["id"]: i["name"] for i in store.get("ics") or []}
    active = job["status"] in ("queued", "running")
    details = run_details(run, names)
    return (run, series, status_line(run), details, final, *slider, not active)


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


@callback(
    Output("rollout-fields", "figure"),
    Output("rollout-spectrum", "figure"),
    Output("rollout-error-curve", "figure"),
    Output("rollout-energy-curve", "figure"),
    Input("rollout-series", "data"),
    Input("rollout-slider", "value"),
    State("rollout-run", "data"),
    prevent_initial_call=True,
)
async def views(series: dict[str, Any] | None, slider: int | None, run: dict[str, Any] | None):
    run = run or {}
    series = series or empty_series()
    steps = series.get("step") or []
    if not steps or not run.get("rollout_id"):
        raise PreventUpdate
    latest = series.get("latest") or {}
    shown = steps[-1]
    if run.get("final") and slider is not None and 0 <= slider < len(steps):
        shown = steps[slider]
    has_model = bool(run.get("has_model"))
    sources = ("model", "reference", "error") if has_model else ("reference",)
    revision = run["rollout_id"]

    def load():
        frames, t = rollouts.rollout_frames(get_state(), run["rollout_id"], int(shown), sources)
        metrics = (
            latest
            if latest.get("step") == shown
            else rollouts.step_metrics(get_state(), run["job_id"], int(shown))
        )
        return frames, t, metrics or {}

    if is_channel_flow(run.get("flow")):
        # 3D velocity: the channel section below shows statistics and slices.
        error = figures.error_curve_figure(series, uirevision=revision)
        energy = figures.energy_curve_figure(series, uirevision=revision)
        note = "Channel flow: statistics and slices of the 3D velocity are below."
        return figures.empty_figure(note), figures.empty_figure(note), error, energy
    frames, t, metrics = await asyncio.to_thread(load)
    length = flow_length(run.get("flow") or "ns2d-forced")
    fields = figures.fields_figure(frames, length=length, t=t, step=shown, uirevision=revision)
    spectra = {"reference": metrics.get("spectrum_reference")}
    if has_model:
        spectra = {"model": metrics.get("spectrum_model"), **spectra}
    t_label = f"t = {metrics['t']:.4g}" if "t" in metrics else ""
    spectrum = figures.spectrum_figure(
        metrics.get("k"),
        spectra,
        title=f"Energy spectra · {t_label}".rstrip(" ·"),
        uirevision=revision,
    )
    marker = metrics.get("t") if run.get("final") else None
    error = figures.error_curve_figure(series, marker_t=marker, uirevision=revision)
    energy = figures.energy_curve_figure(series, marker_t=marker, uirevision=revision)
    return fields, spectrum, error, energy


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
