"""Small layout pieces shared by the pages: the nav bar, cards, badges, progress bars,
form rows, tables, the frame player and formatting helpers. Pure functions returning Dash
components."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dash import dcc, html

NAV = (
    ("/", "Runs"),
    ("/rollout", "Rollout"),
    ("/compare", "Compare"),
    ("/upload", "Upload"),
    ("/data", "Data"),
    ("/train", "Train"),
    ("/models", "Models"),
)

STATUS_LABELS = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


def account(user: Any) -> html.Div:
    """The logged-in user and a Log out button (a same-origin form POST to /logout)."""
    return html.Div(
        [
            html.Span(f"{user.name} ({user.role})", id="nav-user"),
            html.Form(
                html.Button(
                    "Log out",
                    id="logout-button",
                    type="submit",
                    style={"marginLeft": "10px", "cursor": "pointer"},
                ),
                action="/logout",
                method="post",
                style={"display": "inline"},
            ),
        ],
        className="nav-account",
        style={"marginLeft": "auto", "color": "#c8d1de", "fontSize": "13px"},
    )


def navbar(user: Any = None) -> html.Header:
    """``user``: the logged-in ``app.services.auth.Principal`` (auth on), else None."""
    links = [
        dcc.Link(label, href=path, id={"type": "nav-link", "path": path}, className="nav-link")
        for path, label in NAV
    ]
    return html.Header(
        html.Div(
            [
                dcc.Link(
                    [html.Span(className="brand-mark"), html.Span("Eddyscope")],
                    href="/",
                    className="brand",
                ),
                html.Nav(links, className="nav-links"),
                account(user)
                if user is not None
                else html.Span("neural operators for turbulent flows", className="nav-tagline"),
            ],
            className="navbar-inner",
        ),
        className="navbar",
    )


def page(title: str, subtitle: str | None, *children: Any, actions: Any = None) -> html.Main:
    header = [
        html.Div([html.H1(title), html.P(subtitle, className="subtitle") if subtitle else None])
    ]
    if actions is not None:
        header.append(html.Div(actions, className="page-actions"))
    return html.Main([html.Div(header, className="page-header"), *children], className="page")


def card(
    title: str | None, *children: Any, className: str = "", id: str | None = None
) -> html.Section:
    kwargs = {"id": id} if id else {}
    body = [html.H2(title, className="card-title")] if title else []
    return html.Section([*body, *children], className=f"card {className}".strip(), **kwargs)


def alert(message: Any, kind: str = "info", **kwargs: Any) -> html.Div:
    """kind: info, success, error, warning."""
    return html.Div(message, className=f"alert alert-{kind}", role="alert", **kwargs)


def status_badge(status: str | None) -> html.Span:
    status = status or "unknown"
    return html.Span(STATUS_LABELS.get(status, status), className=f"badge badge-{status}")


def progress_bar(fraction: float | None, status: str | None = None) -> html.Div:
    pct = max(0.0, min(1.0, float(fraction or 0.0))) * 100
    return html.Div(
        [
            html.Div(
                className=f"progress-fill progress-{status or 'unknown'}",
                style={"width": f"{pct:.1f}%"},
            ),
        ],
        className="progress",
        title=f"{pct:.0f}%",
    )


def cancel_button(prefix: str) -> html.Button:
    """A run's Cancel button (``<prefix>-cancel``), hidden until the page sees the job
    queued or running."""
    return html.Button(
        "Cancel",
        id=f"{prefix}-cancel",
        className="button button-small button-danger run-cancel",
        n_clicks=0,
        hidden=True,
    )


def waiting_text(place: dict[str, Any] | None) -> str:
    """What a queued job's status line says: where it waits and, when the broker can tell,
    how many jobs are ahead of it (never a queue's name such as "gpu": any worker that
    listens on it takes the job, with or without a GPU)."""
    place = place or {}
    where = place.get("broker") or "the job queue"
    ahead = place.get("ahead")
    if ahead is None:
        return f"Queued in {where}, waiting for a free worker…"
    if ahead == 0:
        return f"Queued in {where}: next for a free worker…"
    jobs = "job" if ahead == 1 else "jobs"
    return f"Queued in {where}: {ahead} {jobs} ahead of it, waiting for a free worker…"


def eta_seconds(
    progress: float | None, started_at: str | None, now: datetime | None = None
) -> float | None:
    """Seconds left at the pace so far (elapsed × (1 − p) / p), once there is a pace to go by
    (at least 2 % done and 2 s run); None before."""
    start = parse_time(started_at)
    p = float(progress or 0.0)
    if start is None or not 0.02 <= p < 1.0:
        return None
    elapsed = ((now or datetime.now(UTC)) - start).total_seconds()
    if elapsed < 2.0:
        return None
    return elapsed * (1.0 - p) / p


def eta_text(progress: float | None, started_at: str | None, now: datetime | None = None) -> str:
    """The ETA as the status line appends it, e.g. ' · about 1 min 05 s left' (empty while
    there is no pace yet)."""
    left = eta_seconds(progress, started_at, now)
    return "" if left is None else f" · about {fmt_duration(left)} left"


def form_row(
    label: str, control: Any, help_text: str | None = None, html_for: str | None = None
) -> html.Div:
    return html.Div(
        [
            html.Label(label, htmlFor=html_for, className="form-label"),
            control,
            html.Small(help_text, className="form-help") if help_text else None,
        ],
        className="form-row",
    )


def number_input(id: str, value: float | int | None, **kwargs: Any) -> dcc.Input:
    return dcc.Input(id=id, type="number", value=value, className="input", debounce=False, **kwargs)


def empty_row(columns: int, message: str) -> html.Tr:
    return html.Tr(html.Td(message, colSpan=columns, className="empty-cell"))


def data_table(
    columns: Sequence[Any],
    rows: Sequence[Any],
    *,
    empty: str | None = None,
    className: str = "",
) -> html.Table:
    """The pages' tables (runs, datasets, models, initial conditions): one header row of
    ``columns`` (each a text or a component, such as a sort link, put in a ``th``) over the
    ``rows`` (``html.Tr``). With no rows and an ``empty`` message, the body is one row
    spanning every column that says it. Classes ``table`` and ``className``."""
    body = list(rows)
    if not body and empty is not None:
        body = [empty_row(len(columns), empty)]
    return html.Table(
        [html.Thead(html.Tr([html.Th(c) for c in columns])), html.Tbody(body)],
        className=f"table {className}".strip(),
    )


def table(headers: list[str], rows: list[Any], className: str = "") -> html.Table:
    """``data_table`` with the rows given in full (an empty row included)."""
    return data_table(headers, rows, className=className)


def frame_player(
    prefix: str, *, label: str | None = None, play: bool = False, className: str = "slider-wrap"
) -> html.Div:
    """A frame slider under a page's fields, hidden (class ``hidden``) until the page shows
    it: ids ``<prefix>-slider`` and ``<prefix>-slider-wrap``, with a Play button
    ``<prefix>-play`` when ``play`` (the page steps the slider with its own Interval).
    The slider moves on release, so a drag reads one frame, not every frame passed."""
    slider = dcc.Slider(
        id=f"{prefix}-slider",
        min=0,
        max=0,
        step=1,
        value=None,
        marks=None,
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    children: list[Any] = []
    if label:
        children.append(html.Label(label, htmlFor=f"{prefix}-slider", className="form-label"))
    if play:
        children.append(
            html.Button(
                "▶ Play",
                id=f"{prefix}-play",
                className=f"button button-small {prefix}-play",
                n_clicks=0,
            )
        )
        children.append(html.Div(slider, className=f"{prefix}-slider"))
    else:
        children.append(slider)
    return html.Div(children, id=f"{prefix}-slider-wrap", className=f"{className} hidden")


def slider_marks(last: int, count: int = 6) -> dict[int, str]:
    """About ``count`` evenly spaced labelled frames from 0 to ``last``, both included."""
    if last <= 0:
        return {0: "0"}
    stride = max(1, round(last / (count - 1)))
    steps = list(range(0, last, stride))
    if last - steps[-1] < stride / 2 and len(steps) > 1:
        steps.pop()
    return {int(i): str(int(i)) for i in [*steps, last]}


# --- formatting -----------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=UTC)


def fmt_time(value: str | None, now: datetime | None = None) -> str:
    """HH:MM:SS for today (UTC), else the date and minutes; an em dash for nothing."""
    when = parse_time(value)
    if when is None:
        return "—"
    now = now or datetime.now(UTC)
    if when.date() == now.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def job_duration(job: dict[str, Any], now: datetime | None = None) -> str:
    start = parse_time(job.get("started_at"))
    if start is None:
        return ""
    end = parse_time(job.get("finished_at")) or now or datetime.now(UTC)
    return fmt_duration((end - start).total_seconds())


def fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def fmt_count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def fmt_shape(shape: list[int] | tuple[int, ...] | None) -> str:
    return "×".join(str(s) for s in shape) if shape else "—"


# --- figures ---------------------------------------------------------------------------

# Every figure's toolbar keeps its data on this machine: no Plotly logo (a link to
# plotly.com), no "Share chart" (which uploads the figure to Plotly's cloud), no "Edit in
# Chart Studio", no "Edit chart" link, and no server to send to. ``graph_config`` starts
# from these and no override can turn them back on.
PRIVATE_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "showLink": False,
    "sendData": False,
    "plotlyServerURL": "",
    "showTips": False,
}
# The mode bar buttons that would reach outside the page, by their plotly.js names.
CLOUD_BUTTONS = ("sendChartToCloud", "editInChartStudio")
# Selection tools do nothing on these figures.
UNUSED_BUTTONS = ("lasso2d", "select2d")


def graph_config(**options: Any) -> dict[str, Any]:
    """A dcc.Graph config: ``options`` (``displayModeBar``, ``toImageButtonOptions``…)
    over the private defaults, which always win."""
    remove = [*options.pop("modeBarButtonsToRemove", UNUSED_BUTTONS)]
    remove += [b for b in CLOUD_BUTTONS if b not in remove]
    return {**options, "modeBarButtonsToRemove": remove, **PRIVATE_CONFIG}


def png_config(filename: str) -> dict[str, Any]:
    """The mode bar with its "download plot as PNG" button, saving ``filename``.png at
    twice the screen resolution."""
    return graph_config(
        displayModeBar=True,
        toImageButtonOptions={"format": "png", "filename": filename, "scale": 2},
    )


# Fields keep the mode bar (zoom, PNG download); small charts stay clean (drag to zoom,
# double-click to reset).
FIELD_GRAPH = graph_config(toImageButtonOptions={"scale": 2})
CHART_GRAPH = graph_config(displayModeBar=False)


def graph(id: Any, figure: Any = None, *, config: dict[str, Any] | None = None, **kwargs: Any):
    """The one way the pages make a dcc.Graph: ``config`` (``FIELD_GRAPH``, ``CHART_GRAPH``,
    ``png_config(...)`` or ``graph_config(...)``) always passes through ``graph_config``,
    so no figure's toolbar can send its data anywhere."""
    config = graph_config(**{k: v for k, v in (config or CHART_GRAPH).items()})
    if figure is not None:
        kwargs["figure"] = figure
    return dcc.Graph(id=id, config=config, **kwargs)
