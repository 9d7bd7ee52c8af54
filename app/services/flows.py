"""The questions the pages ask about flows: which there are, what the forms offer per flow,
a flow's domain length, whether it is a channel flow. Thin wrappers over ``physics.flows``
(and the channel flows the upload knows); every such question is answered here and only
here, so the flow registry can change under them in one place.
"""

from __future__ import annotations

from typing import Any

CHANNEL_FLOW_DESCRIPTION = (
    "Turbulent channel flow between walls at y = ±1, periodic in x and z: a 3D velocity "
    "snapshot (u, v, w) with its wall-normal points y, as .npz or HDF5."
)


def flow_names() -> list[tuple[str, str]]:
    """(name, description) of every registered flow."""
    from physics.flows import FLOWS

    return [(name, flow.description) for name, flow in FLOWS.items()]


def flow_length(flow_name: str) -> float:
    """The side of the flow's square domain; 1 for a flow the registry does not know."""
    from physics.flows import get_flow

    try:
        return float(get_flow(flow_name).length)
    except ValueError:
        return 1.0


def is_channel_flow(flow_name: str | None) -> bool:
    """Whether the flow's fields are a 3D channel velocity (walls at y = ±1)."""
    from app.services.uploads import CHANNEL_FLOWS

    return flow_name in CHANNEL_FLOWS


def upload_flows() -> list[tuple[str, str]]:
    """(name, description) of every flow an initial condition can be uploaded for: the
    registered flows, and the channel flows (known to the upload whether registered or not)."""
    from app.services.uploads import CHANNEL_FLOWS

    out = flow_names()
    names = {name for name, _ in out}
    out += [(name, CHANNEL_FLOW_DESCRIPTION) for name in CHANNEL_FLOWS if name not in names]
    return out


def generate_form_flows() -> list[dict[str, Any]]:
    """What the generate form offers per flow: its description, the viscosities it allows
    (its default first) and its initial-condition families.

    Read from the flow registry; a flow that does not list allowed viscosities offers its
    own, and one that lists no initial-condition families offers only its default (sent as
    None, so the job uses the flow's own)."""
    from physics import flows as registry

    described = getattr(registry, "INITIAL_CONDITIONS", {})
    out = []
    for name, flow in registry.FLOWS.items():
        allowed = tuple(getattr(flow, "allowed_nu", None) or (flow.nu,))
        families = tuple(getattr(flow, "initial_conditions", None) or ())
        out.append(
            {
                "name": name,
                "description": flow.description,
                "nu": float(flow.nu),
                "allowed_nu": [float(nu) for nu in allowed],
                "initial_conditions": list(families),
                "ic_descriptions": {
                    f: str(getattr(described.get(f), "description", "") or "") for f in families
                },
                "length": float(flow.length),
            }
        )
    return out
