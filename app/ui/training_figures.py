"""Plotly figures of a training run, built by pure functions of its events (``train``
events per optimiser step or pass, ``epoch`` events with the validation error): the loss
against epochs with the persistence baseline, and the learning rate."""

from __future__ import annotations

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
    log y axis; steps repeated after a resume replace the earlier ones (``latest_pass``),
    and a dotted line marks each point where the job resumed from its checkpoint."""
    train = latest_pass(train_events, "step")
    per_epoch = latest_pass(epoch_events, "epoch")
    fig = loss_figure(train, per_epoch, epochs=epochs, uirevision=uirevision)
    if not train and not per_epoch:
        return fig
    name = LOSS_NAMES.get(loss or "rel_l2", loss)
    for trace in fig.data:
        if trace.name == "training loss":
            trace.name = f"training loss ({name})"
    if loss and loss != "rel_l2":
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
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    # Plain 2-digit labels: a schedule spans a decade or two, where power labels crowd.
    fig.update_yaxes(title_text="learning rate", type="log", tickformat=".2g", nticks=6)
    return fig
