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


# --- labels: a channel grid is nx×ny×nz everywhere -------------------------------------------


def test_channel_labels_show_the_real_grid():
    from app.services.jobs_view import generate_grid_label, grid_label
    from app.ui.pages import rollout, runs
    from app.ui.pages.datasets import helpers

    channel = {**TINY, "n_trajectories": 1, "n_snapshots": 2}
    assert generate_grid_label(channel) == "8×12×8"
    assert generate_grid_label({"flow": "channel3d"}) == "32×49×32"  # the flow's default
    filtered = {"flow": "channel3d", "channel_grid": [16, 33, 16], "output_grid": [8, 8]}
    assert generate_grid_label(filtered) == "8×33×8 (solver 16×33×16)"
    assert generate_grid_label({**filtered, "output_grid": [8, 17, 8]}).startswith("8×17×8")
    assert generate_grid_label({"flow": "ns2d-forced", "resolution": 64}) == "64²"
    assert grid_label([64, 64]) == "64²" and grid_label((8, 12, 8)) == "8×12×8"

    job = {"kind": "generate", "params": channel}
    assert runs.job_detail(job) == "channel3d · 1×2 @ 8×12×8"
    assert "@ 8×12×8" in helpers.job_detail(channel) and "²" not in helpers.job_detail(channel)
    job_2d = {"kind": "generate", "params": {"flow": "ns2d-forced", "resolution": 64}}
    assert runs.job_detail(job_2d).endswith("@ 64²")
    # A channel comparison: its models, its LES baselines and its coarse grid.
    compare = {
        "kind": "compare",
        "params": {
            "models": [{"model_id": "a"}, {"model_id": "b"}],
            "baselines": ["smagorinsky", "wale"],
            "grid": [8, 12, 8],
            "steps": 40,
        },
    }
    assert runs.job_detail(compare) == "2 models + Smagorinsky, WALE @ 8×12×8 · 40 steps"

    model = {
        "name": "m",
        "arch": "fno3d",
        "dims": 3,
        "flow": "channel3d",
        "resolution": 4,
        "interval": 0.1,
    }
    datasets = {"d": {"shape": [1, 2, 4, 12, 4, 3]}}
    options = rollout.model_options(
        [{**model, "dataset_id": "d", "id": "x"}], datasets, "channel3d"
    )
    label = options[1]["label"]
    assert "· 4×12×4 ·" in label and "4²" not in label
    two_d = {**model, "flow": "ns2d-forced", "dims": 2, "resolution": 64, "dataset_id": None}
    assert "64²" in rollout.model_options([{**two_d, "id": "y"}], None, "ns2d-forced")[1]["label"]

    details = str(rollout.run_details({"flow": "channel3d", "resolution": 8, "grid": [8, 12, 8]}))
    assert "8×12×8" in details and "8²" not in details
    assert "64²" in str(rollout.run_details({"flow": "ns2d-forced", "resolution": 64}))


def test_a_channel_rollout_and_dataset_frame_name_their_grid(state):
    from app.services import channel_views

    dataset_id = run_generate(state, **TINY)["result"]["dataset_id"]
    frame = channel_views.channel_dataset_frame(state, dataset_id, 0, 0)
    assert "8×12×8" in frame["label"]

    # A reference rollout from that snapshot: its file's frames give the grid the Rollout
    # page's details show (the row keeps only nx as ``resolution``).
    import io

    from app.services import initial_conditions, jobs_view
    from workers.tasks import run_job

    buf = io.BytesIO()
    np.savez(buf, velocity=frame["velocity"], y=frame["y"], nu=frame["nu"])
    ic = initial_conditions.store_channel_upload(state, "c.npz", buf.getvalue(), "channel3d")
    job = jobs_view.submit_job(
        state, "rollout", {"initial_condition_id": ic["id"], "steps": 2, "interval": 0.01}
    )
    assert run_job(job["id"], "test", False) == "succeeded", jobs_view.get_job(state, job["id"])
    rollout_id = jobs_view.get_job(state, job["id"])["result"]["rollout_id"]
    assert channel_views.rollout_grid(state, rollout_id) == GRID
    live = channel_views.channel_frame(state, {"kind": "job", "job_id": job["id"]})
    assert "8×12×8" in live["label"]


# --- the generate form: channel flows and their parameters ----------------------------------


def test_the_generate_form_offers_the_channel_flows_with_their_parameters():
    from app.ui.pages.datasets import helpers

    flows = helpers.flows_by_name()
    assert "ns2d-forced" in flows and "channel3d" in flows
    c = helpers.flow_choices(flows["channel3d"])
    assert c["channel"] and c["grid"] == [32, 49, 32] and c["re_tau"] == 180
    assert [o["value"] for o in c["closures"]] == ["none", "smagorinsky", "wale", "dynamic"]
    assert [o["value"] for o in c["drives"]] == ["pressure", "flow_rate"]
    assert c["ic_value"] == "turbulent"
    assert not helpers.flow_choices(flows["ns2d-forced"])["channel"]

    values = {
        "n_trajectories": 1,
        "n_snapshots": 2,
        "resolution": 64,
        "solver_resolution": None,
        "interval": 0.02,
        "warmup": 0.02,
        "shard_size": 1,
        "seed": 0,
    }
    channel = {
        "grid": [8, 12, 8],
        "output_grid": [4, 4],
        "re_tau": 180,
        "closure": "smagorinsky",
        "drive": "pressure",
    }
    raw = helpers.generate_request(
        flows, "channel3d", flows["channel3d"]["nu"], "laminar", "rk4cn", values, " c ", channel
    )
    assert raw == {
        "flow": "channel3d",
        "initial_condition": "laminar",
        "n_trajectories": 1,
        "n_snapshots": 2,
        "interval": 0.02,
        "warmup": 0.02,
        "shard_size": 1,
        "seed": 0,
        "channel_grid": [8, 12, 8],
        "output_grid": [4, 4],
        "re_tau": 180.0,
        "closure": "smagorinsky",
        "drive": "pressure",
        "name": "c",
    }
    no_closure = helpers.generate_request(
        flows, "channel3d", None, None, None, values, None, {**channel, "closure": "none"}
    )
    assert "closure" not in no_closure and "output_grid" in no_closure
    assert "channel_grid" not in helpers.generate_request(
        flows, "ns2d-forced", None, None, None, values, None
    )
    # What is missing, in words: a channel needs its grid but no resolution.
    assert helpers.missing_values({**values, "resolution": None}, channel) == []
    partial = {**channel, "grid": [8, None, 8], "output_grid": [4, 6, None]}
    assert helpers.missing_values(values, partial) == [
        "the solver grid nx, ny, nz",
        "the stored grid's nx and nz (or none of its sizes)",
    ]
    # The stored grid's boxes: nx, nz keeps the solver's y; nx, ny, nz filters y too. The
    # box filter and its width are sent for the box filter only.
    three = {**channel, "output_grid": [4, 6, 4], "filter": "box", "filter_width": 2}
    raw3 = helpers.generate_request(flows, "channel3d", None, None, None, values, None, three)
    assert raw3["output_grid"] == [4, 6, 4]
    assert (raw3["filter"], raw3["filter_width"]) == ("box", 2.0)
    xz = {**channel, "output_grid": [4, None, 4], "filter": "spectral", "filter_width": 2}
    raw2 = helpers.generate_request(flows, "channel3d", None, None, None, values, None, xz)
    assert raw2["output_grid"] == [4, 4] and "filter" not in raw2 and "filter_width" not in raw2
    assert "box filter (width 2)" in helpers.job_detail(raw3)
    assert "@ 4×6×4 (solver 8×12×8)" in helpers.job_detail(raw3)
    assert helpers.missing_values({**values, "resolution": None}) == ["the resolution"]


def test_the_form_request_runs_as_a_channel_generate_job(state):
    from app.services import channel_views
    from app.ui.pages.datasets import helpers

    flows = helpers.flows_by_name()
    values = {"n_trajectories": 1, "n_snapshots": 2, "interval": 0.02, "warmup": 0.02}
    channel = {
        "grid": GRID,
        "output_grid": [4, 8, 4],
        "re_tau": 180,
        "closure": "wale",
        "filter": "box",
        "filter_width": 1.5,
    }
    raw = helpers.generate_request(flows, "channel3d", None, None, None, values, None, channel)
    job = run_generate(state, **raw)
    assert "@ 4×8×4 (solver 8×12×8)" in helpers.job_detail(job["params"])
    layout = channel_views.channel_dataset_layout(state, job["result"]["dataset_id"])
    assert layout["grid"] == [4, 8, 4]
    view = channel_views.channel_view(
        state, {"kind": "dataset", "id": job["result"]["dataset_id"], "trajectory": 0, "time": 1}
    )
    assert view["error"] is None and view["frame"]["shape"] == [4, 8, 4]


def test_the_form_hides_the_channel_parameters_until_a_channel_flow_is_chosen():
    from dash import html

    from app.ui.pages.datasets.layout import channel_section

    def find(node, wanted):
        if getattr(node, "id", None) == wanted:
            return node
        children = getattr(node, "children", None)
        for child in children if isinstance(children, list) else [children]:
            if child is not None and not isinstance(child, str):
                found = find(child, wanted)
                if found is not None:
                    return found
        return None

    from app.ui.pages.datasets.helpers import flows_by_name

    hidden = channel_section(flows_by_name())
    assert isinstance(hidden, html.Div) and "hidden" in hidden.className
    shown = channel_section(flows_by_name(), True)
    assert "hidden" not in shown.className
    assert [find(shown, f"data-ch-{k}").value for k in ("nx", "ny", "nz")] == [32, 49, 32]
    assert find(shown, "data-ch-closure").value == "none"
