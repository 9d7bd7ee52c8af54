"""The training loop for every operator in the zoo: windows of trajectories in, the
following frames out, with progress callbacks, per-epoch checkpoints and data parallelism.

Plain torch: progress goes out through ``on_event`` (a worker turns events into rows, a
notebook prints them), cancellation comes in through ``should_stop``, and checkpoints go to
a directory (``models.train_state``), from which a rerun resumes.

One sample is a window of ``history + unroll·out_steps`` consecutive frames (the model's
contract and the unroll count). The model is called ``unroll`` times, each time on the last
``history`` frames of (inputs + its own predictions so far); the loss averages over every
predicted frame. With ``push_forward`` the first ``unroll − 1`` calls run without gradient
and only the last call's frames enter the loss (Brandstetter et al., 2022): the model learns
to correct the distribution of its own inputs without back-propagating through the chain.

Physics-informed training: with a physics loss (``models.pde_loss``) the objective is
``data_weight·data_loss + pde_weight·pde_loss(inputs, preds)``, the physics loss taking the
window and the predicted frames in physical units (the models return physical units). With
``data_weight = 0`` training is label-free (see :func:`train`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models import distributed
from models.losses import make_loss, relative_l2
from models.pde_loss import PdeLoss
from models.train_state import TrainingState, load_training_state, save_training_state
from models.windows import Windows, channel_statistics, split_trajectories


class TrainingStopped(Exception):
    """Raised when ``should_stop()`` returns True; carries how far training got."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"training stopped on request at epoch {epoch}, step {step}")
        self.epoch = epoch
        self.step = step


SCHEDULERS = ("onecycle", "step", "constant")


# A run reports at least this many train events (every step when it has fewer steps), so
# that the warm-up of a short run on small data shows on its curves.
MIN_TRAIN_POINTS = 50


def event_interval(events_every: int, total_steps: int) -> int:
    """Optimiser steps between train events: ``events_every``, or fewer when the run has
    under ``MIN_TRAIN_POINTS`` × that many steps (every step for a run of at most 50)."""
    return max(1, min(events_every, total_steps // MIN_TRAIN_POINTS))


@dataclass
class TrainConfig:
    """Optimisation settings. ``events_every`` counts optimiser steps, at most: a short run
    reports more often, so that it has at least ``MIN_TRAIN_POINTS`` train events
    (``event_interval``); ``batch_size`` is the
    global batch (split over the ranks of data-parallel training). ``length`` is the side of
    the periodic box, used by the Sobolev losses. The objective is ``data_weight`` × the
    data loss plus ``pde_weight`` × the physics loss (``train``'s ``pde_loss``): both
    non-negative, not both zero."""

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    val_fraction: float = 0.2
    seed: int = 0
    events_every: int = 10
    scheduler: str = "onecycle"
    step_epochs: int = 10
    gamma: float = 0.5
    loss: str = "rel_l2"
    unroll: int = 1
    push_forward: bool = False
    amp: bool = True
    length: float = 1.0
    data_weight: float = 1.0
    pde_weight: float = 0.0

    def __post_init__(self) -> None:
        if min(self.epochs, self.batch_size, self.events_every, self.unroll, self.step_epochs) < 1:
            raise ValueError(
                "epochs, batch_size, events_every, unroll and step_epochs must be at least 1"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}")
        if self.push_forward and self.unroll < 2:
            raise ValueError("push_forward needs unroll of at least 2")
        for name in ("data_weight", "pde_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and non-negative, got {value}")
        if self.data_weight == 0 and self.pde_weight == 0:
            raise ValueError("data_weight and pde_weight cannot both be 0: nothing to minimise")
        make_loss(self.loss, self.length)  # raises for an unknown loss

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> TrainConfig:
        """The config from job parameters (keys this class does not know are ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in params.items() if k in known}, **overrides)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    ``history`` holds the ``"epoch"`` events. ``val_rel_l2`` and ``persistence_rel_l2`` are
    one-step (one model call) relative L2 errors over the validation windows at the end.
    ``validated_on_training_data`` is True when there was no trajectory to hold out.
    ``val_pde_residual`` is the physics loss of the one-step validation predictions at the
    end, when training had a physics loss (else None).
    """

    model: nn.Module
    history: list[dict[str, Any]]
    val_rel_l2: float
    persistence_rel_l2: float
    train_trajectories: list[int]
    val_trajectories: list[int]
    validated_on_training_data: bool = False
    resumed_from_epoch: int = 0
    notes: list[str] = field(default_factory=list)
    val_pde_residual: float | None = None


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> tuple[Any, bool]:
    """(scheduler, steps per optimiser step?) — one-cycle steps every batch, step decay and
    the constant rate once per epoch."""
    if config.scheduler == "onecycle":
        total = config.epochs * steps_per_epoch
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total
        ), True
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_epochs, config.gamma), False
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0), False


def unrolled_predictions(
    model: nn.Module,
    x: torch.Tensor,
    unroll: int,
    push_forward: bool = False,
    final: nn.Module | None = None,
    with_last_window: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The frames of ``unroll`` autoregressive calls from window ``x``, stacked in time:
    ``(B, unroll·out_steps, C, *space)`` (with ``push_forward``: the last call's only).
    ``with_last_window`` also returns the window the last call was given (the frames the
    returned ones follow with ``push_forward``: what a physics loss pairs them with).

    ``final`` (default ``model``) makes the last call: the DDP wrapper, which expects one
    forward per backward; its gradient hooks still see the earlier calls' contributions,
    since autograd sums every use of a parameter before its accumulation hook fires.
    """
    history = x.shape[1]
    window, frames = x, []
    for call in range(unroll):
        last = call == unroll - 1
        grad = torch.enable_grad() if (last or not push_forward) else torch.no_grad()
        with grad:
            y = (final or model)(window) if last else model(window)
        if not last:
            window = torch.cat([window, y], dim=1)[:, -history:]
            if push_forward:
                window = window.detach()
                continue
        frames.append(y)
    out = torch.cat(frames, dim=1)
    return (out, window) if with_last_window else out


def _frames_loss(loss_fn, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # Every predicted frame is one sample of the loss (see models.losses).
    return loss_fn(pred.flatten(0, 1), target.flatten(0, 1))


def _objective(
    config: TrainConfig,
    loss_fn,
    pde_loss: PdeLoss | None,
    before: torch.Tensor,
    pred: torch.Tensor,
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(data_weight·data + pde_weight·physics, the detached unweighted [data, physics]).

    ``before`` is the window the predicted frames follow. With ``data_weight = 0`` the data
    loss is measured without gradient, for the curves only: the targets never reach the
    objective (label-free)."""
    target = y[:, -pred.shape[1] :]
    if config.data_weight > 0:
        data = _frames_loss(loss_fn, pred, target)
        loss = config.data_weight * data
    else:
        with torch.no_grad():
            data = _frames_loss(loss_fn, pred.detach(), target)
        loss = None
    physics = torch.zeros((), device=pred.device)
    if config.pde_weight > 0:
        physics = pde_loss(before, pred)
        weighted = config.pde_weight * physics
        loss = weighted if loss is None else loss + weighted
    return loss, torch.stack([data.detach(), physics.detach()])


@torch.no_grad()
def evaluate(
    model: nn.Module, windows: Windows, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """One-call relative L2 of the model and of persistence over every window (sample
    weighted); persistence repeats the last input frame."""
    model.eval()
    model_sum = persistence_sum = 0.0
    for start in range(0, len(windows), batch_size):
        x, y = windows.batch(torch.arange(start, min(start + batch_size, len(windows))), device)
        pred = model(x)
        persistence = x[:, -1:].expand_as(y)
        model_sum += relative_l2(pred.flatten(0, 1), y.flatten(0, 1)).item() * y.shape[0]
        persistence_sum += (
            relative_l2(persistence.flatten(0, 1), y.flatten(0, 1)).item() * y.shape[0]
        )
    return model_sum / len(windows), persistence_sum / len(windows)


@torch.no_grad()
def evaluate_pde_residual(
    model: nn.Module, windows: Windows, batch_size: int, device: torch.device, pde_loss: PdeLoss
) -> float:
    """The physics loss of the model's one-call predictions over every window (sample
    weighted): how far its next frames are from satisfying the equations."""
    model.eval()
    total = 0.0
    for start in range(0, len(windows), batch_size):
        x, _ = windows.batch(torch.arange(start, min(start + batch_size, len(windows))), device)
        total += pde_loss(x, model(x).float()).item() * x.shape[0]
    return total / len(windows)


@torch.no_grad()
def data_pde_residual(
    windows: Windows, batch_size: int, device: torch.device, pde_loss: PdeLoss
) -> float:
    """The physics loss of the data's own next frames over every window (sample weighted):
    the floor a perfect model would reach at this frame spacing. Near 0 the residual can
    tell good predictions from poor ones; near 1 (persistence's score) the frames are too
    far apart in time for the equations' discrete form to judge them."""
    total = 0.0
    for start in range(0, len(windows), batch_size):
        x, y = windows.batch(torch.arange(start, min(start + batch_size, len(windows))), device)
        total += pde_loss(x, y.float()).item() * x.shape[0]
    return total / len(windows)


def _autocast(device: torch.device, enabled: bool):
    # bfloat16 keeps float32's range, so no loss scaling is needed; the spectral layers
    # compute their FFTs in float32 regardless.
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(
    model: nn.Module,
    trajectories: torch.Tensor,
    config: TrainConfig,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device | None = None,
    checkpoint_dir: str | Path | None = None,
    pde_loss: PdeLoss | None = None,
) -> TrainResult:
    """Trains ``model`` on ``trajectories`` ``(n_traj, n_time, C, *space)`` (physical units).

    The model must follow :mod:`models.base` (contract, ``set_normalization``); the
    per-channel statistics come from the training trajectories only (split by trajectory,
    never by frame). Optimiser: AdamW; schedule per ``config.scheduler``; gradients clipped
    to ``grad_clip`` (global norm; 0 disables); bfloat16 autocast on CUDA when ``amp``.
    Deterministic for a given seed and initial model on the CPU.

    The objective is ``config.data_weight`` × the data loss (``config.loss`` of the
    predictions against the following frames) plus ``config.pde_weight`` × ``pde_loss``
    (needed when ``pde_weight > 0``; see :mod:`models.pde_loss`) of (input window,
    predictions), both in physical units. With ``push_forward`` the physics loss pairs the
    last call's frames with that call's input window. With ``data_weight = 0`` training is
    label-free: no frame that is only ever a target enters the loss or the normalisation
    statistics (these come from the frames a window can take as input); the targets are
    still read for the reported ``data_loss`` and validation error, computed without
    gradient, where the trajectories hold reference frames.

    With ``checkpoint_dir``, the full training state is saved atomically after every epoch,
    and if the directory already holds a checkpoint training resumes from it (same weights,
    optimiser, schedule and data order as if it had never stopped).

    Run inside a process group (:func:`models.distributed.launch`), each rank takes its
    share of every global batch and gradients are averaged by DDP; only rank 0 reports
    events and writes checkpoints. All ranks return the same model.

    Events passed to ``on_event`` (epochs numbered from 1, ``step`` = optimiser steps done):

    * ``{"type": "resumed", "epoch", "step"}`` when resuming from a checkpoint;
    * every ``event_interval(events_every, total_steps)`` steps (``events_every``, fewer
      on a short run): ``{"type": "train", "epoch", "step", "total_steps",
      "train_loss", "lr", "samples_per_s", "eta_s"}``, plus ``"data_loss"`` and
      ``"pde_loss"`` when ``pde_weight > 0`` (losses and throughput averaged over the steps
      since the previous train event; ``train_loss`` is the weighted objective,
      ``data_loss`` and ``pde_loss`` its unweighted parts);
    * at each epoch end: ``{"type": "epoch", "epoch", "epochs", "train_loss", "val_rel_l2",
      "persistence_rel_l2"}``, plus ``"val_pde_residual"`` (:func:`evaluate_pde_residual`
      on the validation windows) and ``"data_pde_residual"`` (:func:`data_pde_residual`,
      the data's own frames scored alike) when there is a ``pde_loss``.

    ``should_stop()`` is polled before every step; when it returns True this raises
    :class:`TrainingStopped` (the last checkpoint stays on disk).
    """
    contract = model.contract
    if trajectories.ndim != 3 + contract.dims or trajectories.shape[2] != contract.channels:
        raise ValueError(
            f"the model expects trajectories (n_traj, n_time, {contract.channels}, "
            f"<{contract.dims} spatial axes>), got {tuple(trajectories.shape)}"
        )
    if not trajectories.is_floating_point():
        trajectories = trajectories.float()
    trajectories = trajectories.detach()
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    rank = distributed.current()
    report = on_event if (on_event is not None and rank.is_main) else None
    loss_fn = make_loss(config.loss, config.length)
    if config.pde_weight > 0 and pde_loss is None:
        raise ValueError("pde_weight > 0 needs a physics loss (pde_loss)")

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_idx, val_idx = split_trajectories(trajectories.shape[0], config.val_fraction, generator)
    on_train = train_idx == val_idx
    notes = []
    if on_train:
        notes.append(
            f"{trajectories.shape[0]} trajectory(ies) and val_fraction={config.val_fraction}: "
            "nothing held out, validation numbers are measured on the training data"
        )
    targets = config.unroll * contract.out_steps
    # Label-free: the statistics of the frames a window can take as input, never of the
    # last ``targets`` frames of a trajectory, which are only ever targets.
    n_inputs = max(1, trajectories.shape[1] - targets)
    seen = trajectories if config.data_weight > 0 else trajectories[:, :n_inputs]
    model.set_normalization(*channel_statistics(seen, train_idx))

    train_windows = Windows(trajectories, train_idx, contract.history, targets)
    val_windows = Windows(trajectories, val_idx, contract.history, contract.out_steps)
    n_train = len(train_windows)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    every = event_interval(config.events_every, total_steps)

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler, per_step = make_scheduler(config, optimizer, steps_per_epoch)

    state = TrainingState(epoch=0, step=0, extra={"train": train_idx, "val": val_idx})
    if checkpoint_dir is not None:
        loaded = load_training_state(checkpoint_dir, model, optimizer, scheduler, generator)
        if loaded is not None:
            state = loaded
            if report:
                report({"type": "resumed", "epoch": state.epoch, "step": state.step})
    resumed_from = state.epoch
    net = DistributedDataParallel(model) if rank.distributed else model

    window_loss = torch.zeros((), device=device)
    # The unweighted parts of the objective, summed like window_loss: data, physics.
    window_parts = torch.zeros(2, device=device)
    window_samples = 0
    window_start = time.perf_counter()
    step_seconds: list[float] = []

    data_residual = None  # the data's own residual on the validation windows, measured once
    for epoch in range(state.epoch + 1, config.epochs + 1):
        net.train()
        epoch_loss = torch.zeros((), device=device)
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, config.batch_size):
            stop = should_stop() if (should_stop is not None and rank.is_main) else False
            if distributed.any_rank(stop, device):
                model.eval()
                raise TrainingStopped(epoch, state.step)
            rows = order[start : start + config.batch_size]
            if rows.numel() < rank.world_size:
                # A last batch too small to give every rank a sample is dropped (on every
                # rank alike): DDP needs each rank in every gradient reduction.
                continue
            local = rows[rank.rank :: rank.world_size]
            x, y = train_windows.batch(local, device)
            with _autocast(device, config.amp):
                pred, last_window = unrolled_predictions(
                    model, x, config.unroll, config.push_forward, final=net, with_last_window=True
                )
            pred = pred.float()
            loss, parts = _objective(
                config, loss_fn, pde_loss, x if not config.push_forward else last_window, pred, y
            )
            # DDP averages gradients over ranks; weighting by the local share makes that the
            # gradient of the global batch mean even when the batch does not split evenly.
            scaled = loss * (local.numel() * rank.world_size / rows.numel())
            optimizer.zero_grad(set_to_none=True)
            scaled.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if per_step:
                scheduler.step()
            state.step += 1

            epoch_loss += loss.detach() * local.numel()
            window_loss += loss.detach()
            window_parts += parts
            window_samples += rows.numel()
            if report is not None and state.step % every == 0:
                mean_loss = window_loss.item() / every  # waits for the device
                elapsed = time.perf_counter() - window_start
                step_seconds.append(elapsed / every)
                recent = sum(step_seconds[-5:]) / len(step_seconds[-5:])
                data_part, pde_part = (window_parts / every).tolist()
                # A physics-informed run shows its objective's parts; a data-only run's
                # data loss is its train_loss already.
                shown = {"data_loss": data_part, "pde_loss": pde_part}
                report(
                    {
                        "type": "train",
                        "epoch": epoch,
                        "step": state.step,
                        "total_steps": total_steps,
                        "train_loss": mean_loss,
                        **(shown if config.pde_weight > 0 else {}),
                        "lr": optimizer.param_groups[0]["lr"],
                        "samples_per_s": window_samples / elapsed if elapsed > 0 else 0.0,
                        "eta_s": recent * (total_steps - state.step),
                    }
                )
                window_loss.zero_()
                window_parts.zero_()
                window_samples = 0
                window_start = time.perf_counter()
        if not per_step:
            scheduler.step()

        eval_start = time.perf_counter()
        val_rel_l2, persistence_rel_l2 = evaluate(model, val_windows, config.batch_size, device)
        residual = {}
        if pde_loss is not None:
            residual["val_pde_residual"] = evaluate_pde_residual(
                model, val_windows, config.batch_size, device, pde_loss
            )
            if data_residual is None:
                data_residual = data_pde_residual(val_windows, config.batch_size, device, pde_loss)
            residual["data_pde_residual"] = data_residual
        train_loss = epoch_loss
        if rank.distributed:
            torch.distributed.all_reduce(train_loss)
        event = {
            "type": "epoch",
            "epoch": epoch,
            "epochs": config.epochs,
            "train_loss": train_loss.item() / n_train,
            "val_rel_l2": val_rel_l2,
            "persistence_rel_l2": persistence_rel_l2,
            **residual,
        }
        state.history.append(event)
        state.epoch = epoch
        if checkpoint_dir is not None and rank.is_main:
            save_training_state(checkpoint_dir, state, model, optimizer, scheduler, generator)
        if report:
            report(dict(event))
        # Validation and checkpoint time is not training throughput.
        window_start += time.perf_counter() - eval_start

    model.eval()
    if state.history:
        val_rel_l2 = state.history[-1]["val_rel_l2"]
        persistence_rel_l2 = state.history[-1]["persistence_rel_l2"]
    else:  # resumed from a checkpoint of the final epoch: nothing left to train
        val_rel_l2, persistence_rel_l2 = evaluate(model, val_windows, config.batch_size, device)
    val_pde_residual = None
    if pde_loss is not None:
        val_pde_residual = state.history[-1].get("val_pde_residual") if state.history else None
        if val_pde_residual is None:
            val_pde_residual = evaluate_pde_residual(
                model, val_windows, config.batch_size, device, pde_loss
            )
    return TrainResult(
        model=model,
        history=state.history,
        val_rel_l2=val_rel_l2,
        persistence_rel_l2=persistence_rel_l2,
        train_trajectories=train_idx,
        val_trajectories=val_idx,
        validated_on_training_data=on_train,
        resumed_from_epoch=resumed_from,
        notes=notes,
        val_pde_residual=val_pde_residual,
    )
