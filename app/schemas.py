"""Request and response schemas of the REST API (separate from the ORM tables)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)
from typing_extensions import TypedDict

from app.jobkinds import submittable


class ErrorItem(BaseModel):
    """One invalid part of a request, as request validation found it."""

    loc: list[str | int] = Field(
        description="Where: the part of the request ('body', 'query', 'path', …) and the "
        "field's path in it."
    )
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of error, e.g. 'missing' or 'int_parsing'.")


class ErrorOut(BaseModel):
    """Every error response (4xx and 5xx) has this shape. ``detail`` is a sentence for a
    person; ``errors`` comes with a 422 from request validation and lists each invalid
    field."""

    detail: str = Field(description="What went wrong, as a sentence.")
    errors: list[ErrorItem] | None = Field(
        default=None, description="Request validation only: each invalid field."
    )


def _utc_text(value: datetime) -> str:
    # Stored naive UTC; say so on the wire.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


# A time on the wire: ISO 8601 in UTC with a "Z" (typed, so the response schema says so).
UtcTime = Annotated[
    datetime,
    PlainSerializer(_utc_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Health(BaseModel):
    status: str
    database: str
    broker: str


# Typed dicts (``typing_extensions.TypedDict``, which pydantic needs on Python < 3.12) for
# the sparse objects the API passes through from what the workers recorded: a key missing
# from the stored object stays missing in the response (no nulls added), and the schema
# still types every key it may hold.


class InitialConditionStats(TypedDict, total=False, extra_items=float):
    """Scalar statistics of an uploaded snapshot, all numbers. A 2D vorticity field has
    ``min``, ``max``, ``mean``, ``std``, ``kinetic_energy`` and ``enstrophy``; a channel
    velocity snapshot ``nu`` (with ``nu_source``: 0 the file, 1 the form, 2 1/Re_τ from the
    file, 3 the default 1/180; ``nu_assumed`` 1 when ν was inferred), ``lx``/``lz`` (with
    ``lx_assumed``/``lz_assumed``), ``min_u``, ``max_u``, ``kinetic_energy``, ``wall_units``
    (1 when the mean wall shear is positive) and then the wall units ``u_tau``, ``re_tau``,
    ``tau_wall``, ``bulk_u_plus``, ``centreline_u_plus``, ``stress_balance_error``; and
    ``re_tau_nominal`` when the file gave one. A hit3d snapshot has the HIT statistics
    (``energy``/``kinetic_energy``, ``dissipation``, ``taylor_reynolds``, ``divergence_max``,
    …), ``nu`` with ``nu_source`` (0 the file, 1 the form, 2 the flow's), ``length`` and
    ``leray_projected`` (1 when the stored field is the divergence-free part of the upload)
    with ``divergence_relative_uploaded``. A flow added later may add numbers."""

    min: float
    max: float
    mean: float
    std: float
    kinetic_energy: float
    enstrophy: float
    nu: float
    nu_source: float
    nu_assumed: float
    lx: float
    lz: float
    lx_assumed: float
    lz_assumed: float
    min_u: float
    max_u: float
    wall_units: float
    u_tau: float
    re_tau: float
    tau_wall: float
    bulk_u_plus: float
    centreline_u_plus: float
    stress_balance_error: float
    re_tau_nominal: float


class FitItem(BaseModel):
    """One statistic of a field against a model's training inputs."""

    stat: str = Field(description="energy, enstrophy, spectrum_slope or amplitude.")
    value: float = Field(description="The field's value.")
    min: float = Field(description="The smallest the model saw in training.")
    max: float = Field(description="The largest the model saw in training.")
    factor: float | None = Field(
        default=None, description="Scale statistics: how many times outside the range (1 inside)."
    )
    distance: float | None = Field(
        default=None, description="The slope: how far outside the range (0 inside)."
    )
    far: bool
    text: str


class ModelFitOut(BaseModel):
    """How a 2D field sits against a model's training inputs (``models.input_stats``):
    far when a scale statistic (energy, enstrophy, 99th percentile of |ω|) is more than 2×
    outside the range seen in training, or the spectrum slope more than 1 outside it."""

    model_id: str
    model_name: str
    known: bool = Field(description="False when the model recorded no training statistics.")
    far: bool
    items: list[FitItem]
    message: str = Field(
        description="'far from <model>'s training data: energy 3.2× the largest it saw; …', "
        "or '' when nothing is far."
    )


class ModelFitDetail(ModelFitOut):
    initial_condition_id: str
    field: dict[str, float] = Field(
        description="The field's statistics: energy, enstrophy, spectrum_slope, amplitude."
    )


class InitialConditionOut(Out):
    id: str
    name: str
    flow: str
    shape: list[int] = Field(
        description="(ny, nx) for a 2D field; (3, nx, ny, nz) for a channel or hit3d snapshot."
    )
    fields: list[str]
    stats: InitialConditionStats
    created_at: UtcTime
    tags: list[str] = Field(default_factory=list, description="A user's labels (PATCH).")
    notes: str = Field(default="", description="A user's notes (PATCH).")
    model_fit: list[ModelFitOut] = Field(
        default_factory=list,
        description="On upload only: the models of its flow whose training data the field is "
        "far from (GET /api/models/{id}/fit?initial_condition_id= asks any one model).",
    )


class DatasetOut(Out):
    id: str
    name: str
    flow: str
    shape: list[int]
    params: dict[str, Any] = Field(
        description="How the data was made: the generator's parameters (flow, interval, nu, "
        "resolution, …), as the generate job recorded them."
    )
    job_id: str | None
    created_at: UtcTime
    tags: list[str] = Field(default_factory=list, description="A user's labels (PATCH).")
    notes: str = Field(default="", description="A user's notes (PATCH).")


class ModelOut(Out):
    id: str
    name: str
    arch: str
    flow: str
    config: dict[str, Any] = Field(
        description="The architecture's configuration (its keys depend on ``arch``)."
    )
    metrics: dict[str, Any] = Field(description="What training recorded about the model.")
    parameter_count: int
    resolution: int
    interval: float
    dataset_id: str | None
    job_id: str | None
    created_at: UtcTime
    tags: list[str] = Field(default_factory=list, description="A user's labels (PATCH).")
    notes: str = Field(default="", description="A user's notes (PATCH).")


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
    created_at: UtcTime


class Source(TypedDict, extra_items=Any):
    """A frame source of a rollout: its ``name`` (what ``/frames/{k}?source=`` takes), its
    ``role`` and the grid it is stored on; model and error sources also say which model
    and at which precision (and a comparison's entries their ``index`` and ``label``)."""

    name: str
    role: Annotated[str, Field(description="'reference', 'model' or 'error'.")]
    resolution: int
    index: NotRequired[int]
    model_id: NotRequired[str | None]
    precision: NotRequired[str]
    label: NotRequired[str]


class RolloutDetail(RolloutOut):
    """A rollout with what it holds: ``kind`` "rollout" (one model) or "compare" (several),
    and its ``sources``, the names the frames endpoint takes."""

    kind: str = Field(default="rollout", description="'rollout' (one model) or 'compare'.")
    sources: list[Source] = Field(default_factory=list)


class ReferenceMetrics(TypedDict, total=False):
    """A comparison step's reference solver: its energy, enstrophy, energy spectrum (on the
    shells ``k``) and the wall time of its advance (null at step 0)."""

    energy: float | None
    enstrophy: float | None
    spectrum: list[float | None] | None
    ms: float | None


class BandErrors(TypedDict, total=False):
    """‖P_b(model − reference)‖/‖reference‖ over the low, mid and high wavenumber bands."""

    low: float | None
    mid: float | None
    high: float | None


class ModelMetrics(TypedDict, total=False, extra_items=Any):
    """A comparison step's entry: errors against the reference (null without one), its own
    energy, enstrophy and spectrum, the wall time of its call, and its status ('running',
    'diverged' or 'failed') with a message. Every number is null once the entry stopped."""

    rel_l2: float | None
    rel_h1: float | None
    corr: float | None
    energy: float | None
    enstrophy: float | None
    spectrum: list[float | None] | None
    band_errors: BandErrors | None
    ms: float | None
    status: str
    message: str | None


class MetricsRow(TypedDict, extra_items=Any):
    """One step of a rollout's metrics, with the ``seq`` of its event (the next page's
    ``after``). Which keys a row has depends on the run:

    * a 2D rollout: ``energy_reference``, ``enstrophy_reference``, ``k`` and
      ``spectrum_reference``, and with a model ``rel_l2``, ``energy_model``,
      ``enstrophy_model``, ``spectrum_model``;
    * a channel rollout: ``energy_reference``, and with a model ``rel_l2``, ``energy_model``;
    * a comparison: ``type`` "metrics", ``reference`` (null without a reference solver),
      ``k`` and ``models``, one entry per compared model keyed by its index.

    Every runner records ``step`` and ``t`` (the row's time); numbers a run could not
    compute (a diverged model's NaN or Inf) are null."""

    seq: int
    step: NotRequired[int]
    t: NotRequired[float]
    type: NotRequired[str]
    energy_reference: NotRequired[float | None]
    enstrophy_reference: NotRequired[float | None]
    k: NotRequired[list[int]]
    spectrum_reference: NotRequired[list[float | None]]
    rel_l2: NotRequired[float | None]
    energy_model: NotRequired[float | None]
    enstrophy_model: NotRequired[float | None]
    spectrum_model: NotRequired[list[float | None]]
    reference: NotRequired[ReferenceMetrics | None]
    models: NotRequired[dict[str, ModelMetrics]]


class JobOut(Out):
    id: str
    kind: str
    status: str
    queue: str
    params: dict[str, Any] = Field(description="The parameters as the job's kind validated them.")
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] = Field(
        description="What the job produced (its keys depend on the kind: e.g. rollout_id, "
        "dataset_id, model_id, summary)."
    )
    attempts: int
    worker: str | None = None
    parent_id: str | None = None
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    name: str | None = Field(default=None, description="What a user called the run (PATCH).")
    tags: list[str] = Field(default_factory=list, description="A user's labels (PATCH).")
    notes: str = Field(default="", description="A user's notes (PATCH).")


class JobCreated(BaseModel):
    id: str
    kind: str
    status: str
    warnings: list[str] = Field(
        default_factory=list,
        description="Advice that did not stop the start: for a rollout or comparison from an "
        "uploaded field, one sentence with the numbers per model whose training inputs the "
        "field is far from (GET /api/models/{id}/fit).",
    )


class EventOut(Out):
    seq: int = Field(description="Increasing within a job: the next page's ``after``.")
    type: str
    payload: dict[str, Any] = Field(description="What the event says (its keys depend on type).")
    created_at: UtcTime


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


# --- rename, tags, notes, delete and lineage ---------------------------------------------

MAX_TAGS = 20
MAX_TAG = 40
MAX_NOTES = 10_000

Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG, pattern=r"^[^\s,](?:[^,]*[^\s,])?$")]


class ItemPatch(BaseModel):
    """What ``PATCH`` changes; a field left out stays as it is. ``tags`` replaces the
    list (duplicates dropped, order kept)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"\S",
        description="A new name (not blank).",
    )
    tags: list[Tag] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        description=f"At most {MAX_TAGS} labels of 1 to {MAX_TAG} characters, without commas "
        "or surrounding spaces.",
    )
    notes: str | None = Field(default=None, max_length=MAX_NOTES, description="Free text.")


class ItemRef(BaseModel):
    """One item in a lineage or a deletion: its ``kind`` ('initial_condition', 'dataset',
    'model', 'job' or 'rollout'), id and name; a job's ``job_kind`` and ``status``."""

    kind: str
    id: str
    name: str
    job_kind: str | None = None
    status: str | None = None


class LineageOut(BaseModel):
    """Where an item came from and where it was used: ``came_from`` (what made it or what
    it started from: a dataset's generate job; a model's training job, dataset and base
    model; a job's initial condition, dataset and models), ``made`` (a job's dataset,
    model or rollouts) and ``used_by`` (the jobs that used it, and the models trained on
    a dataset)."""

    item: ItemRef
    came_from: list[ItemRef]
    made: list[ItemRef]
    used_by: list[ItemRef]


class DeletedOut(BaseModel):
    """What a ``DELETE`` removed: the item first, then every dependant a cascade took,
    with a sentence saying so."""

    detail: str
    deleted: list[ItemRef]
