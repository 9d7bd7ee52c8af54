"""The Data page's pure helpers: the form's choices per flow and the generate job's
parameters from it, the generation list's items, the datasets table and the preview's note.
No callbacks and no data access besides the flows' registry: tests call them directly."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from dash import dcc, html

from app.services import jobs_view
from app.services.flows import (
    channel_generate_flows,
    flow_catalog,
    generate_form_flows,
    is_channel_flow,
    is_hit3d_flow,
)
from app.ui import manage
from app.ui.channel_panels import ChannelPanel
from app.ui.components import (
    alert,
    data_table,
    fmt_shape,
    fmt_time,
    job_duration,
    progress_bar,
    status_badge,
)

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
        **channel_choices(flow),
    }


CLOSURE_LABELS = {
    "none": "none (coarse DNS)",
    "smagorinsky": "Smagorinsky (van Driest damped)",
    "wale": "WALE",
    "dynamic": "dynamic Smagorinsky",
}
DRIVE_LABELS = {
    "pressure": "constant mean pressure gradient",
    "flow_rate": "constant flow rate",
}


def channel_choices(flow: dict[str, Any] | None) -> dict[str, Any]:
    """The channel part of the form for one flow: whether it shows (``channel``), the
    solver grid, Re_τ, closure and drive options and defaults (empty for a 2D flow)."""
    if not flow or not flow.get("channel"):
        return {"channel": False}
    return {
        "channel": True,
        "grid": list(flow["default_grid"]),
        "re_tau": flow["re_tau"],
        "closures": [
            {"label": CLOSURE_LABELS.get(c, c) + (" (default)" if i == 0 else ""), "value": c}
            for i, c in enumerate(flow["closures"])
        ],
        "closure": flow["closures"][0],
        "drives": [
            {"label": DRIVE_LABELS.get(d, d) + (" (default)" if i == 0 else ""), "value": d}
            for i, d in enumerate(flow["drives"])
        ],
        "drive": flow["drives"][0],
        "grid_help": f"Solver grid; {flow['grid_rule']}." if flow.get("grid_rule") else "",
    }


def ic_description(flow: dict[str, Any] | None, family: str | None) -> str:
    if flow is None or family in (None, DEFAULT_IC):
        return ""
    text = flow["ic_descriptions"].get(family, "")
    return f"Initial condition: {text}." if text else ""


def hit3d_form_flows() -> list[dict[str, Any]]:
    """What the generate form offers per periodic-box 3D flow (hit3d): the keys of
    ``generate_form_flows`` plus ``hit3d: True``, its default and limiting grid sides, ν's
    range, the random field's k_p and u_rms, its forcings, closures and filters (the first
    of each the default). Read from ``GET /api/flows``'s catalog."""
    out = []
    for f in flow_catalog():
        if f["dims"] != 3 or f["geometry"] != "periodic":
            continue
        p, families, grid = f["parameters"], f["initial_conditions"], f["grid"]
        out.append(
            {
                "name": f["name"],
                "description": f["description"],
                "nu": float(p["nu"]),
                "allowed_nu": [float(p["nu"])],
                "nu_min": float(p["nu_range"][0]),
                "nu_max": float(p["nu_range"][1]),
                "initial_conditions": [family["name"] for family in families],
                "ic_descriptions": {x["name"]: str(x["description"] or "") for x in families},
                "length": float(p["length"]),
                "hit3d": True,
                "default_n": int(grid["default"][0]),
                "min_n": int(grid["min"][0]),
                "max_n": int(grid["max"][0]),
                "grid_rule": str(grid.get("rule") or ""),
                "k_peak": float(p["k_peak"]),
                "u_rms": float(p["u_rms"]),
                "forcings": [str(x) for x in p.get("forcings") or ["none"]],
                "closures": [str(x) for x in p.get("closures") or ["none"]],
                "filters": [str(x) for x in p.get("filters") or ["spectral"]],
            }
        )
    return out


def flows_by_name() -> dict[str, dict[str, Any]]:
    """The flows the generate form offers: the 2D flows, the channel flows, then hit3d."""
    return {
        f["name"]: f
        for f in [*generate_form_flows(), *channel_generate_flows(), *hit3d_form_flows()]
    }


# --- generation jobs --------------------------------------------------------------------


def job_detail(p: dict[str, Any]) -> str:
    parts = [
        str(p.get("flow")),
        f"{p.get('n_trajectories')} × {p.get('n_snapshots')} snapshots @ "
        f"{jobs_view.generate_grid_label(p)}",
    ]
    if p.get("nu") is not None:
        parts.append(f"ν = {fmt_nu(float(p['nu']))}")
    if is_channel_flow(p.get("flow")):
        parts.append(f"Re_τ = {p.get('re_tau') or 180:g}")
        parts.append(str(p.get("closure") or "no closure"))
        if p.get("output_grid"):
            box = p.get("filter") == "box"
            width = f" (width {p['filter_width']:g})" if box and p.get("filter_width") else ""
            parts.append(("box filter" + width) if box else "spectral cut")
    if is_hit3d_flow(p.get("flow")):
        if p.get("forcing") not in (None, "none"):
            parts.append(f"{p['forcing']} forcing")
        if p.get("closure") not in (None, "none"):
            parts.append(str(p["closure"]))
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
    if is_hit3d_flow((job.get("params") or {}).get("flow")):
        actions.insert(
            0,
            html.Button(
                "Statistics",
                id={"type": "data-hit3d-live", "id": job["id"]},
                className="button button-small",
                title="Follow this job's isotropic-turbulence panels (hit3d_stats events) below.",
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
                        html.Span(d["name"], className="strong dataset-name"),
                        tag_list(d.get("tags")),
                        html.Br(),
                        html.Code(d["id"], className="muted small"),
                        notes_line(d.get("notes")),
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
                html.Td(grid_cell(d), className="num"),
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
                            *manage.item_actions("dataset", d["id"]),
                        ],
                        className="row-actions",
                    )
                ),
            ],
            id={"type": "data-row", "id": d["id"]},
        )
        for d in rows
    ]
    return data_table(
        HEADERS,
        body,
        empty="No datasets yet. Generate one with the form.",
        className="datasets-table",
    )


def grid_cell(d: dict[str, Any]) -> str:
    """A dataset's stored grid: n² (2D), n³ (a cube: hit3d), nx×ny×nz (a channel)."""
    shape = list(d["shape"])
    if len(shape) == 4:
        return f"{shape[-1]}²"
    if len(shape) == 6:
        space = shape[2:5]
        cube = is_hit3d_flow(d.get("flow")) and space[0] == space[1] == space[2]
        return f"{space[0]}³" if cube else fmt_shape(space)
    return fmt_shape(shape)


def table_key(rows: list[dict[str, Any]]) -> list[Any]:
    # The table is redrawn only when this changes (not each second): a stable table keeps
    # its buttons under the pointer.
    today = datetime.now(UTC).date().isoformat()
    return [
        today,
        *[[d["id"], d["job_status"], d["name"], d.get("tags"), d.get("notes")] for d in rows],
    ]


def tag_list(tags: list[str] | None) -> Any:
    """An item's tags as small labels (None without)."""
    if not tags:
        return None
    return html.Span([html.Span(t, className="tag") for t in tags], className="item-tags")


def notes_line(notes: str | None) -> Any:
    """The first line of an item's notes, cut short (the whole text on hover)."""
    if not notes:
        return None
    return html.Small(notes.splitlines()[0], className="muted item-notes", title=notes)


def generate_request(
    flows: dict[str, dict[str, Any]],
    flow: str | None,
    nu: float | None,
    ic: str | None,
    scheme: str | None,
    values: dict[str, Any],
    name: str | None,
    channel: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The generate job's parameters from the form. The flow's default viscosity and its
    default initial condition are sent as None (the job then uses the flow's own); empty
    optional boxes are left out (the API's defaults apply). A channel flow sends its
    ``channel`` values (``channel_grid``, ``output_grid``, ``re_tau``, ``closure``,
    ``drive``) and none of the 2D flows' (ν, scheme, resolutions)."""
    raw: dict[str, Any] = {"flow": flow}
    info = flows.get(flow or "")
    if info is not None and info.get("channel"):
        return _channel_request(raw, ic, values, channel or {}, name)
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


# Form values a 2D flow only takes (hidden and not sent for a channel flow).
TWO_D_ONLY = ("resolution", "solver_resolution")


def _stored_grid(boxes: list[Any] | None) -> list[int] | None:
    """The ``output_grid`` from the stored-grid boxes (nx, ny, nz; or nx, nz): nx, nz when ny
    is empty, all three when it is given; None when nx and nz are not both given."""
    boxes = list(boxes or [])
    if len(boxes) == 2:
        boxes = [boxes[0], None, boxes[1]]
    if len(boxes) != 3 or any(boxes[i] in (None, "") for i in (0, 2)):
        return None
    nx, ny, nz = boxes
    return [int(nx), int(nz)] if ny in (None, "") else [int(nx), int(ny), int(nz)]


def _channel_request(
    raw: dict[str, Any],
    ic: str | None,
    values: dict[str, Any],
    channel: dict[str, Any],
    name: str | None,
) -> dict[str, Any]:
    if ic not in (None, DEFAULT_IC):
        raw["initial_condition"] = ic
    for key, value in values.items():
        if key not in TWO_D_ONLY and value not in (None, ""):
            raw[key] = value
    grid = channel.get("grid") or []
    if grid and all(g not in (None, "") for g in grid):
        raw["channel_grid"] = [int(g) for g in grid]
    stored = _stored_grid(channel.get("output_grid"))
    if stored:
        raw["output_grid"] = stored
    if channel.get("filter") == "box":
        raw["filter"] = "box"
        if channel.get("filter_width") not in (None, ""):
            raw["filter_width"] = float(channel["filter_width"])
    if channel.get("re_tau") not in (None, ""):
        raw["re_tau"] = float(channel["re_tau"])
    if channel.get("closure") not in (None, "", "none"):
        raw["closure"] = channel["closure"]
    if channel.get("drive"):
        raw["drive"] = channel["drive"]
    if name and name.strip():
        raw["name"] = name.strip()
    return raw


REQUIRED = {
    "n_trajectories": "the number of trajectories N",
    "n_snapshots": "the number of snapshots T",
    "resolution": "the resolution",
    "interval": "the interval Δt",
}


def missing_values(values: dict[str, Any], channel: dict[str, Any] | None = None) -> list[str]:
    """The required boxes left empty, in words. A channel flow (``channel``: its form
    values) needs no resolution but all three solver grid sizes, and both stored sizes or
    neither."""
    missing = [
        label
        for key, label in REQUIRED.items()
        if not (channel is not None and key in TWO_D_ONLY) and values.get(key) in (None, "")
    ]
    if channel is not None:
        if any(g in (None, "") for g in channel.get("grid") or [None]):
            missing.append("the solver grid nx, ny, nz")
        boxes = list(channel.get("output_grid") or [])
        if len(boxes) == 2:
            boxes = [boxes[0], None, boxes[1]]
        empty = [g in (None, "") for g in boxes]
        if boxes and not all(empty) and (empty[0] or empty[-1]):
            missing.append("the stored grid's nx and nz (or none of its sizes)")
    return missing


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


FINAL_STATUSES = ("succeeded", "failed", "cancelled")


def outcome_note(job: dict[str, Any] | None, job_id: str) -> Any:
    """What replaces a generate job's "Started." note once the job ends: its outcome, with
    the dataset it made or why it failed (nothing when the job was deleted)."""
    if job is None:
        return None
    short = job_id[:8]
    status = job["status"]
    if status == "succeeded":
        dataset = (job.get("result") or {}).get("dataset_id")
        where = f" dataset {dataset[:8]} is in the table below." if dataset else ""
        text = f"Job {short} succeeded;{where}" if where else f"Job {short} succeeded."
        return alert(
            [html.Strong("Done. "), text],
            "success",
            id="data-feedback-done",
        )
    if status == "cancelled":
        return alert(f"Job {short} was cancelled.", "info", id="data-feedback-done")
    reason = job.get("error") or job.get("message") or "no reason recorded."
    return alert(
        [html.Strong("Failed. "), f"Job {short}: {reason}"], "error", id="data-feedback-done"
    )
