"""The Data page's layout: the generate form, the generation list, the datasets table, the
preview, the channel-flow card and the isotropic-turbulence (hit3d) card (no data access
besides the flows' registry and the form's defaults, so navigation never waits)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from app.services import training_options
from app.ui import manage
from app.ui.components import card, data_table, form_row, number_input, page
from app.ui.pages.datasets.helpers import (
    ACTIVE_MS,
    CHANNEL,
    DEFAULT_FLOW,
    HEADERS,
    SCHEME_LABELS,
    channel_choices,
    flow_choices,
    flows_by_name,
    ic_description,
)
from app.ui.pages.datasets.hit3d import hit3d_card, hit3d_section


def _dropdown(id: str, options: list[dict[str, Any]], value: Any, **kwargs: Any) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=id,
        options=options,
        value=value,
        clearable=False,
        searchable=False,
        className="dropdown",
        **kwargs,
    )


def _pair(*rows: Any) -> html.Div:
    return html.Div(list(rows), className="form-inline form-pair")


def _with_id(row: html.Div, id: str, hidden: bool = False) -> html.Div:
    """A form row (or pair) the flow picker shows or hides: an id, and ``hidden`` added to
    its class while the flow does not take it."""
    row.id = id
    base = row.className or ""
    row.className = f"{base} hidden" if hidden else base
    return row


def channel_section(flows: dict[str, dict[str, Any]], shown: bool = False) -> html.Div:
    """The channel flows' parameters (solver grid, stored x–z grid, Re_τ, closure, drive),
    shown while a channel flow is chosen; filled with the first channel flow's defaults."""
    first = next((f for f in flows.values() if f.get("channel")), None)
    c = channel_choices(first)
    grid = c.get("grid") or [32, 49, 32]
    return html.Div(
        [
            html.H3("Channel", className="form-section"),
            form_row(
                "Solver grid nx × ny × nz",
                html.Div(
                    [
                        number_input("data-ch-nx", grid[0], step=1),
                        number_input("data-ch-ny", grid[1], step=1),
                        number_input("data-ch-nz", grid[2], step=1),
                    ],
                    className="form-inline",
                ),
                c.get("grid_help") or "nx, ny (cells between the walls), nz.",
            ),
            form_row(
                "Stored grid nx × ny × nz",
                html.Div(
                    [
                        number_input("data-ch-out-nx", None, step=1, placeholder="solver's"),
                        number_input("data-ch-out-ny", None, step=1, placeholder="solver's"),
                        number_input("data-ch-out-nz", None, step=1, placeholder="solver's"),
                    ],
                    className="form-inline",
                ),
                "Optional: the training grid the velocity is stored on, filtered from the "
                "solver grid (the filter is recorded in the file); ny empty keeps the "
                "solver's y points.",
            ),
            _pair(
                form_row(
                    "x–z filter",
                    _dropdown(
                        "data-ch-filter",
                        [
                            {"label": "spectral cut (default)", "value": "spectral"},
                            {"label": "box (top-hat), then the cut", "value": "box"},
                        ],
                        "spectral",
                    ),
                ),
                form_row(
                    "Box width",
                    number_input("data-ch-filter-width", None, step="any", placeholder="1"),
                    "Box filter only: its width in stored-grid cells.",
                ),
            ),
            _pair(
                form_row(
                    "Re_τ",
                    number_input("data-ch-re-tau", c.get("re_tau") or 180, step="any"),
                    "Friction Reynolds number (ν = 1/Re_τ).",
                ),
                form_row(
                    "LES closure",
                    _dropdown("data-ch-closure", c.get("closures") or [], c.get("closure")),
                ),
            ),
            form_row("Drive", _dropdown("data-ch-drive", c.get("drives") or [], c.get("drive"))),
        ],
        id="data-channel-params",
        className="channel-params" + ("" if shown else " hidden"),
    )


def generate_form(flows: dict[str, dict[str, Any]], defaults: dict[str, Any]) -> list[Any]:
    flow_name = DEFAULT_FLOW if DEFAULT_FLOW in flows else next(iter(flows), None)
    choices = flow_choices(flows.get(flow_name))
    # A server whose API has no choice of scheme solves with RK4–CN: shown, not editable.
    schemes = defaults.get("schemes") or ["rk4cn"]
    return [
        form_row(
            "Flow",
            _dropdown(
                "data-flow",
                [
                    {"label": name, "value": name, "title": f["description"]}
                    for name, f in flows.items()
                ],
                flow_name,
            ),
            html.Span(choices["description"], id="data-flow-description"),
        ),
        _pair(
            _with_id(
                form_row("Viscosity ν", _dropdown("data-nu", choices["nu"], choices["nu_value"])),
                "data-nu-row",
                choices["channel"] or bool((flows.get(flow_name) or {}).get("hit3d")),
            ),
            form_row("Initial condition", _dropdown("data-ic", choices["ic"], choices["ic_value"])),
        ),
        html.Small(
            ic_description(flows.get(flow_name), choices["ic_value"]),
            id="data-ic-description",
            className="form-help form-help-block",
        ),
        _with_id(
            form_row(
                "Time stepper",
                _dropdown(
                    "data-scheme",
                    [{"label": SCHEME_LABELS.get(s, s), "value": s} for s in schemes],
                    defaults.get("scheme") or schemes[0],
                    disabled=not defaults.get("schemes"),
                ),
            ),
            "data-scheme-row",
            choices["channel"],
        ),
        channel_section(flows, choices["channel"]),
        hit3d_section(flows, bool((flows.get(flow_name) or {}).get("hit3d"))),
        html.H3("Size", className="form-section"),
        _pair(
            form_row("Trajectories N", number_input("data-n", defaults["n_trajectories"], step=1)),
            form_row("Snapshots T", number_input("data-t", defaults["n_snapshots"], step=1)),
        ),
        _with_id(
            _pair(
                form_row(
                    "Resolution",
                    number_input("data-resolution", defaults["resolution"], step=2),
                    "Points per side of the saved fields.",
                ),
                form_row(
                    "Solver resolution",
                    number_input("data-solver-resolution", None, step=2, placeholder="same"),
                    "Optional: a finer grid to solve on.",
                ),
            ),
            "data-resolution-row",
            choices["channel"],
        ),
        html.H3("Time", className="form-section"),
        _pair(
            form_row(
                "Interval Δt",
                number_input("data-interval", defaults["interval"], step="any"),
                "Time between snapshots.",
            ),
            form_row(
                "Warm-up",
                number_input("data-warmup", defaults["warmup"], step="any"),
                "Time solved before the first snapshot.",
            ),
        ),
        html.H3("Run", className="form-section"),
        _pair(
            form_row(
                "Shard size",
                number_input("data-shard-size", defaults["shard_size"], step=1),
                "Trajectories per task.",
            ),
            form_row("Seed", number_input("data-seed", defaults["seed"], step=1)),
        ),
        form_row(
            "Name",
            dcc.Input(id="data-name", type="text", placeholder="optional", className="input"),
        ),
        html.Div(id="data-summary", className="form-summary"),
        html.Button("Start generation", id="data-generate", className="button button-primary"),
        html.Div(id="data-feedback"),
        # The job the "Started." note is about, until the note gives way to its outcome.
        dcc.Store(id="data-started", data=None),
    ]


def layout(preview: str | None = None, trajectory: str | None = None, **_query: Any) -> html.Main:
    flows = flows_by_name()
    defaults = training_options.generate_defaults()
    try:
        index = max(0, int(trajectory)) if trajectory is not None else 0
    except ValueError:
        index = 0
    return page(
        "Data",
        "Training data from the built-in reference solvers: N trajectories of T snapshots Δt "
        "apart, solved in shards across the workers and stored as HDF5 in the layout of The "
        "Well.",
        html.Div(
            [
                card("Generate a dataset", *generate_form(flows, defaults), className="setup-card"),
                html.Div(
                    [
                        card(
                            "Generation",
                            html.Div(id="data-jobs-feedback"),
                            html.Div(
                                html.P("Loading…", className="muted"),
                                id="data-jobs",
                                className="gen-jobs",
                            ),
                        ),
                        card(
                            "Datasets",
                            html.Div(
                                data_table(HEADERS, [], empty="Loading…"),
                                id="data-table",
                                className="table-wrap",
                            ),
                            className="list-card",
                        ),
                    ],
                    className="side-column",
                ),
            ],
            className="grid-setup",
        ),
        card(
            None,
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Preview", className="card-title"),
                            html.Div(
                                "Choose Preview on a dataset to see one of its trajectories.",
                                id="data-preview-title",
                                className="preview-title-line",
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Label(
                                "Trajectory",
                                htmlFor="data-preview-trajectory",
                                className="form-label",
                            ),
                            dcc.Input(
                                id="data-preview-trajectory",
                                type="number",
                                value=index,
                                min=0,
                                step=1,
                                debounce=True,
                                className="input input-narrow",
                            ),
                            html.Small(id="data-preview-count", className="muted"),
                        ],
                        className="preview-controls",
                    ),
                ],
                className="preview-head",
            ),
            html.Div(id="data-preview-note", className="preview-note"),
            dcc.Loading(
                html.Div(id="data-preview", className="preview-body"),
                type="circle",
                color="#1f4e79",
                delay_show=300,
            ),
            id="data-preview-card",
            className="preview-card",
        ),
        card(
            None,
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Channel flow", className="card-title"),
                            html.Div(
                                "Statistics in wall units and slices of the velocity.",
                                id="data-channel-title",
                                className="preview-title-line",
                            ),
                        ]
                    ),
                    html.Div(
                        [
                            html.Label(
                                "Snapshot", htmlFor="data-channel-time", className="form-label"
                            ),
                            dcc.Input(
                                id="data-channel-time",
                                type="number",
                                value=None,
                                step=1,
                                placeholder="last",
                                debounce=True,
                                className="input input-narrow",
                            ),
                            html.Small(id="data-channel-count", className="muted"),
                        ],
                        id="data-channel-controls",
                        className="preview-controls hidden",
                    ),
                ],
                className="preview-head",
            ),
            CHANNEL.layout(),
            id="data-channel-card",
            className="preview-card channel-card hidden",
        ),
        hit3d_card(),
        dcc.Interval(id="data-refresh", interval=ACTIVE_MS),
        dcc.Store(id="data-table-key"),
        dcc.Store(id="data-preview-target", data={"id": preview} if preview else None),
        dcc.Store(id="data-preview-hook"),
        dcc.Store(id="data-preview-scroll"),
        manage.dialog(),  # Edit, Lineage and Delete of each dataset (app.ui.manage)
    )
