"""Eddy-viscosity closures for large-eddy simulation of channel flow.

The resolved (filtered) velocity obeys the Navier–Stokes equations plus the divergence of
the subgrid stress, modelled by an eddy viscosity ν_t:

    ∂u_i/∂t + ∂(u_i u_j)/∂x_j = −∂p/∂x_i + ν ∇²u_i + ∂(2 ν_t S_ij)/∂x_j,
    S_ij = ½(∂u_i/∂x_j + ∂u_j/∂x_i),   |S| = (2 S_ij S_ij)^½.

Each closure maps a staggered channel velocity (B, 3, nx, ny, nz) (``physics.channel.grid``)
to ν_t (B, nx, ny, nz) at the cell centres: ``closure.eddy_viscosity(u, grid, nu)``. The
velocity gradient is taken at the centres by ``ChannelGrid.velocity_gradient`` (pass it as
``gradient`` when it is at hand). The filter width is Δ = (Δx Δy(y) Δz)^(1/3), Δx = Lx/nx
and Δz = Lz/nz the grid spacings (``ChannelGrid.filter_width``). The solver
(``physics.channel.solver``) adds ∇·(2 ν_t S) explicitly and takes ν_t = 0 at the walls.

- ``Smagorinsky``: ν_t = (C_s Δ f)² |S| with van Driest's damping f = 1 − exp(−y⁺/A⁺),
  C_s = 0.1, A⁺ = 25; y⁺ from the friction velocity of the field's own mean wall gradient.
- ``WALE`` (Nicoud & Ducros 1999): ν_t = (C_w Δ)² (S^d:S^d)^{3/2} / ((S:S)^{5/2} +
  (S^d:S^d)^{5/4}), S^d the traceless symmetric part of g², g the velocity gradient; C_w =
  0.5. It vanishes in pure shear and grows as y³ from a wall, with no damping function.
- ``DynamicSmagorinsky`` (Germano et al. 1991 with Lilly's 1992 least squares): ν_t =
  C(y) Δ² |S|, C(y) from the Germano identity under a sharp test filter in x and z at half
  the resolved wavenumbers (Δ̂ = (2Δx Δy 2Δz)^(1/3)), averaged over wall-parallel planes, then
  clipped so that ν + ν_t ≥ 0 (``clip="total"``, the default) or ν_t ≥ 0 (``clip="eddy"``).

``CLOSURES`` maps the names "smagorinsky", "wale" and "dynamic" to the classes;
``get_closure(None)`` is no model (coarse DNS).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from physics.channel.grid import ChannelGrid


class EddyViscosityModel(Protocol):
    name: str

    def eddy_viscosity(
        self,
        u: torch.Tensor,
        grid: ChannelGrid,
        nu: float,
        gradient: torch.Tensor | None = None,
    ) -> torch.Tensor: ...


# The six independent components of a symmetric tensor, and their weights in a full
# contraction a_ij b_ij (off-diagonal pairs count twice).
SYMMETRIC = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
SYMMETRIC_WEIGHTS = (1.0, 2.0, 2.0, 1.0, 2.0, 1.0)


def strain_rate(gradient: torch.Tensor) -> list[torch.Tensor]:
    """S_ij = ½(g_ij + g_ji) for the ``SYMMETRIC`` index pairs, from a gradient
    (…, 3, 3, nx, ny, nz): six (…, nx, ny, nz) fields (any memory layout)."""
    return [
        0.5 * (gradient[..., i, j, :, :, :] + gradient[..., j, i, :, :, :]) for i, j in SYMMETRIC
    ]


def contract(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """a_ij b_ij of two symmetric tensors given by their ``SYMMETRIC`` components."""
    out = a[0] * b[0]
    for weight, x, y in zip(SYMMETRIC_WEIGHTS[1:], a[1:], b[1:], strict=True):
        out.addcmul_(x, y, value=weight)
    return out


def strain_magnitude(strain: list[torch.Tensor]) -> torch.Tensor:
    """|S| = (2 S_ij S_ij)^½."""
    return torch.sqrt(2 * contract(strain, strain))


def filter_xz(
    fields: list[torch.Tensor], grid: ChannelGrid, ratio: float = 2.0
) -> list[torch.Tensor]:
    """Sharp spectral cutoff in x and z of fields (…, nx, ny, nz), keeping |m| < n/(3·ratio).

    The fields are stacked y-first, so that the transforms run over two contiguous axes.
    """
    stacked = torch.stack([f.transpose(-3, -2) for f in fields], dim=-4)
    spectra = torch.fft.rfft2(stacked, norm="forward")
    spectra *= grid.dealias_mask(stacked.device, ratio=ratio, y_dim=-3)
    filtered = torch.fft.irfft2(spectra, s=(grid.nx, grid.nz), norm="forward")
    return [f.transpose(-3, -2) for f in filtered.unbind(-4)]


def _width(grid: ChannelGrid, like: torch.Tensor) -> torch.Tensor:
    """Δ (ny, 1), broadcast against (…, nx, ny, nz)."""
    return grid.filter_width().to(device=like.device, dtype=like.dtype)[:, None]


def _gradient(u: torch.Tensor, grid: ChannelGrid, gradient: torch.Tensor | None) -> torch.Tensor:
    _check_velocity(u, grid)
    return grid.velocity_gradient(u) if gradient is None else gradient


def _check_velocity(u: torch.Tensor, grid: ChannelGrid) -> None:
    shape = (3, grid.nx, grid.ny, grid.nz)
    if u.ndim < 4 or tuple(u.shape[-4:]) != shape:
        raise ValueError(f"Expected a velocity shaped (B, {', '.join(map(str, shape))}); "
                         f"got {tuple(u.shape)}.")  # fmt: skip


def friction_velocity(u: torch.Tensor, grid: ChannelGrid, nu: float) -> torch.Tensor:
    """u_τ = (ν |dU/dy|_wall)^½ (…,) from the x–z mean streamwise velocity U(y) of each
    field, the shear of both walls averaged (``ChannelGrid.wall_derivatives``)."""
    profile = u[..., 0, :, :, :].mean(dim=(-3, -1))
    lower, upper = grid.wall_derivatives(profile)
    return torch.sqrt(nu * 0.5 * (lower - upper).abs())


def van_driest(y_plus: torch.Tensor, a_plus: float = 25.0) -> torch.Tensor:
    """The wall-damping factor 1 − exp(−y⁺/A⁺) of the mixing length."""
    return -torch.expm1(-y_plus / a_plus)


class Smagorinsky:
    """ν_t = (C_s Δ (1 − exp(−y⁺/A⁺)))² |S| (Smagorinsky 1963; van Driest damping).

    y⁺ = (1 − |y|) u_τ/ν at each centre with u_τ measured from the field's mean wall shear
    (``friction_velocity``), or the fixed ``u_tau`` when given.
    """

    name = "smagorinsky"

    def __init__(self, cs: float = 0.1, a_plus: float = 25.0, u_tau: float | None = None):
        if not (cs > 0 and a_plus > 0):
            raise ValueError(f"C_s and A⁺ must be positive; got cs={cs}, a_plus={a_plus}.")
        self.cs, self.a_plus, self.u_tau = float(cs), float(a_plus), u_tau

    def eddy_viscosity(self, u, grid, nu, gradient=None):
        s = strain_magnitude(strain_rate(_gradient(u, grid, gradient)))
        if self.u_tau is None:
            u_tau = friction_velocity(u, grid, nu)[..., None, None, None]
        else:
            u_tau = torch.as_tensor(self.u_tau, dtype=u.dtype, device=u.device)
        distance = grid.wall_distance().to(device=u.device, dtype=u.dtype)[:, None]
        damping = van_driest(distance * u_tau / nu, self.a_plus)
        return (self.cs * _width(grid, u) * damping) ** 2 * s


class WALE:
    """The wall-adapting local eddy viscosity of Nicoud & Ducros (1999):

    ν_t = (C_w Δ)² (S^d_ij S^d_ij)^{3/2} / ((S_ij S_ij)^{5/2} + (S^d_ij S^d_ij)^{5/4}),
    S^d_ij = ½(g²_ij + g²_ji) − ⅓ δ_ij g²_kk,   g²_ij = g_ik g_kj.
    """

    name = "wale"

    def __init__(self, cw: float = 0.5):
        if not cw > 0:
            raise ValueError(f"C_w must be positive; got {cw}.")
        self.cw = float(cw)

    def eddy_viscosity(self, u, grid, nu, gradient=None):
        g = _gradient(u, grid, gradient)
        c = [[g[..., i, j, :, :, :] for j in range(3)] for i in range(3)]
        g2 = [[None] * 3 for _ in range(3)]
        for i in range(3):
            for j in range(3):
                g2[i][j] = (c[i][0] * c[0][j]).addcmul_(c[i][1], c[1][j]).addcmul_(c[i][2], c[2][j])
        third_trace = (g2[0][0] + g2[1][1] + g2[2][2]) / 3
        sd = [0.5 * (g2[i][j] + g2[j][i]) for i, j in SYMMETRIC]
        for k in (0, 3, 5):
            sd[k] -= third_trace
        sdsd = contract(sd, sd).clamp_min_(0)
        strain = strain_rate(g)
        ss = contract(strain, strain)
        denominator = ss**2.5 + sdsd**1.25
        ratio = torch.where(
            denominator > 0, sdsd**1.5 / torch.where(denominator > 0, denominator, 1), 0
        )
        return (self.cw * _width(grid, u)) ** 2 * ratio


class DynamicSmagorinsky:
    """ν_t = C(y) Δ² |S| with C from the Germano identity, least squares (Lilly 1992):

        L_ij = (u_i u_j)^ − û_i û_j,   M_ij = 2Δ² ((|S| S_ij)^ − α² |Ŝ| Ŝ_ij),
        C(y) = ⟨L_ij M_ij⟩ / ⟨M_ij M_ij⟩,

    ^ the test filter: a sharp cutoff in x and z at half the wavenumbers the 2/3 rule keeps
    (width 2Δx, 2Δz; none in y), so α = Δ̂/Δ = 4^(1/3); ⟨·⟩ the mean over an x–z plane of
    each field. The velocity is taken at the centres (v interpolated). ``clip`` "total"
    keeps ν + ν_t ≥ 0 (backscatter allowed up to the molecular viscosity), "eddy" ν_t ≥ 0.
    """

    name = "dynamic"
    TEST_RATIO = 2.0

    def __init__(self, clip: str = "total"):
        if clip not in ("total", "eddy"):
            raise ValueError(f"clip must be 'total' or 'eddy'; got {clip!r}.")
        self.clip = clip

    def coefficient(self, u, grid, gradient=None) -> torch.Tensor:
        """C(y) (…, 1, ny, 1) of the fields u (…, 3, nx, ny, nz), before clipping."""
        g = _gradient(u, grid, gradient)
        uc = grid.to_centres(u).unbind(-4)
        strain = strain_rate(g)
        s = strain_magnitude(strain)
        products = [uc[i] * uc[j] for i, j in SYMMETRIC]
        filtered = filter_xz([*products, *uc, *strain, *(s * x for x in strain)], grid,
                               self.TEST_RATIO)  # fmt: skip
        f_products, f_u, f_strain, f_s_strain = (filtered[k : k + n] for k, n in
                                                 ((0, 6), (6, 3), (9, 6), (15, 6)))  # fmt: skip
        leonard = [f_products[k] - f_u[i] * f_u[j] for k, (i, j) in enumerate(SYMMETRIC)]
        third_trace = (leonard[0] + leonard[3] + leonard[5]) / 3
        for k in (0, 3, 5):
            leonard[k] = leonard[k] - third_trace
        s_hat = strain_magnitude(f_strain)
        alpha2 = (self.TEST_RATIO**2) ** (2 / 3)
        width2 = 2 * _width(grid, u) ** 2
        m = [width2 * (a - alpha2 * s_hat * b) for a, b in zip(f_s_strain, f_strain, strict=True)]
        lm = contract(leonard, m).mean(dim=(-3, -1), keepdim=True)
        mm = contract(m, m).mean(dim=(-3, -1), keepdim=True)
        return torch.where(mm > 0, lm / torch.where(mm > 0, mm, 1), 0)

    def eddy_viscosity(self, u, grid, nu, gradient=None):
        g = _gradient(u, grid, gradient)
        c = self.coefficient(u, grid, g)
        nu_t = c * _width(grid, u) ** 2 * strain_magnitude(strain_rate(g))
        return nu_t.clamp_min(-nu if self.clip == "total" else 0.0)


CLOSURES: dict[str, type] = {
    "smagorinsky": Smagorinsky,
    "wale": WALE,
    "dynamic": DynamicSmagorinsky,
}


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


def explicit_diffusion_limit(nu_t_max: torch.Tensor | float, grid: ChannelGrid) -> float:
    """The largest step for which the explicit SGS diffusion is stable with margin:
    0.4 / max_j(ν_t,max(y_j) (1/Δx² + 1/Δy_j² + 1/Δz²)), given ν_t's plane maxima (ny,).

    RK3's real-axis stability limit is 2.51 and the largest eigenvalue of the explicit
    diffusion is about ν_t ((2π/3)²/Δx² + 4/Δy² + (2π/3)²/Δz²) (2/3-rule spectra in x, z,
    3-point differences in y), which 0.4/(…) keeps about 30% below.
    """
    nu_t_max = torch.as_tensor(nu_t_max, dtype=torch.float64).cpu()
    inverse_squares = 1 / grid.dx**2 + 1 / grid.dy**2 + 1 / grid.dz**2
    rate = float((nu_t_max.clamp_min(0) * inverse_squares).max())
    return math.inf if rate == 0 else 0.4 / rate
