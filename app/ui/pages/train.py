"""``/train``: train an FNO2d on a dataset and watch its loss curve live: training loss
per event and validation relative L2 per epoch against the persistence baseline."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import Input, Output, Patch, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.ui import data, figures
from app.ui.components import (
    CHART_GRAPH,
    alert,
    card,
    fmt_count,
    fmt_number,
    fmt_shape,
    form_row,
    number_input,
    page,
    progress_bar,
    status_badge,
)

POLL_MS = 1000
FINAL = ("succeeded", "failed", "cancelled")
DEFAULTS = {"epochs": 20, "lr": 1e-3, "batch_size": 16, "width": 32, "modes": 12, "n_layers": 4}


def layout(job: str | None = None, dataset: str | None = None, **_query: Any) -> html.Main:
    return page(
        "Train",
        "A Fourier neural operator (FNO2d) learns the one-step map ω(t) → ω(t + Δt) "
        "from a dataset's snapshot pairs.",
        dcc.Store(id="train-query", data={"dataset": dataset}),
        dcc.Store(id="train-run", data={"job_id": job, "seq": 0} if job else {}),
        dcc.Store(id="train-events", data={"train": [], "epoch": []}),
        dcc.Interval(id="train-interval", interval=POLL_MS, disabled=job is None),
        html.Div(
            [
                card(
                    "Set up",
                    form_row(
                        "Dataset",
                        dcc.Dropdown(
                            id="train-dataset",
                            placeholder="Loading…",
                            clearable=False,
                            className="dropdown",
                        ),
                    ),
                    form_row(
                        "Name",
                        dcc.Input(
                            id="train-name",
                            type="text",
                            placeholder="optional",
                            className="input",
                        ),
                    ),
                    html.H3("Optimisation", className="form-section"),
                    html.Div(
                        [
                            form_row(
                                "Epochs",
                                number_input("train-epochs", DEFAULTS["epochs"], min=1, step=1),
                            ),
                            form_row(
                                "Learning rate",
                                number_input("train-lr", DEFAULTS["lr"], min=0, step="any"),
                            ),
                            form_row(
                                "Batch size",
                                number_input("train-batch", DEFAULTS["batch_size"], min=1, step=1),
                            ),
                        ],
                        className="form-inline",
                    ),
                    html.H3("FNO2d", className="form-section"),
                    html.Div(
                        [
                            form_row(
                                "Width",
                                number_input("train-width", DEFAULTS["width"], min=1, step=1),
                            ),
                            form_row(
                                "Modes",
                                number_input("train-modes", DEFAULTS["modes"], min=1, step=1),
                            ),
                            form_row(
                                "Layers",
                                number_input("train-layers", DEFAULTS["n_layers"], min=1, step=1),
                            ),
                        ],
                        className="form-inline",
                    ),
                    html.Div(id="train-param-count", className="muted small"),
                    html.Button(
                        "Start training",
                        id="train-start",
                        className="button button-primary",
                        n_clicks=0,
                    ),
                    html.Div(id="train-feedback"),
                    className="setup-card",
                ),
                card(
                    "Run",
                    html.Div(
                        html.Span(
                            "Nothing training. Choose a dataset and press Start.", className="muted"
                        ),
                        id="train-status",
                        className="status-line",
                    ),
                    html.Div(id="train-summary", className="run-details"),
                    dcc.Graph(
                        id="train-loss",
                        figure=figures.empty_figure("The loss curve appears when training starts."),
                        config=CHART_GRAPH,
                        className="graph graph-tall",
                    ),
                    className="status-card",
                ),
            ],
            className="grid-setup",
        ),
    )


def config_of(width: Any, modes: Any, layers: Any) -> dict[str, Any]:
    return {"width": width, "modes": modes, "n_layers": layers}


@callback(
    Output("train-dataset", "options"),
    Output("train-dataset", "value"),
    Output("train-dataset", "placeholder"),
    Input("train-query", "data"),
)
async def load_datasets(query: dict[str, Any] | None):
    datasets = await asyncio.to_thread(data.list_datasets)
    options = [
        {
            "label": f"{d['name']} · {d['flow']} · {fmt_shape(d['shape'])}",
            "value": d["id"],
        }
        for d in datasets
    ]
    ids = [d["id"] for d in datasets]
    wanted = (query or {}).get("dataset")
    value = wanted if wanted in ids else (ids[0] if ids else None)
    placeholder = "Choose a dataset" if ids else "No datasets yet: generate one on the Data page"
    return options, value, placeholder


@callback(
    Output("train-param-count", "children"),
    Input("train-width", "value"),
    Input("train-modes", "value"),
    Input("train-layers", "value"),
    Input("train-dataset", "value"),
)
async def parameter_count(width: Any, modes: Any, layers: Any, dataset: str | None):
    if None in (width, modes, layers):
        return ""
    try:
        count = await asyncio.to_thread(
            data.check_model_config, "fno2d", config_of(width, modes, layers), dataset
        )
    except data.InvalidParams as exc:
        return html.Span(str(exc), className="error-text")
    return f"{fmt_count(count)} parameters" if count is not None else ""


@callback(
    Output("train-run", "data", allow_duplicate=True),
    Output("train-events", "data", allow_duplicate=True),
    Output("train-interval", "disabled", allow_duplicate=True),
    Output("train-feedback", "children"),
    Input("train-start", "n_clicks"),
    State("train-dataset", "value"),
    State("train-name", "value"),
    State("train-epochs", "value"),
    State("train-lr", "value"),
    State("train-batch", "value"),
    State("train-width", "value"),
    State("train-modes", "value"),
    State("train-layers", "value"),
    prevent_initial_call=True,
)
async def start(n_clicks, dataset, name, epochs, lr, batch, width, modes, layers):
    if not n_clicks:
        raise PreventUpdate
    if not dataset:
        return (
            no_update,
            no_update,
            no_update,
            alert("Choose a dataset first (generate one on the Data page).", "error"),
        )
    config = config_of(width, modes, layers)
    params: dict[str, Any] = {
        "dataset_id": dataset,
        "arch": "fno2d",
        "config": config,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch,
    }
    if name:
        params["name"] = name

    def submit():
        data.check_model_config("fno2d", config, dataset)
        return data.submit_job("train", params)

    try:
        job = await asyncio.to_thread(submit)
    except data.InvalidParams as exc:
        return no_update, no_update, no_update, alert(str(exc), "error")
    return {"job_id": job["id"], "seq": 0}, {"train": [], "epoch": []}, False, None


def status_line(job: dict[str, Any], epochs_done: int) -> list[Any]:
    status = job["status"]
    epochs = job["params"].get("epochs")
    if status == "queued":
        text = f"Waiting for a worker on the {job['queue']} queue…"
    elif status == "running":
        text = f"Training · epoch {epochs_done} of {epochs} done"
    elif status == "succeeded":
        text = f"Succeeded · {epochs} epochs"
    elif status == "failed":
        text = "Failed: " + (job.get("error") or "no reason recorded.")
    else:
        text = f"Cancelled after {epochs_done} epochs."
    return [
        html.Div(
            [status_badge(status), html.Span(text, className="status-text")],
            className="status-head",
        ),
        progress_bar(job["progress"], status),
    ]


def summary(job: dict[str, Any], last_epoch: dict[str, Any] | None) -> Any:
    items = [("Job", job["id"])]
    if last_epoch:
        items += [
            ("Validation rel. L2", fmt_number(last_epoch.get("val_rel_l2"), 4)),
            ("Persistence rel. L2", fmt_number(last_epoch.get("persistence_rel_l2"), 4)),
        ]
    if job["result"].get("model_id"):
        items.append(("Model", job["result"]["model_id"]))
    children: list[Any] = [
        html.Dl([el for k, v in items for el in (html.Dt(k), html.Dd(v))], className="details")
    ]
    if job["status"] == "succeeded" and job["result"].get("model_id"):
        children.append(
            dcc.Link(
                "Roll this model out →",
                href=f"/rollout?model={job['result']['model_id']}",
                className="button button-small button-primary",
            )
        )
    return children


@callback(
    Output("train-run", "data"),
    Output("train-events", "data"),
    Output("train-status", "children"),
    Output("train-summary", "children"),
    Output("train-interval", "disabled"),
    Input("train-interval", "n_intervals"),
    State("train-run", "data"),
    prevent_initial_call=True,
)
async def poll(_n: int, run: dict[str, Any] | None):
    """Reads the job and its train/epoch events after the last one read; appends them."""
    run = dict(run or {})
    if not run.get("job_id"):
        raise PreventUpdate
    limit = 5000

    def load():
        job = data.get_job(run["job_id"])
        new = data.job_events(run["job_id"], run.get("seq") or 0, ("train", "epoch"), limit)
        return job, new

    job, new = await asyncio.to_thread(load)
    if job is None or job["kind"] not in ("train", "finetune"):
        message = alert(f"There is no training job {run['job_id']!r}.", "error")
        return {}, no_update, message, [], True
    run["epochs"] = job["params"].get("epochs")
    patch: Any = no_update
    if new:
        run["seq"] = new[-1]["seq"]
        added = [e for e in new if e["type"] == "epoch"]
        patch = Patch()
        patch["train"].extend([e for e in new if e["type"] == "train"])
        patch["epoch"].extend(added)
        run["epochs_done"] = (run.get("epochs_done") or 0) + len(added)
        if added:
            run["last_epoch"] = added[-1]
    final = job["status"] in FINAL and len(new) < limit
    status = status_line(job, run.get("epochs_done") or 0)
    return run, patch, status, summary(job, run.get("last_epoch")), final


@callback(
    Output("train-loss", "figure"),
    Input("train-events", "data"),
    State("train-run", "data"),
    prevent_initial_call=True,
)
async def loss_curve(events: dict[str, Any] | None, run: dict[str, Any] | None):
    events = events or {}
    run = run or {}
    if not events.get("train") and not events.get("epoch"):
        raise PreventUpdate
    return await asyncio.to_thread(
        figures.loss_figure,
        events.get("train") or [],
        events.get("epoch") or [],
        epochs=run.get("epochs"),
        uirevision=run.get("job_id"),
    )
