"""Space–time building blocks of the spatiotemporal FNO (Cao, Liu et al., ICLR 2025).

These layers see a trajectory as one field on the space–time volume: tensors shaped
``(batch, channel, H, W, T)`` with the two periodic spatial axes first and time last. Time
is a Fourier axis like the others, so a layer can read ``T_in`` frames and write a
different number ``T_out``: the time spectrum is computed over the input length and
evaluated on the output length (band-limited resampling).

Layers know nothing about configs, normalisation or checkpoints; :mod:`models.sfno`
composes them. Everything runs unchanged on CPU and CUDA and keeps the input's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def min_time_length(modes_t: int) -> int:
    """The fewest frames whose real FFT holds ``modes_t`` temporal modes: ``2·(modes_t − 1)``.

    A real signal of ``n`` frames has ``n // 2 + 1`` non-negative frequencies, so it holds
    ``modes_t`` of them iff ``n ≥ 2·(modes_t − 1)`` (and at least one frame).
    """
    return max(1, 2 * (modes_t - 1))


def _keep_corners(x: torch.Tensor, modes: int, dim: int) -> torch.Tensor:
    """The wavenumbers ``0, …, m−1`` and ``−m, …, −1`` of a full FFT axis, in that order."""
    n = x.shape[dim]
    return torch.cat([x.narrow(dim, 0, modes), x.narrow(dim, n - modes, modes)], dim=dim)


def _fill_corners(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """Inverse of :func:`_keep_corners`: a length-``n`` FFT axis, zero between the corners."""
    modes = x.shape[dim] // 2
    shape = list(x.shape)
    shape[dim] = n - 2 * modes
    low, high = x.split(modes, dim=dim)
    return torch.cat([low, x.new_zeros(shape), high], dim=dim)


class SpectralConvSpaceTime(nn.Module):
    """Fourier layer over ``(H, W, T)``: a learned multiplier on the lowest space–time modes,
    with a free output length in time.

    With ``v̂ = rfftn(v)`` over the last three axes (``norm="forward"``, so a coefficient is
    the amplitude of its Fourier mode whatever the number of samples), for every retained
    mode ``k = (k_y, k_x, k_t)``::

        û[b, o, k] = Σ_i v̂[b, i, k] · W[i, o, k]  (+ B[o, k] when ``bias``)
        u = irfftn(û, s=(H, W, T_out))

    Retained modes: ``k_y ∈ {0, …, modes1−1} ∪ {−modes1, …, −1}`` (dim −3),
    ``k_x ∈ {0, …, modes2−1} ∪ {−modes2, …, −1}`` (dim −2), ``k_t ∈ {0, …, modes_t−1}``
    (dim −1, the real-FFT half spectrum; negative ``k_t`` follow by conjugate symmetry).
    Every other mode of ``û`` is zero.

    Time resampling: ``v̂`` is taken over the input length ``T`` and ``û`` is synthesised
    on ``T_out`` frames (``out_steps``; ``T`` when omitted), i.e. the time spectrum is
    zero-padded (``T_out > T``) or truncated (``T_out < T``; only the retained modes matter
    anyway). Both lengths sample one period ``[0, 1)`` of time, so with the
    amplitude-normalised transform a signal that is constant in time stays constant at
    the same value, and a low-frequency signal is band-limited-interpolated onto the new
    frames. (With the default ``norm="backward"`` the amplitude would be scaled by
    ``T_out/T``.) The one caveat of band-limited resampling: for even ``T`` the top bin
    ``k_t = T/2`` stands for its own conjugate, so on a longer output it counts twice; the
    learned weight of that mode absorbs the factor.

    The spectral bias ``B`` (a learned space–time field on the retained modes, the "source
    term" of the paper's output layer) is independent of the input.

    Storage: complex weights as real tensors with a trailing (re, im) axis. The two signs of
    each spatial wavenumber are stacked along one axis in the order of the FFT's slices,
    ``[0, …, m−1, −m, …, −1]``:

    * ``weight``: ``(in_channels, out_channels, 2·modes1, 2·modes2, modes_t, 2)``
    * ``bias`` (if ``bias``): ``(out_channels, 2·modes1, 2·modes2, modes_t, 2)``

    Parameter count: ``8·in_channels·out_channels·modes1·modes2·modes_t``, plus
    ``8·out_channels·modes1·modes2·modes_t`` with ``bias``. Weights start uniform in
    ``[0, 1/(in·out))`` (as :class:`models.layers.SpectralConv2d`), or at zero with
    ``zero_init`` (a residual model's last layer); the bias always starts at zero.

    Shapes: ``(B, in_channels, H, W, T) → (B, out_channels, H, W, T_out)`` for
    ``H ≥ 2·modes1``, ``W ≥ 2·modes2`` (positive and negative blocks must not overlap) and
    ``T, T_out ≥ 2·(modes_t − 1)`` (the retained temporal modes must exist on both time
    axes; see :func:`min_time_length`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes1: int,
        modes2: int,
        modes_t: int,
        bias: bool = False,
        zero_init: bool = False,
    ):
        super().__init__()
        if min(in_channels, out_channels, modes1, modes2, modes_t) < 1:
            raise ValueError(
                "SpectralConvSpaceTime needs positive in_channels, out_channels, modes1, "
                f"modes2, modes_t; got {in_channels}, {out_channels}, {modes1}, {modes2}, "
                f"{modes_t}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes1 = modes1
        self.modes2 = modes2
        self.modes_t = modes_t
        shape = (in_channels, out_channels, 2 * modes1, 2 * modes2, modes_t, 2)
        if zero_init:
            weight = torch.zeros(shape)
        else:
            # As SpectralConv2d: scale 1/(in·out) keeps a fresh layer's output variance
            # independent of the channel counts.
            weight = torch.rand(shape) / (in_channels * out_channels)
        self.weight = nn.Parameter(weight)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels, 2 * modes1, 2 * modes2, modes_t, 2))
        else:
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, modes1={self.modes1}, "
            f"modes2={self.modes2}, modes_t={self.modes_t}, bias={self.bias is not None}"
        )

    def _slices(self) -> list[tuple[slice, slice]]:
        """(dim −3, dim −2) slices of the four corner blocks, valid in the spectrum and in
        the stacked weight alike (positive wavenumbers first, negative ones last)."""
        m1, m2 = self.modes1, self.modes2
        return [
            (s1, s2)
            for s1 in (slice(0, m1), slice(-m1, None))
            for s2 in (slice(0, m2), slice(-m2, None))
        ]

    def forward(self, x: torch.Tensor, out_steps: int | None = None) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectralConvSpaceTime expects (B, {self.in_channels}, H, W, T), "
                f"got {tuple(x.shape)}"
            )
        height, width, n_in = x.shape[-3:]
        n_out = n_in if out_steps is None else int(out_steps)
        if height < 2 * self.modes1 or width < 2 * self.modes2:
            raise ValueError(
                f"grid {height}×{width} is too coarse for modes ({self.modes1}, {self.modes2}):"
                f" need at least {2 * self.modes1}×{2 * self.modes2}"
            )
        need = min_time_length(self.modes_t)
        if n_in < need or n_out < need:
            raise ValueError(
                f"modes_t={self.modes_t} needs at least {need} frames in and out, "
                f"got {n_in} in and {n_out} out"
            )
        # FFTs of half precision are restricted (powers of two, CUDA only), so the spectral
        # part runs in at least float32 and the result is cast back.
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        m1, m2, mt = self.modes1, self.modes2, self.modes_t

        # rfftn over (H, W, T), computed axis by axis and cut to the retained modes after
        # each axis, so the later transforms only touch what the layer uses.
        x_ft = torch.fft.rfft(x.to(compute_dtype), dim=-1, norm="forward")[..., :mt]
        x_ft = _keep_corners(torch.fft.fft(x_ft, dim=-2, norm="forward"), m2, dim=-2)
        x_ft = _keep_corners(torch.fft.fft(x_ft, dim=-3, norm="forward"), m1, dim=-3)

        # One product over the stacked corner blocks: (B, I, 2m1, 2m2, mt) → (B, O, …).
        weight = torch.view_as_complex(self.weight.to(compute_dtype))
        out_ft = torch.einsum("bixyt,ioxyt->boxyt", x_ft, weight)
        if self.bias is not None:
            out_ft = out_ft + torch.view_as_complex(self.bias.to(compute_dtype))

        # Inverse, axis by axis, zero-filling the discarded modes; irfft's n= zero-pads or
        # truncates the time spectrum to the requested number of frames.
        out = torch.fft.ifft(_fill_corners(out_ft, height, dim=-3), dim=-3, norm="forward")
        out = torch.fft.ifft(_fill_corners(out, width, dim=-2), dim=-2, norm="forward")
        return torch.fft.irfft(out, n=n_out, dim=-1, norm="forward").to(x.dtype)

    @torch.no_grad()
    def expanded(self, modes1: int, modes2: int, modes_t: int) -> SpectralConvSpaceTime:
        """A copy of this layer with at least as many modes on every axis.

        The old weights (and bias) land on the same wavenumbers; the added modes start at
        zero, so the new layer computes exactly the same function until it is trained. The
        copy has this layer's device and dtype.
        """
        if modes1 < self.modes1 or modes2 < self.modes2 or modes_t < self.modes_t:
            raise ValueError(
                f"cannot shrink a spectral layer from modes ({self.modes1}, {self.modes2}, "
                f"{self.modes_t}) to ({modes1}, {modes2}, {modes_t})"
            )
        new = SpectralConvSpaceTime(
            self.in_channels,
            self.out_channels,
            modes1,
            modes2,
            modes_t,
            bias=self.bias is not None,
            zero_init=True,
        ).to(device=self.weight.device, dtype=self.weight.dtype)
        mt = self.modes_t
        for s1, s2 in self._slices():  # the old blocks' slices, in both layouts
            new.weight[:, :, s1, s2, :mt] = self.weight[:, :, s1, s2]
            if self.bias is not None:
                new.bias[:, s1, s2, :mt] = self.bias[:, s1, s2]
        return new


class SpaceTimeEmbedding(nn.Module):
    """Appends coordinates and a time encoding as extra channels of a space–time volume.

    With ``add_grid``: three channels ``y = i/H``, ``x = j/W`` (the periodic unit square,
    as :class:`models.layers.GridEmbedding2d`) and ``t = (n + 1)/T`` (frame ``n`` of ``T``;
    the last frame of the window sits at ``t = 1``). Then ``2·frequencies`` channels of the
    paper's sinusoidal time encoding, damped like the energy of a decaying flow::

        e^{−decay·t} sin(π k t),  e^{−decay·t} cos(π k t),   k = 1, …, frequencies

    No parameters. Shapes: ``(B, C, H, W, T) → (B, C + 3·add_grid + 2·frequencies, H, W, T)``.
    """

    def __init__(self, add_grid: bool = True, frequencies: int = 0, decay: float = 0.0):
        super().__init__()
        if frequencies < 0:
            raise ValueError(f"frequencies must be non-negative, got {frequencies}")
        self.add_grid = add_grid
        self.frequencies = frequencies
        self.decay = decay

    @property
    def extra_channels(self) -> int:
        return 3 * int(self.add_grid) + 2 * self.frequencies

    def extra_repr(self) -> str:
        return f"add_grid={self.add_grid}, frequencies={self.frequencies}, decay={self.decay}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width, n_t = x.shape
        kw = {"device": x.device, "dtype": x.dtype}
        t = (torch.arange(n_t, **kw) + 1) / n_t
        channels = []
        if self.add_grid:
            channels += [
                (torch.arange(height, **kw) / height).view(height, 1, 1).expand(height, width, n_t),
                (torch.arange(width, **kw) / width).view(1, width, 1).expand(height, width, n_t),
                t.view(1, 1, n_t).expand(height, width, n_t),
            ]
        envelope = torch.exp(-self.decay * t)
        for k in range(1, self.frequencies + 1):
            for basis in (torch.sin, torch.cos):
                channels.append((envelope * basis(math.pi * k * t)).expand(height, width, n_t))
        if not channels:
            return x
        extra = torch.stack(channels).unsqueeze(0).expand(batch, -1, -1, -1, -1)
        return torch.cat([x, extra], dim=1)


def pointwise3d(in_channels: int, out_channels: int) -> nn.Conv3d:
    """A linear map over channels applied independently at every space–time point.

    Parameter count: ``in_channels · out_channels + out_channels`` (weights and bias).
    Shapes: ``(B, in_channels, H, W, T) → (B, out_channels, H, W, T)``.
    """
    return nn.Conv3d(in_channels, out_channels, kernel_size=1)
