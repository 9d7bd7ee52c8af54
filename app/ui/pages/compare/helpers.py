"""The Compare page's pure helpers: dropdown options, the job's parameters from the form,
the series store built from metrics events, the run's status and details, the grid's columns
and their headers. No callbacks and no data access: tests call them directly."""

from __future__ import annotations

import math
import re
from typing import Any

from dash import Patch, dcc, html

from app.services.flows import flow_length
from app.services.jobs_view import grid_label
from app.ui import compare_figures as cf
from app.ui.components import (
    alert,
    eta_text,
    fmt_count,
    fmt_shape,
    graph,
    png_config,
    progress_bar,
    status_badge,
    waiting_text,
)

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
WAITING = "waiting for the first frame"
# The error and correlation charts of a comparison run without the reference solver.
REFERENCE_OFF = "The reference solver is off: there is nothing to measure {} against."


def empty_series() -> dict[str, Any]:
    return {
        "t": [],
        "step": [],
        "reference": {"energy": [], "enstrophy": []},
        "models": {},
        "status": {},
        "latest": None,
    }


def models_of_flow(state: Any, is_flow: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The stored models of the flows ``is_flow`` accepts, each with its architecture's
    label, and their contracts (model id → contract); a model whose config does not build
    is left out (not comparable). For the channel and hit3d catalogues."""
    from app.services import catalog as catalog_service
    from models.registry import MODELS, contract_of

    models, contracts = [], {}
    for m in catalog_service.list_models(state):
        if not is_flow(m.get("flow")):
            continue
        try:
            contracts[m["id"]] = contract_of(m["arch"], m["config"])
        except Exception:  # a broken or unknown config: not comparable
            continue
        spec = MODELS.get(m["arch"])
        models.append({**m, "label": spec.label if spec is not None else m["arch"]})
    return models, contracts


def velocity_models(
    models: list[dict[str, Any]],
    contracts: dict[str, Any],
    datasets: list[dict[str, Any]],
    is_flow: Any,
    held_out: bool,
) -> list[dict[str, Any]]:
    """The 3D models of the three velocity components among ``models`` of the flows
    ``is_flow`` accepts, each with its ``history``, ``grid_label`` (its training data's grid)
    and ``held_out`` (its held-out trajectories when ``held_out``, else none)."""
    by_dataset = {d["id"]: d for d in datasets}
    out = []
    for m in models:
        contract = contracts.get(m["id"])
        if not is_flow(m.get("flow")) or contract is None:
            continue
        if contract.dims != 3 or contract.channels != 3:
            continue
        shape = (by_dataset.get(m.get("dataset_id") or "") or {}).get("shape") or []
        out.append(
            {
                **m,
                "history": contract.history,
                "grid_label": grid_label(shape[2:5]) if len(shape) == 6 else None,
                "held_out": (m.get("held_out") or []) if held_out else [],
            }
        )
    return out


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
    grid = m.get("grid_label") or (f"{m['resolution']}²" if m.get("resolution") else "any grid")
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
        note = "No models yet: train some on the Train page."
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
        text = waiting_text(run.get("place"))
    elif status == "running":
        text = f"Running · step {max(done - 1, 0)} of {steps}" if done else "Preparing the models…"
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


def run_details(run: dict[str, Any], setup: dict[str, Any] | None) -> list[Any]:
    setup = setup or {}
    ic = setup.get("initial_condition") or {}
    if ic.get("kind") == "dataset":
        dataset = ic.get("dataset_name") or f"dataset {str(ic.get('dataset_id'))[:8]}"
        origin = f"{dataset} · trajectory {ic.get('trajectory')}"
    elif ic.get("kind") == "upload":
        origin = ic.get("name") or ic.get("initial_condition_id")
    elif ic.get("kind") == "random":
        origin = f"random field (seed {ic.get('seed')})"
    else:
        origin = None
    n_ref = setup.get("reference_resolution")
    # A hit3d comparison runs on one n³ cube (its setup's ``resolution``), the models' grid
    # and the reference LES's; a 2D one on the reference's n² grid.
    box = setup.get("geometry") == "hit3d"
    n_grid = (setup.get("resolution") or n_ref) if box else n_ref
    rows = [
        ("Job", run.get("job_id")),
        ("Rollout", run.get("rollout_id")),
        ("Flow", run.get("flow")),
        ("Initial condition", origin),
        ("Models", models_text(setup)),
        ("Grid", f"{n_grid}{'³' if box else '²'}" if n_grid else None),
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


def models_text(setup: dict[str, Any] | None) -> str | None:
    """The models of a comparison by name, each with its precision ("fno-a (float32),
    fno-a (int8)"): what the columns show, never their ids (an id only for a model that
    has no name)."""
    models = (setup or {}).get("models") or []
    return ", ".join(cf.entry_label(m) for m in models) or None


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


def partial_note(run: dict[str, Any] | None) -> str | None:
    """While the run is not final, what an export taken now holds: the steps so far."""
    run = run or {}
    if run.get("final") or run.get("status") not in ("queued", "running"):
        return None
    done = max(int(run.get("frames") or 0) - 1, 0)
    total = run.get("steps")
    return f"Partial: the run is still going, an export now holds step {done}" + (
        f" of {total}." if total else "."
    )


def export_links(rollout_id: str | None, channel: bool = False, partial: str | None = None) -> Any:
    """The run's exports. A 3D comparison (``channel``: a channel or hit3d one) has the
    metrics CSV only: netCDF and GIF are of 2D vorticity frames (the API answers 409 for a
    3D run). ``partial`` (``partial_note``): taken mid-run, each link says the file is
    partial."""
    if not rollout_id:
        return None
    base = f"/api/rollouts/{rollout_id}"
    links = [
        ("netCDF", f"{base}/export.nc", "Every column's fields and metrics (netCDF-4)"),
        ("Metrics CSV", f"{base}/metrics.csv", "One row per step per column"),
        ("Animated GIF", f"{base}/animation.gif", "The panels, up to 100 frames"),
    ]
    if channel:
        links = [link for link in links if link[0] == "Metrics CSV"]
    return html.Div(
        [html.Span("Export", className="form-label")]
        + [
            html.A(
                label + (" (partial)" if partial else ""),
                href=href,
                download="",
                target="_blank",
                title=title + (f". {partial}" if partial else ""),
                className="button button-small",
                id=f"compare-export-{label.split()[0].lower()}",
            )
            for label, href, title in links
        ]
        + (
            [html.Small(partial, className="form-help", id="compare-export-partial")]
            if partial
            else []
        ),
        className="export-links",
    )


def columns_of(setup: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The grid's columns, in order: the reference (when it runs), then one per entry, each
    ``{"key", "label", "color", ...the setup row}``."""
    if not setup or setup.get("geometry") == "hit3d":
        return []  # a hit3d comparison draws HIT panels (``compare.hit3d``), not this grid
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


def grid_shells(
    setup: dict[str, Any], run: dict[str, Any], drawn: dict[str, Any] | None = None
) -> tuple[list[Any], dict[str, Any], list[str]]:
    """The grid of a 2D comparison: one column per source (its header and its field graph,
    drawn from ``drawn``, a ``render`` result, or waiting for the first frame), the grid's
    style and its column keys."""
    columns = columns_of(setup)
    height = graph_height(len(columns), bool(setup.get("reference", True)))
    keys = [c["key"] for c in columns]
    figures = (drawn or {}).get("fields") or {}
    if not figures:
        # Blank panels of the same layout as a frame's (axes, colour axes, bars): the first
        # frame then only changes their data instead of drawing every graph anew.
        waiting = [{"key": k, "note": WAITING, "error_note": "waiting"} for k in keys]
        figures = cf.grid_figures(
            waiting,
            {},
            {},
            with_error_row=bool(setup.get("reference", True)),
            length=flow_length(run.get("flow") or "ns2d-forced"),
            uirevision=run.get("rollout_id") or run.get("job_id"),
        )
    heads = dict(zip(keys, (drawn or {}).get("headers") or [None] * len(keys), strict=True))
    shells = [
        html.Div(
            [
                html.Div(
                    heads[c["key"]],
                    id={"type": "compare-head", "col": c["key"]},
                    className="compare-col-head",
                ),
                graph(
                    id={"type": "compare-field", "col": c["key"]},
                    figure=figures.get(c["key"]),
                    config=png_config(f"eddyscope-compare-{c['key']}"),
                    style={"height": f"{height}px"},
                    className="compare-col-graph",
                ),
            ],
            className="compare-col",
            id=f"compare-col-{c['key']}",
        )
        for c in columns
    ]
    return shells, grid_style(len(columns)), keys


def planned_overlays(setup: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The spectra, error, correlation and energy charts of a 2D comparison before its first
    frame (``grid_shells``' companions): every line of every column laid out empty, with its
    legend entry and its axes, and a note, so that the first frame only fills them in.
    ``setup`` is the setup or the job's plan (``rollouts.planned_comparison``)."""
    entries = [c for c in columns_of(setup) if c["key"] != REFERENCE]
    with_reference = bool(setup.get("reference", True))
    revision = run.get("rollout_id") or run.get("job_id")
    side = int(setup.get("resolution") or 64)
    common = dict(uirevision=revision, plain=True, waiting=WAITING)
    spectra = cf.spectra_figure(
        list(range(side // 2 + 1)),
        [] if with_reference else None,
        [(c["label"], c["color"], None) for c in entries],
        title="Energy spectra",
        **common,
    )
    if with_reference:
        error = cf.error_growth_figure([], entries, {}, live=True, **common)
        corr = cf.correlation_figure([], entries, {}, live=True, **common)
    else:
        error = cf.empty_figure(REFERENCE_OFF.format("errors"), revision)
        corr = cf.empty_figure(REFERENCE_OFF.format("correlations"), revision)
    energy = cf.energy_enstrophy_figure(
        [], {} if with_reference else None, entries, {}, live=True, **common
    )
    return {"spectra": spectra, "error": error, "corr": corr, "energy": energy}
