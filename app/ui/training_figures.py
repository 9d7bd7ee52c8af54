"""Plotly figures of a training run, built by pure functions of its events (``train``
events per optimiser step or pass, ``epoch`` events with the validation error): the loss
against epochs with the persistence baseline (and, for a physics-informed run, the PDE
residual beside the data error), and the learning rate; and several runs
overlaid (``overlay_figure``: loss, validation or learning rate, by step or wall time, log
or linear, smoothed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.ui.figures import COLORS, MUTED, _base_layout, _positive, empty_figure


def loss_figure(
    train_events: Sequence[Mapping[str, Any]],
    epoch_events: Sequence[Mapping[str, Any]],
    *,
    epochs: int | None = None,
    uirevision: Any = None,
) -> go.Figure:
    """Training loss per train event and validation relative L2 per epoch against the
    persistence baseline (predicting ω(t + Δt) = ω(t)), on a log y axis, against epochs.

    Train events carry ``step`` and ``total_steps``; with the run's number of ``epochs``
    they sit at fractional epochs ``step / total_steps · epochs``, else at their epoch.
    Epoch events (numbered from 1) sit at the end of their epoch.
    """
    if not train_events and not epoch_events:
        return empty_figure("The loss curve appears when training starts.", uirevision)
    fig = go.Figure()
    if train_events:
        x = [
            e["step"] / e["total_steps"] * epochs
            if epochs and e.get("total_steps")
            else float(e["epoch"])
            for e in train_events
        ]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_positive([e["train_loss"] for e in train_events], 0.0),
                mode="lines",
                name="training loss",
                line=dict(color=COLORS["train"], width=1.5),
            )
        )
    if epoch_events:
        ex = [int(e["epoch"]) for e in epoch_events]
        fig.add_trace(
            go.Scatter(
                x=ex,
                y=_positive([e["val_rel_l2"] for e in epoch_events], 0.0),
                mode="lines+markers",
                name="validation rel. L2",
                line=dict(color=COLORS["validation"], width=2),
                marker=dict(size=6),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=ex,
                y=_positive([e["persistence_rel_l2"] for e in epoch_events], 0.0),
                mode="lines",
                name="persistence baseline",
                line=dict(color=COLORS["persistence"], width=2, dash="dash"),
            )
        )
    _base_layout(fig, uirevision, "Loss")
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    # Validation numbers often span a narrow range: plain 3-digit labels read best there.
    fig.update_yaxes(title_text="relative L2", type="log", tickformat=".3g")
    return fig


# Names of the training losses (TrainParams.loss), as the curves' legend shows them.
LOSS_NAMES = {
    "rel_l2": "relative L2",
    "rel_l1": "relative L1",
    "h1": "relative H1",
    "h-1": "relative H⁻¹",
}


def _train_x(event: Mapping[str, Any], epochs: int | None) -> float:
    # As loss_figure: a train event sits at its fraction of the run's steps, in epochs.
    if epochs and event.get("total_steps"):
        return event["step"] / event["total_steps"] * epochs
    return float(event["epoch"])


def latest_pass(events: Sequence[Mapping[str, Any]], key: str) -> list[Mapping[str, Any]]:
    """The events of the last pass over each ``key`` value: when a redelivered job resumes
    from its checkpoint it reports steps (or epochs) again, and the repeated ones replace
    those reported before the interruption, so each curve runs forward."""
    kept: list[Mapping[str, Any]] = []
    for event in events:
        if event.get(key) is None:
            continue
        while kept and kept[-1][key] >= event[key]:
            kept.pop()
        kept.append(event)
    return kept


# The physics-informed curves (models.pde_loss): the PDE residual, relative to persistence's.
RESIDUAL_COLOR = "#2a9d8f"


def add_residual_traces(
    fig: go.Figure,
    train_events: Sequence[Mapping[str, Any]],
    epoch_events: Sequence[Mapping[str, Any]],
    epochs: int | None = None,
) -> bool:
    """Adds a physics-informed run's curves to a loss figure: per train event the two parts
    of the objective, the data loss and the PDE residual (``data_loss``, ``pde_loss``); per
    epoch the validation residual (``val_pde_residual``) and persistence's residual, which
    is 1 by construction (the residual is measured relative to it). Events without these
    keys add nothing; returns whether a trace was added."""
    steps = [e for e in train_events if e.get("pde_loss") is not None]
    if steps:
        x = [_train_x(e, epochs) for e in steps]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_positive([e.get("data_loss", math.nan) for e in steps], 0.0),
                mode="lines",
                name="training data loss",
                line=dict(color=COLORS["train"], width=1.5, dash="dot"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_positive([e["pde_loss"] for e in steps], 0.0),
                mode="lines",
                name="training PDE residual",
                line=dict(color=RESIDUAL_COLOR, width=1.5),
            )
        )
    per_epoch = [e for e in epoch_events if e.get("val_pde_residual") is not None]
    if per_epoch:
        ex = [int(e["epoch"]) for e in per_epoch]
        fig.add_trace(
            go.Scatter(
                x=ex,
                y=_positive([e["val_pde_residual"] for e in per_epoch], 0.0),
                mode="lines+markers",
                name="validation PDE residual",
                line=dict(color=RESIDUAL_COLOR, width=2),
                marker=dict(size=6, symbol="diamond"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=ex,
                y=[1.0] * len(ex),
                mode="lines",
                name="persistence residual",
                line=dict(color=RESIDUAL_COLOR, width=1, dash="dash"),
            )
        )
        floor = [e.get("data_pde_residual") for e in per_epoch]
        if any(v is not None for v in floor):
            # What the data's own frames score: a model cannot usefully go below it, and
            # near 1 it says the frames are too far apart for the residual to judge.
            fig.add_trace(
                go.Scatter(
                    x=ex,
                    y=_positive([math.nan if v is None else v for v in floor], 0.0),
                    mode="lines",
                    name="the data's own residual",
                    line=dict(color=RESIDUAL_COLOR, width=1, dash="dot"),
                )
            )
    return bool(steps or per_epoch)


def training_figure(
    train_events: Sequence[Mapping[str, Any]],
    epoch_events: Sequence[Mapping[str, Any]],
    *,
    epochs: int | None = None,
    loss: str | None = None,
    resumed: Sequence[Mapping[str, Any]] = (),
    uirevision: Any = None,
) -> go.Figure:
    """``loss_figure`` for a live run: the training loss named by what it minimises
    (``loss``, a TrainParams.loss), validation relative L2 and persistence per epoch on a
    log y axis; for a physics-informed run the PDE residual beside the data error
    (``add_residual_traces``), the training loss then being their weighted sum; steps
    repeated after a resume replace the earlier ones (``latest_pass``), and a dotted line
    marks each point where the job resumed from its checkpoint."""
    train = latest_pass(train_events, "step")
    per_epoch = latest_pass(epoch_events, "epoch")
    fig = loss_figure(train, per_epoch, epochs=epochs, uirevision=uirevision)
    if not train and not per_epoch:
        return fig
    name = LOSS_NAMES.get(loss or "rel_l2", loss)
    physics = add_residual_traces(fig, train, per_epoch, epochs)
    objective = "training objective (weighted sum)" if physics else f"training loss ({name})"
    for trace in fig.data:
        if trace.name == "training loss":
            trace.name = objective
    if physics:
        fig.update_yaxes(title_text=f"{name} · PDE residual")
    elif loss and loss != "rel_l2":
        fig.update_yaxes(title_text=f"{name} · relative L2")
    total = next((e["total_steps"] for e in train_events if e.get("total_steps")), None)
    for event in resumed:
        if event.get("step") is not None and total:
            x = _train_x({"step": event["step"], "total_steps": total}, epochs)
        elif event.get("epoch") is not None:
            x = float(event["epoch"])
        else:
            continue
        fig.add_vline(
            x=x,
            line=dict(color=MUTED, width=1, dash="dot"),
            annotation=dict(text="resumed", font=dict(size=11, color=MUTED)),
            annotation_position="top right",
        )
    return fig


def lr_figure(
    train_events: Sequence[Mapping[str, Any]],
    *,
    epochs: int | None = None,
    uirevision: Any = None,
) -> go.Figure:
    """The learning rate of each train event against epochs, on a log y axis (the
    schedule: one-cycle warm-up and decay, steps, or a constant)."""
    train = [e for e in latest_pass(train_events, "step") if e.get("lr") is not None]
    if not train:
        return empty_figure("The learning rate appears when training starts.", uirevision)
    fig = go.Figure(
        go.Scatter(
            x=[_train_x(e, epochs) for e in train],
            y=_positive([e["lr"] for e in train], 0.0),
            mode="lines",
            name="learning rate",
            line=dict(color=COLORS["reference"], width=1.5),
        )
    )
    _base_layout(fig, uirevision, "Learning rate")
    fig.update_layout(showlegend=False)
    fig.update_xaxes(title_text="epoch", rangemode="tozero", nticks=6)
    # A short plot: a few chosen ticks with short labels, so they never overlap (plotly's
    # own log ticks label 2, 3, 5… of every decade and crowd on a one-cycle schedule).
    values = [v for v in fig.data[0].y if v is not None and v > 0]
    ticks = log_ticks(min(values), max(values)) if values else []
    fig.update_yaxes(
        title_text="learning rate",
        type="log",
        tickvals=ticks,
        ticktext=tick_labels(ticks),
    )
    return fig
    return fig


def log_ticks(low: float, high: float, max_ticks: int = 4) -> list[float]:
    """At most ``max_ticks`` round values spread over [low, high] on a log axis: the 1, 2, 5 ×
    10ᵏ inside when there are few enough, else the powers of ten inside (every second,
    third… when there are more), else every few 1-2-5 values; the two ends rounded when
    nothing round falls inside."""
    if not (low > 0 and high > 0):
        return []
    low, high = min(low, high), max(low, high)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    eps = 1e-9

    def inside(values: list[float]) -> list[float]:
        return [v for v in values if low * (1 - eps) <= v <= high * (1 + eps)]

    values = inside([m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)])
    if 2 <= len(values) <= max_ticks:
        return values
    decades = inside([10.0**e for e in range(first, last + 1)])
    if len(decades) >= 2:
        stride = math.ceil(len(decades) / max_ticks)
        return decades[::stride]
    if len(values) >= 2:
        stride = math.ceil(len(values) / max_ticks)
        return values[::stride]
    ends = sorted({float(f"{low:.2g}"), float(f"{high:.2g}")})
    return ends


def tick_labels(values: Sequence[float]) -> list[str]:
    """Short tick labels in one style: "0.01", "0.002" when every value reads so in a few
    characters, else "1e-4", "5e-4", "3.1e-4" for all of them."""
    if all(1e-3 <= abs(v) < 1e4 for v in values):
        return [f"{v:.2g}" for v in values]
    out = []
    for v in values:
        mantissa, exponent = f"{v:.1e}".split("e")
        out.append(f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}")
    return out


# --- several runs overlaid ----------------------------------------------------------------

# One colour per run (validation's red and training's blue stay distinct from the first two).
RUN_COLORS = (
    "#1f4e79",
    "#d1495b",
    "#2a9d8f",
    "#e9a23b",
    "#6c5b7b",
    "#3d8bd4",
    "#8c564b",
    "#7a9c3a",
)
OVERLAY_METRICS = {
    "loss": "training loss",
    "val": "validation rel. L2",
    "lr": "learning rate",
}
OVERLAY_LABELS = {
    "loss": "Training loss",
    "val": "Validation rel. L2",
    "lr": "Learning rate",
}
OVERLAY_X = {"step": "optimiser step", "time": "wall time (s)"}


def smooth(values: Sequence[float | None], weight: float) -> list[float | None]:
    """An exponential moving average with weight ``weight`` in [0, 1) (0: unchanged), the
    bias of its start removed; gaps (None, NaN) are skipped and stay gaps."""
    if not weight:
        return list(values)
    out: list[float | None] = []
    mean, norm = 0.0, 0.0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(None)
            continue
        mean = weight * mean + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(mean / norm)
    return out


def _steps_per_epoch(run: Mapping[str, Any]) -> float | None:
    total = next((e["total_steps"] for e in run.get("train") or [] if e.get("total_steps")), None)
    epochs = run.get("epochs")
    return total / epochs if total and epochs else None


def overlay_points(
    run: Mapping[str, Any], metric: str, x: str
) -> tuple[list[float | None], list[float | None]]:
    """(x, y) of one run's ``metric`` ("loss", "val", "lr") against ``x`` ("step": the
    optimiser step, an epoch's end for validation; "time": seconds since the start)."""
    if metric == "val":
        events = latest_pass(run.get("epoch") or [], "epoch")
        per_epoch = _steps_per_epoch(run)
        xs = [
            e.get("t")
            if x == "time"
            else (e["epoch"] * per_epoch if per_epoch else float(e["epoch"]))
            for e in events
        ]
        return xs, [e.get("val_rel_l2") for e in events]
    events = latest_pass(run.get("train") or [], "step")
    key = "train_loss" if metric == "loss" else "lr"
    events = [e for e in events if e.get(key) is not None]
    xs = [e.get("t") if x == "time" else float(e["step"]) for e in events]
    return xs, [float(e[key]) for e in events]


def overlay_figure(
    runs: Sequence[Mapping[str, Any]],
    *,
    metric: str = "loss",
    x: str = "step",
    scale: str = "log",
    smoothing: float = 0.0,
    uirevision: Any = None,
) -> go.Figure:
    """Several training runs' ``metric`` on one plot, one colour per run, against the step
    or the wall time, on a log or linear y axis. With ``smoothing`` > 0 each curve is the
    moving average (``smooth``) over its raw points, drawn faint behind it."""
    metric = metric if metric in OVERLAY_METRICS else "loss"
    x = x if x in OVERLAY_X else "step"
    if not runs:
        return empty_figure("Choose training runs to overlay.", uirevision)
    fig = go.Figure()
    drawn = 0
    for i, run in enumerate(runs):
        xs, ys = overlay_points(run, metric, x)
        if not xs:
            continue
        drawn += 1
        color = RUN_COLORS[i % len(RUN_COLORS)]
        ys = [None if v is None or not math.isfinite(v) else v for v in ys]
        if scale == "log":
            ys = _positive([v if v is not None else math.nan for v in ys], 0.0)
        label = f"{run['name']}"
        if smoothing:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=f"{label} (raw)",
                    line=dict(color=color, width=1),
                    opacity=0.25,
                    showlegend=False,
                    hoverinfo="skip",
                    legendgroup=run["id"],
                )
            )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=smooth(ys, smoothing),
                mode="lines+markers" if metric == "val" else "lines",
                name=label,
                line=dict(color=color, width=2),
                marker=dict(size=5),
                legendgroup=run["id"],
                meta=run["id"],
            )
        )
    if not drawn:
        return empty_figure(f"The chosen runs have no {OVERLAY_METRICS[metric]} yet.", uirevision)
    _base_layout(fig, uirevision, OVERLAY_LABELS[metric])
    fig.update_xaxes(title_text=OVERLAY_X[x], rangemode="tozero")
    fig.update_yaxes(
        title_text=OVERLAY_METRICS[metric],
        type="log" if scale == "log" else "linear",
        tickformat=".3g",
    )
    return fig
