"""Eddy-viscosity closures for large-eddy simulation in the periodic box.

The resolved velocity of an LES obeys the Navier–Stokes equations plus the divergence of a
modelled subgrid stress, τ_ij − ⅓δ_ij τ_kk = −2 ν_t S_ij (the trace goes into the pressure):

    ∂u_i/∂t = (u × ω)_i − ∂Π/∂x_i + ν ∇²u_i + ∂(2 ν_t S_ij)/∂x_j,
    S_ij = ½(∂u_i/∂x_j + ∂u_j/∂x_i),   |S| = (2 S_ij S_ij)^½.

The coarse pseudo-spectral solver keeps |κᵢ| < n/3 (the 2/3 rule), a sharp cutoff at
k_c = (2π/L)·n/3, so its implied filter width is Δ = π/k_c = 3L/(2n) (``filter_width``), the
width for which Lilly's (1967) analysis of a cutoff filter gives C_s ≈ 0.17.

- ``Smagorinsky`` (1963): ν_t = (C_s Δ)² |S|, C_s = 0.17.
- ``DynamicSmagorinsky`` (Germano et al. 1991, least squares of Lilly 1992): ν_t = C Δ² |S|
  with C = ⟨L_ij M_ij⟩/⟨M_ij M_ij⟩ from the Germano identity under a sharp spectral test
  filter at twice the grid filter's width (|κᵢ| < n/6), ⟨·⟩ the average over the box (the
  homogeneous directions of HIT are all three), then clipped to C ≥ 0 (ν_t ≥ 0).

Both take the velocity u (…, 3, n, n, n) and its gradient g_ij = ∂u_i/∂x_j
(…, 3, 3, n, n, n) on the grid and return ν_t (…, n, n, n). The strain rate, its magnitude
and tensor contractions are those of the channel closures (``physics.channel.les``), which
share this index layout.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from physics.channel.les import SYMMETRIC, contract, strain_magnitude, strain_rate
from physics.hit3d.grid import Grid3D, irfftn, rfftn
from physics.hit3d.operators import gradient_hat


class EddyViscosityModel(Protocol):
    name: str

    def eddy_viscosity(
        self, u: torch.Tensor, grid: Grid3D, gradient: torch.Tensor | None = None
    ) -> torch.Tensor: ...


def filter_width(grid: Grid3D) -> float:
    """Δ = π/k_c, k_c = (2π/L)·n/3 the cutoff of the 2/3 rule: Δ = 3L/(2n) = 1.5 dx."""
    return math.pi / (grid.scale * grid.n / 3)


def velocity_gradient(u: torch.Tensor, grid: Grid3D) -> torch.Tensor:
    """g_ij = ∂u_i/∂x_j (…, 3, 3, n, n, n) of a velocity (…, 3, n, n, n), spectrally."""
    k = grid.derivative_wavenumbers(u.device, u.dtype)
    return irfftn(gradient_hat(rfftn(u), k), grid.n)


def sharp_filter(fields: torch.Tensor, grid: Grid3D, ratio: float = 2.0) -> torch.Tensor:
    """Sharp spectral cutoff of real fields (…, n, n, n) keeping |κᵢ| < n/(3·ratio): the
    2/3 rule's band narrowed by ``ratio``, i.e. a filter of width ratio·Δ."""
    mask = grid.cutoff_mask(grid.n / (3 * ratio), fields.device)
    return irfftn(rfftn(fields) * mask, grid.n)


class Smagorinsky:
    """ν_t = (C_s Δ)² |S| (Smagorinsky 1963), Δ = ``filter_width(grid)``; C_s = 0.17 is
    Lilly's (1967) value for a sharp spectral cutoff in the inertial range."""

    name = "smagorinsky"

    def __init__(self, cs: float = 0.17):
        if not cs > 0:
            raise ValueError(f"C_s must be positive; got cs={cs}.")
        self.cs = float(cs)

    def eddy_viscosity(self, u, grid, gradient=None):
        g = velocity_gradient(u, grid) if gradient is None else gradient
        return (self.cs * filter_width(grid)) ** 2 * strain_magnitude(strain_rate(g))


class DynamicSmagorinsky:
    """ν_t = C Δ² |S| with C from the Germano identity, box-averaged (Lilly 1992):

        L_ij = (u_i u_j)^ − û_i û_j   (traceless part),
        M_ij = 2Δ² ((|S| S_ij)^ − α² |Ŝ| Ŝ_ij),     α = Δ̂/Δ = ``test_ratio`` (2),
        C = ⟨L_ij M_ij⟩ / ⟨M_ij M_ij⟩,

    ^ the sharp test filter ``sharp_filter`` at width αΔ. With the model
    τ_ij − ⅓δ_ij τ_kk = −2CΔ²|S|S_ij at both levels, the identity L = T − τ̂ reads L ≈ C M,
    and C > 0 is forward scatter. C is one number per field (HIT is homogeneous in all
    three directions), clipped to C ≥ 0 by ``eddy_viscosity``; C is the C_s² of
    ``Smagorinsky``.
    """

    name = "dynamic"

    def __init__(self, test_ratio: float = 2.0):
        if not test_ratio > 1:
            raise ValueError(f"The test filter must be wider than the grid's; got {test_ratio}.")
        self.test_ratio = float(test_ratio)

    def coefficient(
        self, u: torch.Tensor, grid: Grid3D, gradient: torch.Tensor | None = None
    ) -> torch.Tensor:
        """C (…,) of the velocity fields u (…, 3, n, n, n), before clipping."""
        g = velocity_gradient(u, grid) if gradient is None else gradient
        strain = strain_rate(g)
        s = strain_magnitude(strain)
        components = u.unbind(-4)
        products = [components[i] * components[j] for i, j in SYMMETRIC]
        stacked = torch.stack([*products, *components, *strain, *(s * x for x in strain)], -4)
        filtered = sharp_filter(stacked, grid, self.test_ratio).unbind(-4)
        f_products, f_u, f_strain, f_s_strain = (
            filtered[0:6],
            filtered[6:9],
            filtered[9:15],
            filtered[15:21],
        )
        leonard = [f_products[m] - f_u[i] * f_u[j] for m, (i, j) in enumerate(SYMMETRIC)]
        third_trace = (leonard[0] + leonard[3] + leonard[5]) / 3
        for m in (0, 3, 5):
            leonard[m] = leonard[m] - third_trace
        s_hat = strain_magnitude(list(f_strain))
        width2 = filter_width(grid) ** 2
        alpha2 = self.test_ratio**2
        m_tensor = [2 * width2 * (a - alpha2 * s_hat * b)
                    for a, b in zip(f_s_strain, f_strain, strict=True)]  # fmt: skip
        lm = contract(leonard, m_tensor).mean(dim=(-3, -2, -1))
        mm = contract(m_tensor, m_tensor).mean(dim=(-3, -2, -1))
        return torch.where(mm > 0, lm / torch.where(mm > 0, mm, 1), 0)

    def eddy_viscosity(self, u, grid, gradient=None):
        g = velocity_gradient(u, grid) if gradient is None else gradient
        c = self.coefficient(u, grid, g).clamp_min(0)[..., None, None, None]
        return c * filter_width(grid) ** 2 * strain_magnitude(strain_rate(g))


CLOSURES: dict[str, type] = {"smagorinsky": Smagorinsky, "dynamic": DynamicSmagorinsky}


def get_closure(closure: str | EddyViscosityModel | None) -> EddyViscosityModel | None:
    """The closure named ``closure`` with its default constants; None or "none" for no model
    (coarse DNS); a closure object is returned as is. ValueError for an unknown name."""
    if closure is None or (isinstance(closure, str) and closure.lower() in ("none", "dns")):
        return None
    if not isinstance(closure, str):
        return closure
    try:
        return CLOSURES[closure.lower()]()
    except KeyError:
        known = ", ".join(repr(n) for n in CLOSURES)
        raise ValueError(
            f"Unknown LES closure {closure!r}; choose one of {known} or None."
        ) from None
