"""What a channel-flow generate job's parameters mean: the solver configuration, the stored
grid and coordinates, and the attributes recorded with the dataset. Shared by the worker
that writes the shards and the job service that joins them. The defaults (grid, Re_τ,
drive, box) are the flow's own (``physics.channel.flow.ChannelFlow``), the flow being the
one the parameters name."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from physics.channel.fields import X_Z_FILTERS, filter_xz, filter_y, y_box_weights
from physics.channel.flow import CHANNEL3D, ChannelFlow
from physics.channel.grid import ChannelGrid
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


# The widest box filter, in cells of the stored grid.
MAX_FILTER_WIDTH = 8.0

# Generate parameters that only a channel flow takes (a 2D flow accepts them unset, or the
# default drive).
CHANNEL_ONLY = (
    "channel_grid",
    "output_grid",
    "filter",
    "filter_width",
    "re_tau",
    "closure",
    "drive",
)


def check_channel_generate(p: dict[str, Any]) -> None:
    """A channel generate job's initial condition, grids and filter, checked against its
    flow: a family the flow offers, a solver grid its rules allow (enough points for the 2/3
    rule and the wall-normal stencils, not more than a worker can hold), a stored (training)
    grid no finer than the solver's in any direction (x–z as (nx, nz), or (nx, ny, nz) with
    ny cells the flow's rules allow), and a filter width only for the box filter.
    ValueError "params.<key>: <sentence>" otherwise."""
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
    stored = p.get("output_grid")
    if stored is not None:
        if len(stored) not in (2, 3):
            raise ValueError(
                "params.output_grid: give the stored grid as nx, nz (x–z only) or nx, ny, nz; "
                f"got {len(stored)} values."
            )
        xz = (stored[0], stored[-1])
        try:
            flow.check_storage_grid(xz, grid)
        except ValueError as exc:
            raise ValueError(f"params.output_grid: {exc}") from None
        if len(stored) == 3 and not flow.min_ny <= stored[1] <= ny:
            raise ValueError(
                f"params.output_grid: the stored ny (cells between the walls) must be between "
                f"{flow.min_ny} and the solver's {ny}; got {stored[1]}."
            )
    kind = p.get("filter") or "spectral"
    if kind not in X_Z_FILTERS:
        raise ValueError(
            f"params.filter: the x–z filter is one of {', '.join(X_Z_FILTERS)}; got {kind!r}."
        )
    if p.get("filter_width") is not None:
        if kind != "box":
            raise ValueError(
                "params.filter_width: applies to the box filter only (filter: box); the "
                "spectral cut's width is the stored grid's spacing."
            )
        if not 0 < p["filter_width"] <= MAX_FILTER_WIDTH:
            raise ValueError(
                f"params.filter_width: the box width in stored-grid cells must be above 0 and "
                f"at most {MAX_FILTER_WIDTH:g}; got {p['filter_width']:g}."
            )


# Of those, the ones every 3D velocity flow takes (hit3d's generator too: its filter onto
# the stored grid and its LES closure).
VELOCITY_KEYS = ("filter", "filter_width", "closure")


def check_not_channel_params(p: dict[str, Any]) -> None:
    """ValueError "params.<key>: applies to the channel3d flow only." (naming the
    registered channel flows, or every 3D flow for ``VELOCITY_KEYS``) for a channel-only
    parameter set on another flow."""
    from physics.flows import flows_of

    for key in CHANNEL_ONLY:
        if p.get(key) not in (None, "pressure"):
            flows = flows_of(dims=3) if key in VELOCITY_KEYS else flows_of(geometry="channel")
            names = " or ".join(flow.name for flow in flows)
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


def training_grid(p: dict[str, Any], config: ChannelConfig) -> tuple[int, int, int]:
    """The stored grid (nx, ny, nz): ``output_grid``'s values, its ny the solver's when it
    gives only nx, nz; the solver grid when it is unset."""
    stored = p.get("output_grid")
    if not stored:
        return (config.nx, config.ny, config.nz)
    if len(stored) == 2:
        return (int(stored[0]), config.ny, int(stored[1]))
    return tuple(int(s) for s in stored)


def output_grid(p: dict[str, Any], config: ChannelConfig) -> tuple[int, int]:
    """The stored x–z grid (nx, nz)."""
    ox, _, oz = training_grid(p, config)
    return (ox, oz)


def stored_y_grid(p: dict[str, Any], config: ChannelConfig) -> ChannelGrid:
    """The stored grid as a ``ChannelGrid``: the solver's box and tanh stretching with the
    stored number of cells, so its centres are where the stored velocity lives."""
    ox, oy, oz = training_grid(p, config)
    return ChannelGrid(
        nx=max(ox, 4),
        ny=oy,
        nz=max(oz, 4),
        lx=config.lx,
        lz=config.lz,
        stretching=config.stretching,
    )


def filter_widths(p: dict[str, Any], config: ChannelConfig) -> tuple[float, float]:
    """The x–z filter widths (Δx, Δz): for the box, ``filter_width`` (default 1) stored-grid
    cells; for the spectral cut, the stored spacing (its cut-off wavenumber is π/Δ)."""
    ox, oz = output_grid(p, config)
    cells = (p.get("filter_width") or 1.0) if (p.get("filter") or "spectral") == "box" else 1.0
    return (cells * config.lx / ox, cells * config.lz / oz)


def channel_filter(p: dict[str, Any], config: ChannelConfig):
    """The function taking cell-centred solver velocity (..., nx, ny, nz) to the stored
    grid: the x–z filter (spectral cut or box then cut), then the y top-hat over the stored
    cells when the stored ny is coarser."""
    ox, oy, oz = training_grid(p, config)
    kind = p.get("filter") or "spectral"
    widths = filter_widths(p, config)
    weights = None
    if oy != config.ny:
        weights = y_box_weights(config.grid().y_faces, stored_y_grid(p, config).y_faces)

    def apply(u):
        out = filter_xz(u, ox, oz, kind=kind, widths=widths, lengths=(config.lx, config.lz))
        return out if weights is None else filter_y(out, weights)

    return apply


def filter_attrs(p: dict[str, Any], config: ChannelConfig) -> dict[str, Any]:
    """What the stored velocity is: the filter's kind in x–z and in y, its widths, and the
    grids it maps between (source: the solver's; target: the stored one)."""
    ox, oy, oz = stored = training_grid(p, config)
    kind = p.get("filter") or "spectral"
    dx, dz = filter_widths(p, config)
    nested = oy == config.ny or config.ny % oy == 0
    if kind == "box":
        xz = (
            f"x–z: top-hat (box) of width {dx:.6g} × {dz:.6g} "
            f"({p.get('filter_width') or 1.0:g} stored cells; transfer sin(kΔ/2)/(kΔ/2)), "
            f"then cut to the modes of the {ox}×{oz} grid"
        )
    else:
        xz = f"x–z: sharp spectral cut to the modes of the {ox}×{oz} grid"
    if oy == config.ny:
        y = "y: none (the solver's cell centres)"
    else:
        y = (
            f"y: top-hat over each of the {oy} stored cells (mean of the solver's cells, "
            f"weighted by overlap{'; exact cell means' if nested else ''}), "
            "stored at the stored cells' centres"
        )
    return {
        "filter": kind,
        "filter_y": "none" if oy == config.ny else "box",
        "filter_width": [dx, dz],
        "filter_width_cells": float(p.get("filter_width") or 1.0) if kind == "box" else 1.0,
        "filter_source_grid": [config.nx, config.ny, config.nz],
        "filter_target_grid": list(stored),
        "filter_description": f"{xz}; {y}.",
    }


def channel_coords(p: dict[str, Any], config: ChannelConfig) -> dict[str, np.ndarray]:
    ox, _, oz = training_grid(p, config)
    return {
        "x": np.arange(ox) * (config.lx / ox),
        "y": stored_y_grid(p, config).y_centres.numpy(),
        "z": np.arange(oz) * (config.lz / oz),
    }


def channel_attrs(p: dict[str, Any], config: ChannelConfig) -> dict[str, Any]:
    return {
        "flow": channel_flow(p).name,
        "re_tau": config.re_tau,
        "nu": config.nu,
        "lx": config.lx,
        "lz": config.lz,
        "solver_grid": [config.nx, config.ny, config.nz],
        "stored_grid": list(training_grid(p, config)),
        "stretching": config.stretching,
        "drive": config.drive,
        "closure": config.les or "none",
        "interval": p["interval"],
        "warmup": p["warmup"],
        "seed": p["seed"],
        "initial_condition": p.get("initial_condition") or channel_flow(p).initial_conditions[0],
        "velocity_location": "cell centres (v interpolated from the faces)",
        "generator": "eddyscope",
        **filter_attrs(p, config),
    }
