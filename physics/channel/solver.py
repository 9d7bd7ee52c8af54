"""Incompressible plane channel flow: walls at y = ±1, periodic in x and z.

Units: the half-height h = 1, and under the default pressure-gradient drive the friction
velocity u_τ = 1, so the mean pressure gradient is dP/dx = −u_τ²/h = −1 and ν = 1/Re_τ. The
velocity (u, v, w) obeys

    ∂u/∂t = −∇·(u u) − ∇p + ν∇²u + ∇·(2 ν_t S) + f e_x,   ∇·u = 0,   u = 0 at y = ±1,

with f = −dP/dx = 1 ("pressure" drive), or f(t) chosen at every stage so that the bulk
velocity U_b = ½∫u dy keeps its target ("flow_rate" drive), and ν_t an optional LES eddy
viscosity (``physics.channel.les``).

Space (``physics.channel.grid``): Fourier in x and z with 2/3-rule dealiasing of the
products, second-order finite differences on a tanh-stretched, staggered (MAC-in-y) grid in
y: u, w, p at cell centres, v at cell faces. The advection term is in divergence form with
fluxes built so that the discrete continuity of both the cell (u, w) and the face (v)
control volumes holds, which makes the semi-discrete advection conserve the kinetic energy
Σ Δy_j (u² + w²) + Σ h_j v² exactly on the stretched grid (Morinishi et al. 1998; a test
checks it to round-off), h_j = y_c[j] − y_c[j−1]:

    u equation (centres):  −[∂x(u u) + (F_{j+1} − F_j)/Δy_j + ∂z(w u)],
                           F_j = v_j · ½(u_{j−1} + u_j) at the faces (likewise for w);
    v equation (faces):    −[∂x(ũ v) + (Q_j − Q_{j−1})/h_j + ∂z(w̃ v)],
                           Q_j = (½(v_j + v_{j+1}))² at the centres,
                           ũ_j = (Δy_{j−1}u_{j−1} + Δy_j u_j)/(Δy_{j−1} + Δy_j) (likewise w̃).

Time (Spalart, Moser & Rogers 1991): three Runge–Kutta substages, the viscous term
implicit (Crank–Nicolson-like), the rest (advection, SGS stress, forcing) explicit:

    (1 − β_k Δt L) u* = u^{k−1} + Δt [α_k L u^{k−1} + γ_k N(u^{k−1}) + ζ_k N(u^{k−2})
                                       − (α_k + β_k) G p^{k−1}],
    D G φ = D u*,   u^k = u* − G φ,   p^k = p^{k−1} + φ / ((α_k + β_k) Δt),

γ = (8/15, 5/12, 3/4), ζ = (0, −17/60, −5/12), α = (29/96, −3/40, 1/6),
β = (37/160, 5/24, 1/6) (α_k + β_k = γ_k + ζ_k): third order for N, second order overall.
The projection is incremental: the predictor carries the pressure gradient of the previous
substage, starting from the pressure consistent with uⁿ, D G p⁰ = D(N(uⁿ) + L uⁿ), so the
splitting error (the slip that the projection leaves at the walls) is O(Δt³) per step; the
plain projection (no old pressure) is first order there. L = ν(∂²/∂y² − k_x² − k_z²) is the
whole molecular diffusion: per Fourier mode it is tridiagonal in y, so treating its x and z
parts implicitly as well costs nothing, and it is the wall-normal part, stiff on the fine
near-wall cells, that needs it. Each substage solves one tridiagonal system per (k_x, k_z)
and component (Thomas algorithm), and the pressure Poisson equation D G φ = D u* exactly,
again tridiagonal per (k_x, k_z): the projected velocity is divergence-free to round-off.
The (k_x, k_z) = (0, 0) Poisson matrix (and any other with a zero x–z symbol, e.g. Nyquist
modes) is singular, with the constants as null space; its last row is replaced by
φ_{ny−1} = 0, and since the right-hand side D u* sums to zero over the cells (no flux
through the walls) the solution satisfies every other row. Under the flow-rate drive the
(0, 0) mode of u* is corrected after the implicit solve by c·g_k, g_k the response to a
unit pressure gradient, with c chosen so that U_b is exactly its target (c is −dP/dx).

The time step comes from the Courant number: Δt = cfl / max(|u|/Δx + |v|/Δy + |w|/Δz)
(``cfl_dt``); with spectral x and z derivatives of the 2/3-rule band the largest advective
eigenvalue is about (2π/3)|u|/Δx, so cfl = 0.5 stays inside RK3's stability limit √3 on the
imaginary axis. An eddy viscosity, stepped explicitly, adds a diffusive limit
(``physics.channel.les.explicit_diffusion_limit``).

The state is not differentiable (in-place tridiagonal sweeps). The same code runs on the CPU
and on CUDA, in float32 and float64; operators are built once per (device, dtype).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from physics.channel.grid import (
    ChannelGrid,
    TridiagonalFactors,
    apply_bands,
    factor_tridiagonal,
    solve_tridiagonal,
)
from physics.channel.les import EddyViscosityModel, explicit_diffusion_limit, get_closure
from physics.ns2d.solver import num_steps

F64 = torch.float64

# Spalart, Moser & Rogers (1991), appendix A: low-storage RK3 with Crank–Nicolson-like
# implicit weights.
GAMMA = (8 / 15, 5 / 12, 3 / 4)
ZETA = (0.0, -17 / 60, -5 / 12)
ALPHA = (29 / 96, -3 / 40, 1 / 6)
BETA = (37 / 160, 5 / 24, 1 / 6)

# Moser, Kim & Mansour (1999) at Re_τ = 180: U_b⁺ = Re_b/(2 Re_τ) = 5600/(2·178.12) ≈ 15.7.
DEFAULT_BULK_VELOCITY = 15.7

# ``advance`` re-measures the Courant number every _CHECK_EVERY steps and re-plans when the
# CFL step has left [_REPLAN_LOW, _REPLAN_HIGH] times the step in use.
_CHECK_EVERY = 10
_REPLAN_LOW = 0.8
_REPLAN_HIGH = 1.5
# A fluid at rest has no advective time scale: ``cfl_dt`` then assumes this speed.
_REST_SPEED = 1.0
# Reichardt's (1951) law of the wall for the turbulent-like initial profile.
_KAPPA = 0.41


@dataclass(frozen=True)
class ChannelConfig:
    """A channel-flow run.

    ``re_tau`` sets ν = 1/Re_τ (h = 1, u_τ = 1 under the pressure drive). ``lx``, ``lz`` the
    periodic lengths; ``nx``, ``nz`` Fourier points, ``ny`` cells in y, ``stretching`` the
    tanh parameter γ. ``drive`` "pressure" (dP/dx = −1) or "flow_rate" (the bulk velocity
    held at ``bulk_velocity``; default 15.7 = MKM's U_b⁺ at Re_τ = 180, so the run settles
    near Re_τ = 180 in these units). ``cfl`` the Courant number, ``max_dt`` an optional cap.
    ``les`` None (coarse DNS) or a closure name of ``physics.channel.les.CLOSURES``. ``dtype`` the
    dtype of the fields ``laminar`` and ``initial_condition`` return (the solver follows its
    input's dtype). The default grid, 32 × 49 × 32 with γ = 2, puts the first centre at
    y⁺ ≈ 0.5 and is a coarse LES resolution (Δx⁺ ≈ 71, Δz⁺ ≈ 24 at Re_τ = 180).
    """

    re_tau: float = 180.0
    lx: float = 4 * math.pi
    lz: float = 4 * math.pi / 3
    nx: int = 32
    ny: int = 49
    nz: int = 32
    stretching: float = 2.0
    drive: str = "pressure"
    bulk_velocity: float = DEFAULT_BULK_VELOCITY
    cfl: float = 0.5
    max_dt: float | None = None
    les: str | None = None
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if not self.re_tau > 0:
            raise ValueError(f"re_tau must be positive; got {self.re_tau}.")
        if self.drive not in ("pressure", "flow_rate"):
            raise ValueError(f"drive must be 'pressure' or 'flow_rate'; got {self.drive!r}.")
        if not self.cfl > 0:
            raise ValueError(f"The CFL number must be positive; got {self.cfl}.")
        if self.max_dt is not None and not self.max_dt > 0:
            raise ValueError(f"max_dt must be positive when given; got {self.max_dt}.")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64; got {self.dtype}.")

    @property
    def nu(self) -> float:
        return 1.0 / self.re_tau

    def grid(self) -> ChannelGrid:
        return ChannelGrid(self.nx, self.ny, self.nz, self.lx, self.lz, self.stretching)


# Internally the solver holds fields y-first, (B, 3, ny, nx, nz) and spectra
# (B, 3, ny, nx, nz//2+1): the x–z transforms act on the last two (contiguous) axes and each
# row j of a tridiagonal sweep is a contiguous block. ``_Y`` is that layout's y axis.
_Y = -3


def _internal(u: torch.Tensor) -> torch.Tensor:
    """(…, nx, ny, nz) ↔ (…, ny, nx, nz): swap the x and y axes (a view)."""
    return u.transpose(-3, -2)


@dataclass
class _Operators:
    """Everything a step needs on one (device, dtype), in the y-first layout."""

    ikx: torch.Tensor  # (nx, 1) complex
    ikz: torch.Tensor  # (1, nzr) complex
    k2: torch.Tensor  # (nx, nzr) real: kx² + kz² of the derivative wavenumbers
    mask: torch.Tensor  # (nx, nzr) complex 0/1: the 2/3 rule
    bands: dict[str, tuple[torch.Tensor, ...]]  # (ny, 1, 1) each
    viscous: tuple[torch.Tensor, ...]  # (3, ny, 1, 1) ∂²/∂y² bands for (u, v, w), float64
    pressure: TridiagonalFactors  # (ny, nx, nzr)
    singular: torch.Tensor  # (nx, nzr) bool: modes whose Poisson row ny−1 is pinned
    dy: torch.Tensor  # (ny,)
    stages: dict[float, list[tuple[TridiagonalFactors, torch.Tensor | None]]] = field(
        default_factory=dict
    )


class ChannelSolver:
    """Batched solver for channel flow on velocities (B, 3, nx, ny, nz) (u, v, w).

    The layout is ``physics.channel.grid``'s: u, w at the cell centres y_c, v at the faces
    with v[..., 0, :] the lower wall (zero). ``closure`` overrides ``config.les`` with a
    closure object (e.g. with other constants).
    """

    def __init__(
        self, config: ChannelConfig | None = None, closure: EddyViscosityModel | None = None
    ) -> None:
        self.config = config or ChannelConfig()
        self.grid = self.config.grid()
        self.nu = self.config.nu
        self.closure = closure if closure is not None else get_closure(self.config.les)
        self._operators: dict[tuple[torch.device, torch.dtype], _Operators] = {}
        # −dP/dx applied over the last step, per batch member (the flow-rate drive's
        # forcing; 1 under the pressure drive).
        self.pressure_gradient: torch.Tensor | None = None
        self.steps_taken = 0  # steps of the last ``advance``

    # -- operators ---------------------------------------------------------------------------

    def _ops(self, device: torch.device, dtype: torch.dtype) -> _Operators:
        key = (torch.device(device), dtype)
        if key in self._operators:
            return self._operators[key]
        g = self.grid
        complex_dtype = torch.promote_types(dtype, torch.complex64)
        kx, kz = g.wavenumbers(device, F64, y_dim=_Y)
        k2 = kx**2 + kz**2  # (nx, nzr)
        names = ("faces_to_centres", "ddy_faces_to_centres", "ddy_centres_to_faces")
        bands = {name: getattr(g, name).bands(device, dtype, _Y) for name in names}
        for weights in ("linear", "arithmetic", "volume"):
            bands[f"c2f_{weights}"] = g.centres_to_faces(weights).bands(device, dtype, _Y)
        centre, face = g.d2dy2_centres, g.d2dy2_faces
        viscous = tuple(
            torch.stack([getattr(centre, b), getattr(face, b), getattr(centre, b)])[
                :, :, None, None
            ].to(device)
            for b in ("lower", "diag", "upper")
        )
        # Pressure: D G = D_y G_y − k² per mode; singular modes pin their last row.
        lap = g.pressure_laplacian
        shape = (g.ny, g.nx, g.nz_rfft)
        lower = lap.lower.to(device)[:, None, None].expand(shape).clone()
        upper = lap.upper.to(device)[:, None, None].expand(shape)
        diag = lap.diag.to(device)[:, None, None] - k2
        singular = k2 == 0
        pin = torch.zeros(shape, dtype=torch.bool, device=device)
        pin[-1] = singular
        lower[pin] = 0.0
        diag = torch.where(pin, 1.0, diag)
        ops = _Operators(
            ikx=(1j * kx).to(complex_dtype),
            ikz=(1j * kz).to(complex_dtype),
            k2=k2.to(dtype),
            mask=g.dealias_mask(device, y_dim=_Y).to(complex_dtype),
            bands=bands,
            viscous=viscous,
            pressure=factor_tridiagonal(lower, diag, upper, dtype, dim=_Y),
            singular=singular,
            dy=g.dy.to(device=device, dtype=dtype),
        )
        self._operators[key] = ops
        return ops

    def _stage_factors(
        self, ops: _Operators, dt: float, dtype: torch.dtype
    ) -> list[tuple[TridiagonalFactors, torch.Tensor | None]]:
        """Per substage: the factors of 1 − β_k Δt L for (u, v, w) (3, ny, nx, nzr), and for
        the flow-rate drive the response g_k (ny,) of the (0, 0) mode of u to a unit
        pressure gradient, (1 − β_k Δt L) g_k = (α_k + β_k) Δt."""
        key = float(dt)
        if key not in ops.stages:
            if len(ops.stages) >= 2:
                del ops.stages[next(iter(ops.stages))]
            lower, diag, upper = ops.viscous  # (3, ny, 1, 1), float64
            k2 = ops.k2.to(F64)
            g = self.grid
            shape = (3, g.ny, g.nx, g.nz_rfft)
            stages = []
            for alpha, beta in zip(ALPHA, BETA, strict=True):
                c = beta * dt * self.nu
                a = (-c * lower).expand(shape)
                b = (1 - c * diag + c * k2).expand(shape).clone()
                b[1, 0] = 1.0  # v at the lower wall: an identity row
                up = (-c * upper).expand(shape)
                factors = factor_tridiagonal(a, b, up, dtype, dim=_Y)
                response = None
                if self.config.drive == "flow_rate":
                    mean_mode = factor_tridiagonal(a[0, :, :1, :1], b[0, :, :1, :1],
                                                   up[0, :, :1, :1], dim=_Y)  # fmt: skip
                    rhs = torch.full((g.ny, 1, 1), (alpha + beta) * dt, dtype=F64)
                    response = solve_tridiagonal(mean_mode, rhs.to(b.device))[:, 0, 0]
                    response = response.to(dtype)
                stages.append((factors, response))
            ops.stages[key] = stages
        return ops.stages[key]

    # -- spatial operators (y-first layout) --------------------------------------------------

    def _rfft(self, f: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(f, norm="forward")

    def _irfft(self, f_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(f_hat, s=(self.grid.nx, self.grid.nz), norm="forward")

    def _to_hat(self, u: torch.Tensor) -> torch.Tensor:
        """Spectra (B, 3, ny, nx, nzr) of a velocity (B, 3, nx, ny, nz)."""
        return self._rfft(_internal(u).contiguous())

    def _from_hat(self, u_hat: torch.Tensor) -> torch.Tensor:
        """The velocity (B, 3, nx, ny, nz) of spectra (B, 3, ny, nx, nzr)."""
        return _internal(self._irfft(u_hat)).contiguous()

    def _divergence_hat(self, u_hat: torch.Tensor, ops: _Operators) -> torch.Tensor:
        u, v, w = u_hat.unbind(-4)
        div = apply_bands(ops.bands["ddy_faces_to_centres"], v, _Y)
        return div.addcmul_(ops.ikx, u).addcmul_(ops.ikz, w)

    def _poisson_hat(self, rhs: torch.Tensor, ops: _Operators) -> torch.Tensor:
        """φ̂ with D G φ = rhs per (k_x, k_z); singular modes pinned (φ_{ny−1} = 0)."""
        rhs = rhs.clone()
        rhs[..., -1, :, :] = torch.where(ops.singular, 0, rhs[..., -1, :, :])
        return solve_tridiagonal(ops.pressure, rhs)

    def _gradient_hat(self, phi: torch.Tensor, ops: _Operators) -> torch.Tensor:
        """G φ at the u, v, w points (…, 3, ny, nx, nzr); zero at the wall faces."""
        gy = apply_bands(ops.bands["ddy_centres_to_faces"], phi, _Y)
        return torch.stack([ops.ikx * phi, gy, ops.ikz * phi], dim=-4)

    def _project_hat(self, u_hat: torch.Tensor, ops: _Operators) -> tuple[torch.Tensor, ...]:
        """(u − G φ, φ) with D G φ = D u: the discrete projection onto D u = 0."""
        u_hat = u_hat.clone()
        u_hat[..., 1, 0, :, :] = 0  # v = 0 at the lower wall
        phi = self._poisson_hat(self._divergence_hat(u_hat, ops), ops)
        return u_hat.sub_(self._gradient_hat(phi, ops)), phi

    def _viscous_hat(self, u_hat: torch.Tensor, ops: _Operators) -> torch.Tensor:
        """L û = ν(∂²û/∂y² − k² û), per component (centre stencil for u, w; face for v)."""
        dtype = u_hat.real.dtype
        key = ("viscous", dtype)
        if key not in ops.bands:
            lower, diag, upper = (b.to(dtype) * self.nu for b in ops.viscous)
            ops.bands[key] = (lower, diag - self.nu * ops.k2, upper)
        return apply_bands(ops.bands[key], u_hat, _Y)

    def explicit_terms(self, u_hat: torch.Tensor) -> torch.Tensor:
        """N(û): advection (divergence form, dealiased), SGS stress divergence and, under the
        pressure drive, the mean pressure gradient; spectra (B, 3, ny, nx, nzr), y-first."""
        ops = self._ops(u_hat.device, u_hat.real.dtype)
        b = ops.bands
        u_hat = u_hat * ops.mask
        velocity = self._irfft(u_hat)
        u, v, w = velocity.unbind(-4)
        vc = apply_bands(b["faces_to_centres"], v, _Y)
        products = torch.empty((*u.shape[:-3], 8, *u.shape[-3:]), dtype=u.dtype, device=u.device)
        torch.mul(u, u, out=products[..., 0, :, :, :])
        torch.mul(u, w, out=products[..., 1, :, :, :])
        torch.mul(w, w, out=products[..., 2, :, :, :])
        torch.mul(vc, vc, out=products[..., 3, :, :, :])
        for k, (weights, f) in enumerate(
            [("arithmetic", u), ("arithmetic", w), ("volume", u), ("volume", w)]
        ):
            torch.mul(v, apply_bands(b[f"c2f_{weights}"], f, _Y), out=products[..., 4 + k, :, :, :])
        uu, uw, ww, vv, vu, vw, uv, wv = self._rfft(products).unbind(-4)
        dfc, dcf = b["ddy_faces_to_centres"], b["ddy_centres_to_faces"]
        ikx, ikz = ops.ikx, ops.ikz
        terms = torch.empty_like(u_hat)
        terms[..., 0, :, :, :] = apply_bands(dfc, vu, _Y).addcmul_(ikx, uu).addcmul_(ikz, uw)
        terms[..., 1, :, :, :] = apply_bands(dcf, vv, _Y).addcmul_(ikx, uv).addcmul_(ikz, wv)
        terms[..., 2, :, :, :] = apply_bands(dfc, vw, _Y).addcmul_(ikx, uw).addcmul_(ikz, ww)
        terms.neg_()
        if self.closure is not None:
            terms += self._sgs_hat(velocity, u_hat, ops)
        terms *= ops.mask
        terms[..., 1, 0, :, :] = 0
        if self.config.drive == "pressure":
            terms[..., 0, :, 0, 0] += 1.0  # −dP/dx = u_τ²/h = 1
        return terms

    def _sgs_hat(self, velocity: torch.Tensor, u_hat: torch.Tensor, ops: _Operators):
        """∇·(2 ν_t S) at the u, v, w points, spectral; ν_t at the centres, 0 at the walls."""
        g = self.grid
        b = ops.bands
        gradient = self._irfft(g.velocity_gradient_hat(u_hat, y_dim=_Y))
        nu_t = _internal(
            self.closure.eddy_viscosity(_internal(velocity), g, self.nu, _internal(gradient))
        )
        pairs = [(0, 0), (0, 2), (2, 2), (0, 1), (2, 1), (1, 1)]
        stress = torch.stack(
            [
                nu_t * (gradient[..., i, j, :, :, :] + gradient[..., j, i, :, :, :])
                for i, j in pairs
            ],
            dim=-4,
        )
        txx, txz, tzz, txy, tzy, tyy = self._rfft(stress).unbind(-4)
        c2f, dfc = b["c2f_linear"], b["ddy_faces_to_centres"]
        ikx, ikz = ops.ikx, ops.ikz
        s_u = apply_bands(dfc, apply_bands(c2f, txy, _Y), _Y).addcmul_(ikx, txx).addcmul_(ikz, txz)
        s_w = apply_bands(dfc, apply_bands(c2f, tzy, _Y), _Y).addcmul_(ikx, txz).addcmul_(ikz, tzz)
        s_v = apply_bands(c2f, ikx * txy + ikz * tzy, _Y)
        s_v += apply_bands(b["ddy_centres_to_faces"], tyy, _Y)
        return torch.stack([s_u, s_v, s_w], dim=-4)

    # -- time stepping -----------------------------------------------------------------------

    def _step_hat(self, u_hat: torch.Tensor, dt: float) -> torch.Tensor:
        """One RK3 step of the spectral velocity (B, 3, ny, nx, nzr), y-first."""
        dtype = u_hat.real.dtype
        ops = self._ops(u_hat.device, dtype)
        stages = self._stage_factors(ops, dt, dtype)
        previous = None
        forcing = torch.zeros(u_hat.shape[:-4], dtype=dtype, device=u_hat.device)
        for k, (factors, response) in enumerate(stages):
            terms = self.explicit_terms(u_hat)
            viscous = self._viscous_hat(u_hat, ops)
            if k == 0:
                # The pressure at tⁿ that keeps D u = 0: D G p = D(N + L u).
                p_hat = self._poisson_hat(self._divergence_hat(terms + viscous, ops), ops)
            weight = ALPHA[k] + BETA[k]
            rhs = u_hat.add(viscous, alpha=dt * ALPHA[k])
            rhs.add_(terms, alpha=dt * GAMMA[k])
            if previous is not None:
                rhs.add_(previous, alpha=dt * ZETA[k])
            rhs.sub_(self._gradient_hat(p_hat, ops), alpha=dt * weight)
            rhs[..., 1, 0, :, :] = 0
            u_hat = solve_tridiagonal(factors, rhs)
            if response is not None:
                mean = u_hat[..., 0, :, 0, 0].real
                correction = (self.config.bulk_velocity - self.grid.bulk_mean(mean)) / (
                    self.grid.bulk_mean(response)
                )
                u_hat[..., 0, :, 0, 0] += correction[..., None] * response
                forcing += correction * weight
            u_hat, phi = self._project_hat(u_hat, ops)
            p_hat.add_(phi, alpha=1 / (dt * weight))
            previous = terms
        if self.config.drive == "pressure":
            forcing += 1.0
        self.pressure_gradient = forcing
        return u_hat

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Advance velocities (B, 3, nx, ny, nz) by one RK3 step of size dt."""
        if not dt > 0:
            raise ValueError(f"The time step must be positive; got {dt}.")
        u = self._check(u)
        return self._from_hat(self._step_hat(self._to_hat(u), dt))

    def advance(self, u: torch.Tensor, t_total: float) -> torch.Tensor:
        """Advance by ``t_total`` in equal steps no longer than ``cfl_dt``.

        The step is planned from the Courant number at the start, re-measured every 10
        steps, and re-planned (so the steps still end exactly on t_total) when the CFL step
        has fallen below 0.8 or risen above 1.5 times the step in use. Raises
        FloatingPointError if the flow stops being finite.
        """
        if not (t_total >= 0 and math.isfinite(t_total)):
            raise ValueError(f"The duration must be finite and non-negative; got {t_total}.")
        u = self._check(u)
        if t_total == 0:
            return u.clone()
        remaining, dt_cfl = t_total, self.cfl_dt(u)
        u_hat = self._to_hat(u)
        self.steps_taken = 0
        while remaining > 0:
            steps = num_steps(remaining, dt_cfl)
            h = remaining / steps
            for done in range(1, steps + 1):
                u_hat = self._step_hat(u_hat, h)
                self.steps_taken += 1
                if done % _CHECK_EVERY == 0 and done < steps:
                    dt_cfl = self.cfl_dt(self._from_hat(u_hat))
                    if not _REPLAN_LOW * h <= dt_cfl <= _REPLAN_HIGH * h:
                        remaining -= done * h
                        break
            else:
                remaining = 0.0
        out = self._from_hat(u_hat)
        if not bool(torch.isfinite(out).all()):
            raise FloatingPointError("The channel flow is no longer finite.")
        return out

    def cfl_dt(self, u: torch.Tensor) -> float:
        """cfl / max(|u|/Δx + |v|/Δy + |w|/Δz) over the batch (v averaged to the centres,
        Δy the cell height), capped by the explicit-diffusion limit of the eddy viscosity
        and ``max_dt``. A fluid at rest is taken to move at unit speed."""
        u = self._check(u)
        g = self.grid
        dy = g.dy.to(device=u.device, dtype=u.dtype)[:, None]
        vc = g.faces_to_centres.apply(u[:, 1])
        rate = u[:, 0].abs() / g.dx + vc.abs() / dy + u[:, 2].abs() / g.dz
        rate = float(rate.max())
        if not math.isfinite(rate):
            raise FloatingPointError("The velocity is not finite; cannot choose a step.")
        dt = self.config.cfl / (rate if rate > 0 else _REST_SPEED / min(g.dx, g.dz))
        if self.closure is not None:
            nu_t = self.closure.eddy_viscosity(u, g, self.nu)
            dt = min(dt, explicit_diffusion_limit(nu_t.amax(dim=(0, 1, 3)), g))
        if self.config.max_dt is not None:
            dt = min(dt, self.config.max_dt)
        return dt

    # -- diagnostics and projections ---------------------------------------------------------

    def divergence(self, u: torch.Tensor) -> torch.Tensor:
        """The discrete divergence D u (B, nx, ny, nz) at the cell centres, the quantity the
        projection makes zero (spectral ∂/∂x, ∂/∂z; (v_{j+1} − v_j)/Δy_j, v_0 as stored)."""
        u = self._check(u)
        ops = self._ops(u.device, u.dtype)
        return _internal(self._irfft(self._divergence_hat(self._to_hat(u), ops))).contiguous()

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """The discrete projection of u onto D u = 0 (v set to zero at the walls first)."""
        u = self._check(u)
        ops = self._ops(u.device, u.dtype)
        return self._from_hat(self._project_hat(self._to_hat(u), ops)[0])

    def pressure_poisson(self, rhs: torch.Tensor) -> torch.Tensor:
        """φ (…, nx, ny, nz) solving D G φ = rhs at the centres with no flux through the walls.

        Exact for the discrete operator: FFT in x and z, a tridiagonal solve in y per
        (k_x, k_z). The x–z mean mode (and any with a zero x–z symbol) is defined up to a
        constant: its rhs must sum to zero over the cells (Σ rhs_j Δy_j = 0, the solvability
        condition; any other part is dropped) and the returned φ has zero mean over the
        cells (Σ φ_j Δy_j = 0) on those modes.
        """
        g = self.grid
        if rhs.ndim < 3 or tuple(rhs.shape[-3:]) != (g.nx, g.ny, g.nz):
            raise ValueError(
                f"Expected a field (…, {g.nx}, {g.ny}, {g.nz}); got {tuple(rhs.shape)}."
            )
        ops = self._ops(rhs.device, rhs.dtype)
        rhs_hat = self._rfft(_internal(rhs).contiguous())
        dy = ops.dy[:, None, None]
        # Remove the incompatible (cell-mean) part of the singular modes' rhs.
        mean = (rhs_hat * dy).sum(_Y, keepdim=True) / dy.sum()
        rhs_hat = torch.where(ops.singular, rhs_hat - mean, rhs_hat)
        phi = self._poisson_hat(rhs_hat, ops)
        phi_mean = (phi * dy).sum(_Y, keepdim=True) / dy.sum()
        phi = torch.where(ops.singular, phi - phi_mean, phi)
        return _internal(self._irfft(phi)).contiguous()

    def wall_shear(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(τ_w, u_τ), each (B,): τ_w = ν dU/dy at the walls of the x–z mean profile U(y),
        both walls averaged (``ChannelGrid.wall_derivatives``, exact for a parabola), and
        u_τ = √|τ_w|."""
        u = self._check(u)
        lower, upper = self.grid.wall_derivatives(u[:, 0].mean(dim=(1, 3)))
        tau = 0.5 * self.nu * (lower - upper)
        return tau, tau.abs().sqrt()

    def bulk_velocity(self, u: torch.Tensor) -> torch.Tensor:
        """U_b = ½ Σ_j U_j Δy_j (B,): the discrete flow rate per unit width over 2h, the
        quantity the flow-rate drive holds fixed."""
        u = self._check(u)
        return self.grid.bulk_mean(u[:, 0].mean(dim=(1, 3)))

    # -- initial conditions ------------------------------------------------------------------

    def _profile_field(
        self, profile: torch.Tensor, batch: int, device: Any, dtype: torch.dtype | None
    ) -> torch.Tensor:
        g = self.grid
        dtype = dtype or self.config.dtype
        u = torch.zeros(batch, 3, g.nx, g.ny, g.nz, dtype=dtype, device=device)
        u[:, 0] = profile.to(device=device, dtype=dtype)[:, None]
        return u

    def laminar_profile(self) -> torch.Tensor:
        """The Poiseuille profile U(y_c) (ny,) float64: (1 − y²)/(2ν) under the pressure
        drive (dP/dx = −1), 3/2 U_b (1 − y²) under the flow-rate drive (discrete bulk
        exactly U_b)."""
        y = self.grid.y_centres
        parabola = 1 - y**2
        if self.config.drive == "pressure":
            return parabola / (2 * self.nu)
        return parabola * (self.config.bulk_velocity / self.grid.bulk_mean(parabola))

    def laminar(
        self, batch: int = 1, device: Any = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Laminar Poiseuille flow (batch, 3, nx, ny, nz), a steady state of the scheme."""
        return self._profile_field(self.laminar_profile(), batch, device, dtype)

    def turbulent_profile(self) -> torch.Tensor:
        """A turbulent-like mean profile U(y_c) (ny,) float64: Reichardt's law of the wall

            U⁺ = ln(1 + κy⁺)/κ + 7.8 (1 − e^{−y⁺/11} − (y⁺/11) e^{−y⁺/3}),  κ = 0.41,

        with y⁺ = (1 − |y|) Re_τ (u_τ = 1), rescaled to the target bulk velocity under the
        flow-rate drive."""
        yp = self.grid.wall_distance() * self.config.re_tau
        profile = torch.log1p(_KAPPA * yp) / _KAPPA + 7.8 * (
            1 - torch.exp(-yp / 11) - yp / 11 * torch.exp(-yp / 3)
        )
        if self.config.drive == "flow_rate":
            profile = profile * (self.config.bulk_velocity / self.grid.bulk_mean(profile))
        return profile

    def initial_condition(
        self,
        batch: int = 1,
        seed: int | None = None,
        profile: str = "turbulent",
        amplitude: float = 0.1,
        max_mode: int = 4,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """A mean profile plus divergence-free perturbations, (batch, 3, nx, ny, nz).

        ``profile`` "turbulent" (``turbulent_profile``) or "laminar" (``laminar_profile``).
        The perturbation has random Fourier coefficients on the modes |m_x|, |m_z| ≤
        ``max_mode`` (large, streak- and vortex-sized structures; none beyond the 2/3 band),
        a wall-normal shape (1 − y²) for u, w and (1 − y²)² for v (so v ~ y² at the walls, as
        continuity requires), is projected onto D u = 0 by the solver's own projection and
        scaled to an rms of ``amplitude`` times the profile's bulk velocity (10% by default,
        enough to trip transition at Re_τ = 180). ``seed`` makes it reproducible; the same
        seed gives the same field on every device.
        """
        if profile not in ("turbulent", "laminar"):
            raise ValueError(f"profile must be 'turbulent' or 'laminar'; got {profile!r}.")
        if batch < 1:
            raise ValueError(f"batch must be at least 1; got {batch}.")
        g = self.grid
        dtype = dtype or self.config.dtype
        mean = self.turbulent_profile() if profile == "turbulent" else self.laminar_profile()
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        shape = (batch, 3, g.nx, g.ny, g.nz_rfft)
        noise = torch.complex(
            torch.randn(shape, generator=generator, dtype=F64),
            torch.randn(shape, generator=generator, dtype=F64),
        )
        mx, mz = g.integer_wavenumbers()
        keep = (mx.abs() <= max_mode) & (mz <= max_mode) & g.dealias_mask()
        keep = keep & ~((mx == 0) & (mz == 0))
        noise = noise * keep
        yc = g.y_centres
        yf = g.y_faces[:-1]
        envelope = torch.stack([1 - yc**2, (1 - yf**2) ** 2, 1 - yc**2])[:, None, :, None]
        perturbation = self.project(g.irfft(noise * envelope))
        rms = perturbation.square().mean(dim=(1, 2, 3, 4), keepdim=True).sqrt()
        scale = amplitude * float(g.bulk_mean(mean))
        u = self._profile_field(mean, batch, "cpu", F64) + perturbation * (scale / rms)
        return u.to(device=device, dtype=dtype)

    def _check(self, u: torch.Tensor) -> torch.Tensor:
        g = self.grid
        if u.ndim != 5 or tuple(u.shape[1:]) != (3, g.nx, g.ny, g.nz):
            raise ValueError(
                f"Expected velocities shaped (B, 3, {g.nx}, {g.ny}, {g.nz}); got {tuple(u.shape)}."
            )
        if u.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"Expected a float32 or float64 velocity; got {u.dtype}.")
        return u
