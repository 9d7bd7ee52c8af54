"""Training loop for one-step operators on trajectories, with progress callbacks.

Plain torch: progress goes out through ``on_event`` (a worker turns events into rows, a
notebook prints them) and cancellation comes in through ``should_stop``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.losses import relative_l2

# Statistics of a constant channel: leave it unscaled rather than divide by ~0.
_MIN_STD = 1e-12


class TrainingStopped(Exception):
    """Raised when ``should_stop()`` returns True; carries how far training got."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"training stopped on request at epoch {epoch}, step {step}")
        self.epoch = epoch
        self.step = step


@dataclass
class TrainConfig:
    """Optimisation settings. ``events_every`` counts optimizer steps."""

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    val_fraction: float = 0.2
    seed: int = 0
    events_every: int = 10

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.events_every < 1:
            raise ValueError("epochs, batch_size and events_every must be at least 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class TrainResult:
    """Outcome of :func:`train_one_step`.

    ``history`` holds the ``"epoch"`` events. ``val_rel_l2`` and ``persistence_rel_l2``
    are over the validation pairs at the end of training. ``validated_on_training_data`` is
    True when there was no trajectory to hold out (one trajectory, or ``val_fraction`` 0):
    the validation numbers then measure fit, not generalisation.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    val_rel_l2: float
    persistence_rel_l2: float
    train_trajectories: list[int]
    val_trajectories: list[int]
    validated_on_training_data: bool = False
    notes: list[str] = field(default_factory=list)


def split_trajectories(
    n_traj: int, val_fraction: float, generator: torch.Generator
) -> tuple[list[int], list[int]]:
    """Random split of trajectory indices into (train, validation).

    By trajectory, never by frame: consecutive frames of one trajectory are nearly equal,
    so a frame split would leak training data into validation. At least one trajectory is
    held out when ``val_fraction > 0`` and at least one is kept for training; with a single
    trajectory (or ``val_fraction == 0``) validation reuses the training set.
    """
    order = torch.randperm(n_traj, generator=generator).tolist()
    n_val = min(max(round(val_fraction * n_traj), 1), n_traj - 1) if val_fraction > 0 else 0
    if n_val == 0:
        return sorted(order), sorted(order)
    return sorted(order[n_val:]), sorted(order[:n_val])


class _Pairs:
    """The (frame t, frame t+1) pairs inside the given trajectories, gathered per batch.

    Holds indices only: copying every pair up front would duplicate the dataset twice.
    """

    def __init__(self, trajectories: torch.Tensor, traj_idx: list[int]):
        n_time = trajectories.shape[1]
        self.data = trajectories
        self.traj = torch.tensor(traj_idx, dtype=torch.long).repeat_interleave(n_time - 1)
        self.time = torch.arange(n_time - 1).repeat(len(traj_idx))

    def __len__(self) -> int:
        return self.traj.numel()

    def batch(self, rows: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        traj, time_ = self.traj[rows], self.time[rows]
        x = self.data[traj, time_].to(device, non_blocking=True)
        y = self.data[traj, time_ + 1].to(device, non_blocking=True)
        return x, y


def channel_statistics(
    trajectories: torch.Tensor, traj_idx: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) std over the given trajectories, all frames.

    Accumulated one trajectory at a time (no copy of the training set) in float64, so that
    ``E[u²] − E[u]²`` keeps its precision for fields whose mean exceeds their spread.
    """
    channels = trajectories.shape[2]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for i in traj_idx:
        u = trajectories[i].to(torch.float64).transpose(0, 1).reshape(channels, -1)
        total += u.sum(dim=1).cpu()
        total_sq += (u * u).sum(dim=1).cpu()
        count += u.shape[1]
    mean = total / count
    var = (total_sq - count * mean * mean).clamp_min(0) / max(count - 1, 1)
    std = var.sqrt()
    std = torch.where(std > _MIN_STD, std, torch.ones_like(std))
    return mean.float(), std.float()


@torch.no_grad()
def _evaluate(
    model: nn.Module, pairs: _Pairs, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Sample-weighted mean relative L2 of the model and of persistence over the pairs."""
    model.eval()
    model_sum = persistence_sum = 0.0
    for start in range(0, len(pairs), batch_size):
        x, y = pairs.batch(torch.arange(start, min(start + batch_size, len(pairs))), device)
        n = x.shape[0]
        model_sum += n * relative_l2(model(x), y).item()
        persistence_sum += n * relative_l2(x[:, : y.shape[1]], y).item()
    return model_sum / len(pairs), persistence_sum / len(pairs)


def train_one_step(
    model: nn.Module,
    trajectories: torch.Tensor,
    config: TrainConfig,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Trains ``model`` as a one-step map ``frame t → frame t+1`` on ``trajectories``.

    ``trajectories`` is ``(n_traj, n_time, C, H, W)`` in physical units (left where it is,
    CPU or GPU; each batch moves to ``device``, default the model's device). The model must provide
    ``set_normalization(mean, std)``; the per-channel statistics are computed on the
    training trajectories only. Loss: :func:`models.losses.relative_l2`. Optimiser: AdamW
    under a one-cycle learning-rate schedule, gradients clipped to ``grad_clip`` (global
    norm; 0 disables). Deterministic for a given ``seed`` and initial model on the CPU.

    Events passed to ``on_event`` (epochs numbered from 1, ``step`` = optimizer steps done):

    * every ``events_every`` steps: ``{"type": "train", "epoch", "step", "total_steps",
      "train_loss", "lr", "samples_per_s"}``; ``train_loss`` and ``samples_per_s`` average
      over the steps since the previous train event;
    * at each epoch end: ``{"type": "epoch", "epoch", "train_loss", "val_rel_l2",
      "persistence_rel_l2"}``.

    ``should_stop()`` is polled before every step; when it returns True this raises
    :class:`TrainingStopped` (the model keeps the weights reached so far).
    """
    if trajectories.ndim != 5 or trajectories.shape[1] < 2:
        raise ValueError(
            f"trajectories must be (n_traj, n_time ≥ 2, C, H, W), got {tuple(trajectories.shape)}"
        )
    if not trajectories.is_floating_point():
        trajectories = trajectories.float()
    trajectories = trajectories.detach()
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    n_traj = trajectories.shape[0]
    train_idx, val_idx = split_trajectories(n_traj, config.val_fraction, generator)
    on_train = train_idx == val_idx
    notes = []
    if on_train:
        notes.append(
            f"{n_traj} trajectory(ies) and val_fraction={config.val_fraction}: nothing held "
            "out, validation numbers are measured on the training data"
        )

    model.set_normalization(*channel_statistics(trajectories, train_idx))

    train_pairs = _Pairs(trajectories, train_idx)
    val_pairs = _Pairs(trajectories, val_idx)
    n_train = len(train_pairs)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps
    )

    history: list[dict[str, Any]] = []
    step = 0
    # Accumulated on the device and read every events_every steps: reading a loss with
    # .item() on every step would synchronise the GPU each time.
    window_loss = torch.zeros((), device=device)
    window_samples = 0
    window_start = time.perf_counter()

    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_loss = torch.zeros((), device=device)
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, config.batch_size):
            if should_stop is not None and should_stop():
                model.eval()
                raise TrainingStopped(epoch, step)
            batch = order[start : start + config.batch_size]
            x, y = train_pairs.batch(batch, device)

            loss = relative_l2(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1

            n = x.shape[0]
            epoch_loss += loss.detach() * n
            window_loss += loss.detach()
            window_samples += n
            if on_event is not None and step % config.events_every == 0:
                # .item() waits for the device, so the clock is read after it.
                mean_loss = window_loss.item() / config.events_every
                elapsed = time.perf_counter() - window_start
                on_event(
                    {
                        "type": "train",
                        "epoch": epoch,
                        "step": step,
                        "total_steps": total_steps,
                        "train_loss": mean_loss,
                        "lr": optimizer.param_groups[0]["lr"],
                        "samples_per_s": window_samples / elapsed if elapsed > 0 else 0.0,
                    }
                )
                window_loss.zero_()
                window_samples = 0
                window_start = time.perf_counter()

        eval_start = time.perf_counter()
        val_rel_l2, persistence_rel_l2 = _evaluate(model, val_pairs, config.batch_size, device)
        # Validation time is not training throughput: keep it out of samples_per_s.
        window_start += time.perf_counter() - eval_start
        event = {
            "type": "epoch",
            "epoch": epoch,
            "train_loss": epoch_loss.item() / n_train,
            "val_rel_l2": val_rel_l2,
            "persistence_rel_l2": persistence_rel_l2,
        }
        history.append(event)
        if on_event is not None:
            on_event(dict(event))

    model.eval()
    return TrainResult(
        model=model,
        history=history,
        val_rel_l2=history[-1]["val_rel_l2"],
        persistence_rel_l2=history[-1]["persistence_rel_l2"],
        train_trajectories=train_idx,
        val_trajectories=val_idx,
        validated_on_training_data=on_train,
        notes=notes,
    )
