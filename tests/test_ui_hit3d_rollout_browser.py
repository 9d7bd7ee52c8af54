"""The Rollout page and a hit3d rollout in a real headless Chromium against the real server
and a real Celery worker (``live_server``): a tiny decaying dataset (16³) is generated and a
3D FNO trained on it for one epoch through the API, rolled out three steps beside the
reference solver, and the page that reopens the run (``/rollout/<job id>``) shows the HIT
panels: the statistics card of model and reference, E(k) of both with the k^(−5/3) guide,
E(t), ε(t) of both, the error curve, and the |ω| midplanes of model, reference and error.
The card's Re_λ of each source is the one the stored last frame gives, recomputed here from
the frames the API serves."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import torch

from physics.hit3d import diagnostics
from tests import test_ui_browser
from tests.test_ui_browser import _text, _wait
from tests.test_ui_data_page import _fill

pytestmark = pytest.mark.browser

browser = test_ui_browser.browser

N, STEPS = 16, 3
FNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_layers": 1, "pad_y": 0,
       "add_grid": False}  # fmt: skip

PANELS_JS = """
const plot = id => document.querySelector('#' + id + ' .js-plotly-plot');
const spec = plot('rollout-hit3d-spectrum'), slices = plot('rollout-hit3d-slices');
const series = plot('rollout-hit3d-series'), error = plot('rollout-error-curve');
const section = document.getElementById('rollout-hit3d-section');
if (!spec || !spec.data || !slices || !slices.data || !series || !series.data || !error
    || !error.data || !section) { return null; }
const dts = Array.from(document.querySelectorAll('#rollout-hit3d-summary dt'));
const cell = (label, source) => {
    const dt = dts.find(d => d.innerText.trim() === label);
    const span = dt ? dt.nextElementSibling.querySelector('.stat-' + source) : null;
    return span ? span.innerText.trim() : null;
};
return JSON.stringify({
    hidden: section.hidden,
    spectrum: spec.data.map(t => ({name: t.name, n: (t.x || []).length, meta: t.meta || null})),
    xaxis: spec.layout.xaxis.type,
    slices: slices.data.map(t => t.type),
    rows: slices.layout.meta && slices.layout.meta.rows,
    series: series.data.map(t => t.name),
    error: error.data.map(t => (t.x || []).length),
    reModel: cell('Re_λ', 'model'),
    reReference: cell('Re_λ', 'reference'),
    grid: cell('grid', 'reference'),
    note: document.getElementById('rollout-hit3d-note').innerText
});
"""


def _job(base: str, kind: str, timeout: float = 240, **params) -> dict:
    response = httpx.post(f"{base}/api/jobs", json={"kind": kind, "params": params}, timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = _wait(
        lambda: (
            (j := httpx.get(f"{base}/api/jobs/{job_id}", timeout=10).json())["status"]
            in ("succeeded", "failed", "cancelled")
            and j
        ),
        timeout,
        f"the {kind} job",
        every=0.5,
    )
    assert job["status"] == "succeeded", job["error"]
    return job


def _panels(driver) -> dict | None:
    raw = driver.execute_script(PANELS_JS)
    seen = json.loads(raw) if raw else None
    if not seen or seen["hidden"] or not seen["reModel"] or not seen["reReference"]:
        return None
    if seen["slices"] != ["heatmap"] * 9 or seen["error"] != [STEPS + 1]:
        return None
    return seen if f"step {STEPS}" in seen["note"] else None


def test_the_rollout_page_shows_a_hit3d_rollout(browser, live_server: str):
    base = live_server
    generate = _job(
        base,
        "generate",
        flow="hit3d",
        resolution=N,
        n_trajectories=2,
        n_snapshots=3,
        interval=0.1,
        batch_size=2,
        seed=4,
    )
    dataset_id = generate["result"]["dataset_id"]
    train = _job(base, "train", dataset_id=dataset_id, arch="fno3d", config=FNO, epochs=1)
    rollout = _job(base, "rollout", model_id=train["result"]["model_id"], steps=STEPS, seed=1)
    rollout_id = rollout["result"]["rollout_id"]

    browser.get(f"{base}/rollout/{rollout['id']}")
    seen = _wait(lambda: _panels(browser), 60, "the HIT panels of the rollout")
    assert "Isotropic turbulence" in _text(browser, "rollout-fields")
    # E(k) of the model and of the reference, then the guide.
    assert [t["name"] for t in seen["spectrum"]] == [
        "E(k), model",
        "E(k), reference solver",
        "k^(−5/3)",
    ]
    assert seen["spectrum"][2]["meta"] == "guide:-5/3" and seen["xaxis"] == "log"
    assert seen["rows"] == ["model", "reference", "error"]
    assert seen["series"] == ["E model", "ε model", "E reference solver", "ε reference solver"]
    assert seen["grid"] == f"{N}³"

    # The card's Re_λ of each source: the last stored frame's, recomputed here.
    events = httpx.get(
        f"{base}/api/jobs/{rollout['id']}/events", params={"limit": 10_000}, timeout=10
    ).json()
    nu = next(e for e in events if e["type"] == "rollout_setup")["payload"]["reference"]["nu"]
    for source, shown in (("model", seen["reModel"]), ("reference", seen["reReference"])):
        response = httpx.get(
            f"{base}/api/rollouts/{rollout_id}/frames/{STEPS}",
            params={"source": source},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        u = np.load(io.BytesIO(response.content), allow_pickle=False)
        expected = float(
            diagnostics.taylor_reynolds(torch.from_numpy(u.astype(np.float64))[None], nu)[0]
        )
        assert float(shown) == pytest.approx(expected, rel=1e-3), (source, shown, expected)

    # Started from the page: "Roll out →" of the model picks a hit3d field (its random field,
    # or the newest hit3d upload when the shared live server holds one from another test:
    # the random field is then chosen here) and the model; Start goes to the new run, whose
    # panels fill in live.
    from selenium.webdriver.common.by import By

    from app.ui.pages.rollout import RANDOM_HIT3D
    from tests.test_ui_browser import _choose

    uploads = httpx.get(f"{base}/api/initial-conditions", timeout=10).json()
    browser.get(f"{base}/rollout?model={train['result']['model_id']}")
    if any(ic["flow"] == "hit3d" for ic in uploads):
        _wait(lambda: "fno3d" in _text(browser, "rollout-model"), 30, "the model chosen")
        _choose(browser, "rollout-ic", RANDOM_HIT3D)
    _wait(lambda: "Random field (hit3d" in _text(browser, "rollout-ic"), 30, "hit3d's random field")
    _wait(lambda: "fno3d" in _text(browser, "rollout-model"), 30, "the model chosen")
    _fill(browser, "rollout-steps", STEPS)
    start = browser.find_element(By.ID, "rollout-start")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", start)
    start.click()
    started = _wait(
        lambda: (
            (path := browser.execute_script("return location.pathname")) != "/rollout"
            and path.startswith("/rollout/")
            and path.rsplit("/", 1)[-1]
        ),
        30,
        "the new run's address",
    )
    assert started != rollout["id"]
    seen = _wait(
        lambda: (s := _panels(browser)) and f"Rollout job {started[:8]}" in s["note"] and s,
        90,
        "the HIT panels of the run started from the page",
    )
    assert seen["rows"] == ["model", "reference", "error"]
