"""The registry of flows: named cases with their fields, domain, parameters and solver.

A ``Flow`` is what the rest of Eddyscope refers to by name ("ns2d-forced"): it says which
fields a snapshot carries, which grids are allowed, and builds the reference solver and
random initial conditions for a resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from physics.grid import Grid2D
from physics.ns2d import VorticitySolver2D
from physics.random_fields import gaussian_random_field

ForcingFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class UnknownFlowError(ValueError):
    """A flow name that is not in the registry."""


FNO_ALPHA = 2.5
FNO_TAU = 7.0


@dataclass(frozen=True)
class Flow:
    """A registered 2D vorticity flow on the periodic box [0, length)².

    ``vorticity_forcing`` maps the grid coordinates (x, y), each (n, n), to the steady
    vorticity forcing f(x, y); None means unforced.
    """

    name: str
    description: str
    fields: tuple[str, ...]
    length: float
    nu: float
    drag: float
    min_n: int = 16
    max_n: int = 1024
    vorticity_forcing: ForcingFn | None = field(default=None, repr=False, compare=False)

    def forcing(
        self, n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor | None:
        """The vorticity forcing sampled on an n×n grid, (n, n), or None if unforced."""
        if self.vorticity_forcing is None:
            return None
        x, y = Grid2D(n, self.length).coordinates(device, dtype)
        return self.vorticity_forcing(x, y)

    def make_solver(
        self, n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> VorticitySolver2D:
        """The reference solver for this flow on an n×n grid."""
        self.check_grid((n, n))
        return VorticitySolver2D(
            Grid2D(n, self.length),
            nu=self.nu,
            forcing=self.forcing(n, device, dtype),
            drag=self.drag,
        )

    def random_initial_condition(
        self,
        n: int,
        batch: int = 1,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Gaussian random vorticity fields (batch, 1, n, n) as in the FNO benchmark's data:
        α = 2.5, τ = 7 and amplitude σ = √2·τ^(α−1), the variance its generator draws from."""
        self.check_grid((n, n))
        sigma = math.sqrt(2.0) * FNO_TAU ** (FNO_ALPHA - 1.0)
        return gaussian_random_field(
            n,
            batch,
            alpha=FNO_ALPHA,
            tau=FNO_TAU,
            sigma=sigma,
            length=self.length,
            seed=seed,
            device=device,
            dtype=dtype,
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


def _fno_forcing(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f = 0.1(sin 2π(x + y) + cos 2π(x + y)), the FNO benchmark's forcing on [0, 1]²."""
    phase = 2 * math.pi * (x + y)
    return 0.1 * (torch.sin(phase) + torch.cos(phase))


FLOWS: dict[str, Flow] = {
    flow.name: flow
    for flow in (
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
        ),
    )
}


def get_flow(name: str) -> Flow:
    """The registered flow called ``name``; raises UnknownFlowError naming the known ones."""
    try:
        return FLOWS[name]
    except KeyError:
        known = ", ".join(sorted(FLOWS))
        raise UnknownFlowError(f"Unknown flow {name!r}; known flows: {known}.") from None
