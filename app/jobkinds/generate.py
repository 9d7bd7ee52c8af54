"""``generate``: a dataset of trajectories from a flow's reference solver, made as shards.

A ``generate`` job is a coordinator: it is never sent to a worker itself. Submitting it
commits the job and one ``generate-shard`` job per ``shard_size`` trajectories, then sends
the shards (``app.jobkinds.generate_shard`` runs them and joins the dataset when the last
one succeeds). A failed shard is rerun alone (``retry``); finished shards are never redone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import jobs
from app.artifacts import ArtifactStore
from app.channel_params import channel_flow, check_channel_generate, check_not_channel_params
from app.db.session import Database
from app.db.tables import Job, new_id, utcnow
from app.hit3d_params import check_hit3d_generate, check_not_hit3d_params
from app.jobkinds import limits
from app.jobkinds.base import InvalidParams, JobKind, JobParams
from app.jobkinds.checks import allowed_variant, fitting_grid, known_flow
from app.jobkinds.generate_shard import SHARD_KIND, join_shards
from app.jobs import Dispatcher
from app.services.flows import is_channel_flow, is_hit3d_flow
from app.settings import Settings


class GenerateParams(JobParams):
    flow: str = "ns2d-forced"
    name: str | None = None
    nu: float | None = Field(
        default=None, gt=0, description="Viscosity, one the flow allows; default: the flow's."
    )
    initial_condition: str | None = Field(
        default=None, description="Initial-condition family the flow offers; default: its own."
    )
    scheme: Literal["rk4cn", "cnheun"] = Field(
        default="rk4cn", description="Time stepper: IMEX RK4–Crank–Nicolson or CN–Heun (RK2)."
    )
    n_trajectories: int = Field(default=8, ge=1, le=100_000)
    n_snapshots: int = Field(default=20, ge=2, le=10_000)
    resolution: int = Field(default=64, ge=16, le=1024)
    solver_resolution: int | None = Field(
        default=None,
        ge=16,
        le=2048,
        description="Finer grid the solver runs on; output is spectrally truncated "
        "(hit3d: filtered, see filter).",
    )
    interval: float = Field(default=1.0, gt=0, le=1000, description="Time between saved snapshots.")
    warmup: float = Field(default=0.0, ge=0, le=10_000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    shard_size: int = Field(
        default=64, ge=1, le=100_000, description="Trajectories per shard (one task, one file)."
    )
    seed: int = Field(default=0, ge=0)
    # Channel flows only (walls at y = ±1; see physics/channel/flow.py).
    channel_grid: list[int] | None = Field(
        default=None,
        min_length=3,
        max_length=3,
        description="Channel flows: solver grid nx, ny (cells between the walls), nz; "
        "default 32, 49, 32.",
    )
    output_grid: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=3,
        description="Channel flows: the training grid the velocity is stored on, filtered "
        "from the solver grid: nx, nz (x–z only) or nx, ny, nz (ny cells, the solver's tanh "
        "stretching; a top-hat over each stored cell in y); default the solver grid.",
    )
    filter: Literal["spectral", "box"] | None = Field(
        default=None,
        description="Channel flows: the x–z filter onto the stored grid: a sharp spectral "
        "cut (default) or a top-hat (box) filter then the cut. hit3d: the same 3D filters "
        "from solver_resolution onto resolution.",
    )
    filter_width: float | None = Field(
        default=None,
        gt=0,
        le=8,
        description="Channel flows and hit3d, box filter: its width in cells of the stored "
        "grid (default 1).",
    )
    re_tau: float | None = Field(
        default=None, gt=0, le=5000, description="Channel flows: friction Reynolds number (180)."
    )
    closure: Literal["smagorinsky", "wale", "dynamic"] | None = Field(
        default=None,
        description="Channel flows (and hit3d: smagorinsky, dynamic): LES closure; none is "
        "coarse DNS.",
    )
    drive: Literal["pressure", "flow_rate"] = Field(
        default="pressure",
        description="Channel flows: constant mean pressure gradient or constant flow rate.",
    )

    # hit3d only (the triply periodic box; see physics/hit3d/flow.py and app/hit3d_params.py).
    k_peak: float | None = Field(
        default=None,
        gt=0,
        le=1024,
        description="hit3d, random initial condition: the peak k_p of its spectrum "
        "E(k) ~ k^4 exp(-2(k/k_p)^2); default 2.",
    )
    u_rms: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="hit3d, random initial condition: the rms of one velocity component; "
        "default 1.",
    )
    forcing: Literal["none", "linear"] | None = Field(
        default=None,
        description="hit3d: none (decaying) or linear forcing of the shells k <= 2 that "
        "holds the kinetic energy constant (forced HIT).",
    )

    @model_validator(mode="after")
    def _resolutions(self) -> GenerateParams:
        if is_hit3d_flow(self.flow):  # its grid defaults are the flow's: check_hit3d_generate
            return self
        if self.solver_resolution is not None and self.solver_resolution < self.resolution:
            raise ValueError("solver_resolution must be at least the output resolution")
        return self


def check(session: Session, params: GenerateParams, data: dict[str, Any], queue: str):
    try:
        if is_hit3d_flow(data["flow"]):
            check_hit3d_generate(data, params.model_fields_set)
            return data, queue
        check_not_hit3d_params(data)
        if is_channel_flow(data["flow"]):
            check_channel_generate(data)
            return data, queue
        check_not_channel_params(data)
    except ValueError as exc:  # their sentences name the parameter
        raise InvalidParams(str(exc)) from None
    flow = allowed_variant(known_flow(data["flow"]), data["nu"])
    family = data["initial_condition"]
    if family is not None and family not in flow.initial_conditions:
        raise InvalidParams(
            f"params.initial_condition: {flow.name} offers "
            f"{', '.join(flow.initial_conditions)}; got {family!r}."
        )
    for key in ("resolution", "solver_resolution"):
        if data[key] is not None:
            fitting_grid(flow, data[key], key)
    return data, queue


def bounds(session: Session, data: dict[str, Any], settings: Settings) -> None:
    """Trajectories, shards (each a job row and a message) and the dataset's stored values,
    against the server's limits."""
    if is_channel_flow(data["flow"]):
        nx, ny, nz = data.get("channel_grid") or channel_flow(data).default_grid
        stored = data.get("output_grid") or (nx, nz)
        ox, oy, oz = stored if len(stored) == 3 else (stored[0], ny, stored[1])
        per_snapshot = ox * oy * oz * 3  # velocity (u, v, w)
    elif is_hit3d_flow(data["flow"]):
        per_snapshot = 3 * data["resolution"] ** 3
    else:
        per_snapshot = data["resolution"] ** 2
    limits.check_generate(data, per_snapshot, settings)


def plan_shards(n_trajectories: int, shard_size: int) -> list[tuple[int, int]]:
    """(first trajectory, count) of each shard, in order."""
    return [
        (start, min(shard_size, n_trajectories - start))
        for start in range(0, n_trajectories, shard_size)
    ]


def shard_file(dataset_id: str, index: int) -> str:
    return f"datasets/{dataset_id}/shard-{index:05d}.h5"


def submit_generate(
    db: Database, dispatcher: Dispatcher, params: dict[str, Any], queue: str
) -> Job:
    """Commit the coordinating job and all its shard jobs, then send the shards (through an
    outbox, off the request path)."""
    shards = plan_shards(params["n_trajectories"], params["shard_size"])
    dataset_id = new_id()
    with db.session() as session:
        parent = Job(
            kind="generate",
            params={**params, "dataset_id": dataset_id, "shards": len(shards)},
            queue=queue,
            status="queued",
            dispatched_at=utcnow(),
        )
        session.add(parent)
        session.flush()
        children = [
            Job(
                kind=SHARD_KIND,
                parent_id=parent.id,
                queue=queue,
                status="queued",
                params={
                    **params,
                    "dataset_id": dataset_id,
                    "shard": index,
                    "start": start,
                    "count": count,
                },
            )
            for index, (start, count) in enumerate(shards)
        ]
        session.add_all(children)
        session.commit()
        jobs.add_event(session, parent.id, "status", {"status": "queued", "shards": len(shards)})
        child_ids = [child.id for child in children]
    for child_id in child_ids:
        jobs.dispatch(db, dispatcher, child_id, later=True)
    return parent


def retry(db: Database, dispatcher: Dispatcher, artifacts: ArtifactStore, parent_id: str) -> Job:
    """Re-queue the failed or cancelled shards of a generate job; finished ones stay."""
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.parent_id == parent_id, Job.status.in_(("failed", "cancelled")))
            .values(
                status="queued",
                error=None,
                progress=0.0,
                dispatched_at=None,
                started_at=None,
                finished_at=None,
            )
        )
        session.execute(
            update(Job)
            .where(Job.id == parent_id)
            .values(status="running", error=None, finished_at=None, message="retrying")
        )
        session.commit()
        jobs.add_event(session, parent_id, "status", {"status": "running", "retry": True})
        queued = session.scalars(
            select(Job.id).where(Job.parent_id == parent_id, Job.status == "queued")
        ).all()
    for shard_id in queued:
        jobs.dispatch(db, dispatcher, shard_id, later=True)
    if not queued:  # every shard had finished: only the joining step was left undone
        join_shards(db, artifacts, parent_id)
    with db.session() as session:
        return jobs.get_job(session, parent_id)


KIND = JobKind(
    name="generate",
    description="Make a dataset of trajectories with a flow's reference solver, in shards.",
    params=GenerateParams,
    task=None,
    runner=None,
    check=check,
    limits=bounds,
    submit=submit_generate,
)
