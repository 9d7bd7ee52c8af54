"""The HIT panels of a hit3d rollout without a browser: the figures of several sources
(``app.ui.hit3d_figures``), the card and the panels (``app.ui.hit3d_panels``), and the view
of a rollout (``app.services.hit3d_rollouts``) of a job run in this process by the worker's
runner: at the newest step it is the worker's ``hit3d_stats`` events, at a step with no
event it is recomputed from the stored frame, and the error's slices are those of
model − reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.db.tables import Dataset, Rollout
from app.hit3d_summary import snapshot_slices, snapshot_summary
from app.services import hit3d_rollouts
from app.settings import Settings
from app.state import AppState
from app.ui import hit3d_figures as hf
from app.ui import hit3d_panels
from app.ui.pages import rollout as page
from models.registry import build_model
from physics.flows import get_flow
from physics.formats.store import read_rollout_frame
from tests.test_compare import register_model, run_in_process
from workers.runners.rollout import run_rollout

N = 16
L = 2 * math.pi
FNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_layers": 1, "pad_y": 0,
       "add_grid": False, "channels": 3}  # fmt: skip


@pytest.fixture(scope="module")
def fields() -> dict[str, np.ndarray]:
    flow = get_flow("hit3d")
    model = flow.random_initial_condition(N, seed=1)[0].numpy()
    reference = flow.random_initial_condition(N, seed=2)[0].numpy()
    return {"model": model, "reference": reference}


def test_the_figures_draw_one_curve_per_source(fields):
    summaries = {s: snapshot_summary(u, 0.04, L) for s, u in fields.items()}
    spectra = {s: v["spectrum"] for s, v in summaries.items()}
    fig = hf.spectrum_figure(summaries["model"]["k"], spectra, N)
    assert [t.name for t in fig.data] == ["E(k), model", "E(k), reference solver", "k^(−5/3)"]
    assert fig.data[2].meta == "guide:-5/3"
    # The guide is anchored on the reference's spectrum.
    assert fig.layout.meta["constant"] == pytest.approx(
        hf.kolmogorov_guide(summaries["reference"]["k"], spectra["reference"])["constant"]
    )

    series = {
        "t": [0.0, 0.1],
        "energy": {"model": [1.0, 0.9], "reference": [1.0, None]},
        "dissipation": {"model": [0.5, 0.4], "reference": [0.5, 0.45]},
        "source": "rollout",
    }
    fig = hf.series_figure(series, N)
    assert [t.name for t in fig.data] == [
        "E model",
        "ε model",
        "E reference solver",
        "ε reference solver",
    ]
    assert [t.yaxis for t in fig.data] == ["y", "y2", "y", "y2"]
    assert list(fig.data[2].y) == [1.0, None]  # a diverged value leaves a gap

    pdfs = {s: v["pdf"] for s, v in summaries.items()}
    fig = hf.vorticity_pdf_figure(pdfs, "component", N)
    assert [t.name for t in fig.data] == ["PDF, model", "PDF, reference solver", "Gaussian field"]

    rows = {s: snapshot_slices(u, L)["vorticity"] for s, u in fields.items()}
    rows["error"] = snapshot_slices(fields["model"] - fields["reference"], L)["vorticity"]
    fig = hf.slices_grid_figure(rows, "vorticity", N, L)
    assert [t.type for t in fig.data] == ["heatmap"] * 9
    assert fig.layout.meta["rows"] == ["model", "reference", "error"]
    # Each row has its own colour scale, from 0 to its own largest |ω|.
    assert [t.coloraxis for t in fig.data[::3]] == ["coloraxis", "coloraxis2", "coloraxis3"]
    assert fig.layout.coloraxis3.cmax == pytest.approx(
        max(float(np.max(p)) for p in rows["error"].values())
    )
    np.testing.assert_allclose(fig.data[7].z, rows["error"]["y"], rtol=1e-6)


def test_the_card_has_one_value_per_source(fields):
    stats = {s: snapshot_summary(u, 0.04, L)["stats"] for s, u in fields.items()}
    columns = hf.statistics_columns({**stats, "broken": None}, N)
    single = {s: {label: v for label, v, _ in hf.statistics_items(x, N)} for s, x in stats.items()}
    for label, values, _ in columns:
        assert values["model"] == single["model"][label]
        assert values["reference"] == single["reference"][label]
        assert values["broken"] == "—"
    card = hit3d_panels.summary_columns(stats, N)
    assert len(card) == 2 * (len(columns) + 1)  # a head row, then one row per statistic


def test_a_rollout_view_is_its_events_and_its_stored_frames(tmp_path, redis_url):
    state = AppState.from_settings(Settings(data_dir=tmp_path, broker_url=redis_url))
    state.db.migrate()
    with state.db.session() as session:
        dataset = Dataset(
            name="hit3d 16³",
            flow="hit3d",
            params={"nu": 0.05, "closure": "none", "filter": "none", "interval": 0.1},
            shape=[2, 3, N, N, N, 3],
            path="datasets/none.h5",
        )
        session.add(dataset)
        session.commit()
        dataset_id = dataset.id
    torch.manual_seed(0)
    model_id = register_model(
        state.db, state.artifacts, build_model("fno3d", FNO), FNO, name="hit",
        arch="fno3d", flow="hit3d", resolution=N, interval=0.1, dataset_id=dataset_id,
    )  # fmt: skip
    job_id, result = run_in_process(
        state.db, state.artifacts, "rollout", {"model_id": model_id, "steps": 3}, run_rollout
    )
    rollout_id = result["rollout_id"]

    newest = hit3d_rollouts.hit3d_rollout_view(state, job_id)
    assert newest["final"] and newest["sources"] == ["model", "reference"]
    assert newest["step"] == 3 and newest["n"] == N
    assert newest["series"]["energy"]["model"][0] == newest["series"]["energy"]["reference"][0]
    with state.db.session() as session:
        path = state.artifacts.resolve(session.get(Rollout, rollout_id).path)
    frames = {s: read_rollout_frame(path, 3, s)[0] for s in ("model", "reference")}
    for source, u in frames.items():
        again = snapshot_summary(u, 0.05, L)["stats"]
        assert newest["stats"][source]["taylor_reynolds"] == pytest.approx(
            again["taylor_reynolds"], rel=1e-9
        )
    error = snapshot_slices(frames["model"] - frames["reference"], L)["vorticity"]["z"]
    np.testing.assert_allclose(newest["slices"]["error"]["vorticity"]["z"], error, rtol=1e-6)

    # Step 1 had no event (throttled): its numbers come from its stored frame.
    middle = hit3d_rollouts.hit3d_rollout_view(state, job_id, step=1)
    assert middle["step"] == 1 and "step 1" in middle["label"]
    u = read_rollout_frame(path, 1, "model")[0]
    assert middle["stats"]["model"]["energy"] == pytest.approx(
        snapshot_summary(u, 0.05, L)["stats"]["energy"], rel=1e-9
    )
    outputs = hit3d_panels.render(middle)
    assert len(outputs) == len(hit3d_panels.OUTPUTS)
    assert [t.type for t in outputs[4].data] == ["heatmap"] * 9
    assert hit3d_rollouts.hit3d_rollout_view(state, "no-such-job") is None


def test_the_rollout_form_offers_hit3d_s_random_field():
    model = {"id": "h", "flow": "hit3d", "dims": 3, "resolution": N, "name": "h",
             "arch": "fno3d", "interval": 0.1}  # fmt: skip
    flat = {**model, "id": "f", "dims": 2}
    assert page.RANDOM_HIT3D in [o["value"] for o in page.ic_options([])]
    assert page.ic_flow([], page.RANDOM_HIT3D) == "hit3d"
    # A hit3d model with no hit3d upload starts from hit3d's random field; a 2D
    # architecture is never offered for the 3D field.
    assert page.pick_initial_condition({"model": "h"}, [], None, model) == page.RANDOM_HIT3D
    offered = [o["value"] for o in page.model_options([model, flat], None, "hit3d")]
    assert offered == [page.REFERENCE_ONLY, "h"]
    assert "16³" in page.model_options([model], None, "hit3d")[1]["label"]
    assert page.rollout_params(page.RANDOM_HIT3D, "h", 3, None) == {
        "steps": 3,
        "flow": "hit3d",
        "model_id": "h",
    }
    # A reopened run from hit3d's random field shows that field again.
    reopened = {"flow": "hit3d", "initial_condition_id": None}
    assert page.pick_initial_condition({}, [], reopened) == page.RANDOM_HIT3D
