"""Factorized transformers: FactFormer (chained) and IFactFormer-m (parallel, implicit).

``FactFormer`` maps a window of ``history`` frames ``(B, T, C, *space)`` to the next frame
``(B, 1, C, *space)`` in 2D ``(H, W)`` or 3D ``(X, Y, Z)`` (``Y`` wall-normal). Its blocks
are the axis-wise low-rank attention of :mod:`models.layers_attention`; which of the two
published variants a model is follows from its config class:

* ``FactFormer2dConfig`` / ``FactFormer3dConfig`` — FactFormer (Li, Shu & Barati Farimani,
  NeurIPS 2023): ``n_layers`` distinct blocks, each mixing the values with the axis
  kernels in a chain, ``K_x ⋆ K_y ⋆ K_z ⋆ v``, and each updating ``u ← u + block(u)``.
* ``IFactFormer2dConfig`` / ``IFactFormer3dConfig`` — IFactFormer-m (Yang, Wang & Wang,
  "Implicit factorized transformer approach to fast prediction of turbulent channel
  flows"): the axis kernels act on the values in parallel, ``[K_x ⋆ v, K_y ⋆ v, K_z ⋆ v]``,
  and one block's weights are shared over ``n_iterations`` applications,
  ``u ← u + block(u)/n`` (forward Euler with step ``1/n`` of ``du/ds = block(u)``), so
  depth costs compute but no parameters.

The architecture around the blocks follows the IFactFormer reference code (which derives
from FactFormer's): a per-channel lift and a convolution over the time window, random
Fourier features of the point coordinates through a linear map added before each distinct
block, and a two-layer pointwise head. The head's last layer starts at zero and the output
is a residual over the last input frame, so an untrained model is exactly persistence.

Departures from the reference code, none of which changes the parameter count: point
coordinates are normalised to ``[0, 1]`` per axis (the reference feeds physical ones, e.g.
``x ∈ [0, 4π]`` for the channel), so ``fourier_scale`` and ``rotary_scale`` mean the same
at every domain size and resolution; the random Fourier frequencies are a buffer rather
than a frozen parameter; and the chained block normalises each attention channel over the
grid, as IFactFormer's chained block does (FactFormer's own applies ``InstanceNorm3d`` to
a channels-last tensor, so it normalises each x-slice over the other axes and channels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Contract, NeuralOperator, zero_init
from models.config import OperatorConfig, param
from models.layers_attention import (
    FactorizedAttention,
    FrameLift,
    GaussianFourierFeatures,
    axis_coordinates,
)

# --- configuration fields (one declaration per field, shared by the four configs) ------


def _channels(default: int) -> Any:
    return param(
        default,
        "Physical channels the model reads and predicts (1 for vorticity in 2D, 3 for "
        "velocity u, v, w in 3D).",
        min=1,
    )


def _history() -> Any:
    return param(
        1,
        "Consecutive input frames. A learned convolution over the window turns them into "
        "the hidden features, so with more than one frame the model also sees how the field "
        "has been changing.",
        min=1,
    )


def _dim(default: int) -> Any:
    return param(
        default,
        "Width of the hidden representation at every grid point. Must be even, with dim/2 "
        "divisible by the number of channels. The parameter count grows as dim².",
        min=2,
    )


def _heads(default: int) -> Any:
    return param(
        default,
        "Attention heads: independent axis kernels, each mixing its own group of value "
        "features along every axis.",
        min=1,
    )


def _head_dim(default: int) -> Any:
    return param(
        default,
        "Value features per head. The attention output has heads·head_dim channels per "
        "axis kernel it is built from.",
        min=1,
    )


def _kernel_multiplier(default: int) -> Any:
    return param(
        default,
        "Query/key features per head, as a multiple of head_dim: the rank of each axis "
        "kernel K(x, x') = Σ q(x)·k(x') is head_dim·kernel_multiplier. Above 4 the kernel is "
        "scaled by 1/√rank, as in the reference code.",
        min=1,
        max=16,
        advanced=True,
    )


def _n_layers(default: int) -> Any:
    return param(
        default,
        "Number of factorized-attention blocks, each with its own weights and applied once "
        "(u ← u + block(u)).",
        min=1,
    )


def _n_iterations(default: int) -> Any:
    return param(
        default,
        "How many times the one shared attention block is applied (n), each time adding 1/n "
        "of its output (u ← u + block(u)/n). More iterations give a deeper network at the "
        "same parameter count and cost proportionally more time.",
        min=1,
    )


def _fourier_scale() -> Any:
    return param(
        8.0,
        "Spread of the random frequencies of the positional features sin/cos(2π x·B), B ~ "
        "N(0, scale²), with coordinates normalised to [0, 1] along every axis. Larger lets "
        "the model tie finer details to position.",
        min=0.0,
        advanced=True,
    )


def _rotary_scale() -> Any:
    return param(
        64.0,
        "Rotary encoding of the axis kernels: the angle (radians) through which the fastest "
        "query/key pair turns from one end of an axis to the other; slower pairs turn by "
        "geometrically smaller angles. Sets how sharply the kernels can resolve positions.",
        min=0.0,
        advanced=True,
    )


# --- configs --------------------------------------------------------------------------


class FactFormerConfigBase(OperatorConfig):
    """What the four factorized-transformer configs share: rules, contract, parameter count.

    Subclasses are dataclasses with the fields ``channels, history, dim, heads, head_dim,
    kernel_multiplier``, ``n_layers`` (chained) or ``n_iterations`` (parallel),
    ``fourier_scale, rotary_scale``, and set the class variables ``dims`` (2 or 3) and
    ``parallel`` (the IFactFormer-m form with one shared block).
    """

    dims: ClassVar[int] = 2
    parallel: ClassVar[bool] = False

    channels: int
    history: int
    dim: int
    heads: int
    head_dim: int
    kernel_multiplier: int
    fourier_scale: float
    rotary_scale: float

    @property
    def arch_label(self) -> str:
        return f"{'IFactFormer-m' if self.parallel else 'FactFormer'} ({self.dims}D)"

    def check(self) -> None:
        super().check()
        name = type(self).__name__
        if self.dim % 2 or (self.dim // 2) % self.channels:
            raise ValueError(
                f"{name}.dim must be even with dim/2 divisible by channels (each channel is "
                f"widened to dim/(2·channels) features); got dim={self.dim}, "
                f"channels={self.channels}"
            )
        if (self.head_dim * self.kernel_multiplier) % 2:
            raise ValueError(
                f"{name}: head_dim·kernel_multiplier must be even (the rotary encoding "
                f"rotates pairs of features); got {self.head_dim}·{self.kernel_multiplier}"
            )

    def n_blocks(self) -> int:
        """Distinct attention blocks (each with its own weights and positional features)."""
        raise NotImplementedError

    def n_applications(self) -> int:
        """How many times each block is applied (each application adds block(u)/n)."""
        raise NotImplementedError

    def periodic(self) -> tuple[bool, ...]:
        """Which axes are periodic: all in 2D; ``x`` and ``z`` (not the wall-normal ``y``)
        in 3D."""
        return (True, True) if self.dims == 2 else (True, False, True)

    def contract(self) -> Contract:
        return Contract(dims=self.dims, channels=self.channels, history=self.history, out_steps=1)

    def check_grid(self, space: tuple[int, ...]) -> None:
        """``ValueError`` unless ``space`` is a ``dims``-axis grid with at least two points
        along every axis (attention itself takes any size, and no axis need be periodic)."""
        space = tuple(int(n) for n in space)
        axes = "(H, W)" if self.dims == 2 else "(X, Y, Z)"
        if len(space) != self.dims:
            raise ValueError(
                f"{self.arch_label} works on {self.dims}D grids {axes}; got a grid of shape {space}"
            )
        if min(space) < 2:
            grid = "×".join(map(str, space))
            raise ValueError(
                f"a {grid} grid is too small for {self.arch_label}: every axis needs at "
                "least 2 points"
            )

    def parameter_count(self) -> int:
        """The number of parameters of ``FactFormer(self)``; the formula is documented in
        :class:`FactFormer`."""
        d, h, e, m = self.dim, self.heads, self.head_dim, self.kernel_multiplier
        n_axes, c, t = self.dims, self.channels, self.history
        groups = n_axes if self.parallel else 1
        lift = d + t * d * d // 2
        block = (
            2 * d + d * h * e + d * d
            + n_axes * (4 * d * d + 5 * d)
            + n_axes * 2 * d * h * e * m
            + groups * h * e * d + d * d
        )  # fmt: skip
        position = d * d + d
        head = d * d // 2 + (d // 2) * c + c
        return lift + self.n_blocks() * (position + block) + head


@dataclass
class _ChainedConfig(FactFormerConfigBase):
    """The fields and block rule of FactFormer, the chained form: ``n_layers`` distinct
    blocks, each applied once. The defaults are :class:`FactFormer2dConfig`'s;
    :class:`FactFormer3dConfig` redeclares the fields whose defaults it changes.

    Declared once for 2D and 3D so the two cannot drift apart. A field redeclared in a
    subclass keeps its place, so the field order (and with it ``to_dict``, positional
    construction and the generated form) is the same in both."""

    parallel: ClassVar[bool] = False

    channels: int = _channels(1)
    history: int = _history()
    dim: int = _dim(128)
    heads: int = _heads(8)
    head_dim: int = _head_dim(64)
    kernel_multiplier: int = _kernel_multiplier(2)
    n_layers: int = _n_layers(4)
    fourier_scale: float = _fourier_scale()
    rotary_scale: float = _rotary_scale()

    def n_blocks(self) -> int:
        return self.n_layers

    def n_applications(self) -> int:
        return 1


@dataclass
class _ParallelConfig(FactFormerConfigBase):
    """The fields and block rule of IFactFormer-m, the parallel form: one block shared over
    ``n_iterations``. The defaults are :class:`IFactFormer2dConfig`'s;
    :class:`IFactFormer3dConfig` redeclares ``channels``. Declared once for 2D and 3D, as
    :class:`_ChainedConfig` is."""

    parallel: ClassVar[bool] = True

    channels: int = _channels(1)
    history: int = _history()
    dim: int = _dim(96)
    heads: int = _heads(5)
    head_dim: int = _head_dim(96)
    kernel_multiplier: int = _kernel_multiplier(3)
    n_iterations: int = _n_iterations(10)
    fourier_scale: float = _fourier_scale()
    rotary_scale: float = _rotary_scale()

    def n_blocks(self) -> int:
        return 1

    def n_applications(self) -> int:
        return self.n_iterations


@dataclass
class FactFormer2dConfig(_ChainedConfig):
    """FactFormer on ``(H, W)``: ``n_layers`` distinct chained blocks. Defaults are the
    reference's 2D Kolmogorov-flow model (dim 128, 8 heads of 64, rank 2·64, 4 layers)."""

    title: ClassVar[str] = "FactFormer (2D)"
    dims: ClassVar[int] = 2


@dataclass
class FactFormer3dConfig(_ChainedConfig):
    """FactFormer on ``(X, Y, Z)``: ``n_layers`` distinct chained blocks. Defaults follow the
    reference's 3D model (6 heads of 64, rank 3·64, 4 layers) with dim 96 instead of 128,
    since the lift needs dim/2 divisible by the 3 velocity channels."""

    title: ClassVar[str] = "FactFormer (3D)"
    dims: ClassVar[int] = 3

    channels: int = _channels(3)
    dim: int = _dim(96)
    heads: int = _heads(6)
    kernel_multiplier: int = _kernel_multiplier(3)


@dataclass
class IFactFormer2dConfig(_ParallelConfig):
    """IFactFormer-m on ``(H, W)``: one parallel block shared over ``n_iterations``.
    Defaults as the reference's IFactFormer-m (dim 96, 5 heads of 96, rank 3·96, 10
    iterations)."""

    title: ClassVar[str] = "IFactFormer-m (2D)"
    dims: ClassVar[int] = 2


@dataclass
class IFactFormer3dConfig(_ParallelConfig):
    """IFactFormer-m on ``(X, Y, Z)`` channel-flow velocity: one parallel block shared over
    ``n_iterations``. Defaults are the paper's model (dim 96, 5 heads of 96, rank 3·96, 10
    iterations, 3 velocity channels, one input frame): 1,163,187 parameters."""

    title: ClassVar[str] = "IFactFormer-m (3D)"
    dims: ClassVar[int] = 3

    channels: int = _channels(3)


# --- model ----------------------------------------------------------------------------


class FactFormer(NeuralOperator):
    """Factorized transformer (FactFormer or IFactFormer-m, chosen by the config class).

    Pipeline, for ``x`` of shape ``(B, T, C, *space)`` (``T = history``, ``D = len(space)``
    axes) in physical units:

    1. normalise per channel, ``z = (x − in_mean)/in_std``;
    2. lift (:class:`~models.layers_attention.FrameLift`): each channel widened to
       ``dim/(2C)`` features by its own affine map, GELU, then a linear map over the
       ``T × dim/2`` features of the window to ``u ∈ R^dim`` per point;
    3. for each of the ``L`` distinct blocks ``l``: add positional features
       ``u ← u + W_l γ_l(x) + b_l`` (``γ_l`` random Fourier features of the normalised
       point coordinates: ``x, z`` (or ``x, y`` in 2D) periodic, ``i/n ∈ [0, 1)``;
       wall-normal ``y`` in 3D ``j/(Y − 1) ∈ [0, 1]``), then apply the block ``n`` times,
       ``u ← u + A_l(u)/n``, with ``A_l`` a
       :class:`~models.layers_attention.FactorizedAttention` (chained or parallel);
       FactFormer: ``L = n_layers``, ``n = 1``; IFactFormer-m: ``L = 1``, ``n = n_iterations``;
    4. head: ``W₂ GELU(W₁ u) + b₂`` (``dim → dim/2`` without bias, ``dim/2 → C``);
    5. ``y = x[:, −1] + in_std · head`` (``W₂, b₂`` start at zero: persistence).

    Parameter count, with ``d = dim``, ``H = heads``, ``e = head_dim``,
    ``m = kernel_multiplier``, ``P = D`` (parallel) or ``1`` (chained)::

        d + T·d²/2                                        lift
        + L·( d² + d                                      positional map W_l, b_l
              + 2d + d·H·e + d²                           block: LayerNorm, W_v, W_in
              + D·(4d² + 5d)                              axis pooling (per axis)
              + 2·D·d·H·e·m                               axis kernels W_q, W_k (per axis)
              + P·H·e·d + d² )                            attention output MLP
        + d²/2 + (d/2)·C + C                              head

    (``config.parameter_count()`` evaluates it). The random Fourier frequencies (``D × d/2``
    per block) are fixed buffers, not parameters.

    IFactFormer-m 3D at the paper's size (d = 96, H = 5, e = 96, m = 3, n = 10, C = 3,
    T = 1): 4,704 + 9,312 + 1,144,416 + 4,755 = **1,163,187** parameters, the reference
    code's count of trainable parameters exactly. The reference's own ``count_params``
    prints 1,163,331 because it also counts its frozen 3 × 48 Fourier-frequency matrix,
    stored there as an ``nn.Parameter`` with ``requires_grad=False`` (a buffer here).

    Shapes: ``(B, T, C, *space) → (B, 1, C, *space)`` for any grid with at least two points
    per axis (:meth:`FactFormerConfigBase.check_grid`); resolution-independent weights.
    """

    def __init__(self, config: FactFormerConfigBase | None = None):
        config = config or IFactFormer3dConfig()
        if not isinstance(config, FactFormerConfigBase):
            raise TypeError(f"FactFormer needs a FactFormer config, got {type(config).__name__}")
        super().__init__(config)
        d, n_axes = config.dim, config.dims
        self.lift = FrameLift(config.channels, config.history, d)
        self.fourier = nn.ModuleList(
            GaussianFourierFeatures(n_axes, d // 2, config.fourier_scale)
            for _ in range(config.n_blocks())
        )
        self.position = nn.ModuleList(nn.Linear(d, d) for _ in range(config.n_blocks()))
        self.blocks = nn.ModuleList(
            FactorizedAttention(
                d,
                config.heads,
                config.head_dim,
                n_axes,
                config.kernel_multiplier,
                config.parallel,
                config.rotary_scale,
            )
            for _ in range(config.n_blocks())
        )
        self.head_hidden = nn.Linear(d, d // 2, bias=False)
        self.head_out = nn.Linear(d // 2, config.channels)
        zero_init(self.head_out)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        batch, space = z.shape[0], tuple(z.shape[3:])
        u = self.lift(z.flatten(3)).view(batch, *space, cfg.dim)  # lift reads (B, T, C, N)
        coords = [
            axis_coordinates(n, periodic, device=z.device, dtype=z.dtype)
            for n, periodic in zip(space, cfg.periodic(), strict=True)
        ]
        points = torch.stack(torch.meshgrid(*coords, indexing="ij"), dim=-1).view(-1, cfg.dims)
        n = cfg.n_applications()
        for fourier, position, block in zip(self.fourier, self.position, self.blocks, strict=True):
            u = u + position(fourier(points)).view(*space, cfg.dim)
            for _ in range(n):
                u = u + block(u, coords) / n
        out = self.head_out(F.gelu(self.head_hidden(u)))  # (B, *space, C)
        return out.movedim(-1, 1).unsqueeze(1)
