"""Pseudo-spectral solver for 2D incompressible Navier–Stokes in vorticity form.

On the periodic box [0, L)² the vorticity ω = ∂v/∂x − ∂u/∂y obeys

    ∂ω/∂t + u·∇ω = ν Δω − μ ω + f,     u = (∂ψ/∂y, −∂ψ/∂x),  −Δψ = ω,

with viscosity ν, linear drag μ and a steady vorticity forcing f. In Fourier space, with
|k|² the symbol of −Δ,

    ∂ω̂/∂t = N(ω̂) + L ω̂,    N(ω̂) = −P[(u·∇ω)^] + f̂,    L = −ν|k|² − μ,

where the advection u·∇ω is evaluated as a product in physical space and P is the 2/3-rule
truncation (applied to ω̂ before the product and to the product itself, so no aliased
energy reaches the retained modes). N is stepped explicitly and L with Crank–Nicolson, by
one of two IMEX schemes of ``physics.time_stepping``: "rk4cn" (the default; low-storage
RK4 of Carpenter & Kennedy for N) or "cnheun" (Heun's RK2 for N). Both are second-order
accurate, and viscosity and drag set no limit on the time step.
"""

from __future__ import annotations

import math

import torch

from physics.grid import Grid2D
from physics.spectral import (
    derivative_wavenumbers,
    irfft2,
    laplacian_symbol,
    rfft2,
    velocity_from_vorticity,
)
from physics.time_stepping import Scheme, get_scheme, imex_step

# A field at rest has no advective time scale; stable_dt then assumes this speed so that the
# first step of a forced flow started from rest is still CFL-sized (see stable_dt).
_REST_SPEED = 1.0

# ``advance`` re-measures the speed every _CHECK_EVERY steps (about 1% extra work) and
# re-plans when the CFL step has shrunk below _REPLAN_FRACTION of the step in use, i.e. when
# the Courant number has grown by more than a quarter.
_CHECK_EVERY = 16
_REPLAN_FRACTION = 0.8


def advection_hat(
    w_hat: torch.Tensor,
    kx: torch.Tensor,
    ky: torch.Tensor,
    inverse_laplacian: torch.Tensor,
    mask: torch.Tensor,
    n: int,
) -> torch.Tensor:
    """P[(u·∇ω)^]: the dealiased advection term, rfft2 layout, from the vorticity ω̂.

    ``kx``, ``ky`` are first-derivative wavenumbers, ``inverse_laplacian`` is 1/|k|² (0 at
    k = 0), so ψ̂ = ω̂/|k|², and ``mask`` is the 2/3-rule mask. The product is taken in the
    advective form u·∇ω; with both factors and the product truncated it equals the
    conservative form ∇·(uω) on the retained modes, since ∇·u = 0 exactly.
    """
    w_hat = w_hat * mask
    psi_hat = w_hat * inverse_laplacian
    u = irfft2(1j * ky * psi_hat, n)
    v = irfft2(-1j * kx * psi_hat, n)
    dw_dx = irfft2(1j * kx * w_hat, n)
    dw_dy = irfft2(1j * ky * w_hat, n)
    return rfft2(u * dw_dx + v * dw_dy) * mask


class VorticitySolver2D:
    """Batched solver of ∂ω/∂t + u·∇ω = νΔω − μω + f on a periodic ``Grid2D``.

    Args:
        grid: the periodic box and its resolution.
        nu: kinematic viscosity ν.
        forcing: steady vorticity forcing f as a real (n, n) tensor, or None for none.
        drag: linear (Rayleigh) drag coefficient μ.
        cfl: Courant number for ``stable_dt``: Δt = cfl·dx/max|u|; None takes the scheme's
            ``default_cfl`` (0.5 for "rk4cn", 0.25 for "cnheun").
        max_dt: optional upper bound on the step chosen by ``stable_dt``.
        scheme: the IMEX time stepper, "rk4cn" or "cnheun" (or a scheme object of
            ``physics.time_stepping``).

    State tensors are real (..., n, n) vorticity fields (usually (batch, 1, n, n)) or their
    rfft2 coefficients; the computation follows the input's device and dtype (float32 or
    float64), and operators are built once per (device, dtype).
    """

    def __init__(
        self,
        grid: Grid2D,
        nu: float,
        forcing: torch.Tensor | None = None,
        drag: float = 0.0,
        cfl: float | None = None,
        max_dt: float | None = None,
        scheme: str | Scheme = "rk4cn",
    ) -> None:
        self.scheme = get_scheme(scheme)
        if cfl is None:
            cfl = self.scheme.default_cfl
        if nu < 0 or drag < 0:
            raise ValueError(f"Viscosity and drag must be non-negative; got nu={nu}, drag={drag}.")
        if not cfl > 0:
            raise ValueError(f"The CFL number must be positive; got {cfl}.")
        if max_dt is not None and not max_dt > 0:
            raise ValueError(f"max_dt must be positive when given; got {max_dt}.")
        if forcing is not None and tuple(forcing.shape) != (grid.n, grid.n):
            raise ValueError(
                f"The forcing must be an ({grid.n}, {grid.n}) field; got {tuple(forcing.shape)}."
            )
        self.grid = grid
        self.nu = float(nu)
        self.drag = float(drag)
        self.cfl = float(cfl)
        self.max_dt = max_dt
        self.forcing = forcing
        # Largest |κ| the dealiasing keeps (for the CN-Heun stability bound of stable_dt).
        k2 = laplacian_symbol(grid, dtype=torch.float64)
        self._kmax = float(k2[grid.dealias_mask()].max().sqrt())
        self._operators: dict[tuple[torch.device, torch.dtype], dict[str, torch.Tensor]] = {}

    def _ops(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        key = (device, dtype)
        if key not in self._operators:
            kx, ky = derivative_wavenumbers(self.grid, device, dtype)
            k2 = laplacian_symbol(self.grid, device, dtype)
            inverse_laplacian = torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, 1), 0)
            ops = {
                "kx": kx,
                "ky": ky,
                "inverse_laplacian": inverse_laplacian,
                "mask": self.grid.dealias_mask(device),
                "linear": -self.nu * k2 - self.drag,
            }
            if self.forcing is not None:
                ops["forcing_hat"] = rfft2(self.forcing.to(device=device, dtype=dtype))
            self._operators[key] = ops
        return self._operators[key]

    def explicit_terms(self, w_hat: torch.Tensor) -> torch.Tensor:
        """N(ω̂) = −P[(u·∇ω)^] + f̂, the terms stepped explicitly."""
        ops = self._ops(w_hat.device, w_hat.real.dtype)
        terms = -advection_hat(
            w_hat, ops["kx"], ops["ky"], ops["inverse_laplacian"], ops["mask"], self.grid.n
        )
        if "forcing_hat" in ops:
            terms = terms + ops["forcing_hat"]
        return terms

    def step(self, w_hat: torch.Tensor, dt: float) -> torch.Tensor:
        """Advance rfft2 coefficients (..., n, n//2+1) by one step of size dt of the scheme."""
        ops = self._ops(w_hat.device, w_hat.real.dtype)
        return imex_step(w_hat, dt, self.explicit_terms, ops["linear"], self.scheme)

    def stable_dt(self, w: torch.Tensor) -> float:
        """CFL time step cfl·dx/max|u| for the real field(s) w, capped at ``max_dt``.

        One step serves the whole batch, so the fastest point of any member sets it. For
        RK4-CN only advection limits it: viscosity and drag are implicit. CN-Heun's
        explicit part amplifies advected modes slightly at every step (see
        ``physics.time_stepping.CNHeun``), so for it Δt is also kept below
        ((νκ² + μ)/(c·(κ·max|u|)⁴))^(1/3), c = 1/8, at the largest retained wavenumber
        |κ| (the corner of the 2/3-rule box), where viscosity and drag absorb the growth.
        A field at rest has no advective scale, so it is treated as moving at unit speed.
        """
        u, v = velocity_from_vorticity(self._check(w), self.grid.length)
        speed = float(torch.sqrt(u**2 + v**2).max()) if w.numel() else 0.0
        if not math.isfinite(speed):
            raise FloatingPointError("The vorticity field is not finite; cannot choose a step.")
        speed = speed if speed > 0 else _REST_SPEED
        dt = self.cfl * self.grid.dx / speed
        growth = self.scheme.imaginary_axis_growth
        damping = self.nu * self._kmax**2 + self.drag
        if growth > 0 and damping > 0:
            # Heun-type schemes amplify advected modes by ≈ 1 + c(κuΔt)⁴ per step; the
            # implicit damping (νκ² + μ)Δt must absorb that at the largest retained |κ|.
            dt = min(dt, (damping / (growth * (self._kmax * speed) ** 4)) ** (1 / 3))
        return dt if self.max_dt is None else min(dt, self.max_dt)

    def advance(self, w: torch.Tensor, duration: float) -> torch.Tensor:
        """Real field(s) w at time t → at t + duration, same shape.

        Takes ceil(duration/Δt) equal steps with Δt = ``stable_dt(w)``, so the result lands
        exactly on ``duration``. A long call can outlive that Δt: a forced flow speeds up as
        it spins up (ns2d-forced's peak speed grows about fourfold over its first 30 time
        units), and the RK4 step goes unstable near a Courant number of 1.5 (measured on a
        2D turbulent flow). So every ``_CHECK_EVERY`` steps the speed is measured again,
        and if the CFL step has shrunk below ``_REPLAN_FRACTION`` of the step in use, the
        rest of the duration is re-planned in equal steps from the new CFL step. Calls of
        at most ``_CHECK_EVERY`` steps (one output interval, typically) never re-plan.
        """
        _check_duration(duration)
        w = self._check(w)
        if duration == 0:
            return w.clone()
        w_hat = rfft2(w)
        remaining, dt_cfl = duration, self.stable_dt(w)
        while remaining > 0:
            steps = num_steps(remaining, dt_cfl)
            h = remaining / steps
            for done in range(1, steps + 1):
                w_hat = self.step(w_hat, h)
                if done % _CHECK_EVERY == 0 and done < steps:
                    dt_cfl = self.stable_dt(irfft2(w_hat, self.grid.n))
                    if dt_cfl < _REPLAN_FRACTION * h:
                        remaining -= done * h
                        break
            else:
                remaining = 0.0
        return irfft2(w_hat, self.grid.n)

    def advance_fixed(self, w: torch.Tensor, duration: float, dt: float) -> torch.Tensor:
        """Like ``advance`` with a given step: ceil(duration/dt) equal steps.

        When duration is a whole multiple of dt (to round-off) the step is exactly dt;
        otherwise it shrinks slightly so the steps end on ``duration``.
        """
        _check_duration(duration)
        if not dt > 0:
            raise ValueError(f"The time step must be positive; got {dt}.")
        w = self._check(w)
        steps = num_steps(duration, dt)
        if steps == 0:
            return w.clone()
        h = duration / steps
        w_hat = rfft2(w)
        for _ in range(steps):
            w_hat = self.step(w_hat, h)
        return irfft2(w_hat, self.grid.n)

    def _check(self, w: torch.Tensor) -> torch.Tensor:
        n = self.grid.n
        if w.ndim < 2 or tuple(w.shape[-2:]) != (n, n):
            raise ValueError(f"This solver's grid is {n}×{n}; got a field shaped {tuple(w.shape)}.")
        if not w.is_floating_point():
            raise TypeError(f"Expected a real floating-point field; got {w.dtype}.")
        return w


def num_steps(duration: float, dt: float) -> int:
    """ceil(duration/dt), ignoring round-off that would add a sliver of a step; at least one
    step for any positive duration."""
    if duration == 0:
        return 0
    ratio = duration / dt
    nearest = round(ratio)
    if abs(ratio - nearest) <= 1e-9 * max(1.0, ratio):
        return max(1, int(nearest))
    return math.ceil(ratio)


def _check_duration(duration: float) -> None:
    if not (duration >= 0 and math.isfinite(duration)):
        raise ValueError(f"The duration must be finite and non-negative; got {duration}.")
