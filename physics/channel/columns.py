"""The solver-driven columns of a channel comparison, all reporting cell-centred velocity
(B, 3, nx, ny, nz) (``ChannelGrid.to_centres``) on the comparison's coarse grid.

- ``CoarseLES``: the channel solver itself on the coarse grid (same box, Re_τ, drive and
  stretching as the reference, fewer points), with an LES closure or none ("none": coarse
  DNS, the under-resolved Navier–Stokes equations with no subgrid model).
- ``FilteredReference``: the fine solver, its centred velocity mapped to the coarse grid by
  the dataset's filter after every interval (the target every column is scored against).

Both start from a cell-centred field: v is put back on the faces (``faces_from_centres``)
and the result projected onto D u = 0, so the state the solver advances is divergence-free
to round-off; ``advance(interval)`` runs the solver's own CFL sub-steps over the interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from physics.channel.fields import faces_from_centres, upsample
from physics.channel.grid import ChannelGrid
from physics.channel.les import CLOSURES
from physics.channel.solver import ChannelConfig, ChannelSolver

CLOSURE_LABELS = {
    "none": "Coarse DNS (no model)",
    "smagorinsky": "Smagorinsky LES",
    "wale": "WALE LES",
    "dynamic": "Dynamic Smagorinsky LES",
}


def _check_started(state: torch.Tensor | None, name: str) -> torch.Tensor:
    if state is None:
        raise RuntimeError(f"{name} has not been started; call start() first")
    return state


class CoarseLES:
    """The channel solver on the coarse grid ``grid`` = (nx, ny, nz) with ``closure``
    ("none" → no closure, or a name of ``physics.channel.les.CLOSURES``); every other
    setting (Re_τ, box, stretching, drive, CFL) is ``config``'s.

    Attributes: ``name`` (the closure), ``label`` (for tables), ``config`` (the coarse
    ``ChannelConfig``), ``grid`` (its ``ChannelGrid``), ``solver``, ``state`` (the staggered
    velocity, None before ``start``)."""

    def __init__(self, config: ChannelConfig, grid: tuple[int, int, int], closure: str):
        if closure != "none" and closure not in CLOSURES:
            raise ValueError(
                f"the closure is 'none' or one of {', '.join(CLOSURES)}; got {closure!r}"
            )
        nx, ny, nz = (int(n) for n in grid)
        self.name = closure
        self.label = CLOSURE_LABELS.get(closure, closure)
        self.config = dataclasses.replace(
            config, nx=nx, ny=ny, nz=nz, les=None if closure == "none" else closure
        )
        self.solver = ChannelSolver(self.config)
        self.grid: ChannelGrid = self.solver.grid
        self.state: torch.Tensor | None = None

    def start(self, centred: torch.Tensor) -> torch.Tensor:
        """Take a centred field (B, 3, nx, ny, nz) on the coarse grid as the state (v to the
        faces, projected onto D u = 0); returns the state's centred velocity."""
        self.state = self.solver.project(faces_from_centres(centred))
        return self.grid.to_centres(self.state)

    def advance(self, interval: float) -> torch.Tensor:
        """Advance the state by ``interval`` (solver time units, h/u_τ) and return its centred
        velocity. Raises FloatingPointError when the flow stops being finite."""
        state = _check_started(self.state, "the coarse LES")
        self.state = self.solver.advance(state, interval)
        return self.grid.to_centres(self.state)


class FilteredReference:
    """The fine channel solver (``config``'s grid and closure) seen through ``to_coarse``
    (the dataset's filter: cell-centred fine velocity (..., nx, ny, nz) → (..., ox, oy, oz)
    on ``coarse_grid``).

    Attributes: ``solver``, ``grid`` (fine), ``coarse_grid``, ``state`` (staggered fine
    velocity), ``fine`` (its centred velocity), ``coarse`` (the filtered centred velocity;
    None before ``start``), ``upsampled`` (whether ``start`` got a coarse field)."""

    def __init__(
        self,
        config: ChannelConfig,
        to_coarse: Callable[[torch.Tensor], torch.Tensor],
        coarse_grid: ChannelGrid,
    ):
        self.config = config
        self.to_coarse = to_coarse
        self.coarse_grid = coarse_grid
        self.solver = ChannelSolver(config)
        self.grid: ChannelGrid = self.solver.grid
        self.state: torch.Tensor | None = None
        self.fine: torch.Tensor | None = None
        self.coarse: torch.Tensor | None = None
        self.upsampled = False

    def start(self, centred: torch.Tensor) -> torch.Tensor:
        """Start from a centred field (B, 3, ...) on the fine grid, or on the coarse grid (then
        ``upsample``d to the fine one first); projects it and returns the filtered centred
        state (B, 3, ox, oy, oz)."""
        shape = tuple(centred.shape[-3:])
        fine = (self.grid.nx, self.grid.ny, self.grid.nz)
        coarse = (self.coarse_grid.nx, self.coarse_grid.ny, self.coarse_grid.nz)
        if shape == fine:
            self.upsampled = False
        elif shape == coarse:
            centred = upsample(centred, self.coarse_grid, self.grid)
            self.upsampled = True
        else:
            raise ValueError(
                f"the initial condition's grid {shape} is neither the reference grid {fine} "
                f"nor the comparison grid {coarse}"
            )
        self.state = self.solver.project(faces_from_centres(centred))
        return self._seen()

    def advance(self, interval: float) -> torch.Tensor:
        """Advance the fine state by ``interval`` and return the filtered centred state."""
        state = _check_started(self.state, "the reference")
        self.state = self.solver.advance(state, interval)
        return self._seen()

    def _seen(self) -> torch.Tensor:
        self.fine = self.grid.to_centres(self.state)
        self.coarse = self.to_coarse(self.fine)
        return self.coarse
