"""Out-of-distribution warnings and rollout skill of 2D models (issue 15, items 4 and 5):
the statistics a model keeps of its training inputs (models/input_stats.py), the verdict
for a new field with its numbers, the rollout skill against persistence with its guard
(models/rollout_skill.py), the Models page's column, and the whole path through a real
worker: train → metrics, upload → warning, GET /api/models/{id}/fit, rollout and compare
setup events."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

from app.settings import Settings
from app.ui.pages import models as models_page
from models.input_stats import field_statistics, field_summary, input_fit, training_statistics
from models.rollout_skill import default_horizons, headline, rollout_skill
from physics.diagnostics import enstrophy, kinetic_energy
from physics.flows import get_flow
from tests.conftest import service_env


def power_law_field(n: int, slope: float, seed: int = 0) -> torch.Tensor:
    """A vorticity field (1, 1, n, n) whose energy spectrum falls as k^slope: |ω̂|² ∝
    k²·E(k)/k over each shell (random phases), so E(k) ∝ k^slope."""
    k = torch.fft.fftfreq(n, 1 / n)
    kx, ky = torch.meshgrid(k, k[: n // 2 + 1], indexing="ij")
    modulus = torch.sqrt(kx**2 + ky**2).double()
    amplitude = torch.where(modulus > 0, modulus ** ((slope + 1) / 2), torch.zeros(()))
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(modulus.shape, generator=g, dtype=torch.float64) * 2 * math.pi
    w = torch.fft.irfft2(amplitude * torch.exp(1j * phase), s=(n, n))
    return (w / w.std())[None, None]


# --- statistics and the verdict --------------------------------------------------------------


def test_field_statistics_are_the_diagnostics_and_the_fitted_slope():
    w = power_law_field(64, -4.0)
    stats = field_statistics(w)
    assert stats["energy"][0] == pytest.approx(float(kinetic_energy(w)[0]))
    assert stats["enstrophy"][0] == pytest.approx(float(enstrophy(w)[0]))
    # Shell averaging blurs a power law little over 3 ≤ k ≤ 16.
    assert stats["spectrum_slope"][0] == pytest.approx(-4.0, abs=0.3)
    assert field_statistics(power_law_field(64, -2.0))["spectrum_slope"][0] == pytest.approx(
        -2.0, abs=0.3
    )
    assert stats["amplitude"][0] == pytest.approx(float(torch.quantile(w.abs().flatten(), 0.99)))
    # Twice the field: four times the energy and enstrophy, twice the amplitude, same slope.
    doubled = field_summary(2 * w)
    single = field_summary(w[0, 0])
    assert doubled["energy"] == pytest.approx(4 * single["energy"])
    assert doubled["amplitude"] == pytest.approx(2 * single["amplitude"])
    assert doubled["spectrum_slope"] == pytest.approx(single["spectrum_slope"])


def test_training_statistics_span_the_frames_and_the_verdict_names_the_numbers():
    frames = torch.cat([power_law_field(32, -4.0, seed=s) * a for s, a in ((1, 1.0), (2, 2.0))])
    stats = training_statistics(frames[:, None])  # (traj, time, 1, n, n) works too
    assert stats["frames"] == 2 and stats["resolution"] == 32
    energies = field_statistics(frames)["energy"]
    assert stats["energy"]["min"] == pytest.approx(float(energies.min()))
    assert stats["energy"]["max"] == pytest.approx(float(energies.max()))

    inside = input_fit(field_summary(frames[:1] * 1.5), stats, "m")
    assert inside["known"] and not inside["far"] and inside["message"] == ""

    # Twenty times larger and rougher: far more energy than seen, a shallower spectrum.
    big = field_summary(power_law_field(32, -2.0, seed=3) * 20)
    fit = input_fit(big, stats, "demo FNO")
    assert fit["far"]
    by = {item["stat"]: item for item in fit["items"]}
    assert by["energy"]["far"] and by["energy"]["factor"] > 2
    assert by["spectrum_slope"]["far"] and by["spectrum_slope"]["distance"] > 1
    assert fit["message"].startswith("far from demo FNO's training data: energy ")
    assert f"{by['energy']['factor']:.2g}× the largest it saw" in fit["message"]
    assert "spectrum slope −" in fit["message"] and " in training" in fit["message"]

    small = input_fit(field_summary(frames[:1] * 0.1), stats, "m")
    assert small["far"] and "of the smallest it saw" in small["message"]
    zero = input_fit(field_summary(torch.zeros(32, 32)), stats, "m")
    energy = next(i for i in zero["items"] if i["stat"] == "energy")
    assert (
        zero["far"]
        and energy["factor"] is None
        and "energy none of the smallest" in zero["message"]
    )
    unknown = input_fit(big, None, "m")
    assert unknown == {"known": False, "far": False, "items": [], "message": ""}


# --- rollout skill ---------------------------------------------------------------------------


class Scale(nn.Module):
    """Each step multiplies the last frame by ``factor``."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return window[:, -1:] * self.factor


def test_rollout_skill_against_persistence_and_the_guard():
    w0 = power_law_field(16, -3.0)[:, None].float()  # (1, 1, 1, n, n)
    decay = torch.cat([w0 * 0.8**k for k in range(11)], dim=1)  # a trajectory decaying ×0.8
    exact = rollout_skill(Scale(0.8), decay)
    assert exact["horizons"] == default_horizons(10) == [1, 2, 5, 10]
    assert max(exact["rel_l2"]) < 1e-6 and exact["beats_persistence"]
    # Persistence against w0·0.8^h: ‖w0 − 0.8^h w0‖ / ‖0.8^h w0‖ = 0.8^−h − 1.
    for h, base in zip(exact["horizons"], exact["persistence_rel_l2"], strict=True):
        assert base == pytest.approx(0.8**-h - 1, rel=1e-5)
    assert exact["stopped_at"] is None and exact["completed"] == 10

    still = rollout_skill(Scale(1.0), decay, horizons=[1, 3], interval=0.5)
    assert still["horizons"] == [1, 3] and still["t"] == [0.5, 1.5]
    assert still["ratio"] == pytest.approx([1.0, 1.0]) and not still["beats_persistence"]
    assert headline(still) == pytest.approx(1.0)

    # Against a steady reference, ×3 per step: energy (mean square) 9× the reference's at
    # step 1, 81× at step 2 (guard: 10×).
    steady = w0.expand(1, 11, *w0.shape[2:])
    blow = rollout_skill(Scale(3.0), steady)
    assert blow["stopped_at"] == 2 and blow["completed"] == 1 and blow["horizons"] == [1]
    assert "81× the reference's at step 2" in blow["guard"]
    # The yardstick is the reference at the same time, not the start: a reference that grows
    # ×4 per step (16× the energy) does not trip the guard when the model follows it.
    growing = torch.cat([w0 * 4.0**k for k in range(4)], dim=1)
    assert rollout_skill(Scale(4.0), growing)["stopped_at"] is None
    assert headline(blow) == math.inf and not blow["beats_persistence"]
    nan = rollout_skill(Scale(math.nan), decay)
    assert nan["stopped_at"] == 1 and "non-finite" in nan["guard"]
    with pytest.raises(ValueError):
        rollout_skill(Scale(1.0), decay[:, :1])


def test_the_models_page_shows_rollout_skill_and_sorts_by_it():
    good = {
        "horizons": [1, 5, 20],
        "t": [1.0, 5.0, 20.0],
        "rel_l2": [0.05, 0.12, 0.3],
        "persistence_rel_l2": [0.2, 0.6, 0.9],
        "ratio": [0.25, 0.2, 0.33],
        "steps": 20,
        "stopped_at": None,
    }
    late = {**good, "rel_l2": [0.05, 0.7, 1.1], "ratio": [0.25, 1.17, 1.22]}
    broken = {**good, "horizons": [1], "t": [1.0], "rel_l2": [0.1], "persistence_rel_l2": [0.2]}
    broken |= {"ratio": [0.5], "stopped_at": 3, "guard": "energy 12× …"}
    text = str(models_page.rollout_skill_cell({"metrics": {"rollout_skill": good}}))
    assert "t 1: 0.05 vs 0.2" in text and "t 20: 0.3 vs 0.9" in text
    assert "beats persistence to t 20" in text and "no blow-up in 20 steps" in text
    assert "worse than persistence from t 5" in str(
        models_page.rollout_skill_cell({"metrics": {"rollout_skill": late}})
    )
    assert "guard stops it at step 3" in str(
        models_page.rollout_skill_cell({"metrics": {"rollout_skill": broken}})
    )
    assert models_page.rollout_skill_cell({"metrics": {}}) == ["—"]
    models = [
        {"id": "none", "metrics": {}},
        {"id": "broken", "metrics": {"rollout_skill": broken}},
        {"id": "late", "metrics": {"rollout_skill": late}},
        {"id": "good", "metrics": {"rollout_skill": good}},
    ]
    order = [m["id"] for m in models_page.sort_models(models, "rollout", "asc")]
    assert order == ["good", "late", "broken", "none"]
    assert "Rollout skill" in str(models_page.header_cells("rollout", "asc"))


# --- through a real worker -------------------------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.integration
def test_a_trained_model_keeps_its_input_statistics_and_warns_far_fields(
    tmp_path, redis_url, start_worker
):
    from tests.test_integration import _app, submit, wait_for
    from tests.test_training_jobs import SMALL_FNO, events_of, make_dataset

    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        dataset = make_dataset(client)  # 6 × 6 snapshots of ns2d-forced on 32²
        job = wait_for(
            client,
            submit(client, "train", dataset_id=dataset, arch="fno2d", config=SMALL_FNO, epochs=1),
            timeout=240,
        )
        assert job["status"] == "succeeded", job["error"]
        model_id = job["result"]["model_id"]
        metrics = client.get(f"/api/models/{model_id}").json()["metrics"]
        skill = metrics["rollout_skill"]
        assert skill["horizons"] == [1, 2, 5] and skill["t"] == [1.0, 2.0, 5.0]
        assert len(skill["rel_l2"]) == len(skill["persistence_rel_l2"]) == 3
        assert skill["trajectories"] >= 1 and "stopped_at" in skill
        assert events_of(client, job["id"], "rollout_skill")[0]["horizons"] == [1, 2, 5]
        stats = metrics["input_stats"]
        assert stats["resolution"] == 32 and stats["frames"] > 0
        assert 0 < stats["energy"]["min"] <= stats["energy"]["max"]

        flow = get_flow("ns2d-forced")
        typical = flow.random_initial_condition(32, seed=5)[0, 0].numpy()
        far = 30 * typical
        near = client.post(
            "/api/initial-conditions",
            files={"file": ("near.npy", _npy(typical))},
            data={"flow": "ns2d-forced"},
        )
        assert near.status_code == 201, near.text
        assert near.json()["model_fit"] == []
        answer = client.post(
            "/api/initial-conditions",
            files={"file": ("far.npy", _npy(far))},
            data={"flow": "ns2d-forced"},
        )
        assert answer.status_code == 201, answer.text
        [fit] = [f for f in answer.json()["model_fit"] if f["model_id"] == model_id]
        assert fit["far"] and "training data: energy " in fit["message"]
        assert "× the largest it saw" in fit["message"]
        far_id = answer.json()["id"]

        detail = client.get(f"/api/models/{model_id}/fit", params={"initial_condition_id": far_id})
        assert detail.status_code == 200, detail.text
        body = detail.json()
        assert body["far"] and body["message"] == fit["message"]
        assert body["field"]["energy"] > stats["energy"]["max"] * 2
        energy = next(i for i in body["items"] if i["stat"] == "energy")
        assert energy["factor"] == pytest.approx(body["field"]["energy"] / stats["energy"]["max"])
        ok = client.get(
            f"/api/models/{model_id}/fit", params={"initial_condition_id": near.json()["id"]}
        ).json()
        assert ok["known"] and not ok["far"]
        missing = client.get("/api/models/nope/fit", params={"initial_condition_id": far_id})
        assert missing.status_code == 404 and "no model" in missing.json()["detail"]
        no_ic = client.get(f"/api/models/{model_id}/fit", params={"initial_condition_id": "x"})
        assert no_ic.status_code == 404 and "no initial condition" in no_ic.json()["detail"]
        assert client.get(f"/api/models/{model_id}/fit").status_code == 422
        # What the Rollout and Compare pages call before a start.
        from app.services.model_fit import start_warnings

        state = client.app.state.eddyscope
        assert start_warnings(state, far_id, [model_id, model_id, "gone"]) == [fit["message"]]
        assert start_warnings(state, near.json()["id"], [model_id]) == []
        assert start_warnings(state, None, [model_id]) == []
        paths = client.get("/openapi.json").json()["paths"]
        assert {"200", "404", "422"} <= set(paths["/api/models/{model_id}/fit"]["get"]["responses"])

        # The start's answer carries the same advice (the job still starts).
        started = client.post(
            "/api/jobs",
            json={
                "kind": "rollout",
                "params": {
                    "model_id": model_id,
                    "initial_condition_id": far_id,
                    "steps": 2,
                    "flow": "ns2d-forced",
                },
            },
        )
        assert started.status_code == 202, started.text
        assert started.json()["warnings"] == [fit["message"]]
        plain = client.post(
            "/api/jobs",
            json={
                "kind": "rollout",
                "params": {
                    "model_id": model_id,
                    "initial_condition_id": near.json()["id"],
                    "steps": 2,
                    "flow": "ns2d-forced",
                },
            },
        )
        assert plain.status_code == 202 and plain.json()["warnings"] == []
        rollout = wait_for(client, started.json()["id"])
        assert rollout["status"] == "succeeded", rollout["error"]
        [setup] = events_of(client, rollout["id"], "rollout_setup")
        assert setup["warnings"] == [fit["message"]] and setup["input_fit"]["far"]
        compare = wait_for(
            client,
            submit(
                client,
                "compare",
                models=[{"model_id": model_id}],
                initial_condition_id=far_id,
                steps=2,
            ),
        )
        assert compare["status"] == "succeeded", compare["error"]
        [setup] = events_of(client, compare["id"], "compare_setup")
        assert setup["warnings"] == [fit["message"]]
        assert setup["models"][0]["input_fit"]["far"]


def test_the_upload_page_states_each_far_model_with_its_numbers():
    from app.ui.pages.upload import fit_warnings

    fits = [
        {"model_id": "a", "far": True, "message": "far from demo's training data: energy 3.2×"},
        {"model_id": "b", "far": False, "message": ""},
    ]
    [line] = fit_warnings(fits)
    assert line.id == "upload-fit-a"
    assert "Far from demo's training data: energy 3.2×." in str(line)
    assert fit_warnings([]) == []
