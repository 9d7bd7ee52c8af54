"""What every registered flow says about itself, 2D vorticity flows and 3D velocity flows alike.

A flow is one object in the registry (``physics.flows.FLOWS``) that satisfies
``FlowProtocol``: the rest of Eddyscope asks it, not its name, what it is.

- ``name``, ``description``: how it is referred to and what it is, in a sentence;
- ``dims`` (2 or 3) and ``fields``: the snapshot's channels, ("vorticity",) for 2D flows,
  ("u", "v", "w") for 3D velocity flows;
- ``geometry``: "periodic" (a periodic box) or "channel" (walls at y = ±1, periodic in x
  and z); ``axes`` the spatial axes of a stored field in order, ``lengths`` the domain's
  extent along each;
- grid rules: ``check_grid(shape)`` raises ValueError with a sentence for a grid the flow
  does not take, ``default_grid`` is the grid it uses when none is given, and
  ``grid_rules()`` says the same as JSON;
- ``initial_conditions``: the families of initial conditions its generator offers (the
  first is the default), ``initial_condition_description(kind)`` one line on each,
  ``check_initial_condition(kind)`` a sentence for a family it does not offer;
- ``parameters()``: its physical and numerical parameters as JSON (viscosities, Re_τ,
  closures, drives…);
- ``make_solver(...)``: its reference solver (the arguments depend on the kind of flow);
- ``snapshot_format`` and ``file_types``: which reader an uploaded snapshot goes through
  ("vorticity2d": one 2D field; "channel-velocity": a 3D velocity with its wall-normal
  points; "periodic-velocity": a 3D velocity on a periodic cube) and the file types it
  accepts;
- ``statistics`` and ``panels``: the diagnostics its runs record and the views the UI
  offers for it ("energy_spectrum", "spectrum" for 2D flows; "channel_stats" for channels).

``describe_flow(flow)`` turns any flow into the JSON that ``GET /api/flows`` serves and the
UI's flow pickers read.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

GEOMETRIES = ("periodic", "channel")


@runtime_checkable
class FlowProtocol(Protocol):
    """A registered flow (see the module's docstring for what each member means)."""

    name: str
    description: str
    dims: int
    fields: tuple[str, ...]
    geometry: str
    axes: tuple[str, ...]
    initial_conditions: tuple[str, ...]
    statistics: tuple[str, ...]
    panels: tuple[str, ...]
    snapshot_format: str
    file_types: tuple[str, ...]

    @property
    def lengths(self) -> tuple[float, ...]: ...

    @property
    def default_grid(self) -> tuple[int, ...]: ...

    def check_grid(self, shape: tuple[int, ...]) -> None: ...

    def grid_rules(self) -> dict[str, Any]: ...

    def parameters(self) -> dict[str, Any]: ...

    def check_initial_condition(self, kind: str | None) -> None: ...

    def initial_condition_description(self, kind: str | None = None) -> str: ...

    def make_solver(self, *args: Any, **kwargs: Any) -> Any: ...


def check_flow(flow: Any) -> None:
    """Raise TypeError (naming what is missing) or ValueError (naming what is inconsistent)
    unless ``flow`` can be registered: it satisfies ``FlowProtocol``, its dims is 2 or 3,
    its geometry one of ``GEOMETRIES``, its axes and lengths one per dimension, its default
    grid passes its own grid check."""
    missing = [
        member
        for member in (
            *FlowProtocol.__annotations__,
            "lengths",
            "default_grid",
            "check_grid",
            "grid_rules",
            "parameters",
            "check_initial_condition",
            "initial_condition_description",
            "make_solver",
        )
        if not hasattr(flow, member)
    ]
    name = getattr(flow, "name", repr(flow))
    if missing:
        raise TypeError(f"{name} is not a flow: it lacks {', '.join(missing)}.")
    if flow.dims not in (2, 3):
        raise ValueError(f"{name}: dims must be 2 or 3; got {flow.dims!r}.")
    if flow.geometry not in GEOMETRIES:
        raise ValueError(f"{name}: geometry must be one of {GEOMETRIES}; got {flow.geometry!r}.")
    if len(flow.axes) != flow.dims or len(flow.lengths) != flow.dims:
        raise ValueError(f"{name}: axes and lengths need one entry per dimension ({flow.dims}).")
    if not flow.fields or not flow.initial_conditions:
        raise ValueError(f"{name}: a flow needs at least one field and one initial condition.")
    flow.check_grid(tuple(flow.default_grid))


def describe_flow(flow: FlowProtocol) -> dict[str, Any]:
    """Everything a client needs to know about a flow, as JSON (lists, not tuples)."""
    return {
        "name": flow.name,
        "description": flow.description,
        "dims": int(flow.dims),
        "fields": list(flow.fields),
        "geometry": flow.geometry,
        "domain": {
            "axes": list(flow.axes),
            "lengths": [float(x) for x in flow.lengths],
        },
        "grid": flow.grid_rules(),
        "parameters": flow.parameters(),
        "initial_conditions": [
            {"name": kind, "description": flow.initial_condition_description(kind)}
            for kind in flow.initial_conditions
        ],
        "statistics": list(flow.statistics),
        "panels": list(flow.panels),
        "snapshot": {"format": flow.snapshot_format, "file_types": list(flow.file_types)},
    }
