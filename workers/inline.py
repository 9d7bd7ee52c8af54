"""``python -m workers.inline JOB_ID``: run a queued job in this process instead of on a
worker (the CLI's ``--inline``); a coordinating job's children run one after another."""

from __future__ import annotations

import logging
import sys

from sqlalchemy import select

from app.db.session import get_database
from app.db.tables import Job
from app.settings import get_settings
from workers.tasks import run_job


def run_inline(job_id: str) -> None:
    db = get_database(get_settings().resolved_database_url)
    with db.session() as session:
        children = session.scalars(
            select(Job.id).where(Job.parent_id == job_id).order_by(Job.created_at)
        ).all()
    for one in children or [job_id]:
        run_job(one, "inline", False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    run_inline(sys.argv[1])
