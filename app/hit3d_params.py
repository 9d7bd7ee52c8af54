"""What a hit3d generate job's parameters mean: the checks and defaults at submit, the solver
and the initial fields, the filter from the solver grid onto the stored one, and the
attributes recorded with the dataset. Shared by the worker that writes the shards
(``workers.runners.generate_hit3d``) and the job service that joins them, as
``app.channel_params`` is for channel flows. The defaults (grid, ν, k_p, u_rms) are the
flow's own (``physics.hit3d.flow.HITFlow``), the flow being the one the parameters name.

Grids: ``solver_resolution`` is the side of the cube the solver runs on, ``resolution`` the
side of the stored (training, LES) grid; a stored grid coarser than the solver's holds
filtered DNS (``filter``: "spectral", the sharp cut to the coarse grid's 2/3-rule band, or
"box", a top-hat of ``filter_width`` stored cells then the same cut). The kind of filter,
its width and cutoff are recorded in the dataset ("none" when nothing was filtered).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from physics.flows import get_flow
from physics.hit3d.filters import filter_to
from physics.hit3d.flow import SPECTRUM_FAMILIES

# Generate parameters that only hit3d takes (another flow accepts them unset).
HIT_ONLY = ("k_peak", "u_rms", "forcing")


def hit3d_flow(p: dict[str, Any]):
    """The periodic-box flow the parameters name, at their viscosity ``nu`` when given.
    ValueError for a flow that is not a 3D periodic velocity flow."""
    flow = get_flow(p["flow"])
    if flow.dims != 3 or flow.geometry != "periodic":
        raise ValueError(f"{flow.name} is not a 3D periodic-box flow.")
    return flow.variant(p.get("nu"))


def check_not_hit3d_params(p: dict[str, Any]) -> None:
    """ValueError "params.<key>: applies to the hit3d flow only." for a hit3d-only
    parameter set on another flow."""
    from physics.flows import flows_of

    for key in HIT_ONLY:
        if p.get(key) not in (None, "none"):
            names = " or ".join(flow.name for flow in flows_of(dims=3, geometry="periodic"))
            raise ValueError(f"params.{key}: applies to the {names} flow only.")


def check_hit3d_generate(p: dict[str, Any], given: set[str]) -> None:
    """A hit3d generate job's parameters checked against its flow, and completed in place so
    the job row says what runs: ``resolution`` (when not ``given``, the solver's side or the
    flow's default 32) and ``solver_resolution`` (default ``resolution``). Checks: no
    channel-only parameter, a viscosity, family, closure and forcing the flow takes, both
    grids by its rules with the stored one no finer than the solver's, the spectrum's k_p
    and u_rms only for the random family with k_p inside the solver grid's shells, a filter
    width only for the box filter. ValueError "params.<key>: <sentence>" otherwise."""
    from app.channel_params import MAX_FILTER_WIDTH, VELOCITY_KEYS, check_not_channel_params

    check_not_channel_params({k: v for k, v in p.items() if k not in VELOCITY_KEYS})
    flow = get_flow(p["flow"])
    try:
        flow = flow.variant(p.get("nu"))
    except ValueError as exc:
        raise ValueError(f"params.nu: {exc}") from None
    family = p.get("initial_condition")
    try:
        flow.check_initial_condition(family)
    except ValueError as exc:
        raise ValueError(f"params.initial_condition: {exc}") from None
    family = family or flow.initial_conditions[0]
    if p.get("closure") not in (None, *flow.closures):
        raise ValueError(
            f"params.closure: {flow.name} offers the closures "
            f"{', '.join(c for c in flow.closures if c != 'none')} (none: DNS); "
            f"got {p['closure']!r}."
        )
    if p.get("forcing") not in (None, *flow.forcings):
        raise ValueError(
            f"params.forcing: {flow.name} offers the forcings {', '.join(flow.forcings)}; "
            f"got {p['forcing']!r}."
        )
    for key in ("resolution", "solver_resolution"):
        n = p.get(key)
        if n is None or (key == "resolution" and key not in given):
            continue  # a default, completed below from a grid that passed
        try:
            flow.check_grid((n, n, n))
        except ValueError as exc:
            raise ValueError(f"params.{key}: {exc}") from None
    if "resolution" not in given:
        p["resolution"] = p.get("solver_resolution") or flow.default_n
    if p.get("solver_resolution") is None:
        p["solver_resolution"] = p["resolution"]
    n_out, n_solver = p["resolution"], p["solver_resolution"]
    if n_out > n_solver:
        raise ValueError(
            f"params.resolution: the stored grid ({n_out}³) cannot be finer than the "
            f"solver's ({n_solver}³)."
        )
    for key in ("k_peak", "u_rms"):
        if p.get(key) is not None and family not in SPECTRUM_FAMILIES:
            raise ValueError(
                f"params.{key}: shapes the initial spectrum of the "
                f"{' or '.join(SPECTRUM_FAMILIES)} initial condition only; {family} is not "
                "random."
            )
    top = (n_solver - 1) // 3  # the last shell random_velocity fills
    if p.get("k_peak") is not None and not 0 < p["k_peak"] <= top:
        raise ValueError(
            f"params.k_peak: the spectrum's peak must lie in the shells the {n_solver}³ "
            f"solver grid resolves, above 0 and at most {top}; got {p['k_peak']:g}."
        )
    kind = p.get("filter")
    if p.get("filter_width") is not None:
        if kind != "box":
            raise ValueError(
                "params.filter_width: applies to the box filter only (filter: box); the "
                "spectral cut's width is set by the stored grid."
            )
        if not 0 < p["filter_width"] <= MAX_FILTER_WIDTH:
            raise ValueError(
                f"params.filter_width: the box width in stored-grid cells must be above 0 and "
                f"at most {MAX_FILTER_WIDTH:g}; got {p['filter_width']:g}."
            )


def filter_kind(p: dict[str, Any]) -> str:
    """The filter onto the stored grid: the one asked for; else "spectral" when the stored
    grid is coarser than the solver's, "none" when they are the same grid."""
    if p.get("filter"):
        return p["filter"]
    return "spectral" if p["resolution"] < p["solver_resolution"] else "none"


def initial_fields(
    flow, p: dict[str, Any], seeds: list[int], device: torch.device | str | None = None
) -> torch.Tensor:
    """The initial velocities (len(seeds), 3, N, N, N) on the solver grid, float32: one
    field of the family per seed (each drawn alone, so the data do not depend on the
    batching), with the job's k_p and u_rms for the random family."""
    family = p.get("initial_condition") or flow.initial_conditions[0]
    spectrum = {key: p[key] for key in ("k_peak", "u_rms") if p.get(key) is not None}
    n = p["solver_resolution"]
    return torch.cat(
        [
            flow.make_initial_condition(family, n, 1, seed, device, torch.float32, **spectrum)
            for seed in seeds
        ]
    )


def hit3d_solver(flow, p: dict[str, Any]):
    """The job's solver: the flow's, on the solver grid, with its forcing, closure, scheme."""
    return flow.make_solver(
        p["solver_resolution"],
        forcing=p.get("forcing"),
        closure=p.get("closure"),
        scheme=p.get("scheme") or "rk4cn",
    )


def _widths(flow, p: dict[str, Any]) -> tuple[float, float, float]:
    """(width Δ, width in stored cells, cutoff |κᵢ| <) of the filter onto the stored grid,
    as ``physics.hit3d.filters.filter_to`` makes them."""
    n = p["resolution"]
    cells = float(p.get("filter_width") or 1.0) if filter_kind(p) == "box" else 1.0
    cutoff = n / 3
    if filter_kind(p) == "box":
        return cells * flow.length / n, cells, cutoff
    # The sharp cut at k_c = (2π/L)·n/3 has the width π/k_c = 1.5 stored cells.
    return math.pi / ((2 * math.pi / flow.length) * cutoff), 1.5, cutoff


def hit3d_filter(flow, p: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function taking solver velocity (…, 3, N, N, N) to the stored (…, 3, n, n, n)."""
    kind = filter_kind(p)
    if kind == "none":
        return lambda u: u
    n = p["resolution"]
    width = _widths(flow, p)[0] if kind == "box" else None
    return lambda u: filter_to(u, n, kind, flow.length, width).velocity


def filter_attrs(flow, p: dict[str, Any]) -> dict[str, Any]:
    """What the stored velocity is: the filter's kind, width and cutoff, the grids it maps
    between (source: the solver's; target: the stored one) and a sentence."""
    n, n_solver = p["resolution"], p["solver_resolution"]
    kind = filter_kind(p)
    width, cells, cutoff = _widths(flow, p)
    if kind == "none":
        description = f"none: the solver's {n_solver}³ velocity as it is"
    elif kind == "box":
        description = (
            f"top-hat (box) of width {width:.6g} ({cells:g} stored cells; transfer "
            f"Π sin(k_iΔ/2)/(k_iΔ/2)), then cut to the modes |κ_i| < {cutoff:.6g} of the "
            f"{n}³ grid"
        )
    else:
        description = f"sharp spectral cut to the modes |κ_i| < {cutoff:.6g} of the {n}³ grid"
    return {
        "filter": kind,
        "filter_width": width if kind != "none" else 0.0,
        "filter_width_cells": cells if kind != "none" else 0.0,
        "filter_cutoff": cutoff if kind != "none" else n_solver / 3,
        "filter_source_grid": [n_solver] * 3,
        "filter_target_grid": [n] * 3,
        "filter_description": f"{description}.",
    }


def hit3d_attrs(p: dict[str, Any]) -> dict[str, Any]:
    """The dataset's attributes: the flow and its parameters as run, the grids, the time
    axis, the seed and the filter."""
    flow = hit3d_flow(p)
    family = p.get("initial_condition") or flow.initial_conditions[0]
    spectrum = (
        {
            "k_peak": float(p.get("k_peak") or flow.k_peak),
            "u_rms": float(p.get("u_rms") or flow.u_rms),
            "initial_spectrum": flow.parameters()["initial_spectrum"],
        }
        if family in SPECTRUM_FAMILIES
        else {}
    )
    return {
        "flow": flow.name,
        "nu": flow.nu,
        "length": flow.length,
        "initial_condition": family,
        "initial_condition_description": flow.initial_condition_description(family),
        **spectrum,
        "forcing": p.get("forcing") or "none",
        "k_forcing": flow.k_forcing if p.get("forcing") else 0,
        "closure": p.get("closure") or "none",
        "scheme": p.get("scheme") or "rk4cn",
        "dealiasing": "2/3 rule",
        "resolution": p["resolution"],
        "solver_resolution": p["solver_resolution"],
        "solver_grid": [p["solver_resolution"]] * 3,
        "stored_grid": [p["resolution"]] * 3,
        "interval": p["interval"],
        "warmup": p["warmup"],
        "seed": p["seed"],
        "velocity_layout": "t1_fields/velocity (trajectory, time, x, y, z, component)",
        "generator": "eddyscope",
        **filter_attrs(flow, p),
    }
