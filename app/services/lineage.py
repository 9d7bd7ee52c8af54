"""Where each item came from and where it was used, and the edits and deletions that follow
that graph: rename, tags and notes (``patch``), and ``delete`` with its refusal or cascade.

The items are initial conditions, datasets, models and jobs (runs); a job's rollouts and
comparisons are part of it. The edges are what the rows record:

* a dataset was made by its generate job (``Dataset.job_id``);
* a model was made by its training or fine-tuning job (``Model.job_id``) from a dataset
  (``Model.dataset_id``), and a fine-tuned model from its base model (the job's
  ``params.model_id``);
* a job used what its parameters name: ``initial_condition_id``, ``dataset_id`` (except a
  generate job's, which is the dataset it makes), ``model_id`` and ``models[].model_id``;
* a job made its dataset, its model and its rollouts.

Deleting an item takes what depends on it (the jobs that used it, the models trained on
a dataset, a job's dataset or model) only when asked (``cascade``); otherwise it is
refused with a sentence naming them. A job that has not finished is never deleted, nor
is anything it uses: cancel it first. Rows go in one transaction; then their files do
(initial condition files, datasets' HDF5 and shards, model folders, rollout files and
export caches, training checkpoints), never a file another remaining row points at.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.artifacts import ArtifactStore
from app.db.tables import Dataset, InitialCondition, Job, JobEvent, Model, Rollout
from app.jobs import FINAL
from app.services import auth

log = logging.getLogger("eddyscope")

TABLES: dict[str, Any] = {
    "initial_condition": InitialCondition,
    "dataset": Dataset,
    "model": Model,
    "job": Job,
}
LABELS = {
    "initial_condition": ("initial condition", "initial conditions"),
    "dataset": ("dataset", "datasets"),
    "model": ("model", "models"),
    "job": ("run", "runs"),
    "rollout": ("rollout", "rollouts"),
}
JOB_NAMES = {
    "generate": "Generate",
    "generate-shard": "Shard",
    "train": "Train",
    "finetune": "Fine-tune",
    "rollout": "Rollout",
    "compare": "Compare",
}
# Kinds whose parameters name what they use (a generate job's dataset_id is its product).
USING_KINDS = ("rollout", "compare", "train", "finetune")


class NotFound(LookupError):
    """There is no such item (404)."""


class Conflict(ValueError):
    """The item cannot be deleted as asked (409); the message says why and what to do."""


# --- names and references ---------------------------------------------------------------


def job_title(job: Job) -> str:
    """A run's name: the one a user gave it, else its kind and short id."""
    return job.name or f"{JOB_NAMES.get(job.kind, job.kind)} {job.id[:8]}"


def title(kind: str, row: Any) -> str:
    if kind == "job":
        return job_title(row)
    if kind == "rollout":
        return f"{row.kind} {row.id[:8]}"
    return row.name


def ref(kind: str, row: Any) -> dict[str, Any]:
    out = {"kind": kind, "id": row.id, "name": title(kind, row), "job_kind": None, "status": None}
    if kind == "job":
        out |= {"job_kind": row.kind, "status": row.status}
    return out


def describe(kind: str, row: Any) -> str:
    """``model 'demo' (3f2a…)`` as a sentence names it."""
    return f"{LABELS[kind][0]} {_named(kind, row)}"


def _named(kind: str, row: Any) -> str:
    name = title(kind, row)
    return f"{name!r}" + ("" if row.id[:8] in name else f" ({row.id[:8]})")


def describe_all(items: Iterable[tuple[str, Any]]) -> str:
    """``2 models (…, …) and 1 run (…)``, grouped by kind in a fixed order."""
    groups: dict[str, list[Any]] = {}
    for kind, row in items:
        groups.setdefault(kind, []).append(row)
    parts = []
    for kind in ("model", "dataset", "initial_condition", "job"):
        rows = groups.get(kind)
        if not rows:
            continue
        one, many = LABELS[kind]
        names = ", ".join(_named(kind, r) for r in rows[:8])
        more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
        parts.append(f"{len(rows)} {one if len(rows) == 1 else many} ({names}{more})")
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# --- the edges --------------------------------------------------------------------------


def job_inputs(job: Job) -> list[tuple[str, str]]:
    """What a job's parameters say it used: (kind, id) pairs, in a stable order."""
    p = job.params or {}
    out: list[tuple[str, str]] = []
    if p.get("initial_condition_id"):
        out.append(("initial_condition", str(p["initial_condition_id"])))
    if p.get("dataset_id") and job.kind != "generate":
        out.append(("dataset", str(p["dataset_id"])))
    if p.get("model_id"):
        out.append(("model", str(p["model_id"])))
    for entry in p.get("models") or []:
        if isinstance(entry, dict) and entry.get("model_id"):
            pair = ("model", str(entry["model_id"]))
            if pair not in out:
                out.append(pair)
    return out


def jobs_using(session: Session, kind: str, item_id: str) -> list[Job]:
    """The top-level jobs whose parameters name the item, newest first."""
    rows = session.scalars(
        select(Job)
        .where(Job.parent_id.is_(None), Job.kind.in_(USING_KINDS))
        .order_by(Job.created_at.desc())
    )
    return [job for job in rows if (kind, item_id) in job_inputs(job)]


def job_products(session: Session, job: Job) -> list[tuple[str, Any]]:
    """The dataset or model a job made (the items of their own), not its rollouts."""
    out: list[tuple[str, Any]] = []
    for d in session.scalars(select(Dataset).where(Dataset.job_id == job.id)):
        out.append(("dataset", d))
    for m in session.scalars(select(Model).where(Model.job_id == job.id)):
        out.append(("model", m))
    return out


def job_rollouts(session: Session, job_ids: list[str]) -> list[Rollout]:
    if not job_ids:
        return []
    return list(session.scalars(select(Rollout).where(Rollout.job_id.in_(job_ids))))


def _get(session: Session, kind: str, item_id: str) -> Any:
    row = session.get(TABLES[kind], item_id)
    if row is None:
        raise NotFound(f"There is no {LABELS[kind][0]} with id {item_id!r}.")
    return row


def lineage(session: Session, kind: str, item_id: str) -> dict[str, Any]:
    """``{"item", "came_from", "made", "used_by"}``, each a list of ``ref`` dicts;
    raises NotFound."""
    row = _get(session, kind, item_id)
    came_from: list[dict[str, Any]] = []
    made: list[dict[str, Any]] = []
    used_by: list[dict[str, Any]] = []

    def add_job(target: list, job_id: str | None) -> Job | None:
        job = session.get(Job, job_id) if job_id else None
        if job is not None:
            target.append(ref("job", job))
        return job

    if kind in ("dataset", "model"):
        origin = add_job(came_from, row.job_id)
        if kind == "model":
            if row.dataset_id and (d := session.get(Dataset, row.dataset_id)) is not None:
                came_from.append(ref("dataset", d))
            base = (origin.params or {}).get("model_id") if origin is not None else None
            base_row = session.get(Model, base) if base and origin.kind == "finetune" else None
            if base_row is not None:
                came_from.append(ref("model", base_row))
    if kind == "job":
        for input_kind, input_id in job_inputs(row):
            found = session.get(TABLES[input_kind], input_id)
            if found is not None:
                came_from.append(ref(input_kind, found))
        made += [ref(k, r) for k, r in job_products(session, row)]
        made += [ref("rollout", r) for r in job_rollouts(session, [row.id])]
        for product_kind, product in job_products(session, row):
            used_by += [ref("job", j) for j in jobs_using(session, product_kind, product.id)]
    else:
        if kind == "dataset":
            used_by += [
                ref("model", m)
                for m in session.scalars(
                    select(Model).where(Model.dataset_id == row.id).order_by(Model.created_at)
                )
            ]
        used_by += [ref("job", j) for j in jobs_using(session, kind, row.id)]
    return {"item": ref(kind, row), "came_from": came_from, "made": made, "used_by": used_by}


# --- rename, tags, notes ----------------------------------------------------------------


def clean_tags(tags: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def patch(
    session: Session,
    kind: str,
    item_id: str,
    changes: dict[str, Any],
    user: auth.Principal | None = None,
) -> Any:
    """Apply ``name``, ``tags`` and ``notes`` (each optional) and commit; returns the row.
    Raises NotFound, or ``auth.Forbidden`` unless the user may change the item."""
    row = _get(session, kind, item_id)
    auth.require_change(row.owner_id, f"this {LABELS[kind][0]}", user)
    if changes.get("name") is not None:
        row.name = changes["name"].strip()
    if changes.get("tags") is not None:
        row.tags = clean_tags(changes["tags"])
    if changes.get("notes") is not None:
        row.notes = changes["notes"]
    session.commit()
    return row


# --- delete -----------------------------------------------------------------------------


def dependants(session: Session, kind: str, row: Any) -> list[tuple[str, Any]]:
    """What would lose its source if the item went: the jobs that used it, the models
    trained on a dataset, a job's dataset or model (a job's rollouts are part of it)."""
    out: list[tuple[str, Any]] = []
    if kind == "dataset":
        query = select(Model).where(Model.dataset_id == row.id).order_by(Model.created_at)
        out += [("model", m) for m in session.scalars(query)]
    if kind in ("initial_condition", "dataset", "model"):
        out += [("job", j) for j in jobs_using(session, kind, row.id)]
    if kind == "job":
        out += job_products(session, row)
    return out


@dataclass
class Plan:
    """An item and every dependant it takes with it (closed under ``dependants``)."""

    item: tuple[str, Any]
    taken: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def everything(self) -> list[tuple[str, Any]]:
        return [self.item, *self.taken]


def plan(session: Session, kind: str, item_id: str) -> Plan:
    row = _get(session, kind, item_id)
    result = Plan((kind, row))
    seen = {(kind, row.id)}
    queue = [(kind, row)]
    while queue:
        for dep_kind, dep in dependants(session, *queue.pop(0)):
            if (dep_kind, dep.id) not in seen:
                seen.add((dep_kind, dep.id))
                result.taken.append((dep_kind, dep))
                queue.append((dep_kind, dep))
    return result


def _active(status: str) -> bool:
    return status not in FINAL


def check(
    session: Session, the_plan: Plan, cascade: bool, user: auth.Principal | None = None
) -> None:
    """Raise ``auth.Forbidden`` or ``Conflict`` unless the plan may go ahead."""
    kind, row = the_plan.item
    auth.require_change(row.owner_id, f"this {LABELS[kind][0]}", user)
    if kind == "job" and row.parent_id:
        raise Conflict(
            f"Job {row.id[:8]} is a shard of job {row.parent_id[:8]}: delete that job instead."
        )
    if kind == "job" and _active(row.status):
        raise Conflict(
            f"The {describe(kind, row)} is {row.status}: cancel it first "
            f"(POST /api/jobs/{row.id}/cancel), then delete it."
        )
    running = [(k, r) for k, r in the_plan.taken if k == "job" and _active(r.status)]
    if running:
        raise Conflict(
            f"The {describe(kind, row)} is in use by {describe_all(running)}, not finished: "
            "cancel them first, then delete it."
        )
    direct = dependants(session, kind, row)
    if direct and not cascade:
        further = len(the_plan.taken) - len(direct)
        also = f" (and, through them, {further} more)" if further > 0 else ""
        raise Conflict(
            f"The {describe(kind, row)} is used by {describe_all(direct)}{also}: delete "
            "them first, or delete with cascade=true to delete them too."
        )
    for dep_kind, dep in the_plan.taken:
        if not auth.may_change(user if user is not None else auth.current_user(), dep.owner_id):
            raise auth.Forbidden(
                f"Deleting the {describe(kind, row)} would also delete the "
                f"{describe(dep_kind, dep)}, which only its owner or an admin can change."
            )


def _files(session: Session, artifacts: ArtifactStore, the_plan: Plan) -> list[str]:
    """The artifact paths (relative to the store) the plan's items own."""
    paths: list[str] = []
    jobs = [r for k, r in the_plan.everything if k == "job"]
    for kind, row in the_plan.everything:
        if kind in ("initial_condition", "model"):
            paths.append(row.path)
        elif kind == "dataset":
            paths += [row.path, f"datasets/{row.id}"]
        elif kind == "job":
            paths.append(artifacts.training_checkpoints(row.id))
            planned = (row.params or {}).get("dataset_id")
            if row.kind == "generate" and planned and session.get(Dataset, planned) is None:
                # A generate job that never joined its dataset: its shards' files.
                paths += [artifacts.dataset(planned), f"datasets/{planned}"]
    for rollout in job_rollouts(session, [j.id for j in jobs]):
        paths.append(rollout.path)
        exports = artifacts.resolve("exports")
        if exports.is_dir():
            paths += [f"exports/{p.name}" for p in exports.glob(f"{rollout.id}.*")]
    return paths


def _still_used(session: Session, relative: str) -> bool:
    """Whether a remaining row points at this file (never delete another item's file)."""
    for table in (InitialCondition, Dataset, Model, Rollout):
        if session.scalar(select(func.count()).where(table.path == relative)):
            return True
    return False


def _remove(artifacts: ArtifactStore, relative: str) -> bool:
    try:
        path = artifacts.resolve(relative)
    except ValueError:
        log.warning("not deleting %r: outside the artifact store", relative)
        return False
    if path == artifacts.root:
        return False
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            return False
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)
        return False
    return True


def delete_item(
    session: Session,
    artifacts: ArtifactStore,
    kind: str,
    item_id: str,
    *,
    cascade: bool = False,
    user: auth.Principal | None = None,
) -> dict[str, Any]:
    """Delete the item (and with ``cascade`` its dependants) and their files; returns
    ``{"detail", "deleted"}``. Raises NotFound, ``auth.Forbidden`` or Conflict."""
    the_plan = plan(session, kind, item_id)
    check(session, the_plan, cascade, user)
    everything = the_plan.everything
    deleted = [ref(k, r) for k, r in everything]
    files = _files(session, artifacts, the_plan)
    ids = {k: [r.id for kk, r in everything if kk == k] for k in TABLES}
    job_ids = ids["job"]
    shard_ids = (
        list(session.scalars(select(Job.id).where(Job.parent_id.in_(job_ids)))) if job_ids else []
    )
    every_job = job_ids + shard_ids
    if every_job:
        session.execute(delete(JobEvent).where(JobEvent.job_id.in_(every_job)))
        session.execute(delete(Rollout).where(Rollout.job_id.in_(every_job)))
        # Rows of what remains that point at what goes (SET NULL, as the foreign keys say).
        for table in (Dataset, Model):
            session.execute(
                table.__table__.update().where(table.job_id.in_(every_job)).values(job_id=None)
            )
        if shard_ids:
            session.execute(delete(Job).where(Job.id.in_(shard_ids)))
        session.execute(delete(Job).where(Job.id.in_(job_ids)))
    if ids["model"]:
        session.execute(
            Rollout.__table__.update()
            .where(Rollout.model_id.in_(ids["model"]))
            .values(model_id=None)
        )
        session.execute(delete(Model).where(Model.id.in_(ids["model"])))
    if ids["dataset"]:
        session.execute(
            Model.__table__.update()
            .where(Model.dataset_id.in_(ids["dataset"]))
            .values(dataset_id=None)
        )
        session.execute(delete(Dataset).where(Dataset.id.in_(ids["dataset"])))
    if ids["initial_condition"]:
        session.execute(
            Rollout.__table__.update()
            .where(Rollout.initial_condition_id.in_(ids["initial_condition"]))
            .values(initial_condition_id=None)
        )
        session.execute(
            delete(InitialCondition).where(InitialCondition.id.in_(ids["initial_condition"]))
        )
    session.commit()
    removed = 0
    for relative in dict.fromkeys(files):
        if not _still_used(session, relative) and _remove(artifacts, relative):
            removed += 1
    detail = f"Deleted the {describe(*the_plan.item)}"
    if the_plan.taken:
        detail += f" and, with it, {describe_all(the_plan.taken)}"
    detail += f" ({removed} {'file or folder' if removed == 1 else 'files or folders'} removed)."
    return {"detail": detail, "deleted": deleted}


# --- for the pages ----------------------------------------------------------------------


def editable(session: Session, kind: str, item_id: str) -> dict[str, Any]:
    """An item's name, tags and notes as the edit form shows them; raises NotFound."""
    row = _get(session, kind, item_id)
    return {
        "name": row.name or "",
        "title": title(kind, row),
        "tags": list(row.tags or []),
        "notes": row.notes or "",
    }


def preview_delete(
    session: Session, kind: str, item_id: str, user: auth.Principal | None = None
) -> dict[str, Any]:
    """What deleting the item would take: ``{"item", "taken", "blocked"}``, ``taken`` the
    dependants a cascade deletes too (refs), ``blocked`` the sentence of a refusal that a
    cascade would not lift (a running job, another owner's item), else None."""
    the_plan = plan(session, kind, item_id)
    blocked = None
    try:
        check(session, the_plan, True, user)
    except (Conflict, auth.Forbidden) as exc:
        blocked = str(exc)
    return {
        "item": ref(*the_plan.item),
        "taken": [ref(k, r) for k, r in the_plan.taken],
        "blocked": blocked,
        "sentence": describe_all(the_plan.taken),
    }
