"""The channel half of the ``compare`` kind's check: 3D models of the three velocity
components trained on filtered channel data of one flow, on one stored (coarse) grid, at
one interval; LES baselines that can run the channel solver on that grid; an initial
condition on the reference's solver grid or on the models' grid.

What a channel comparison runs is in docs/channel_compare_contract.md; the reference and
the baselines take their settings (Re_τ, drive, closure, box, filter) from the dataset the
first model was trained on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.channel_params import channel_config, training_grid
from app.db.tables import Dataset, Model
from app.jobkinds.base import InvalidParams
from app.jobkinds.checks import check_trajectory, start_dataset, start_initial_condition
from models.registry import MODELS, Contract

DEFAULT_DRIFT = 0.5
CHANNEL_ONLY = ("baselines", "window", "drift")


def shown(grid: tuple[int, ...] | list[int]) -> str:
    return "×".join(str(int(n)) for n in grid)


def stored_grid(dataset: Dataset) -> tuple[int, int, int]:
    """The grid a channel dataset stores its velocity on (the models' coarse grid): the
    recorded ``stored_grid``, else what its parameters say, else its shape."""
    params = dataset.params or {}
    if params.get("stored_grid"):
        return tuple(int(n) for n in params["stored_grid"])
    if params.get("output_grid") or params.get("channel_grid"):
        return training_grid(params, channel_config({"drive": "pressure", **params}))
    return tuple(int(n) for n in dataset.shape[2:5])


def solver_grid(dataset: Dataset) -> tuple[int, int, int]:
    """The grid the dataset's solver ran on (the reference's fine grid)."""
    params = dataset.params or {}
    grid = params.get("solver_grid") or params.get("channel_grid")
    if grid:
        return tuple(int(n) for n in grid)
    return stored_grid(dataset)


def refuse_channel_only(data: dict[str, Any]) -> None:
    """InvalidParams for channel-only parameters set on a 2D comparison."""
    if data.get("baselines"):
        raise InvalidParams(
            "params.baselines: LES baselines run the channel solver beside channel models; "
            "this comparison's models are 2D, so leave baselines empty."
        )
    for key in ("window", "drift"):
        if data.get(key) is not None:
            raise InvalidParams(
                f"params.{key}: applies to channel comparisons only (the windowed statistics "
                "and the bulk-velocity guard); this comparison's models are 2D."
            )


def check_channel(
    session: Session,
    params,
    data: dict[str, Any],
    queue: str,
    rows: list[Model],
    contracts: list[Contract],
) -> tuple[dict[str, Any], str]:
    """The meaning of a channel comparison's parameters (rows: the models, one flow, one
    interval, already checked); completes ``window`` and ``drift``."""
    datasets: list[Dataset] = []
    for i, (row, contract) in enumerate(zip(rows, contracts, strict=True)):
        where = f"params.models[{i}].model_id"
        if contract.dims != 3 or contract.channels != 3:
            raise InvalidParams(
                f"{where}: a channel comparison runs 3D models of the three velocity "
                f"components; model {row.id} ({row.arch}) works on {contract.dims}D fields "
                f"with {contract.channels} channel(s)."
            )
        dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
        if dataset is None:
            raise InvalidParams(
                f"{where}: model {row.id} records no channel dataset it was trained on (or "
                "the dataset is gone); a channel comparison takes its reference solver, "
                "filter and grid from that dataset."
            )
        if len(dataset.shape or []) != 6:
            raise InvalidParams(
                f"{where}: model {row.id} was trained on dataset {dataset.id}, which holds "
                f"fields shaped {dataset.shape[2:]}, not channel velocity."
            )
        datasets.append(dataset)
    grids = [stored_grid(d) for d in datasets]
    if len(set(grids)) > 1:
        listing = "; ".join(f"{row.id} on {shown(g)}" for row, g in zip(rows, grids, strict=True))
        raise InvalidParams(
            f"params.models: the models were trained on different grids ({listing}); a "
            "channel comparison runs every column on one coarse grid, so compare models "
            "trained on the same stored grid."
        )
    grid = grids[0]
    for i, row in enumerate(rows):
        try:
            config = MODELS[row.arch].config_cls.from_dict(row.config)
            if hasattr(config, "check_grid"):
                config.check_grid(grid)
        except (KeyError, ValueError) as exc:
            raise InvalidParams(
                f"params.models[{i}].model_id: model {row.id} cannot run on its training "
                f"grid {shown(grid)}: {exc}"
            ) from None
    first = datasets[0]
    fine = solver_grid(first)
    flow_name = rows[0].flow

    baselines = list(data.get("baselines") or [])
    if baselines:
        from physics.flows import get_flow

        try:
            get_flow(flow_name).check_grid(grid)
        except ValueError as exc:
            raise InvalidParams(
                f"params.baselines: the closures run the channel solver on the models' grid "
                f"{shown(grid)}, which it cannot: {exc}"
            ) from None
    if not data.get("reference", True):
        raise InvalidParams(
            "params.reference: a channel comparison always runs the reference (the filtered "
            "fine solver); every column's errors and statistics are measured against it."
        )
    if data.get("nu") is not None:
        raise InvalidParams(
            "params.nu: a channel comparison runs at the Re_τ of the models' training data "
            f"(dataset {first.id}); leave nu unset."
        )

    if params.initial_condition_id is not None:
        ic = start_initial_condition(session, data, flow_name)
        shape = tuple(int(n) for n in ic.shape)
        if len(shape) != 4 or shape[0] != 3 or shape[1:] not in (fine, grid):
            raise InvalidParams(
                f"params.initial_condition_id: the snapshot is shaped {shape}; a channel "
                f"comparison starts from the velocity (3, nx, ny, nz) on the reference's "
                f"solver grid {shown(fine)} or on the models' grid {shown(grid)}."
            )
    if params.dataset_id is not None:
        dataset = start_dataset(session, data, flow_name)
        if len(dataset.shape or []) != 6:
            raise InvalidParams(
                f"params.dataset_id: the dataset holds fields shaped {dataset.shape[2:]}, "
                "not channel velocity."
            )
        if stored_grid(dataset) != grid:
            raise InvalidParams(
                f"params.dataset_id: the dataset stores {shown(stored_grid(dataset))} "
                f"velocity; the models run on {shown(grid)}. Start from a dataset on the "
                "models' grid."
            )
        check_trajectory(dataset, params.trajectory)
    if data.get("window") is None:
        data["window"] = max(1, data["steps"] // 4)
    if data.get("drift") is None:
        data["drift"] = DEFAULT_DRIFT
    data["grid"] = list(grid)
    return data, queue


def reference_grid(session: Session, data: dict[str, Any]) -> tuple[int, int, int]:
    """The fine grid a channel comparison's reference runs on (the first model's dataset's
    solver grid), for the steps × points bound."""
    row = session.get(Model, data["models"][0]["model_id"])
    dataset = session.get(Dataset, row.dataset_id) if row and row.dataset_id else None
    return solver_grid(dataset) if dataset is not None else tuple(data.get("grid") or (1, 1, 1))
