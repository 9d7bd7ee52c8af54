"""Implicit Fourier neural operator (You, Yu, Silling & D'Elia, 2022) in two dimensions.

An FNO whose Fourier layers all share one set of weights: the hidden state follows the
forward-Euler discretisation, with step ``1/L``, of ``dh/ds = σ(K h + W h + b)`` for
``s ∈ [0, 1]``. Depth (``L``) then costs compute but no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from models.base import Contract
from models.config import OperatorConfig, param
from models.fno import (
    FourierOperator,
    add_grid_2d_field,
    channels_field,
    check_space,
    ends_parameter_count,
    history_field,
    modes_field,
    residual_field,
    width_field,
)
from models.layers import GridEmbedding2d, SpectralConv2d, pointwise


@dataclass
class IFNOConfig(OperatorConfig):
    """Hyper-parameters of :class:`IFNO`; a grid needs ``H, W ≥ 2·modes``."""

    title: ClassVar[str] = "Implicit Fourier neural operator (2D)"

    channels: int = channels_field(1, "1 for vorticity")
    history: int = history_field()
    width: int = width_field(32, "the shared Fourier layer")
    modes: int = modes_field(12, "the spectral convolution")
    n_iterations: int = param(
        8,
        "How many times the one shared Fourier layer is applied (L), each time adding 1/L "
        "of its output to the hidden state. More iterations give a deeper network at the "
        "same parameter count, and cost proportionally more time.",
        min=1,
    )
    add_grid: bool = add_grid_2d_field()
    residual: bool = residual_field()

    def contract(self) -> Contract:
        return Contract(dims=2, channels=self.channels, history=self.history, out_steps=1)

    def check_grid(self, space: tuple[int, ...]) -> None:
        """``ValueError`` unless an ``(H, W)`` grid holds ``2·modes`` points per axis."""
        height, width = check_space("IFNO", 2, space)
        need = 2 * self.modes
        if min(height, width) < need:
            raise ValueError(
                f"a {height}×{width} grid is too coarse for IFNO with {self.modes} Fourier "
                f"modes: each axis needs at least 2·modes = {need} points; use fewer modes "
                "or a finer grid"
            )

    def parameter_count(self) -> int:
        """The number of parameters of ``IFNO(self)`` (independent of ``n_iterations``)."""
        w, m = self.width, self.modes
        return ends_parameter_count(self, 2) + 4 * w * w * m * m + w * w + w


class IFNO(FourierOperator):
    """Implicit FNO: one weight-shared Fourier layer iterated ``L`` times.

    For ``x`` of shape ``(B, T, C, H, W)`` (``T = history``) in physical units:

    1. normalise per channel, stack the frames into ``T·C`` channels, append the grid
       coordinates (``add_grid``), lift pointwise to ``width`` channels: ``h₀``;
    2. ``L = n_iterations`` times, with the same ``K``, ``W``, ``b``::

           h_{l+1} = h_l + σ(K h_l + W h_l + b) / L

       ``K`` a :class:`~models.layers.SpectralConv2d` on ``modes × modes``, ``W h + b``
       pointwise, σ = GELU;
    3. project: pointwise ``width → 4·width``, GELU, pointwise ``4·width → C``;
    4. ``residual``: ``y = x[:, −1] + in_std · z``; otherwise ``y = in_mean + in_std · z``
       (the last layer starts at zero when ``residual``: an untrained model is persistence).

    Parameter count, with ``c = T·C + 2·add_grid``, ``w = width``, ``m = modes``,
    ``h = 4·w``, independent of ``L``::

        (c·w + w) + (4·w²·m² + w² + w) + (w·h + h) + (h·C + C)

    i.e. an :class:`~models.fno.FNO2d` with one layer (``IFNOConfig.parameter_count()``).
    Shapes: ``(B, T, C, H, W) → (B, 1, C, H, W)`` for ``H, W ≥ 2·modes``.
    """

    def __init__(self, config: IFNOConfig | None = None):
        config = config or IFNOConfig()
        super().__init__(config)
        w = config.width
        self.build_lift(GridEmbedding2d(), dims=2)
        self.spectral = SpectralConv2d(w, w, config.modes, config.modes)
        self.pointwise = pointwise(w, w)
        self.build_projection(dims=2)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        h = self.lifted(z)
        step = 1.0 / self.config.n_iterations
        for _ in range(self.config.n_iterations):
            h = h + step * F.gelu(self.spectral(h) + self.pointwise(h))
        return self.projected(h)
