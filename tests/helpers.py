"""Small helpers shared by the model tests."""

from __future__ import annotations

import torch


def randomise(model: torch.nn.Module, seed: int = 1) -> None:
    """Overwrites every parameter of ``model`` with ``0.3·N(0, 1)`` draws from a generator
    seeded with ``seed``, so outputs depend on every weight (a zero-initialised last layer
    would otherwise hide the rest of the network). The global RNG is left alone."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
