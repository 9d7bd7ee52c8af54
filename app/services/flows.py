"""The questions the API and the pages ask about flows: which there are and what each says
about itself, what the forms offer per flow, a flow's domain length, whether it is a
channel flow or a periodic-box 3D flow. Every answer is read from the flow registry
(``physics.flows``), through ``flow_catalog`` where a client sees it: ``GET /api/flows``
serves that list and the pages' flow pickers are built from it, so both always agree.
"""

from __future__ import annotations

from typing import Any


def flow_catalog() -> list[dict[str, Any]]:
    """Every registered flow as ``physics.flow_protocol.describe_flow`` writes it (name,
    description, dims, fields, geometry, domain, grid rules, parameters, initial conditions,
    statistics, panels, snapshot reader), in registry order: the 2D flows first."""
    from physics.flows import describe_flows

    return describe_flows()


def flow_info(flow_name: str | None) -> dict[str, Any] | None:
    """``flow_catalog``'s entry for one flow; None for None or a name not registered."""
    from physics.flow_protocol import describe_flow
    from physics.flows import find_flow

    flow = find_flow(flow_name)
    return describe_flow(flow) if flow is not None else None


def flow_names() -> list[tuple[str, str]]:
    """(name, description) of every registered flow."""
    return [(f["name"], f["description"]) for f in flow_catalog()]


def flow_dims(flow_name: str | None) -> int | None:
    """The number of spatial dimensions of the flow's fields (2 or 3); None for a name the
    registry does not know."""
    from physics.flows import find_flow

    flow = find_flow(flow_name)
    return int(flow.dims) if flow is not None else None


def flow_length(flow_name: str) -> float:
    """The side of a 2D flow's square domain (a channel's streamwise period lx); 1 for a
    flow the registry does not know."""
    from physics.flows import find_flow

    flow = find_flow(flow_name)
    return float(getattr(flow, "length", 1.0)) if flow is not None else 1.0


def is_channel_flow(flow_name: str | None) -> bool:
    """Whether the flow is a registered wall-bounded channel flow (walls at y = ±1): its
    fields are a 3D velocity read and shown as a channel's."""
    from physics.flows import find_flow

    flow = find_flow(flow_name)
    return flow is not None and flow.geometry == "channel"


def is_hit3d_flow(flow_name: str | None) -> bool:
    """Whether the flow is a registered 3D velocity flow in a triply periodic box (hit3d):
    its generate jobs run ``app.hit3d_params`` and store velocity on a cube."""
    from physics.flows import find_flow

    flow = find_flow(flow_name)
    return flow is not None and flow.dims == 3 and flow.geometry == "periodic"


def upload_flows() -> list[tuple[str, str]]:
    """(name, description) of every flow an initial condition can be uploaded for: the
    registered flows whose snapshots the upload has a reader for."""
    from app.services.uploads import SNAPSHOT_READERS

    return [
        (f["name"], f["description"])
        for f in flow_catalog()
        if f["snapshot"]["format"] in SNAPSHOT_READERS
    ]


def upload_file_types(flow_name: str | None) -> tuple[str, ...]:
    """The file types an upload for the flow accepts (e.g. (".npz", ".h5", ".hdf5") for a
    channel); those of a 2D vorticity field for a name the registry does not know."""
    from physics.flows import Flow, find_flow

    flow = find_flow(flow_name)
    return tuple(flow.file_types) if flow is not None else tuple(Flow.file_types)


def generate_form_flows() -> list[dict[str, Any]]:
    """What the generate form offers per 2D flow: its description, the viscosities it
    allows (its default first) and its initial-condition families, with their
    descriptions, and its domain length. Read from ``flow_catalog``."""
    out = []
    for f in flow_catalog():
        if f["dims"] != 2:
            continue
        parameters = f["parameters"]
        nu = float(parameters["nu"])
        allowed = [float(x) for x in parameters.get("allowed_nu") or [nu]]
        families = f["initial_conditions"]
        out.append(
            {
                "name": f["name"],
                "description": f["description"],
                "nu": nu,
                "allowed_nu": allowed,
                "initial_conditions": [family["name"] for family in families],
                "ic_descriptions": {
                    family["name"]: str(family["description"] or "") for family in families
                },
                "length": float(parameters.get("length") or f["domain"]["lengths"][-1]),
            }
        )
    return out


def channel_generate_flows() -> list[dict[str, Any]]:
    """What the generate form offers per channel flow (walls at y = ±1): the keys of
    ``generate_form_flows`` (ν is 1/Re_τ, the only one) plus ``channel: True``, its default
    solver grid (nx, ny, nz), its grid rule and limits, Re_τ, LES closures and drives (the
    first of each the default). Read from ``flow_catalog``."""
    out = []
    for f in flow_catalog():
        if f["geometry"] != "channel":
            continue
        parameters = f["parameters"]
        families = f["initial_conditions"]
        grid = f["grid"]
        out.append(
            {
                "name": f["name"],
                "description": f["description"],
                "nu": float(parameters["nu"]),
                "allowed_nu": [float(parameters["nu"])],
                "initial_conditions": [family["name"] for family in families],
                "ic_descriptions": {
                    family["name"]: str(family["description"] or "") for family in families
                },
                "length": float(parameters.get("lx") or f["domain"]["lengths"][0]),
                "channel": True,
                "default_grid": [int(g) for g in grid["default"]],
                "grid_min": [int(g) for g in grid.get("min") or [4, 4, 4]],
                "grid_max": [int(g) for g in grid.get("max") or [512, 1024, 512]],
                "grid_rule": str(grid.get("rule") or ""),
                "storage": str(grid.get("storage") or ""),
                "re_tau": float(parameters["re_tau"]),
                "closures": [str(c) for c in parameters.get("closures") or ["none"]],
                "drives": [str(d) for d in parameters.get("drives") or ["pressure"]],
            }
        )
    return out
