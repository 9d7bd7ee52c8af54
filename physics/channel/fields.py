"""Channel velocity as users and models see it, and the filters that put it on a coarser grid.

Datasets, statistics and models take all three components at the cell centres y_c
(``ChannelGrid.to_centres``: v interpolated from the faces, ½(v_f[j] + v_f[j+1]) with the
upper wall's v = 0), which are symmetric about y = 0, so the two halves fold point onto
point.

A dataset can be stored on a coarser training grid than the solver's (filtered data, as an
LES sees it). The filters are linear, separable and keep the mean:

- x–z, ``filter_xz``: a sharp spectral cut to the modes the coarser grid holds
  (``kind="spectral"``), or first a top-hat (box) filter of width Δ, the running mean
  over [x − Δ/2, x + Δ/2] of the Fourier interpolant, whose transfer function is
  sin(kΔ/2)/(kΔ/2) (``box_transfer``), then the same cut (``kind="box"``);
- y, ``filter_y``: a top-hat over each coarse cell, the mean of the fine cells weighted by
  how much of each lies in the coarse cell (``y_box_weights``). The fine values are taken as
  cell means, so the wall-normal integral ∫u dy is kept exactly, and where the coarse faces
  are fine faces (the same tanh stretching with ny_fine a multiple of ny_coarse) each
  coarse value is exactly the mean of the field over its cell. The result lives at the
  coarse cell centres.

Back to the solver: ``faces_from_centres`` puts v back on the faces (the solver's layout),
and ``upsample`` takes a coarse cell-centred field to a finer grid (spectral zero-padding in
x–z, ``interpolate_y`` in y), e.g. to start a fine reference from a stored coarse frame.
"""

from __future__ import annotations

import math

import torch

from physics.channel.grid import ChannelGrid, interpolate_y

X_Z_FILTERS = ("spectral", "box")


def box_transfer(k: torch.Tensor, width: float) -> torch.Tensor:
    """The top-hat filter's transfer function sin(kΔ/2)/(kΔ/2) at angular wavenumbers k
    (1 at k = 0), for a filter width Δ = ``width``."""
    return torch.sinc(k * width / (2 * math.pi))  # torch.sinc(x) = sin(πx)/(πx)


def filter_xz(
    u: torch.Tensor,
    nx: int,
    nz: int,
    kind: str = "spectral",
    widths: tuple[float, float] | None = None,
    lengths: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Fields (..., NX, ny, NZ) on a coarser x–z grid (..., nx, ny, nz) by keeping the Fourier
    modes both grids hold (|m_x| < nx/2, m_z < nz/2; the Nyquist modes are dropped so the
    result stays real). Physical values keep their amplitude (forward-normalised FFT).

    ``kind="box"`` first multiplies each kept mode by the top-hat transfer function of the
    filter widths ``widths`` = (Δx, Δz) in a box of periods ``lengths`` = (lx, lz)."""
    big_x, big_z = u.shape[-3], u.shape[-1]
    if nx > big_x or nz > big_z:
        raise ValueError(f"cannot filter a {big_x}×{big_z} x–z grid onto a finer {nx}×{nz} one")
    if kind not in X_Z_FILTERS:
        raise ValueError(f"the x–z filter is one of {', '.join(X_Z_FILTERS)}; got {kind!r}")
    if kind == "spectral" and (nx, nz) == (big_x, big_z):
        return u.clone()
    spectrum = torch.fft.rfftn(u, dim=(-3, -1), norm="forward")  # (..., NX, ny, NZ//2+1)
    if kind == "box":
        if widths is None or lengths is None:
            raise ValueError("a box filter needs its widths (Δx, Δz) and the box (lx, lz)")
        real = u.real.dtype if u.is_complex() else u.dtype
        mx = torch.fft.fftfreq(big_x, 1.0 / big_x, dtype=torch.float64)
        mz = torch.fft.rfftfreq(big_z, 1.0 / big_z, dtype=torch.float64)
        gx = box_transfer(mx * (2 * math.pi / lengths[0]), widths[0])
        gz = box_transfer(mz * (2 * math.pi / lengths[1]), widths[1])
        gain = (gx[:, None, None] * gz[None, None, :]).to(device=u.device, dtype=real)
        spectrum = spectrum * gain
    kx_keep = (nx - 1) // 2  # modes 0..kx_keep and −kx_keep..−1 along x
    kz_keep = (nz - 1) // 2
    out = spectrum.new_zeros(*u.shape[:-3], nx, u.shape[-2], nz // 2 + 1)
    out[..., : kx_keep + 1, :, : kz_keep + 1] = spectrum[..., : kx_keep + 1, :, : kz_keep + 1]
    if kx_keep:
        out[..., -kx_keep:, :, : kz_keep + 1] = spectrum[..., -kx_keep:, :, : kz_keep + 1]
    return torch.fft.irfftn(out, s=(nx, nz), dim=(-3, -1), norm="forward")


def y_box_weights(fine_faces: torch.Tensor, coarse_faces: torch.Tensor) -> torch.Tensor:
    """The (NY_coarse, ny_fine) float64 matrix W of the wall-normal top-hat filter:
    W[J, j] = |fine cell j ∩ coarse cell J| / |coarse cell J|, so (W u)_J is the mean over
    coarse cell J of u taken constant on each fine cell. Both face lists run from −1 to 1."""
    fine = fine_faces.to(torch.float64)
    coarse = coarse_faces.to(torch.float64)
    if len(coarse) > len(fine):
        raise ValueError(
            f"cannot filter {len(fine) - 1} wall-normal cells onto a finer {len(coarse) - 1}"
        )
    if abs(fine[0] - coarse[0]) > 1e-12 or abs(fine[-1] - coarse[-1]) > 1e-12:
        raise ValueError("the fine and coarse wall-normal grids must span the same walls")
    low = torch.maximum(coarse[:-1, None], fine[None, :-1])
    high = torch.minimum(coarse[1:, None], fine[None, 1:])
    overlap = (high - low).clamp_min(0.0)
    return overlap / (coarse[1:] - coarse[:-1])[:, None]


def filter_y(u: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Fields (..., ny_fine, nz) → (..., NY_coarse, nz) through ``y_box_weights``' matrix,
    applied along the y axis (second to last)."""
    w = weights.to(device=u.device, dtype=u.dtype)
    return torch.einsum("Jj,...jz->...Jz", w, u)


def faces_from_centres(centred: torch.Tensor) -> torch.Tensor:
    """Inverse of ``ChannelGrid.to_centres`` for v, (B, 3, nx, ny, nz) → (B, 3, nx, ny, nz):
    v_f[0] = 0 (lower wall), v_f[j+1] = 2 v_c[j] − v_f[j]; u and w are kept. Follow it by
    the solver's projection, which removes what the recursion amplifies that is not
    divergence-free."""
    v_c = centred[:, 1]
    faces = torch.zeros_like(v_c)
    for j in range(v_c.shape[2] - 1):
        faces[:, :, j + 1] = 2 * v_c[:, :, j] - faces[:, :, j]
    return torch.stack([centred[:, 0], faces, centred[:, 2]], dim=1)


def upsample(
    centred: torch.Tensor, coarse_grid: ChannelGrid, fine_grid: ChannelGrid
) -> torch.Tensor:
    """A cell-centred field (..., ox, oy, oz) on ``coarse_grid`` on the finer ``fine_grid``
    (..., nx, ny, nz) (same box and walls).

    x–z: the Fourier series of the coarse field on the fine points (forward-normalised
    spectrum zero-padded), keeping the modes ``filter_xz`` keeps (|m_x| ≤ (ox−1)/2,
    m_z ≤ (oz−1)/2; the coarse Nyquist modes are dropped), so ``filter_xz`` with the
    spectral cut takes the result back to the input for any field ``filter_xz`` made.
    y: ``interpolate_y`` from the coarse to the fine cell centres (piecewise cubic through
    the wall value 0, exact for cubics that vanish at the walls)."""
    ox, oy, oz = centred.shape[-3:]
    if (ox, oy, oz) != (coarse_grid.nx, coarse_grid.ny, coarse_grid.nz):
        raise ValueError(
            f"the field's grid {ox}×{oy}×{oz} is not the coarse grid "
            f"{coarse_grid.nx}×{coarse_grid.ny}×{coarse_grid.nz}"
        )
    nx, nz = fine_grid.nx, fine_grid.nz
    if nx < ox or nz < oz or fine_grid.ny < oy:
        raise ValueError(
            f"cannot upsample a {ox}×{oy}×{oz} field onto a coarser {nx}×{fine_grid.ny}×{nz} grid"
        )
    spectrum = torch.fft.rfftn(centred, dim=(-3, -1), norm="forward")
    kx_keep, kz_keep = (ox - 1) // 2, (oz - 1) // 2
    padded = spectrum.new_zeros(*centred.shape[:-3], nx, oy, nz // 2 + 1)
    padded[..., : kx_keep + 1, :, : kz_keep + 1] = spectrum[..., : kx_keep + 1, :, : kz_keep + 1]
    if kx_keep:
        padded[..., -kx_keep:, :, : kz_keep + 1] = spectrum[..., -kx_keep:, :, : kz_keep + 1]
    fine_xz = torch.fft.irfftn(padded, s=(nx, nz), dim=(-3, -1), norm="forward")
    if fine_grid.ny == oy and torch.allclose(coarse_grid.y_centres, fine_grid.y_centres):
        return fine_xz
    return interpolate_y(fine_xz, coarse_grid.y_centres, fine_grid.y_centres, dim=-2)
