"""Training losses on fields shaped ``(batch, channel, *space)``: relative Lᵖ, and the
relative Sobolev norms H¹ and H⁻¹ of the diagnostics library (:mod:`physics.norms`, through
Parseval).

Each loss is a mean over samples of a per-sample relative error, so it is independent of the
field's units and of the grid size. The trainer folds a time axis into the batch, so in a
multi-step loss every frame is one sample and the per-frame errors are averaged.

H⁻¹ divides each mode by 1 + |κ|²: it rewards getting the large scales right and forgives
small-scale phase errors, which is what the Spectral-Refiner fine-tuning uses. H¹ does the
opposite. Both are defined for periodic square 2D fields on a box of side ``length``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from physics import norms

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: name → what the UI and the job parameters call it.
LOSS_LABELS = {
    "rel_l2": "relative L²",
    "rel_l1": "relative L¹",
    "h1": "relative H¹",
    "h-1": "relative H⁻¹",
}


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")


def relative_lp(pred: torch.Tensor, target: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Mean over the batch of ``‖pred − target‖_p / ‖target‖_p``.

    Norms are taken per sample over all non-batch dims (channels and space together). A
    target that is identically zero would divide by zero; its norm is floored at the dtype's
    ``tiny``. Returns a 0-d tensor (differentiable).
    """
    _check(pred, target)
    diff = torch.linalg.vector_norm((pred - target).flatten(1), ord=p, dim=1)
    scale = torch.linalg.vector_norm(target.flatten(1), ord=p, dim=1)
    return (diff / scale.clamp_min(torch.finfo(target.dtype).tiny)).mean()


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`relative_lp` with p = 2 (the default training loss)."""
    return relative_lp(pred, target, 2.0)


def relative_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`relative_lp` with p = 1."""
    return relative_lp(pred, target, 1.0)


def _sobolev_loss(s: float, length: float) -> Loss:
    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check(pred, target)
        if pred.ndim < 4 or pred.shape[-1] != pred.shape[-2]:
            raise ValueError(
                "the H¹ and H⁻¹ losses are defined for periodic square 2D fields "
                f"(batch, channel, n, n); got {tuple(pred.shape)}"
            )
        # Spectral norms in float32 at least: half-precision FFTs are restricted.
        dtype = torch.promote_types(pred.dtype, torch.float32)
        return norms.relative_sobolev(pred.to(dtype), target.to(dtype), s, length).mean()

    return loss


def relative_h1(pred: torch.Tensor, target: torch.Tensor, length: float = 1.0) -> torch.Tensor:
    """Mean relative H¹ error, ``‖pred − target‖_{H¹} / ‖target‖_{H¹}`` per sample."""
    return _sobolev_loss(1.0, length)(pred, target)


def relative_h_minus1(
    pred: torch.Tensor, target: torch.Tensor, length: float = 1.0
) -> torch.Tensor:
    """Mean relative H⁻¹ error (negative Sobolev), ``‖pred − target‖_{H⁻¹} / ‖target‖_{H⁻¹}``
    per sample, with ‖f‖²_{H⁻¹} = Σ_κ |f̂(κ)|² / (1 + |κ|²) / n⁴ (Parseval)."""
    return _sobolev_loss(-1.0, length)(pred, target)


def make_loss(name: str, length: float = 1.0) -> Loss:
    """The loss called ``name`` (a key of :data:`LOSS_LABELS`); ``length`` is the periodic
    box's side, which sets the wavenumbers of the Sobolev losses."""
    if name == "rel_l2":
        return relative_l2
    if name == "rel_l1":
        return relative_l1
    if name == "h1":
        return _sobolev_loss(1.0, length)
    if name == "h-1":
        return _sobolev_loss(-1.0, length)
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSS_LABELS)}")
