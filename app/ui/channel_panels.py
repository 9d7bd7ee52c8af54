"""The channel-flow panel, reusable by any page: statistics figures (U⁺ against y⁺ with the
sublayer and log-law lines, rms profiles, shear stress, 1D spectra at a chosen y⁺) and a
slice viewer of the 3D velocity (component u, v, w or |u|; plane x–y, x–z or y–z; position).

A page makes one ``ChannelPanel(prefix)`` at import (its callbacks are registered then,
once per prefix), puts ``panel.layout()`` in its layout, and points the panel at what to
show by writing a source into the store ``panel.source`` (``Output(panel.source, "data")``):

- ``{"kind": "ic", "id": <initial condition id>}``: a stored channel snapshot; its
  statistics are computed from the one snapshot;
- ``{"kind": "dataset", "id": <dataset id>, "trajectory": i, "time": j}``: one snapshot
  of a channel dataset in The Well's layout;
- ``{"kind": "job", "job_id": <id>, "source"?: "model"|"reference"}``: a live job. Its
  events of type ``channel_stats``, payload ``{"t": float, "stats":
  ChannelStatisticsResult.to_dict(), "source"?: str}``, are polled incrementally (only the
  newest after the last seen ``seq`` is read, as each carries the statistics so far) while
  the job is queued or running, and the figures redraw with the newest; the slices show
  the frame the panel's ``frame_loader`` returns for the source (default
  ``app.services.channel_views.channel_frame``: a generate job's dataset once written, a
  rollout's last frame), or say there is none yet.
- None: the panel is cleared.

Blocking work (files, statistics, SQL) runs in ``asyncio.to_thread``: callbacks run on the
event loop of the FastAPI server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import channel_views
from app.ui import channel_figures as cf
from app.ui.components import CHART_GRAPH, FIELD_GRAPH, alert, graph
from app.ui.context import get_state

POLL_MS = 1000
ACTIVE = ("queued", "running", "finishing")
DEFAULT_SLICE_YPLUS = 15.0
_REGISTERED: set[str] = set()

FrameLoader = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:]


def _channel_frame(source: dict[str, Any] | None) -> dict[str, Any] | None:
    return channel_views.channel_frame(get_state(), source)


class ChannelPanel:
    """The statistics panels and slice viewer under the component ids ``<prefix>-channel-…``.

    ``frame_loader(source)`` returns the 3D velocity to slice for a source, as
    ``app.services.channel_views.channel_frame`` does (``velocity`` (3, nx, ny, nz), ``y``,
    ``lx``, ``lz``, ``nu``, ``label``, ``version``), or None when there is none (yet)."""

    def __init__(self, prefix: str, frame_loader: FrameLoader | None = None):
        self.prefix = prefix
        self.frame_loader: FrameLoader = frame_loader or _channel_frame
        self.source = self.id("source")
        if prefix not in _REGISTERED:
            _REGISTERED.add(prefix)
            self._register()

    def id(self, name: str) -> str:
        return f"{self.prefix}-channel-{name}"

    # --- layout -------------------------------------------------------------------------

    def layout(self, source: dict[str, Any] | None = None) -> html.Div:
        i = self.id
        empty = cf.empty_figure
        return html.Div(
            [
                dcc.Store(id=self.source, data=source),
                dcc.Store(id=i("stats")),
                dcc.Store(id=i("frame")),
                dcc.Store(id=i("live")),
                dcc.Store(id=i("position-key")),
                dcc.Interval(id=i("interval"), interval=POLL_MS, disabled=True),
                html.Div(id=i("note"), className="channel-note"),
                html.Dl(id=i("summary"), className="stats channel-summary"),
                html.Div(
                    [
                        graph(
                            id=i("mean"),
                            figure=empty("U⁺ against y⁺ appears here."),
                            config=CHART_GRAPH,
                            className="graph channel-graph",
                        ),
                        graph(
                            id=i("rms"),
                            figure=empty("rms profiles appear here."),
                            config=CHART_GRAPH,
                            className="graph channel-graph",
                        ),
                        graph(
                            id=i("stress"),
                            figure=empty("The shear-stress balance appears here."),
                            config=CHART_GRAPH,
                            className="graph channel-graph",
                        ),
                        html.Div(
                            [
                                html.Div(
                                    [
                                        html.Label(
                                            "Spectra at y⁺",
                                            htmlFor=i("spectra-yplus"),
                                            className="form-label",
                                        ),
                                        dcc.Dropdown(
                                            id=i("spectra-yplus"),
                                            options=[],
                                            value=None,
                                            clearable=False,
                                            searchable=False,
                                            className="dropdown channel-dropdown",
                                        ),
                                    ],
                                    className="channel-control",
                                ),
                                graph(
                                    id=i("spectra"),
                                    figure=empty("1D spectra appear here."),
                                    config=CHART_GRAPH,
                                    className="graph channel-graph",
                                ),
                            ]
                        ),
                    ],
                    className="channel-grid",
                ),
                html.H3("Slices of the velocity", className="form-section"),
                html.Div(
                    [
                        html.Div(
                            [
                                html.Label("Component", className="form-label"),
                                dcc.RadioItems(
                                    id=i("component"),
                                    options=[
                                        {"label": cf.COMPONENT_LABELS[c], "value": c}
                                        for c in cf.COMPONENTS
                                    ],
                                    value="u",
                                    inline=True,
                                    className="channel-radio",
                                ),
                            ],
                            className="channel-control",
                        ),
                        html.Div(
                            [
                                html.Label("Plane", className="form-label"),
                                dcc.RadioItems(
                                    id=i("plane"),
                                    options=[
                                        {"label": cf.PLANE_LABELS[p], "value": p} for p in cf.PLANES
                                    ],
                                    value="xy",
                                    inline=True,
                                    className="channel-radio",
                                ),
                            ],
                            className="channel-control",
                        ),
                        html.Div(
                            [
                                html.Label(
                                    "Position", htmlFor=i("position"), className="form-label"
                                ),
                                dcc.Slider(
                                    id=i("position"),
                                    min=0,
                                    max=1,
                                    step=1,
                                    value=0,
                                    marks=None,
                                    className="channel-slider",
                                ),
                                html.Small(id=i("position-label"), className="muted"),
                            ],
                            className="channel-control channel-position",
                        ),
                    ],
                    className="channel-controls",
                ),
                graph(
                    id=i("slice"),
                    figure=empty("A slice of the velocity appears here."),
                    config=FIELD_GRAPH,
                    className="graph channel-slice",
                ),
            ],
            id=i("panel"),
            className="channel-panel",
        )

    # --- callbacks ----------------------------------------------------------------------

    def _register(self) -> None:
        i = self.id
        loader = self.frame_loader

        @callback(
            Output(i("stats"), "data"),
            Output(i("frame"), "data"),
            Output(i("live"), "data"),
            Output(i("interval"), "disabled"),
            Output(i("note"), "children"),
            Input(self.source, "data"),
        )
        async def load(source: dict[str, Any] | None):
            if not source:
                return None, None, None, True, None
            if source.get("kind") == "job":
                return await self._load_job(source, loader)
            try:
                view = await asyncio.to_thread(
                    channel_views.channel_view, get_state(), source, loader
                )
            except (ValueError, OSError, KeyError) as exc:
                return None, None, None, True, alert(_sentence(exc), "error")
            return view["stats"], view["frame"], None, True, note(view)

        @callback(
            Output(i("stats"), "data", allow_duplicate=True),
            Output(i("frame"), "data", allow_duplicate=True),
            Output(i("live"), "data", allow_duplicate=True),
            Output(i("interval"), "disabled", allow_duplicate=True),
            Output(i("note"), "children", allow_duplicate=True),
            Input(i("interval"), "n_intervals"),
            State(i("live"), "data"),
            State(self.source, "data"),
            prevent_initial_call=True,
        )
        async def poll(_n: int | None, live: dict[str, Any] | None, source: dict | None):
            if not live or not source or source.get("kind") != "job":
                raise PreventUpdate
            if live.get("job_id") != source.get("job_id"):
                raise PreventUpdate
            return await self._poll_job(source, live, loader)

        @callback(
            Output(i("mean"), "figure"),
            Output(i("rms"), "figure"),
            Output(i("stress"), "figure"),
            Output(i("spectra"), "figure"),
            Output(i("spectra-yplus"), "options"),
            Output(i("spectra-yplus"), "value"),
            Output(i("summary"), "children"),
            Input(i("stats"), "data"),
            Input(i("spectra-yplus"), "value"),
            State(self.source, "data"),
        )
        async def draw_stats(
            stats: dict[str, Any] | None, wanted: float | None, source: dict | None
        ):
            rev = _revision(source)
            if not stats:
                message = "No channel statistics yet."
                blank = cf.empty_figure(message, rev)
                return blank, blank, blank, blank, [], None, []

            def draw():
                planes = cf.spectra_planes(stats)
                if wanted is None or not planes:
                    index = cf.nearest_spectra_plane(stats, DEFAULT_SLICE_YPLUS)
                else:
                    index = min(planes, key=lambda p: abs(p["yplus"] - float(wanted)))["index"]
                chosen = next((p for p in planes if p["index"] == index), None)
                options = [
                    {"label": f"{p['yplus']:.3g}", "value": round(p["yplus"], 6)} for p in planes
                ]
                return (
                    cf.mean_profile_figure(stats, uirevision=rev),
                    cf.rms_figure(stats, uirevision=rev),
                    cf.stress_figure(stats, uirevision=rev),
                    cf.spectra_figure(stats, index, uirevision=rev),
                    options,
                    round(chosen["yplus"], 6) if chosen else None,
                    summary(stats),
                )

            return await asyncio.to_thread(draw)

        @callback(
            Output(i("position"), "max"),
            Output(i("position"), "marks"),
            Output(i("position"), "value"),
            Output(i("position-key"), "data"),
            Input(i("plane"), "value"),
            Input(i("frame"), "data"),
            State(i("position"), "value"),
            State(i("position-key"), "data"),
        )
        async def position_control(
            plane: str | None, frame: dict | None, value: int | None, key: str | None
        ):
            if not frame or not plane:
                return 1, None, 0, None
            size = cf.plane_size(frame["shape"], plane)
            # A newer frame on the same grid and plane keeps the position; anything else
            # starts at the plane's default.
            new_key = f"{plane}:{frame['shape']}"
            keep = new_key == key and value is not None and 0 <= value < size
            if not keep:
                value = default_position(frame, plane)
            return size - 1, position_marks(frame, plane), value, new_key

        @callback(
            Output(i("slice"), "figure"),
            Output(i("position-label"), "children"),
            Input(i("component"), "value"),
            Input(i("plane"), "value"),
            Input(i("position"), "value"),
            Input(i("frame"), "data"),
            State(self.source, "data"),
        )
        async def draw_slice(
            component: str | None,
            plane: str | None,
            position: int | None,
            frame_meta: dict | None,
            source: dict | None,
        ):
            rev = _revision(source)
            if not source or not frame_meta:
                message = (
                    "No 3D field from this job yet."
                    if source and source.get("kind") == "job"
                    else "A slice of the velocity appears here."
                )
                return cf.empty_figure(message, rev), None

            def draw():
                frame = loader(source)
                if frame is None:
                    return cf.empty_figure("No 3D field to slice yet.", rev), None
                yplus = frame_meta.get("yplus")
                fig = cf.slice_figure(
                    frame["velocity"],
                    frame["y"],
                    lx=float(frame["lx"]),
                    lz=float(frame["lz"]),
                    plane=plane or "xy",
                    index=position,
                    component=component or "u",
                    yplus=yplus,
                    uirevision=f"{rev}:{plane}",
                )
                return fig, position_label(frame_meta, plane or "xy", position)

            try:
                return await asyncio.to_thread(draw)
            except (ValueError, OSError, KeyError) as exc:
                return cf.empty_figure(_sentence(exc), rev), None

    async def _load_job(self, source: dict[str, Any], loader: FrameLoader):
        job_id = str(source.get("job_id") or "")
        update = await asyncio.to_thread(
            channel_views.latest_channel_stats, get_state(), job_id, 0, source.get("source")
        )
        if update["job"] is None:
            return None, None, None, True, alert(f"There is no job {job_id}.", "error")
        live = {"job_id": job_id, "seq": 0, "status": update["job"]["status"]}
        return await self._apply(source, live, update, loader, first=True)

    async def _poll_job(self, source: dict[str, Any], live: dict[str, Any], loader: FrameLoader):
        update = await asyncio.to_thread(
            channel_views.latest_channel_stats,
            get_state(),
            live["job_id"],
            int(live.get("seq") or 0),
            source.get("source"),
        )
        if update["job"] is None:
            return None, None, None, True, alert("The job was deleted.", "error")
        return await self._apply(source, dict(live), update, loader, first=False)

    async def _apply(
        self,
        source: dict[str, Any],
        live: dict[str, Any],
        update: dict[str, Any],
        loader: FrameLoader,
        first: bool,
    ):
        job = update["job"]
        event = update["event"]
        status = job["status"]
        live["status"] = status
        disabled = status not in ACTIVE
        stats = no_update
        frame = no_update
        if event is not None:
            live["seq"] = int(event["seq"])
            if event.get("stats"):
                stats = dict(event["stats"])
                if event.get("t") is not None:
                    stats["t"] = float(event["t"])
                live["t"] = stats.get("t")
                live["events"] = int(live.get("events") or 0) + int(update["new"])
        if first or event is not None or disabled:
            meta_stats = stats if isinstance(stats, dict) else None
            try:
                frame = await asyncio.to_thread(
                    channel_views.channel_frame_meta, get_state(), source, meta_stats, loader
                )
            except (ValueError, OSError, KeyError):
                frame = None
        if first and stats is no_update:
            stats = None
        return stats, frame, live, disabled, live_note(job, live)


# --- small pure helpers (tested without a browser) -----------------------------------------


def _revision(source: dict[str, Any] | None) -> str:
    if not source:
        return "none"
    return ":".join(
        str(source.get(k)) for k in ("kind", "id", "job_id", "trajectory", "time") if k in source
    )


def note(view: dict[str, Any]) -> list[Any]:
    """The line above the panel of a static source: what it shows, where ν came from, and
    why there are no statistics when there are none."""
    frame = view.get("frame") or {}
    parts: list[Any] = []
    if frame.get("label"):
        parts.append(html.Span(frame["label"], className="strong"))
    if view.get("note"):
        parts.append(html.Span(" · " + view["note"], className="muted"))
    out: list[Any] = [html.Div(parts)] if parts else []
    if view.get("error"):
        out.append(
            alert(
                "No statistics in wall units: " + view["error"],
                "warning",
            )
        )
    return out


def live_note(job: dict[str, Any], live: dict[str, Any]) -> html.Div:
    """The line above the panel of a live job: its status and the newest statistics' time."""
    status = job["status"]
    if live.get("t") is not None or live.get("events"):
        t = live.get("t")
        state = f"is {status}" if status in ACTIVE else status
        text = f"Job {job['id'][:8]} {state}; statistics" + (
            f" at t = {float(t):.4g}" if t is not None else ""
        )
        text += "." if status in ACTIVE else " (final)."
    elif status in ACTIVE:
        text = f"Job {job['id'][:8]} is {status}; no channel statistics reported yet."
    else:
        text = f"Job {job['id'][:8]} {status} without reporting channel statistics."
    return html.Div(text, className="muted")


def summary(stats: dict[str, Any]) -> list[Any]:
    """The headline numbers as definition-list items."""
    return [
        el for label, value in cf.summary_items(stats) for el in (html.Dt(label), html.Dd(value))
    ]


def default_position(frame: dict[str, Any], plane: str) -> int:
    """Where a plane's slider starts: the x–z plane at the point nearest y⁺ = 15 in the
    lower half (else a quarter of the way up), the others in the middle."""
    size = cf.plane_size(frame["shape"], plane)
    if plane != "xz":
        return size // 2
    yplus = frame.get("yplus")
    y = frame.get("y") or []
    if yplus and len(yplus) == size:
        lower = [j for j in range(size) if (y[j] if j < len(y) else 0) <= 0] or list(range(size))
        return min(lower, key=lambda j: abs(yplus[j] - DEFAULT_SLICE_YPLUS))
    return size // 4


def position_marks(frame: dict[str, Any], plane: str, count: int = 5) -> dict[int, str]:
    """A few slider marks: y⁺ (or y) on the x–z plane, z on x–y, x on y–z."""
    nx, _ny, nz = frame["shape"]
    size = cf.plane_size(frame["shape"], plane)
    picks = sorted({round(k * (size - 1) / max(count - 1, 1)) for k in range(count)})
    out: dict[int, str] = {}
    for j in picks:
        if plane == "xz":
            yplus = frame.get("yplus")
            out[j] = f"y⁺ {yplus[j]:.3g}" if yplus else f"y {frame['y'][j]:.2g}"
        elif plane == "xy":
            out[j] = f"z {j * frame['lz'] / nz:.2g}"
        else:
            out[j] = f"x {j * frame['lx'] / nx:.2g}"
    return out


def position_label(frame: dict[str, Any], plane: str, position: int | None) -> str:
    """The slider's position in words: the coordinate (and y⁺) and the index."""
    nx, _ny, nz = frame["shape"]
    size = cf.plane_size(frame["shape"], plane)
    j = min(max(int(position or 0), 0), size - 1)
    if plane == "xz":
        text = f"y = {frame['y'][j]:.4g}"
        if frame.get("yplus"):
            text += f", y⁺ = {frame['yplus'][j]:.3g}"
    elif plane == "xy":
        text = f"z = {j * frame['lz'] / nz:.4g}"
    else:
        text = f"x = {j * frame['lx'] / nx:.4g}"
    return f"{text} (point {j + 1} of {size})"
