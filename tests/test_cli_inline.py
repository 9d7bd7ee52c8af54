"""``eddyscope <kind> --inline``: the job runs on this machine in a child process (the
worker's own code path) while the command draws its progress, with no worker running."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.db.session import Database
from app.db.tables import Job, Rollout
from tests.conftest import ROOT, service_env

pytestmark = pytest.mark.integration


def test_a_rollout_runs_inline_and_is_recorded(tmp_path, redis_url):
    env = service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url)
    command = [sys.executable, "-m", "app.cli", "rollout", "--inline"]
    command += ["--steps", "3", "--resolution", "16", "--interval", "0.05"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded" in done.stdout
    db = Database(f"sqlite:///{tmp_path / 'eddyscope.sqlite'}")
    with db.session() as session:
        job = session.query(Job).filter(Job.kind == "rollout").one()
        rollout = session.get(Rollout, job.result["rollout_id"])
    assert job.status == "succeeded" and job.worker == "inline"
    assert rollout.steps == 3
