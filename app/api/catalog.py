"""Datasets and models: what jobs produced."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query

from app.api import items
from app.api.errors import errors
from app.db.tables import Dataset, Model
from app.schemas import DatasetOut, DeletedOut, ItemPatch, LineageOut, ModelFitDetail, ModelOut
from app.security import current_user
from app.services import catalog, model_fit
from app.services.auth import Principal
from app.state import AppState, get_state

router = APIRouter(tags=["datasets and models"])


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(state: AppState = Depends(get_state)) -> list[Dataset]:
    with state.db.session() as session:
        return catalog.dataset_rows(session)


@router.get(
    "/datasets/{dataset_id}",
    response_model=DatasetOut,
    responses=errors((404, "There is no dataset with that id.")),
)
def get_dataset(dataset_id: str, state: AppState = Depends(get_state)) -> Dataset:
    with state.db.session() as session:
        row = catalog.dataset_row(session, dataset_id)
    if row is None:
        raise HTTPException(404, f"There is no dataset with id {dataset_id!r}.")
    return row


@router.get("/models", response_model=list[ModelOut])
def list_models(state: AppState = Depends(get_state)) -> list[Model]:
    with state.db.session() as session:
        return catalog.model_rows(session)


@router.get(
    "/models/{model_id}",
    response_model=ModelOut,
    responses=errors((404, "There is no model with that id.")),
)
def get_model(model_id: str, state: AppState = Depends(get_state)) -> Model:
    with state.db.session() as session:
        row = catalog.model_row(session, model_id)
    if row is None:
        raise HTTPException(404, f"There is no model with id {model_id!r}.")
    return row


@router.get(
    "/models/{model_id}/fit",
    response_model=ModelFitDetail,
    responses=errors(
        (404, "There is no model, or no initial condition, with that id."),
        (
            422,
            "The initial condition is of another flow than the model, or either is a "
            "channel flow (input statistics are of 2D vorticity).",
        ),
    ),
)
def get_model_fit(
    model_id: str,
    initial_condition_id: str = Query(..., description="The initial condition to place."),
    state: AppState = Depends(get_state),
) -> dict:
    """Whether the initial condition is far from the model's training data: its energy,
    enstrophy, spectrum slope and amplitude against the ranges the model saw in training,
    with a sentence naming what is far and by how much."""
    try:
        return model_fit.model_fit(state, model_id, initial_condition_id)
    except model_fit.FitError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.patch(
    "/datasets/{dataset_id}",
    response_model=DatasetOut,
    responses=items.patch_responses("dataset"),
)
def patch_dataset(
    dataset_id: str,
    body: ItemPatch,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> Dataset:
    """Rename the dataset, or replace its tags or notes (fields left out stay)."""
    return items.patch(state, "dataset", dataset_id, body, user)


@router.delete(
    "/datasets/{dataset_id}",
    response_model=DeletedOut,
    responses=items.delete_responses("dataset"),
)
def delete_dataset(
    dataset_id: str,
    cascade: bool = items.cascade_param(),
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> DeletedOut:
    """Delete the dataset and its files (the HDF5 file and its shards). A dataset that
    models were trained on, or that jobs used, is refused (409, naming them) unless
    ``cascade=true``, which deletes them too (and says what went)."""
    return items.delete(state, "dataset", dataset_id, cascade, user)


@router.get(
    "/datasets/{dataset_id}/lineage",
    response_model=LineageOut,
    responses=items.lineage_responses("dataset"),
)
def dataset_lineage(dataset_id: str, state: AppState = Depends(get_state)) -> LineageOut:
    """The job that made the dataset, and the jobs and models that used it."""
    return items.lineage_of(state, "dataset", dataset_id)


@router.patch(
    "/models/{model_id}", response_model=ModelOut, responses=items.patch_responses("model")
)
def patch_model(
    model_id: str,
    body: ItemPatch,
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> Model:
    """Rename the model, or replace its tags or notes (fields left out stay)."""
    return items.patch(state, "model", model_id, body, user)


@router.delete(
    "/models/{model_id}", response_model=DeletedOut, responses=items.delete_responses("model")
)
def delete_model(
    model_id: str,
    cascade: bool = items.cascade_param(),
    state: AppState = Depends(get_state),
    user: Principal | None = Depends(current_user),
) -> DeletedOut:
    """Delete the model and its folder. A model that rollouts, comparisons or fine-tuning
    used is refused (409, naming them) unless ``cascade=true``, which deletes those runs
    (with their rollout files and exports) too."""
    return items.delete(state, "model", model_id, cascade, user)


@router.get(
    "/models/{model_id}/lineage",
    response_model=LineageOut,
    responses=items.lineage_responses("model"),
)
def model_lineage(model_id: str, state: AppState = Depends(get_state)) -> LineageOut:
    """The training job and dataset the model came from, and the runs that used it."""
    return items.lineage_of(state, "model", model_id)
