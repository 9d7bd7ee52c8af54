"""Flows: the registered cases, 2D vorticity and 3D velocity alike, as the registry describes
them (``app.services.flows.flow_catalog``, the list the UI's flow pickers read too)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

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


class FlowOut(BaseModel):
    name: str
    description: str
    dims: int = Field(description="Spatial dimensions of the flow's fields: 2 or 3.")
    fields: list[str] = Field(description="The channels of a snapshot, e.g. vorticity or u, v, w.")
    geometry: str = Field(description="'periodic' (a periodic box) or 'channel' (walls at y = ±1).")
    domain: FlowDomain
    grid: dict[str, Any] = Field(
        description="The grid rules: axes, default, min and max per axis, and the rule as a "
        "sentence (plus what else the flow requires, e.g. square and even 2D grids)."
    )
    parameters: dict[str, Any] = Field(
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
    responses={404: {"description": "No flow of that name is registered."}},
)
def get_flow(name: str) -> dict[str, Any]:
    info = flows.flow_info(name)
    if info is None:
        known = ", ".join(n for n, _ in flows.flow_names())
        raise HTTPException(404, f"There is no flow called {name!r}; the flows are {known}.")
    return info
