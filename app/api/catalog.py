"""Datasets and models: what jobs produced."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from app.api.errors import errors
from app.db.tables import Dataset, Model
from app.schemas import DatasetOut, ModelOut
from app.services import catalog
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
