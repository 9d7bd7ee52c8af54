"""Gaussian random fields on the periodic square, for initial conditions."""

from __future__ import annotations

import torch

from physics.grid import Grid2D


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
