"""Channel velocity as users and models see it, on a coarser x–z grid.

Datasets, statistics and models take all three components at the cell centres y_c
(``ChannelGrid.to_centres``: v interpolated from the faces, ½(v_f[j] + v_f[j+1]) with the
upper wall's v = 0), which are symmetric about y = 0, so the two halves fold point onto
point. ``filter_xz`` truncates the x and z Fourier series to a coarser grid (a
sharp spectral filter), which is how a dataset can be stored on a filtered LES grid.
"""

from __future__ import annotations

import torch


def filter_xz(u: torch.Tensor, nx: int, nz: int) -> torch.Tensor:
    """Fields (..., NX, ny, NZ) on a coarser x–z grid (..., nx, ny, nz) by keeping the Fourier
    modes both grids hold (|m_x| < nx/2, m_z < nz/2; the Nyquist modes are dropped so the
    result stays real). Physical values keep their amplitude (forward-normalised FFT)."""
    big_x, big_z = u.shape[-3], u.shape[-1]
    if nx > big_x or nz > big_z:
        raise ValueError(f"cannot filter a {big_x}×{big_z} x–z grid onto a finer {nx}×{nz} one")
    if (nx, nz) == (big_x, big_z):
        return u.clone()
    spectrum = torch.fft.rfftn(u, dim=(-3, -1), norm="forward")  # (..., NX, ny, NZ//2+1)
    kx_keep = (nx - 1) // 2  # modes 0..kx_keep and −kx_keep..−1 along x
    kz_keep = (nz - 1) // 2
    out = spectrum.new_zeros(*u.shape[:-3], nx, u.shape[-2], nz // 2 + 1)
    out[..., : kx_keep + 1, :, : kz_keep + 1] = spectrum[..., : kx_keep + 1, :, : kz_keep + 1]
    if kx_keep:
        out[..., -kx_keep:, :, : kz_keep + 1] = spectrum[..., -kx_keep:, :, : kz_keep + 1]
    return torch.fft.irfftn(out, s=(nx, nz), dim=(-3, -1), norm="forward")
