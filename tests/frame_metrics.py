"""The metrics a rollout or a comparison reports, recomputed in plain numpy (float64) from
the frames it stored, for tests that hold the reported numbers.

Nothing here calls project code: the definitions are written out from the documented
formulas. Frames are 2D vorticity ω (n, n) on the periodic box [0, L)², y along the first
axis and x along the second. With the normalised full-plane DFT c(m) = Σ ω e^{−iκ·x}/n²
(κ = 2π m/L, m integer, the Nyquist entry at −n/2), Parseval reads ⟨ω²⟩ = Σ_m |c(m)|²:

* relative L2 error ‖model − reference‖ / ‖reference‖ (the reference is the denominator);
* relative H1 error with the weights 1 + |κ|² (the Nyquist modes kept):
  (Σ (1 + |κ|²)|c_e|²)^½ / (Σ (1 + |κ|²)|c_r|²)^½, e = model − reference;
* Pearson correlation over all points;
* band error shares ‖P_b(model − reference)‖ / ‖reference‖ over shells round(|m|) (halves up):
  low |m| < n/8, mid n/8 ≤ |m| < n/4, high the rest (their squares sum to rel_l2²);
* kinetic energy ½⟨u² + v²⟩ with ψ = ω/|κ|² (mean dropped), u = ∂ψ/∂y, v = −∂ψ/∂x, the first
  derivatives without their Nyquist entries; its shell spectrum E(k), k = 0 … ⌈√2·n/2⌉;
* enstrophy ½⟨ω²⟩;
* spectral resampling: the Fourier series kept on |m_x|, |m_y| < min(n_in, n_out)/2 and
  sampled on the other grid.
"""

from __future__ import annotations

import math

import numpy as np

BANDS = ("low", "mid", "high")


def _integers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer wavenumbers (m_x, m_y), each (n, n), of ``np.fft.fft2``'s layout."""
    m = np.fft.fftfreq(n, d=1.0 / n)
    my, mx = np.meshgrid(m, m, indexing="ij")
    return mx, my


def coefficients(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    return np.fft.fft2(w) / w.size


def rel_l2(model: np.ndarray, reference: np.ndarray) -> float:
    model, reference = np.float64(model), np.float64(reference)
    return float(np.sqrt(((model - reference) ** 2).sum() / (reference**2).sum()))


def rel_h1(model: np.ndarray, reference: np.ndarray, length: float) -> float:
    n = reference.shape[-1]
    mx, my = _integers(n)
    weight = 1 + (2 * math.pi / length) ** 2 * (mx**2 + my**2)
    error = coefficients(np.float64(model) - np.float64(reference))
    return float(
        np.sqrt(
            (weight * abs(error) ** 2).sum() / (weight * abs(coefficients(reference)) ** 2).sum()
        )
    )


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.float64(a).ravel() - np.float64(a).mean()
    b = np.float64(b).ravel() - np.float64(b).mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def shells(n: int) -> np.ndarray:
    mx, my = _integers(n)
    return np.floor(np.sqrt(mx**2 + my**2) + 0.5).astype(int)


def band_shares(model: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    n = reference.shape[-1]
    shell = shells(n)
    low_edge = max(1, n // 8)
    mid_edge = max(low_edge + 1, n // 4)
    power = abs(coefficients(np.float64(model) - np.float64(reference))) ** 2
    norm = np.sqrt((np.float64(reference) ** 2).mean())
    masks = (shell < low_edge, (shell >= low_edge) & (shell < mid_edge), shell >= mid_edge)
    return {
        b: float(np.sqrt(power[mask].sum()) / norm) for b, mask in zip(BANDS, masks, strict=True)
    }


def _velocity_power(w: np.ndarray, length: float) -> np.ndarray:
    """½(|û|² + |v̂|²) per mode (normalised coefficients), (n, n)."""
    n = w.shape[-1]
    mx, my = _integers(n)
    scale = 2 * math.pi / length
    k2 = scale**2 * (mx**2 + my**2)
    k2[0, 0] = 1.0
    psi = coefficients(w) / k2
    psi[0, 0] = 0.0
    nyquist = n // 2 if n % 2 == 0 else None
    kx = np.where(np.abs(mx) == nyquist, 0.0, scale * mx)
    ky = np.where(np.abs(my) == nyquist, 0.0, scale * my)
    return 0.5 * (kx**2 + ky**2) * abs(psi) ** 2


def kinetic_energy(w: np.ndarray, length: float) -> float:
    return float(_velocity_power(w, length).sum())


def enstrophy(w: np.ndarray) -> float:
    return float(0.5 * (np.float64(w) ** 2).mean())


def shell_numbers(n: int) -> list[int]:
    return list(range(math.ceil(math.sqrt(2.0) * n / 2) + 1))


def energy_spectrum(w: np.ndarray, length: float) -> np.ndarray:
    n = w.shape[-1]
    power = _velocity_power(w, length)
    return np.bincount(shells(n).ravel(), power.ravel(), minlength=len(shell_numbers(n)))


def resample(w: np.ndarray, n_out: int) -> np.ndarray:
    n_in = w.shape[-1]
    if n_in == n_out:
        return np.float64(w)
    keep = (min(n_in, n_out) + 1) // 2  # |m| < keep in both directions
    mx_in, my_in = _integers(n_in)
    c = coefficients(w)
    out = np.zeros((n_out, n_out), dtype=complex)
    inside = (np.abs(mx_in) < keep) & (np.abs(my_in) < keep)
    rows = np.asarray(my_in[inside], dtype=int) % n_out
    cols = np.asarray(mx_in[inside], dtype=int) % n_out
    out[rows, cols] = c[inside]
    return np.fft.ifft2(out * n_out**2).real
