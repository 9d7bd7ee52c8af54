"""A hit3d comparison for display: what the Compare page's HIT panels draw for a ``compare``
job of the periodic box (``workers.runners.compare_hit3d``): the reference LES and every
model side by side.

The view has the keys of ``app.services.hit3d_rollouts``' (``sources`` ["reference",
"model:0", …], ``stats``/``spectrum``/``pdf`` ``{source: …}``, ``series`` with E(t), ε(t)
per source, ``slices`` per source, ``label``, ``at``, ``step``, ``t``), plus ``errors``
``{"t", "rel_l2": {source: […]}}`` (each model's relative L² per step) and ``summary`` (the
job's summary once it ended). The page names the sources itself, from the job's setup
(``app.ui.pages.compare.hit3d.source_labels``).

As on the Rollout page: while the job runs (``step`` None) the statistics are those of the
newest step every source has a ``hit3d_stats`` event for, and the slices that step's stored
frame; a chosen step reads its events, else the newest frame stored at or before it."""

from __future__ import annotations

from typing import Any

from app import jobs
from app.db.tables import Job, Rollout
from app.services.hit3d_rollouts import (
    _events,
    _metrics,
    _newest_stats,
    fill_step,
    rollout_version,
)
from app.services.jobs_view import job_dict
from app.services.rollouts import rollout_for_job
from app.state import AppState


def is_hit3d_setup(setup: dict[str, Any] | None) -> bool:
    return bool(setup) and setup.get("geometry") == "hit3d"


def hit3d_compare_view(
    state: AppState, job_id: str, step: int | None = None
) -> dict[str, Any] | None:
    """The view of a hit3d comparison job (see the module docstring) at ``step`` (None: the
    newest reported); None for an unknown job."""
    version = rollout_version(state, job_id)
    with state.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        job_out = job_dict(job)
        rollout: Rollout | None = rollout_for_job(session, job_id)
        setups = _events(session, job_id, "compare_setup")
        setup = setups[-1] if setups else {}
        models = setup.get("models") or []
        sources = ["reference", *(f"model:{m['index']}" for m in models)]
        metrics = _metrics(session, job_id) if rollout is not None else []
        newest = (
            _newest_stats(session, job_id, sources, 3 * len(sources), every_source=False)
            if rollout is not None
            else None
        )
        summaries = _events(session, job_id, "summary")
        path = state.artifacts.resolve(rollout.path) if rollout is not None else None
        rollout_id = rollout.id if rollout is not None else None
    n = int(setup.get("resolution") or job_out["params"].get("resolution") or 0)
    final = job_out["status"] not in (*jobs.ACTIVE, "finishing")
    view: dict[str, Any] = {
        "job": job_out,
        "final": final,
        "version": f"{version}:{step}",
        "rollout_id": rollout_id,
        "n": n,
        "sources": sources,
        "series": None,
        "errors": None,
        "stats": None,
        "spectrum": None,
        "pdf": None,
        "k": None,
        "slices": None,
        "t": None,
        "step": None,
        "at": None,
        "summary": summaries[-1] if summaries else None,
    }
    short = job_id[:8]
    if rollout is None or not metrics:
        view["label"] = f"Compare job {short} ({job_out['status']}) · {n}³ · nothing stored yet"
        return view

    def per_source(name: str) -> dict[str, list]:
        out = {"reference": [(m.get("reference") or {}).get(name) for m in metrics]}
        for model in models:
            i = str(model["index"])
            out[f"model:{i}"] = [((m.get("models") or {}).get(i) or {}).get(name) for m in metrics]
        return out

    t = [m.get("t") for m in metrics]
    view["series"] = {
        "t": t,
        "energy": per_source("energy"),
        "dissipation": per_source("dissipation"),
        "source": "rollout",
    }
    errors = per_source("rel_l2")
    errors.pop("reference")
    view["errors"] = {"t": t, "rel_l2": errors}

    when = fill_step(view, metrics, newest, path, tuple(sources), step)
    view["label"] = (
        f"Compare job {short} ({job_out['status']}) · {n}³ · {len(models)} models vs the "
        f"reference LES · {when}"
    )
    return view
