"""Pseudo-spectral solver for 3D incompressible Navier–Stokes in the periodic box.

On [0, L)³ (L = 2π) the velocity u obeys, in rotational form,

    ∂u/∂t = u × ω − ∇Π + ν∇²u + f + ∇·(2ν_t S),    ∇·u = 0,   ω = ∇ × u,

Π = p + ½|u|² the total head. In Fourier space the pressure is removed by the Leray
projection P(k) = I − kkᵀ/|k|² (``physics.hit3d.operators``):

    ∂û/∂t = N(û) + G û,    N(û) = P(k)·T[(u × ω)^ + i k·(2ν_t S)^] + f̂,    G = −ν|k|²,

where the products are formed on the grid from the truncated û and T is Orszag's 2/3 rule
(|κᵢ| < n/3), applied to û before the products and to the products, so that no aliased
contribution reaches the retained modes. The mean mode (k = 0) of N is zero: momentum is
conserved. N is stepped explicitly and the viscous term G implicitly by the low-storage
IMEX schemes of ``physics.ns2d.time_stepping`` (``imex_step``: RK4 of Carpenter & Kennedy
with Crank–Nicolson, "rk4cn", the default; or CN–Heun), second order coupled.

Energy. Since u·(u × ω) = 0 pointwise, the truncated advection neither creates nor destroys
energy on the retained modes, and the semi-discrete energy E = ½⟨|u|²⟩ obeys exactly

    dE/dt = −ε − ε_sgs + P_f,   ε = ν⟨|∇u|²⟩ = 2ν⟨S_ijS_ij⟩,  ε_sgs = ⟨2ν_t S_ijS_ij⟩,

P_f the forcing power (``budget`` returns the four terms). References: Canuto, Hussaini,
Quarteroni & Zang, *Spectral Methods in Fluid Dynamics* (1988), §7.2; Rogallo (1981),
NASA TM-81315; Pope, *Turbulent Flows* (2000), ch. 6 and 13.

Forcing (on the "band" of modes whose shell round(|κ|) is 1, …, ``k_forcing``, default 2):

- ``"linear"``: f̂ = A û on the band, a Lundgren (2003) linear forcing restricted to the
  large scales (as in Rosales & Meneveau 2005's comparison); it injects P_f = 2A E_band.
  A is ``linear_coefficient``; with ``hold_energy=True`` A is instead chosen at every
  stage as (ε + ε_sgs)/(2E_band), so that dE/dt = 0 exactly (the energy-holding variant,
  cf. Carroll & Blanquart 2013).
- ``"band"``: f̂ = (P/(2E_band)) û on the band, which injects the fixed power P = ``power``
  whatever the field (a band-limited "negative viscosity" forcing, as in Machiels 1997).

Closures (``physics.hit3d.les``): "smagorinsky", "dynamic" or an object with
``eddy_viscosity(u, grid, gradient)``; ν_t is evaluated on the grid at every stage and its
stress stepped explicitly (``stable_dt`` keeps that stable).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from physics.channel.les import contract, strain_rate
from physics.hit3d.filters import FilteredVelocity, filter_to
from physics.hit3d.grid import Grid3D, irfftn, rfftn
from physics.hit3d.les import EddyViscosityModel, get_closure
from physics.hit3d.operators import (
    curl_hat,
    gradient_hat,
    inverse_squared,
    leray_project,
    vorticity_from_gradient,
)
from physics.ns2d.solver import num_steps
from physics.ns2d.time_stepping import Scheme, get_scheme, imex_step

FORCINGS = (None, "linear", "band")

# A field at rest has no advective time scale; stable_dt then assumes this speed.
_REST_SPEED = 1.0
# ``advance`` re-measures the speed every _CHECK_EVERY steps and re-plans when the CFL step
# has shrunk below _REPLAN_FRACTION of the step in use (as ``VorticitySolver2D.advance``).
_CHECK_EVERY = 16
_REPLAN_FRACTION = 0.8
# The explicit subgrid diffusion is kept at |λ|Δt ≤ this, λ ≈ ν_t,max |k|²_max (an estimate
# where ν_t varies in space): below the real-axis stability limits of both explicit parts
# (2 for Heun; about 4.6 for Carpenter & Kennedy's five-stage RK4, measured with imex_step).
_DIFFUSION_NUMBER = 1.5

# (i, j) → index of the SYMMETRIC component list of physics.channel.les.
_SYMMETRIC_INDEX = {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 1): 3, (1, 2): 4, (2, 2): 5}


def _sym(i: int, j: int) -> int:
    return _SYMMETRIC_INDEX[(min(i, j), max(i, j))]


class HITSolver:
    """Batched solver of the 3D incompressible Navier–Stokes equations on a ``Grid3D``.

    Args:
        grid: the periodic cube and its resolution.
        nu: kinematic viscosity ν ≥ 0.
        forcing: None, "linear" or "band" (see the module docstring).
        linear_coefficient: A of the "linear" forcing (its rate, 1/time).
        hold_energy: for "linear", choose A at every stage so that dE/dt = 0.
        power: the power P injected by "band" forcing (energy per unit mass and time).
        k_forcing: the forced shells are 1, …, k_forcing (integer wavenumbers).
        closure: None (DNS, or coarse DNS), "smagorinsky", "dynamic", or a closure object.
        cfl: Courant number of ``stable_dt``: Δt = cfl·dx/max|u|; None takes the scheme's
            ``default_cfl`` (0.5 for "rk4cn").
        max_dt: optional upper bound on the step chosen by ``stable_dt``.
        scheme: "rk4cn" or "cnheun" (``physics.ns2d.time_stepping``).

    Velocities are real (…, 3, n, n, n), channels (u, v, w), or their ``rfftn`` spectra
    (…, 3, n, n, n//2+1); the computation follows the input's device and dtype (float32 or
    float64), and operators are built once per (device, dtype).
    """

    def __init__(
        self,
        grid: Grid3D,
        nu: float,
        forcing: str | None = None,
        *,
        linear_coefficient: float | None = None,
        hold_energy: bool = False,
        power: float | None = None,
        k_forcing: int = 2,
        closure: str | EddyViscosityModel | None = None,
        cfl: float | None = None,
        max_dt: float | None = None,
        scheme: str | Scheme = "rk4cn",
    ) -> None:
        self.scheme = get_scheme(scheme)
        if not nu >= 0:
            raise ValueError(f"The viscosity must be non-negative; got nu={nu}.")
        if forcing not in FORCINGS:
            raise ValueError(f"Unknown forcing {forcing!r}; choose one of {FORCINGS}.")
        if forcing == "linear" and not hold_energy and linear_coefficient is None:
            raise ValueError("Linear forcing needs linear_coefficient (or hold_energy=True).")
        if forcing == "band" and not (power is not None and power >= 0):
            raise ValueError(f"Band forcing needs a non-negative power; got {power}.")
        if forcing is not None and not k_forcing >= 1:
            raise ValueError(f"The forced band must reach shell 1 at least; got {k_forcing}.")
        cfl = self.scheme.default_cfl if cfl is None else cfl
        if not cfl > 0:
            raise ValueError(f"The CFL number must be positive; got {cfl}.")
        if max_dt is not None and not max_dt > 0:
            raise ValueError(f"max_dt must be positive when given; got {max_dt}.")
        self.grid = grid
        self.nu = float(nu)
        self.forcing = forcing
        self.linear_coefficient = None if linear_coefficient is None else float(
            linear_coefficient)  # fmt: skip
        self.hold_energy = bool(hold_energy)
        self.power = None if power is None else float(power)
        self.k_forcing = int(k_forcing)
        self.closure = get_closure(closure)
        self.cfl = float(cfl)
        self.max_dt = max_dt
        k2 = grid.wavenumber_squared()
        self._k2max = float(k2[grid.dealias_mask()].max())
        self._operators: dict[tuple[torch.device, torch.dtype], dict[str, Any]] = {}

    # -- operators ---------------------------------------------------------------------------

    def _ops(self, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
        key = (device, dtype)
        if key not in self._operators:
            g = self.grid
            k = g.derivative_wavenumbers(device, dtype)
            mask = g.dealias_mask(device)
            not_mean = g.wavenumber_squared(device, dtype) > 0
            shells = g.shell_index(device)
            band = mask & (shells >= 1) & (shells <= self.k_forcing)
            weights = g.half_space_weights(device, dtype) / float(g.n) ** 6
            k2 = g.wavenumber_squared(device, dtype)
            self._operators[key] = {
                "k": k,
                "inverse_k2": inverse_squared(k),
                "mask": mask.to(dtype),
                "terms_mask": (mask & not_mean).to(dtype),
                "band": band.to(dtype),
                "weights": weights,  # Parseval weights: ⟨ab⟩ = Σ w Re(â* b̂)
                "k2_weights": k2 * weights,
                "linear": -self.nu * k2,
            }
        return self._operators[key]

    def operators(self, u_hat: torch.Tensor) -> dict[str, Any]:
        """The cached operators for u_hat's device and real dtype."""
        return self._ops(u_hat.device, u_hat.real.dtype)

    # -- right-hand side ---------------------------------------------------------------------

    def _evaluate(self, u_hat: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """N(û) and the energy rates of the retained field: (terms, budget)."""
        ops = self.operators(u_hat)
        n = self.grid.n
        k = ops["k"]
        u_hat = u_hat * ops["mask"]
        if self.closure is None:
            fields = irfftn(torch.cat([u_hat, curl_hat(u_hat, k)], dim=-4), n)
            u, omega = fields[..., :3, :, :, :], fields[..., 3:, :, :, :]
            gradient = None
        else:
            grad_hat = gradient_hat(u_hat, k).flatten(-5, -4)
            fields = irfftn(torch.cat([u_hat, grad_hat], dim=-4), n)
            u = fields[..., :3, :, :, :]
            gradient = fields[..., 3:, :, :, :].unflatten(-4, (3, 3))
            omega = vorticity_from_gradient(gradient)
        terms = rfftn(torch.linalg.cross(u, omega, dim=-4))
        zero = u_hat.real.new_zeros(u_hat.shape[:-4])
        sgs_dissipation = zero
        if self.closure is not None:
            nu_t = self.closure.eddy_viscosity(u, self.grid, gradient)
            strain = strain_rate(gradient)
            stress_hat = rfftn(torch.stack([2 * nu_t * s for s in strain], dim=-4))
            divergence = [
                sum(1j * k[j] * stress_hat[..., _sym(i, j), :, :, :] for j in range(3))
                for i in range(3)
            ]
            terms = terms + torch.stack(divergence, dim=-4)
            sgs_dissipation = (2 * nu_t * contract(strain, strain)).mean(dim=(-3, -2, -1))
        terms = leray_project(terms * ops["terms_mask"], k, ops["inverse_k2"])
        squares = (u_hat.abs() ** 2).sum(dim=-4)
        energy = 0.5 * (squares * ops["weights"]).sum(dim=(-3, -2, -1))
        dissipation = self.nu * (squares * ops["k2_weights"]).sum(dim=(-3, -2, -1))
        forcing_power = zero
        if self.forcing is not None:
            band_energy = 0.5 * (squares * ops["weights"] * ops["band"]).sum(dim=(-3, -2, -1))
            if self.forcing == "band":
                target = torch.full_like(band_energy, self.power)
            elif self.hold_energy:
                target = dissipation + sgs_dissipation
            else:
                target = 2 * self.linear_coefficient * band_energy
            positive = band_energy > 0
            coefficient = torch.where(
                positive, target / (2 * torch.where(positive, band_energy, 1)), 0
            )
            forcing_power = 2 * coefficient * band_energy
            terms = terms + coefficient[..., None, None, None, None] * ops["band"] * u_hat
        budget = {
            "energy": energy,
            "dissipation": dissipation,
            "sgs_dissipation": sgs_dissipation,
            "forcing_power": forcing_power,
        }
        return terms, budget

    def explicit_terms(self, u_hat: torch.Tensor) -> torch.Tensor:
        """N(û): the projected, dealiased u × ω (plus subgrid stress) and the forcing."""
        return self._evaluate(u_hat)[0]

    def budget(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """The energy budget of the retained (dealiased) field, each (…,):

        "energy" E = ½⟨|u|²⟩, "dissipation" ε = ν⟨|∇u|²⟩, "sgs_dissipation" ⟨2ν_t S:S⟩ and
        "forcing_power" P_f, with dE/dt = −ε − ε_sgs + P_f exactly for the semi-discrete
        equations. ``u`` is a real velocity or its rfftn spectrum.
        """
        u_hat = u if u.is_complex() else rfftn(self._check(u))
        return self._evaluate(u_hat)[1]

    # -- stepping ----------------------------------------------------------------------------

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """One step of size dt of the IMEX scheme: ``imex_step(û, dt, N, −ν|k|², scheme)``.

        ``u`` is an rfftn spectrum (complex, returned as one) or a real velocity (returned
        real). The modes outside the 2/3 band do not interact; they only decay viscously.
        """
        if not u.is_complex():
            return irfftn(self.step(rfftn(self._check(u)), dt), self.grid.n)
        ops = self.operators(u)
        return imex_step(u, dt, self.explicit_terms, ops["linear"], self.scheme)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """The spectrum P(k)·T û of a real velocity: solenoidal and dealiased, the state
        ``advance`` evolves."""
        u_hat = rfftn(self._check(u))
        ops = self.operators(u_hat)
        return leray_project(u_hat * ops["mask"], ops["k"], ops["inverse_k2"])

    def stable_dt(self, u: torch.Tensor) -> float:
        """The step for the real velocity u (…, 3, n, n, n), one for the whole batch:

        - CFL: cfl·dx/max|u|, max over the box (and batch) of the speed |u|. For RK4-CN at
          cfl = 0.5 this keeps |k·u|Δt ≤ 0.5·2π/√3 ≈ 1.8 at the corner of the 2/3 cube,
          inside RK4's imaginary-axis stability interval |y| ≤ 2√2.
        - CN–Heun amplifies advected modes by ≈ 1 + c(|k|uΔt)⁴ per step (see
          ``physics.ns2d.time_stepping.CNHeun``); the step is then also kept below
          (ν|k|²/(c(|k|max|u|)⁴))^(1/3) at the largest retained |k|, as in 2D.
        - With a closure, the explicit subgrid diffusion: Δt ≤ 1.5/(max ν_t · |k|²max).
        - ``max_dt``.
        """
        u = self._check(u)
        speed = float(torch.sqrt((u**2).sum(dim=-4)).max()) if u.numel() else 0.0
        if not math.isfinite(speed):
            raise FloatingPointError("The velocity field is not finite; cannot choose a step.")
        speed = speed if speed > 0 else _REST_SPEED
        dt = self.cfl * self.grid.dx / speed
        growth = self.scheme.imaginary_axis_growth
        if growth > 0 and self.nu > 0:
            kmax = math.sqrt(self._k2max)
            dt = min(dt, (self.nu * self._k2max / (growth * (kmax * speed) ** 4)) ** (1 / 3))
        if self.closure is not None and u.numel():
            nu_t_max = float(self.closure.eddy_viscosity(u, self.grid).max())
            if nu_t_max > 0:
                dt = min(dt, _DIFFUSION_NUMBER / (nu_t_max * self._k2max))
        return dt if self.max_dt is None else min(dt, self.max_dt)

    def advance(self, u: torch.Tensor, duration: float, dt: float | None = None) -> torch.Tensor:
        """Real velocity u at time t → at t + duration (real, same shape).

        The input is first projected (``project``: solenoidal, dealiased). With ``dt`` given,
        ceil(duration/dt) equal steps land exactly on ``duration``. Without, the step is
        ``stable_dt`` and, as the flow may speed up, the speed is measured again every 16
        steps and the rest re-planned when the CFL step has shrunk by more than a fifth
        (the policy of ``physics.ns2d.solver.VorticitySolver2D.advance``).
        """
        if not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"The duration must be finite and non-negative; got {duration}.")
        if dt is not None and not dt > 0:
            raise ValueError(f"The time step must be positive; got {dt}.")
        u_hat = self.project(u)
        n = self.grid.n
        if duration == 0:
            return irfftn(u_hat, n)
        if dt is not None:
            steps = num_steps(duration, dt)
            for _ in range(steps):
                u_hat = self.step(u_hat, duration / steps)
            return irfftn(u_hat, n)
        remaining, dt_cfl = duration, self.stable_dt(irfftn(u_hat, n))
        while remaining > 0:
            steps = num_steps(remaining, dt_cfl)
            h = remaining / steps
            for done in range(1, steps + 1):
                u_hat = self.step(u_hat, h)
                if done % _CHECK_EVERY == 0 and done < steps:
                    dt_cfl = self.stable_dt(irfftn(u_hat, n))
                    if dt_cfl < _REPLAN_FRACTION * h:
                        remaining -= done * h
                        break
            else:
                remaining = 0.0
        return irfftn(u_hat, n)

    def filter_to(self, u: torch.Tensor, n_coarse: int, kind: str = "spectral",
                  width: float | None = None) -> FilteredVelocity:  # fmt: skip
        """Filtered DNS: u on this grid filtered and sampled on n_coarse³, with the filter's
        record (``physics.hit3d.filters.filter_to``)."""
        return filter_to(self._check(u), n_coarse, kind, self.grid.length, width)

    def _check(self, u: torch.Tensor) -> torch.Tensor:
        n = self.grid.n
        if u.ndim < 4 or tuple(u.shape[-4:]) != (3, n, n, n):
            raise ValueError(
                f"Expected a velocity shaped (…, 3, {n}, {n}, {n}); got {tuple(u.shape)}."
            )
        if not u.is_floating_point():
            raise TypeError(f"Expected a real floating-point velocity; got {u.dtype}.")
        return u
