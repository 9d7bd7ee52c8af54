"""Building blocks of the neural operators: spectral convolutions, grid embeddings.

Layers know nothing about configs, normalisation or checkpoints; models compose them.
Two-dimensional layers take and return fields shaped ``(batch, channel, H, W)``,
three-dimensional ones ``(batch, channel, X, Y, Z)``. All run unchanged on CPU and CUDA
(buffers and outputs follow the input's device) and keep the input's dtype; the Fourier
transforms run in at least float32, so half-precision inputs are safe.
"""

from __future__ import annotations

import torch
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half precision (FFTs of half precision are restricted to powers of two
    and to CUDA), the dtype itself otherwise."""
    return torch.promote_types(dtype, torch.float32)


def _spectral_init(in_channels: int, out_channels: int, shape: tuple[int, ...]) -> torch.Tensor:
    # Uniform on [0, 1/(in·out)) for both the real and imaginary parts, as in the reference
    # FNO: keeps a fresh layer's output variance independent of the channel counts.
    return (1.0 / (in_channels * out_channels)) * torch.rand(shape)


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
        shape = (in_channels, out_channels, modes1, modes2, 2)
        self.weight_pos = nn.Parameter(_spectral_init(in_channels, out_channels, shape))
        self.weight_neg = nn.Parameter(_spectral_init(in_channels, out_channels, shape))

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
        compute_dtype = _compute_dtype(x.dtype)
        x_ft = torch.fft.rfft2(x.to(compute_dtype))

        w_pos = torch.view_as_complex(self.weight_pos.to(compute_dtype))
        w_neg = torch.view_as_complex(self.weight_neg.to(compute_dtype))
        m1, m2 = self.modes1, self.modes2
        out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, height, width // 2 + 1)
        out_ft[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m1, :m2], w_pos)
        out_ft[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m1:, :m2], w_neg)

        # s= restores odd widths that the half-spectrum alone cannot tell apart.
        return torch.fft.irfft2(out_ft, s=(height, width)).to(x.dtype)


class SpectralConv3d(nn.Module):
    """Fourier layer in three dimensions: a learned linear map on the lowest Fourier modes.

    Computes ``irfftn(W · rfftn(x))`` over the last three dims ``(X, Y, Z)``, where ``W``
    acts only on the retained wavenumbers

    * ``k_x ∈ {0, …, modes1−1} ∪ {−modes1, …, −1}`` along dim −3,
    * ``k_y ∈ {0, …, modes2−1} ∪ {−modes2, …, −1}`` along dim −2,
    * ``k_z ∈ {0, …, modes3−1}`` along dim −1 (the rfft half-spectrum),

    and zeroes every other mode. Both signs are kept on the two full axes because a real
    field's rfft stores both there, which gives four corner blocks of the spectrum, each
    with its own complex weights. For each retained mode ``k``:
    ``out[b, o, k] = Σ_i x̂[b, i, k] · W[i, o, k]``. The same weights apply at any
    resolution, as in :class:`SpectralConv2d`.

    Weights are stored as real tensors with a trailing (real, imag) axis, one per corner,
    each ``(in_channels, out_channels, modes1, modes2, modes3, 2)``; the suffix gives the
    signs of ``(k_x, k_y)``, ``p`` for ``≥ 0`` and ``n`` for ``< 0``: ``weight_pp``,
    ``weight_np``, ``weight_pn``, ``weight_nn``.

    Parameter count: ``8 · in_channels · out_channels · modes1 · modes2 · modes3`` (four
    corner blocks, real and imaginary parts). No bias (the pointwise convolution beside it
    carries one).

    Shapes: ``(B, in_channels, X, Y, Z) → (B, out_channels, X, Y, Z)`` for any
    ``X ≥ 2·modes1``, ``Y ≥ 2·modes2``, ``Z ≥ 2·modes3``.
    """

    CORNERS = ("pp", "np", "pn", "nn")

    def __init__(self, in_channels: int, out_channels: int, modes1: int, modes2: int, modes3: int):
        super().__init__()
        if min(in_channels, out_channels, modes1, modes2, modes3) < 1:
            raise ValueError(
                "SpectralConv3d needs positive in_channels, out_channels, modes1, modes2, "
                f"modes3; got {in_channels}, {out_channels}, {modes1}, {modes2}, {modes3}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = (modes1, modes2, modes3)
        shape = (in_channels, out_channels, modes1, modes2, modes3, 2)
        for corner in self.CORNERS:
            weight = nn.Parameter(_spectral_init(in_channels, out_channels, shape))
            self.register_parameter(f"weight_{corner}", weight)

    def extra_repr(self) -> str:
        m1, m2, m3 = self.modes
        return f"{self.in_channels}, {self.out_channels}, modes=({m1}, {m2}, {m3})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectralConv3d expects (B, {self.in_channels}, X, Y, Z), got {tuple(x.shape)}"
            )
        space = tuple(x.shape[-3:])
        if any(n < 2 * m for n, m in zip(space, self.modes, strict=True)):
            need = "×".join(str(2 * m) for m in self.modes)
            raise ValueError(
                f"grid {'×'.join(map(str, space))} is too coarse for modes {self.modes}: "
                f"need at least {need}"
            )
        compute_dtype = _compute_dtype(x.dtype)
        x_ft = torch.fft.rfftn(x.to(compute_dtype), dim=(-3, -2, -1))

        m1, m2, m3 = self.modes
        rows = {"p": slice(0, m1), "n": slice(-m1, None)}
        cols = {"p": slice(0, m2), "n": slice(-m2, None)}
        out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, *space[:2], space[2] // 2 + 1)
        for corner in self.CORNERS:
            weight = torch.view_as_complex(getattr(self, f"weight_{corner}").to(compute_dtype))
            block = (slice(None), slice(None), rows[corner[0]], cols[corner[1]], slice(0, m3))
            out_ft[block] = torch.einsum("bixyz,ioxyz->boxyz", x_ft[block], weight)

        return torch.fft.irfftn(out_ft, s=space, dim=(-3, -2, -1)).to(x.dtype)


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


class GridEmbedding3d(nn.Module):
    """Appends the coordinates of each grid point of ``(X, Y, Z)`` as three extra channels.

    Channels ``C, C+1, C+2`` are the coordinates along dims −3, −2, −1, each in the unit
    interval and independent of the resolution: on a periodic axis with ``n`` points
    ``s_j = j / n ∈ [0, 1)`` (the last point is not the first one again); on a bounded
    axis, whose first and last points are the boundaries (e.g. the channel's walls),
    ``s_j = j / (n − 1) ∈ [0, 1]``. ``periodic`` says which axes are periodic (default: all).
    No parameters. Shapes: ``(B, C, X, Y, Z) → (B, C + 3, X, Y, Z)``.
    """

    def __init__(self, periodic: tuple[bool, bool, bool] = (True, True, True)):
        super().__init__()
        if len(periodic) != 3:
            raise ValueError(f"GridEmbedding3d needs one periodic flag per axis, got {periodic}")
        self.periodic = tuple(bool(p) for p in periodic)

    def extra_repr(self) -> str:
        return f"periodic={self.periodic}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, space = x.shape[0], tuple(x.shape[-3:])
        coords = []
        for axis, (n, periodic) in enumerate(zip(space, self.periodic, strict=True)):
            step = n if periodic else max(n - 1, 1)
            s = torch.arange(n, device=x.device, dtype=x.dtype) / step
            shape = [1, 1, 1, 1, 1]
            shape[2 + axis] = n
            coords.append(s.view(shape).expand(batch, 1, *space))
        return torch.cat([x, *coords], dim=1)


def pointwise(in_channels: int, out_channels: int, dims: int = 2) -> nn.Module:
    """A linear map over channels applied independently at every grid point (1×1 conv).

    ``dims`` is the number of spatial dimensions (1, 2 or 3): an ``nn.Conv{dims}d`` with
    kernel size 1, so its state dict holds ``weight`` ``(out, in, 1, …)`` and ``bias``.
    Parameter count: ``in_channels · out_channels + out_channels`` (weights and bias).
    Shapes: ``(B, in_channels, *space) → (B, out_channels, *space)``.
    """
    if dims not in _CONV:
        raise ValueError(f"pointwise supports 1, 2 or 3 spatial dimensions, got {dims}")
    return _CONV[dims](in_channels, out_channels, kernel_size=1)
