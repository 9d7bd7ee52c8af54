"""What a job kind is: its parameters, the checks of what they mean, the queue it goes to,
the worker function that runs it, and the hooks of kinds that coordinate other jobs.

A kind is one module in ``app/jobkinds/`` that defines ``KIND = JobKind(...)``, plus its
module path in the registry (``app.jobkinds.BUILTIN``, or the ``job_kinds`` setting). The
API's list of kinds, the Celery task names, the worker's runner table and the CLI's
commands are all read from the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.artifacts import ArtifactStore
    from app.db.session import Database
    from app.db.tables import Job
    from app.settings import Settings

QUEUES = ("gpu", "cpu")


class InvalidParams(ValueError):
    """Parameters that are well-formed but mean something impossible; the text is the
    sentence the user sees (HTTP 422)."""


class JobParams(BaseModel):
    """The base of every kind's parameters: unknown keys are refused, the queue may be
    overridden."""

    model_config = ConfigDict(extra="forbid")
    queue: Literal["gpu", "cpu"] | None = Field(
        default=None, description="Override the queue the job is sent to."
    )


# check(session, params, data, queue) -> (data, queue): ``params`` is the validated model,
# ``data`` its dict (without ``queue``) which the check may complete (e.g. resolve defaults
# so the job row says what ran), ``queue`` the queue chosen so far. Raises InvalidParams.
Check = Callable[["Session", Any, dict[str, Any], str], tuple[dict[str, Any], str]]
# limits(session, data, settings): after the check, refuses (app.jobkinds.limits.LimitExceeded)
# work over the server's limits, read from ``settings``: trajectories, shards, steps × grid…
Limits = Callable[["Session", dict[str, Any], "Settings"], None]
# submit(db, dispatcher, params, queue) -> the job row; for kinds that are more than one row.
Submit = Callable[["Database", Any, dict[str, Any], str], "Job"]
# after_finish(db, artifacts, job_id): run by the worker once the job's row is final.
AfterFinish = Callable[["Database", "ArtifactStore", str], None]


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    ``params`` is None for kinds only other jobs create (a shard of a generate job); such
    kinds cannot be submitted. ``task`` is the Celery task name; None marks a coordinator,
    a row that is never sent to a worker (its children are). ``runner`` names the worker
    function as ``"module:function"``; the worker imports it when a job of the kind runs,
    so the API never loads torch models. ``limits`` refuses work over the server's limits
    (``app.jobkinds.limits``), after ``check``.
    """

    name: str
    description: str
    params: type[JobParams] | None
    task: str | None
    runner: str | None
    check: Check | None = None
    limits: Limits | None = None
    submit: Submit | None = None
    after_finish: AfterFinish | None = None
    default_queue: str = "gpu"

    def __post_init__(self) -> None:
        if self.default_queue not in QUEUES:
            raise ValueError(f"{self.name}: default_queue must be one of {QUEUES}")
        if (self.task is None) != (self.runner is None):
            raise ValueError(f"{self.name}: a kind has both a task and a runner, or neither")
        if self.runner is not None and ":" not in self.runner:
            raise ValueError(f"{self.name}: runner must read 'module:function'")

    @property
    def submittable(self) -> bool:
        return self.params is not None

    @property
    def coordinator(self) -> bool:
        return self.task is None


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One sentence naming each wrong parameter, as ``params.steps: …; params.x: …``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "is not a parameter of this kind of job"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) + "."
