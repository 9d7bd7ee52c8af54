"""The Compare page's callbacks: load the options, start a comparison, poll it, draw the
grid and the overlays, play the frames and fill the summary table."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, no_update, set_props
from dash.exceptions import PreventUpdate

from app.services import jobs_view, rollouts
from app.services.catalog import compare_catalog
from app.services.flows import flow_length
from app.ui import compare_figures as cf
from app.ui import fit_advice, live
from app.ui.components import alert, slider_marks
from app.ui.context import get_state
from app.ui.figures import empty_figure
from app.ui.pages.compare import channel, hit3d
from app.ui.pages.compare.helpers import (
    DATASET,
    DEFAULT_DIVERGENCE,
    DEFAULT_STEPS,
    FINAL,
    MAX_ENTRIES,
    REFERENCE,
    REFERENCE_OFF,
    UPLOAD,
    column_header,
    column_status,
    columns_of,
    compare_params,
    dataset_options,
    empty_series,
    entries_of,
    export_links,
    grid_shells,
    ic_note,
    ic_options,
    model_options,
    panel_notes,
    parse_times,
    partial_note,
    precision_rows,
    run_details,
    series_from,
    series_patch,
    series_values,
    shown_step,
    source_flow,
    status_after,
    status_line,
    trajectory_options,
)


@callback(
    Output("compare-catalog", "data"),
    Output("compare-ic", "options"),
    Output("compare-ic", "value"),
    Output("compare-ic", "placeholder"),
    Output("compare-dataset", "options"),
    Output("compare-dataset", "value"),
    Output("compare-source", "value"),
    Output("compare-steps", "value"),
    Output("compare-divergence", "value"),
    Output("compare-dt", "value"),
    Output("compare-reference", "value"),
    Output("compare-report-times", "value"),
    Output("compare-prefill", "data"),
    Output("compare-baselines", "value"),
    Output("compare-window", "value"),
    Input("compare-query", "data"),
    # Only on a run's page (``layout.setup_later``).
    Input("compare-setup-open", "n_clicks", allow_optional=True),
)
async def load_options(query: dict[str, Any] | None, setup_open: int | None):
    query = query or {}
    if query.get("ref") and not setup_open:
        # A run's page loads its set-up form (the catalogue, then the form's own chain of
        # callbacks) when the user asks for it: loaded at once, it competed with the run's
        # first live frames for the server and the browser.
        raise PreventUpdate

    def load():
        catalog = channel.merge_catalog(
            compare_catalog(get_state()), channel.load_channel_catalog(get_state())
        )
        catalog = channel.merge_catalog(catalog, hit3d.load_hit3d_catalog(get_state()))
        run = rollouts.resolve(get_state(), query["ref"], "compare") if query.get("ref") else None
        return catalog, run

    catalog, run = await asyncio.to_thread(load)
    params = ((run or {}).get("job") or {}).get("params") or {}
    ics, datasets = catalog["initial_conditions"], catalog["datasets"]
    ic_ids, dataset_ids = {i["id"] for i in ics}, {d["id"] for d in datasets}
    ic = params.get("initial_condition_id") or query.get("ic")
    dataset = params.get("dataset_id") or query.get("dataset")
    source = (
        DATASET if dataset in dataset_ids and not params.get("initial_condition_id") else UPLOAD
    )
    if source == UPLOAD and ic not in ic_ids:
        # Asked for models (?models=…): a field of their flow, never another flow's.
        flows = {m["flow"] for m in catalog["models"] if m["id"] in (query.get("models") or [])}
        fitting = [i for i in ics if not flows or i["flow"] in flows]
        ic = fitting[0]["id"] if fitting else None
    if source == UPLOAD and not ics and datasets:
        source = DATASET
    if dataset not in dataset_ids:
        dataset = datasets[0]["id"] if datasets else None
    entries = params.get("models") or [
        {"model_id": m, "precision": "float32"} for m in query.get("models") or []
    ]
    precisions: dict[str, list[str]] = {}
    for entry in entries:
        precisions.setdefault(entry["model_id"], []).append(entry.get("precision") or "float32")
    trajectory = params.get("trajectory", query.get("trajectory"))
    prefill = {
        "models": list(precisions),
        "precisions": precisions,
        "trajectory": int(trajectory) if trajectory not in (None, "") else None,
    }
    times = params.get("report_times")
    return (
        catalog,
        ic_options(ics),
        ic,
        "Choose an initial condition" if ics else "No uploaded field yet",
        dataset_options(datasets),
        dataset,
        source,
        params.get("steps") or DEFAULT_STEPS,
        params.get("divergence_factor") or DEFAULT_DIVERGENCE,
        params.get("interval"),
        [] if params.get("reference") is False else ["on"],
        ", ".join(f"{t:g}" for t in times) if times else None,
        prefill,
        params.get("baselines") or [],
        params.get("window"),
    )


@callback(
    Output("compare-upload-row", "className"),
    Output("compare-dataset-row", "className"),
    Input("compare-source", "value"),
)
def toggle_source(source: str | None):
    if source == DATASET:
        return "form-row hidden", "form-row"
    return "form-row", "form-row hidden"


@callback(
    Output("compare-models", "options"),
    Output("compare-models", "value"),
    Output("compare-models-note", "children"),
    Input("compare-catalog", "data"),
    Input("compare-source", "value"),
    Input("compare-ic", "value"),
    Input("compare-dataset", "value"),
    Input("compare-models", "value"),
    State("compare-prefill", "data"),
)
def update_models(catalog, source, ic, dataset, chosen, prefill):
    if not catalog:
        raise PreventUpdate
    if ctx.triggered_id == "compare-catalog" and (prefill or {}).get("models"):
        chosen = prefill["models"]
    flow = source_flow(catalog, source, ic, dataset)
    options, kept, note = model_options(catalog["models"], flow, chosen or [])
    return options, kept, note


@callback(
    Output("compare-fit", "children"),
    Input("compare-source", "value"),
    Input("compare-ic", "value"),
    Input("compare-models", "value"),
)
async def update_fit(source, ic, chosen):
    """Before Start: the chosen models whose training inputs the uploaded field is far
    from (a dataset's trajectory is the models' own kind of data: no advice)."""
    if source != UPLOAD:
        return []
    return await fit_advice.advice_for(ic, list(chosen or []), "compare")


@callback(
    Output("compare-trajectory", "options"),
    Output("compare-trajectory", "value"),
    Output("compare-trajectory-note", "children"),
    Input("compare-catalog", "data"),
    Input("compare-dataset", "value"),
    Input("compare-models", "value"),
    State("compare-trajectory", "value"),
    State("compare-prefill", "data"),
)
def update_trajectories(catalog, dataset_id, chosen, current, prefill):
    if not catalog:
        raise PreventUpdate
    dataset = next((d for d in catalog["datasets"] if d["id"] == dataset_id), None)
    by_id = {m["id"]: m for m in catalog["models"]}
    models = [by_id[c] for c in chosen or [] if c in by_id]
    options, default, note = trajectory_options(dataset, models)
    values = {o["value"] for o in options}
    wanted = (prefill or {}).get("trajectory")
    if ctx.triggered_id == "compare-catalog" and wanted in values:
        value = wanted
    elif ctx.triggered_id == "compare-models" and current in values:
        value = current
    else:
        value = default
    return options, value, note


@callback(
    Output("compare-precisions", "children"),
    Input("compare-models", "value"),
    State("compare-catalog", "data"),
    State({"type": "compare-precision", "model": ALL}, "value"),
    State({"type": "compare-precision", "model": ALL}, "id"),
    State("compare-prefill", "data"),
)
def update_precisions(chosen, catalog, values, ids, prefill):
    current = dict((prefill or {}).get("precisions") or {})
    current |= {i["model"]: v for i, v in zip(ids or [], values or [], strict=False) if v}
    models = {m["id"]: m for m in (catalog or {}).get("models") or []}
    return precision_rows(chosen or [], models, current)


@callback(
    # One change of address (href): setting the path and the query as two props made two
    # navigations, the second back to the old path when the page had a query (?model=…).
    Output("compare-url", "href"),
    Output("compare-feedback", "children"),
    Input("compare-start", "n_clicks"),
    State("compare-source", "value"),
    State("compare-ic", "value"),
    State("compare-dataset", "value"),
    State("compare-trajectory", "value"),
    State("compare-models", "value"),
    State({"type": "compare-precision", "model": ALL}, "value"),
    State({"type": "compare-precision", "model": ALL}, "id"),
    State("compare-steps", "value"),
    State("compare-dt", "value"),
    State("compare-reference", "value"),
    State("compare-divergence", "value"),
    State("compare-report-times", "value"),
    State("compare-catalog", "data"),
    State("compare-baselines", "value"),
    State("compare-window", "value"),
    prevent_initial_call=True,
)
async def start(
    n_clicks,
    source,
    ic,
    dataset,
    trajectory,
    chosen,
    values,
    ids,
    steps,
    dt,
    reference,
    divergence,
    report_text,
    catalog,
    baselines,
    window,
):
    """Submit the comparison, then go to its address, /compare/<job id>: the page is drawn
    again for that run (the same view as reopening it later) and follows it live."""
    if not n_clicks:
        raise PreventUpdate

    def refuse(message: str):
        return no_update, alert(message, "error")

    if source == DATASET and not dataset:
        return refuse("Initial condition: choose a dataset and a trajectory.")
    if source != DATASET and not ic:
        return refuse("Initial condition: choose an uploaded field (or a dataset trajectory).")
    entries = entries_of(chosen, values, ids)
    is_channel = channel.is_channel_flow(source_flow(catalog or {}, source, ic, dataset))
    if is_channel and not entries:
        return refuse("Models: choose one or more 3D channel models.")
    if is_channel and len(entries) + len(baselines or []) < 2:
        return refuse(
            "Models: choose two or more models, or a model and one or more baselines; a "
            "single model is rolled out on the Rollout page."
        )
    if len(entries) < 2 and not is_channel:
        return refuse(
            "Models: choose two or more models (or one model at two precisions); a single "
            "model is rolled out on the Rollout page."
        )
    if len(entries) > MAX_ENTRIES:
        return refuse(
            f"Models: {len(entries)} (model, precision) columns chosen; a comparison takes "
            f"at most {MAX_ENTRIES}."
        )
    if steps in (None, ""):
        return refuse("Horizon: enter how many steps to roll out (1 to 10,000).")
    try:
        times = parse_times(report_text)
    except ValueError as exc:
        return refuse(str(exc))
    params = compare_params(
        source, ic, dataset, trajectory, entries, steps, dt, reference, divergence, times
    )
    if is_channel:
        params = channel.channel_params(params, baselines, window)
    try:
        job = await asyncio.to_thread(jobs_view.submit_job, get_state(), "compare", params)
    except jobs_view.InvalidParams as exc:
        return refuse(str(exc))
    return f"/compare/{job['id']}", None


@callback(
    Output("compare-run", "data"),
    Output("compare-setup", "data"),
    Output("compare-series", "data"),
    Output("compare-summary", "data"),
    Output("compare-status", "children"),
    Output("compare-details", "children"),
    Output("compare-ic-note", "children"),
    Output("compare-exports", "children"),
    Output("compare-interval", "disabled"),
    Output("compare-slider", "max"),
    Output("compare-slider", "value"),
    Output("compare-slider", "marks"),
    Output("compare-slider-wrap", "className"),
    Output("compare-ch-stats", "data"),
    Output("compare-cancel", "hidden"),
    Output("compare-redraw", "data"),
    Output("compare-ch-tick", "data"),
    Output("compare-hit3d-tick", "data"),
    Input("compare-interval", "n_intervals"),
    State("compare-run", "data"),
    State("compare-setup", "data"),
    State("compare-series", "data"),
    State("compare-slider", "value"),
    State("compare-slider", "max"),
    State("compare-ch-stats", "data"),
    prevent_initial_call=True,
)
async def poll(_n, run, setup, series, slider, slider_max, channel_stats):
    run = dict(run or {})
    if not run.get("ref"):
        raise PreventUpdate
    reset = False
    # A run store this poll did not fill (the page's first tick, or one the push wrote
    # before the page fell back to polling) is read again from the first event.
    if not run.get("job_id") or not run.get("polled"):
        found = await asyncio.to_thread(rollouts.resolve, get_state(), run["ref"], "compare")
        if found is None or found["job"] is None:
            message = alert(
                f"There is no comparison or compare job with id {run['ref']!r}.", "error"
            )
            return (
                ({}, no_update, no_update, no_update, message, [], None, None, True)
                + (no_update,) * 5
                + (True, no_update, no_update)
            )
        run = {"ref": run["ref"], "job_id": found["job"]["id"], "seq": 0, "polled": True}
        reset = True
    update = await asyncio.to_thread(
        rollouts.poll_comparison, get_state(), run["job_id"], run.get("seq") or 0
    )
    job = update["job"]
    if job is None:
        gone = alert("The job was deleted.", "error")
        return (
            ({}, no_update, no_update, no_update, gone, [], None, None, True)
            + (no_update,) * 5
            + (True, no_update, no_update)
        )
    events = update["events"]
    rollout = update["rollout"]
    run.update(
        status=job["status"],
        progress=job["progress"],
        message=job["message"],
        error=job["error"],
        queue=job["queue"],
        steps=job["params"].get("steps"),
        started_at=job.get("started_at"),
    )
    if job["status"] == "queued":
        run["place"] = await asyncio.to_thread(
            jobs_view.queue_place, get_state(), job["id"], job["queue"]
        )
    if rollout is not None:
        run.update(rollout_id=rollout["id"], flow=rollout["flow"], resolution=rollout["resolution"])
    new_setup = next((e for e in events if e["type"] == "compare_setup"), None)
    metrics = [e for e in events if e["type"] == "metrics"]
    summary = next((e for e in events if e["type"] == "summary"), None)
    if summary is None and reset and job["status"] in FINAL:
        summary = (job.get("result") or {}).get("summary")
    if events:
        run["seq"] = events[-1]["seq"]
    if new_setup is not None:
        setup = new_setup
        run["rollout_id"] = run.get("rollout_id") or new_setup.get("rollout_id")
    is_channel = channel.is_channel_setup(setup)
    is_box = hit3d.is_hit3d_setup(setup)
    if reset or new_setup is not None:
        series_out: Any = (
            channel.series_from(setup, metrics) if is_channel else series_from(setup, metrics)
        )
        run["frames"] = len(metrics)
    elif metrics and is_channel:
        series_out = channel.series_patch(series, metrics)
        run["frames"] = run.get("frames", 0) + len(metrics)
    elif metrics:
        keys = list((series or {}).get("models") or {})
        series_out = series_patch(keys, (series or {}).get("status") or {}, metrics)
        run["frames"] = run.get("frames", 0) + len(metrics)
    else:
        series_out = no_update
    final = job["status"] in FINAL and update["complete"]
    run["final"] = final

    # What tells the views to draw again: the 2D grid (``views``) or the channel views.
    redraw = run.get("frames", 0) if (metrics or reset or new_setup is not None) else no_update
    frames = run.get("frames", 0)
    if frames > 0 and (metrics or reset):
        last = frames - 1
        following = slider is None or slider >= (slider_max or 0)
        marks = slider_marks(last)
        slider_out = (last, last if following else no_update, marks, "compare-player")
    else:
        slider_out = (no_update,) * 4
    return (
        run,
        setup if (reset or new_setup is not None) else no_update,
        series_out,
        summary if summary is not None else no_update,
        status_line(run),
        channel.run_details(run, setup) if is_channel else run_details(run, setup),
        None if is_channel else ic_note(setup),
        export_links(
            run.get("rollout_id"), channel=is_channel or is_box, partial=partial_note(run)
        ),
        final,
        *slider_out,
        channel.stats_update(channel_stats, events, reset or new_setup is not None)
        if is_channel
        else no_update,
        job["status"] not in ("queued", "running"),
        redraw if not is_channel else no_update,
        redraw if is_channel else no_update,
        [frames, final] if is_box and (redraw is not no_update or summary or final) else no_update,
    )


@callback(
    Output("compare-cancel-feedback", "children"),
    Output("compare-cancel", "disabled"),
    Input("compare-cancel", "n_clicks"),
    State("compare-run", "data"),
    prevent_initial_call=True,
)
async def cancel(n_clicks, run):
    """Cancel the comparison through the same service as the Runs page's Cancel."""
    job_id = (run or {}).get("job_id")
    if not n_clicks or not job_id:
        raise PreventUpdate
    job = await asyncio.to_thread(jobs_view.cancel_job, get_state(), job_id)
    if job is None:
        return alert("The job was deleted.", "error"), True
    if job["status"] == "cancelled":
        return alert("Cancelled: a running worker stops at its next step.", "info"), True
    return alert(f"The job had already ended ({job['status']}).", "info"), True


@callback(
    Output("compare-grid", "children"),
    Output("compare-grid", "style"),
    Output("compare-grid-ready", "data"),
    Input("compare-setup", "data"),
    State("compare-grid-ready", "data"),
    State("compare-run", "data"),
    prevent_initial_call=True,
)
def build_grid(setup, built, run):
    """Lay out the grid when a setup arrives by polling (a followed run's push lays it out
    itself, with its first frame drawn, before it sends the setup: nothing to do then).
    ``compare-grid-ready`` (the column keys) is what ``views`` waits on: an input lighter
    than the grid, whose children (every figure in it) the browser would send each call."""
    columns = columns_of(setup)
    if not columns or channel.is_channel_setup(setup):
        raise PreventUpdate
    if built == [c["key"] for c in columns]:
        raise PreventUpdate
    return grid_shells(setup, run or {})


@callback(
    Output({"type": "compare-field", "col": ALL}, "figure"),
    Output({"type": "compare-head", "col": ALL}, "children"),
    Output("compare-spectra", "figure"),
    Output("compare-error", "figure"),
    Output("compare-corr", "figure"),
    Output("compare-energy", "figure"),
    Output("compare-frame-label", "children"),
    Output("compare-shown", "data"),
    Input("compare-redraw", "data"),
    Input("compare-slider", "value"),
    Input("compare-grid-ready", "data"),
    Input("compare-summary", "data"),
    State("compare-series", "data"),
    State("compare-setup", "data"),
    State("compare-run", "data"),
    State("compare-shown", "data"),
    prevent_initial_call=True,
)
async def views(_redraw, slider, _grid, summary, series, setup, run, shown_before):
    """Redraw when the polling fallback read new steps, the slider moves, the grid is laid
    out or the summary arrives (the push draws the live frames itself)."""
    run = run or {}
    series = series or empty_series()
    if channel.is_channel_setup(setup) or series.get("geometry") == channel.CHANNEL:
        raise PreventUpdate
    field_ids = [o["id"]["col"] for o in ctx.outputs_list[0]]
    head_ids = [o["id"]["col"] for o in ctx.outputs_list[1]]
    if not columns_of(setup) or not field_ids:
        raise PreventUpdate
    step = shown_step(series, slider)
    if (
        run.get("push")
        and ctx.triggered_id == "compare-slider"
        and step is not None
        and step == shown_before
    ):
        raise PreventUpdate  # the push moved the slider to the frame it has just drawn
    triggers = {t["prop_id"] for t in ctx.triggered}
    steps = series.get("step") or []
    following = slider is None or bool(steps and slider >= len(steps) - 1)
    if run.get("push") and (
        "compare-grid-ready.data" in triggers
        or (triggers == {"compare-summary.data"} and following)
    ):
        # The push lays out the grid with the newest frame drawn in it, and draws the last
        # frame with the summary's verdicts (``follow``): drawing them here too would
        # render every figure twice. (Dash calls this for the grid's new graphs with every
        # input marked as triggered.) A summary while the user looks at an earlier frame
        # still redraws that frame's headers here.
        raise PreventUpdate
    if step is None:
        headers = head_views(series, summary, setup, run, head_ids)
        return ([no_update] * len(field_ids), headers) + (no_update,) * 6
    redraw = bool(run.get("rollout_id")) and (
        step != shown_before or ctx.triggered_id in ("compare-grid-ready", "compare-summary")
    )
    drawn = await asyncio.to_thread(
        render, series, step, setup, run, summary, field_ids, head_ids, redraw, following
    )
    fields = [drawn["fields"].get(k, no_update) for k in field_ids]
    return (
        fields,
        drawn["headers"],
        drawn["spectra"],
        drawn["error"],
        drawn["corr"],
        drawn["energy"],
        drawn["label"],
        step,
    )


def _states(series, summary, setup, run) -> dict[str, dict[str, Any]]:
    rows = {str(r.get("index")): r for r in (summary or {}).get("rows") or []}
    return {
        c["key"]: column_status(
            c, (series.get("status") or {}).get(c["key"]), rows.get(c["key"]), run.get("status")
        )
        if c["key"] != REFERENCE
        else column_status(c, None, None, run.get("status"))
        for c in columns_of(setup)
    }


def head_views(series, summary, setup, run, head_ids) -> list[Any]:
    by_key = {c["key"]: c for c in columns_of(setup)}
    states = _states(series, summary, setup, run)
    return [column_header(by_key[k], states[k], setup) if k in by_key else None for k in head_ids]


def render(series, step, setup, run, summary, field_ids, head_ids, redraw, following):
    """The grid's figures (when ``redraw``), the column headers, the overlays and the frame
    label of ``step``: what ``views`` returns and the push sends. Each figure's
    ``layout.meta.step`` names the step it shows. Blocking (reads frames): call it in a
    thread."""
    columns = columns_of(setup)
    states = _states(series, summary, setup, run)
    latest = series.get("latest") or {}
    revision = run.get("rollout_id") or run.get("job_id")
    with_error = bool((setup or {}).get("reference", True))
    frames: dict[str, Any] = {}
    if redraw:
        sources = []
        for c in columns:
            if c["key"] == REFERENCE:
                sources.append("reference")
            else:
                sources.append(f"model:{c['key']}")
                if with_error:
                    sources.append(f"error:{c['key']}")
        frames, _t = rollouts.comparison_frames(get_state(), run["rollout_id"], int(step), sources)
    metrics = (
        latest
        if latest.get("step") == step
        else rollouts.step_metrics(get_state(), run["job_id"], int(step))
    ) or {}
    field_figs: dict[str, Any] = {}
    if redraw:
        fields = {
            c["key"]: frames.get("reference" if c["key"] == REFERENCE else f"model:{c['key']}")
            for c in columns
        }
        errors = {
            c["key"]: frames.get(f"error:{c['key']}") for c in columns if c["key"] != REFERENCE
        }
        grid_columns = [
            {
                "key": c["key"],
                **panel_notes(
                    c, states[c["key"]], step, (series.get("status") or {}).get(c["key"])
                ),
            }
            for c in columns
        ]
        length = flow_length(run.get("flow") or "ns2d-forced")
        field_figs = cf.grid_figures(
            grid_columns,
            fields,
            errors,
            with_error_row=with_error,
            length=length,
            uirevision=revision,
            plain=True,
        )
        field_figs = {k: _with_step(fig, step) for k, fig in field_figs.items() if k in field_ids}

    entries = [c for c in columns if c["key"] != REFERENCE]
    entry_views = [{**c, **states[c["key"]]} for c in entries]
    t_now = metrics.get("t")
    spectra = cf.spectra_figure(
        metrics.get("k"),
        (metrics.get("reference") or {}).get("spectrum") if metrics.get("reference") else None,
        [
            (
                c["label"],
                c["color"],
                ((metrics.get("models") or {}).get(c["key"]) or {}).get("spectrum"),
            )
            for c in entries
        ],
        title=f"Energy spectra · t = {t_now:.4g}" if t_now is not None else "Energy spectra",
        uirevision=revision,
        plain=True,
    )
    live = following and not run.get("final")
    marker = None if live else t_now
    models = series.get("models") or {}
    last = (series.get("step") or [None])[-1]
    curves = dict(marker_t=marker, uirevision=revision, plain=True, live=live)
    if with_error:
        error = cf.error_growth_figure(series.get("t"), entry_views, models, **curves)
        corr = cf.correlation_figure(series.get("t"), entry_views, models, **curves)
    else:
        error = empty_figure(REFERENCE_OFF.format("errors"), revision)
        corr = empty_figure(REFERENCE_OFF.format("correlations"), revision)
    energy = cf.energy_enstrophy_figure(
        series.get("t"), series.get("reference"), entry_views, models, **curves
    )
    total = run.get("steps")
    label = (
        (f"t = {t_now:.4g} · " if t_now is not None else "")
        + f"step {step}"
        + (f" of {total}" if total else "")
    )
    if live:
        label += " · following the newest frame"
    by_key = {c["key"]: c for c in columns}
    headers = [
        column_header(by_key[k], states[k], setup) if k in by_key else None for k in head_ids
    ]
    return {
        "fields": field_figs,
        "headers": headers,
        "spectra": _with_step(spectra, step),
        "error": _with_step(error, last),
        "corr": _with_step(corr, last),
        "energy": _with_step(energy, last),
        "label": label,
        "step": step,
    }


def _with_step(fig: Any, step: Any) -> Any:
    """``fig`` with ``layout.meta.step`` (tests and bench/ui_latency.py read it)."""
    if hasattr(fig, "update_layout"):
        fig.update_layout(meta={"step": step})
    elif isinstance(fig, dict):
        fig = {**fig, "layout": {**(fig.get("layout") or {}), "meta": {"step": step}}}
    return fig


@callback(
    Output("compare-slider", "value", allow_duplicate=True),
    Output("compare-play-timer", "disabled"),
    Output("compare-play", "children"),
    Input("compare-play", "n_clicks"),
    Input("compare-play-timer", "n_intervals"),
    State("compare-slider", "value"),
    State("compare-slider", "max"),
    State("compare-play-timer", "disabled"),
    State("compare-run", "data"),
    prevent_initial_call=True,
)
def play(_clicks, _ticks, value, last, paused, run):
    """Play/Pause: each tick moves the slider one frame on; at the newest frame a finished
    comparison pauses, a running one waits there (the slider then follows new frames)."""
    last = int(last or 0)
    value = last if value is None else int(value)
    final = bool((run or {}).get("final"))
    if ctx.triggered_id == "compare-play":
        if paused:
            start_at = 0 if value >= last and final else value
            return start_at, False, "❚❚ Pause"
        return no_update, True, "▶ Play"
    if paused:
        raise PreventUpdate
    if value >= last:
        if final:
            return no_update, True, "▶ Play"
        raise PreventUpdate
    return value + 1, no_update, no_update


@callback(
    Output("compare-table", "columns"),
    Output("compare-table", "data"),
    Output("compare-table", "style_data_conditional"),
    Output("compare-summary-note", "children"),
    Input("compare-summary", "data"),
    prevent_initial_call=True,
)
def summary_table(summary):
    rows = (summary or {}).get("rows") or []
    if not rows or channel.is_channel_summary(summary):
        raise PreventUpdate
    table = cf.summary_table(rows)
    styles = [
        {
            "if": {"filter_query": f"{{index}} = {r['index']}", "column_id": "model"},
            "color": cf.entry_color(r["index"]),
            "fontWeight": 600,
        }
        for r in rows
        if r.get("index") is not None
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
    times = ", ".join(table["times"])
    note = (
        f"Relative L2 error at t = {times}; decorrelation: the first t with correlation "
        "below 0.8 (empty: never); band errors: time averages of the error in |k| < n/8, "
        "n/8–n/4 and above, each as a fraction of the whole field (their squares add up to "
        "the relative L2²); times: medians per step on this worker. Click a header to sort."
    )
    return table["columns"], table["data"], styles, note


# --- push -------------------------------------------------------------------------------


@callback(
    # An output, so the callback also fires when the pages router draws the page.
    Output("compare-push-beat", "data"),
    Input("compare-push", "data"),
    websocket=True,
)
async def push(data):
    """Follow the comparison on the server and push what is new (``app.ui.live``); nothing
    when there is no socket (the page then polls)."""
    ws = ctx.websocket
    if ws is None or not isinstance(data, dict) or not data.get("ref") or data.get("off"):
        raise PreventUpdate
    async with live.slot(ws) as free:
        if free:
            await follow(live.Push(ws, "compare", data))
    return no_update


def _extend(series: dict[str, Any], metrics: list[dict[str, Any]], is_channel: bool) -> None:
    """``series`` (a local copy of the page's series store) with ``metrics`` appended."""
    if is_channel:
        values = channel.series_values(metrics, list(series.get("columns") or {}))
        for key, columns in values["columns"].items():
            for name, new in columns.items():
                series["columns"].setdefault(key, {}).setdefault(name, []).extend(new)
        for name, new in values["reference"].items():
            series["reference"].setdefault(name, []).extend(new)
        series["status"] = channel.status_after(series["status"], metrics)
    else:
        values = series_values(metrics, list(series.get("models") or {}))
        for key, columns in values["models"].items():
            for name, new in columns.items():
                series["models"][key][name].extend(new)
        for name, new in values["reference"].items():
            series["reference"][name].extend(new)
        series["status"] = status_after(series["status"], metrics)
    series["t"].extend(values["t"])
    series["step"].extend(values["step"])
    series["latest"] = metrics[-1]


async def follow(push_: live.Push) -> None:
    state, ref = get_state(), push_.ref
    found = await asyncio.to_thread(rollouts.resolve, state, ref, "compare")
    if found is None or found["job"] is None:
        message = alert(f"There is no comparison or compare job with id {ref!r}.", "error")
        set_props("compare-status", {"children": message})
        set_props("compare-cancel", {"hidden": True})
        push_.beat(final=True)
        return
    run: dict[str, Any] = {
        "ref": ref,
        "job_id": found["job"]["id"],
        "seq": 0,
        "frames": 0,
        "push": True,
    }
    setup: dict[str, Any] | None = None
    series: dict[str, Any] = empty_series()
    summary: dict[str, Any] | None = None
    stats: Any = None
    pending: list[dict[str, Any]] = []  # metrics not yet in the page's series store
    page_status: dict[str, Any] = {}  # the column statuses the page's store holds
    sent: dict[str, Any] = {}
    grid_ready = False
    try:  # the column keys of the grid the page was drawn with (layout.planned)
        laid = await push_.ask("compare-grid-ready", "data")
    except live.NoAnswer:
        return
    following = True
    slider_at = None  # where the page's slider is (None: untouched, following)
    newest = 0
    next_place = 0.0
    while await push_.page_shows_run():
        update = await asyncio.to_thread(rollouts.poll_comparison, state, run["job_id"], run["seq"])
        job = update["job"]
        if job is None:
            set_props("compare-status", {"children": alert("The job was deleted.", "error")})
            set_props("compare-cancel", {"hidden": True})
            push_.beat(final=True)
            return
        events, rollout = update["events"], update["rollout"]
        first = run["seq"] == 0
        run.update(
            status=job["status"],
            progress=job["progress"],
            message=job["message"],
            error=job["error"],
            queue=job["queue"],
            steps=job["params"].get("steps"),
            started_at=job.get("started_at"),
        )
        if job["status"] == "queued" and time.monotonic() >= next_place:
            run["place"] = await asyncio.to_thread(
                jobs_view.queue_place, state, job["id"], job["queue"]
            )
            next_place = time.monotonic() + live.HEARTBEAT_S
        if rollout is not None:
            run.update(
                rollout_id=rollout["id"], flow=rollout["flow"], resolution=rollout["resolution"]
            )
        new_setup = next((e for e in events if e["type"] == "compare_setup"), None)
        metrics = [e for e in events if e["type"] == "metrics"]
        new_summary = next((e for e in events if e["type"] == "summary"), None)
        if new_summary is None and first and job["status"] in FINAL:
            new_summary = (job.get("result") or {}).get("summary")
        if events:
            run["seq"] = events[-1]["seq"]
        is_channel = channel.is_channel_setup(new_setup or setup)
        reset_series = False
        if new_setup is not None:
            setup = new_setup
            run["rollout_id"] = run.get("rollout_id") or new_setup.get("rollout_id")
            series = channel.series_from(setup, []) if is_channel else series_from(setup, [])
            pending, page_status, reset_series = [], {}, True
            # The grid laid out from the job's parameters fits when it has the same columns.
            grid_ready = not is_channel and laid == [c["key"] for c in columns_of(setup)]
        elif setup is None and laid and job["status"] in FINAL:
            set_props("compare-grid", {"children": [], "style": {}})  # it never started
            set_props("compare-grid-ready", {"data": None})
            laid = []
        if metrics:
            _extend(series, metrics, is_channel)
            pending.extend(metrics)
            run["frames"] += len(metrics)
        if is_channel:
            changed_stats = channel.stats_update(stats, events, new_setup is not None)
            if changed_stats is not no_update:
                stats = changed_stats
        else:
            changed_stats = no_update
        final = job["status"] in FINAL and update["complete"]
        run["final"] = final
        if not update["complete"]:
            continue  # more than one page of events behind: read on before drawing
        status = status_line(run)
        status_json = live.as_sent(status)
        is_box = hit3d.is_hit3d_setup(setup)
        # The setup store starts the mode toggle's and the grid's callbacks (HTTP round
        # trips, which would compete with the first frames). On the page of a 2D run, which
        # the push lays out and draws itself, they have nothing to do, so it goes only when
        # ``views`` needs it: the user left the newest frame, or the run ended (views then
        # draws the frame the slider chose). A channel or hit3d run's views need it at once.
        plane = setup is not None and not is_channel and not is_box
        setup_due = (
            setup is not None and not sent.get("setup") and (not plane or final or not following)
        )
        if not (
            metrics
            or new_setup
            or new_summary
            or final
            or setup_due
            or status_json != sent.get("status")
        ):
            push_.beat_if_due()
            newest = await push_.wait_for_news(run["job_id"], newest, job["status"] == "queued")
            continue
        summary_due = new_summary is not None
        if summary_due:
            summary = new_summary  # the headers drawn below give its verdicts
        # The frame is read and its figures built before anything is set: set_props calls
        # that arrive within a few ms of each other reach the page as one batch, which the
        # renderer applies in one render (fields, status and curves agree); a wait between
        # them would send the status a render ahead of the field.
        keys = [c["key"] for c in columns_of(setup)] if setup and not is_channel else []
        drawn = None
        if keys and series["step"] and run.get("rollout_id") and (following or not grid_ready):
            step = series["step"][-1]
            drawn = await asyncio.to_thread(
                render, series, step, setup, run, summary, keys, keys, True, True
            )
        # One batch from here on.
        if new_setup is not None:
            set_props("compare-ic-note", {"children": None if is_channel else ic_note(setup)})
        if reset_series or pending:
            if reset_series or not sent.get("series"):
                value: Any = series
            elif is_channel:
                value = channel.series_patch({**series, "status": page_status}, pending)
            else:
                value = series_patch(list(series.get("models") or {}), page_status, pending)
            set_props("compare-series", {"data": value})
            page_status, pending, sent["series"] = dict(series["status"]), [], True
        if changed_stats is not no_update:
            set_props("compare-ch-stats", {"data": changed_stats})
        if is_channel and (reset_series or metrics):
            set_props("compare-ch-tick", {"data": run["frames"]})
        if is_box and (reset_series or metrics or summary_due or final):
            set_props("compare-hit3d-tick", {"data": [run["frames"], final]})
        set_props("compare-status", {"children": status})
        details = channel.run_details(run, setup) if is_channel else run_details(run, setup)
        details_json = live.as_sent(details)
        if details_json != sent.get("details"):
            set_props("compare-details", {"children": details})
        exports = export_links(
            run.get("rollout_id"), channel=is_channel or is_box, partial=partial_note(run)
        )
        exports_json = live.as_sent(exports)
        if exports_json != sent.get("exports"):
            set_props("compare-exports", {"children": exports})
        # Only what changed goes: every prop set is work for the page in this render.
        hidden = job["status"] not in ("queued", "running")
        if hidden != sent.get("cancel_hidden"):
            set_props("compare-cancel", {"hidden": hidden})
        set_props("compare-run", {"data": run})
        frames = run["frames"]
        if frames > 0:
            last = frames - 1
            slider = {"max": last}
            marks = slider_marks(last)
            if marks != sent.get("marks"):
                slider["marks"] = marks
            if following and slider_at is not None:
                # Left at the end by the user: it follows. (Left empty, it follows anyway,
                # and views is not asked to redraw what the push draws.)
                slider["value"] = last
            set_props("compare-slider", slider)
            if not sent.get("player"):
                set_props("compare-slider-wrap", {"className": "compare-player"})
            sent.update(marks=marks, player=True)
        if keys and not grid_ready:
            # The push lays out the grid itself, its first frame drawn in it (no empty plots
            # redrawn a moment later, no wait for an HTTP call), before the setup: build_grid
            # then finds it built, and views (the run store says push) leaves it alone.
            shells, style, _keys = grid_shells(setup, run, drawn)
            set_props("compare-grid", {"children": shells, "style": style})
            set_props("compare-grid-ready", {"data": keys})
            grid_ready, laid = True, keys
        elif drawn is not None:
            for key in keys:
                if key in drawn["fields"]:
                    figure = drawn["fields"][key]
                    set_props({"type": "compare-field", "col": key}, {"figure": figure})
            for key, head in zip(keys, drawn["headers"], strict=True):
                head_json = live.as_sent(head)
                if head_json != sent.get(("head", key)):
                    set_props({"type": "compare-head", "col": key}, {"children": head})
                    sent[("head", key)] = head_json
        if drawn is not None:
            for graph_id in ("spectra", "error", "corr", "energy"):
                set_props(f"compare-{graph_id}", {"figure": drawn[graph_id]})
            set_props("compare-frame-label", {"children": drawn["label"]})
            set_props("compare-shown", {"data": drawn["step"]})
        if setup_due:
            set_props("compare-setup", {"data": setup})
            sent["setup"] = True
            if plane and not following and not final:
                set_props("compare-redraw", {"data": run["frames"]})
        push_.beat(final=final and not summary_due)
        sent.update(
            status=status_json, details=details_json, exports=exports_json, cancel_hidden=hidden
        )
        if summary_due:
            # The summary store starts the table's callbacks (HTTP round trips and a
            # DataTable render): set it once the page has drawn the frame sent with it,
            # so that the last frame does not wait for them.
            if drawn is not None and not await push_.page_shows_run(now=True):
                return
            set_props("compare-summary", {"data": summary})
            push_.beat(final=final)
        if final:
            return
        # The page answers after it applied this batch (one frame in flight), and says
        # where its slider is: away from the newest frame, the push leaves the fields alone.
        try:
            at = await push_.ask("compare-slider", "value")
        except live.NoAnswer:
            return
        slider_at = at
        following = at is None or at >= run["frames"] - 1
        push_.beat_if_due()
        newest = await push_.wait_for_news(run["job_id"], newest, job["status"] == "queued")


live.register_watchdog("compare")
