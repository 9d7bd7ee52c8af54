"""``hit3d`` as a registered flow: homogeneous isotropic turbulence in the triply periodic box
[0, 2π)³, its velocity (u, v, w) on an n³ grid.

``HITFlow`` satisfies ``physics.flow_protocol.FlowProtocol``: it states the box's fields,
grid rules (a cubic grid, n even, 16–128 points per side, 32³ by default so a laptop's CPU
runs it), parameters (ν, the initial spectrum's k_p and u_rms, closures, forcing, filters),
builds its reference solver (``physics.hit3d.solver.HITSolver``: pseudo-spectral, rotational
form, Leray projection, 2/3 rule, the IMEX RK4–CN of the 2D solver) and its initial fields
(``physics.hit3d.initial``):

- ``random``: divergence-free random velocity whose shell spectrum is exactly
  E(k) ∝ k⁴ exp(−2(k/k_p)²), scaled to the rms velocity u_rms of one component, random
  phases from a seed: decaying HIT's initial field (forced HIT with ``forcing="linear"``);
- ``taylor-green``: u = sin x cos y cos z, v = −cos x sin y cos z, w = 0 (not random);
- ``abc``: the Arnold–Beltrami–Childress flow A = B = C = 1 at k = 1, an exact steady
  Euler solution that decays as e^{−νt} under viscosity (not random).

ν defaults to 0.04: with k_p = 2 and u_rms = 1 that keeps k_max η ≥ 1 (k_max = n/3, η the
Kolmogorov scale) on the default 32³ grid throughout the decay, so the default run is a
resolved DNS (Re_λ ≈ 23 at t = 0).

Statistics and panels: the names say what HIT runs are to show (the 3D energy spectrum with
its k^(−5/3) guide, dissipation, Re_λ, integral scale, gradient skewness, the vorticity
PDF; slices of |ω| on three planes); the functions are ``physics.hit3d.diagnostics``, the
Data page's panels that draw them ``app.ui.hit3d_figures``. Uploads: ``snapshot_format``
"periodic-velocity", read by ``physics.formats.periodic.read_periodic_velocity`` (.npy
(3, n, n, n) or (n, n, n, 3); .npz ``velocity`` or ``u``, ``v``, ``w``; HDF5, ours in The
Well's layout included), then checked against this flow's grid and box and made solenoidal
(or refused) by ``app.services.uploads.parse_hit3d_upload``. ``physics.flows`` registers
``HIT3D``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from physics.hit3d.filters import FILTER_KINDS
from physics.hit3d.grid import Grid3D
from physics.hit3d.initial import abc_flow, random_velocity, taylor_green
from physics.hit3d.les import CLOSURES
from physics.hit3d.solver import HITSolver
from physics.ns2d.time_stepping import SCHEMES

# The families of initial fields, with a line on each (the first is the default).
HIT_INITIAL_CONDITIONS = {
    "random": "random divergence-free velocity, E(k) ~ k^4 exp(-2(k/k_p)^2), k_p = 2, "
    "u_rms = 1, random phases (decaying HIT)",
    "taylor-green": "Taylor-Green vortex u = sin x cos y cos z, v = -cos x sin y cos z, w = 0 "
    "(not random)",
    "abc": "Arnold-Beltrami-Childress flow A = B = C = 1, k = 1, a steady Euler solution "
    "decaying as exp(-nu t) (not random)",
}

# Families whose shape the initial-spectrum parameters (k_peak, u_rms) set.
SPECTRUM_FAMILIES = ("random",)


@dataclass(frozen=True)
class HITFlow:
    """Triply periodic 3D turbulence on [0, ``length``)³ with viscosity ``nu``.

    A grid is allowed when it is cubic with an even side from ``min_n`` to ``max_n``;
    ``default_n`` is the side used when none is given. ``variant`` accepts a viscosity from
    ``min_nu`` to ``max_nu``. ``k_peak`` and ``u_rms`` are the defaults of the ``random``
    family's spectrum. ``closures`` lists the LES closures ("none": DNS, or coarse DNS),
    ``forcings`` the forcings ("none": decaying; "linear": Lundgren's linear forcing of the
    shells 1 … ``k_forcing``, its rate chosen at every stage so that the kinetic energy
    stays constant), ``filters`` the filters that make the stored (LES-grid) velocity from
    the solver's (``physics.hit3d.filters``). The first of each is the default.
    """

    name: str = "hit3d"
    description: str = (
        "Homogeneous isotropic turbulence in the triply periodic box [0, 2π)³: 3D "
        "incompressible Navier–Stokes, pseudo-spectral with 2/3 dealiasing, decaying from a "
        "prescribed spectrum or held by linear forcing; velocity (u, v, w) on an n³ grid."
    )
    nu: float = 0.04
    min_nu: float = 1e-5
    max_nu: float = 10.0
    length: float = 2 * math.pi
    default_n: int = 32
    min_n: int = 16
    max_n: int = 128
    k_peak: float = 2.0
    u_rms: float = 1.0
    k_forcing: int = 2
    initial_conditions: tuple[str, ...] = tuple(HIT_INITIAL_CONDITIONS)
    closures: tuple[str, ...] = ("none", *CLOSURES)
    forcings: tuple[str, ...] = ("none", "linear")
    filters: tuple[str, ...] = FILTER_KINDS

    dims: ClassVar[int] = 3
    fields: ClassVar[tuple[str, ...]] = ("u", "v", "w")
    geometry: ClassVar[str] = "periodic"
    axes: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    statistics: ClassVar[tuple[str, ...]] = (
        "kinetic_energy",
        "dissipation",
        "hit_spectrum",
        "taylor_reynolds",
        "integral_scale",
        "gradient_skewness",
        "vorticity_pdf",
    )
    # Named for the UI: the Data page's HIT card (app/ui/hit3d_panels.py) draws them.
    panels: ClassVar[tuple[str, ...]] = ("hit_spectrum", "hit_statistics", "hit_slices")
    snapshot_format: ClassVar[str] = "periodic-velocity"
    file_types: ClassVar[tuple[str, ...]] = (".npy", ".npz", ".h5", ".hdf5")

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.initial_conditions if kind not in HIT_INITIAL_CONDITIONS]
        if not self.initial_conditions or unknown:
            raise ValueError(f"{self.name}: unknown initial-condition families {unknown}.")
        self._check_nu(self.nu)
        self.check_grid(self.default_grid)

    # -- domain and grid ---------------------------------------------------------------------

    @property
    def lengths(self) -> tuple[float, float, float]:
        """The domain's extent along (x, y, z): the cube's side three times."""
        return (float(self.length),) * 3

    @property
    def default_grid(self) -> tuple[int, int, int]:
        return (self.default_n,) * 3

    def grid_rule(self) -> str:
        return (
            f"a cubic grid with an even number of points per side between {self.min_n} "
            f"and {self.max_n}"
        )

    def check_grid(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError, in a sentence, unless the grid (nx, ny, nz) is cubic with an even
        side from ``min_n`` to ``max_n``. A full velocity shape (…, 3, n, n, n) is accepted
        too; its last three sizes are checked."""
        shape = tuple(int(s) for s in shape)
        if len(shape) < 3:
            raise ValueError(
                f"{self.name} is three-dimensional and needs a cubic grid (n, n, n); got {shape}."
            )
        nx, ny, nz = shape[-3:]
        if not nx == ny == nz or nx % 2 or not self.min_n <= nx <= self.max_n:
            raise ValueError(f"{self.name} needs {self.grid_rule()}; got {nx}×{ny}×{nz}.")

    def grid_rules(self) -> dict[str, Any]:
        return {
            "axes": list(self.axes),
            "default": list(self.default_grid),
            "min": [self.min_n] * 3,
            "max": [self.max_n] * 3,
            "cubic": True,
            "even": True,
            "storage": (
                "the velocity may be stored on a coarser cubic grid than the solver's, "
                f"filtered ({' or '.join(self.filters)} filter)"
            ),
            "rule": self.grid_rule(),
        }

    # -- parameters and initial conditions ---------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        return {
            "nu": float(self.nu),
            "nu_range": [float(self.min_nu), float(self.max_nu)],
            "length": float(self.length),
            "k_peak": float(self.k_peak),
            "u_rms": float(self.u_rms),
            "initial_spectrum": "E(k) ~ k^4 exp(-2(k/k_p)^2)",
            "closures": list(self.closures),
            "forcings": list(self.forcings),
            "k_forcing": int(self.k_forcing),
            "filters": list(self.filters),
            "dealiasing": "2/3 rule",
            "schemes": list(SCHEMES),
        }

    def _check_nu(self, nu: float) -> None:
        if not self.min_nu <= nu <= self.max_nu:
            raise ValueError(
                f"{self.name} takes a viscosity from {self.min_nu:g} to {self.max_nu:g}; "
                f"got {nu:g}."
            )

    def variant(self, nu: float | None = None) -> HITFlow:
        """A copy of this flow with viscosity ``nu`` (None: this flow); ValueError, in a
        sentence, outside ``min_nu`` … ``max_nu``."""
        if nu is None or float(nu) == self.nu:
            return self
        self._check_nu(float(nu))
        return dataclasses.replace(self, nu=float(nu))

    def check_initial_condition(self, kind: str | None) -> None:
        """ValueError, in a sentence, unless ``kind`` is None (the default, "random") or one
        of ``initial_conditions``."""
        if kind is not None and kind not in self.initial_conditions:
            raise ValueError(
                f"{self.name} offers {', '.join(self.initial_conditions)}; got {kind!r}."
            )

    def initial_condition_description(self, kind: str | None = None) -> str:
        kind = self.initial_conditions[0] if kind is None else kind
        self.check_initial_condition(kind)
        return HIT_INITIAL_CONDITIONS[kind]

    def make_initial_condition(
        self,
        kind: str | None,
        n: int,
        batch: int = 1,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        k_peak: float | None = None,
        u_rms: float | None = None,
    ) -> torch.Tensor:
        """Initial velocities (batch, 3, n, n, n) of the family ``kind`` (None: the default).

        ``k_peak`` and ``u_rms`` (default this flow's) shape the ``random`` family's
        spectrum; the other families are not random and take neither (``seed`` is ignored).
        ValueError, in a sentence, for a family or grid this flow does not take.
        """
        kind = self.initial_conditions[0] if kind is None else kind
        self.check_initial_condition(kind)
        self.check_grid((n, n, n))
        if batch < 1:
            raise ValueError(f"batch must be at least 1; got {batch}.")
        grid = Grid3D(n, self.length)
        if kind == "random":
            return random_velocity(
                grid,
                batch,
                k_peak=self.k_peak if k_peak is None else float(k_peak),
                u_rms=self.u_rms if u_rms is None else float(u_rms),
                seed=seed,
                dtype=dtype,
                device=device,
            )
        if k_peak is not None or u_rms is not None:
            raise ValueError(f"k_peak and u_rms shape the random family only; got {kind!r}.")
        if kind == "taylor-green":
            return taylor_green(grid, batch, dtype=dtype, device=device)
        return abc_flow(grid, batch=batch, dtype=dtype, device=device)

    def random_initial_condition(
        self,
        n: int,
        batch: int = 1,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Initial velocities of the default family, ``random``, with this flow's spectrum."""
        return self.make_initial_condition(None, n, batch, seed, device, dtype)

    # -- solver ------------------------------------------------------------------------------

    def make_solver(
        self,
        n: int | None = None,
        nu: float | None = None,
        forcing: str | None = None,
        closure: str | None = None,
        scheme: str = "rk4cn",
    ) -> HITSolver:
        """The reference solver on the n³ grid (default ``default_n``) at viscosity ``nu``
        (default this flow's), with ``forcing`` (None or "none": decaying; "linear": the
        energy-holding linear forcing of the shells 1 … ``k_forcing``), ``closure`` (None or
        "none": DNS; "smagorinsky", "dynamic") and the IMEX ``scheme``. ValueError for a
        grid, viscosity, forcing or closure this flow does not take."""
        n = self.default_n if n is None else int(n)
        self.check_grid((n, n, n))
        nu = self.nu if nu is None else float(nu)
        self._check_nu(nu)
        forcing = None if forcing in (None, "none") else forcing
        if forcing is not None and forcing not in self.forcings:
            raise ValueError(f"{self.name} offers the forcings {', '.join(self.forcings)}.")
        closure = None if closure in (None, "none") else closure
        if closure is not None and closure not in self.closures:
            raise ValueError(f"{self.name} offers the closures {', '.join(self.closures)}.")
        return HITSolver(
            Grid3D(n, self.length),
            nu,
            forcing,
            hold_energy=forcing == "linear",
            k_forcing=self.k_forcing,
            closure=closure,
            scheme=scheme,
        )


HIT3D = HITFlow()
