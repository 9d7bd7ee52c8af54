"""``channel3d`` as a registered flow: turbulent channel flow between walls at y = ±1,
periodic in x and z, its velocity (u, v, w) on a (nx, ny, nz) grid.

``ChannelFlow`` satisfies ``physics.flow_protocol.FlowProtocol``: it states the channel's
fields, grid rules, parameters (Re_τ, LES closures, drives, initial conditions), builds its
reference solver (``physics.channel.solver.ChannelSolver``) and names the reader of its
snapshots (``physics.formats.channel``). Its defaults are ``ChannelConfig``'s: Re_τ = 180,
the box 4π × 2 × 4π/3 (Moser, Kim & Mansour's), the grid 32 × 49 × 32 with tanh stretching
γ = 2. ``physics.flows`` registers ``CHANNEL3D``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from physics.channel.les import CLOSURES
from physics.channel.solver import ChannelConfig, ChannelSolver

_DEFAULT = ChannelConfig()

# Families of initial conditions: a mean profile plus divergence-free perturbations
# (``ChannelSolver.initial_condition``'s ``profile``).
CHANNEL_INITIAL_CONDITIONS = {
    "turbulent": "Reichardt profile",
    "laminar": "Poiseuille",
}


@dataclass(frozen=True)
class ChannelFlow:
    """A channel flow: walls at y = ±1 (half-height 1), periodic lengths ``lx`` and ``lz``.

    ``re_tau`` is the default friction Reynolds number (ν = 1/Re_τ with u_τ = 1);
    ``default_grid`` the solver grid (nx, ny, nz), ny counting cells between the walls;
    ``stretching`` the tanh parameter of the wall-normal grid. A grid is allowed when nx and
    nz are ``min_nxz``–``max_nxz`` (the 2/3 rule needs a few Fourier modes) and ny
    ``min_ny``–``max_ny`` (the wall-normal stencils need a few cells); a stored x–z grid
    lies between ``min_storage`` and the solver's. ``closures`` lists the LES closures
    ("none": coarse DNS), ``drives`` the ways the flow is driven, the first of each being
    the default.
    """

    name: str = "channel3d"
    description: str = (
        "Turbulent channel flow between walls at y = ±1, periodic in x and z: a 3D velocity "
        "snapshot (u, v, w) with its wall-normal points y, as .npz or HDF5."
    )
    re_tau: float = _DEFAULT.re_tau
    lx: float = _DEFAULT.lx
    lz: float = _DEFAULT.lz
    stretching: float = _DEFAULT.stretching
    default_grid: tuple[int, int, int] = (_DEFAULT.nx, _DEFAULT.ny, _DEFAULT.nz)
    min_nxz: int = 4
    max_nxz: int = 512
    min_ny: int = 4
    max_ny: int = 1024
    min_storage: int = 2
    initial_conditions: tuple[str, ...] = tuple(CHANNEL_INITIAL_CONDITIONS)
    closures: tuple[str, ...] = ("none", *CLOSURES)
    drives: tuple[str, ...] = ("pressure", "flow_rate")

    dims: ClassVar[int] = 3
    fields: ClassVar[tuple[str, ...]] = ("u", "v", "w")
    geometry: ClassVar[str] = "channel"
    axes: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    statistics: ClassVar[tuple[str, ...]] = ("kinetic_energy", "channel_stats")
    panels: ClassVar[tuple[str, ...]] = ("channel_stats", "slices")
    snapshot_format: ClassVar[str] = "channel-velocity"
    file_types: ClassVar[tuple[str, ...]] = (".npz", ".h5", ".hdf5")

    def __post_init__(self) -> None:
        families = self.initial_conditions
        unknown = [kind for kind in families if kind not in CHANNEL_INITIAL_CONDITIONS]
        if not families or unknown:
            raise ValueError(f"{self.name}: unknown initial-condition families {unknown}.")
        self.check_grid(self.default_grid)

    # -- domain and grid ---------------------------------------------------------------------

    @property
    def lengths(self) -> tuple[float, float, float]:
        """The domain's extent along (x, y, z): lx, the wall distance 2, lz."""
        return (float(self.lx), 2.0, float(self.lz))

    @property
    def length(self) -> float:
        """The streamwise period lx, for callers that ask any flow for one domain length."""
        return float(self.lx)

    @property
    def nu(self) -> float:
        """The default viscosity, 1/Re_τ."""
        return 1.0 / self.re_tau

    def grid_rule(self) -> str:
        return (
            f"nx and nz must be {self.min_nxz}–{self.max_nxz} and ny (cells) "
            f"{self.min_ny}–{self.max_ny}"
        )

    def check_grid(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError, in a sentence, unless the solver grid (nx, ny, nz) is allowed.

        A full velocity shape (..., 3, nx, ny, nz) is accepted too; its last three sizes are
        checked."""
        shape = tuple(int(s) for s in shape)
        if len(shape) < 3:
            raise ValueError(
                f"{self.name} is three-dimensional and needs a grid (nx, ny, nz); got {shape}."
            )
        nx, ny, nz = shape[-3:]
        if (
            min(nx, nz) < self.min_nxz
            or max(nx, nz) > self.max_nxz
            or not self.min_ny <= ny <= self.max_ny
        ):
            raise ValueError(f"{self.name}: {self.grid_rule()}; got {nx}, {ny}, {nz}.")

    def check_storage_grid(self, storage: tuple[int, int], grid: tuple[int, ...]) -> None:
        """ValueError unless the stored x–z grid (ox, oz) lies between ``min_storage`` and
        the solver grid's (nx, nz) (``grid`` is (nx, ny, nz))."""
        ox, oz = (int(s) for s in storage)
        nx, _, nz = (int(s) for s in grid)
        low = self.min_storage
        if not (low <= ox <= nx and low <= oz <= nz):
            raise ValueError(
                f"the stored x–z grid must be between {low} and the solver's {nx}×{nz}; "
                f"got {ox}×{oz}."
            )

    def grid_rules(self) -> dict[str, Any]:
        return {
            "axes": list(self.axes),
            "default": list(self.default_grid),
            "min": [self.min_nxz, self.min_ny, self.min_nxz],
            "max": [self.max_nxz, self.max_ny, self.max_nxz],
            "ny_counts": "cells between the walls",
            "stretching": float(self.stretching),
            "storage": (
                f"the velocity may be stored on a coarser x–z grid, from {self.min_storage} "
                "to the solver's nx and nz, spectrally filtered"
            ),
            "rule": self.grid_rule(),
        }

    # -- parameters and initial conditions ---------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        return {
            "re_tau": float(self.re_tau),
            "nu": self.nu,
            "lx": float(self.lx),
            "lz": float(self.lz),
            "walls": [-1.0, 1.0],
            "closures": list(self.closures),
            "drives": list(self.drives),
        }

    def check_initial_condition(self, kind: str | None) -> None:
        """ValueError, in a sentence, unless ``kind`` is None (the default, "turbulent") or
        one of ``initial_conditions``."""
        if kind is not None and kind not in self.initial_conditions:
            offered = " or ".join(
                f"{k!r} ({CHANNEL_INITIAL_CONDITIONS[k]})" for k in self.initial_conditions
            )
            raise ValueError(
                f"{self.name} offers {offered}, each plus divergence-free perturbations; "
                f"got {kind!r}."
            )

    def initial_condition_description(self, kind: str | None = None) -> str:
        kind = self.initial_conditions[0] if kind is None else kind
        self.check_initial_condition(kind)
        return f"{CHANNEL_INITIAL_CONDITIONS[kind]} plus divergence-free perturbations"

    # -- solver ------------------------------------------------------------------------------

    def config(
        self,
        grid: tuple[int, int, int] | list[int] | None = None,
        re_tau: float | None = None,
        drive: str | None = None,
        closure: str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> ChannelConfig:
        """The solver configuration: this flow's defaults where an argument is None.
        ``closure`` None or "none" is coarse DNS. The grid is not checked here (a job's
        parameters are checked with ``check_grid`` when it is submitted)."""
        nx, ny, nz = grid or self.default_grid
        return ChannelConfig(
            re_tau=re_tau or self.re_tau,
            lx=self.lx,
            lz=self.lz,
            nx=nx,
            ny=ny,
            nz=nz,
            stretching=self.stretching,
            drive=drive or self.drives[0],
            les=None if closure in (None, "none") else closure,
            dtype=dtype,
        )

    def make_solver(
        self,
        grid: tuple[int, int, int] | list[int] | None = None,
        re_tau: float | None = None,
        drive: str | None = None,
        closure: str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> ChannelSolver:
        """The reference solver on ``grid`` (default ``default_grid``) with ``config``'s
        arguments."""
        return ChannelSolver(self.config(grid, re_tau, drive, closure, dtype))


CHANNEL3D = ChannelFlow()
