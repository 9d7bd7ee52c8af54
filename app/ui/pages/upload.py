"""``/upload``: drop a vorticity snapshot, see whether it was accepted (and if not, the
exact reason), its field and energy spectrum; the list of stored initial conditions."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.ui import data, figures
from app.ui.components import (
    CHART_GRAPH,
    alert,
    card,
    empty_row,
    fmt_number,
    fmt_shape,
    fmt_time,
    form_row,
    page,
    table,
)

ACCEPT = ".npy,.npz,.h5,.hdf5"
DEFAULT_FLOW = "ns2d-forced"


def layout(**_query: Any) -> html.Main:
    flows = data.flow_names()
    return page(
        "Upload",
        "An initial condition: one 2D vorticity field (ny, nx), or a batch of one, "
        "as .npy, .npz or HDF5. Pickles are never loaded.",
        html.Div(
            [
                card(
                    "New initial condition",
                    form_row(
                        "Flow",
                        dcc.Dropdown(
                            id="upload-flow",
                            options=[
                                {"label": name, "value": name, "title": desc}
                                for name, desc in flows
                            ],
                            value=DEFAULT_FLOW
                            if any(n == DEFAULT_FLOW for n, _ in flows)
                            else None,
                            clearable=False,
                            className="dropdown",
                        ),
                        "The case the field belongs to: it fixes the domain, the grids allowed "
                        "and the solver.",
                    ),
                    dcc.Upload(
                        id="upload-file",
                        children=html.Div(
                            [
                                html.Div("⇪", className="dropzone-icon"),
                                html.Div(
                                    [
                                        html.Strong("Drag and drop a file here"),
                                        html.Span(" or click to choose one"),
                                    ]
                                ),
                                html.Small(".npy · .npz · .h5 · .hdf5", className="muted"),
                            ],
                            className="dropzone-inner",
                        ),
                        accept=ACCEPT,
                        multiple=False,
                        max_size=-1,
                        className="dropzone",
                        className_active="dropzone dropzone-active",
                    ),
                    dcc.Loading(
                        html.Div(id="upload-message", className="upload-message"),
                        type="dot",
                        color="#1f4e79",
                    ),
                    className="upload-card",
                ),
                card(
                    "Preview",
                    html.Div(id="upload-preview-title", className="muted preview-title"),
                    html.Div(
                        [
                            dcc.Graph(
                                id="upload-preview",
                                figure=figures.empty_figure("Upload a field to see it here."),
                                config=CHART_GRAPH,
                                className="graph graph-square",
                            ),
                            dcc.Graph(
                                id="upload-spectrum",
                                figure=figures.empty_figure("…and its energy spectrum here."),
                                config=CHART_GRAPH,
                                className="graph graph-square",
                            ),
                        ],
                        className="grid-2",
                    ),
                    className="preview-card",
                ),
            ],
            className="grid-upload",
        ),
        card(
            "Stored initial conditions",
            html.Div(id="upload-list", className="table-wrap"),
        ),
        dcc.Store(id="upload-list-token", data=0),
    )


HEADERS = ["Name", "Flow", "Grid", "Kinetic energy", "Enstrophy", "Created", ""]


def ic_table(rows: list[dict[str, Any]]) -> html.Table:
    body = [
        html.Tr(
            [
                html.Td(
                    [
                        html.Span(ic["name"], className="strong"),
                        html.Span("example", className="tag") if ic["example"] else None,
                        html.Br(),
                        html.Code(ic["id"], className="muted small"),
                    ]
                ),
                html.Td(ic["flow"]),
                html.Td(fmt_shape(ic["shape"])),
                html.Td(fmt_number(ic["stats"].get("kinetic_energy"), 4)),
                html.Td(fmt_number(ic["stats"].get("enstrophy"), 4)),
                html.Td(fmt_time(ic["created_at"]), title=ic["created_at"] or ""),
                html.Td(
                    html.Div(
                        [
                            html.Button(
                                "Preview",
                                id={"type": "ic-preview", "id": ic["id"]},
                                className="button button-small",
                                n_clicks=0,
                            ),
                            dcc.Link(
                                "Roll out →",
                                href=f"/rollout?ic={ic['id']}",
                                className="button button-small button-primary",
                            ),
                        ],
                        className="row-actions",
                    )
                ),
            ]
        )
        for ic in rows
    ] or [empty_row(len(HEADERS), "No initial conditions stored yet.")]
    return table(HEADERS, body)


def success_note(ic: dict[str, Any]) -> html.Div:
    stats = ic["stats"]
    items = [
        ("min", stats.get("min")),
        ("max", stats.get("max")),
        ("mean", stats.get("mean")),
        ("std", stats.get("std")),
        ("kinetic energy", stats.get("kinetic_energy")),
        ("enstrophy", stats.get("enstrophy")),
    ]
    return alert(
        [
            html.Div(
                [
                    html.Strong("Stored. "),
                    html.Span(
                        f"{ic['name']} is initial condition ",
                    ),
                    html.Code(ic["id"], id="upload-ic-id"),
                    html.Span(f": a {fmt_shape(ic['shape'])} {ic['flow']} vorticity field."),
                ]
            ),
            html.Dl(
                [
                    el
                    for label, value in items
                    for el in (html.Dt(label), html.Dd(fmt_number(value, 4)))
                ],
                className="stats",
            ),
            dcc.Link(
                "Roll it out →",
                href=f"/rollout?ic={ic['id']}",
                className="button button-small button-primary",
            ),
        ],
        "success",
        id="upload-success",
    )


def error_note(filename: str, message: str) -> html.Div:
    return alert(
        [
            html.Strong(f"{filename} was not stored. "),
            html.Span(message, id="upload-error-text"),
        ],
        "error",
        id="upload-error",
    )


def preview(ic: dict[str, Any], field) -> tuple[Any, Any, str]:
    k, e = data.field_spectrum(field, ic["flow"])
    length = data.flow_length(ic["flow"])
    heatmap = figures.fields_figure(
        {"field": field}, length=length, titles={"field": "vorticity ω"}, uirevision=ic["id"]
    )
    spectrum = figures.spectrum_figure(
        k, {"field": e}, title="Energy spectrum", uirevision=ic["id"]
    )
    return heatmap, spectrum, f"{ic['name']} · {fmt_shape(ic['shape'])} · {ic['flow']}"


def _decode(contents: str) -> bytes:
    _, _, encoded = contents.partition(",")
    return base64.b64decode(encoded, validate=False)


@callback(
    Output("upload-message", "children"),
    Output("upload-preview", "figure"),
    Output("upload-spectrum", "figure"),
    Output("upload-preview-title", "children"),
    Output("upload-list-token", "data"),
    Input("upload-file", "contents"),
    State("upload-file", "filename"),
    State("upload-flow", "value"),
    State("upload-list-token", "data"),
    prevent_initial_call=True,
)
async def on_upload(contents: str | None, filename: str | None, flow: str | None, token: int):
    if not contents:
        raise PreventUpdate
    filename = filename or "upload"
    if not flow:
        return error_note(filename, "Choose the flow the field belongs to."), *[no_update] * 4
    try:
        content = _decode(contents)
    except (binascii.Error, ValueError):
        return error_note(filename, "The file could not be read."), *[no_update] * 4

    def store():
        ic, field = data.store_upload(filename, content, flow)
        return ic, *preview(ic, field)

    try:
        ic, heatmap, spectrum, title = await asyncio.to_thread(store)
    except data.UploadError as exc:
        return error_note(filename, str(exc)), *[no_update] * 4
    return success_note(ic), heatmap, spectrum, title, (token or 0) + 1


@callback(
    Output("upload-list", "children"),
    Input("upload-list-token", "data"),
)
async def refresh_list(_token: int):
    rows = await asyncio.to_thread(data.list_initial_conditions)
    return ic_table(rows)


@callback(
    Output("upload-preview", "figure", allow_duplicate=True),
    Output("upload-spectrum", "figure", allow_duplicate=True),
    Output("upload-preview-title", "children", allow_duplicate=True),
    Input({"type": "ic-preview", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def preview_stored(clicks: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate

    def load():
        found = data.initial_condition_field(trigger["id"])
        if found is None:
            return None
        return preview(*found)

    result = await asyncio.to_thread(load)
    if result is None:
        raise PreventUpdate
    return result
