"""Scalar diagnostics of 2D vorticity fields, one value per batch item.

⟨·⟩ is the domain average, the mean over grid points.
"""

from __future__ import annotations

import torch

from physics.spectral import velocity_from_vorticity


def kinetic_energy(w: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """½⟨u² + v²⟩ of vorticity fields w (B, 1, n, n), shape (B,), in physical space."""
    u, v = velocity_from_vorticity(w, length)
    return 0.5 * (u**2 + v**2).flatten(1).sum(-1) / (w.shape[-1] * w.shape[-2])


def enstrophy(w: torch.Tensor) -> torch.Tensor:
    """½⟨ω²⟩ of vorticity fields w (B, 1, n, n), shape (B,)."""
    return 0.5 * (w**2).flatten(1).sum(-1) / (w.shape[-1] * w.shape[-2])


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖₂ / ‖b‖₂ per batch item, shape (B,); b is the reference."""
    if a.shape != b.shape:
        raise ValueError(f"Cannot compare fields shaped {tuple(a.shape)} and {tuple(b.shape)}.")
    return torch.linalg.vector_norm((a - b).flatten(1), dim=-1) / torch.linalg.vector_norm(
        b.flatten(1), dim=-1
    )
