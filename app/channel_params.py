"""What a channel3d generate job's parameters mean: the solver configuration, the stored
grid and coordinates, and the attributes recorded with the dataset. Shared by the worker
that writes the shards and the job service that joins them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from physics.channel.solver import ChannelConfig

DEFAULT_GRID = (32, 49, 32)


def channel_config(p: dict[str, Any]) -> ChannelConfig:
    nx, ny, nz = p.get("channel_grid") or DEFAULT_GRID
    return ChannelConfig(
        re_tau=p.get("re_tau") or 180.0,
        nx=nx,
        ny=ny,
        nz=nz,
        drive=p.get("drive") or "pressure",
        # Dataset attributes record "none" for coarse DNS; job parameters say None.
        les=None if p.get("closure") in (None, "none") else p["closure"],
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
        "flow": "channel3d",
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
        "initial_condition": p.get("initial_condition") or "turbulent",
        "velocity_location": "cell centres (v interpolated from the faces)",
        "generator": "eddyscope",
    }
