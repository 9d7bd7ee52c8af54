"""The uniform periodic grid of a square box [0, L)².

Fields on it are tensors shaped (batch, channel, ny, nx): y runs along the second-to-last axis
and x along the last, so ``torch.fft.rfft2`` halves the x (last) axis. Point (j, i) sits at
(x, y) = (i·dx, j·dx) with dx = L/n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid2D:
    """A square periodic box [0, length)² with ``n`` uniformly spaced points per side."""

    n: int
    length: float = 1.0

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"A grid needs at least 2 points per side; got n={self.n}.")
        if not self.length > 0:
            raise ValueError(f"A grid needs a positive side length; got length={self.length}.")

    @property
    def dx(self) -> float:
        """Grid spacing L/n (the same in x and y)."""
        return self.length / self.n

    @property
    def rfft_shape(self) -> tuple[int, int]:
        """Shape (ny, nx//2 + 1) of a field's ``rfft2`` coefficients."""
        return (self.n, self.n // 2 + 1)

    def coordinates(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Point coordinates (x, y), each (n, n), with x varying along the last axis."""
        s = torch.arange(self.n, device=device, dtype=dtype) * self.dx
        y, x = torch.meshgrid(s, s, indexing="ij")
        return x, y

    def integer_wavenumbers(
        self, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer wavenumbers (kx, ky) of the rfft2 layout, int64, shapes (1, n//2+1) and (n, 1).

        kx = 0, 1, ..., n//2 (the last axis is halved by the real FFT); ky follows
        ``fftfreq``: 0, 1, ..., then negative, with the Nyquist row at -n/2 for even n.
        """
        kx = torch.arange(self.n // 2 + 1, device=device)
        ky = torch.fft.fftfreq(self.n, d=1.0 / self.n, device=device).round().long()
        return kx[None, :], ky[:, None]

    def wavenumbers(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Angular wavenumbers (kx, ky) = 2π/L·(integer wavenumbers), rfft2 layout.

        Shapes (1, n//2+1) and (n, 1), which broadcast to (n, n//2+1). The Nyquist entries are
        kept, so kx² + ky² is the exact symbol of −Δ; first derivatives should use
        ``physics.spectral.derivative_wavenumbers``, which zeroes them.
        """
        kx, ky = self.integer_wavenumbers(device)
        scale = 2 * math.pi / self.length
        return kx.to(dtype) * scale, ky.to(dtype) * scale

    def dealias_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Orszag's 2/3-rule mask in rfft2 layout, boolean (n, n//2+1).

        Keeps the modes with |kx| < n/3 and |ky| < n/3 (integer wavenumbers). A quadratic
        product of retained modes reaches |k| < 2n/3, whose alias k − n then lands at
        |k| > n/3, outside the retained band; so truncating both the factors and the product
        removes all aliasing from the retained modes.
        """
        kx, ky = self.integer_wavenumbers(device)
        return (3 * kx.abs() < self.n) & (3 * ky.abs() < self.n)
