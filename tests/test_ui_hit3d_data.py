"""The Data page's hit3d parts without a browser: a hit3d generate job run here (its shards
with ``workers.tasks.run_job``) reports live ``hit3d_stats`` events, and
``app.services.hit3d_views`` shows its dataset and the job itself (running and finished) with
the numbers the stored velocity gives when recomputed here; the generate form's hit3d flow
and the request it builds, checked by the real job validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.settings import Settings
from physics.hit3d import diagnostics

N = 16
TINY = dict(
    flow="hit3d",
    resolution=N,
    n_trajectories=2,
    n_snapshots=3,
    interval=0.05,
    warmup=0.0,
    shard_size=1,
    seed=5,
)


@pytest.fixture
def state(tmp_path: Path, monkeypatch) -> Iterator:
    """An app on SQLite with the embedded broker (nothing leaves this process)."""
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


def submit(state, **params) -> tuple[dict, list[str]]:
    from app.db.tables import Job
    from app.services import jobs_view

    job = jobs_view.submit_job(state, "generate", params)
    with state.db.session() as session:
        shards = session.scalars(
            select(Job.id).where(Job.parent_id == job["id"]).order_by(Job.created_at)
        ).all()
    return job, list(shards)


def run(shard: str) -> None:
    from workers.tasks import run_job

    assert run_job(shard, "test", False) == "succeeded"


def stored(path, trajectory: int, time: int) -> torch.Tensor:
    with h5py.File(path, "r") as f:
        velocity = f["t1_fields/velocity"][trajectory, time]
    return torch.from_numpy(velocity.astype(np.float64)).permute(3, 0, 1, 2)[None]


def test_a_hit3d_job_is_shown_live_then_as_its_dataset(state):
    from app.db.tables import Job, JobEvent
    from app.services import hit3d_views, jobs_view

    job, shards = submit(state, **TINY)
    assert len(shards) == 2
    assert hit3d_views.active_hit3d_job(state) == job["id"]
    view = hit3d_views.hit3d_job_view(state, job["id"])
    assert view["stats"] is None and view["slices"] is None
    assert "16³ · nothing stored yet" in view["label"]

    # One shard done, the job still running: the shard's events and its stored file.
    run(shards[0])
    with state.db.session() as session:
        events = session.execute(
            select(JobEvent.payload).where(JobEvent.type == "hit3d_stats").order_by(JobEvent.seq)
        ).all()
        shard_path = state.artifacts.resolve(session.get(Job, shards[0]).result["path"])
    payloads = [p for (p,) in events]
    # The first snapshot is always reported, and so is the shard's last.
    assert payloads[0]["snapshot"] == 0 and payloads[-1]["snapshot"] == 2
    last = payloads[-1]
    u = stored(shard_path, 0, 2)
    assert last["stats"]["taylor_reynolds"] == pytest.approx(
        float(diagnostics.taylor_reynolds(u, 0.04)[0]), rel=1e-9
    )
    assert last["series"]["t"] == pytest.approx([0.0, 0.05, 0.1])
    with h5py.File(shard_path, "r") as f:
        np.testing.assert_allclose(last["series"]["energy"], f["statistics/energy"][0])
    live = hit3d_views.hit3d_job_view(state, job["id"])
    assert not live["final"] and live["stats"] == last["stats"]
    assert live["label"].endswith("· 16³ · trajectory 0 · snapshot 2 (t = 0.1)")
    magnitude = torch.sqrt((diagnostics.vorticity(u)[0] ** 2).sum(dim=0)).numpy()
    np.testing.assert_allclose(live["slices"]["vorticity"]["z"], magnitude[:, :, 8].T, rtol=1e-5)
    assert live["slices_at"] == "trajectory 0, snapshot 2 (t = 0.1)"

    run(shards[1])
    done = jobs_view.get_job(state, job["id"])
    assert done["status"] == "succeeded", done["error"]
    final = hit3d_views.hit3d_job_view(state, job["id"])
    assert final["final"] and final["dataset_id"] == done["result"]["dataset_id"]
    assert final["version"] != live["version"]
    assert hit3d_views.active_hit3d_job(state) is None


def test_a_hit3d_dataset_view_recomputes_from_the_stored_velocity(state):
    from app.services import hit3d_views

    job, shards = submit(state, **TINY)
    for shard in shards:
        run(shard)
    from app.services import jobs_view

    dataset_id = jobs_view.get_job(state, job["id"])["result"]["dataset_id"]
    layout = hit3d_views.hit3d_dataset_layout(state, dataset_id)
    assert (layout["n"], layout["n_trajectories"], layout["n_snapshots"]) == (N, 2, 3)
    path = layout["path"]

    view = hit3d_views.hit3d_view(
        state, {"kind": "dataset", "id": dataset_id, "trajectory": 1, "time": 1}
    )
    u = stored(path, 1, 1)
    assert view["stats"]["taylor_reynolds"] == pytest.approx(
        float(diagnostics.taylor_reynolds(u, 0.04)[0]), rel=1e-9
    )
    assert view["stats"]["integral_scale"] == pytest.approx(
        float(diagnostics.integral_scale(u)[0]), rel=1e-9
    )
    assert (view["trajectory"], view["snapshot"], view["t"]) == (1, 1, pytest.approx(0.05))
    assert "· 16³ · trajectory 1 · snapshot 1 of 3 (t = 0.05)" in view["label"]
    # E(t), ε(t) are the solver's budget stored with the data; on the solver's own grid the
    # stored field's ε = 2ν⟨SᵢⱼSᵢⱼ⟩ is the budget's ν⟨|∇u|²⟩ (float32 storage apart).
    assert view["series"]["source"] == "solver" and len(view["series"]["t"]) == 3
    assert view["stats"]["dissipation"] == pytest.approx(view["series"]["dissipation"][1], rel=1e-5)
    assert view["stats"]["energy"] == pytest.approx(view["series"]["energy"][1], rel=1e-5)
    assert view["series"]["energy"][2] < view["series"]["energy"][0]  # decaying

    # The last snapshot by default; a snapshot or trajectory not there is a sentence.
    assert hit3d_views.hit3d_dataset_view(state, dataset_id)["snapshot"] == 2
    with pytest.raises(ValueError, match=r"^Trajectory 2 is not in the dataset; it has 2 \(0–1\)"):
        hit3d_views.hit3d_dataset_view(state, dataset_id, 2)
    with pytest.raises(ValueError, match=r"^Snapshot 3 is not in trajectory 0; it has 3"):
        hit3d_views.hit3d_dataset_view(state, dataset_id, 0, 3)
    assert hit3d_views.hit3d_dataset_view(state, "nope") is None

    # Without the stored budget, E(t) and ε(t) come from the stored snapshots themselves.
    copy = Path(path).parent / "copy.h5"
    with h5py.File(path, "r") as src, h5py.File(copy, "w") as dst:
        src.copy("t1_fields", dst)  # a virtual dataset is copied as its data
        src.copy("dimensions", dst)
        dst.attrs.update(dict(src.attrs))
    series = hit3d_views.read_series(copy, 1, hit3d_views.file_layout(copy))
    assert series["source"] == "stored"
    energies = [float(diagnostics.kinetic_energy(stored(path, 1, s))[0]) for s in range(3)]
    np.testing.assert_allclose(series["energy"], energies, rtol=1e-12)
    dissipation = [float(diagnostics.dissipation(stored(path, 1, s), 0.04)[0]) for s in range(3)]
    np.testing.assert_allclose(series["dissipation"], dissipation, rtol=1e-9)


def test_the_generate_form_offers_hit3d_and_its_request_passes_the_job_checks(state):
    from app.jobkinds import InvalidParams
    from app.services import jobs_view
    from app.ui.pages.datasets import helpers
    from app.ui.pages.datasets.hit3d import hit3d_request

    flows = helpers.flows_by_name()
    hit = flows["hit3d"]
    assert hit["hit3d"] and (hit["default_n"], hit["min_n"], hit["max_n"]) == (32, 16, 128)
    assert hit["nu"] == 0.04 and hit["forcings"] == ["none", "linear"]
    assert hit["initial_conditions"] == ["random", "taylor-green", "abc"]
    assert helpers.flow_choices(hit)["channel"] is False

    size = {"n_trajectories": 1, "n_snapshots": 2, "resolution": N, "solver_resolution": 32}
    size |= {"interval": 0.05, "warmup": None, "shard_size": 1, "seed": 3}
    typed = {"nu": 0.02, "k_peak": 3, "u_rms": None, "forcing": "linear", "closure": "none"}
    typed |= {"filter": "box", "filter_width": 2}
    raw = hit3d_request(hit, "random", "rk4cn", size, typed, " forced ")
    assert raw == {
        "flow": "hit3d",
        "n_trajectories": 1,
        "n_snapshots": 2,
        "resolution": N,
        "solver_resolution": 32,
        "interval": 0.05,
        "shard_size": 1,
        "seed": 3,
        "initial_condition": "random",
        "scheme": "rk4cn",
        "nu": 0.02,
        "k_peak": 3.0,
        "forcing": "linear",
        "filter": "box",
        "filter_width": 2.0,
        "name": "forced",
    }
    job = jobs_view.submit_job(state, "generate", raw)
    assert job["params"]["filter"] == "box" and job["params"]["solver_resolution"] == 32
    # The flow's own ν is not sent; a k_p typed for a family that is not random is refused
    # with the API's sentence.
    plain = hit3d_request(hit, "taylor-green", None, size, {"nu": 0.04, "k_peak": 3}, None)
    assert "nu" not in plain and plain["initial_condition"] == "taylor-green"
    with pytest.raises(InvalidParams, match=r"params\.k_peak: shapes the initial spectrum"):
        jobs_view.submit_job(state, "generate", plain)

    # Labels show the cube: the generation list, the datasets table.
    assert "@ 16³ (solver 32³)" in helpers.job_detail(job["params"])
    assert "linear forcing" in helpers.job_detail(job["params"])
    row = {"flow": "hit3d", "shape": [1, 2, N, N, N, 3]}
    assert helpers.grid_cell(row) == "16³"
    assert helpers.grid_cell({"flow": "channel3d", "shape": [1, 2, 8, 8, 8, 3]}) == "8×8×8"


def test_the_preview_card_points_at_the_hit3d_card(state):
    from app.services import jobs_view
    from app.ui.pages.datasets.hit3d import preview_outputs

    job, shards = submit(state, **{**TINY, "n_trajectories": 1})
    run(shards[0])
    dataset_id = jobs_view.get_job(state, job["id"])["result"]["dataset_id"]
    body, title, note, count, *_ = preview_outputs(state, dataset_id, 0, None, "hidden")
    assert "on the 16³ grid" in body.children and body.id == "data-preview-hit3d"
    assert "16³" in title[1].children and "ν = 0.04" in title[1].children
    assert count == "of 1 (0–0)" and note is None
    error = preview_outputs(state, dataset_id, 3, None, "hidden")[0]
    assert error.children == "Trajectory 3 is not in the dataset; it has 1 (0–0)."
