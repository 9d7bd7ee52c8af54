"""The registry of job kinds. Each kind is one module here (see ``base.JobKind``); this
file lists them. A deployment adds its own kinds without editing this file by naming
their modules in the ``job_kinds`` setting (``EDDYSCOPE_JOB_KINDS``, comma-separated),
which every process (API, workers, CLI) reads the same way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.jobkinds import limits
from app.jobkinds.base import InvalidParams, JobKind, describe_validation_error
from app.jobkinds.limits import LimitExceeded

if TYPE_CHECKING:
    from app.settings import Settings

BUILTIN = (
    "app.jobkinds.generate",
    "app.jobkinds.generate_shard",
    "app.jobkinds.train",
    "app.jobkinds.finetune",
    "app.jobkinds.rollout",
    "app.jobkinds.compare",
    "app.jobkinds.produce",
)

_KINDS: dict[str, JobKind] = {}


class UnknownKind(InvalidParams):
    pass


def register(kind: JobKind) -> JobKind:
    """Add a kind; a second kind of the same name is refused rather than replacing it."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing is not kind:
        raise ValueError(f"job kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def load(modules: tuple[str, ...] | list[str]) -> None:
    """Import each module and register its ``KIND``."""
    for path in modules:
        module = importlib.import_module(path)
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, JobKind):
            raise ValueError(f"job-kind module {path} defines no KIND = JobKind(...)")
        register(kind)


def _configured() -> list[str]:
    from app.settings import get_settings

    return [m.strip() for m in get_settings().job_kinds.split(",") if m.strip()]


def kinds() -> dict[str, JobKind]:
    """Every registered kind by name, built-in ones first."""
    if not _KINDS:
        load(BUILTIN)
        load(_configured())
    return dict(_KINDS)


def get_kind(name: str) -> JobKind:
    kind = kinds().get(name)
    if kind is None:
        raise UnknownKind(
            f"kind: unknown job kind {name!r}; expected one of {', '.join(submittable())}."
        )
    return kind


def submittable() -> tuple[str, ...]:
    """The kinds a user may submit (the API's, the CLI's and the UI's list)."""
    return tuple(name for name, kind in kinds().items() if kind.submittable)


def coordinators() -> tuple[str, ...]:
    """Kinds whose rows are never sent to a worker (their child jobs are)."""
    return tuple(name for name, kind in kinds().items() if kind.coordinator)


def task_names() -> dict[str, str]:
    """Celery task name of every kind a worker runs."""
    return {name: kind.task for name, kind in kinds().items() if kind.task is not None}


def validate_params(
    session: Session,
    kind: str,
    raw: dict[str, Any],
    *,
    settings: Settings | None = None,
    owner: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The normalised parameters and the queue of a job of ``kind``; raises InvalidParams
    with a sentence: the shape (the kind's pydantic model), then the meaning (its check),
    then the bounds (its limits, and how many jobs ``owner`` has active: the whole server's
    while jobs have no owners), read from ``settings`` (default: the process's)."""
    spec = get_kind(kind)
    if not spec.submittable:
        raise UnknownKind(
            f"kind: {kind!r} jobs are made by other jobs and cannot be submitted; "
            f"expected one of {', '.join(submittable())}."
        )
    try:
        params = spec.params.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParams(describe_validation_error(exc, "params")) from exc
    data = params.model_dump()
    queue = data.pop("queue") or spec.default_queue
    if spec.check is not None:
        data, queue = spec.check(session, params, data, queue)
    settings = limits.settings_or_default(settings)
    if spec.limits is not None:
        spec.limits(session, data, settings)
    limits.check_active_jobs(session, settings, owner)
    return data, queue


__all__ = [
    "InvalidParams",
    "JobKind",
    "LimitExceeded",
    "UnknownKind",
    "coordinators",
    "get_kind",
    "kinds",
    "register",
    "submittable",
    "task_names",
    "unregister",
    "validate_params",
]
