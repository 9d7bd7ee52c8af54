"""What both the REST routers (``app.api``) and the Dash callbacks (``app.ui``) call.

One module per resource: ``jobs_view`` (jobs as the pages and routers list them, and
submitting one), ``catalog`` (initial conditions, datasets, models), ``rollouts``
(rollouts and comparisons: rows, metrics, frames, exports), ``initial_conditions`` and
``uploads`` (storing an uploaded field safely), ``previews`` (a dataset's trajectory and a
field's spectrum for display), ``channel_views`` (channel statistics and 3D frames for
display), ``flows`` (which flows there are, as the API and the forms need them),
``architectures`` and ``training_options`` (what a model config and the job forms accept).

Conventions: a function that needs the database, the artifact store or the queue takes the
process's ``AppState`` (``state``) as its first argument; a router passes the one its
dependency gives, a callback the one ``app.ui.context.get_state()`` holds. Everything is
synchronous (SQL, HDF5, torch) and returns plain data: JSON-ready dicts for the pages, ORM
rows where a router's response model reads them. Callbacks call these functions through
``asyncio.to_thread`` so the event loop that also serves the API never waits on them.
"""

from __future__ import annotations

from datetime import datetime


def iso_time(value: datetime | None) -> str | None:
    """A stored time for the browser: stored naive UTC, so the trailing Z says so."""
    return value.isoformat(timespec="seconds") + "Z" if value else None
