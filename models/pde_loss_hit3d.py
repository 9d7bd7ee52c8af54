"""A physics-informed loss for 3D homogeneous isotropic turbulence: the residual of the
filtered (LES) Navier–Stokes equations on the model's own coarse periodic grid.

A model maps the last input frame u⁰ to the frame u¹ one stored interval Δt later (frames of
``preds`` follow each other Δt apart). Between two frames the LES equations, Leray-projected
so that the pressure drops out (``physics.hit3d.solver``), read ∂û/∂t = N(û) with

    N(û) = P(k)·T[(u × ω)^ + i k·(2ν_t S)^] + f̂ − ν|k|² û,

T the 2/3 rule, ν_t the closure's eddy viscosity (Smagorinsky, dynamic Smagorinsky or none),
f the forcing the flow declares. The loss discretises them in time by Crank–Nicolson over
the frame spacing, the residual

    R̂ = P(k)·(û¹ − û⁰)/Δt − ½[N(û⁰) + N(û¹)],

which vanishes to O(Δt²) on a solution of the coarse LES (CN's truncation error,
−Δt²/12 ∂³u/∂t³) and equals −N(û⁰) for persistence (û¹ = û⁰). N is
``HITSolver.explicit_terms`` plus its viscous term: the same discrete operator the reference
LES steps, so the loss and the solver cannot disagree on a sign or a constant.

P removes the gradient part of (û¹ − û⁰)/Δt, so the momentum residual does not see whether
u¹ is solenoidal; a model's output is not divergence-free by construction, hence a second
term on ∇·u¹. Per sample and predicted frame,

    loss = ‖R‖ / ‖N(u_in)‖  +  w_div · ‖∇·u¹‖ / ‖∇u_in‖,

u_in the last input frame, ‖f‖ = ⟨|f|²⟩^½ the rms over the box (by Parseval, in Fourier
space), ‖∇u‖² = Σ_ij ‖∂u_i/∂x_j‖², w_div = ``DIVERGENCE_WEIGHT`` (1) unless the flow
parameters give ``divergence_weight``. Both denominators depend on the inputs only, so
shrinking or inflating the prediction cannot lower the loss; persistence scores exactly 1
on the first term, a solenoidal prediction 0 on the second. The loss is the mean over
samples and frames (a 0-d tensor), differentiable with respect to the prediction.

Flow parameters read (all optional; a hit3d dataset's attributes are such parameters):
``nu`` (default the flow's ν), ``forcing`` ("none" or "linear", the energy-holding linear
forcing of the shells 1 … ``k_forcing``), ``k_forcing``, ``divergence_weight``, and the
closure (``closure_for``): ``pde_closure`` when given; else, for filtered DNS (``filter``
"spectral" or "box": data stored on a grid coarser than its solver's), the data's
``closure`` when it is an LES closure and otherwise "smagorinsky", since a coarse grid needs
a subgrid model and the generating run's "none" meant "resolved on the fine grid"; else
``closure`` ("smagorinsky" when not given). Data stored on the grid their solver ran on
(``filter`` "none") thus get that solver's own equation, a coarse DNS's "none" included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from physics.hit3d.flow import HIT3D
from physics.hit3d.grid import Grid3D, rfftn
from physics.hit3d.operators import divergence_hat, leray_project
from physics.hit3d.solver import HITSolver

DEFAULT_CLOSURE = "smagorinsky"
# The divergence term's weight: a prediction whose divergence is 10 % of its velocity
# gradient costs 0.1, as much as a momentum residual 10 % of persistence's.
DIVERGENCE_WEIGHT = 1.0
CLOSURE_NAMES = ("smagorinsky", "dynamic", "none")
FORCING_NAMES = ("none", "linear")

PDELoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _option(params: Mapping[str, Any], key: str, default: Any) -> Any:
    value = params.get(key)
    return default if value is None else value


class HITResidual:
    """The Crank–Nicolson residual of the coarse-grid LES equations (see the module
    docstring) for velocity frames ``(B, T, 3, n, n, n)`` on the periodic cube of side
    ``length``, frames ``frame_dt`` apart. A ``HITSolver`` per grid side n supplies N."""

    def __init__(
        self,
        nu: float,
        frame_dt: float,
        *,
        closure: str = DEFAULT_CLOSURE,
        forcing: str = "none",
        k_forcing: int = HIT3D.k_forcing,
        length: float = 2 * math.pi,
        divergence_weight: float = DIVERGENCE_WEIGHT,
    ) -> None:
        if not (math.isfinite(nu) and nu >= 0):
            raise ValueError(f"The viscosity must be finite and non-negative; got nu={nu}.")
        if not (math.isfinite(frame_dt) and frame_dt > 0):
            raise ValueError(f"The frame spacing must be positive; got frame_dt={frame_dt}.")
        if not (math.isfinite(length) and length > 0):
            raise ValueError(f"The box side must be positive; got length={length}.")
        closure = str(closure).lower()
        if closure not in CLOSURE_NAMES:
            raise ValueError(
                f"The physics loss takes the closures {', '.join(CLOSURE_NAMES)}; got {closure!r}."
            )
        forcing = str(forcing).lower()
        if forcing not in FORCING_NAMES:
            raise ValueError(
                f"The physics loss takes the forcings {', '.join(FORCING_NAMES)}; got {forcing!r}."
            )
        if not (math.isfinite(divergence_weight) and divergence_weight >= 0):
            raise ValueError(
                f"The divergence weight must be non-negative; got {divergence_weight}."
            )
        self.nu = float(nu)
        self.frame_dt = float(frame_dt)
        self.closure = closure
        self.forcing = forcing
        self.k_forcing = int(k_forcing)
        self.length = float(length)
        self.divergence_weight = float(divergence_weight)
        self._solvers: dict[int, HITSolver] = {}

    def solver(self, n: int) -> HITSolver:
        """The LES solver of the n³ grid whose right-hand side the residual uses."""
        if n not in self._solvers:
            forcing = None if self.forcing == "none" else self.forcing
            self._solvers[n] = HITSolver(
                Grid3D(n, self.length),
                self.nu,
                forcing,
                hold_energy=forcing == "linear",
                k_forcing=self.k_forcing,
                closure=None if self.closure == "none" else self.closure,
            )
        return self._solvers[n]

    def tendency(self, u_hat: torch.Tensor, solver: HITSolver) -> torch.Tensor:
        """N(û) (…, 3, n, n, n//2+1): the projected, dealiased nonlinear and subgrid terms,
        the forcing, and −ν|k|² û on every mode (the solver's implicit part)."""
        return solver.explicit_terms(u_hat) + solver.operators(u_hat)["linear"] * u_hat

    def terms(self, inputs: torch.Tensor, preds: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two relative terms of the loss, each (B, T): ``momentum`` ‖R‖/‖N(u_in)‖ and
        ``divergence`` ‖∇·u¹‖/‖∇u_in‖, frame t paired with frame t − 1 (the last input
        frame for t = 0). Computed in float32 at least, with autocast off."""
        with torch.autocast(preds.device.type, enabled=False):
            return self._terms(*self._check(inputs, preds))

    def _terms(self, u_in: torch.Tensor, preds: torch.Tensor) -> dict[str, torch.Tensor]:
        n = preds.shape[-1]
        solver = self.solver(n)
        frames = torch.cat([u_in[:, None], preds], dim=1)  # (B, T+1, 3, n, n, n)
        frames_hat = rfftn(frames)
        ops = solver.operators(frames_hat)
        k, weights = ops["k"], ops["weights"]  # weights: Parseval, ⟨ab⟩ = Σ w Re(â* b̂)

        def norm(f_hat: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
            return torch.sqrt(((f_hat.abs() ** 2) * weights).sum(dim=dims))

        tendencies = self.tendency(frames_hat, solver)
        change = (frames_hat[:, 1:] - frames_hat[:, :-1]) / self.frame_dt
        residual = leray_project(change, k, ops["inverse_k2"]) - 0.5 * (
            tendencies[:, 1:] + tendencies[:, :-1]
        )
        every = (-4, -3, -2, -1)
        with torch.no_grad():  # the scales: the inputs only
            scale = norm(tendencies[:, 0], every)
            # ‖∇u‖² = Σ_i Σ_k |k|² |û_i|² w (Parseval; k2_weights = |k|²·w).
            squares = (frames_hat[:, 0].abs() ** 2) * ops["k2_weights"]
            gradient_scale = torch.sqrt(squares.sum(dim=every))
        floor = torch.finfo(scale.dtype).tiny
        momentum = norm(residual, every) / scale.clamp_min(floor)[:, None]
        divergence = norm(divergence_hat(frames_hat[:, 1:], k), (-3, -2, -1))
        divergence = divergence / gradient_scale.clamp_min(floor)[:, None]
        return {"momentum": momentum, "divergence": divergence}

    def __call__(self, inputs: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
        terms = self.terms(inputs, preds)
        return (terms["momentum"] + self.divergence_weight * terms["divergence"]).mean()

    def _check(self, inputs: torch.Tensor, preds: torch.Tensor):
        if inputs.ndim != 6 or inputs.shape[2] != 3:
            raise ValueError(
                f"The physics loss expects input frames (B, history, 3, n, n, n); got "
                f"{tuple(inputs.shape)}."
            )
        if (
            preds.ndim != 6
            or preds.shape[0] != inputs.shape[0]
            or preds.shape[2:] != (inputs.shape[2:])
        ):
            raise ValueError(
                f"The physics loss expects predicted frames (B, T, 3, n, n, n) like the "
                f"inputs {tuple(inputs.shape)}; got {tuple(preds.shape)}."
            )
        n = preds.shape[-1]
        if not preds.shape[-3] == preds.shape[-2] == n:
            raise ValueError(
                f"The physics loss of hit3d needs a cubic grid (n, n, n); got "
                f"{tuple(preds.shape[-3:])}."
            )
        # FFTs in float32 at least (a bfloat16 prediction from autocast is promoted).
        dtype = torch.promote_types(preds.dtype, torch.float32)
        return inputs[:, -1].detach().to(dtype), preds.to(dtype)


def closure_for(params: Mapping[str, Any]) -> str:
    """The closure of the residual for the flow parameters ``params`` (see the module
    docstring): "smagorinsky", "dynamic" or "none"."""
    if params.get("pde_closure") is not None:
        return str(params["pde_closure"])
    closure = params.get("closure")
    if params.get("filter") not in (None, "none"):
        return DEFAULT_CLOSURE if closure in (None, "none") else str(closure)
    return DEFAULT_CLOSURE if closure is None else str(closure)


def make_hit3d_pde_loss(
    flow_params: Mapping[str, Any] | None, frame_dt: float, length: float
) -> HITResidual:
    """The physics loss of hit3d for the flow parameters ``flow_params`` (see the module
    docstring for the keys read), frames ``frame_dt`` apart on a cube of side ``length``.
    ValueError, in a sentence, for a closure, forcing or number it cannot take."""
    params = dict(flow_params or {})
    return HITResidual(
        float(_option(params, "nu", HIT3D.nu)),
        float(frame_dt),
        closure=closure_for(params),
        forcing=_option(params, "forcing", "none"),
        k_forcing=int(_option(params, "k_forcing", HIT3D.k_forcing) or HIT3D.k_forcing),
        length=float(length),
        divergence_weight=float(_option(params, "divergence_weight", DIVERGENCE_WEIGHT)),
    )
