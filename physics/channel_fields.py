"""Channel velocity as users and models see it: every component at the cell centres.

The solver keeps v on the cell faces (``physics.channel_grid``: v[..., j, :] at y_f[j], the
lower face of cell j; the upper wall, where v = 0, is not stored). Datasets, statistics and
models want all three components on one set of points, the cell centres y_c, which are
symmetric about y = 0, so the two halves of the channel fold point onto point:

    v_c[j] = ½ (v_f[j] + v_f[j+1]),   v_f[ny] = 0 (upper wall),

a second-order interpolation that keeps v = 0 at the walls' mirror points. u and w already
live at the centres. ``filter_xz`` truncates the x and z Fourier series to a coarser grid (a
sharp spectral filter), which is how a dataset can be stored on a filtered LES grid.
"""

from __future__ import annotations

import torch


def cell_centred_velocity(u: torch.Tensor) -> torch.Tensor:
    """Solver state (B, 3, nx, ny, nz), v on the faces → all components at the centres."""
    if u.ndim != 5 or u.shape[1] != 3:
        raise ValueError(f"Expected velocities shaped (B, 3, nx, ny, nz); got {tuple(u.shape)}.")
    v_faces = u[:, 1]
    upper = torch.zeros_like(v_faces[:, :, :1])
    v_above = torch.cat([v_faces[:, :, 1:], upper], dim=2)
    return torch.stack([u[:, 0], 0.5 * (v_faces + v_above), u[:, 2]], dim=1)


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
