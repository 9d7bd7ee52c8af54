"""The uniform grid of the triply periodic cube [0, L)³ (L = 2π by default).

Fields on it are tensors (…, n, n, n) whose last three axes are x, y, z in that order;
velocity fields are (batch, 3, n, n, n) with channels (u, v, w) along (x, y, z). Point
(i, j, l) sits at (i·dx, j·dx, l·dx), dx = L/n. ``rfftn`` transforms the last three axes
with the unnormalised DFT f̂(κ) = Σ f e^{−iκ·x}, so the rfftn layout is (n, n, n//2+1): the
last (z) axis is halved, and κ and −κ are stored once when 0 < κ_z < n/2.

Wavevectors are k = (2π/L)·κ with κ the integer wavevector; κ on the full axes follows
``fftfreq`` (0, 1, …, then negative, the Nyquist entry −n/2 for even n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_DIMS = (-3, -2, -1)


def rfftn(f: torch.Tensor) -> torch.Tensor:
    """The unnormalised real DFT over the last three axes: (…, n, n, n) → (…, n, n, n//2+1)."""
    return torch.fft.rfftn(f, dim=_DIMS)


def irfftn(f_hat: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of ``rfftn`` for a cube of side n: (…, n, n, n//2+1) → (…, n, n, n)."""
    return torch.fft.irfftn(f_hat, s=(n, n, n), dim=_DIMS)


@dataclass(frozen=True)
class Grid3D:
    """A periodic cube [0, length)³ with ``n`` uniformly spaced points per side."""

    n: int
    length: float = 2 * math.pi

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"A grid needs at least 2 points per side; got n={self.n}.")
        if not self.length > 0:
            raise ValueError(f"A grid needs a positive side length; got length={self.length}.")

    @property
    def dx(self) -> float:
        """Grid spacing L/n (the same along x, y and z)."""
        return self.length / self.n

    @property
    def rfft_shape(self) -> tuple[int, int, int]:
        """Shape (n, n, n//2+1) of a scalar field's ``rfftn`` coefficients."""
        return (self.n, self.n, self.n // 2 + 1)

    @property
    def scale(self) -> float:
        """2π/L, the angular wavenumber of integer wavenumber 1."""
        return 2 * math.pi / self.length

    def coordinates(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Point coordinates (x, y, z), each (n, n, n), x varying along axis −3."""
        s = torch.arange(self.n, device=device, dtype=dtype) * self.dx
        x, y, z = torch.meshgrid(s, s, s, indexing="ij")
        return x, y, z

    def integer_wavenumbers(
        self, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Integer wavenumbers (κx, κy, κz), int64, shaped (n,1,1), (1,n,1), (1,1,n//2+1)."""
        full = torch.fft.fftfreq(self.n, d=1.0 / self.n, device=device).round().long()
        half = torch.arange(self.n // 2 + 1, device=device)
        return full[:, None, None], full[None, :, None], half[None, None, :]

    def wavenumbers(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Angular wavenumbers (kx, ky, kz) = (2π/L)·κ, broadcastable to the rfftn layout.

        The Nyquist entries are kept, so kx² + ky² + kz² is the exact symbol of −Δ; first
        derivatives use ``derivative_wavenumbers``, which zeroes them.
        """
        return tuple(k.to(dtype) * self.scale for k in self.integer_wavenumbers(device))

    def derivative_wavenumbers(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``wavenumbers`` with the Nyquist entries (κ = −n/2, n even) set to zero.

        The Nyquist mode of a real field is a real cosine or sine sampled at its zeros; its
        derivative is not representable, and zeroing it keeps derivatives of real fields
        real (the convention of ``physics.spectral.derivative_wavenumbers`` in 2D).
        """
        out = []
        for k, kint in zip(
            self.wavenumbers(device, dtype), self.integer_wavenumbers(device), strict=True
        ):
            if self.n % 2 == 0:
                k = torch.where(2 * kint.abs() == self.n, torch.zeros_like(k), k)
            out.append(k)
        return tuple(out)

    def wavenumber_squared(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """|k|² (n, n, n//2+1), the symbol of −Δ."""
        kx, ky, kz = self.wavenumbers(device, dtype)
        return kx**2 + ky**2 + kz**2

    def wavenumber_modulus(self, device: torch.device | str | None = None) -> torch.Tensor:
        """|κ| in integer units (n, n, n//2+1), float64."""
        kx, ky, kz = (k.double() for k in self.integer_wavenumbers(device))
        return torch.sqrt(kx**2 + ky**2 + kz**2)

    def shell_index(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Integer shell round(|κ|) of each mode (halves rounded up), int64 (n, n, n//2+1);
        the shells of ``physics.spectra.velocity_energy_spectrum``."""
        return torch.floor(self.wavenumber_modulus(device) + 0.5).long()

    def cutoff_mask(self, cutoff: float, device: torch.device | str | None = None) -> torch.Tensor:
        """Boolean (n, n, n//2+1) mask of the modes with |κx|, |κy|, |κz| < ``cutoff``."""
        kx, ky, kz = self.integer_wavenumbers(device)
        return (kx.abs() < cutoff) & (ky.abs() < cutoff) & (kz.abs() < cutoff)

    def dealias_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Orszag's 2/3 rule: keep |κx|, |κy|, |κz| < n/3, boolean (n, n, n//2+1).

        A product of two retained fields reaches |κᵢ| < 2n/3 and its aliases κᵢ ∓ n land at
        |κᵢ| > n/3, outside the retained modes; truncating factors and product therefore
        removes every aliased contribution from a quadratic term (Orszag 1971).
        """
        return self.cutoff_mask(self.n / 3, device)

    def half_space_weights(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Multiplicity (1, 1, n//2+1) of each rfftn plane in a full-space sum: 2 for
        0 < κz < n/2 (the plane stands for κ and −κ), 1 for κz = 0 and the Nyquist plane."""
        weights = torch.full((1, 1, self.n // 2 + 1), 2.0, device=device, dtype=dtype)
        weights[..., 0] = 1.0
        if self.n % 2 == 0:
            weights[..., -1] = 1.0
        return weights

    def mean_product(self, a_hat: torch.Tensor, b_hat: torch.Tensor) -> torch.Tensor:
        """⟨a b⟩, the box average of the product of two real fields, from their rfftn
        coefficients (Parseval: ⟨ab⟩ = Σ_κ Re(â* b̂)/n⁶ over the full space), summed over the
        last three axes only."""
        weights = self.half_space_weights(a_hat.device, a_hat.real.dtype)
        product = (a_hat.conj() * b_hat).real * weights
        return product.sum(dim=_DIMS) / float(self.n) ** 6


def grid_of(u: torch.Tensor, length: float = 2 * math.pi) -> Grid3D:
    """The ``Grid3D`` of a field (…, n, n, n); ValueError unless its last three axes are equal."""
    if u.ndim < 3 or not (u.shape[-1] == u.shape[-2] == u.shape[-3]):
        raise ValueError(
            f"Expected a field on a cubic grid (…, n, n, n); got a tensor shaped {tuple(u.shape)}."
        )
    return Grid3D(u.shape[-1], length)
