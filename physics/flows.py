"""The registry of flows: named cases with their fields, domain, parameters and solver.

Every registered flow satisfies ``physics.flow_protocol.FlowProtocol``: it says its
dimensions, fields, geometry, grid rules, parameters, reference solver, snapshot reader,
statistics and panels, so the rest of Eddyscope asks the flow, never its name, what it is.
``FLOWS`` maps names to flows; ``get_flow`` looks one up, ``flows_of`` filters them (e.g.
``flows_of(dims=2)``), ``register_flow``/``unregister_flow`` add and remove one.

A ``Flow`` is a 2D vorticity flow on a periodic square: it says which grids are allowed,
and builds the reference solver and initial conditions for a resolution. The registered
2D vorticity flows:

- ``ns2d-forced``: the FNO benchmark on [0, 1]², f = 0.1(sin 2π(x+y) + cos 2π(x+y)),
  ν = 1e-3 (or 1e-4, 1e-5 through ``variant``), no drag;
- ``kolmogorov2d``: Kolmogorov flow on [0, 2π]², body force F = (sin 4y, 0), so the
  vorticity forcing is f = ∂F_y/∂x − ∂F_x/∂y = −4 cos 4y; drag 0.1, ν = 1e-3 (Re 1000);
- ``decaying2d``: freely decaying turbulence on [0, 2π]² from McWilliams' initial
  condition (peak wavenumber 4), ν = 1e-3, no forcing or drag;
- ``taylor-green2d``: the Taylor–Green vortex on [0, 2π]², ν = 1e-2, an exact solution
  of the full equations (``Flow.exact_vorticity``), for checks.

The 3D velocity flows: ``channel3d``, turbulent channel flow between walls at y = ±1
(``physics.channel.flow.ChannelFlow``), and ``hit3d``, homogeneous isotropic turbulence in
the triply periodic box [0, 2π)³ (``physics.hit3d.flow.HITFlow``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from physics.channel.flow import CHANNEL3D
from physics.flow_protocol import FlowProtocol, check_flow, describe_flow
from physics.grid import Grid2D
from physics.hit3d.flow import HIT3D
from physics.ns2d.random_fields import (
    filtered_random_vorticity,
    gaussian_random_field,
    mcwilliams_vorticity,
)
from physics.ns2d.solver import VorticitySolver2D
from physics.ns2d.time_stepping import Scheme

ForcingFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# An exact solution: (flow, n, t, batch, device, dtype, **params) -> vorticity (batch, 1, n, n).
ExactFn = Callable[..., torch.Tensor]


class UnknownFlowError(ValueError):
    """A flow name that is not in the registry."""


FNO_ALPHA = 2.5
FNO_TAU = 7.0


@dataclass(frozen=True)
class Flow:
    """A registered 2D vorticity flow on the periodic box [0, length)².

    ``vorticity_forcing`` maps the grid coordinates (x, y), each (n, n), to the steady
    vorticity forcing f(x, y); None means unforced. ``allowed_nu`` lists the viscosities
    ``variant`` accepts (empty: only ``nu``). ``initial_conditions`` names the families of
    initial conditions ``make_initial_condition`` accepts (keys of ``INITIAL_CONDITIONS``);
    the first is the default, the one ``random_initial_condition`` draws. ``exact_solution``
    is set for flows with a closed-form solution (see ``exact_vorticity``). ``default_n``
    is the grid side used when none is given.

    The members of ``FlowProtocol`` that all 2D vorticity flows share are class attributes.
    """

    dims: ClassVar[int] = 2
    geometry: ClassVar[str] = "periodic"
    axes: ClassVar[tuple[str, ...]] = ("y", "x")
    statistics: ClassVar[tuple[str, ...]] = ("kinetic_energy", "enstrophy", "energy_spectrum")
    panels: ClassVar[tuple[str, ...]] = ("field", "error", "spectrum", "energy")
    snapshot_format: ClassVar[str] = "vorticity2d"
    file_types: ClassVar[tuple[str, ...]] = (".npy", ".npz", ".h5", ".hdf5")

    name: str
    description: str
    fields: tuple[str, ...]
    length: float
    nu: float
    drag: float
    min_n: int = 16
    max_n: int = 1024
    vorticity_forcing: ForcingFn | None = field(default=None, repr=False, compare=False)
    allowed_nu: tuple[float, ...] = ()
    initial_conditions: tuple[str, ...] = ("grf",)
    exact_solution: ExactFn | None = field(default=None, repr=False, compare=False)
    default_n: int = 64

    def __post_init__(self) -> None:
        if not self.allowed_nu:
            object.__setattr__(self, "allowed_nu", (self.nu,))
        if not any(math.isclose(self.nu, a, rel_tol=1e-9) for a in self.allowed_nu):
            raise ValueError(f"{self.name}: nu={self.nu:g} is not among allowed_nu.")
        unknown = [kind for kind in self.initial_conditions if kind not in INITIAL_CONDITIONS]
        if not self.initial_conditions or unknown:
            raise ValueError(f"{self.name}: unknown initial-condition families {unknown}.")

    def variant(self, nu: float | None = None) -> Flow:
        """A copy of this flow with viscosity ``nu`` (None: the default, ``nu`` as is).

        Only the values in ``allowed_nu`` are accepted; anything else raises ValueError with a
        sentence listing them. The name stays the same; the description states the new ν.
        """
        if nu is None:
            return self
        for allowed in self.allowed_nu:
            if math.isclose(float(nu), allowed, rel_tol=1e-9):
                if allowed == self.nu:
                    return self
                old, new = _nu_phrase(self.nu), _nu_phrase(allowed)
                description = self.description.replace(old, new)
                if description == self.description:
                    description = f"{self.description} Variant with {new}."
                return dataclasses.replace(self, nu=allowed, description=description)
        raise ValueError(
            f"{self.name} allows the viscosities {_list_values(self.allowed_nu)}; "
            f"got {format_number(float(nu))}."
        )

    def forcing(
        self, n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor | None:
        """The vorticity forcing sampled on an n×n grid, (n, n), or None if unforced."""
        if self.vorticity_forcing is None:
            return None
        x, y = Grid2D(n, self.length).coordinates(device, dtype)
        return self.vorticity_forcing(x, y)

    def make_solver(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        scheme: str | Scheme = "rk4cn",
    ) -> VorticitySolver2D:
        """The reference solver for this flow on an n×n grid, with the IMEX ``scheme``
        ("rk4cn" or "cnheun", see ``physics.ns2d.time_stepping``) and its default Courant number."""
        self.check_grid((n, n))
        return VorticitySolver2D(
            Grid2D(n, self.length),
            nu=self.nu,
            forcing=self.forcing(n, device, dtype),
            drag=self.drag,
            scheme=scheme,
        )

    def make_initial_condition(
        self,
        kind: str,
        n: int,
        batch: int = 1,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        **params: Any,
    ) -> torch.Tensor:
        """Initial vorticity fields (batch, 1, n, n) of the family ``kind``.

        ``kind`` must be one of ``initial_conditions``; ``params`` override the family's
        defaults (see ``INITIAL_CONDITIONS`` and the functions it names). Raises ValueError,
        in a sentence, for a family this flow does not offer or a grid it does not allow.
        """
        if kind not in self.initial_conditions:
            raise ValueError(
                f"{self.name} offers the initial conditions "
                f"{_list_values(self.initial_conditions, repr)}; got {kind!r}."
            )
        self.check_grid((n, n))
        if batch < 1:
            raise ValueError(f"batch must be at least 1; got {batch}.")
        make = INITIAL_CONDITIONS[kind].make
        return make(self, n, batch, seed, device, dtype, **params)

    def random_initial_condition(
        self,
        n: int,
        batch: int = 1,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Initial vorticity fields (batch, 1, n, n) of this flow's default family, the first
        of ``initial_conditions``, with its default parameters.

        For ns2d-forced these are Gaussian random fields as in the FNO benchmark's data
        (α = 2.5, τ = 7 and amplitude σ = √2·τ^(α−1), the variance its generator draws
        from); for kolmogorov2d and decaying2d McWilliams fields (k₀ = 4, energy 0.5); for
        taylor-green2d the Taylor–Green vortex, which is not random: ``seed`` is ignored.
        """
        return self.make_initial_condition(
            self.initial_conditions[0], n, batch=batch, seed=seed, device=device, dtype=dtype
        )

    def initial_condition_description(self, kind: str | None = None) -> str:
        """A one-line description of an initial-condition family (default: the default one),
        e.g. for a dataset's attributes."""
        kind = self.initial_conditions[0] if kind is None else kind
        if kind not in self.initial_conditions:
            raise ValueError(f"{self.name} does not offer the initial condition {kind!r}.")
        return INITIAL_CONDITIONS[kind].description

    def exact_vorticity(
        self,
        n: int,
        t: float,
        batch: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        **params: Any,
    ) -> torch.Tensor:
        """The exact vorticity (batch, 1, n, n) at time t, for flows that have one.

        Raises ValueError for a flow without a closed-form solution.
        """
        if self.exact_solution is None:
            raise ValueError(f"{self.name} has no exact solution; only taylor-green2d has one.")
        self.check_grid((n, n))
        return self.exact_solution(self, n, t, batch, device, dtype, **params)

    @property
    def lengths(self) -> tuple[float, float]:
        """The domain's extent along ``axes`` (y, x): the square's side twice."""
        return (float(self.length), float(self.length))

    @property
    def default_grid(self) -> tuple[int, int]:
        return (self.default_n, self.default_n)

    def grid_rules(self) -> dict[str, Any]:
        """What ``check_grid`` accepts, as JSON: square, an even side from min_n to max_n."""
        return {
            "axes": list(self.axes),
            "default": list(self.default_grid),
            "min": [self.min_n, self.min_n],
            "max": [self.max_n, self.max_n],
            "square": True,
            "even": True,
            "rule": (
                f"a square grid with an even number of points per side between {self.min_n} "
                f"and {self.max_n}"
            ),
        }

    def parameters(self) -> dict[str, Any]:
        """The flow's physical parameters as JSON: its viscosity and the ones ``variant``
        allows, the linear drag, the box side, whether it is forced and has an exact
        solution."""
        return {
            "nu": float(self.nu),
            "allowed_nu": [float(nu) for nu in self.allowed_nu],
            "drag": float(self.drag),
            "length": float(self.length),
            "forced": self.vorticity_forcing is not None,
            "exact_solution": self.exact_solution is not None,
        }

    def check_initial_condition(self, kind: str | None) -> None:
        """ValueError, in a sentence, unless ``kind`` is None (the default family) or one
        of ``initial_conditions``."""
        if kind is not None and kind not in self.initial_conditions:
            raise ValueError(
                f"{self.name} offers {', '.join(self.initial_conditions)}; got {kind!r}."
            )

    def check_grid(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError, in a sentence a user can act on, if ``shape`` is not allowed.

        ``shape`` is the spatial shape (ny, nx); a full field shape (..., ny, nx) is accepted
        too, and only its last two sizes are checked.
        """
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(
                f"{self.name} is two-dimensional and needs a grid shape (ny, nx); got {shape}."
            )
        ny, nx = shape[-2:]
        if ny != nx or nx % 2 or not self.min_n <= nx <= self.max_n:
            raise ValueError(
                f"{self.name} needs a square grid with an even number of points per side "
                f"between {self.min_n} and {self.max_n}; got {ny}×{nx}."
            )


def format_number(value: float) -> str:
    """A short scientific form: 1e-3, 2.5e-4, 0.1 → '1e-3', '2.5e-4', '1e-1'."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    mantissa, exponent = f"{value:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _nu_phrase(nu: float) -> str:
    return f"viscosity {format_number(nu)}"


def _list_values(values, fmt=format_number) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [fmt(v) for v in values]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------------------
# Initial-condition families


@dataclass(frozen=True)
class InitialConditionFamily:
    """A named family of initial vorticity fields.

    ``make(flow, n, batch, seed, device, dtype, **params)`` returns (batch, 1, n, n).
    """

    name: str
    description: str
    make: Callable[..., torch.Tensor] = field(repr=False)


def _grf(flow, n, batch, seed, device, dtype, alpha=FNO_ALPHA, tau=FNO_TAU, sigma=None):
    """Gaussian random field, covariance σ²(−Δ + τ²)^(−α) on the flow's box; σ defaults to
    the FNO benchmark's √2·τ^(α−1)."""
    if sigma is None:
        sigma = math.sqrt(2.0) * tau ** (alpha - 1.0)
    return gaussian_random_field(
        n, batch, alpha=alpha, tau=tau, sigma=sigma, length=flow.length, seed=seed,
        device=device, dtype=dtype,
    )  # fmt: skip


def _mcwilliams(flow, n, batch, seed, device, dtype, k0=4.0, energy=0.5):
    return mcwilliams_vorticity(
        n, batch, k0=k0, energy=energy, length=flow.length, seed=seed, device=device, dtype=dtype
    )


def _filtered(
    flow, n, batch, seed, device, dtype, spectrum=None, slope=None, kmin=1.0, kmax=None,
    energy=0.5,
):  # fmt: skip
    """Filtered random velocity; with neither spectrum nor slope, k^-3 on 1 ≤ k ≤ n/3."""
    if spectrum is None and slope is None:
        slope, kmax = 3.0, n / 3 if kmax is None else kmax
    return filtered_random_vorticity(
        n, batch, spectrum=spectrum, slope=slope, kmin=kmin, kmax=kmax, energy=energy,
        length=flow.length, seed=seed, device=device, dtype=dtype,
    )  # fmt: skip


def _taylor_green_ic(flow, n, batch, seed, device, dtype, mode=1, amplitude=1.0):
    """The Taylor–Green vortex at t = 0; ``seed`` is ignored (the field is not random)."""
    return _taylor_green_exact(flow, n, 0.0, batch, device, dtype, mode=mode, amplitude=amplitude)


INITIAL_CONDITIONS: dict[str, InitialConditionFamily] = {
    family.name: family
    for family in (
        InitialConditionFamily(
            "grf",
            "gaussian random field, alpha=2.5, tau=7, sigma=sqrt(2)*tau^(alpha-1) (FNO benchmark)",
            _grf,
        ),
        InitialConditionFamily(
            "mcwilliams",
            "McWilliams (1984) random-phase field, E(k) ~ k^6/(1+k/(2k0))^18, k0=4, energy 0.5",
            _mcwilliams,
        ),
        InitialConditionFamily(
            "filtered",
            "filtered random divergence-free velocity, E(k) ~ k^-3 on 1 <= k <= n/3, energy 0.5",
            _filtered,
        ),
        InitialConditionFamily(
            "taylor-green",
            "Taylor-Green vortex omega = 2kU sin(kx) sin(ky), k=1, U=1 (not random)",
            _taylor_green_ic,
        ),
    )
}


# ---------------------------------------------------------------------------------------
# Forcings and exact solutions


def _fno_forcing(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f = 0.1(sin 2π(x + y) + cos 2π(x + y)), the FNO benchmark's forcing on [0, 1]²."""
    phase = 2 * math.pi * (x + y)
    return 0.1 * (torch.sin(phase) + torch.cos(phase))


KOLMOGOROV_WAVENUMBER = 4


def kolmogorov_body_force(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The body force F = (sin 4y, 0) of kolmogorov2d, as (F_x, F_y)."""
    return torch.sin(KOLMOGOROV_WAVENUMBER * y), torch.zeros_like(x)


def _kolmogorov_forcing(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f = ∂F_y/∂x − ∂F_x/∂y = −4 cos 4y, the curl of F = (sin 4y, 0)."""
    k = KOLMOGOROV_WAVENUMBER
    return -k * torch.cos(k * y).expand_as(x)


def _taylor_green_exact(flow, n, t, batch, device, dtype, mode=1, amplitude=1.0):
    """Taylor–Green vortex u = U sin(kx)cos(ky), v = −U cos(kx)sin(ky), k = 2π·mode/L:

        ω = ∂v/∂x − ∂u/∂y = 2kU sin(kx) sin(ky) · exp(−(2νk² + μ) t).

    ψ = U sin(kx)sin(ky)/k, and ω = 2k²ψ is a function of ψ, so u·∇ω ≡ 0: the flow is an
    exact solution of the forced-free equations, decaying under viscosity (and drag).
    """
    if int(mode) != mode or mode < 1 or 3 * mode >= n:
        raise ValueError(
            f"The Taylor–Green mode must be an integer with 1 ≤ 3·mode < n; got {mode}."
        )
    k = 2 * math.pi * mode / flow.length
    x, y = Grid2D(n, flow.length).coordinates(device, torch.float64)
    decay = math.exp(-(2 * flow.nu * k**2 + flow.drag) * t)
    w = 2 * k * amplitude * decay * torch.sin(k * x) * torch.sin(k * y)
    return w.to(dtype).expand(batch, 1, n, n).clone()


_FLOWS_2D = (
    Flow(
        name="ns2d-forced",
        description=(
            "2D Navier–Stokes on the periodic unit square with the FNO benchmark's forcing "
            "0.1(sin 2π(x+y) + cos 2π(x+y)) and viscosity 1e-3."
        ),
        fields=("vorticity",),
        length=1.0,
        nu=1e-3,
        drag=0.0,
        vorticity_forcing=_fno_forcing,
        allowed_nu=(1e-3, 1e-4, 1e-5),
        initial_conditions=("grf", "mcwilliams", "filtered"),
    ),
    Flow(
        name="kolmogorov2d",
        description=(
            "Kolmogorov flow on the periodic box [0, 2π]²: body force sin(4y) along x, "
            "linear drag 0.1 and viscosity 1e-3 (Re 1000)."
        ),
        fields=("vorticity",),
        length=2 * math.pi,
        nu=1e-3,
        drag=0.1,
        vorticity_forcing=_kolmogorov_forcing,
        initial_conditions=("mcwilliams", "filtered", "grf"),
    ),
    Flow(
        name="decaying2d",
        description=(
            "Freely decaying 2D turbulence on the periodic box [0, 2π]² from McWilliams' "
            "initial condition (peak wavenumber 4), no forcing or drag, viscosity 1e-3."
        ),
        fields=("vorticity",),
        length=2 * math.pi,
        nu=1e-3,
        drag=0.0,
        initial_conditions=("mcwilliams", "filtered", "grf"),
    ),
    Flow(
        name="taylor-green2d",
        description=(
            "The Taylor–Green vortex on the periodic box [0, 2π]², an exact solution that "
            "decays as exp(−2νk²t), viscosity 1e-2; for checking solvers."
        ),
        fields=("vorticity",),
        length=2 * math.pi,
        nu=1e-2,
        drag=0.0,
        initial_conditions=("taylor-green",),
        exact_solution=_taylor_green_exact,
    ),
)


# The registry: every flow by name, the 2D vorticity flows first, then the 3D velocity
# flows. A new flow is one module that defines it plus its entry here (or a
# ``register_flow`` call).
FLOWS: dict[str, FlowProtocol] = {flow.name: flow for flow in (*_FLOWS_2D, CHANNEL3D, HIT3D)}


def get_flow(name: str) -> Any:
    """The registered flow called ``name`` (a ``FlowProtocol``: a 2D ``Flow``, a
    ``ChannelFlow`` or a ``HITFlow``); raises UnknownFlowError naming the known ones."""
    try:
        return FLOWS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(FLOWS))
        raise UnknownFlowError(f"Unknown flow {name!r}; known flows: {known}.") from None


def find_flow(name: str | None) -> Any | None:
    """The registered flow called ``name``, or None for None or a name not registered."""
    return FLOWS.get(name) if isinstance(name, str) else None


def flows_of(dims: int | None = None, geometry: str | None = None) -> list[Any]:
    """The registered flows, in registry order, with ``dims`` spatial dimensions and the
    ``geometry`` ("periodic", "channel") asked for (None: any)."""
    return [
        flow
        for flow in FLOWS.values()
        if (dims is None or flow.dims == dims) and (geometry is None or flow.geometry == geometry)
    ]


def register_flow(flow: FlowProtocol, replace: bool = False) -> FlowProtocol:
    """Add ``flow`` to the registry under its name and return it. It must satisfy
    ``FlowProtocol`` (``check_flow`` says what is missing); a name already registered
    raises ValueError unless ``replace``."""
    check_flow(flow)
    if flow.name in FLOWS and not replace:
        raise ValueError(f"A flow called {flow.name!r} is already registered.")
    FLOWS[flow.name] = flow
    return flow


def unregister_flow(name: str) -> FlowProtocol:
    """Remove the flow called ``name`` from the registry and return it."""
    flow = get_flow(name)
    del FLOWS[name]
    return flow


def describe_flows(flows: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """``describe_flow`` of each registered flow (or of ``flows``), in registry order."""
    return [describe_flow(flow) for flow in (FLOWS.values() if flows is None else flows)]
