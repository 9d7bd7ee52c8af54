"""Physics losses: how far a model's predicted frames are from satisfying the flow's PDE,
with no reference data (physics-informed training, "PINO").

A physics loss is called ``loss(inputs, preds)`` with the model's input window
``(B, history, C, *space)`` and its predicted frames ``(B, T, C, *space)``, both in
physical units, and returns a 0-d differentiable tensor. ``make_pde_loss`` builds the one
of a flow: the 2D vorticity flows here, ``hit3d`` from ``models.pde_loss_hit3d``.

2D vorticity flows: the residual of ∂ω/∂t = N(ω), N(ω) = −u·∇ω + νΔω − μω + f
(``physics.ns2d.residual.vorticity_tendency``, dealiased as the reference solver is), is
taken between consecutive frames of [last input frame, predicted frames…] with the
two-frame Crank–Nicolson (trapezoidal) rule

    R_k = (ω_{k+1} − ω_k)/Δt − ½[N(ω_k) + N(ω_{k+1})],

second order in the frame spacing Δt: for an exact solution R_k = −Δt²·∂³ω/∂t³/12 + O(Δt³).
Two frames are enough, so it works for a one-step model (history 1, out_steps 1, unroll 1).
The residual of the truth is small only where the frame spacing resolves the dynamics
(Δt·‖N‖/‖ω‖ small); a dataset saved at coarse intervals makes the loss pull the model
towards the trapezoidal rule's one big step instead of the flow. A dataset stored on a grid
coarser than its solver's also carries the unresolved scales' effect, which no coarse
residual can see.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from physics.flows import get_flow
from physics.grid import Grid2D
from physics.norms import l2_norm
from physics.ns2d.residual import vorticity_tendency

PdeLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The 2D vorticity flows whose physics loss this module builds.
VORTICITY_FLOWS = ("ns2d-forced", "kolmogorov2d", "decaying2d", "taylor-green2d")
HIT3D_FLOW = "hit3d"
_HIT3D_MODULE = "models.pde_loss_hit3d"

# The scale a residual is divided by never falls below this fraction of ‖ω⁰‖/Δt, so that a
# steady input (N(ω⁰) = 0) gives a large but finite loss to a prediction that moves.
_STEADY_FLOOR = 1e-6


def crank_nicolson_residual(
    frames: torch.Tensor, dt: float, tendency: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """R_k = (ω_{k+1} − ω_k)/Δt − ½[N(ω_k) + N(ω_{k+1})] for frames ``(B, T, …)``, T ≥ 2,
    and N = ``tendency`` (applied to all frames at once): ``(B, T − 1, …)``."""
    if frames.shape[1] < 2:
        raise ValueError(f"a two-frame residual needs at least 2 frames; got {frames.shape[1]}")
    rate = tendency(frames)
    return (frames[:, 1:] - frames[:, :-1]) / dt - 0.5 * (rate[:, 1:] + rate[:, :-1])


class VorticityPdeLoss:
    """The physics loss of a 2D vorticity flow: ν = ``nu``, μ = ``drag``, the steady
    forcing ``forcing_fn(x, y)`` (None: unforced) on the box [0, ``length``)², frames
    ``frame_dt`` apart.

    The loss is the mean over samples b and predicted frames k of ‖R_bk‖ / s_b, with ‖·‖
    the root mean square over the box and s_b = ‖N(ω⁰_b)‖, the rms rate of change the
    equation gives the last INPUT frame ω⁰ (floored at 10⁻⁶‖ω⁰‖/Δt for a steady input).
    Why this scale: it has R's units, so the loss is dimensionless (the same in any units
    of length and time); it is measured on the inputs only, so shrinking or inflating the
    prediction changes the numerator alone and cannot lower the loss; and persistence
    (ω¹ = ω⁰) gives R = −N(ω⁰), a loss of exactly 1 — the loss reads as the residual as a
    fraction of persistence's, as the validation error is read against persistence's.
    Computed in float32 at least, with autocast off.
    """

    def __init__(
        self,
        nu: float,
        drag: float,
        forcing_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        frame_dt: float,
        length: float,
    ):
        for name, value in (("nu", nu), ("drag", drag)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and non-negative; got {value}")
        for name, value in (("frame_dt", frame_dt), ("length", length)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and positive; got {value}")
        self.nu, self.drag = float(nu), float(drag)
        self.forcing_fn = forcing_fn
        self.frame_dt, self.length = float(frame_dt), float(length)
        self._forcing: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}

    def forcing(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
        """f sampled on the n×n grid of the box, built once per (n, device, dtype)."""
        if self.forcing_fn is None:
            return None
        key = (n, device, dtype)
        if key not in self._forcing:
            x, y = Grid2D(n, self.length).coordinates(device, torch.float64)
            self._forcing[key] = self.forcing_fn(x, y).to(dtype)
        return self._forcing[key]

    def tendency(self, w: torch.Tensor) -> torch.Tensor:
        """N(ω) of fields (..., n, n), dealiased like the reference solver."""
        f = self.forcing(w.shape[-1], w.device, w.dtype)
        return vorticity_tendency(w, self.nu, self.drag, f, self.length, dealias=True)

    def relative_residuals(self, inputs: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
        """‖R_bk‖ / s_b per sample and predicted frame, ``(B, T)`` (see the class)."""
        _check_windows(inputs, preds, channels=1, dims=2)
        dtype = torch.promote_types(preds.dtype, torch.float32)
        with torch.autocast(preds.device.type, enabled=False):
            first = inputs[:, -1:].to(dtype)
            frames = torch.cat([first, preds.to(dtype)], dim=1)
            residual = crank_nicolson_residual(frames, self.frame_dt, self.tendency)
            with torch.no_grad():
                start = first.detach()
                scale = l2_norm(self.tendency(start))[:, 0]
                floor = _STEADY_FLOOR * l2_norm(start)[:, 0] / self.frame_dt
                scale = torch.maximum(scale, floor).clamp_min(torch.finfo(dtype).tiny)
            return l2_norm(residual) / scale[:, None]

    def __call__(self, inputs: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
        return self.relative_residuals(inputs, preds).mean()


def _check_windows(inputs: torch.Tensor, preds: torch.Tensor, channels: int, dims: int) -> None:
    shape = f"(B, frames, {channels}, " + ", ".join("n" * dims) + ")"
    for name, t in (("inputs", inputs), ("preds", preds)):
        if t.ndim != 3 + dims or t.shape[2] != channels:
            raise ValueError(f"the physics loss takes {name} shaped {shape}; got {tuple(t.shape)}")
    if inputs.shape[0] != preds.shape[0] or inputs.shape[3:] != preds.shape[3:]:
        raise ValueError(
            f"inputs {tuple(inputs.shape)} and preds {tuple(preds.shape)} differ in batch or grid"
        )


def _hit3d_builder() -> Callable[..., PdeLoss] | None:
    try:
        module = importlib.import_module(_HIT3D_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != _HIT3D_MODULE:
            raise
        return None
    return module.make_hit3d_pde_loss


def pde_loss_flows() -> tuple[str, ...]:
    """The flows that have a physics loss (hit3d when its module is there)."""
    has_hit3d = importlib.util.find_spec(_HIT3D_MODULE) is not None
    return VORTICITY_FLOWS + ((HIT3D_FLOW,) if has_hit3d else ())


def has_pde_loss(flow: str) -> bool:
    """Whether ``make_pde_loss`` can build a physics loss for the flow called ``flow``."""
    return flow in pde_loss_flows()


def _param(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key)
    return float(default if value is None else value)


def make_pde_loss(
    flow: str, flow_params: Mapping[str, Any], frame_dt: float, length: float
) -> PdeLoss:
    """The physics loss of the flow called ``flow`` for frames ``frame_dt`` apart on a box
    of side ``length``. ``flow_params`` are the data's parameters (a dataset's attributes:
    ``nu``, ``drag``, …); a parameter they lack is the registered flow's. The forcing of a
    2D flow is the registered flow's. Raises ValueError for a flow without one."""
    if flow in VORTICITY_FLOWS:
        registered = get_flow(flow)
        return VorticityPdeLoss(
            nu=_param(flow_params, "nu", registered.nu),
            drag=_param(flow_params, "drag", registered.drag),
            forcing_fn=registered.vorticity_forcing,
            frame_dt=float(frame_dt),
            length=float(length),
        )
    if flow == HIT3D_FLOW:
        builder = _hit3d_builder()
        if builder is None:
            raise ValueError(
                f"no physics loss for flow {flow!r} yet ({_HIT3D_MODULE} is not installed); "
                f"flows with one: {', '.join(VORTICITY_FLOWS)}"
            )
        return builder(dict(flow_params), float(frame_dt), float(length))
    known = ", ".join(pde_loss_flows())
    raise ValueError(f"no physics loss for flow {flow!r}; flows with one: {known}")
