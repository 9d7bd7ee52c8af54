"""Random initial conditions on the periodic square.

- ``gaussian_random_field``: Gaussian fields with covariance σ²(−Δ + τ²)^(−α) (the FNO
  benchmark's initial vorticity);
- ``filtered_random_velocity`` / ``filtered_random_vorticity``: a divergence-free velocity
  with random phases whose shell energy spectrum equals a prescribed E(k) exactly;
- ``mcwilliams_vorticity``: McWilliams' (1984) decaying-turbulence initial condition, a
  filtered random field with a spectrum peaked at k₀.

Every draw starts from a CPU ``torch.Generator`` seeded with ``seed`` (in float64), so a
seed gives the same field on every device and in every dtype; the result is then cast and
moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from physics.grid import Grid2D
from physics.spectra import half_plane_weights, shell_index
from physics.spectral import derivative_wavenumbers, laplacian_symbol


def gaussian_random_field(
    n: int,
    batch: int = 1,
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float | None = None,
    length: float = 1.0,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Zero-mean Gaussian random fields w ~ N(0, C), C = σ²(−Δ + τ²)^(−α), shaped (batch, 1, n, n).

    C is diagonal in Fourier modes: the Fourier coefficient ĉ(κ) = L⁻²∫ w e^{−iκ·x} dx has
    variance σ²(|κ|² + τ²)^(−α) / L², with κ = 2π/L·k. It is drawn by colouring real white
    noise ξ (one N(0, 1) sample per grid point): w = IDFT(n·σ(|κ|² + τ²)^(−α/2)/L · DFT(ξ)),
    which gives exactly these variances and the Hermitian symmetry of a real field. The mean
    mode is removed.

    Defaults are those of the FNO Navier–Stokes benchmark: α = 2.5, τ = 7 and, when sigma is
    None, σ = τ^(α−1) (= τ^(½(2α − d)) in d = 2). Note that the FNO reference sampler takes
    the real part of complex noise scaled by √2·σ, which doubles the variance: pass
    ``sigma=math.sqrt(2) * tau ** (alpha - 1)`` to reproduce its amplitude.

    The noise is drawn on the CPU from a ``torch.Generator`` seeded with ``seed`` (a fresh
    random seed when None) in float64, so a seed gives the same field on every device and in
    every dtype; the result is then cast and moved.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    grid = Grid2D(n, length)
    if sigma is None:
        sigma = tau ** (alpha - 1.0)
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    noise = torch.randn((batch, 1, n, n), generator=generator, dtype=torch.float64)

    kx, ky = grid.wavenumbers(dtype=torch.float64)
    amplitude = (n * sigma / length) * (kx**2 + ky**2 + tau**2) ** (-alpha / 2)
    amplitude[0, 0] = 0.0  # zero mean
    w = torch.fft.irfft2(torch.fft.rfft2(noise) * amplitude, s=(n, n))
    return w.to(device=device, dtype=dtype)


# Energy spectra E(k) of integer shell wavenumbers k (float64 tensors), for the fields below.
SpectrumFn = Callable[[torch.Tensor], torch.Tensor]


def mcwilliams_spectrum(k: torch.Tensor, k0: float = 4.0) -> torch.Tensor:
    """The unnormalised shape E(k) = k⁶ / (1 + k/(2k₀))¹⁸ used by ``mcwilliams_vorticity``.

    d ln E/dk = 6/k − 18/(2k₀ + k) vanishes at k = k₀, so the peak is exactly at k₀; it
    rises as k⁶ below the peak and falls as k⁻¹² far above it.
    """
    return k**6 / (1 + k / (2 * k0)) ** 18


def power_law_spectrum(slope: float, kmin: float = 1.0, kmax: float | None = None) -> SpectrumFn:
    """E(k) = k^(−slope) for kmin ≤ k ≤ kmax (kmax None: no upper bound), 0 elsewhere."""
    if kmin <= 0 or (kmax is not None and kmax < kmin):
        raise ValueError(f"Need 0 < kmin ≤ kmax; got kmin={kmin}, kmax={kmax}.")

    def spectrum(k: torch.Tensor) -> torch.Tensor:
        inside = k >= kmin if kmax is None else (k >= kmin) & (k <= kmax)
        return torch.where(inside, k.clamp(min=kmin) ** (-slope), torch.zeros_like(k))

    return spectrum


def _random_phases(n: int, batch: int, seed: int | None) -> torch.Tensor:
    """Unit-modulus rfft2 coefficients (batch, 1, n, n//2+1) with independent uniform phases.

    They are the phases of the DFT of real white noise, so they have the Hermitian symmetry
    of a real field's spectrum (the kx = 0 and Nyquist columns pair κ with −κ) without any
    bookkeeping; drawn on the CPU in float64 from a generator seeded with ``seed``.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    noise_hat = torch.fft.rfft2(
        torch.randn((batch, 1, n, n), generator=generator, dtype=torch.float64)
    )
    modulus = noise_hat.abs()
    return torch.where(modulus > 0, noise_hat / torch.where(modulus > 0, modulus, 1.0), 0)


def streamfunction_hat_with_spectrum(
    n: int,
    spectrum: SpectrumFn,
    batch: int = 1,
    energy: float | None = None,
    length: float = 2 * math.pi,
    seed: int | None = None,
) -> torch.Tensor:
    """rfft2 coefficients ψ̂ (batch, 1, n, n//2+1), float64 on the CPU, of random stream
    functions whose velocity u = (∂ψ/∂y, −∂ψ/∂x) has the shell spectrum ``spectrum``.

    Shells are those of ``physics.spectra``: mode κ = 2π/L·(kx, ky) is in shell
    k = round(|(kx, ky)|). The spectrum is imposed on the shells 1 ≤ k ≤ (n − 1)//2, the
    complete rings that hold no Nyquist mode; the mean and the outer shells get no energy.
    Within shell k all of its M(k) modes (full plane, κ and −κ both counted) get the same
    energy E(k)/M(k) and independent uniform random phases, so with the Parseval
    normalisation of ``physics.spectra`` (E(k) = Σ_shell ½|κ|²|ψ̂|²/n⁴)

        energy_spectrum(ω)[k] = E(k)  exactly, for every draw (not only on average),

    i.e. |ψ̂(κ)| = n²·√(2E(k)/M(k))/|κ|. With ``energy`` given, E is first rescaled so that
    Σₖ E(k) = energy (the kinetic energy ½⟨|u|²⟩); otherwise E is taken as it is.
    """
    grid = Grid2D(n, length)
    index, _ = shell_index(grid)
    kcut = (n - 1) // 2
    if kcut < 1:
        raise ValueError(f"A grid of {n} points per side has no complete wavenumber shell.")
    k = torch.arange(1, kcut + 1, dtype=torch.float64)
    e_shell = torch.as_tensor(spectrum(k), dtype=torch.float64).expand(kcut).clone()
    if not (torch.isfinite(e_shell).all() and (e_shell >= 0).all()):
        raise ValueError("The energy spectrum must be finite and non-negative on shells 1..kcut.")
    total = float(e_shell.sum())
    if total <= 0:
        raise ValueError(
            f"The energy spectrum has no energy on the shells 1 ≤ k ≤ {kcut} this grid holds."
        )
    if energy is not None:
        if not energy > 0:
            raise ValueError(f"The kinetic energy must be positive; got {energy}.")
        e_shell = e_shell * (energy / total)
    weights = half_plane_weights(grid, dtype=torch.float64)
    inside = (index >= 1) & (index <= kcut)
    counts = torch.zeros(kcut + 1, dtype=torch.float64).index_add_(
        0, index[inside], weights.expand_as(index)[inside]
    )
    per_mode = torch.zeros(index.shape, dtype=torch.float64)
    per_mode[inside] = e_shell[index[inside] - 1] / counts[index[inside]]
    k2 = laplacian_symbol(grid, dtype=torch.float64)
    amplitude = n**2 * torch.sqrt(2 * per_mode) / torch.where(k2 > 0, k2, 1.0).sqrt()
    return amplitude * _random_phases(n, batch, seed)


def _spectrum_from_arguments(
    spectrum: SpectrumFn | None, slope: float | None, kmin: float, kmax: float | None
) -> SpectrumFn:
    if (spectrum is None) == (slope is None):
        raise ValueError("Give either a spectrum E(k) or a power-law slope, not both or neither.")
    return spectrum if spectrum is not None else power_law_spectrum(slope, kmin, kmax)


def filtered_random_velocity(
    n: int,
    batch: int = 1,
    spectrum: SpectrumFn | None = None,
    slope: float | None = None,
    kmin: float = 1.0,
    kmax: float | None = None,
    energy: float | None = None,
    length: float = 2 * math.pi,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A random divergence-free velocity (batch, 2, n, n) = (u, v) with a prescribed spectrum.

    The spectrum is ``spectrum`` (a callable E(k) of the integer shell wavenumber k, a
    float64 tensor) or, with ``slope``, E(k) = k^(−slope) on kmin ≤ k ≤ kmax; either is
    taken as the absolute shell spectrum, or rescaled to the kinetic energy ``energy``.
    The velocity derives from a stream function, u = ∂ψ/∂y, v = −∂ψ/∂x, so ∇·u = 0 to
    round-off, and each draw's shell spectrum equals the prescribed one on the shells
    1 ≤ k ≤ (n − 1)//2 (see ``streamfunction_hat_with_spectrum``): the amplitudes are set,
    only the phases are random. Reproducible from ``seed`` on every device and dtype.
    """
    psi_hat = streamfunction_hat_with_spectrum(
        n, _spectrum_from_arguments(spectrum, slope, kmin, kmax), batch, energy, length, seed
    )
    kx, ky = derivative_wavenumbers(Grid2D(n, length), dtype=torch.float64)
    u = torch.fft.irfft2(1j * ky * psi_hat, s=(n, n))
    v = torch.fft.irfft2(-1j * kx * psi_hat, s=(n, n))
    return torch.cat([u, v], dim=1).to(device=device, dtype=dtype)


def filtered_random_vorticity(
    n: int,
    batch: int = 1,
    spectrum: SpectrumFn | None = None,
    slope: float | None = None,
    kmin: float = 1.0,
    kmax: float | None = None,
    energy: float | None = None,
    length: float = 2 * math.pi,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The vorticity ω = ∂v/∂x − ∂u/∂y (batch, 1, n, n) of ``filtered_random_velocity`` with
    the same arguments (the same seed gives the curl of the same velocity).

    ``physics.spectra.energy_spectrum(ω, length)`` returns the prescribed E(k) on the shells
    1 ≤ k ≤ (n − 1)//2 to round-off, and 0 elsewhere; the mean of ω is zero.
    """
    psi_hat = streamfunction_hat_with_spectrum(
        n, _spectrum_from_arguments(spectrum, slope, kmin, kmax), batch, energy, length, seed
    )
    k2 = laplacian_symbol(Grid2D(n, length), dtype=torch.float64)
    w = torch.fft.irfft2(k2 * psi_hat, s=(n, n))
    return w.to(device=device, dtype=dtype)


def mcwilliams_vorticity(
    n: int,
    batch: int = 1,
    k0: float = 4.0,
    energy: float = 0.5,
    length: float = 2 * math.pi,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """McWilliams-type initial vorticity for decaying 2D turbulence, (batch, 1, n, n).

    After McWilliams (1984), "The emergence of isolated coherent vortices in turbulent
    flow", J. Fluid Mech. 146, 21–43: a zero-mean field with random phases under an
    isotropic, narrow-band energy spectrum peaked at k₀, normalised to a given kinetic
    energy. The exact shape used here is

        E(k) = C · k⁶ / (1 + k/(2k₀))¹⁸,    C such that Σₖ E(k) = energy,

    whose maximum is at k = k₀ exactly (``mcwilliams_spectrum``). McWilliams' own shape
    differs in detail (his peak wavenumber was 6); this steeper one puts almost no energy
    at the grid scale. (Written as (1 + k/k₀)¹⁸ the same form would peak at k₀/2.)

    k is the integer shell wavenumber (units of 2π/L); the defaults k₀ = 4 and energy 0.5
    (½⟨|u|²⟩, i.e. an rms speed of 1) are meant for the [0, 2π]² box. Each draw has exactly
    this spectrum on the shells 1 ≤ k ≤ (n − 1)//2 (see ``filtered_random_vorticity``).
    """
    if not k0 > 0:
        raise ValueError(f"The peak wavenumber k0 must be positive; got {k0}.")
    return filtered_random_vorticity(
        n,
        batch,
        spectrum=lambda k: mcwilliams_spectrum(k, k0),
        energy=energy,
        length=length,
        seed=seed,
        device=device,
        dtype=dtype,
    )
