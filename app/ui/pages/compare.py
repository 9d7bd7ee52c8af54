"""``/compare`` and ``/compare/<id>``: several models beside the reference solver, live.

Set up: an initial condition (an uploaded field, or a trajectory of a dataset, its
held-out trajectories first), two or more models of that flow (each at one or more inference
precisions: every (model, precision) is a column), the horizon, the reference solver on or
off and the divergence factor. Start submits a ``compare`` job through the same validation
as ``POST /api/jobs`` and moves to ``/compare/<job id>``, so a live comparison and a
reopened one are the same page. ``<id>`` is the job's id or its rollout's id.

Live updates: an Interval polls the job row and the ``compare_setup``, ``metrics`` and
``summary`` events after the last one read (``seq``), and appends the per-step scalars to
the ``compare-series`` store with a Patch. The setup event lays out the grid, one column
per entry plus the reference, with the field on top and the error field (model −
reference) under it. A shared frame slider walks over the frames written so far and
follows the newest while it sits at the end; Play steps it with a second Interval. The
overlays (spectra of every column with the k⁻³ / k⁻⁵ᐟ³ guides, relative L2 and H1,
correlation with the 0.8 line, energy and enstrophy) and the summary table (from the
``summary`` event) are drawn by ``app.ui.compare_figures``.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from dash import ALL, Input, Output, Patch, State, callback, ctx, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import jobs_view, rollouts
from app.services.catalog import compare_catalog
from app.services.flows import flow_length
from app.ui import compare_figures as cf
from app.ui.components import (
    alert,
    card,
    fmt_count,
    fmt_shape,
    form_row,
    frame_player,
    number_input,
    page,
    progress_bar,
    slider_marks,
    status_badge,
)
from app.ui.context import get_state
from app.ui.figures import FONT, empty_figure

POLL_MS = 700
PLAY_MS = 400
DEFAULT_STEPS = 50
DEFAULT_DIVERGENCE = 10.0
MAX_ENTRIES = 8
PRECISIONS = ("float32", "bfloat16", "float16", "int8")
PRECISION_HELP = {
    "float32": "full precision",
    "bfloat16": "CUDA workers only",
    "float16": "CUDA workers only",
    "int8": "dynamic quantisation, runs on the CPU",
}
FINAL = ("succeeded", "failed", "cancelled")
UPLOAD, DATASET = "upload", "dataset"
SERIES_METRICS = ("rel_l2", "rel_h1", "corr", "energy", "enstrophy", "ms")
REFERENCE = cf.REFERENCE


def empty_series() -> dict[str, Any]:
    return {
        "t": [],
        "step": [],
        "reference": {"energy": [], "enstrophy": []},
        "models": {},
        "status": {},
        "latest": None,
    }


def layout(
    compare_id: str | None = None,
    ic: str | None = None,
    dataset: str | None = None,
    trajectory: str | None = None,
    models: str | None = None,
    **_query: Any,
) -> html.Main:
    query = {
        "ref": compare_id,
        "ic": ic,
        "dataset": dataset,
        "trajectory": trajectory,
        "models": [m for m in (models or "").split(",") if m],
    }
    return page(
        "Compare",
        "Several models rolled out from one initial condition beside the reference solver: "
        "fields, error fields, spectra, error growth and a summary, as they are produced.",
        # "callback-nav": after Start the address names the run and the pages router draws
        # the page for /compare/<id>, exactly as when a comparison is reopened.
        dcc.Location(id="compare-url", refresh="callback-nav"),
        dcc.Store(id="compare-query", data=query),
        dcc.Store(id="compare-catalog"),
        dcc.Store(id="compare-prefill", data={}),
        dcc.Store(id="compare-run", data={"ref": compare_id} if compare_id else {}),
        dcc.Store(id="compare-setup", data=None),
        dcc.Store(id="compare-series", data=empty_series()),
        dcc.Store(id="compare-summary", data=None),
        dcc.Store(id="compare-shown", data=None),
        dcc.Interval(id="compare-interval", interval=POLL_MS, disabled=compare_id is None),
        dcc.Interval(id="compare-play-timer", interval=PLAY_MS, disabled=True),
        html.Div(
            [setup_card(), run_card()],
            className="grid-compare-top",
        ),
        card(
            None,
            html.Div(
                [
                    html.H2("Fields", className="card-title"),
                    html.Span(id="compare-frame-label", className="compare-frame-label muted"),
                ],
                className="compare-fields-head",
            ),
            html.Div(
                html.P(
                    "One column per model and one for the reference solver appear here when "
                    "the comparison starts: the vorticity on top, the error (model − "
                    "reference) under it.",
                    className="muted empty-note",
                ),
                id="compare-grid",
                className="compare-grid",
            ),
            frame_player("compare", play=True, className="compare-player"),
            className="fields-card",
            id="compare-fields-card",
        ),
        html.Div(
            [
                card(None, _graph("compare-spectra", "The energy spectra appear here.")),
                card(None, _graph("compare-error", "The error growth appears here.")),
                card(None, _graph("compare-corr", "The correlations appear here.")),
                card(
                    None,
                    _graph("compare-energy", "Energy and enstrophy appear here.", tall=True),
                ),
            ],
            className="grid-2 compare-overlays",
        ),
        card(
            "Summary",
            html.P(
                "The summary appears when the comparison ends: each model's error at the "
                "report times, its decorrelation time (correlation below 0.8), band errors, "
                "time per step and speedup over the solver. Click a header to sort.",
                id="compare-summary-note",
                className="muted small",
            ),
            dash_table.DataTable(
                id="compare-table",
                columns=[],
                data=[],
                sort_action="native",
                sort_mode="single",
                style_as_list_view=True,
                style_table={"overflowX": "auto"},
                style_cell={
                    "fontFamily": FONT,
                    "fontSize": "13px",
                    "padding": "6px 10px",
                    "textAlign": "right",
                    "whiteSpace": "nowrap",
                },
                style_header={"fontWeight": 600, "backgroundColor": "#f8fafc", "fontFamily": FONT},
                style_cell_conditional=[
                    {"if": {"column_id": c}, "textAlign": "left"}
                    for c in ("model", "arch", "precision", "status")
                ],
            ),
            id="compare-summary-card",
        ),
    )


def _graph(graph_id: str, message: str, tall: bool = False) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        figure=empty_figure(message),
        config=cf.png_config(graph_id.replace("compare-", "eddyscope-compare-")),
        className="graph graph-tall" if tall else "graph",
    )


def setup_card() -> html.Section:
    return card(
        "Set up",
        form_row(
            "Initial condition",
            dcc.RadioItems(
                id="compare-source",
                options=[
                    {"label": "Uploaded field", "value": UPLOAD},
                    {"label": "Dataset trajectory", "value": DATASET},
                ],
                value=UPLOAD,
                inline=True,
                className="compare-source",
                inputClassName="compare-radio",
            ),
        ),
        html.Div(
            dcc.Dropdown(
                id="compare-ic", placeholder="Loading…", clearable=False, className="dropdown"
            ),
            id="compare-upload-row",
            className="form-row",
        ),
        html.Div(
            [
                dcc.Dropdown(
                    id="compare-dataset",
                    placeholder="Choose a dataset",
                    clearable=False,
                    className="dropdown",
                ),
                dcc.Dropdown(
                    id="compare-trajectory",
                    placeholder="Trajectory",
                    clearable=False,
                    className="dropdown",
                ),
                html.Small(id="compare-trajectory-note", className="form-help"),
            ],
            id="compare-dataset-row",
            className="form-row hidden",
        ),
        form_row(
            "Models",
            dcc.Dropdown(
                id="compare-models",
                options=[],
                value=[],
                multi=True,
                placeholder="Choose two or more models",
                className="dropdown",
            ),
            html_for="compare-models",
        ),
        html.Small(id="compare-models-note", className="form-help compare-models-note"),
        html.Div(id="compare-precisions", className="compare-precisions"),
        html.Div(
            [
                form_row(
                    "Horizon (steps)",
                    number_input("compare-steps", DEFAULT_STEPS, min=1, max=10_000, step=1),
                ),
                form_row(
                    "Divergence factor",
                    number_input("compare-divergence", DEFAULT_DIVERGENCE, min=1, step="any"),
                    "Stop a model whose energy passes this × the reference's.",
                ),
                form_row(
                    "Interval Δt",
                    number_input("compare-dt", None, min=0, step="any", placeholder="auto"),
                    "Empty: the models' Δt.",
                ),
            ],
            className="form-inline",
        ),
        form_row(
            "Report times",
            dcc.Input(
                id="compare-report-times",
                type="text",
                placeholder="25, 50 and 100 % of the horizon",
                className="input",
            ),
            "Times at which the summary gives each model's error, e.g. 1, 2.5, 5.",
        ),
        dcc.Checklist(
            id="compare-reference",
            options=[{"label": " Run the reference solver beside the models", "value": "on"}],
            value=["on"],
            className="compare-check",
        ),
        html.Button(
            "Start comparison", id="compare-start", className="button button-primary", n_clicks=0
        ),
        html.Div(id="compare-feedback"),
        className="setup-card",
    )


def run_card() -> html.Section:
    return card(
        "Run",
        html.Div(
            html.Span(
                "Nothing running. Choose an initial condition and two or more models, then "
                "press Start.",
                className="muted",
            ),
            id="compare-status",
            className="status-line",
        ),
        html.Div(id="compare-ic-note"),
        html.Div(id="compare-details", className="run-details"),
        html.Div(id="compare-exports", className="compare-exports"),
        className="status-card",
    )


# --- options ------------------------------------------------------------------------------


def ic_options(ics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"{ic['name']} · {ic['flow']} · {fmt_shape(ic['shape'])}"
            + (" · example" if ic.get("example") else ""),
            "value": ic["id"],
        }
        for ic in ics
    ]


def dataset_options(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"{d['name']} · {d['flow']} · {d['n_trajectories']} trajectories"
            f" · {fmt_shape(d['shape'][2:])}",
            "value": d["id"],
        }
        for d in datasets
    ]


def model_label(m: dict[str, Any]) -> str:
    grid = f"{m['resolution']}²" if m.get("resolution") else "any grid"
    return (
        f"{m['name']} · {m.get('label') or m['arch']} · {fmt_count(m.get('parameter_count'))}"
        f" params · {m['flow']} · {grid} · Δt={m['interval']:g}"
    )


def source_flow(
    catalog: dict[str, Any], source: str | None, ic: str | None, dataset: str | None
) -> str | None:
    """The flow of the chosen initial condition (or dataset), or None if none is chosen."""
    if source == DATASET:
        found = [d for d in catalog.get("datasets") or [] if d["id"] == dataset]
    else:
        found = [i for i in catalog.get("initial_conditions") or [] if i["id"] == ic]
    return found[0]["flow"] if found else None


def model_options(
    models: list[dict[str, Any]], flow: str | None, chosen: list[str]
) -> tuple[list[dict[str, Any]], list[str], str]:
    """Options of the models picker for an initial condition of ``flow`` (None: any), the
    chosen ids still offered, and a note. Models of other flows are left out; once one is
    chosen, those stepping at another interval are listed disabled (a comparison advances
    every model by one interval per step)."""
    fits = [m for m in models if flow is None or m["flow"] == flow]
    by_id = {m["id"]: m for m in fits}
    chosen = [c for c in chosen or [] if c in by_id]
    interval = by_id[chosen[0]]["interval"] if chosen else None
    options = []
    for m in fits:
        other = interval is not None and abs(m["interval"] - interval) > 1e-9 * max(1, interval)
        label = model_label(m) + (
            f" (steps Δt={m['interval']:g}, not {interval:g})" if other else ""
        )
        options.append({"label": label, "value": m["id"], "disabled": other})
    hidden = len(models) - len(fits)
    if not models:
        note = "No 2D models yet: train some on the Train page."
    elif not fits:
        note = f"No model was trained on {flow}; {hidden} on other flows are not listed."
    else:
        note = f"{len(fits)} model{'s' if len(fits) != 1 else ''} trained on {flow or 'any flow'}"
        note += f"; {hidden} on other flows not listed." if hidden else "."
    return options, chosen, note


def trajectory_options(
    dataset: dict[str, Any] | None, models: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int | None, str]:
    """The trajectories of ``dataset`` for the chosen ``models``: held out from the training
    of every chosen model that trained on this dataset first (its test split), then the
    rest, labelled with who trained on them; the default (the first held-out one), and a
    note."""
    if dataset is None:
        return [], None, ""
    n = int(dataset["n_trajectories"])
    trained_here = [m for m in models if m.get("dataset_id") == dataset["id"]]
    split = [m for m in trained_here if m.get("held_out")]
    held = set(range(n))
    for m in split:
        held &= set(m["held_out"])
    if not split:
        held = set()
    options = []
    for i in sorted(range(n), key=lambda i: (i not in held, i)):
        label = f"trajectory {i}"
        if i in held:
            label += " · held out (test split)"
        else:
            seen = [m["name"] for m in split if i not in m["held_out"]]
            if seen:
                label += f" · trained on by {', '.join(seen)}"
        options.append({"label": label, "value": i})
    default = min(held) if held else 0
    if held:
        note = f"{len(held)} of {n} trajectories were held out from the chosen models' training."
    elif trained_here:
        note = "The chosen models record no held-out trajectories of this dataset."
    else:
        note = "None of the chosen models was trained on this dataset."
    return options, default, note


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
    Input("compare-query", "data"),
)
async def load_options(query: dict[str, Any] | None):
    query = query or {}

    def load():
        catalog = compare_catalog(get_state())
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
        ic = ics[0]["id"] if ics else None
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
        "Choose an initial condition" if ics else "No uploaded 2D field yet",
        dataset_options(datasets),
        dataset,
        source,
        params.get("steps") or DEFAULT_STEPS,
        params.get("divergence_factor") or DEFAULT_DIVERGENCE,
        params.get("interval"),
        [] if params.get("reference") is False else ["on"],
        ", ".join(f"{t:g}" for t in times) if times else None,
        prefill,
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


def precision_rows(
    chosen: list[str], models: dict[str, dict[str, Any]], current: dict[str, list[str]]
) -> list[Any]:
    """One row per chosen model: its name and a checklist of precisions (each checked one is
    a column of the comparison); a model's earlier choice is kept, else float32."""
    rows = []
    for model_id in chosen:
        m = models.get(model_id) or {"name": model_id[:8], "arch": ""}
        rows.append(
            html.Div(
                [
                    html.Span(
                        [html.Strong(m["name"]), html.Span(f" · {m['arch']}", className="muted")],
                        className="compare-precision-name",
                    ),
                    dcc.Checklist(
                        id={"type": "compare-precision", "model": model_id},
                        options=[
                            {"label": p, "value": p, "title": PRECISION_HELP[p]} for p in PRECISIONS
                        ],
                        value=current.get(model_id) or ["float32"],
                        inline=True,
                        className="compare-precision-choices",
                    ),
                ],
                className="compare-precision-row",
            )
        )
    if rows:
        rows.insert(
            0,
            html.Div(
                "Precision: each checked one is a column. bfloat16 and float16 need a CUDA "
                "worker; int8 runs on the CPU.",
                className="form-help",
            ),
        )
    return rows


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


# --- start --------------------------------------------------------------------------------


def parse_times(text: str | None) -> list[float] | None:
    """ "1, 2.5 5" → [1.0, 2.5, 5.0]; empty → None; ValueError with a sentence otherwise."""
    if text is None or not str(text).strip():
        return None
    out = []
    for part in re.split(r"[,;\s]+", str(text).strip()):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"Report times: {part!r} is not a number.") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"Report times: {part} is not a positive time.")
        out.append(value)
    return out or None


def compare_params(
    source: str | None,
    ic: str | None,
    dataset: str | None,
    trajectory: int | None,
    entries: list[dict[str, str]],
    steps: Any,
    dt: Any,
    reference: list[str] | None,
    divergence: Any,
    report_times: list[float] | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "models": entries,
        "steps": steps,
        "reference": bool(reference),
    }
    if source == DATASET:
        params["dataset_id"] = dataset
        if trajectory is not None:
            params["trajectory"] = int(trajectory)
    elif ic:
        params["initial_condition_id"] = ic
    if dt not in (None, ""):
        params["interval"] = dt
    if divergence not in (None, ""):
        params["divergence_factor"] = divergence
    if report_times:
        params["report_times"] = report_times
    return params


def entries_of(chosen: list[str], values: list[list[str]], ids: list[dict]) -> list[dict]:
    """The comparison's entries: every chosen model at every precision checked for it, in
    the order the models were chosen."""
    checked = {i["model"]: v for i, v in zip(ids or [], values or [], strict=False)}
    out = []
    for model_id in chosen or []:
        for precision in PRECISIONS:
            if precision in (checked.get(model_id) or ["float32"]):
                out.append({"model_id": model_id, "precision": precision})
    return out


@callback(
    Output("compare-url", "pathname"),
    Output("compare-url", "search"),
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
):
    """Submit the comparison, then go to its address, /compare/<job id>: the page is drawn
    again for that run (the same view as reopening it later) and follows it live."""
    if not n_clicks:
        raise PreventUpdate

    def refuse(message: str):
        return no_update, no_update, alert(message, "error")

    if source == DATASET and not dataset:
        return refuse("Initial condition: choose a dataset and a trajectory.")
    if source != DATASET and not ic:
        return refuse("Initial condition: choose an uploaded field (or a dataset trajectory).")
    entries = entries_of(chosen, values, ids)
    if len(entries) < 2:
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
    try:
        job = await asyncio.to_thread(jobs_view.submit_job, get_state(), "compare", params)
    except jobs_view.InvalidParams as exc:
        return refuse(str(exc))
    return f"/compare/{job['id']}", "", None


# --- poll ---------------------------------------------------------------------------------


def series_from(setup: dict[str, Any] | None, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-step scalars of ``metrics`` events as a fresh series store."""
    series = empty_series()
    for m in (setup or {}).get("models") or []:
        key = str(m["index"])
        series["models"][key] = {name: [] for name in SERIES_METRICS}
        series["status"][key] = {
            "status": m.get("status") or "running",
            "message": m.get("message"),
        }
    if metrics:
        appended = series_values(metrics, list(series["models"]))
        for name in ("t", "step"):
            series[name] = appended[name]
        for name in ("energy", "enstrophy"):
            series["reference"][name] = appended["reference"][name]
        for key, values in appended["models"].items():
            series["models"].setdefault(key, {}).update(values)
        series["status"] = status_after(series["status"], metrics)
        series["latest"] = metrics[-1]
    return series


def series_values(metrics: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    """What ``metrics`` events add to each list of the series store."""
    out: dict[str, Any] = {
        "t": [m.get("t") for m in metrics],
        "step": [m.get("step") for m in metrics],
        "reference": {
            name: [((m.get("reference") or {}).get(name)) for m in metrics]
            for name in ("energy", "enstrophy")
        },
        "models": {},
    }
    for key in keys:
        out["models"][key] = {
            name: [((m.get("models") or {}).get(key) or {}).get(name) for m in metrics]
            for name in SERIES_METRICS
        }
    return out


def status_after(
    status: dict[str, dict[str, Any]], metrics: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each column's status after ``metrics``: running, or how and at which step it
    stopped (kept from the first event that reported it)."""
    status = {k: dict(v) for k, v in (status or {}).items()}
    for m in metrics:
        for key, values in (m.get("models") or {}).items():
            now = (values or {}).get("status") or "running"
            before = status.get(key) or {}
            if before.get("status") in ("diverged", "failed"):
                continue
            entry = {"status": now, "message": (values or {}).get("message")}
            if now != "running":
                entry["step"] = m.get("step")
            status[key] = entry
    return status


def series_patch(series_keys: list[str], status: dict, metrics: list[dict[str, Any]]) -> Patch:
    patch = Patch()
    values = series_values(metrics, series_keys)
    for name in ("t", "step"):
        patch[name].extend(values[name])
    for name in ("energy", "enstrophy"):
        patch["reference"][name].extend(values["reference"][name])
    for key in series_keys:
        for name in SERIES_METRICS:
            patch["models"][key][name].extend(values["models"][key][name])
    patch["status"] = status_after(status, metrics)
    patch["latest"] = metrics[-1]
    return patch


def status_line(run: dict[str, Any]) -> list[Any]:
    status = run.get("status") or "unknown"
    steps = run.get("steps")
    done = run.get("frames", 0)
    if status == "queued":
        text = f"Waiting for a worker on the {run.get('queue') or ''} queue…".replace("  ", " ")
    elif status == "running":
        text = f"Running · step {max(done - 1, 0)} of {steps}" if done else "Preparing the models…"
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


def run_details(run: dict[str, Any], setup: dict[str, Any] | None) -> list[Any]:
    setup = setup or {}
    ic = setup.get("initial_condition") or {}
    if ic.get("kind") == "dataset":
        origin = f"dataset {str(ic.get('dataset_id'))[:8]} · trajectory {ic.get('trajectory')}"
    elif ic.get("kind") == "upload":
        origin = ic.get("name") or ic.get("initial_condition_id")
    elif ic.get("kind") == "random":
        origin = f"random field (seed {ic.get('seed')})"
    else:
        origin = None
    n_ref = setup.get("reference_resolution")
    rows = [
        ("Job", run.get("job_id")),
        ("Rollout", run.get("rollout_id")),
        ("Flow", run.get("flow")),
        ("Start", origin),
        ("Grid", f"{n_ref}²" if n_ref else None),
        ("Δt", f"{setup['interval']:g}" if setup.get("interval") else None),
        ("ν", f"{setup['nu']:.3g}" if setup.get("nu") else None),
        ("Reference", None if not setup else ("on" if setup.get("reference") else "off")),
    ]
    return [
        html.Dl(
            [el for label, value in rows if value for el in (html.Dt(label), html.Dd(value))],
            className="details",
        )
    ]


def ic_note(setup: dict[str, Any] | None) -> Any:
    ic = (setup or {}).get("initial_condition") or {}
    notes = []
    if ic.get("choice") and ic.get("choice") != "given":
        notes.append(alert(f"Trajectory {ic.get('trajectory')}: {ic['choice']}.", "info"))
    if ic.get("warning"):
        notes.append(
            alert(f"Not a held-out start: {ic['warning']}.", "warning", id="compare-ic-warning")
        )
    return notes or None


def export_links(rollout_id: str | None) -> Any:
    if not rollout_id:
        return None
    base = f"/api/rollouts/{rollout_id}"
    links = [
        ("netCDF", f"{base}/export.nc", "Every column's fields and metrics (netCDF-4)"),
        ("Metrics CSV", f"{base}/metrics.csv", "One row per step per column"),
        ("Animated GIF", f"{base}/animation.gif", "The panels, up to 100 frames"),
    ]
    return html.Div(
        [html.Span("Export", className="form-label")]
        + [
            html.A(
                label,
                href=href,
                download="",
                target="_blank",
                title=title,
                className="button button-small",
                id=f"compare-export-{label.split()[0].lower()}",
            )
            for label, href, title in links
        ],
        className="export-links",
    )


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
    Input("compare-interval", "n_intervals"),
    State("compare-run", "data"),
    State("compare-setup", "data"),
    State("compare-series", "data"),
    State("compare-slider", "value"),
    State("compare-slider", "max"),
    prevent_initial_call=True,
)
async def poll(_n, run, setup, series, slider, slider_max):
    run = dict(run or {})
    if not run.get("ref"):
        raise PreventUpdate
    reset = False
    if not run.get("job_id"):
        found = await asyncio.to_thread(rollouts.resolve, get_state(), run["ref"], "compare")
        if found is None or found["job"] is None:
            message = alert(
                f"There is no comparison or compare job with id {run['ref']!r}.", "error"
            )
            return ({}, no_update, no_update, no_update, message, [], None, None, True) + (
                no_update,
            ) * 4
        run["job_id"] = found["job"]["id"]
        run["seq"] = 0
        reset = True
    update = await asyncio.to_thread(
        rollouts.poll_comparison, get_state(), run["job_id"], run.get("seq") or 0
    )
    job = update["job"]
    if job is None:
        gone = alert("The job was deleted.", "error")
        return ({}, no_update, no_update, no_update, gone, [], None, None, True) + (no_update,) * 4
    events = update["events"]
    rollout = update["rollout"]
    run.update(
        status=job["status"],
        progress=job["progress"],
        message=job["message"],
        error=job["error"],
        queue=job["queue"],
        steps=job["params"].get("steps"),
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
    if reset or new_setup is not None:
        series_out: Any = series_from(setup, metrics)
        run["frames"] = len(metrics)
    elif metrics:
        keys = list((series or {}).get("models") or {})
        series_out = series_patch(keys, (series or {}).get("status") or {}, metrics)
        run["frames"] = run.get("frames", 0) + len(metrics)
    else:
        series_out = no_update
    final = job["status"] in FINAL and update["complete"]
    run["final"] = final

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
        run_details(run, setup),
        ic_note(setup),
        export_links(run.get("rollout_id")),
        final,
        *slider_out,
    )


# --- the grid -----------------------------------------------------------------------------


def columns_of(setup: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The grid's columns, in order: the reference (when it runs), then one per entry, each
    ``{"key", "label", "color", ...the setup row}``."""
    if not setup:
        return []
    out: list[dict[str, Any]] = []
    if setup.get("reference", True):
        out.append({"key": REFERENCE, "label": cf.REFERENCE_LABEL, "color": cf.COLORS["reference"]})
    for m in setup.get("models") or []:
        out.append(
            {
                **m,
                "key": str(m["index"]),
                "label": cf.entry_label(m),
                "color": cf.entry_color(m["index"]),
            }
        )
    return out


def column_status(
    column: dict[str, Any],
    status: dict[str, Any] | None,
    summary_row: dict[str, Any] | None,
    job_status: str | None,
) -> dict[str, Any]:
    """What a column's badge says: ``{"status", "text", "message"}``, status one of
    running, completed, diverged, failed or stopped (the job ended before the column did).
    The summary row's word wins, then the newest metrics event's, then the setup's."""
    status = status or {}
    if summary_row:
        state, message = summary_row.get("status") or "completed", summary_row.get("message")
    else:
        state = status.get("status") or column.get("status") or "running"
        message = status.get("message") or column.get("message")
        if column.get("status") == "failed" and state == "running":
            state = "failed"
    if state == "running" and job_status in FINAL:
        state = "completed" if job_status == "succeeded" else "stopped"
    if state == "diverged":
        text = message or (
            f"diverged at step {status['step']}" if status.get("step") is not None else "diverged"
        )
    elif state == "failed":
        text = "failed"
    else:
        text = state
    return {"status": state, "text": text, "message": message}


BADGE_CLASSES = {
    "running": "badge badge-running",
    "completed": "badge badge-succeeded",
    "diverged": "badge badge-diverged",
    "failed": "badge badge-failed",
    "stopped": "badge badge-cancelled",
}


def column_header(
    column: dict[str, Any], state: dict[str, Any], setup: dict[str, Any] | None
) -> list[Any]:
    """A column's header: swatch and name, architecture · precision · parameters, the status
    badge ("diverged at step k" when the guard stopped it; a failure's reason under it) and
    notes: the initial condition resampled to the model's grid, warm-up frames from the
    solver, int8 on the CPU."""
    setup = setup or {}
    badge = html.Span(
        state["text"],
        className=BADGE_CLASSES.get(state["status"], "badge badge-unknown"),
        title=state.get("message") or state["text"],
    )
    swatch = html.Span(className="compare-swatch", style={"background": column["color"]})
    if column["key"] == REFERENCE:
        n = setup.get("reference_resolution")
        meta = ["pseudo-spectral solver", f"{n}²" if n else None]
        return [
            html.Div(
                [swatch, html.Span("Reference solver", className="compare-col-name")],
                className="compare-col-title",
            ),
            html.Div(" · ".join(m for m in meta if m), className="compare-col-meta"),
            html.Div([badge], className="compare-col-badges"),
        ]
    meta = [column.get("arch") or "", column.get("precision") or "float32"]
    if column.get("parameters"):
        meta.append(f"{fmt_count(column['parameters'])} params")
    notes = []
    if column.get("resampled_from") and column.get("resolution"):
        notes.append(
            html.Span(
                f"resampled {column['resampled_from']}→{column['resolution']}",
                className="tag compare-note",
                title="The initial condition was spectrally resampled to the model's grid; its "
                "errors are measured on the reference grid.",
            )
        )
    if (column.get("history") or 1) > 1:
        notes.append(
            html.Span(
                f"first {column['history']} frames from the solver",
                className="tag compare-note",
                title="The model reads a window of frames: the reference solver gives the first.",
            )
        )
    if column.get("precision") == "int8":
        share = column.get("quantized_fraction")
        text = "int8 on the CPU" + (f" · {share:.0%} int8" if share is not None else "")
        notes.append(html.Span(text, className="tag compare-note"))
    children = [
        html.Div(
            [
                swatch,
                html.Span(
                    column.get("name") or column["label"],
                    className="compare-col-name",
                    title=column.get("model_id"),
                ),
            ],
            className="compare-col-title",
        ),
        html.Div(" · ".join(meta), className="compare-col-meta"),
        html.Div([badge, *notes], className="compare-col-badges"),
    ]
    if state["status"] == "failed" and state.get("message"):
        children.append(html.Div(state["message"], className="compare-col-error error-text small"))
    return children


def grid_style(columns: int) -> dict[str, str]:
    width = 200 if columns <= 4 else 160
    return {"gridTemplateColumns": f"repeat({columns}, minmax({width}px, 1fr))"}


def graph_height(columns: int, with_error_row: bool) -> int:
    per_row = {1: 340, 2: 320, 3: 270, 4: 230}.get(columns, 190)
    return per_row * (2 if with_error_row else 1) + 40


@callback(
    Output("compare-grid", "children"),
    Output("compare-grid", "style"),
    Input("compare-setup", "data"),
    prevent_initial_call=True,
)
def build_grid(setup):
    columns = columns_of(setup)
    if not columns:
        raise PreventUpdate
    height = graph_height(len(columns), bool(setup.get("reference", True)))
    shells = [
        html.Div(
            [
                html.Div(
                    id={"type": "compare-head", "col": c["key"]}, className="compare-col-head"
                ),
                dcc.Graph(
                    id={"type": "compare-field", "col": c["key"]},
                    figure=empty_figure("Waiting for the first frame."),
                    config=cf.png_config(f"eddyscope-compare-{c['key']}"),
                    style={"height": f"{height}px"},
                    className="compare-col-graph",
                ),
            ],
            className="compare-col",
            id=f"compare-col-{c['key']}",
        )
        for c in columns
    ]
    return shells, grid_style(len(columns))


# --- views --------------------------------------------------------------------------------


def shown_step(series: dict[str, Any], slider: int | None) -> int | None:
    steps = series.get("step") or []
    if not steps:
        return None
    if slider is not None and 0 <= slider < len(steps):
        return steps[slider]
    return steps[-1]


def panel_notes(column: dict[str, Any], state: dict[str, Any], step: int, status: dict) -> dict:
    """What a blank panel says when a column has nothing at ``step`` (``note``,
    ``error_note``), and ``stopped`` for a column that diverged (it does not set the
    shared colour ranges)."""
    if state["status"] == "failed":
        return {"note": "failed: no frames (reason above)", "error_note": "failed: no frames"}
    if state["status"] != "diverged":
        return {}
    stopped_at = (status or {}).get("step")
    if stopped_at is None:
        found = re.search(r"step (\d+)", state.get("message") or "")
        stopped_at = int(found.group(1)) if found else None
    if stopped_at is not None and step > stopped_at:
        text = f"diverged at step {stopped_at}"
        return {"note": text, "error_note": text, "stopped": True}
    return {"stopped": True}


@callback(
    Output({"type": "compare-field", "col": ALL}, "figure"),
    Output({"type": "compare-head", "col": ALL}, "children"),
    Output("compare-spectra", "figure"),
    Output("compare-error", "figure"),
    Output("compare-corr", "figure"),
    Output("compare-energy", "figure"),
    Output("compare-frame-label", "children"),
    Output("compare-shown", "data"),
    Input("compare-series", "data"),
    Input("compare-slider", "value"),
    Input("compare-grid", "children"),
    Input("compare-summary", "data"),
    State("compare-setup", "data"),
    State("compare-run", "data"),
    State("compare-shown", "data"),
    prevent_initial_call=True,
)
async def views(series, slider, _grid, summary, setup, run, shown_before):
    run = run or {}
    series = series or empty_series()
    columns = columns_of(setup)
    field_ids = [o["id"]["col"] for o in ctx.outputs_list[0]]
    head_ids = [o["id"]["col"] for o in ctx.outputs_list[1]]
    if not columns or not field_ids:
        raise PreventUpdate
    by_key = {c["key"]: c for c in columns}
    rows = {str(r.get("index")): r for r in (summary or {}).get("rows") or []}
    states = {
        c["key"]: column_status(
            c, (series.get("status") or {}).get(c["key"]), rows.get(c["key"]), run.get("status")
        )
        if c["key"] != REFERENCE
        else column_status(c, None, None, run.get("status"))
        for c in columns
    }
    headers = [
        column_header(by_key[k], states[k], setup) if k in by_key else None for k in head_ids
    ]

    step = shown_step(series, slider)
    steps = series.get("step") or []
    latest = series.get("latest") or {}
    revision = run.get("rollout_id") or run.get("job_id")
    with_error = bool((setup or {}).get("reference", True))
    redraw = (
        step is not None
        and run.get("rollout_id")
        and (step != shown_before or ctx.triggered_id in ("compare-grid", "compare-summary"))
    )
    if step is None:
        return ([no_update] * len(field_ids), headers) + (no_update,) * 6

    def load():
        frames, t = ({}, None)
        if redraw:
            sources = []
            for c in columns:
                if c["key"] == REFERENCE:
                    sources.append("reference")
                else:
                    sources.append(f"model:{c['key']}")
                    if with_error:
                        sources.append(f"error:{c['key']}")
            frames, t = rollouts.comparison_frames(
                get_state(), run["rollout_id"], int(step), sources
            )
        metrics = (
            latest
            if latest.get("step") == step
            else rollouts.step_metrics(get_state(), run["job_id"], int(step))
        )
        return frames, t, metrics or {}

    frames, _t, metrics = await asyncio.to_thread(load)
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
        figs = cf.grid_figures(
            grid_columns,
            fields,
            errors,
            with_error_row=with_error,
            length=length,
            uirevision=revision,
        )
        field_figs = [figs.get(k, no_update) for k in field_ids]
    else:
        field_figs = [no_update] * len(field_ids)

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
    )
    following = slider is None or (steps and slider >= len(steps) - 1)
    marker = None if following and not run.get("final") else t_now
    models = series.get("models") or {}
    if with_error:
        error = cf.error_growth_figure(
            series.get("t"), entry_views, models, marker_t=marker, uirevision=revision
        )
        corr = cf.correlation_figure(
            series.get("t"), entry_views, models, marker_t=marker, uirevision=revision
        )
    else:
        off = "The reference solver is off: there is nothing to measure {} against."
        error = empty_figure(off.format("errors"), revision)
        corr = empty_figure(off.format("correlations"), revision)
    energy = cf.energy_enstrophy_figure(
        series.get("t"),
        series.get("reference"),
        entry_views,
        models,
        marker_t=marker,
        uirevision=revision,
    )
    total = run.get("steps")
    label = (
        (f"t = {t_now:.4g} · " if t_now is not None else "")
        + f"step {step}"
        + (f" of {total}" if total else "")
    )
    if following and not run.get("final"):
        label += " · following the newest frame"
    return field_figs, headers, spectra, error, corr, energy, label, step


# --- play ---------------------------------------------------------------------------------


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


# --- summary ------------------------------------------------------------------------------


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
    if not rows:
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
