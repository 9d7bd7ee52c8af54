"""Losses and error measures on fields shaped ``(batch, channel, *space)``."""

from __future__ import annotations

import torch


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``‖pred − target‖₂ / ‖target‖₂``.

    Norms are taken per sample over all non-batch dims (channels and space together), so
    the measure is independent of the field's units and of the grid size. A target that is
    identically zero would divide by zero; its norm is floored at the dtype's ``tiny``.
    Returns a 0-d tensor (differentiable; used as the training loss).
    """
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    diff = (pred - target).flatten(1).norm(dim=1)
    scale = target.flatten(1).norm(dim=1).clamp_min(torch.finfo(target.dtype).tiny)
    return (diff / scale).mean()
