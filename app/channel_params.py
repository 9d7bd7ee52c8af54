"""What a channel-flow generate job's parameters mean: the solver configuration, the stored
grid and coordinates, and the attributes recorded with the dataset. Shared by the worker
that writes the shards and the job service that joins them. The defaults (grid, Re_τ,
drive, box) are the flow's own (``physics.channel.flow.ChannelFlow``), the flow being the
one the parameters name."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from physics.channel.flow import CHANNEL3D, ChannelFlow
from physics.channel.solver import ChannelConfig
from physics.flows import get_flow

# The registered channel flow's default solver grid (nx, ny, nz).
DEFAULT_GRID = CHANNEL3D.default_grid


def channel_flow(p: dict[str, Any]) -> ChannelFlow:
    """The channel flow the parameters name (``p["flow"]``; the registered channel3d when
    they name none). ValueError for a flow that is not a channel."""
    flow = get_flow(p["flow"]) if p.get("flow") else CHANNEL3D
    if flow.geometry != "channel":
        raise ValueError(f"{flow.name} is not a channel flow.")
    return flow


# Generate parameters that only a channel flow takes (a 2D flow accepts them unset, or the
# default drive).
CHANNEL_ONLY = ("channel_grid", "output_grid", "re_tau", "closure", "drive")


def check_channel_generate(p: dict[str, Any]) -> None:
    """A channel generate job's initial condition and grids, checked against its flow:
    a family the flow offers, a solver grid its rules allow (enough points for the 2/3 rule
    and the wall-normal stencils, not more than a worker can hold), a stored x–z grid no
    finer than the solver's. ValueError "params.<key>: <sentence>" otherwise."""
    flow = channel_flow(p)
    try:
        flow.check_initial_condition(p.get("initial_condition"))
    except ValueError as exc:
        raise ValueError(f"params.initial_condition: {exc}") from None
    nx, ny, nz = grid = tuple(p.get("channel_grid") or flow.default_grid)
    try:
        flow.check_grid(grid)
    except ValueError:
        raise ValueError(
            f"params.channel_grid: {flow.grid_rule()}; got {nx}, {ny}, {nz}."
        ) from None
    if p.get("output_grid") is not None:
        try:
            flow.check_storage_grid(p["output_grid"], grid)
        except ValueError as exc:
            raise ValueError(f"params.output_grid: {exc}") from None


def check_not_channel_params(p: dict[str, Any]) -> None:
    """ValueError "params.<key>: applies to the channel3d flow only." (naming the
    registered channel flows) for a channel-only parameter set on another flow."""
    from physics.flows import flows_of

    for key in CHANNEL_ONLY:
        if p.get(key) not in (None, "pressure"):
            names = " or ".join(flow.name for flow in flows_of(geometry="channel"))
            raise ValueError(f"params.{key}: applies to the {names} flow only.")


def channel_config(p: dict[str, Any]) -> ChannelConfig:
    # Dataset attributes record "none" for coarse DNS; job parameters say None. Either is
    # coarse DNS for ChannelFlow.config.
    return channel_flow(p).config(
        grid=p.get("channel_grid"),
        re_tau=p.get("re_tau"),
        drive=p.get("drive"),
        closure=p.get("closure"),
        dtype=torch.float32,
    )


def output_grid(p: dict[str, Any], config: ChannelConfig) -> tuple[int, int]:
    return tuple(p["output_grid"]) if p.get("output_grid") else (config.nx, config.nz)


def channel_coords(p: dict[str, Any], config: ChannelConfig) -> dict[str, np.ndarray]:
    ox, oz = output_grid(p, config)
    return {
        "x": np.arange(ox) * (config.lx / ox),
        "y": config.grid().y_centres.numpy(),
        "z": np.arange(oz) * (config.lz / oz),
    }


def channel_attrs(p: dict[str, Any], config: ChannelConfig) -> dict[str, Any]:
    ox, oz = output_grid(p, config)
    return {
        "flow": channel_flow(p).name,
        "re_tau": config.re_tau,
        "nu": config.nu,
        "lx": config.lx,
        "lz": config.lz,
        "solver_grid": [config.nx, config.ny, config.nz],
        "stored_grid": [ox, config.ny, oz],
        "stretching": config.stretching,
        "drive": config.drive,
        "closure": config.les or "none",
        "interval": p["interval"],
        "warmup": p["warmup"],
        "seed": p["seed"],
        "initial_condition": p.get("initial_condition") or channel_flow(p).initial_conditions[0],
        "velocity_location": "cell centres (v interpolated from the faces)",
        "generator": "eddyscope",
    }
