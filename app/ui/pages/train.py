"""``/train``: train any registered neural operator on a dataset and watch it learn.

Set up: a dataset, an architecture among those of the dataset's dimension (label and
description from the registry; one whose module cannot be loaded is listed disabled with
the reason), its config form generated from the config class (``app.ui.config_form``),
with the parameter count and the contract (frames in, frames out) recomputed as the form
changes, or the config's own sentence when the config, or the dataset's grid, cannot hold
the model. The optimisation options are generated from the API's ``TrainParams`` schema.

Start submits the job through the same validation as ``POST /api/jobs`` and moves to
``/train?job=<id>``: the page is drawn again for that job (its form filled from the job's
parameters), the same view as reopening it later.

"Train online" turns the job into an online one (``train.online``): its options
(producers, trajectories, buffer size and policy, seed; the rest under Advanced) are
generated from the API's ``OnlineOptions`` schema, and the chosen dataset becomes the
held-out validation set and the producers' template. The API's own checks give the
sentences shown when they do not fit. An Interval polls the job row and the
``train``/``epoch``/``resumed`` events after the last one read, and appends them to the
``train-events`` store with a Patch; the curves (training loss per event, validation
relative L2 and persistence per epoch, on log axes; the learning rate), throughput, ETA,
progress and status follow.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from dash import ALL, Input, Output, Patch, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import architectures, jobs_view, training_options
from app.services.catalog import list_datasets
from app.ui import config_form, figures, online_view, training_figures
from app.ui.components import (
    CHART_GRAPH,
    alert,
    card,
    fmt_duration,
    fmt_number,
    fmt_shape,
    form_row,
    graph,
    page,
    parse_time,
    progress_bar,
    status_badge,
)
from app.ui.context import get_state

POLL_MS = 1000
FINAL = ("succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
OPTION = "train-opt"  # id type of the optimisation inputs
# "online" and "producers": an online training job's stream and producers.
EVENT_TYPES = ("train", "epoch", "resumed", "online", "producers")
DEFAULT_ARCH = "fno2d"
# Above this the data's own frames fail the discretised equations too badly for the physics
# loss to judge a prediction (persistence scores 1): the summary says so.
DATA_RESIDUAL_WARNING = 0.2

# The optimisation options: which are shown first, in what order, and what they are
# called; step decay's settings appear only for the step schedule. Any other TrainParams
# field (a new option) is generated into the advanced group.
BASIC = ("epochs", "lr", "batch_size", "scheduler", "loss", "unroll", "push_forward", "grad_clip")
STEP_SETTINGS = ("step_epochs", "gamma")
ADVANCED = (
    "seed",
    "weight_decay",
    "val_fraction",
    "amp",
    "gpus",
    "events_every",
    "data_weight",
    "pde_weight",
)
NOT_OPTIONS = ("queue", "dataset_id", "name", "arch", "config")
LABELS = {
    "epochs": "Epochs",
    "lr": "Learning rate",
    "batch_size": "Batch size",
    "scheduler": "Schedule",
    "step_epochs": "Decay every (epochs)",
    "gamma": "Decay factor γ",
    "loss": "Loss",
    "unroll": "Unrolled steps",
    "push_forward": "Push-forward (no gradient through the first unrolled steps)",
    "grad_clip": "Gradient clip",
    "seed": "Seed",
    "weight_decay": "Weight decay",
    "val_fraction": "Validation fraction",
    "amp": "Mixed precision (bfloat16 on CUDA)",
    "gpus": "Processes (GPUs)",
    "events_every": "Steps per progress event",
    "data_weight": "Data loss weight (0: no labels)",
    "pde_weight": "Physics loss weight (PINO)",
}
CHOICE_LABELS = {
    "scheduler": {"onecycle": "one-cycle", "step": "step decay", "constant": "constant"},
    "loss": training_figures.LOSS_NAMES,
}

# Online training's options (``train.online``): shown first, then the advanced ones.
ONLINE = "train-online-opt"  # id type of the online inputs
ONLINE_ON = "online"  # the value of the ticked "Train online" box
ONLINE_BASIC = ("producers", "trajectories", "buffer_size", "buffer_policy", "seed")
ONLINE_LABELS = {
    "producers": "Producers",
    "trajectories": "Fresh trajectories",
    "buffer_size": "Buffer size (windows)",
    "buffer_policy": "Buffer policy",
    "seed": "Producers' seed",
    "min_fill": "Minimum fill before training (windows)",
    "max_seen": "Draws of one window at most",
    "stream_size": "Stream size (windows in flight)",
    "steps_per_epoch": "Steps per epoch",
    "solver_batch": "Trajectories per solver batch",
    "queue": "Producers' queue",
    "start_timeout_s": "Start timeout (s)",
}
# What an empty optional box means (the help says it in full); short: the boxes are narrow.
ONLINE_PLACEHOLDERS = {"seed": "default", "min_fill": "default", "max_seen": "no limit"}
ONLINE_CHOICE_LABELS = {
    "buffer_policy": {
        "fifo": "FIFO: oldest first, each window once",
        "firo": "FIRO: random, each window once",
        "reservoir": "Reservoir: random, seen windows replaced",
    },
}


def empty_events() -> dict[str, list]:
    return {kind: [] for kind in EVENT_TYPES}


def layout(
    job: str | None = None, dataset: str | None = None, arch: str | None = None, **_query: Any
) -> html.Main:
    return page(
        "Train",
        "A neural operator learns the map from a window of frames to the frames that follow, "
        "from a dataset's trajectories; validation is measured against persistence.",
        # "callback-nav": after Start the address names the job and the pages router draws
        # the page for /train?job=<id>, exactly as when a run is reopened.
        dcc.Location(id="train-url", refresh="callback-nav"),
        dcc.Store(id="train-query", data={"job": job, "dataset": dataset, "arch": arch}),
        dcc.Store(id="train-catalog"),
        dcc.Store(id="train-prefill", data={}),
        dcc.Store(id="train-run", data={"job_id": job, "seq": 0} if job else {}),
        dcc.Store(id="train-events", data=empty_events()),
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
                            id="train-name", type="text", placeholder="optional", className="input"
                        ),
                    ),
                    dcc.Checklist(
                        id="train-online-on",
                        options=[
                            {
                                "label": "Train online: producers step the solver from fresh "
                                "initial conditions while the model trains, nothing stored",
                                "value": ONLINE_ON,
                            }
                        ],
                        value=[],
                        className="check",
                        inputClassName="check-input",
                        labelClassName="check-label",
                    ),
                    html.Div(
                        [
                            html.P(
                                "The dataset above is not trained on: it is the held-out "
                                "validation set, and the producers repeat its flow and "
                                "parameters with another seed.",
                                className="muted small",
                            ),
                            html.Div(id="train-online-form", className="config-form"),
                        ],
                        id="train-online-fields",
                        className="hidden",
                    ),
                    html.H3("Model", className="form-section"),
                    dcc.RadioItems(
                        id="train-arch",
                        options=[],
                        className="arch-picker",
                        labelClassName="arch-option",
                        inputClassName="arch-radio",
                    ),
                    html.Div(id="train-arch-note", className="arch-note"),
                    html.Div(id="train-config-form", className="config-form"),
                    html.Div(id="train-config-check", className="config-check"),
                    html.H3("Optimisation", className="form-section"),
                    html.Div(id="train-opt-form", className="config-form"),
                    html.Button(
                        "Start training",
                        id="train-start",
                        className="button button-primary",
                        n_clicks=0,
                    ),
                    html.Div(id="train-feedback"),
                    className="setup-card",
                ),
                html.Div(
                    [
                        card(
                            "Run",
                            html.Div(
                                html.Span(
                                    "Nothing training. Choose a dataset and a model, then "
                                    "press Start.",
                                    className="muted",
                                ),
                                id="train-status",
                                className="status-line",
                            ),
                            html.Div(id="train-live", className="live-stats"),
                            html.Div(id="train-summary", className="run-details"),
                            html.Div(id="train-online", className="online-view hidden"),
                            html.Div(
                                [
                                    html.Button(
                                        "Cancel training",
                                        id="train-cancel",
                                        className="button button-small button-danger",
                                        n_clicks=0,
                                    ),
                                    html.Span(id="train-cancel-feedback"),
                                ],
                                id="train-cancel-wrap",
                                className="hidden",
                            ),
                            className="status-card",
                        ),
                        card(
                            None,
                            graph(
                                id="train-loss",
                                figure=figures.empty_figure(
                                    "The loss curves appear when training starts."
                                ),
                                config=CHART_GRAPH,
                                className="graph graph-tall",
                            ),
                            graph(
                                id="train-lr",
                                figure=figures.empty_figure(
                                    "The learning rate appears when training starts."
                                ),
                                config=CHART_GRAPH,
                                className="graph graph-short",
                            ),
                        ),
                        card(
                            None,
                            graph(
                                id="train-online-rates",
                                figure=online_view.rates_figure([]),
                                config=CHART_GRAPH,
                                className="graph",
                            ),
                            id="train-online-card",
                            className="hidden",
                        ),
                    ],
                    className="side-column",
                ),
            ],
            className="grid-setup grid-train",
        ),
    )


# --- the set-up form --------------------------------------------------------------------


def dataset_label(d: dict[str, Any]) -> str:
    dt = (d.get("params") or {}).get("interval")
    parts = [d["name"], d["flow"], fmt_shape(d["shape"])]
    if dt is not None:
        parts.append(f"Δt {dt:g}")
    return " · ".join(parts)


def option_fields(options: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The TrainParams fields by name, with this page's labels and choice names."""
    out = {}
    for field in options:
        if field["name"] in NOT_OPTIONS:
            continue
        field = dict(field)
        field["label"] = LABELS.get(field["name"], "")
        if field["name"] in CHOICE_LABELS:
            field["choice_labels"] = CHOICE_LABELS[field["name"]]
        field["advanced"] = field["name"] not in BASIC + STEP_SETTINGS
        out[field["name"]] = field
    return out


def options_form(options: list[dict[str, Any]], values: dict[str, Any] | None = None) -> list[Any]:
    """The optimisation inputs: the basic ones (step decay's settings right after the
    schedule, hidden unless it is "step"), then the advanced ones collapsed."""
    fields = option_fields(options)
    values = values or {}

    def rows(names):
        return [
            config_form.row(fields[n], OPTION, values[n] if n in values else fields[n]["default"])
            for n in names
            if n in fields
        ]

    scheduler = values.get("scheduler", (fields.get("scheduler") or {}).get("default"))
    basic = [n for n in BASIC if n in fields]
    split = basic.index("scheduler") + 1 if "scheduler" in basic else len(basic)
    advanced = [n for n in ADVANCED if n in fields] + [
        n for n in fields if n not in BASIC + STEP_SETTINGS + ADVANCED
    ]
    return [
        html.Div(rows(basic[:split]), className="form-grid"),
        html.Div(
            rows(STEP_SETTINGS),
            id="train-step-settings",
            className="form-grid" if scheduler == "step" else "form-grid hidden",
        ),
        html.Div(rows(basic[split:]), className="form-grid"),
        html.Details(
            [
                html.Summary(f"Advanced ({len(advanced)})"),
                html.Div(rows(advanced), className="form-grid"),
            ],
            className="form-advanced",
        ),
    ]


def online_fields(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The OnlineOptions fields with this page's labels, placeholders and choice names;
    the basic ones first, the others advanced."""
    out = []
    for field in options:
        field = dict(field)
        name = field["name"]
        field["label"] = ONLINE_LABELS.get(name, "")
        if name in ONLINE_PLACEHOLDERS:
            field["placeholder"] = ONLINE_PLACEHOLDERS[name]
        if name in ONLINE_CHOICE_LABELS:
            field["choice_labels"] = ONLINE_CHOICE_LABELS[name]
        field["advanced"] = name not in ONLINE_BASIC
        out.append(field)
    order = {name: i for i, name in enumerate(ONLINE_BASIC)}
    return sorted(out, key=lambda f: order.get(f["name"], len(order)))


def online_form(options: list[dict[str, Any]], values: dict[str, Any] | None = None) -> list[Any]:
    """The online options' inputs (a reopened job's values, else the defaults)."""
    values = {k: v for k, v in (values or {}).items() if v is not None}
    return config_form.form(online_fields(options), ONLINE, values)


def arch_options(
    archs: list[dict[str, Any]], dims: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The picker's options for a dataset of ``dims`` spatial dimensions (None: all) — an
    architecture that cannot be loaded is disabled, its reason in place of its description
    — and the architectures left out for their dimension."""
    shown = [a for a in archs if dims is None or a["dims"] == dims]
    other = [a for a in archs if dims is not None and a["dims"] != dims]
    options = [
        {
            "label": html.Span(
                [
                    html.Span(a["label"], className="arch-label"),
                    html.Small(
                        a["description"] if not a["error"] else f"Unavailable: {a['error']}",
                        className="arch-description" + (" error-text" if a["error"] else ""),
                    ),
                ],
                className="arch-text",
            ),
            "value": a["name"],
            "disabled": bool(a["error"]),
        }
        for a in shown
    ]
    return options, other


def pick_arch(options: list[dict[str, Any]], *wanted: str | None) -> str | None:
    """The first of ``wanted`` that is an enabled option, else the default, else the first
    enabled one."""
    enabled = [o["value"] for o in options if not o.get("disabled")]
    for name in (*wanted, DEFAULT_ARCH):
        if name in enabled:
            return name
    return enabled[0] if enabled else None


def config_panel(arch: dict[str, Any] | None, values: dict[str, Any] | None = None) -> list[Any]:
    """The generated form of one architecture's config, under its title."""
    if arch is None:
        return [html.P("Choose an architecture.", className="muted small")]
    head = [html.P(arch["title"], className="config-title")] if arch.get("title") else []
    if not arch["fields"]:
        return [*head, html.P("This architecture has no settings.", className="muted small")]
    return [*head, *config_form.form(arch["fields"], config_form.CONFIG, values)]


def check_panel(result: dict[str, Any] | None, problems: list[str] | None = None) -> list[Any]:
    """Parameter count and contract, or the sentence that says what is wrong."""
    if problems:
        return [
            html.Div(" ".join(problems), id="train-config-error", className="alert alert-error")
        ]
    if not result:
        return []
    if result.get("error"):
        return [html.Div(result["error"], id="train-config-error", className="alert alert-error")]
    return [
        html.Div(
            [
                html.Span(
                    config_form.parameter_text(result.get("parameters")),
                    id="train-param-count",
                    className="strong",
                ),
                html.Span(
                    config_form.contract_text(result.get("contract")),
                    id="train-contract",
                    className="muted",
                ),
            ],
            className="config-ok",
        )
    ]


def _arch(catalog: dict[str, Any] | None, name: str | None) -> dict[str, Any] | None:
    for arch in (catalog or {}).get("archs") or []:
        if arch["name"] == name:
            return arch
    return None


def _dataset(catalog: dict[str, Any] | None, dataset_id: str | None) -> dict[str, Any] | None:
    for d in (catalog or {}).get("datasets") or []:
        if d["id"] == dataset_id:
            return d
    return None


def _grid(catalog: dict[str, Any] | None, dataset_id: str | None) -> tuple[Any, Any, Any]:
    """The chosen dataset's grid, channels and snapshots per trajectory (Nones without
    one): what ``architectures.evaluate_config`` checks a config against."""
    d = _dataset(catalog, dataset_id)
    if d is None or len(d["shape"]) < 3:
        return None, None, None
    shape = d["shape"]
    return architectures.spatial_shape(shape), architectures.dataset_channels(shape), int(shape[1])


@callback(
    Output("train-catalog", "data"),
    Output("train-dataset", "options"),
    Output("train-dataset", "value"),
    Output("train-dataset", "placeholder"),
    Output("train-prefill", "data"),
    Output("train-opt-form", "children"),
    Output("train-name", "value"),
    Output("train-online-form", "children"),
    Output("train-online-on", "value"),
    Input("train-query", "data"),
)
async def load(query: dict[str, Any] | None):
    """The datasets, the architectures and the options' schemas; for a reopened job, its
    parameters fill the form."""
    query = query or {}

    def read():
        job = jobs_view.get_job(get_state(), query["job"]) if query.get("job") else None
        return (
            list_datasets(get_state()),
            architectures.architectures(),
            training_options.train_options(),
            training_options.online_options(),
            job,
        )

    datasets, archs, options, online, job = await asyncio.to_thread(read)
    params = dict(job["params"] or {}) if job and job["kind"] == "train" else {}
    catalog = {
        "archs": archs,
        "datasets": [
            {"id": d["id"], "name": d["name"], "shape": d["shape"], "flow": d["flow"]}
            for d in datasets
        ],
        "options": options,
        "online_options": online,
    }
    ids = [d["id"] for d in datasets]
    value = next(
        (v for v in (params.get("dataset_id"), query.get("dataset")) if v in ids),
        ids[0] if ids else None,
    )
    placeholder = "Choose a dataset" if ids else "No datasets yet: generate one on the Data page"
    prefill = {"arch": params.get("arch") or query.get("arch"), "config": params.get("config")}
    opts = {k: v for k, v in params.items() if k not in NOT_OPTIONS}
    return (
        catalog,
        [{"label": dataset_label(d), "value": d["id"]} for d in datasets],
        value,
        placeholder,
        prefill,
        options_form(options, opts),
        params.get("name"),
        online_form(online, params.get("online")),
        [ONLINE_ON] if params.get("online") else [],
    )


@callback(
    Output("train-arch", "options"),
    Output("train-arch", "value"),
    Output("train-arch-note", "children"),
    Input("train-dataset", "value"),
    Input("train-catalog", "data"),
    State("train-arch", "value"),
    State("train-prefill", "data"),
)
async def choose_arch(dataset_id, catalog, current, prefill):
    """The architectures of the dataset's dimension; the choice is kept when it still fits
    (so a change of dataset does not reset the form)."""
    if not catalog:
        raise PreventUpdate
    d = _dataset(catalog, dataset_id)
    dims = len(architectures.spatial_shape(d["shape"])) if d else None
    options, other = arch_options(catalog["archs"], dims)
    value = pick_arch(options, current, (prefill or {}).get("arch"))
    note = []
    if other:
        names = ", ".join(a["label"] for a in other)
        note.append(html.Small(f"Not for {dims}D data: {names}.", className="muted"))
    if not options:
        note.append(alert(f"No registered architecture works on {dims}D data.", "warning"))
    return options, (no_update if value == current else value), note


@callback(
    Output("train-config-form", "children"),
    Input("train-arch", "value"),
    State("train-catalog", "data"),
    State("train-prefill", "data"),
)
async def render_config(arch_name, catalog, prefill):
    prefill = prefill or {}
    values = prefill.get("config") if prefill.get("arch") == arch_name else None
    return config_panel(_arch(catalog, arch_name), values)


@callback(
    Output("train-config-check", "children"),
    Input({"type": config_form.CONFIG, "field": ALL}, "value"),
    Input("train-dataset", "value"),
    Input("train-arch", "value"),
    State({"type": config_form.CONFIG, "field": ALL}, "id"),
    State("train-catalog", "data"),
)
async def check_config(values, dataset_id, arch_name, ids, catalog):
    """Parameter count and contract of the config as it stands, or why it is not valid
    (for the chosen dataset's grid too)."""
    arch = _arch(catalog, arch_name)
    if arch is None or arch["error"]:
        return []
    config, problems = config_form.coerce(
        arch["fields"], config_form.values_by_name(ids or [], values or [])
    )
    if problems:
        return check_panel(None, problems)
    result = await asyncio.to_thread(
        architectures.evaluate_config, arch["name"], config, *_grid(catalog, dataset_id)
    )
    return check_panel(result)


@callback(
    Output("train-step-settings", "className"),
    Input({"type": OPTION, "field": "scheduler"}, "value"),
    prevent_initial_call=True,
)
async def show_step_settings(scheduler):
    return "form-grid" if scheduler == "step" else "form-grid hidden"


@callback(
    Output("train-online-fields", "className"),
    Input("train-online-on", "value"),
)
async def show_online(value):
    return "online-fields" if ONLINE_ON in (value or []) else "hidden"


def train_params(
    catalog: dict[str, Any] | None,
    dataset_id: str | None,
    name: str | None,
    arch_name: str | None,
    config_raw: dict[str, Any],
    option_raw: dict[str, Any],
    online_raw: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The train job's parameters from the form, or the sentences that say what is wrong;
    ``online_raw``: the online options' inputs when "Train online" is ticked."""
    if not dataset_id:
        return None, ["Choose a dataset first (generate one on the Data page)."]
    arch = _arch(catalog, arch_name)
    if arch is None:
        return None, ["Choose an architecture."]
    if arch["error"]:
        return None, [f"{arch['label']}: {arch['error']}"]
    config, problems = config_form.coerce(arch["fields"], config_raw)
    fields = list(option_fields((catalog or {}).get("options") or []).values())
    options, option_problems = config_form.coerce(fields, option_raw)
    problems += option_problems
    if online_raw is not None:
        online_opts = online_fields((catalog or {}).get("online_options") or [])
        online, online_problems = config_form.coerce(online_opts, online_raw)
        problems += online_problems
        options["online"] = online
    if problems:
        return None, problems
    params = {"dataset_id": dataset_id, "arch": arch["name"], "config": config, **options}
    if name and name.strip():
        params["name"] = name.strip()
    return params, []


@callback(
    Output("train-url", "search"),
    Output("train-feedback", "children"),
    Input("train-start", "n_clicks"),
    State("train-catalog", "data"),
    State("train-dataset", "value"),
    State("train-name", "value"),
    State("train-arch", "value"),
    State({"type": config_form.CONFIG, "field": ALL}, "id"),
    State({"type": config_form.CONFIG, "field": ALL}, "value"),
    State({"type": OPTION, "field": ALL}, "id"),
    State({"type": OPTION, "field": ALL}, "value"),
    State("train-online-on", "value"),
    State({"type": ONLINE, "field": ALL}, "id"),
    State({"type": ONLINE, "field": ALL}, "value"),
    prevent_initial_call=True,
)
async def start(
    n_clicks, catalog, dataset_id, name, arch_name, cids, cvals, oids, ovals, on, nids, nvals
):
    """Check and submit the job, then go to its address, /train?job=<id>."""
    if not n_clicks:
        raise PreventUpdate
    params, problems = train_params(
        catalog,
        dataset_id,
        name,
        arch_name,
        config_form.values_by_name(cids, cvals),
        config_form.values_by_name(oids, ovals),
        config_form.values_by_name(nids, nvals) if ONLINE_ON in (on or []) else None,
    )
    if problems:
        return no_update, alert(" ".join(problems), "error", id="train-feedback-error")
    grid = _grid(catalog, dataset_id)

    def submit():
        checked = architectures.evaluate_config(params["arch"], params["config"], *grid)
        if checked.get("error"):
            raise jobs_view.InvalidParams(checked["error"])
        return jobs_view.submit_job(get_state(), "train", params)

    try:
        job = await asyncio.to_thread(submit)
    except jobs_view.InvalidParams as exc:
        return no_update, alert(str(exc), "error", id="train-feedback-error")
    return f"?job={job['id']}", None


@callback(
    Output("train-cancel-feedback", "children"),
    Input("train-cancel", "n_clicks"),
    State("train-run", "data"),
    prevent_initial_call=True,
)
async def cancel(n_clicks, run):
    if not n_clicks or not (run or {}).get("job_id"):
        raise PreventUpdate
    job = await asyncio.to_thread(jobs_view.cancel_job, get_state(), run["job_id"])
    if job is None:
        return html.Span(" The job no longer exists.", className="error-text")
    return html.Span(" Cancelling…", className="muted small")


# --- the run ----------------------------------------------------------------------------


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
    elif status == "cancelled":
        text = f"Cancelled after {epochs_done} epochs."
    else:
        text = job.get("message") or status
    return [
        html.Div(
            [status_badge(status), html.Span(text, className="status-text")],
            className="status-head",
        ),
        progress_bar(job["progress"], status),
    ]


def eta_seconds(
    job: dict[str, Any], last: dict[str, Any] | None, now: datetime | None = None
) -> float | None:
    """The worker's ETA of the last train event, else one from the time spent so far and
    the progress; None when the job is not running or nothing is known yet."""
    if job["status"] != "running":
        return None
    if last and last.get("eta_s") is not None:
        return float(last["eta_s"])
    start, progress = parse_time(job.get("started_at")), float(job.get("progress") or 0.0)
    if start is None or progress <= 0:
        return None
    elapsed = ((now or datetime.now(UTC)) - start).total_seconds()
    return max(0.0, elapsed * (1 - progress) / progress)


def live_stats(
    job: dict[str, Any], last: dict[str, Any] | None, now: datetime | None = None
) -> list[Any]:
    """Throughput, ETA, step and learning rate from the last train event, as text."""
    if not last and job["status"] not in ACTIVE:
        return []
    last = last or {}
    sps = last.get("samples_per_s")
    eta = eta_seconds(job, last, now)
    step = last.get("step")
    total = last.get("total_steps")
    items = [
        ("train-throughput", "Throughput", f"{sps:,.0f} samples/s" if sps is not None else "—"),
        ("train-eta", "ETA", fmt_duration(eta) if eta is not None else "—"),
        ("train-step", "Step", f"{step:,} of {total:,}" if step and total else "—"),
        ("train-lr-now", "Learning rate", fmt_number(last.get("lr"), 3)),
    ]
    return [
        html.Div(
            [html.Span(label, className="stat-label"), html.Span(value, id=i, className="stat")],
            className="stat-item",
        )
        for i, label, value in items
    ]


def summary(
    job: dict[str, Any], last_epoch: dict[str, Any] | None, resumed: list[dict[str, Any]]
) -> Any:
    from models.registry import MODELS  # the table only: no model module is imported

    arch = job["params"].get("arch")
    label = MODELS[arch].label if arch in MODELS else arch
    items = [("Job", job["id"]), ("Architecture", label)]
    warning = None
    if last_epoch:
        items += [
            ("Validation rel. L2", fmt_number(last_epoch.get("val_rel_l2"), 4)),
            ("Persistence rel. L2", fmt_number(last_epoch.get("persistence_rel_l2"), 4)),
        ]
        if last_epoch.get("val_pde_residual") is not None:
            # Relative to persistence's residual, which is 1.
            items.append(("Validation PDE residual", fmt_number(last_epoch["val_pde_residual"], 4)))
        floor = last_epoch.get("data_pde_residual")
        if floor is not None:
            items.append(("The data's own PDE residual", fmt_number(floor, 4)))
            if floor > DATA_RESIDUAL_WARNING:
                warning = (
                    f"The data's own frames score {floor:.2g} against the equations (persistence "
                    "scores 1): they are too far apart in time for the physics loss to judge a "
                    "prediction; generate with a smaller interval."
                )
    if job["result"].get("model_id"):
        items.append(("Trained model", job["result"]["model_id"]))
    children: list[Any] = [
        html.Dl([el for k, v in items if v for el in (html.Dt(k), html.Dd(v))], className="details")
    ]
    if warning:
        children.append(html.P(warning, className="alert alert-warning train-residual-warning"))
    for event in resumed:
        children.append(
            html.P(
                f"Resumed from its checkpoint at epoch {event.get('epoch')}, "
                f"step {event.get('step')} (the job was delivered again).",
                className="muted small",
            )
        )
    children.append(
        html.Div(
            dcc.Link(
                "Overlay with other runs →",
                href=f"/train/runs?jobs={job['id']}",
                id="train-overlay-link",
                className="link",
            ),
            className="muted small",
        )
    )
    if job["status"] == "succeeded" and job["result"].get("model_id"):
        model_id = job["result"]["model_id"]
        children.append(
            html.Div(
                [
                    dcc.Link(
                        "Roll this model out →",
                        href=f"/rollout?model={model_id}",
                        className="button button-small button-primary",
                    ),
                    dcc.Link("All models", href="/models", className="button button-small"),
                ],
                className="row-actions row-actions-start",
            )
        )
    return children


def absorb(run: dict[str, Any], new: list[dict[str, Any]]) -> None:
    """Updates the run's summary (epochs done, last events) with newly read events."""
    for event in new:
        if event["type"] == "train":
            run["last_train"] = event
        elif event["type"] == "epoch":
            run["last_epoch"] = event
            run["epochs_done"] = max(int(run.get("epochs_done") or 0), int(event["epoch"]))
        elif event["type"] == "resumed":
            run["resumed"] = [*(run.get("resumed") or []), event]
            run["epochs_done"] = min(int(run.get("epochs_done") or 0), int(event.get("epoch") or 0))
        elif event["type"] == "online":
            run["last_online"] = event
        elif event["type"] == "producers":
            run["producers"] = event.get("producers") or []


@callback(
    Output("train-run", "data"),
    Output("train-events", "data"),
    Output("train-status", "children"),
    Output("train-live", "children"),
    Output("train-summary", "children"),
    Output("train-cancel-wrap", "className"),
    Output("train-interval", "disabled"),
    Output("train-online", "children"),
    Output("train-online", "className"),
    Output("train-online-card", "className"),
    Input("train-interval", "n_intervals"),
    State("train-run", "data"),
    prevent_initial_call=True,
)
async def poll(_n: int, run: dict[str, Any] | None):
    """Reads the job and its events after the last one read; appends them."""
    run = dict(run or {})
    if not run.get("job_id"):
        raise PreventUpdate
    limit = 5000

    def read():
        job = jobs_view.get_job(get_state(), run["job_id"])
        new = jobs_view.job_events(
            get_state(), run["job_id"], run.get("seq") or 0, EVENT_TYPES, limit
        )
        return job, new

    job, new = await asyncio.to_thread(read)
    if job is None or job["kind"] not in ("train", "finetune"):
        message = alert(f"There is no training job {run['job_id']!r}.", "error")
        return (
            {},
            no_update,
            message,
            [],
            [],
            "hidden",
            True,
            [],
            "online-view hidden",
            "card hidden",
        )
    run["epochs"] = job["params"].get("epochs")
    run["loss"] = job["params"].get("loss")
    patch: Any = no_update
    if new:
        run["seq"] = new[-1]["seq"]
        absorb(run, new)
        patch = Patch()
        for kind in EVENT_TYPES:
            added = [e for e in new if e["type"] == kind]
            if added:
                patch[kind].extend(added)
    final = job["status"] in FINAL and len(new) < limit
    online = bool(job["params"].get("online"))
    return (
        run,
        patch,
        status_line(job, run.get("epochs_done") or 0),
        live_stats(job, run.get("last_train")),
        summary(job, run.get("last_epoch"), run.get("resumed") or []),
        "cancel-wrap" if job["status"] in ACTIVE else "hidden",
        final,
        online_view.online_panel(run.get("last_online"), run.get("producers")) if online else [],
        "online-view" if online else "online-view hidden",
        "card" if online else "card hidden",
    )


@callback(
    Output("train-online-rates", "figure"),
    Input("train-events", "data"),
    State("train-run", "data"),
    prevent_initial_call=True,
)
async def online_rates(events: dict[str, Any] | None, run: dict[str, Any] | None):
    """The online stream's rates and buffer fill (an online training job only)."""
    online = (events or {}).get("online") or []
    if not online:
        raise PreventUpdate
    return await asyncio.to_thread(online_view.rates_figure, online, (run or {}).get("job_id"))


@callback(
    Output("train-loss", "figure"),
    Output("train-lr", "figure"),
    Input("train-events", "data"),
    State("train-run", "data"),
    prevent_initial_call=True,
)
async def curves(events: dict[str, Any] | None, run: dict[str, Any] | None):
    events = events or {}
    run = run or {}
    if not events.get("train") and not events.get("epoch"):
        raise PreventUpdate

    def draw():
        train = events.get("train") or []
        loss = training_figures.training_figure(
            train,
            events.get("epoch") or [],
            epochs=run.get("epochs"),
            loss=run.get("loss"),
            resumed=events.get("resumed") or [],
            uirevision=run.get("job_id"),
        )
        lr = training_figures.lr_figure(
            train, epochs=run.get("epochs"), uirevision=run.get("job_id")
        )
        return loss, lr

    return await asyncio.to_thread(draw)
