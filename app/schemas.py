"""Request and response schemas of the REST API (separate from the ORM tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from app.jobkinds import submittable


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("*", when_used="json")
    def _utc(self, value: Any) -> Any:
        # Stored naive UTC; say so on the wire.
        if isinstance(value, datetime):
            return value.isoformat() + "Z"
        return value


class Health(BaseModel):
    status: str
    database: str
    broker: str


class InitialConditionOut(Out):
    id: str
    name: str
    flow: str
    shape: list[int]
    fields: list[str]
    stats: dict[str, float]
    created_at: datetime


class DatasetOut(Out):
    id: str
    name: str
    flow: str
    shape: list[int]
    params: dict[str, Any]
    job_id: str | None
    created_at: datetime


class ModelOut(Out):
    id: str
    name: str
    arch: str
    flow: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    parameter_count: int
    resolution: int
    interval: float
    dataset_id: str | None
    job_id: str | None
    created_at: datetime


class RolloutOut(Out):
    id: str
    job_id: str
    model_id: str | None
    initial_condition_id: str | None
    flow: str
    steps: int
    interval: float
    resolution: int
    frames: int = 0
    status: str = ""
    created_at: datetime


class RolloutDetail(RolloutOut):
    """A rollout with what it holds: ``kind`` "rollout" (one model) or "compare" (several),
    and its ``sources``, the names the frames endpoint takes."""

    kind: str = "rollout"
    sources: list[dict[str, Any]] = Field(default_factory=list)


class JobOut(Out):
    id: str
    kind: str
    status: str
    queue: str
    params: dict[str, Any]
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any]
    attempts: int
    worker: str | None = None
    parent_id: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobCreated(BaseModel):
    id: str
    kind: str
    status: str


class EventOut(Out):
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


class JobCreate(BaseModel):
    kind: str = Field(
        description="A registered job kind; its parameters are validated by the kind.",
        # The registry decides the kinds, so the schema lists them when it is generated.
        json_schema_extra=lambda schema: schema.update(enum=list(submittable())),
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind: str) -> str:
        if kind not in submittable():
            raise ValueError(
                f"unknown job kind {kind!r}; expected one of {', '.join(submittable())}"
            )
        return kind
