"""Implicit Fourier neural operator (You, Yu, Silling & D'Elia, 2022) in two and three
dimensions.

An FNO whose Fourier layers all share one set of weights: the hidden state follows the
forward-Euler discretisation, with step ``1/L``, of ``dh/ds = σ(K h + W h + b)`` for
``s ∈ [0, 1]``. Depth (``L``) then costs compute but no parameters.

``IFNO`` works on 2D fields ``(H, W)``; ``IFNO3d`` on channel-flow velocity ``(X, Y, Z)``,
``Y`` wall-normal, with the domain padding, coordinate channels, config fields and grid
rule of :class:`~models.fno.FNO3d` (the IFNO baseline of LESnets and of the IFactFormer-m
channel-flow study).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Contract
from models.config import OperatorConfig, param
from models.fno import (
    FourierOperator,
    add_grid_2d_field,
    add_grid_3d_field,
    channel_grid,
    channels_field,
    check_channel_grid,
    check_space,
    ends_parameter_count,
    fourier_layer_3d_parameter_count,
    history_field,
    modes_field,
    modes_x_field,
    modes_y_field,
    modes_z_field,
    pad_wall_normal,
    pad_y_field,
    residual_field,
    width_field,
)
from models.layers import GridEmbedding2d, SpectralConv2d, SpectralConv3d, pointwise


def n_iterations_field(default: int) -> Any:
    return param(
        default,
        "How many times the one shared Fourier layer is applied (L), each time adding 1/L "
        "of its output to the hidden state. More iterations give a deeper network at the "
        "same parameter count, and cost proportionally more time.",
        min=1,
    )


def implicit_iterations(
    h: torch.Tensor, spectral: nn.Module, local: nn.Module, n_iterations: int
) -> torch.Tensor:
    """``n_iterations`` forward-Euler steps ``h ← h + σ(K h + W h + b)/L`` with the same
    spectral ``K`` and pointwise ``W h + b`` each time (``L = n_iterations``, σ = GELU)."""
    step = 1.0 / n_iterations
    for _ in range(n_iterations):
        h = h + step * F.gelu(spectral(h) + local(h))
    return h


@dataclass
class IFNOConfig(OperatorConfig):
    """Hyper-parameters of :class:`IFNO`; a grid needs ``H, W ≥ 2·modes``."""

    title: ClassVar[str] = "Implicit Fourier neural operator (2D)"

    channels: int = channels_field(1, "1 for vorticity")
    history: int = history_field()
    width: int = width_field(32, "the shared Fourier layer")
    modes: int = modes_field(12, "the spectral convolution")
    n_iterations: int = n_iterations_field(8)
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
        h = implicit_iterations(
            self.lifted(z), self.spectral, self.pointwise, self.config.n_iterations
        )
        return self.projected(h)


@dataclass
class IFNO3dConfig(OperatorConfig):
    """Hyper-parameters of :class:`IFNO3d` on ``(X, Y, Z)`` grids, ``Y`` wall-normal.

    The fields and the grid rule are :class:`~models.fno.FNO3dConfig`'s, with
    ``n_iterations`` (L) in place of ``n_layers``: a grid needs ``X ≥ 2·modes_x``,
    ``Y + pad_y ≥ 2·modes_y``, ``Z ≥ 2·modes_z`` (:meth:`check_grid`).
    """

    title: ClassVar[str] = "Implicit Fourier neural operator (3D)"

    channels: int = channels_field(3, "3 for velocity u, v, w")
    history: int = history_field()
    width: int = width_field(20, "the shared Fourier layer")
    modes_x: int = modes_x_field(8)
    modes_y: int = modes_y_field(8)
    modes_z: int = modes_z_field(8)
    n_iterations: int = n_iterations_field(8)
    add_grid: bool = add_grid_3d_field()
    residual: bool = residual_field()
    pad_y: int = pad_y_field(8)

    def contract(self) -> Contract:
        return Contract(dims=3, channels=self.channels, history=self.history, out_steps=1)

    def check_grid(self, space: tuple[int, ...]) -> None:
        """``ValueError`` unless an ``(X, Y, Z)`` grid holds ``2·modes`` points per axis
        (``Y`` counted with its padding)."""
        check_channel_grid("IFNO3d", self, space)

    def parameter_count(self) -> int:
        """The number of parameters of ``IFNO3d(self)`` (independent of ``n_iterations``)."""
        return ends_parameter_count(self, 3) + fourier_layer_3d_parameter_count(self)


class IFNO3d(FourierOperator):
    """Implicit FNO for channel-flow velocity on ``(X, Y, Z)``: one weight-shared 3D
    Fourier layer iterated ``L`` times.

    For ``x`` of shape ``(B, T, C, X, Y, Z)`` (``T = history``, ``Y`` the wall-normal axis,
    ``x`` and ``z`` periodic) in physical units:

    1. normalise per channel, stack the frames into ``T·C`` channels, append the grid
       coordinates (``add_grid``: ``i/X, k/Z ∈ [0, 1)``, ``j/(Y − 1) ∈ [0, 1]``), lift
       pointwise to ``width`` channels and zero-pad ``pad_y`` points at the end of ``Y``
       (as :class:`~models.fno.FNO3d`): ``h₀``;
    2. ``L = n_iterations`` times, with the same ``K``, ``W``, ``b``::

           h_{l+1} = h_l + σ(K h_l + W h_l + b) / L

       ``K`` a :class:`~models.layers.SpectralConv3d` on ``modes_x × modes_y × modes_z``
       (four corners), ``W h + b`` pointwise, σ = GELU; then crop ``Y`` back;
    3. project: pointwise ``width → 4·width``, GELU, pointwise ``4·width → C``;
    4. ``residual``: ``y = x[:, −1] + in_std · z``; otherwise ``y = in_mean + in_std · z``
       (the last layer starts at zero when ``residual``: an untrained model is persistence).

    Parameter count, with ``c = T·C + 3·add_grid``, ``w = width``,
    ``M = modes_x·modes_y·modes_z``, ``h = 4·w``, independent of ``L``::

        (c·w + w) + (8·w²·M + w² + w) + (w·h + h) + (h·C + C)

    i.e. an :class:`~models.fno.FNO3d` with one layer (``IFNO3dConfig.parameter_count()``);
    at the defaults (``T = 1``, ``C = 3``, ``w = 20``, ``M = 8³``) 1,640,883. State dict
    names: ``lift``, ``spectral.weight_{pp,np,pn,nn}``, ``pointwise``, ``project_hidden``,
    ``project_out``, ``in_mean``, ``in_std``. Shapes: ``(B, T, C, X, Y, Z) → (B, 1, C, X,
    Y, Z)`` for any grid passing :meth:`IFNO3dConfig.check_grid`.
    """

    def __init__(self, config: IFNO3dConfig | None = None):
        config = config or IFNO3dConfig()
        super().__init__(config)
        w = config.width
        self.build_lift(channel_grid(), dims=3)
        self.spectral = SpectralConv3d(w, w, config.modes_x, config.modes_y, config.modes_z)
        self.pointwise = pointwise(w, w, dims=3)
        self.build_projection(dims=3)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        ny = z.shape[-2]
        h = pad_wall_normal(self.lifted(z), self.config.pad_y)
        h = implicit_iterations(h, self.spectral, self.pointwise, self.config.n_iterations)
        return self.projected(h[..., :ny, :])
