"""``/models``: every trained model with its size, grid, step and how it compares with
the persistence baseline on held-out data; each can be rolled out in one click."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import Input, Output, callback, dcc, html

from app.ui import data
from app.ui.components import card, empty_row, fmt_count, fmt_number, fmt_time, page, table

REFRESH_MS = 5000


def layout(**_query: Any) -> html.Main:
    return page(
        "Models",
        "Trained neural operators. Validation error is the one-step relative L2 on held-out "
        "trajectories; persistence (ω(t + Δt) = ω(t)) is the baseline to beat.",
        card(
            None,
            html.Div(id="models-table", className="table-wrap"),
            dcc.Interval(id="models-refresh", interval=REFRESH_MS),
        ),
    )


HEADERS = [
    "Name",
    "Architecture",
    "Parameters",
    "Flow",
    "Grid",
    "Δt",
    "Val. rel. L2",
    "Persistence",
    "Created",
    "",
]


def _config_text(config: dict[str, Any]) -> str:
    keys = ("width", "modes", "n_layers")
    parts = [f"{k.replace('n_', '')} {config[k]}" for k in keys if k in config]
    return ", ".join(parts)


def _skill(model: dict[str, Any]) -> Any:
    val, base = model["val_rel_l2"], model["persistence_rel_l2"]
    if val is None or not base:
        return None
    ratio = base / val if val else float("inf")
    better = ratio >= 1
    text = f"{ratio:.1f}× better" if better else f"{1 / ratio:.1f}× worse"
    return html.Span(text, className="tag tag-good" if better else "tag tag-bad")


def models_table(models: list[dict[str, Any]]) -> html.Table:
    body = [
        html.Tr(
            [
                html.Td(
                    [
                        html.Span(m["name"], className="strong"),
                        html.Br(),
                        html.Code(m["id"], className="muted small"),
                    ]
                ),
                html.Td(
                    [m["arch"], html.Br(), html.Small(_config_text(m["config"]), className="muted")]
                ),
                html.Td(fmt_count(m["parameter_count"]), className="num"),
                html.Td(m["flow"]),
                html.Td(f"{m['resolution']}²"),
                html.Td(f"{m['interval']:g}"),
                html.Td([fmt_number(m["val_rel_l2"], 3), " ", _skill(m)], className="num"),
                html.Td(fmt_number(m["persistence_rel_l2"], 3), className="num"),
                html.Td(fmt_time(m["created_at"]), title=m["created_at"] or ""),
                html.Td(
                    dcc.Link(
                        "Roll out →",
                        href=f"/rollout?model={m['id']}",
                        className="button button-small button-primary",
                    )
                ),
            ]
        )
        for m in models
    ] or [empty_row(len(HEADERS), "No models yet. Train one on the Train page.")]
    return table(HEADERS, body)


@callback(Output("models-table", "children"), Input("models-refresh", "n_intervals"))
async def refresh(_n: int | None):
    models = await asyncio.to_thread(data.list_models)
    return models_table(models)
