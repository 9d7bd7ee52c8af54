"""Online training: the model trains while solver runs stream windows in, with no dataset on
disk. The counterpart of :func:`models.training.train`, whose pieces it reuses (the
schedule, the unrolled predictions, the one-step evaluation against persistence, the
checkpoints of :mod:`models.train_state`).

Where the windows come from is a :class:`WindowSource` (a worker streams them from
producer jobs through Redis; a notebook may call a solver directly). Each window is
``history + unroll·out_steps`` consecutive frames of one trajectory, keyed by
``(trajectory, start)``. The loop

1. pulls windows into a bounded :mod:`models.online_buffer` buffer while the policy takes
   them (when it does not, nothing more is pulled: the source fills up and its producers
   wait — back-pressure);
2. once the buffer holds ``min_fill`` windows, sets the model's input normalisation from
   them (the first fill stands for the training data's statistics; a resumed run keeps
   the checkpointed ones), then draws a batch per optimiser step;
3. every ``steps_per_epoch`` steps (an epoch-equivalent) validates one-step against
   persistence on a fixed held-out set of trajectories and writes a checkpoint.

A :class:`StreamLedger` remembers, per trajectory, how many of its windows arrived in
order: a window sent twice (a replaced producer starts over its batch) is dropped, and the
count of distinct trajectories seen is exact. It is part of the checkpoint. Windows that
were in the buffer when the process died are lost (the solver makes more); the run goes on
from the checkpoint with the same weights, optimiser, schedule and random streams.

The run lasts ``epochs × steps_per_epoch`` steps, or ends early when the source is
finished and the buffer empty (FIFO and FIRO use every window once); a reservoir keeps
drawing from what it holds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from models.losses import make_loss
from models.online_buffer import make_buffer
from models.train_state import TrainingState, load_training_state, save_training_state
from models.training import (
    TrainConfig,
    TrainingStopped,
    _autocast,
    _frames_loss,
    evaluate,
    event_interval,
    make_scheduler,
    unrolled_predictions,
)
from models.windows import Windows, channel_statistics

# While the buffer fills (or the source is slow), an "online" event at most this often.
WAITING_EVENT_S = 2.0


class OnlineStreamEnded(RuntimeError):
    """The source finished before a single batch could be drawn."""


@dataclass
class StreamLedger:
    """Which windows arrived: ``next_start[trajectory]`` counts its windows received in
    order (each trajectory has ``windows_per_trajectory``, starts 0, 1, …)."""

    windows_per_trajectory: int
    next_start: dict[int, int] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0
    gaps: int = 0

    def accept(self, trajectory: int, start: int) -> bool:
        """Whether the window is new. A window already received (``start`` below the
        trajectory's count) is a duplicate; one that skips ahead (an earlier window was
        lost) is taken and the gap counted."""
        expected = self.next_start.get(trajectory, 0)
        if start < expected or start >= self.windows_per_trajectory:
            self.duplicates += start < expected
            return False
        self.gaps += start > expected
        self.next_start[trajectory] = start + 1
        self.received += 1
        return True

    @property
    def unique_trajectories(self) -> int:
        return len(self.next_start)

    @property
    def complete_trajectories(self) -> int:
        return sum(n >= self.windows_per_trajectory for n in self.next_start.values())

    def first_incomplete(self, first: int, count: int) -> int | None:
        """The first trajectory of ``first … first+count−1`` not fully received (None: all
        are): where a producer that replaces a lost one of that range starts."""
        for index in range(first, first + count):
            if self.next_start.get(index, 0) < self.windows_per_trajectory:
                return index
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows_per_trajectory": self.windows_per_trajectory,
            "next_start": {str(k): v for k, v in self.next_start.items()},
            "received": self.received,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamLedger:
        return cls(
            windows_per_trajectory=int(data["windows_per_trajectory"]),
            next_start={int(k): int(v) for k, v in data["next_start"].items()},
            received=int(data["received"]),
            duplicates=int(data["duplicates"]),
            gaps=int(data.get("gaps", 0)),
        )


class WindowSource(Protocol):
    """Where windows come from."""

    def bind(self, ledger: StreamLedger) -> None:
        """Called once before training with the ledger (restored on resume); a source that
        replaces lost producers reads which trajectories are still missing from it."""

    def pull(self, n: int) -> list[tuple[int, int, torch.Tensor]]:
        """Up to ``n`` windows ``(trajectory, start, frames (L, C, *space))``, oldest first;
        may return fewer (or none) without waiting."""

    def finished(self) -> bool:
        """True once no window will ever come again (all produced and pulled)."""

    def wait(self, seconds: float) -> None:
        """Let time pass while nothing can be drawn (a source may supervise meanwhile, and
        raise to end the run)."""

    def status(self) -> dict[str, Any]:
        """JSON-able facts merged into the ``online`` events (stream fill, producers…)."""


@dataclass
class OnlineConfig:
    """How the stream is buffered and how long an epoch-equivalent is."""

    steps_per_epoch: int
    buffer_size: int
    buffer_policy: str = "reservoir"
    min_fill: int = 1
    max_seen: int | None = None
    pull_max: int = 256

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 1 or self.pull_max < 1:
            raise ValueError("steps_per_epoch and pull_max must be at least 1")
        # The buffer checks capacity, min_fill, policy and max_seen itself.
        make_buffer(self.buffer_policy, self.buffer_size, self.min_fill, None, self.max_seen)


@dataclass
class OnlineTrainResult:
    """Outcome of :func:`train_online`. ``history`` holds the ``epoch`` events; the
    validation numbers are the last epoch's (one-step relative L2 on the held-out set)."""

    model: nn.Module
    history: list[dict[str, Any]]
    val_rel_l2: float
    persistence_rel_l2: float
    steps: int
    total_steps: int
    ended_early: bool
    resumed_from_epoch: int
    stream: dict[str, Any]
    notes: list[str] = field(default_factory=list)


class _Rates:
    """Windows received and samples consumed per second, since the previous reading."""

    def __init__(self, received: int, consumed: int):
        self.at = time.perf_counter()
        self.received = received
        self.consumed = consumed

    def read(self, received: int, consumed: int) -> tuple[float, float]:
        now = time.perf_counter()
        dt = max(now - self.at, 1e-9)
        rates = (received - self.received) / dt, (consumed - self.consumed) / dt
        self.at, self.received, self.consumed = now, received, consumed
        return rates


def train_online(
    model: nn.Module,
    source: WindowSource,
    validation: torch.Tensor,
    config: TrainConfig,
    online: OnlineConfig,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device | None = None,
    checkpoint_dir: str | Path | None = None,
) -> OnlineTrainResult:
    """Trains ``model`` on windows from ``source``; validates on ``validation``
    ``(n_traj, n_time, C, *space)``, trajectories never trained on.

    Events (``step`` = optimiser steps done; epochs are epoch-equivalents of
    ``online.steps_per_epoch`` steps):

    * ``{"type": "resumed", "epoch", "step"}`` when resuming from a checkpoint;
    * ``train`` events as :func:`models.training.train` reports them;
    * ``{"type": "online", "step", "stage", "time", "received", "received_per_s", "consumed",
      "consumed_per_s", "buffer_fill", "buffer_size", "unique_trajectories",
      "complete_trajectories", "duplicates", …source.status()}`` with each train event, and
      every couple of seconds while waiting (``stage`` "filling" before the first batch);
    * ``{"type": "epoch", "epoch", "epochs", "train_loss", "val_rel_l2",
      "persistence_rel_l2", "unique_trajectories", "consumed"}`` after each epoch-equivalent.

    ``should_stop()`` is polled before every step and while waiting; True raises
    :class:`models.training.TrainingStopped` (the last checkpoint stays).
    """
    contract = model.contract
    if validation.ndim != 3 + contract.dims or validation.shape[2] != contract.channels:
        raise ValueError(
            f"the model expects trajectories (n_traj, n_time, {contract.channels}, "
            f"<{contract.dims} spatial axes>), got {tuple(validation.shape)}"
        )
    validation = validation.detach().float()
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    report = on_event or (lambda _event: None)
    stop = should_stop or (lambda: False)
    loss_fn = make_loss(config.loss, config.length)
    history, targets = contract.history, config.unroll * contract.out_steps
    window = history + targets
    n_time = validation.shape[1]
    ledger = StreamLedger(windows_per_trajectory=n_time - window + 1)
    val_windows = Windows(validation, list(range(validation.shape[0])), history, contract.out_steps)

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    buffer = make_buffer(
        online.buffer_policy, online.buffer_size, online.min_fill, generator, online.max_seen
    )
    total_steps = config.epochs * online.steps_per_epoch
    every = event_interval(config.events_every, total_steps)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler, per_step = make_scheduler(config, optimizer, online.steps_per_epoch)

    state = TrainingState(epoch=0, step=0)
    counters = {"consumed": 0, "evicted": 0}
    normalised = False
    if checkpoint_dir is not None:
        loaded = load_training_state(checkpoint_dir, model, optimizer, scheduler, generator)
        if loaded is not None:
            state = loaded
            ledger = StreamLedger.from_dict(state.extra["ledger"])
            counters.update(state.extra.get("counters", {}))
            normalised = True  # the statistics are buffers of the restored model
            report({"type": "resumed", "epoch": state.epoch, "step": state.step})
    resumed_from = state.epoch
    source.bind(ledger)

    pending: deque[torch.Tensor] = deque()  # pulled, but the buffer did not take them yet
    rates = _Rates(ledger.received, counters["consumed"])
    last_waiting_event = 0.0

    def refill() -> None:
        while pending and buffer.put(pending[0]):
            pending.popleft()
        room = buffer.room()
        if pending or room <= 0:
            return
        for trajectory, start, frames in source.pull(min(room, online.pull_max)):
            if tuple(frames.shape) != (window, *validation.shape[2:]):
                raise ValueError(
                    f"a streamed window has shape {tuple(frames.shape)}; the model needs "
                    f"{(window, *validation.shape[2:])}"
                )
            if ledger.accept(trajectory, start) and not buffer.put(frames):
                pending.append(frames)

    def online_event(stage: str) -> dict[str, Any]:
        received_per_s, consumed_per_s = rates.read(ledger.received, counters["consumed"])
        return {
            "type": "online",
            "stage": stage,
            "time": time.time(),  # wall clock: the rates' time axis, across resumes
            "step": state.step,
            "total_steps": total_steps,
            "received": ledger.received,
            "received_per_s": received_per_s,
            "consumed": counters["consumed"],
            "consumed_per_s": consumed_per_s,
            "buffer_fill": len(buffer),
            "buffer_size": buffer.capacity,
            "buffer_policy": buffer.policy,
            "min_fill": buffer.min_fill,
            "unique_trajectories": ledger.unique_trajectories,
            "complete_trajectories": ledger.complete_trajectories,
            "duplicates": ledger.duplicates,
            "evicted": counters["evicted"] + buffer.evicted,
            **source.status(),
        }

    def wait(stage: str) -> None:
        nonlocal last_waiting_event
        if time.monotonic() - last_waiting_event > WAITING_EVENT_S:
            last_waiting_event = time.monotonic()
            report(online_event(stage))
        source.wait(0.05)

    def end_epoch(epoch_loss: float, epoch_samples: int) -> None:
        val_rel_l2, persistence_rel_l2 = evaluate(model, val_windows, config.batch_size, device)
        event = {
            "type": "epoch",
            "epoch": state.epoch + 1,
            "epochs": config.epochs,
            "step": state.step,
            "train_loss": epoch_loss / max(epoch_samples, 1),
            "val_rel_l2": val_rel_l2,
            "persistence_rel_l2": persistence_rel_l2,
            "unique_trajectories": ledger.unique_trajectories,
            "consumed": counters["consumed"],
        }
        state.history.append(event)
        state.epoch += 1
        state.extra = {
            "ledger": ledger.to_dict(),
            "counters": {**counters, "evicted": counters["evicted"] + buffer.evicted},
        }
        if checkpoint_dir is not None:
            save_training_state(checkpoint_dir, state, model, optimizer, scheduler, generator)
        report(dict(event))

    epoch_loss, epoch_samples = 0.0, 0
    window_loss, window_samples = 0.0, 0
    window_start = time.perf_counter()
    step_seconds: list[float] = []
    ended_early = False
    while state.step < total_steps:
        if stop():
            model.eval()
            raise TrainingStopped(state.epoch + 1, state.step)
        refill()
        draining = source.finished() and not pending
        if not normalised:
            if not buffer.ready(draining):
                if draining:
                    raise OnlineStreamEnded("the producers finished without sending a window")
                wait("filling")
                continue
            frames = torch.stack(buffer.items())
            model.set_normalization(*channel_statistics(frames, list(range(frames.shape[0]))))
            normalised = True
        batch = buffer.sample(config.batch_size, draining)
        if batch is None:
            if draining and len(buffer) == 0:
                ended_early = True
                break
            wait("waiting")
            continue
        model.train()
        frames = torch.stack(batch).to(device, non_blocking=True)
        x, y = frames[:, :history], frames[:, history:]
        with _autocast(device, config.amp):
            pred = unrolled_predictions(model, x, config.unroll, config.push_forward)
        loss = _frames_loss(loss_fn, pred.float(), y[:, -pred.shape[1] :])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if per_step:
            scheduler.step()
        state.step += 1
        counters["consumed"] += len(batch)
        value = loss.item()
        epoch_loss += value * len(batch)
        epoch_samples += len(batch)
        window_loss += value
        window_samples += len(batch)

        if state.step % every == 0:
            elapsed = time.perf_counter() - window_start
            step_seconds.append(elapsed / every)
            recent = sum(step_seconds[-5:]) / len(step_seconds[-5:])
            report(
                {
                    "type": "train",
                    "epoch": state.epoch + 1,
                    "step": state.step,
                    "total_steps": total_steps,
                    "train_loss": window_loss / every,
                    "lr": optimizer.param_groups[0]["lr"],
                    "samples_per_s": window_samples / elapsed if elapsed > 0 else 0.0,
                    "eta_s": recent * (total_steps - state.step),
                }
            )
            report(online_event("training"))
            window_loss, window_samples = 0.0, 0
            window_start = time.perf_counter()
        if state.step % online.steps_per_epoch == 0:
            if not per_step:
                scheduler.step()
            eval_start = time.perf_counter()
            end_epoch(epoch_loss, epoch_samples)
            epoch_loss, epoch_samples = 0.0, 0
            window_start += time.perf_counter() - eval_start  # validation is not throughput

    notes = []
    if ended_early:
        notes.append(
            f"the stream ended after {state.step} of {total_steps} steps: the producers had "
            f"finished and the {buffer.policy} buffer had drawn every window as often as it may"
        )
        if epoch_samples:
            end_epoch(epoch_loss, epoch_samples)
    model.eval()
    if state.history:
        val_rel_l2 = state.history[-1]["val_rel_l2"]
        persistence_rel_l2 = state.history[-1]["persistence_rel_l2"]
    else:
        val_rel_l2, persistence_rel_l2 = evaluate(model, val_windows, config.batch_size, device)
    final = online_event("done")
    report(final)
    return OnlineTrainResult(
        model=model,
        history=state.history,
        val_rel_l2=val_rel_l2,
        persistence_rel_l2=persistence_rel_l2,
        steps=state.step,
        total_steps=total_steps,
        ended_early=ended_early,
        resumed_from_epoch=resumed_from,
        stream={k: v for k, v in final.items() if k not in ("type", "stage", "time")},
        notes=notes,
    )
