"""A hit3d rollout for display: what the Rollout page's HIT panels (``app.ui.hit3d_panels``)
draw for a rollout job of the periodic box (``workers.runners.rollout_hit3d``), the model
and the reference solver side by side.

The view (``hit3d_rollout_view``) has the keys of ``app.services.hit3d_views``' views, with
one value per source where a rollout has several:

    label, n, nu, length, rollout_id, step, t, at       what is shown, on which n³ grid
    sources                                             ["model", "reference"] or ["reference"]
    stats, spectrum, pdf  {source: …}, k               ``app.hit3d_summary.snapshot_summary``
    series {"t", "energy": {source: […]}, "dissipation": {source: […]}, "source": "rollout"}
    slices {"model"|"reference"|"error": {"vorticity"|"q": {"x","y","z"}}}  (numpy)
    job, final, version

While the job runs (``step`` None) the statistics are those of the newest step for which the
worker reported a ``hit3d_stats`` event of every source, and the slices are of that step's
stored frame, so the card and the slices show one step. For a chosen step (the page's frame
slider once the run has ended) they are that step's event when there is one, else computed
from the newest frame stored at or before it (a long rollout stores every few steps; see
``frame_stride``). E(t), ε(t) are every step's ``metrics``. Frames are read one at a time
(one HDF5 chunk per source) and a frame's summary and slices are cached.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from app import jobs
from app.db.tables import Job, JobEvent, Rollout
from app.hit3d_summary import snapshot_slices, snapshot_summary
from app.services.jobs_view import job_dict
from app.services.rollouts import newest_event, rollout_for_job
from app.state import AppState
from physics.formats.store import open_swmr, read_rollout_frame

EVENT = "hit3d_stats"
SOURCES = ("model", "reference")
# Newest events read to find the newest step reported for every source.
NEWEST_EVENTS = 8


def _file_id(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return 0


@functools.lru_cache(maxsize=8)
def _frame_view(path: str, _inode: int, frame: int, sources: tuple[str, ...]) -> dict[str, Any]:
    """Summaries and slices of stored frame ``frame`` of every source, and the error's slices
    (model − reference). A written frame never changes; a re-run makes a new file."""
    with open_swmr(Path(path)) as f:
        nu = float(f.attrs.get("nu", 0.04))
        length = float(f.attrs.get("length", 2 * math.pi))
    velocity: dict[str, np.ndarray] = {}
    t = None
    for source in sources:
        velocity[source], t = read_rollout_frame(Path(path), frame, source)
    out: dict[str, Any] = {"t": t, "nu": nu, "length": length, "summary": {}, "slices": {}}
    for source, u in velocity.items():
        if np.isfinite(u).all():
            out["summary"][source] = snapshot_summary(u, nu, length)
            out["slices"][source] = snapshot_slices(u, length)
    if "model" in out["slices"] and "reference" in out["slices"]:
        out["slices"]["error"] = snapshot_slices(velocity["model"] - velocity["reference"], length)
    return out


def _events(session, job_id: str, kind: str) -> list[dict[str, Any]]:
    """The job's events of ``kind``, in order (their payloads)."""
    rows = session.scalars(
        select(JobEvent.payload)
        .where(JobEvent.job_id == job_id, JobEvent.type == kind)
        .order_by(JobEvent.seq)
    )
    return [payload or {} for payload in rows]


def _metrics(session, job_id: str) -> list[dict[str, Any]]:
    return _events(session, job_id, "metrics")


def _newest_stats(
    session,
    job_id: str,
    sources: tuple[str, ...] | list[str],
    limit: int = NEWEST_EVENTS,
    every_source: bool = True,
) -> dict[str, dict] | None:
    """The newest step's ``hit3d_stats`` events by source, among the newest ``limit``: for a
    step every source has, or (not ``every_source``: a comparison, whose stopped models
    report no more) for one the reference has."""
    rows = session.scalars(
        select(JobEvent.payload)
        .where(JobEvent.job_id == job_id, JobEvent.type == EVENT)
        .order_by(JobEvent.seq.desc())
        .limit(limit)
    )
    by_step: dict[int, dict[str, dict]] = {}
    for payload in rows:
        payload = payload or {}
        by_step.setdefault(int(payload.get("step", -1)), {})[payload.get("source")] = payload
    for step in sorted(by_step, reverse=True):
        got = by_step[step]
        if all(s in got for s in sources) if every_source else "reference" in got:
            return got
    return None


def _series(metrics: list[dict[str, Any]], sources: tuple[str, ...]) -> dict[str, Any]:
    return {
        "t": [m.get("t") for m in metrics],
        "energy": {s: [m.get(f"energy_{s}") for m in metrics] for s in sources},
        "dissipation": {s: [m.get(f"dissipation_{s}") for m in metrics] for s in sources},
        "source": "rollout",
    }


def _frame_of(metrics: list[dict[str, Any]], step: int) -> tuple[int | None, int | None]:
    """(frame, its step): the newest frame stored at or before ``step``."""
    found: tuple[int | None, int | None] = (None, None)
    for m in metrics:
        if m.get("step") is not None and m["step"] > step:
            break
        if m.get("frame") is not None:
            found = (int(m["frame"]), int(m["step"]))
    return found


def fill_step(
    view: dict[str, Any],
    metrics: list[dict[str, Any]],
    newest: dict[str, Any] | None,
    path: Path | None,
    sources: tuple[str, ...],
    step: int | None,
) -> str:
    """Fill ``view``'s ``stats``, ``spectrum``, ``pdf``, ``k``, ``slices`` (with ``nu`` and
    ``length``), ``t``, ``step`` and ``at`` for ``step`` (None: the newest step every source
    has a ``hit3d_stats`` event for; see the module docstring), for a rollout's view and a
    comparison's alike; returns ``at``."""
    if step is None and newest is not None:
        events = newest
        shown = int(next(iter(events.values()))["step"])
    else:
        shown = int(metrics[-1]["step"]) if step is None else int(step)
        events = newest if newest and int(next(iter(newest.values()))["step"]) == shown else None
    frame, frame_step = _frame_of(metrics, shown)
    computed = None
    if frame is not None and path is not None and path.exists():
        try:
            computed = _frame_view(str(path), _file_id(path), frame, sources)
        except (OSError, KeyError, IndexError, ValueError):
            computed = None  # not written yet: the next poll has it
    if events is not None:
        found = {s: {k: events[s].get(k) for k in ("stats", "k", "spectrum", "pdf")}
                 for s in sources if s in events}  # fmt: skip
        t = events[sources[0]].get("t")
    elif computed is not None and frame_step == shown:
        found, t = computed["summary"], computed["t"]
    else:
        found, t = {}, None
    if found:
        view.update(
            stats={s: (found.get(s) or {}).get("stats") for s in sources},
            spectrum={s: (found.get(s) or {}).get("spectrum") for s in sources},
            pdf={s: (found.get(s) or {}).get("pdf") for s in sources},
            k=next((v.get("k") for v in found.values() if v and v.get("k")), None),
        )
    if computed is not None:
        view["slices"] = computed["slices"]
        view["nu"], view["length"] = computed["nu"], computed["length"]
    view["t"] = t if t is not None else (computed or {}).get("t")
    view["step"] = shown
    when = f"step {shown}" + (f" (t = {float(view['t']):.4g})" if view["t"] is not None else "")
    if frame_step is not None and frame_step != shown:
        when += f"; slices of step {frame_step}, the newest stored frame"
    view["at"] = when
    return when


def rollout_version(state: AppState, job_id: str) -> str:
    """What changes when a rollout job has something new to draw: its status and newest
    event (one indexed query each)."""
    with state.db.session() as session:
        status = session.scalar(select(Job.status).where(Job.id == job_id))
    return f"{status}:{newest_event(state, job_id)}"


def hit3d_rollout_view(
    state: AppState, job_id: str, step: int | None = None
) -> dict[str, Any] | None:
    """The view of a hit3d rollout job (see the module docstring) at ``step`` (None: the
    newest reported); None for an unknown job."""
    version = rollout_version(state, job_id)
    with state.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        job_out = job_dict(job)
        rollout: Rollout | None = rollout_for_job(session, job_id)
        metrics = _metrics(session, job_id) if rollout is not None else []
        sources = SOURCES if job.params.get("model_id") else ("reference",)
        newest = _newest_stats(session, job_id, sources) if rollout is not None else None
        rollout_id = rollout.id if rollout is not None else None
        path = state.artifacts.resolve(rollout.path) if rollout is not None else None
        n = int((rollout.resolution if rollout is not None else job.params.get("resolution")) or 0)
    final = job_out["status"] not in (*jobs.ACTIVE, "finishing")
    view: dict[str, Any] = {
        "job": job_out,
        "final": final,
        "version": f"{version}:{step}",
        "rollout_id": rollout_id,
        "n": n,
        "sources": list(sources),
        "series": _series(metrics, sources) if metrics else None,
        "stats": None,
        "spectrum": None,
        "pdf": None,
        "k": None,
        "slices": None,
        "t": None,
        "step": None,
        "at": None,
    }
    short = job_id[:8]
    if rollout is None or not metrics:
        view["label"] = f"Rollout job {short} ({job_out['status']}) · {n}³ · nothing stored yet"
        return view
    when = fill_step(view, metrics, newest, path, tuple(sources), step)
    model = "model vs reference solver" if len(sources) == 2 else "reference solver only"
    view["label"] = f"Rollout job {short} ({job_out['status']}) · {n}³ · {model} · {when}"
    return view
