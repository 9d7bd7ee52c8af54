"""U-Net in two dimensions (Ronneberger et al., 2015), the convolutional baseline of the zoo.

A convolutional encoder–decoder with skip connections, adapted to the periodic box: every
3×3 convolution pads circularly, so the network commutes with shifts by multiples of its
coarsest cell (``2**levels`` points) and sees no artificial boundary. ``UNet`` maps a
window of ``history`` frames to the ``out_steps`` frames that follow (the zoo's trajectory
convention, :mod:`models.base`); it is a composition of the blocks below, configured by
``UNet2dConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Contract, NeuralOperator, stack_frames, zero_init
from models.config import OperatorConfig, param


@dataclass
class UNet2dConfig(OperatorConfig):
    """Hyper-parameters of :class:`UNet`.

    Level ``l`` (``l = 0`` at full resolution, ``l = levels`` at the bottleneck) has
    ``width · multiplier**l`` channels on a grid ``2**l`` times coarser than the input, so
    the input grid must be divisible by ``2**levels`` along both axes (:meth:`check_grid`).
    """

    title = "U-Net (2D)"

    channels: int = param(1, "Physical channels of each frame (1: vorticity).", min=1, max=16)
    history: int = param(
        1,
        "Input frames: the model sees this many consecutive snapshots (stacked as channels) "
        "and predicts what follows the last one.",
        min=1,
        max=32,
    )
    out_steps: int = param(
        1,
        "Output frames predicted per call (the frames following the input window).",
        min=1,
        max=32,
    )
    width: int = param(
        32,
        "Channels at full resolution. Every level multiplies them by the channel multiplier; "
        "the parameter count grows with the square of this.",
        min=1,
        max=512,
    )
    levels: int = param(
        4,
        "Down-samplings by 2. More levels see larger structures, but the grid must be "
        "divisible by 2 to this power along both axes.",
        min=1,
        max=8,
    )
    multiplier: int = param(
        2,
        "Channel multiplier per level: level l has width·multiplier^l channels.",
        min=1,
        max=4,
    )
    groups: int = param(
        8,
        "Groups of the group normalisation after every convolution; must divide the width.",
        min=1,
        max=512,
        advanced=True,
    )

    def check(self) -> None:
        super().check()
        if self.width % self.groups:
            raise ValueError(
                f"UNet2dConfig.groups ({self.groups}) must divide width ({self.width}): group "
                "normalisation splits every layer's channels into equal groups"
            )

    def contract(self) -> Contract:
        return Contract(
            dims=2, channels=self.channels, history=self.history, out_steps=self.out_steps
        )

    def widths(self) -> list[int]:
        """Channels per level, ``[width · multiplier**l for l in 0..levels]``."""
        return [self.width * self.multiplier**level for level in range(self.levels + 1)]

    def check_grid(self, space: tuple[int, ...]) -> None:
        """Raises ``ValueError`` unless ``space = (H, W)`` with both divisible by ``2**levels``."""
        space = tuple(space)
        if len(space) != 2:
            raise ValueError(f"the 2D U-Net needs a 2D grid (H, W), got {len(space)} dimensions")
        factor = 2**self.levels
        if any(n < 1 or n % factor for n in space):
            raise ValueError(
                f"grid {space[0]}×{space[1]} does not fit a U-Net with {self.levels} levels: "
                f"both sizes must be divisible by 2^{self.levels} = {factor} (each level "
                "halves the grid)"
            )

    def parameter_count(self) -> int:
        """The number of parameters of ``UNet(self)``; see :class:`UNet` for the formula."""
        w = self.widths()
        c_in = self.history * self.channels
        c_out = self.out_steps * self.channels

        def double(a: int, b: int) -> int:
            return 9 * a * b + 9 * b * b + 6 * b

        stem = double(c_in, w[0])
        down = sum(double(w[lv - 1], w[lv]) for lv in range(1, self.levels + 1))
        up = sum(
            4 * w[lv] * w[lv - 1] + w[lv - 1] + double(2 * w[lv - 1], w[lv - 1])
            for lv in range(1, self.levels + 1)
        )
        head = w[0] * c_out + c_out
        return stem + down + up + head


def periodic_conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3×3 convolution on the periodic box (circular padding): ``(B, a, H, W) → (B, b, H, W)``.

    Parameter count: ``9·a·b + b``.
    """
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="circular")


class DoubleConv(nn.Module):
    """Two rounds of ``z ← GELU(GroupNorm(conv3x3(z)))`` with periodic padding.

    Parameter count: ``9·a·b + b + 2b`` (first conv, norm) ``+ 9·b² + b + 2b`` (second), i.e.
    ``9ab + 9b² + 6b`` for ``a`` input and ``b`` output channels.
    Shapes: ``(B, a, H, W) → (B, b, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.conv1 = periodic_conv3x3(in_channels, out_channels)
        self.norm1 = nn.GroupNorm(groups, out_channels)
        self.conv2 = periodic_conv3x3(out_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = F.gelu(self.norm1(self.conv1(z)))
        return F.gelu(self.norm2(self.conv2(z)))


class Down(nn.Module):
    """One encoder level: 2×2 average pooling (halves the grid), then :class:`DoubleConv`.

    Parameter count: ``9ab + 9b² + 6b``. Shapes: ``(B, a, H, W) → (B, b, H/2, W/2)``.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv(F.avg_pool2d(z, 2))


class Up(nn.Module):
    """One decoder level: a 2×2 transposed convolution with stride 2 (doubles the grid, ``a →
    b`` channels), concatenation with the encoder's skip (``b`` channels) and
    :class:`DoubleConv` ``(2b → b)``.

    Parameter count: ``4ab + b`` (transposed conv) ``+ 27b² + 6b``.
    Shapes: ``(B, a, H/2, W/2), (B, b, H, W) → (B, b, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels, groups)

    def forward(self, z: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(z), skip], dim=1))


class UNet(NeuralOperator):
    """Periodic 2D U-Net with input normalisation and residual output over the last frame.

    Pipeline, for ``x`` of shape ``(B, T, C, H, W)`` (``T = history``) in physical units:

    1. normalise per channel, ``z = (x − in_mean) / in_std``, and stack the frames as
       channels: ``(B, T·C, H, W)``;
    2. stem: :class:`DoubleConv` ``T·C → w₀``;
    3. encoder, ``l = 1 … L``: 2×2 average pooling, :class:`DoubleConv` ``w_{l−1} → w_l``,
       keeping every level's output for the skips;
    4. decoder, ``l = L … 1``: transposed conv ``w_l → w_{l−1}`` back to the finer grid,
       concatenated with the skip of level ``l−1``, :class:`DoubleConv` ``2w_{l−1} → w_{l−1}``;
    5. head: pointwise ``w₀ → S·C`` (``S = out_steps``), read as ``S`` frames;
    6. residual: ``y_s = x_{T} + in_std · head_s`` for every output frame ``s`` (the
       network predicts the change from the last input frame in units of each channel's
       spread). The head starts at zero, so an untrained model is exactly persistence.

    Every 3×3 convolution pads circularly (the box is periodic); every one is followed by
    GroupNorm (``groups`` groups) and GELU. ``w_l = width · multiplier**l``.

    Parameter count, with ``c = T·C``, ``o = S·C`` and ``D(a, b) = 9ab + 9b² + 6b`` (a
    :class:`DoubleConv`)::

        D(c, w₀)                                         stem
        + Σ_{l=1..L} D(w_{l−1}, w_l)                      encoder
        + Σ_{l=1..L} (4·w_l·w_{l−1} + w_{l−1} + D(2w_{l−1}, w_{l−1}))   decoder
        + w₀·o + o                                       head

    (``UNet2dConfig.parameter_count()`` evaluates it): 7,765,409 for the defaults (C = 1,
    T = S = 1, width 32, 4 levels, multiplier 2). The buffers ``in_mean``/``in_std`` (shape
    ``(C,)``) are saved with the weights but are not parameters.

    Shapes: ``(B, T, C, H, W) → (B, S, C, H, W)`` for ``H`` and ``W`` divisible by
    ``2**levels``.
    """

    def __init__(self, config: UNet2dConfig | None = None):
        config = config or UNet2dConfig()
        super().__init__(config)
        w = config.widths()
        self.stem = DoubleConv(config.history * config.channels, w[0], config.groups)
        self.down = nn.ModuleList(
            Down(w[lv - 1], w[lv], config.groups) for lv in range(1, config.levels + 1)
        )
        # up[i] undoes down[i]: it goes from level i+1 to level i.
        self.up = nn.ModuleList(
            Up(w[lv], w[lv - 1], config.groups) for lv in range(1, config.levels + 1)
        )
        self.head = nn.Conv2d(w[0], config.out_steps * config.channels, kernel_size=1)
        zero_init(self.head)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        batch, _, channels, height, width = z.shape
        z = self.stem(stack_frames(z))
        skips = [z]
        for down in self.down:
            z = down(z)
            skips.append(z)
        skips.pop()  # the bottleneck feeds the decoder directly
        for up in reversed(self.up):
            z = up(z, skips.pop())
        return self.head(z).reshape(batch, self.config.out_steps, channels, height, width)
