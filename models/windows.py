"""Training samples cut from trajectories: windows of consecutive frames, split by trajectory.

A model with contract (history h, out_steps s) trained with ``unroll`` autoregressive calls
needs ``h + unroll·s`` consecutive frames per sample: ``h`` in, the rest as targets. Windows
are index pairs (trajectory, first frame); frames are gathered per batch, so no copy of the
dataset is made.
"""

from __future__ import annotations

import torch

from models.base import MIN_STD


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


class Windows:
    """All windows of ``history`` input frames followed by ``targets`` target frames inside
    the given trajectories of ``data`` (shaped ``(n_traj, n_time, C, *space)``)."""

    def __init__(self, data: torch.Tensor, traj_idx: list[int], history: int, targets: int):
        n_time = data.shape[1]
        per_traj = n_time - history - targets + 1
        if per_traj < 1:
            raise ValueError(
                f"trajectories of {n_time} frames cannot hold a window of {history} input and "
                f"{targets} target frames; use longer trajectories or fewer steps"
            )
        self.data = data
        self.history = history
        self.targets = targets
        self.traj = torch.tensor(traj_idx, dtype=torch.long).repeat_interleave(per_traj)
        self.start = torch.arange(per_traj).repeat(len(traj_idx))

    def __len__(self) -> int:
        return self.traj.numel()

    def batch(self, rows: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: ``(B, history, C, *space)`` inputs and ``(B, targets, C, *space)``."""
        span = torch.arange(self.history + self.targets)
        frames = self.data[self.traj[rows, None], self.start[rows, None] + span]
        frames = frames.to(device, non_blocking=True)
        return frames[:, : self.history], frames[:, self.history :]


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
    std = torch.where(std > MIN_STD, std, torch.ones_like(std))
    return mean.float(), std.float()
