"""Pseudo-spectral solver for 2D incompressible Navier–Stokes in vorticity form.

On the periodic box [0, L)² the vorticity ω = ∂v/∂x − ∂u/∂y obeys

    ∂ω/∂t + u·∇ω = ν Δω − μ ω + f,     u = (∂ψ/∂y, −∂ψ/∂x),  −Δψ = ω,

with viscosity ν, linear drag μ and a steady vorticity forcing f. In Fourier space, with
|k|² the symbol of −Δ,

    ∂ω̂/∂t = N(ω̂) + L ω̂,    N(ω̂) = −P[(u·∇ω)^] + f̂,    L = −ν|k|² − μ,

where the advection u·∇ω is evaluated as a product in physical space and P is the 2/3-rule
truncation (applied to ω̂ before the product and to the product itself, so no aliased
energy reaches the retained modes). N is stepped explicitly and L with Crank–Nicolson, by
one of two IMEX schemes of ``physics.ns2d.time_stepping``: "rk4cn" (the default; low-storage
RK4 of Carpenter & Kennedy for N) or "cnheun" (Heun's RK2 for N). Both are second-order
accurate, and viscosity and drag set no limit on the time step.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from physics.grid import Grid2D
from physics.ns2d.time_stepping import CNHeun, LowStorageIMEX, Scheme, get_scheme, imex_step
from physics.spectral import (
    derivative_wavenumbers,
    irfft2,
    laplacian_symbol,
    rfft2,
    velocity_from_vorticity,
)

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
            ``physics.ns2d.time_stepping``).

    State tensors are real (..., n, n) vorticity fields (usually (batch, 1, n, n)) or their
    rfft2 coefficients; the computation follows the input's device and dtype (float32 or
    float64), and operators are built once per (device, dtype). ``step`` keeps a scratch
    array per batch shape, so one solver should not step from two threads at once.
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
        self._operators: dict[tuple[torch.device, torch.dtype], dict[str, Any]] = {}

    def _ops(self, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
        key = (device, dtype)
        if key not in self._operators:
            kx, ky = derivative_wavenumbers(self.grid, device, dtype)
            k2 = laplacian_symbol(self.grid, device, dtype)
            inverse_laplacian = torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, 1), 0)
            mask = self.grid.dealias_mask(device)
            ops = {
                "kx": kx,
                "ky": ky,
                "inverse_laplacian": inverse_laplacian,
                "mask": mask,
                "linear": -self.nu * k2 - self.drag,
            }
            # ``step`` works on the columns kx < n/3 that the 2/3 rule keeps, the "kept"
            # layout (..., n, kc); the others only decay (and take the forcing) linearly.
            # Its multipliers are complex: a real one is converted to complex, a full-size
            # copy, by every product with a spectrum.
            kc = _kept_columns(self.grid.n)
            complex_dtype = torch.promote_types(dtype, torch.complex64)
            kept = mask[:, :kc].to(dtype)
            kx_kept, psi_kept = kx[:, :kc], inverse_laplacian[:, :kc] * kept
            gradients = [  # ω̂ ↦ û, v̂, (∂ω/∂x)^, (∂ω/∂y)^, truncated
                1j * ky * psi_kept,
                -1j * kx_kept * psi_kept,
                1j * kx_kept * kept,
                1j * ky * kept,
            ]
            ops["kept_columns"] = kc
            ops["gradients"] = [_column_major(g.to(complex_dtype)) for g in gradients]
            ops["minus_mask"] = _column_major((-kept).to(complex_dtype))
            if self.forcing is not None:
                forcing_hat = rfft2(self.forcing.to(device=device, dtype=dtype))
                ops["forcing_hat"] = forcing_hat
                ops["forcing_kept"] = _column_major(forcing_hat[:, :kc])
            ops["step_factors"] = {}
            ops["padded_buffers"] = {}
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

    def _kept_explicit_terms(self, w: torch.Tensor, ops: dict[str, Any]) -> torch.Tensor:
        """``explicit_terms`` on the kept columns (..., n, kc), equal to it there to
        round-off (fastest with w and the operators laid out by ``_column_major``).

        Each 2D transform is two 1D passes, the complex one only over the kc columns that
        are not zero: irfft2 is an ifft along y then an irfft along x, rfft2 an rfft along x
        then an fft along y (torch's own irfft2 is also slower on CPU than these two).
        """
        n, kc = self.grid.n, ops["kept_columns"]
        # The irfft along x reads a full row of n//2+1 columns; this buffer's columns past kc
        # stay zero, so it needs no padding (torch.fft would pad each call, a fresh array).
        padded = self._padded_buffer(w.shape, ops)
        fields = []
        for g in ops["gradients"]:
            torch.fft.ifft(w * g, dim=-2, out=padded[..., :kc])
            fields.append(torch.fft.irfft(padded, n=n, dim=-1))
        u, v, dw_dx, dw_dy = fields
        advection = torch.mul(u, dw_dx).addcmul_(v, dw_dy)
        terms = torch.fft.fft(torch.fft.rfft(advection, dim=-1)[..., :kc], dim=-2)
        terms.mul_(ops["minus_mask"])
        if "forcing_kept" in ops:
            terms += ops["forcing_kept"]
        return terms

    def _padded_buffer(self, kept_shape: torch.Size, ops: dict[str, Any]) -> torch.Tensor:
        """A zero (..., n, n//2+1) complex array for ``_kept_explicit_terms``, cached per
        batch shape (a few at a time); only its first kc columns are ever written."""
        buffers = ops["padded_buffers"]
        shape = (*kept_shape[:-1], self.grid.n // 2 + 1)
        if shape not in buffers:
            if len(buffers) >= 4:
                del buffers[next(iter(buffers))]
            mask = ops["minus_mask"]
            buffers[shape] = torch.zeros(shape, device=mask.device, dtype=mask.dtype)
        return buffers[shape]

    def _step_factors(
        self, device: torch.device, dtype: torch.dtype, dt: float
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]:
        """The Fourier multipliers of one step of size dt, cached (a few Δt at a time).

        Each stage k of ``physics.ns2d.time_stepping.imex_step`` is u ← aₖu + bₖh with
        aₖ = (1 + µₖL)/(1 − µₖL) and bₖ = γₖΔt/(1 − µₖL) (CN-Heun: one pair, µ = Δt/2,
        b = Δt/(1 − µL)); these are returned on the kept columns. On the other columns N is
        just f̂, so the whole step is u ← A u + B f̂; (A, B) are returned on those columns.
        """
        ops = self._ops(device, dtype)
        cache = ops["step_factors"]
        key = (float(dt), self.scheme)
        if key not in cache:
            if len(cache) >= 4:  # ``advance`` re-plans Δt now and then
                del cache[next(iter(cache))]
            kc = ops["kept_columns"]
            linear = ops["linear"].to(torch.float64)
            if isinstance(self.scheme, CNHeun):
                mus, gammas, betas = [0.5 * dt], [1.0], [0.0]
            else:
                alphas = self.scheme.alphas
                mus = [0.5 * dt * (alphas[k + 1] - alphas[k]) for k in range(len(alphas) - 1)]
                gammas, betas = self.scheme.gammas, self.scheme.betas
            stages = []
            whole_a, whole_b, weight = torch.ones_like(linear), torch.zeros_like(linear), 0.0
            for mu, gamma, beta in zip(mus, gammas, betas, strict=True):
                a = (1 + mu * linear) / (1 - mu * linear)
                b = (gamma * dt) / (1 - mu * linear)
                stages.append((a, b))
                weight = 1.0 + beta * weight  # h = weight·f̂ where N = f̂
                whole_a, whole_b = a * whole_a, a * whole_b + weight * b

            def cast(x: torch.Tensor) -> torch.Tensor:
                return x.to(ops["minus_mask"].dtype).contiguous()

            cache[key] = (
                [
                    (_column_major(cast(a[:, :kc])), _column_major(cast(b[:, :kc])))
                    for a, b in stages
                ],
                (cast(whole_a[:, kc:]), cast(whole_b[:, kc:])),
            )
        return cache[key]

    def step(self, w_hat: torch.Tensor, dt: float) -> torch.Tensor:
        """Advance rfft2 coefficients (..., n, n//2+1) by one step of size dt of the scheme.

        The same arithmetic as ``imex_step(w_hat, dt, self.explicit_terms, L, scheme)``
        (equal to round-off), with the stage multipliers precomputed (``_step_factors``)
        and the nonlinear work done on the columns the 2/3 rule keeps; it falls back to
        exactly that call where autograd has to follow w_hat.
        """
        dtype = w_hat.real.dtype
        ops = self._ops(w_hat.device, dtype)
        differentiable = torch.is_grad_enabled() and w_hat.requires_grad
        if differentiable or not isinstance(self.scheme, LowStorageIMEX | CNHeun):
            # The fast path writes into a scratch array, which autograd cannot follow.
            return imex_step(w_hat, dt, self.explicit_terms, ops["linear"], self.scheme)
        stages, (whole_a, whole_b) = self._step_factors(w_hat.device, dtype, dt)
        kc = ops["kept_columns"]
        w = _column_major(w_hat[..., :kc])
        if isinstance(self.scheme, CNHeun):
            ((a, b),) = stages
            n0 = self._kept_explicit_terms(w, ops)
            explicit_part = torch.mul(w, a)
            predictor = torch.addcmul(explicit_part, n0, b)
            n0 += self._kept_explicit_terms(predictor, ops)
            w = explicit_part.addcmul_(n0, b, value=0.5)
        else:
            h = None
            for (a, b), beta in zip(stages, self.scheme.betas, strict=True):
                terms = self._kept_explicit_terms(w, ops)
                h = terms if h is None else terms.add_(h, alpha=beta)
                w = torch.mul(w, a).addcmul_(h, b)
        out = torch.empty_like(w_hat)
        out[..., :kc] = w
        torch.mul(w_hat[..., kc:], whole_a, out=out[..., kc:])
        if "forcing_hat" in ops:
            out[..., kc:].addcmul_(ops["forcing_hat"][:, kc:], whole_b)
        return out

    def stable_dt(self, w: torch.Tensor) -> float:
        """CFL time step cfl·dx/max|u| for the real field(s) w, capped at ``max_dt``.

        One step serves the whole batch, so the fastest point of any member sets it. For
        RK4-CN only advection limits it: viscosity and drag are implicit. CN-Heun's
        explicit part amplifies advected modes slightly at every step (see
        ``physics.ns2d.time_stepping.CNHeun``), so for it Δt is also kept below
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


def _column_major(x: torch.Tensor) -> torch.Tensor:
    """x with the same values and shape, laid out with its second-to-last (y) axis fastest:
    the layout torch.fft gives a transform along that axis, kept so that elementwise
    products of spectra never mix layouts."""
    return x.transpose(-1, -2).contiguous().transpose(-1, -2)


def _kept_columns(n: int) -> int:
    """How many rfft2 columns kx = 0, 1, ... the 2/3 rule keeps on an n-point grid (3kx < n)."""
    return (n - 1) // 3 + 1


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
