"""What the PATCH, DELETE and lineage routes of every kind of item share (initial
conditions, datasets, models, jobs): the service calls, their errors as HTTP status codes
and the codes each route documents."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Query

from app.api.errors import errors
from app.schemas import DeletedOut, ItemPatch, LineageOut
from app.services import lineage
from app.services.auth import Principal
from app.state import AppState


def cascade_param() -> Any:
    return Query(
        False,
        description="Also delete what depends on the item (the jobs that used it, the models "
        "trained on a dataset, a job's dataset or model); without it such an item is refused "
        "(409) with a sentence naming them.",
    )


def patch_responses(what: str) -> dict[int | str, dict[str, Any]]:
    return errors(
        (403, f"Only the {what}'s owner or an admin may change it; a viewer changes nothing."),
        (404, f"There is no {what} with that id."),
    )


def delete_responses(what: str) -> dict[int | str, dict[str, Any]]:
    return errors(
        (
            403,
            f"Only the {what}'s owner or an admin may delete it (and everything a cascade "
            "would take); a viewer deletes nothing.",
        ),
        (404, f"There is no {what} with that id."),
        (
            409,
            f"The {what} is used by other items and cascade is not set, or a job that uses "
            "it (or the job itself) has not finished: the detail names them.",
        ),
    )


def lineage_responses(what: str) -> dict[int | str, dict[str, Any]]:
    return errors((404, f"There is no {what} with that id."))


def patch(state: AppState, kind: str, item_id: str, body: ItemPatch, user: Principal | None):
    """The changed row (read by the router's response model)."""
    with state.db.session() as session:
        try:
            return lineage.patch(session, kind, item_id, body.model_dump(exclude_none=True), user)
        except lineage.NotFound as exc:
            raise HTTPException(404, str(exc)) from None


def delete(
    state: AppState, kind: str, item_id: str, cascade: bool, user: Principal | None
) -> DeletedOut:
    with state.db.session() as session:
        try:
            out = lineage.delete_item(
                session, state.artifacts, kind, item_id, cascade=cascade, user=user
            )
        except lineage.NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except lineage.Conflict as exc:
            raise HTTPException(409, str(exc)) from None
    return DeletedOut.model_validate(out)


def lineage_of(state: AppState, kind: str, item_id: str) -> LineageOut:
    with state.db.session() as session:
        try:
            return LineageOut.model_validate(lineage.lineage(session, kind, item_id))
        except lineage.NotFound as exc:
            raise HTTPException(404, str(exc)) from None
