"""Initial velocity fields for the periodic box [0, 2π)³ (or [0, L)³): (…, 3, n, n, n).

- ``random_velocity``: divergence-free random fields whose shell spectrum is exactly
  E(k) ∝ k⁴ exp(−2(k/k_p)²) (peak at k_p), scaled to a stated energy, seeded.
- ``taylor_green``: the Taylor–Green vortex (Taylor & Green 1937; Brachet et al. 1983).
- ``abc_flow``: the Arnold–Beltrami–Childress flow, a Beltrami field (ω = k u), hence an
  exact steady solution of Euler's equations that decays as e^{−νk²t} under viscosity.
"""

from __future__ import annotations

import torch

from physics.hit3d.grid import Grid3D, irfftn, rfftn
from physics.hit3d.operators import leray_project


def model_spectrum(k: torch.Tensor, k_peak: float) -> torch.Tensor:
    """E(k) ∝ k⁴ exp(−2(k/k_p)²), unnormalised: the initial spectrum of many HIT studies
    (e.g. Orszag & Patterson 1972; Rogallo 1981); dE/dk = 0 at k = k_p."""
    return k**4 * torch.exp(-2 * (k / k_peak) ** 2)


def shell_energies(k_peak: float, top: int, energy: float) -> torch.Tensor:
    """The shell energies (top+1,) that ``random_velocity`` gives a field: the model
    spectrum at k = 0, …, top scaled to sum to ``energy`` (shell 0, the mean, is empty)."""
    target = model_spectrum(torch.arange(top + 1, dtype=torch.float64), k_peak)
    return target * (energy / target.sum())


def random_velocity(
    grid: Grid3D,
    batch: int = 1,
    k_peak: float = 2.0,
    u_rms: float | None = 1.0,
    energy: float | None = None,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random divergence-free velocities (batch, 3, n, n, n) with a prescribed spectrum.

    Gaussian white noise (drawn on the CPU from ``generator``, or one seeded with ``seed``,
    so a seed gives the same field on every device) is Leray-projected and restricted to the
    shells k = 1, …, K, K = (n−1)//3 (every mode of them inside the 2/3-rule cube, so the
    solver keeps the whole field); then each shell (round(|κ|) = k, as
    ``physics.spectra.velocity_energy_spectrum``) is rescaled so that the shell-summed
    spectrum of each field equals C·model_spectrum(k, k_peak) exactly, with C set by the
    energy: ``energy`` E = ½⟨|u|²⟩ when given, otherwise ``u_rms`` u' (the rms of one
    component, E = 3u'²/2). The mean flow is zero. Phases stay random, so the fields are
    Gaussian only in the sense of random phases; their spectra are deterministic.
    """
    if energy is None:
        if u_rms is None or not u_rms > 0:
            raise ValueError(f"Give a positive u_rms or energy; got u_rms={u_rms}.")
        energy = 1.5 * u_rms**2
    if not energy > 0:
        raise ValueError(f"The energy must be positive; got {energy}.")
    top = (grid.n - 1) // 3
    if not (k_peak > 0 and top >= 1):
        raise ValueError(f"Need k_peak > 0 and n ≥ 4; got k_peak={k_peak}, n={grid.n}.")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    n = grid.n
    noise = torch.randn((batch, 3, n, n, n), generator=generator, dtype=torch.float64)
    k = grid.derivative_wavenumbers(dtype=torch.float64)
    u_hat = leray_project(rfftn(noise), k)
    shells = grid.shell_index()
    u_hat = u_hat * ((shells >= 1) & (shells <= top))
    weights = grid.half_space_weights() / float(n) ** 6
    density = 0.5 * (u_hat.abs() ** 2).sum(dim=1) * weights  # (batch, n, n, n//2+1)
    shell_energy = density.new_zeros((batch, top + 1)).index_add_(
        1, shells.clamp(max=top).flatten(), density.reshape(batch, -1)
    )
    target = shell_energies(k_peak, top, energy)
    scale = torch.where(shell_energy > 0, torch.sqrt(target / shell_energy.clamp_min(1e-300)), 0)
    u_hat = u_hat * scale[:, shells.clamp(max=top)][:, None]
    return irfftn(u_hat, n).to(device=device, dtype=dtype)


def taylor_green(
    grid: Grid3D,
    batch: int = 1,
    amplitude: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The Taylor–Green vortex (batch, 3, n, n, n), for L = 2π:

        u = A sin x cos y cos z,   v = −A cos x sin y cos z,   w = 0,

    (coordinates scaled by 2π/L otherwise); E = A²/8, ⟨|ω|²⟩ = 3A²/4 at t = 0.
    """
    x, y, z = (c * grid.scale for c in grid.coordinates(device, torch.float64))
    u = amplitude * torch.sin(x) * torch.cos(y) * torch.cos(z)
    v = -amplitude * torch.cos(x) * torch.sin(y) * torch.cos(z)
    field = torch.stack([u, v, torch.zeros_like(u)])
    return field.expand(batch, -1, -1, -1, -1).to(dtype).contiguous()


def abc_flow(
    grid: Grid3D,
    a: float = 1.0,
    b: float = 1.0,
    c: float = 1.0,
    k: int = 1,
    batch: int = 1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The ABC flow at integer wavenumber k (batch, 3, n, n, n), for L = 2π:

        u = A sin kz + C cos ky,   v = B sin kx + A cos kz,   w = C sin ky + B cos kx.

    It is a Beltrami field, ∇ × u = k u, so u × ω = 0 and the nonlinear term is a gradient
    (absorbed by the pressure): a steady solution of Euler's equations, and under viscosity
    u(t) = e^{−νk²t} u(0) exactly (Dombre et al. 1986). E = (A² + B² + C²)/2.
    """
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"The ABC wavenumber must be a positive integer; got {k}.")
    x, y, z = (s * grid.scale * k for s in grid.coordinates(device, torch.float64))
    u = a * torch.sin(z) + c * torch.cos(y)
    v = b * torch.sin(x) + a * torch.cos(z)
    w = c * torch.sin(y) + b * torch.cos(x)
    field = torch.stack([u, v, w])
    return field.expand(batch, -1, -1, -1, -1).to(dtype).contiguous()
