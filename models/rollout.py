"""Autoregressive rollout: feed each prediction back as the next input."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def autoregressive_rollout(
    model: nn.Module, window: torch.Tensor, steps: int
) -> Iterator[torch.Tensor]:
    """Yields the ``steps`` frames that follow ``window``, one at a time, each ``(B, C, *space)``.

    ``window`` is ``(B, history, C, *space)``: the model's contract's ``history`` frames
    (for a one-step model, ``x0[:, None]``). A model that predicts ``out_steps`` frames per
    call is called once per ``out_steps`` frames, and each call sees the last ``history``
    frames (its own predictions included). A generator, so a caller (a worker writing
    frames to disk, a UI streaming them) handles each frame as soon as it exists and can
    stop early. The model is put in eval mode; ``window`` moves to the model's device.
    Gradients are off inside the generator only.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    contract = getattr(model, "contract", None)
    if contract is not None and (
        window.ndim != 3 + contract.dims or window.shape[1] != contract.history
    ):
        raise ValueError(
            f"the model needs a window of {contract.history} frame(s) shaped (B, "
            f"{contract.history}, {contract.channels}, <{contract.dims} spatial axes>), got "
            f"{tuple(window.shape)}"
        )
    return _rollout(model, window, steps)


@torch.no_grad()
def _rollout(model: nn.Module, window: torch.Tensor, steps: int) -> Iterator[torch.Tensor]:
    model.eval()
    param = next(model.parameters(), None)
    if param is not None:
        window = window.to(param.device)
    history = window.shape[1]
    produced = 0
    while produced < steps:
        out = model(window)
        if out.shape[0] != window.shape[0] or out.shape[2:] != window.shape[2:]:
            raise ValueError(
                f"model maps {tuple(window.shape)} to {tuple(out.shape)}; an autoregressive "
                "rollout needs frames shaped like its input frames"
            )
        for k in range(out.shape[1]):
            if produced == steps:
                return
            produced += 1
            yield out[:, k]
        window = torch.cat([window, out], dim=1)[:, -history:]
