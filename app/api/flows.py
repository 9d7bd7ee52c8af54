"""Flows: the registered cases, 2D vorticity and 3D velocity alike, as the registry describes
them (``app.services.flows.flow_catalog``, the list the UI's flow pickers read too)."""

from __future__ import annotations

from typing import Any, NotRequired

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from app.api.errors import errors
from app.services import flows

router = APIRouter(tags=["flows"])


class FlowDomain(BaseModel):
    axes: list[str] = Field(description="The spatial axes of a stored field, in order.")
    lengths: list[float] = Field(description="The domain's extent along each axis.")


class FlowInitialCondition(BaseModel):
    name: str
    description: str


class FlowSnapshot(BaseModel):
    format: str = Field(
        description="The reader an uploaded snapshot goes through: 'vorticity2d' (one 2D "
        "field) or 'channel-velocity' (a 3D velocity with its wall-normal points)."
    )
    file_types: list[str] = Field(description="File types an upload of this flow accepts.")


class FlowGrid(TypedDict, extra_items=Any):
    """The grid rules: the axes, the default grid and the rule as a sentence; the smallest
    and largest points per axis where the flow bounds them; and what else the flow requires
    (2D flows: square and even grids; the channel: ``ny_counts``, ``stretching`` and how
    it may be ``stored``)."""

    axes: list[str]
    default: list[int]
    rule: str
    min: NotRequired[list[int]]
    max: NotRequired[list[int]]
    square: NotRequired[bool]
    even: NotRequired[bool]
    ny_counts: NotRequired[str]
    stretching: NotRequired[float]
    storage: NotRequired[str]


class FlowParameters(TypedDict, total=False, extra_items=Any):
    """Physical parameters. 2D flows: ``nu`` (the default) and ``allowed_nu``, ``drag``,
    ``length`` (the box side), ``forced``, ``exact_solution``. The channel: ``re_tau``,
    ``nu``, ``lx``, ``lz``, ``walls`` (y of the two walls), ``closures`` (LES closures) and
    ``drives``. A flow registered later may add its own."""

    nu: float
    allowed_nu: list[float]
    drag: float
    length: float
    forced: bool
    exact_solution: bool
    re_tau: float
    lx: float
    lz: float
    walls: list[float]
    closures: list[str]
    drives: list[str]


class FlowOut(BaseModel):
    name: str
    description: str
    dims: int = Field(description="Spatial dimensions of the flow's fields: 2 or 3.")
    fields: list[str] = Field(description="The channels of a snapshot, e.g. vorticity or u, v, w.")
    geometry: str = Field(description="'periodic' (a periodic box) or 'channel' (walls at y = ±1).")
    domain: FlowDomain
    grid: FlowGrid = Field(
        description="The grid rules: axes, default, min and max per axis, and the rule as a "
        "sentence (plus what else the flow requires, e.g. square and even 2D grids)."
    )
    parameters: FlowParameters = Field(
        description="Physical parameters: viscosities a 2D flow allows, a channel's Re_τ, "
        "LES closures and drives."
    )
    initial_conditions: list[FlowInitialCondition] = Field(
        description="Families of initial conditions the generator offers; the first is the default."
    )
    statistics: list[str] = Field(description="Diagnostics the flow's runs record.")
    panels: list[str] = Field(description="Views the UI offers for the flow.")
    snapshot: FlowSnapshot


@router.get("/flows", response_model=list[FlowOut])
def list_flows() -> list[dict[str, Any]]:
    return flows.flow_catalog()


@router.get(
    "/flows/{name}",
    response_model=FlowOut,
    responses=errors((404, "No flow of that name is registered.")),
)
def get_flow(name: str) -> dict[str, Any]:
    info = flows.flow_info(name)
    if info is None:
        known = ", ".join(n for n, _ in flows.flow_names())
        raise HTTPException(404, f"There is no flow called {name!r}; the flows are {known}.")
    return info
