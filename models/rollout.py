"""Autoregressive rollout: feed each prediction back as the next input."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def autoregressive_rollout(
    model: nn.Module, x0: torch.Tensor, steps: int
) -> Iterator[torch.Tensor]:
    """Yields ``steps`` predicted frames ``x1, x2, …``, each ``(B, C, H, W)``.

    A generator, so a caller (a worker writing frames to disk, a UI streaming them) can
    handle each frame as soon as it exists and stop early. The model is put in eval mode
    (and left there); ``x0`` is moved to the model's device. Gradients are off inside the
    generator only: ``torch.no_grad`` as a decorator re-enters around each resumption, so
    the caller's code between frames keeps its own grad mode.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if x0.ndim != 4:
        raise ValueError(f"x0 must be (B, C, H, W), got {tuple(x0.shape)}")
    return _rollout(model, x0, steps)


@torch.no_grad()
def _rollout(model: nn.Module, x0: torch.Tensor, steps: int) -> Iterator[torch.Tensor]:
    model.eval()
    param = next(model.parameters(), None)
    x = x0.to(param.device) if param is not None else x0
    for _ in range(steps):
        y = model(x)
        if y.shape != x.shape:
            raise ValueError(
                f"model maps {tuple(x.shape)} to {tuple(y.shape)}; an autoregressive "
                "rollout needs output shaped like the input"
            )
        x = y
        yield x
