"""``/upload``: drop a vorticity snapshot, see whether it was accepted (and if not, the
exact reason), its field and energy spectrum; the list of stored initial conditions.

The flow picker lists the flows ``app.services.flows.upload_flows`` reads from the flow
registry (the list ``GET /api/flows`` serves). Choosing a channel flow (geometry "channel")
switches the upload to 3D velocity snapshots (the flow's file types: .npz or HDF5 with the
wall-normal points y; ν from the file, else the ν box, else 1/Re_τ from the file, else
1/180): once stored, the channel panel (``app.ui.channel_panels``)
shows the snapshot's statistics in wall units and slices of its velocity. Preview on a
stored channel snapshot shows the same panel. Choosing hit3d (a periodic box) takes one 3D
velocity (3, n, n, n) or (n, n, n, 3), or u, v, w, as .npy, .npz or HDF5 (ν from the file,
else the ν box, else the flow's); once stored (or on Preview) the preview card shows the
midplanes of |ω| and the shell spectrum E(k) (``app.ui.hit3d_figures``), and the message its
HIT statistics and what the divergence check did (stored as uploaded, or Leray-projected)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import catalog, initial_conditions, previews
from app.services.flows import (
    flow_length,
    is_channel_flow,
    is_hit3d_flow,
    upload_file_types,
    upload_flows,
)
from app.services.uploads import FORMATS
from app.ui import figures, hit3d_figures
from app.ui.channel_panels import ChannelPanel
from app.ui.components import (
    CHART_GRAPH,
    alert,
    card,
    empty_row,
    fmt_number,
    fmt_shape,
    fmt_time,
    form_row,
    graph,
    page,
    table,
)
from app.ui.context import get_state

DEFAULT_FLOW = "ns2d-forced"
ANY_TYPES = FORMATS
ACCEPT = ",".join(ANY_TYPES)
HINT_2D = " · ".join(upload_file_types(DEFAULT_FLOW))
CHANNEL_DATA_HINT = " with velocity (3, nx, ny, nz) and y"
HIT3D_DATA_HINT = " with velocity (3, n, n, n) or (n, n, n, 3), or u, v, w"
FLOW_HELP_2D = (
    "The case the field belongs to: it fixes the domain, the grids allowed and the solver."
)
FLOW_HELP_CHANNEL = (
    "A channel snapshot: the velocity (3, nx, ny, nz) or (nx, ny, nz, 3), or u, v, w, with "
    "the wall-normal points y in [−1, 1]; optional nu (or re_tau), lx, lz in the file."
)
FLOW_HELP_HIT3D = (
    "A periodic-box snapshot: the velocity on the n³ points i·2π/n (n even, 16–128), axes "
    "(x, y, z) and components (u, v, w); optional nu in the file. A field slightly off "
    "divergence-free is Leray-projected (and said so); one far off is refused."
)
NU_PLACEHOLDER_CHANNEL = "1/Re_τ from the file, else 1/180"

CHANNEL = ChannelPanel("upload")


def is_channel(flow: str | None) -> bool:
    return is_channel_flow(flow)


def is_hit3d(flow: str | None) -> bool:
    return is_hit3d_flow(flow)


def file_types(flow: str | None) -> tuple[str, str]:
    """The upload's ``accept`` attribute and the hint under the drop zone for the flow.

    ``accept`` lists every type any flow reads, not only this flow's: a file of another
    kind (a .npy while the flow is a channel) then reaches the server and is answered with
    the sentence saying why it does not fit, instead of being dropped by the browser
    without a word."""
    types = upload_file_types(flow)
    extra = CHANNEL_DATA_HINT if is_channel(flow) else HIT3D_DATA_HINT if is_hit3d(flow) else ""
    return ",".join(ANY_TYPES), " · ".join(types) + extra


def _channel_names(flows: list[tuple[str, str]]) -> str:
    names = [name for name, _ in flows if is_channel(name)]
    return " or ".join(names) if names else "a channel flow"


def layout(**_query: Any) -> html.Main:
    flows = upload_flows()
    return page(
        "Upload",
        "An initial condition: one 2D vorticity field (ny, nx), or a batch of one, "
        f"as .npy, .npz or HDF5; or, for {_channel_names(flows)}, one 3D velocity snapshot "
        "with its y points; or, for hit3d, one velocity on the periodic box (3, n, n, n). "
        "Pickles are never loaded.",
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
                        html.Span(FLOW_HELP_2D, id="upload-flow-help"),
                    ),
                    html.Div(
                        form_row(
                            "Viscosity ν (if the file has none)",
                            dcc.Input(
                                id="upload-nu",
                                type="number",
                                min=0,
                                step="any",
                                placeholder=NU_PLACEHOLDER_CHANNEL,
                                className="input",
                            ),
                            "Used when the file gives no nu (a channel's wall units and a "
                            "box's ε and Re_λ need it).",
                            html_for="upload-nu",
                        ),
                        id="upload-nu-row",
                        className="hidden",
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
                                html.Small(HINT_2D, id="upload-hint", className="muted"),
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
                            graph(
                                id="upload-preview",
                                figure=figures.empty_figure("Upload a field to see it here."),
                                config=CHART_GRAPH,
                                className="graph graph-square",
                            ),
                            graph(
                                id="upload-spectrum",
                                figure=figures.empty_figure("…and its energy spectrum here."),
                                config=CHART_GRAPH,
                                className="graph graph-square",
                            ),
                        ],
                        className="grid-2",
                    ),
                    className="preview-card",
                    id="upload-preview-card",
                ),
            ],
            className="grid-upload",
        ),
        card(
            "Channel statistics",
            html.P(
                f"Choose {_channel_names(flows)} and upload a velocity snapshot, or Preview a "
                "stored one: "
                "U⁺ against y⁺ with the sublayer and log-law lines, rms profiles, the shear "
                "stress, spectra at a chosen y⁺ and slices of the velocity.",
                className="muted",
                id="upload-channel-empty",
            ),
            CHANNEL.layout(),
            className="channel-card hidden",
            id="upload-channel-card",
        ),
        card(
            "Stored initial conditions",
            html.Div(id="upload-list", className="table-wrap"),
        ),
        dcc.Store(id="upload-list-token", data=0),
        dcc.Store(id="upload-view", data="2d"),
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
                html.Td(_second_stat(ic)),
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


def _second_stat(ic: dict[str, Any]) -> str:
    """The list's fourth column: a 2D field's enstrophy, a channel's Re_τ, a box's Re_λ."""
    if is_channel(ic["flow"]):
        return f"Re_τ {fmt_number(ic['stats'].get('re_tau'), 4)}"
    if is_hit3d(ic["flow"]):
        return f"Re_λ {fmt_number(ic['stats'].get('taylor_reynolds'), 4)}"
    return fmt_number(ic["stats"].get("enstrophy"), 4)


def fit_warnings(fits: list[dict[str, Any]]) -> list[Any]:
    """One line per model whose training inputs the field is far from
    (``app.services.model_fit``), with the numbers; nothing when none is."""
    return [
        html.P(
            [html.Strong("⚠ "), html.Span(fit["message"][:1].upper() + fit["message"][1:] + ".")],
            className="small fit-warning",
            id=f"upload-fit-{fit['model_id']}",
        )
        for fit in fits
        if fit.get("far")
    ]


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
            *fit_warnings(ic.get("model_fit") or []),
            dcc.Link(
                "Roll it out →",
                href=f"/rollout?ic={ic['id']}",
                className="button button-small button-primary",
            ),
        ],
        "success",
        id="upload-success",
    )


def channel_success_note(ic: dict[str, Any]) -> html.Div:
    """What a stored channel snapshot is, its headline statistics and where ν came from."""
    stats = ic["stats"]
    items = [
        ("u_τ", stats.get("u_tau")),
        ("Re_τ", stats.get("re_tau")),
        ("bulk U⁺", stats.get("bulk_u_plus")),
        ("centreline U⁺", stats.get("centreline_u_plus")),
        ("kinetic energy", stats.get("kinetic_energy")),
        ("ν", stats.get("nu")),
    ]
    wall = (
        None
        if stats.get("wall_units", 1.0)
        else html.Div(
            "Its mean wall shear is not positive, so there are no wall units.", className="muted"
        )
    )
    return alert(
        [
            html.Div(
                [
                    html.Strong("Stored. "),
                    html.Span(f"{ic['name']} is initial condition "),
                    html.Code(ic["id"], id="upload-ic-id"),
                    html.Span(
                        f": a {fmt_shape(ic['shape'][1:])} {ic['flow']} velocity snapshot "
                        "(u, v, w)."
                    ),
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
            html.Div(
                initial_conditions.channel_grid_note(stats, ic["shape"][2]),
                className="small",
                id="upload-grid-note",
            ),
            html.Div(
                initial_conditions.channel_nu_note(stats), className="small", id="upload-nu-note"
            ),
            wall,
        ],
        "success",
        id="upload-success",
    )


def hit3d_success_note(ic: dict[str, Any]) -> html.Div:
    """What a stored periodic-box snapshot is, its HIT statistics, where ν came from and
    what the divergence check did."""
    stats = ic["stats"]
    items = [
        ("kinetic energy", stats.get("energy")),
        ("dissipation ε", stats.get("dissipation")),
        ("Re_λ", stats.get("taylor_reynolds")),
        ("u′", stats.get("u_rms")),
        ("k_max·η", stats.get("kmax_eta")),
        ("max |∇·u|", stats.get("divergence_max")),
        ("ν", stats.get("nu")),
    ]
    try:
        source = initial_conditions.HIT3D_NU_SOURCES[int(stats.get("nu_source", 2))]
    except (IndexError, TypeError, ValueError):
        source = "default"
    nu_words = {"file": "from the file", "form": "as entered", "default": "the flow's"}[source]
    return alert(
        [
            html.Div(
                [
                    html.Strong("Stored. "),
                    html.Span(f"{ic['name']} is initial condition "),
                    html.Code(ic["id"], id="upload-ic-id"),
                    html.Span(
                        f": a {fmt_shape(ic['shape'][1:])} {ic['flow']} velocity snapshot "
                        "(u, v, w)."
                    ),
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
            html.Div(
                initial_conditions.hit3d_divergence_note(stats),
                className="small",
                id="upload-divergence-note",
            ),
            html.Div(
                f"ν = {fmt_number(stats.get('nu'), 4)} ({nu_words}).",
                className="small",
                id="upload-nu-note",
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
    k, e = previews.field_spectrum(field, ic["flow"])
    length = flow_length(ic["flow"])
    heatmap = figures.fields_figure(
        {"field": field}, length=length, titles={"field": "vorticity ω"}, uirevision=ic["id"]
    )
    spectrum = figures.spectrum_figure(
        k, {"field": e}, title="Energy spectrum", uirevision=ic["id"]
    )
    return heatmap, spectrum, f"{ic['name']} · {fmt_shape(ic['shape'])} · {ic['flow']}"


def hit3d_preview(ic: dict[str, Any], velocity) -> tuple[Any, Any, str]:
    """The preview card's two figures for a periodic-box snapshot: the midplanes of |ω|
    and E(k) with its k^(−5/3) guide."""
    seen = previews.velocity_preview(velocity, ic["flow"])
    n = seen["n"]
    slices = hit3d_figures.slices_figure(
        seen["slices"], "vorticity", n, seen["length"], uirevision=ic["id"]
    )
    spectrum = hit3d_figures.spectrum_figure(seen["k"], seen["spectrum"], n, uirevision=ic["id"])
    return slices, spectrum, f"{ic['name']} · {fmt_shape(ic['shape'])} · {ic['flow']}"


def _decode(contents: str) -> bytes:
    _, _, encoded = contents.partition(",")
    return base64.b64decode(encoded, validate=False)


@callback(
    Output("upload-file", "accept"),
    Output("upload-hint", "children"),
    Output("upload-flow-help", "children"),
    Output("upload-nu-row", "className"),
    Output("upload-view", "data"),
    Output("upload-nu", "placeholder"),
    Input("upload-flow", "value"),
)
async def choose_flow(flow: str | None):
    accept, hint = file_types(flow)
    if is_channel(flow):
        return accept, hint, FLOW_HELP_CHANNEL, "", "channel", NU_PLACEHOLDER_CHANNEL
    if is_hit3d(flow):
        placeholder = f"the file's, else {fmt_number(_flow_nu(flow), 4)}"
        return accept, hint, FLOW_HELP_HIT3D, "", "2d", placeholder
    return accept, hint, FLOW_HELP_2D, "hidden", "2d", NU_PLACEHOLDER_CHANNEL


def _flow_nu(flow: str) -> float | None:
    from app.services.flows import flow_info

    info = flow_info(flow)
    return float(info["parameters"]["nu"]) if info else None


@callback(
    Output("upload-preview-card", "className"),
    Output("upload-channel-card", "className"),
    Output("upload-channel-empty", "className"),
    Input("upload-view", "data"),
    Input(CHANNEL.source, "data"),
)
async def show_view(view: str | None, source: dict[str, Any] | None):
    channel = view == "channel"
    return (
        "card preview-card" + (" hidden" if channel else ""),
        "card channel-card" + ("" if channel else " hidden"),
        "muted hidden" if source else "muted",
    )


@callback(
    Output("upload-message", "children"),
    Output("upload-preview", "figure"),
    Output("upload-spectrum", "figure"),
    Output("upload-preview-title", "children"),
    Output("upload-list-token", "data"),
    Output(CHANNEL.source, "data"),
    Output("upload-view", "data", allow_duplicate=True),
    Input("upload-file", "contents"),
    State("upload-file", "filename"),
    State("upload-flow", "value"),
    State("upload-list-token", "data"),
    State("upload-nu", "value"),
    prevent_initial_call=True,
)
async def on_upload(
    contents: str | None,
    filename: str | None,
    flow: str | None,
    token: int,
    nu: float | None = None,
):
    if not contents:
        raise PreventUpdate
    filename = filename or "upload"
    if not flow:
        return error_note(filename, "Choose the flow the field belongs to."), *[no_update] * 6
    try:
        content = _decode(contents)
    except (binascii.Error, ValueError):
        return error_note(filename, "The file could not be read."), *[no_update] * 6

    if is_hit3d(flow):

        def store_box():
            ic, velocity = initial_conditions.store_hit3d_upload(
                get_state(), filename, content, flow, nu
            )
            return ic, *hit3d_preview(ic, velocity)

        try:
            ic, slices, spectrum, title = await asyncio.to_thread(store_box)
        except initial_conditions.UploadError as exc:
            return error_note(filename, str(exc)), *[no_update] * 6
        note = hit3d_success_note(ic)
        return note, slices, spectrum, title, (token or 0) + 1, no_update, "2d"

    if is_channel(flow):
        try:
            ic = await asyncio.to_thread(
                initial_conditions.store_channel_upload, get_state(), filename, content, flow, nu
            )
        except initial_conditions.UploadError as exc:
            return error_note(filename, str(exc)), *[no_update] * 6
        source = {"kind": "ic", "id": ic["id"]}
        return (
            channel_success_note(ic),
            *[no_update] * 3,
            (token or 0) + 1,
            source,
            "channel",
        )

    def store():
        ic, field = initial_conditions.store_upload(get_state(), filename, content, flow)
        return ic, *preview(ic, field)

    try:
        ic, heatmap, spectrum, title = await asyncio.to_thread(store)
    except initial_conditions.UploadError as exc:
        return error_note(filename, str(exc)), *[no_update] * 6
    return success_note(ic), heatmap, spectrum, title, (token or 0) + 1, no_update, "2d"


@callback(
    Output("upload-list", "children"),
    Input("upload-list-token", "data"),
)
async def refresh_list(_token: int):
    rows = await asyncio.to_thread(catalog.list_initial_conditions, get_state())
    return ic_table(rows)


@callback(
    Output("upload-preview", "figure", allow_duplicate=True),
    Output("upload-spectrum", "figure", allow_duplicate=True),
    Output("upload-preview-title", "children", allow_duplicate=True),
    Output(CHANNEL.source, "data", allow_duplicate=True),
    Output("upload-view", "data", allow_duplicate=True),
    Input({"type": "ic-preview", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
async def preview_stored(clicks: list[int | None]):
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate

    def load():
        row = catalog.get_initial_condition(get_state(), trigger["id"])
        if row is None:
            return None
        if is_channel(row["flow"]):
            return "channel"
        found = initial_conditions.initial_condition_field(get_state(), trigger["id"])
        if found is None:
            return None
        return hit3d_preview(*found) if is_hit3d(row["flow"]) else preview(*found)

    result = await asyncio.to_thread(load)
    if result is None:
        raise PreventUpdate
    if result == "channel":
        source = {"kind": "ic", "id": trigger["id"]}
        return no_update, no_update, no_update, source, "channel"
    return *result, no_update, "2d"
