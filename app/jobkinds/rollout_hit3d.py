"""The hit3d half of the ``rollout`` kind's check: a 3D model of the three velocity
components trained on a hit3d dataset (and/or the reference solver alone), on one cubic grid.

A hit3d rollout runs on the model's grid, the stored (LES) grid of the dataset it was
trained on, and its reference is the LES with that dataset's parameters (ν, closure,
forcing, filter width; ``workers.runners.rollout_hit3d``). So an initial condition, or the
``resolution`` of a random one, must be on that grid; without a model any grid the flow
takes (``HITFlow.check_grid``: cubic, even, 16–128 per side). The check completes
``resolution`` (the side n of the n³ grid) so ``rollout_grid`` and the worker agree."""

from __future__ import annotations

from typing import Any

from app.db.tables import Dataset, InitialCondition, Model
from app.jobkinds.base import InvalidParams
from app.jobkinds.checks import allowed_variant
from models.registry import MODELS


def velocity_grid(shape: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """The spatial grid of a stored 3D velocity: (3, nx, ny, nz) or (nx, ny, nz, 3) → (nx,
    ny, nz); any other shape as it is (the flow's ``check_grid`` then says what is wrong)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4 and shape[0] == 3:
        return shape[1:]
    if len(shape) == 4 and shape[-1] == 3:
        return shape[:-1]
    return shape


def training_dataset(session, model: Model) -> Dataset:
    """The hit3d dataset ``model`` was trained on, or InvalidParams saying why it cannot roll
    out (no dataset recorded, or one that is not a cube of velocity)."""
    dataset = session.get(Dataset, model.dataset_id) if model.dataset_id else None
    if dataset is None:
        raise InvalidParams(
            f"params.model_id: model {model.id} records no hit3d dataset it was trained on (or "
            "the dataset is gone); a hit3d rollout takes its grid and its reference LES (ν, "
            "closure, forcing, filter) from that dataset."
        )
    shape = list(dataset.shape or [])
    if len(shape) != 6 or shape[-1] != 3 or not shape[2] == shape[3] == shape[4]:
        raise InvalidParams(
            f"params.model_id: model {model.id} was trained on dataset {dataset.id}, which holds "
            f"fields shaped {shape[2:]}, not hit3d velocity on a cube."
        )
    return dataset


def check_hit3d(
    session,
    flow,
    params,
    data: dict[str, Any],
    model: Model | None,
    ic: InitialCondition | None,
) -> dict[str, Any]:
    """``data`` checked and completed for a hit3d rollout (``flow`` the registered hit3d
    flow), or InvalidParams with a sentence naming the parameter."""
    allowed_variant(flow, params.nu)
    n_model = None
    if model is not None:
        spec = MODELS.get(model.arch)
        if spec is None or spec.dims != 3:
            dims = f"{spec.dims}D" if spec is not None else "unknown"
            raise InvalidParams(
                f"params.model_id: a hit3d rollout needs a 3D model of the velocity (u, v, w); "
                f"{model.id} is {model.arch} ({dims})."
            )
        dataset = training_dataset(session, model)
        n_model = int(dataset.shape[2])
        try:
            config = spec.config_cls.from_dict(model.config)
            if getattr(config, "channels", 3) != 3:
                raise ValueError(f"it predicts {config.channels} channel(s), not 3")
            config.check_grid((n_model,) * 3)
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidParams(
                f"params.model_id: model {model.id} cannot run on its training grid "
                f"{n_model}³: {exc}"
            ) from None
    if ic is not None:
        grid = velocity_grid(ic.shape or [])
        try:
            flow.check_grid(grid)
        except ValueError as exc:
            raise InvalidParams(f"params.initial_condition_id: {exc}") from None
        if n_model is not None and grid != (n_model,) * 3:
            raise InvalidParams(
                f"params.initial_condition_id: the initial condition is on a "
                f"{'×'.join(map(str, grid))} grid, but model {model.id} was trained on "
                f"{n_model}³ and a hit3d rollout runs on the model's grid."
            )
        n = grid[0]
    elif "resolution" in params.model_fields_set:
        n = params.resolution
        try:
            flow.check_grid((n, n, n))
        except ValueError as exc:
            raise InvalidParams(f"params.resolution: {exc}") from None
        if n_model is not None and n != n_model:
            raise InvalidParams(
                f"params.resolution: model {model.id} was trained on {n_model}³ and a hit3d "
                f"rollout runs on the model's grid; omit resolution or give {n_model}."
            )
    else:
        n = n_model or flow.default_n
    data["resolution"] = int(n)
    data["flow"] = flow.name
    return data
