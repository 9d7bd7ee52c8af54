"""The Train page's live view of an online training job, built by pure functions of its
events (``online`` events from the trainer, ``producers`` events when its producers
change; ``models.online_training`` and ``workers.runners.train_online`` write them):

- ``rates_figure``: samples per second produced (by all producers), received by the
  trainer and consumed by the optimiser, against wall time; the buffer's fill on a second
  axis, with its size and the fill it waits for before the first batch;
- ``online_stats``: the latest of those numbers as text, with the distinct trajectories
  seen (and how many arrived whole), the stream's fill and the repeats dropped;
- ``producers_table``: each producer job with its status, worker, trajectory range, what
  it has pushed and how fast, and the producer it replaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from dash import html

from app.ui.components import fmt_number, status_badge
from app.ui.figures import COLORS, MUTED, _base_layout, empty_figure

RATE_COLORS = {"produced": "#2a9d8f", "received": COLORS["reference"], "consumed": "#d1495b"}
FILL_COLOR = "#e9c46a"


def rates_figure(events: Sequence[Mapping[str, Any]], uirevision: Any = None) -> go.Figure:
    """Rates (samples/s, left axis) and buffer fill (windows, right axis) against the
    seconds since the first ``online`` event."""
    timed = [e for e in events if e.get("time") is not None]
    if not timed:
        return empty_figure("The stream's rates appear when the producers start.", uirevision)
    t0 = timed[0]["time"]
    x = [e["time"] - t0 for e in timed]
    fig = go.Figure()
    for key, label in (
        ("produced", "produced (all producers)"),
        ("received", "received by the trainer"),
        ("consumed", "consumed by training"),
    ):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[e.get(f"{key}_per_s") for e in timed],
                mode="lines",
                name=f"{label}, samples/s",
                line=dict(color=RATE_COLORS[key], width=1.8),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[e.get("buffer_fill") for e in timed],
            mode="lines",
            name="buffer fill, windows",
            yaxis="y2",
            line=dict(color=FILL_COLOR, width=1.5, shape="hv"),
            fill="tozeroy",
            fillcolor="rgba(233, 196, 106, 0.15)",
        )
    )
    last = timed[-1]
    for value, label in (
        (last.get("buffer_size"), "buffer size"),
        (last.get("min_fill"), "min fill"),
    ):
        if value:
            fig.add_trace(
                go.Scatter(
                    x=[x[0], x[-1]],
                    y=[value, value],
                    mode="lines",
                    name=label,
                    yaxis="y2",
                    line=dict(color=MUTED, width=1, dash="dot" if label == "min fill" else "dash"),
                    hoverinfo="skip",
                )
            )
    _base_layout(fig, uirevision, "Online stream")
    fig.update_layout(
        xaxis=dict(title="wall time (s)"),
        yaxis=dict(title="samples / s", rangemode="tozero"),
        yaxis2=dict(
            title="windows in buffer",
            overlaying="y",
            side="right",
            rangemode="tozero",
            showgrid=False,
        ),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
    )
    return fig


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}/s"


def online_stats(last: Mapping[str, Any] | None) -> list[Any]:
    """The latest ``online`` event as the page's stat items."""
    if not last:
        return []
    unique, complete = last.get("unique_trajectories"), last.get("complete_trajectories")
    items = [
        ("train-online-produced", "Produced", _rate(last.get("produced_per_s"))),
        ("train-online-received", "Received", _rate(last.get("received_per_s"))),
        ("train-online-consumed", "Consumed", _rate(last.get("consumed_per_s"))),
        (
            "train-online-buffer",
            f"Buffer ({last.get('buffer_policy', '')})",
            f"{last.get('buffer_fill', 0):,} / {last.get('buffer_size', 0):,}",
        ),
        (
            "train-online-stream",
            "Stream",
            f"{last.get('stream_fill', 0):,} / {last.get('stream_size', 0):,}",
        ),
        (
            "train-online-trajectories",
            "Trajectories seen",
            f"{unique:,} ({complete:,} whole)" if unique is not None else "—",
        ),
        ("train-online-windows", "Windows received", f"{last.get('received', 0):,}"),
        ("train-online-duplicates", "Repeats dropped", f"{last.get('duplicates', 0):,}"),
    ]
    return [
        html.Div(
            [html.Span(label, className="stat-label"), html.Span(value, id=i, className="stat")],
            className="stat-item",
        )
        for i, label, value in items
    ]


def producers_table(producers: Sequence[Mapping[str, Any]]) -> Any:
    """One row per producer job: id, status, worker, trajectories, pushed, rate, time spent
    waiting for room, attempts, and which producer it replaced."""
    if not producers:
        return html.P("No producer has been made yet.", className="muted small")
    head = html.Tr(
        [
            html.Th(h)
            for h in (
                "Producer",
                "Status",
                "Worker",
                "Trajectories",
                "Pushed",
                "Rate",
                "Waited",
                "Attempts",
                "Replaces",
            )
        ]
    )
    rows = []
    for p in producers:
        first, count = int(p.get("start") or 0), int(p.get("count") or 0)
        rows.append(
            html.Tr(
                [
                    html.Td(p["job_id"], className="mono"),
                    html.Td(status_badge(p.get("status"))),
                    html.Td(p.get("worker") or "—", className="producer-worker"),
                    html.Td(f"{first}–{first + count - 1}" if count else "—"),
                    html.Td(f"{int(p.get('produced') or 0):,}"),
                    html.Td(_rate(p.get("produced_per_s"))),
                    html.Td(f"{fmt_number(p.get('blocked_s'), 3)} s"),
                    html.Td(str(p.get("attempts") or 0)),
                    html.Td(p.get("replaces") or "", className="mono"),
                ],
                className="producer-row",
            )
        )
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table producers-table")


def online_panel(
    last: Mapping[str, Any] | None, producers: Sequence[Mapping[str, Any]] | None
) -> list[Any]:
    """The Run card's online section: the stream's numbers, then the producers."""
    return [
        html.H3("Online stream", className="form-section"),
        html.Div(online_stats(last), className="live-stats"),
        producers_table(producers or []),
    ]
