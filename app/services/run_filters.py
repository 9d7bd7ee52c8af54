"""Finding runs: the Runs page's and ``GET /api/jobs``' filters (kind, status, owner, flow)
and search box, bounded, and as the query string of a bookmarkable address.

Built on ``jobs_view.job_query`` (top-level jobs, newest first, shards under their parent)
with what a person looks for added: the owner by user name (``me``: the signed-in user), the
flow (a job's own ``params.flow``, or for training its dataset's flow), and a case-blind
search through the run's id, name, tags, notes, message and kind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import String, cast, or_, select
from sqlalchemy.sql import Select

from app.db.tables import Dataset, Job, Rollout, User
from app.services import auth, jobs_view
from app.state import AppState

KINDS = ("generate", "train", "finetune", "rollout", "compare")
STATUSES = ("queued", "running", "finishing", "succeeded", "failed", "cancelled")
MAX_SEARCH = 100
PAGE = 100


@dataclass(frozen=True)
class RunFilter:
    kind: str | None = None
    status: str | None = None
    owner: str | None = None
    flow: str | None = None
    q: str | None = None

    def query_string(self) -> str:
        """``?kind=train&q=fno`` (empty without filters): the address of this view."""
        items = {k: v for k, v in asdict(self).items() if v}
        return "?" + urlencode(items) if items else ""

    @property
    def active(self) -> bool:
        return any(asdict(self).values())


def _clean(value: Any, limit: int = 64) -> str | None:
    if value is None:
        return None
    text = str(value).strip()[:limit]
    return text or None


def parse(query: dict[str, Any]) -> RunFilter:
    """A filter from an address's query (unknown kinds and statuses are dropped, the
    search is cut at ``MAX_SEARCH`` characters)."""
    kind = _clean(query.get("kind"))
    status = _clean(query.get("status"))
    return RunFilter(
        kind=kind if kind in KINDS else None,
        status=status if status in STATUSES else None,
        owner=_clean(query.get("owner")),
        flow=_clean(query.get("flow")),
        q=_clean(query.get("q"), MAX_SEARCH),
    )


def job_query(
    f: RunFilter,
    *,
    parent_id: str | None = None,
    limit: int = PAGE,
    user: auth.Principal | None = None,
) -> Select:
    query = jobs_view.job_query(parent_id=parent_id, status=f.status, kind=f.kind, limit=limit)
    if f.owner:
        if f.owner == "me":
            user = user if user is not None else auth.current_user()
            query = query.where(Job.owner_id == (user.id if user else None))
        else:
            owner_ids = select(User.id).where(User.name == f.owner)
            query = query.where(Job.owner_id.in_(owner_ids))
    if f.flow:
        trained_on = select(Dataset.id).where(Dataset.flow == f.flow)
        query = query.where(
            or_(
                Job.params["flow"].as_string() == f.flow,
                Job.params["dataset_id"].as_string().in_(trained_on),
            )
        )
    if f.q:
        needle = f.q
        query = query.where(
            or_(
                Job.id.istartswith(needle, autoescape=True),
                Job.name.icontains(needle, autoescape=True),
                Job.notes.icontains(needle, autoescape=True),
                cast(Job.tags, String).icontains(needle, autoescape=True),
                Job.message.icontains(needle, autoescape=True),
                Job.kind.icontains(needle, autoescape=True),
            )
        )
    return query


def run_dict(job: Job, owners: dict[str, str]) -> dict[str, Any]:
    return {
        **jobs_view.job_dict(job),
        "name": job.name,
        "tags": list(job.tags or []),
        "notes": job.notes or "",
        "owner": owners.get(job.owner_id) if job.owner_id else None,
        "owner_id": job.owner_id,
    }


def list_runs(state: AppState, f: RunFilter, limit: int = PAGE) -> list[dict[str, Any]]:
    """The matching top-level jobs, newest first, at most ``limit``, as ``jobs_view``'s
    dicts with ``name``, ``tags``, ``notes`` and ``owner`` (a user name); a rollout job
    carries its ``rollout_id``."""
    with state.db.session() as session:
        rows = list(session.scalars(job_query(f, limit=limit)))
        owner_ids = {j.owner_id for j in rows if j.owner_id}
        owners = (
            dict(session.execute(select(User.id, User.name).where(User.id.in_(owner_ids))).all())
            if owner_ids
            else {}
        )
        out = [run_dict(job, owners) for job in rows]
        missing = [
            j["id"] for j in out if j["kind"] == "rollout" and "rollout_id" not in j["result"]
        ]
        if missing:
            found = dict(
                session.execute(
                    select(Rollout.job_id, Rollout.id).where(Rollout.job_id.in_(missing))
                ).all()
            )
            for j in out:
                if j["id"] in found:
                    j["result"] = {**j["result"], "rollout_id": found[j["id"]]}
    return out


def choices(state: AppState) -> dict[str, list[str]]:
    """What the filters offer: the users' names and the flows of jobs and datasets."""
    with state.db.session() as session:
        users = sorted(session.scalars(select(User.name)))
        flows = set(session.scalars(select(Dataset.flow).distinct()))
        flows |= {
            f
            for f in session.scalars(
                select(Job.params["flow"].as_string())
                .where(Job.parent_id.is_(None))
                .distinct()
                .limit(200)
            )
            if f
        }
    return {
        "kinds": list(KINDS),
        "statuses": list(STATUSES),
        "owners": users,
        "flows": sorted(flows),
    }
