"""The hit3d half of the ``compare`` kind's check: 3D models of the three velocity components,
each trained on a hit3d dataset, rolled out side by side beside one reference LES.

One reference must fit every model, so the models' training data must agree on what the
reference takes from them (``reference_key``): the stored grid n³, ν, the closure the frames
need on that grid (``models.pde_loss_hit3d.closure_for``), the forcing and the data's filter
(its kind and width set the Smagorinsky length). Models whose data differ in any of these are
refused with a sentence naming them (we do not silently take the first model's settings).
The start is an uploaded hit3d velocity on that grid, or the flow's random field for ``seed``
(``resolution``, when given, must be the models' n). Dataset starts, a different ν, LES
baselines and the channel-only parameters are refused. The check completes ``resolution``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db.tables import Model
from app.jobkinds.base import InvalidParams
from app.jobkinds.checks import start_initial_condition
from app.jobkinds.rollout_hit3d import training_dataset, velocity_grid
from models.pde_loss_hit3d import closure_for
from models.registry import MODELS, Contract


def reference_key(params: dict[str, Any], n: int) -> dict[str, Any]:
    """What the reference LES takes from a model's training data, compared across models."""
    return {
        "grid": f"{n}³",
        "ν": float(params.get("nu") or 0.0),
        "closure": closure_for(params),
        "forcing": params.get("forcing") or "none",
        "filter": f"{params.get('filter') or 'none'} (width {params.get('filter_width') or 0:g})",
    }


def check_hit3d_compare(
    session: Session,
    params,
    data: dict[str, Any],
    queue: str,
    rows: list[Model],
    contracts: list[Contract],
    flow,
) -> tuple[dict[str, Any], str]:
    """``data`` checked and completed for a hit3d comparison (rows: the models, one flow and
    one interval already checked), or InvalidParams with a sentence naming the parameter."""
    keys = []
    for i, (row, contract) in enumerate(zip(rows, contracts, strict=True)):
        where = f"params.models[{i}].model_id"
        if contract.dims != 3 or contract.channels != 3:
            raise InvalidParams(
                f"{where}: a hit3d comparison runs 3D models of the velocity (u, v, w); model "
                f"{row.id} ({row.arch}) works on {contract.dims}D fields with "
                f"{contract.channels} channel(s)."
            )
        try:
            dataset = training_dataset(session, row)
        except InvalidParams as exc:
            raise InvalidParams(str(exc).replace("params.model_id", where)) from None
        n = int(dataset.shape[2])
        try:
            MODELS[row.arch].config_cls.from_dict(row.config).check_grid((n, n, n))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidParams(
                f"{where}: model {row.id} cannot run on its training grid {n}³: {exc}"
            ) from None
        keys.append(reference_key(dataset.params or {}, n))
    for i, key in enumerate(keys[1:], start=1):
        differ = [name for name in key if key[name] != keys[0][name]]
        if differ:
            listing = "; ".join(f"{name}: {keys[0][name]} vs {key[name]}" for name in differ)
            raise InvalidParams(
                f"params.models: models {rows[0].id} and {rows[i].id} were trained on hit3d data "
                f"that differ in {', '.join(differ)} ({listing}); a hit3d comparison runs one "
                "reference LES for all models, so compare models trained on data of the same "
                "grid, ν, closure, forcing and filter."
            )
    n = int(keys[0]["grid"][:-1])
    if data.get("baselines") or data.get("window") is not None or data.get("drift") is not None:
        raise InvalidParams(
            "params.baselines: LES baselines, window and drift are for channel comparisons; a "
            "hit3d comparison's reference is the LES of the models' training data."
        )
    if data.get("nu") is not None:
        raise InvalidParams(
            "params.nu: a hit3d comparison runs at the ν of the models' training data "
            f"({keys[0]['ν']:g}); leave nu unset."
        )
    if not data.get("reference", True):
        raise InvalidParams(
            "params.reference: a hit3d comparison always runs the reference LES; every "
            "model's error is measured against it."
        )
    if data.get("dataset_id") is not None:
        raise InvalidParams(
            "params.dataset_id: a hit3d comparison starts from an uploaded hit3d velocity "
            "(initial_condition_id) or the flow's random field (seed), not a dataset."
        )
    if data.get("initial_condition_id") is not None:
        ic = start_initial_condition(session, data, flow.name)
        grid = velocity_grid(ic.shape or [])
        if grid != (n, n, n):
            raise InvalidParams(
                f"params.initial_condition_id: the initial condition is on a "
                f"{'×'.join(map(str, grid))} grid, but the models were trained on {n}³ and a "
                "hit3d comparison runs on the models' grid."
            )
    elif data.get("resolution") is not None and int(data["resolution"]) != n:
        raise InvalidParams(
            f"params.resolution: the models were trained on {n}³ and a hit3d comparison runs "
            f"on the models' grid; omit resolution or give {n}."
        )
    data["resolution"] = n
    return data, queue
