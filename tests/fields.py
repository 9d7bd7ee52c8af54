"""Small exact fields the physics tests share."""

from __future__ import annotations

import math

import torch

from physics.grid import Grid2D

F64 = torch.float64


def mode(n: int, kx: int, ky: int, length: float = 1.0, amplitude: float = 1.0) -> torch.Tensor:
    """A cos(κ·x), κ = 2π/L·(kx, ky), shaped (1, 1, n, n)."""
    x, y = Grid2D(n, length).coordinates(dtype=F64)
    p = 2 * math.pi / length
    return amplitude * torch.cos(p * (kx * x + ky * y))[None, None]


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
