"""Building blocks of the neural operators: spectral convolution, grid embedding.

Layers know nothing about configs, normalisation or checkpoints; models compose them.
All layers take and return fields shaped ``(batch, channel, ny, nx)`` and run unchanged on
CPU and CUDA (buffers and outputs follow the input's device).
"""

from __future__ import annotations

import torch
from torch import nn


class SpectralConv2d(nn.Module):
    """Fourier layer: a learned linear map applied to the lowest Fourier modes.

    Computes ``irfft2(W · rfft2(x))`` where ``W`` acts only on the retained modes:
    wavenumbers ``k_y ∈ {0, …, modes1−1} ∪ {−modes1, …, −1}`` along dim −2 (both signs,
    because a real field's rfft keeps both signs there) and ``k_x ∈ {0, …, modes2−1}``
    along dim −1 (the rfft half-spectrum). All other modes are zeroed, so the layer is a
    global convolution with a band-limited kernel, and the same weights apply at any
    resolution: this is what makes the operator resolution-independent.

    For each retained mode ``k``: ``out[b, o, k] = Σ_i x̂[b, i, k] · W[i, o, k]``.

    Weights are complex but stored as real tensors with a trailing (real, imag) axis so
    that every safetensors version and every optimizer handles them:

    * ``weight_pos``: ``(in_channels, out_channels, modes1, modes2, 2)``, modes ``k_y ≥ 0``
    * ``weight_neg``: ``(in_channels, out_channels, modes1, modes2, 2)``, modes ``k_y < 0``

    Parameter count: ``4 · in_channels · out_channels · modes1 · modes2`` (two corner
    blocks, real and imaginary parts). There is no bias: in an FNO block the pointwise
    convolution beside this layer carries it.

    Shapes: ``(B, in_channels, H, W) → (B, out_channels, H, W)`` for any
    ``H ≥ 2·modes1`` and ``W ≥ 2·modes2`` (so that the positive and negative blocks do
    not overlap and the retained modes exist at that resolution).
    """

    def __init__(self, in_channels: int, out_channels: int, modes1: int, modes2: int):
        super().__init__()
        if min(in_channels, out_channels, modes1, modes2) < 1:
            raise ValueError(
                "SpectralConv2d needs positive in_channels, out_channels, modes1, modes2; "
                f"got {in_channels}, {out_channels}, {modes1}, {modes2}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes1 = modes1
        self.modes2 = modes2
        # Scale 1/(in·out) as in the reference FNO: keeps the output variance of a freshly
        # initialised layer independent of the channel counts.
        scale = 1.0 / (in_channels * out_channels)
        shape = (in_channels, out_channels, modes1, modes2, 2)
        self.weight_pos = nn.Parameter(scale * torch.rand(shape))
        self.weight_neg = nn.Parameter(scale * torch.rand(shape))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, modes1={self.modes1}, modes2={self.modes2}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectralConv2d expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        if height < 2 * self.modes1 or width < 2 * self.modes2:
            raise ValueError(
                f"grid {height}×{width} is too coarse for modes ({self.modes1}, {self.modes2}):"
                f" need at least {2 * self.modes1}×{2 * self.modes2}"
            )
        # FFTs of half precision are restricted (powers of two, CUDA only), so the spectral
        # part always runs in at least float32 and the result is cast back.
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        x_ft = torch.fft.rfft2(x.to(compute_dtype))

        w_pos = torch.view_as_complex(self.weight_pos.to(compute_dtype))
        w_neg = torch.view_as_complex(self.weight_neg.to(compute_dtype))
        m1, m2 = self.modes1, self.modes2
        out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, height, width // 2 + 1)
        out_ft[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m1, :m2], w_pos)
        out_ft[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m1:, :m2], w_neg)

        # s= restores odd widths that the half-spectrum alone cannot tell apart.
        return torch.fft.irfft2(out_ft, s=(height, width)).to(x.dtype)


class GridEmbedding2d(nn.Module):
    """Appends the coordinates of each grid point as two extra channels.

    Channel ``C`` is ``x = j / nx`` (along dim −1) and channel ``C+1`` is ``y = i / ny``
    (along dim −2), both in ``[0, 1)``: the periodic unit square, whatever the resolution,
    so a model trained at one resolution sees the same coordinates at another.
    No parameters. Shapes: ``(B, C, H, W) → (B, C + 2, H, W)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        gx = torch.arange(width, device=x.device, dtype=x.dtype) / width
        gy = torch.arange(height, device=x.device, dtype=x.dtype) / height
        gx = gx.view(1, 1, 1, width).expand(batch, 1, height, width)
        gy = gy.view(1, 1, height, 1).expand(batch, 1, height, width)
        return torch.cat([x, gx, gy], dim=1)


def pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A linear map over channels applied independently at every grid point (1×1 conv).

    Parameter count: ``in_channels · out_channels + out_channels`` (weights and bias).
    Shapes: ``(B, in_channels, H, W) → (B, out_channels, H, W)``.
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)
