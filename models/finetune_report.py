"""Did a fine-tune help? The base model and the fine-tuned one scored on the same held-out
trajectories, before and after, beside persistence.

Three numbers per model, each a mean over held-out data (trajectories the fine-tune never
trained on: the validation part of its split, :func:`held_out_split`):

* one-step relative L²: ``‖ŷ − y‖ / ‖y‖`` per predicted frame of one model call, over every
  window of ``history`` frames in and ``out_steps`` frames out (what ``val_rel_l2`` is);
* one-step relative H⁻¹: the same frames in ``‖f‖²_{H⁻¹} = Σ_κ |f̂(κ)|² / (1 + |κ|²)``
  (``physics.norms``), the norm Spectral-Refiner fine-tunes under: it weighs the large
  scales, so a fine-tune under it should lower it first;
* the autoregressive rollout's relative L² at several horizons h (steps after the first
  window), ``models.rollout_skill``; None past the step a divergence guard stopped it.

Persistence (the next frames equal the last input frame) is scored on the same frames: a
fine-tune that lowers the error but stays above persistence did not make a useful model.

Everything returned is plain JSON (floats, ints, lists, None), so a worker can store it in
a model's metrics as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from models.rollout_skill import default_horizons, mean_square, rollout_skill
from models.windows import Windows, split_trajectories
from physics import norms


def held_out_split(n_traj: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) trajectory indices exactly as ``models.training.train`` splits them
    for a run with this ``val_fraction`` and ``seed`` (a generator seeded with ``seed``, whose
    first draw is the split), so the held-out set is known before training starts. When
    nothing can be held out, both lists are the same (the caller must not report on them)."""
    generator = torch.Generator().manual_seed(seed)
    return split_trajectories(n_traj, val_fraction, generator)


@dataclass
class Errors:
    """One predictor's errors on the held-out data: ``rollout_rel_l2[i]`` at
    ``horizons[i]`` of the report (None past ``stopped_at``, the step a guard stopped it)."""

    one_step_rel_l2: float
    one_step_rel_h_minus1: float | None
    rollout_rel_l2: list[float | None]
    stopped_at: int | None = None


def change(before: float | None, after: float | None) -> float | None:
    """Relative change ``(after − before) / before`` (−0.61 is 61 % lower); None when either
    is unknown or ``before`` is zero or not finite."""
    if before is None or after is None or not math.isfinite(before) or before == 0:
        return None
    return (after - before) / before


@dataclass
class FinetuneReport:
    """Before (the base model), after (the fine-tuned one) and persistence on
    ``trajectories`` (indices into the fine-tune's dataset), at rollout ``horizons`` (steps;
    ``t`` in time units when the interval is known)."""

    trajectories: list[int]
    horizons: list[int]
    t: list[float] | None
    before: Errors
    after: Errors
    persistence: Errors

    def changes(self) -> dict[str, Any]:
        """Relative change of every number, after against before (negative: lower)."""
        b, a = self.before, self.after
        return {
            "one_step_rel_l2": change(b.one_step_rel_l2, a.one_step_rel_l2),
            "one_step_rel_h_minus1": change(b.one_step_rel_h_minus1, a.one_step_rel_h_minus1),
            "rollout_rel_l2": [
                change(x, y) for x, y in zip(b.rollout_rel_l2, a.rollout_rel_l2, strict=True)
            ],
        }

    def improved(self) -> bool:
        """Lower one-step L² and lower rollout L² at the longest horizon both reached."""
        one_step = self.after.one_step_rel_l2 < self.before.one_step_rel_l2
        pairs = [
            (x, y)
            for x, y in zip(self.before.rollout_rel_l2, self.after.rollout_rel_l2, strict=True)
            if x is not None and y is not None
        ]
        rollout = not pairs or pairs[-1][1] < pairs[-1][0]
        rollout = rollout and (self.after.stopped_at is None or self.before.stopped_at is not None)
        return one_step and rollout

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "changes": self.changes(),
            "improved": self.improved(),
        }


@torch.no_grad()
def one_step_errors(
    predict: Callable[[torch.Tensor], torch.Tensor],
    windows: Windows,
    batch_size: int,
    device: torch.device,
    length: float,
) -> tuple[float, float | None]:
    """Mean relative L² and H⁻¹ (None off square grids) over every predicted frame of
    ``predict`` (a model, or persistence) on every window; each frame weighs the same."""
    l2_sum, h_sum, frames = 0.0, 0.0, 0
    square = windows.data.ndim == 5 and windows.data.shape[-1] == windows.data.shape[-2]
    for start in range(0, len(windows), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(windows)))
        x, y = windows.batch(rows, device)
        pred = predict(x).to(torch.float64).flatten(0, 1)
        truth = y.to(torch.float64).flatten(0, 1)
        l2_sum += float(norms.relative_l2(pred, truth).sum())
        if square:
            h_sum += float(norms.relative_h_minus1(pred, truth, length).sum())
        frames += truth.shape[0]
    return l2_sum / frames, (h_sum / frames if square else None)


def _persistence(x: torch.Tensor, out_steps: int) -> torch.Tensor:
    return x[:, -1:].expand(-1, out_steps, *x.shape[2:])


def _rollout_errors(
    model: nn.Module, data: torch.Tensor, horizons: list[int], energy, divergence_factor: float
) -> tuple[list[float | None], int | None]:
    skill = rollout_skill(
        model, data, horizons=horizons, energy=energy, divergence_factor=divergence_factor
    )
    reached = dict(zip(skill["horizons"], skill["rel_l2"], strict=True))
    return [reached.get(h) for h in horizons], skill["stopped_at"]


@torch.no_grad()
def persistence_rollout(data: torch.Tensor, history: int, horizons: list[int]) -> list[float]:
    """Persistence's relative L² at each horizon: the window's last frame held fixed."""
    start = data[:, history - 1].double()
    return [
        float(norms.relative_l2(start, data[:, history - 1 + h].double()).mean()) for h in horizons
    ]


def model_errors(
    model: nn.Module,
    data: torch.Tensor,
    horizons: list[int],
    *,
    length: float = 1.0,
    batch_size: int = 16,
    energy: Callable[[torch.Tensor], torch.Tensor] = mean_square,
    divergence_factor: float = 10.0,
) -> Errors:
    """One model's :class:`Errors` on ``data`` (B, T, C, *space), every trajectory of it."""
    contract = model.contract
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    windows = Windows(data, list(range(data.shape[0])), contract.history, contract.out_steps)
    model.eval()
    l2, h = one_step_errors(model, windows, batch_size, device, length)
    rollout, stopped = _rollout_errors(model, data, horizons, energy, divergence_factor)
    return Errors(l2, h, rollout, stopped)


def persistence_errors(
    data: torch.Tensor,
    history: int,
    out_steps: int,
    horizons: list[int],
    *,
    length: float = 1.0,
    batch_size: int = 16,
) -> Errors:
    """Persistence's :class:`Errors` on the same windows and horizons as a model's."""
    windows = Windows(data, list(range(data.shape[0])), history, out_steps)
    l2, h = one_step_errors(
        lambda x: _persistence(x, out_steps), windows, batch_size, torch.device("cpu"), length
    )
    return Errors(l2, h, persistence_rollout(data, history, horizons))


def report_horizons(n_time: int, history: int, horizons: Sequence[int] | None = None) -> list[int]:
    """The horizons a report scores: ``horizons`` within the ``n_time − history`` steps a
    trajectory holds after its first window (default ``rollout_skill.default_horizons``).
    ValueError when none fits."""
    available = n_time - history
    if available < 1:
        raise ValueError(
            f"a before/after report needs more than {history} frame(s) per trajectory; got {n_time}"
        )
    chosen = sorted({int(h) for h in (horizons or default_horizons(available)) if h >= 1})
    chosen = [h for h in chosen if h <= available]
    if not chosen:
        raise ValueError(f"no horizon within the {available} steps the trajectories hold")
    return chosen


def finetune_report(
    base: nn.Module,
    tuned: nn.Module,
    trajectories: torch.Tensor,
    held_out: Sequence[int],
    *,
    horizons: Sequence[int] | None = None,
    interval: float | None = None,
    length: float = 1.0,
    batch_size: int = 16,
    energy: Callable[[torch.Tensor], torch.Tensor] = mean_square,
    before: Errors | None = None,
) -> FinetuneReport:
    """``base`` against ``tuned`` on the ``held_out`` trajectories of ``trajectories``
    (n_traj, T, C, *space), beside persistence. ``before``: the base's errors already
    measured on the same trajectories and horizons (a worker measures them before the
    fine-tune starts), so the base is not scored twice. Both models need the same history."""
    if base.contract.history != tuned.contract.history:
        raise ValueError(
            f"the base reads {base.contract.history} frame(s), the fine-tuned model "
            f"{tuned.contract.history}: their rollouts start from different windows"
        )
    held = [int(i) for i in held_out]
    if not held:
        raise ValueError("no held-out trajectories to report on")
    data = trajectories[held].to(torch.float32)
    history = base.contract.history
    chosen = report_horizons(data.shape[1], history, horizons)
    kwargs = {"length": length, "batch_size": batch_size}
    if before is None:
        before = model_errors(base, data, chosen, energy=energy, **kwargs)
    elif len(before.rollout_rel_l2) != len(chosen):
        raise ValueError("the base's errors were measured at other horizons")
    after = model_errors(tuned, data, chosen, energy=energy, **kwargs)
    persistence = persistence_errors(data, history, base.contract.out_steps, chosen, **kwargs)
    return FinetuneReport(
        trajectories=held,
        horizons=chosen,
        t=[h * interval for h in chosen] if interval is not None else None,
        before=before,
        after=after,
        persistence=persistence,
    )
