"""Filtered DNS: a fine periodic velocity filtered and carried to a coarse LES grid.

``filter_to(u, n_coarse, kind)`` takes a velocity (…, 3, N, N, N) on the fine grid and
returns the filtered field on the n_coarse³ grid of the same box, with a record of how it
was made (``FilteredVelocity``: kind, cutoff, width), so reference data says which filter
defines its "resolved" velocity. Two kinds:

- ``"spectral"``: a sharp cutoff, Ĝ(k) = 1 for |κᵢ| < n_coarse/3 and 0 otherwise: exactly the
  modes a coarse ``HITSolver`` keeps under the 2/3 rule. It is a projection (G² = G).
- ``"box"``: the top-hat filter of width Δ (default the coarse spacing L/n_coarse),
  ū(x) = Δ⁻³ ∫_{|x'ᵢ−xᵢ|<Δ/2} u(x') dx', applied exactly in Fourier space through its transfer
  function Ĝ(k) = ∏ᵢ sin(kᵢΔ/2)/(kᵢΔ/2) (Pope 2000, §13.2, table 13.2), then followed by
  the same cutoff, so that the coarse field holds no mode the coarse grid would alias.

Both filters are Fourier multipliers that depend on k only through each kᵢ's magnitude,
so they commute with derivatives: a divergence-free u gives a divergence-free ū.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from physics.hit3d.grid import Grid3D, grid_of, irfftn, rfftn

FILTER_KINDS = ("spectral", "box")


@dataclass(frozen=True)
class FilteredVelocity:
    """A filtered velocity on the coarse grid and how it was made.

    ``velocity`` (…, 3, n, n, n); ``kind`` "spectral" or "box"; ``cutoff`` the kept modes
    |κᵢ| < cutoff (integer wavenumbers); ``width`` Δ of the filter (box: the top-hat's
    width; spectral: π/k_c, k_c = (2π/L)·cutoff); ``n_source`` the fine grid's size.
    """

    velocity: torch.Tensor
    kind: str
    n: int
    n_source: int
    cutoff: float
    width: float
    length: float

    def attrs(self) -> dict[str, float | int | str]:
        """The record as plain attributes (for an HDF5 dataset's attrs)."""
        return {"filter_kind": self.kind, "filter_cutoff": self.cutoff,
                "filter_width": self.width, "n": self.n, "n_source": self.n_source,
                "length": self.length}  # fmt: skip


def box_transfer(
    grid: Grid3D, width: float, device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:  # fmt: skip
    """Ĝ(k) = ∏ᵢ sinc(kᵢΔ/2) (n, n, n//2+1) of the top-hat filter of width Δ = ``width``."""
    transfer = torch.ones((), device=device, dtype=dtype)
    for k in grid.wavenumbers(device, dtype):
        # torch.sinc(x) = sin(πx)/(πx), so sinc(kΔ/2π) = sin(kΔ/2)/(kΔ/2).
        transfer = transfer * torch.sinc(k * width / (2 * math.pi))
    return transfer


def truncate(u_hat: torch.Tensor, n_fine: int, n_coarse: int, cutoff: float) -> torch.Tensor:
    """rfftn coefficients on an n_fine grid → those of the n_coarse grid, keeping the modes
    |κᵢ| < cutoff (cutoff ≤ n_coarse/2, so none is aliased) and rescaling for the
    unnormalised DFT, (n_coarse/n_fine)³, so that the coarse grid samples the same field."""
    if cutoff > n_coarse / 2:
        raise ValueError(f"A cutoff of {cutoff} does not fit a {n_coarse}³ grid.")
    device = u_hat.device
    top = math.ceil(cutoff) - 1  # the largest kept |κ|
    kept = torch.arange(-top, top + 1, device=device)
    half = torch.arange(0, top + 1, device=device)
    sub = u_hat.index_select(-3, kept % n_fine).index_select(-2, kept % n_fine)
    sub = sub.index_select(-1, half) * (n_coarse / n_fine) ** 3
    lead = sub.shape[:-3]
    out = sub.new_zeros((*lead, n_coarse, len(kept), len(half)))
    out = out.index_copy(-3, kept % n_coarse, sub)
    out2 = sub.new_zeros((*lead, n_coarse, n_coarse, len(half)))
    out2 = out2.index_copy(-2, kept % n_coarse, out)
    out3 = sub.new_zeros((*lead, n_coarse, n_coarse, n_coarse // 2 + 1))
    return out3.index_copy(-1, half, out2)


def filter_to(
    u: torch.Tensor,
    n_coarse: int,
    kind: str = "spectral",
    length: float = 2 * math.pi,
    width: float | None = None,
) -> FilteredVelocity:
    """Filter the fine field(s) u (…, N, N, N) and sample them on the n_coarse³ grid.

    ``kind`` "spectral" (sharp cutoff at the coarse 2/3-rule band) or "box" (top-hat of
    width ``width``, default L/n_coarse, then the same cutoff); see the module docstring.
    n_coarse may equal N (filter in place) but not exceed it.
    """
    if kind not in FILTER_KINDS:
        raise ValueError(f"Unknown filter kind {kind!r}; choose one of {FILTER_KINDS}.")
    fine = grid_of(u, length)
    if not 2 <= n_coarse <= fine.n:
        raise ValueError(f"n_coarse must be in [2, {fine.n}]; got {n_coarse}.")
    coarse = Grid3D(n_coarse, length)
    cutoff = n_coarse / 3
    u_hat = rfftn(u)
    if kind == "box":
        width = coarse.dx if width is None else float(width)
        if not width > 0:
            raise ValueError(f"The box filter's width must be positive; got {width}.")
        u_hat = u_hat * box_transfer(fine, width, u.device, u.dtype)
    elif width is not None:
        raise ValueError("A spectral filter's width follows from n_coarse; give no width.")
    else:
        width = math.pi / (coarse.scale * cutoff)
    coarse_hat = truncate(u_hat, fine.n, n_coarse, cutoff)
    return FilteredVelocity(
        velocity=irfftn(coarse_hat, n_coarse), kind=kind, n=n_coarse, n_source=fine.n,
        cutoff=cutoff, width=width, length=length,
    )  # fmt: skip
