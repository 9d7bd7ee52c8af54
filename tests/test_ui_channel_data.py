"""The Data page's channel parts without a browser: the preview of a channel dataset the
generate job really wrote (The Well's layout, without The Well's ``n_spatial_dims``
attribute), the labels that name a channel grid nx×ny×nz, and the generate form's channel
flows and the request it builds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.settings import Settings

GRID = [8, 12, 8]


@pytest.fixture
def state(tmp_path: Path, monkeypatch) -> Iterator:
    """An app on SQLite with the embedded broker (nothing leaves this process); jobs are run
    here with ``workers.tasks.run_job``."""
    from app.main import create_app

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'eddyscope.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    )
    import workers.tasks

    monkeypatch.setattr(workers.tasks, "get_settings", lambda: settings)
    with TestClient(create_app(settings, with_ui=False)) as client:
        yield client.app.state.eddyscope


def run_generate(state, **params) -> dict:
    """Submit a generate job as the Data page does and run its shards in this process."""
    from app.db.tables import Job
    from app.services import jobs_view
    from workers.tasks import run_job

    job = jobs_view.submit_job(state, "generate", params)
    with state.db.session() as session:
        shards = session.scalars(select(Job.id).where(Job.parent_id == job["id"])).all()
    for shard in shards:
        assert run_job(shard, "test", False) == "succeeded"
    done = jobs_view.get_job(state, job["id"])
    assert done["status"] == "succeeded", done["error"]
    return done


TINY = dict(
    flow="channel3d",
    channel_grid=GRID,
    n_trajectories=1,
    n_snapshots=2,
    interval=0.02,
    warmup=0.02,
    seed=3,
)


def test_a_generated_channel_dataset_previews_with_slices_and_wall_unit_statistics(state):
    from app.services import channel_views

    job = run_generate(state, **TINY)
    dataset_id = job["result"]["dataset_id"]
    layout = channel_views.channel_dataset_layout(state, dataset_id)
    assert layout["grid"] == GRID
    assert (layout["n_trajectories"], layout["n_snapshots"]) == (1, 2)

    frame = channel_views.channel_dataset_frame(state, dataset_id, 0, -1)
    assert frame["velocity"].shape == (3, *GRID)
    assert np.isfinite(frame["velocity"]).all()
    assert frame["nu"] == pytest.approx(1 / 180)
    assert len(frame["y"]) == GRID[1] and np.all(np.abs(frame["y"]) < 1)

    view = channel_views.channel_view(
        state, {"kind": "dataset", "id": dataset_id, "trajectory": 0, "time": 1}
    )
    assert view["error"] is None, view["error"]
    assert view["stats"]["re_tau"] > 0 and len(view["stats"]["yplus"]) == GRID[1] // 2
    assert view["frame"]["shape"] == GRID and len(view["frame"]["yplus"]) == GRID[1]
