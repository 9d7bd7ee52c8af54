"""The Compare page and a hit3d comparison in a real headless Chromium against the real server
and a real Celery worker (``live_server``): a tiny decaying dataset (16³), a 3D FNO and a 3D
IFNO trained on it for one epoch and a hit3d velocity uploaded, all through the API; the
page's model picker for that upload offers exactly those two models; the page that reopens
the comparison (``/compare/<job id>``) shows the HIT panels instead of the 2D grid: the
statistics columns of the reference and both models, E(k) of every source with the k^(−5/3)
guide, E(t), ε(t) and the error curves of both models, the |ω| midplanes of every source, and
the summary. The card's Re_λ of each source and the summary's final error of each model are
the ones recomputed here from the frames the API serves. Every panel names each model by its
name and precision; the run details give the n³ grid; the exports are the metrics CSV only."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import torch

from physics.flows import get_flow
from physics.hit3d import diagnostics
from tests import test_ui_browser
from tests.test_ui_browser import _wait
from tests.test_ui_hit3d_rollout_browser import _job

pytestmark = pytest.mark.browser

browser = test_ui_browser.browser

N, STEPS = 16, 3
CUBE = {"pad_y": 0, "add_grid": False}
FNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_layers": 1, **CUBE}
IFNO = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 3, "n_iterations": 2, **CUBE}
SOURCES = ("reference", "model:0", "model:1")

PANELS_JS = """
const plot = id => document.querySelector('#' + id + ' .js-plotly-plot');
const spec = plot('compare-hit3d-spectrum'), slices = plot('compare-hit3d-slices');
const series = plot('compare-hit3d-series'), errors = plot('compare-hit3d-errors');
const results = document.getElementById('compare-hit3d-results');
const grid = document.getElementById('compare-grid');
if (!spec || !spec.data || !slices || !slices.data || !series || !series.data || !errors
    || !errors.data || !results) { return null; }
const dts = Array.from(document.querySelectorAll('#compare-hit3d-summary dt'));
const cell = (label, source) => {
    const dt = dts.find(d => d.innerText.trim() === label);
    const span = dt ? dt.nextElementSibling.querySelector('[class~="stat-' + source + '"]')
        : null;
    return span ? span.innerText.trim() : null;
};
const rows = Array.from(document.querySelectorAll('#compare-hit3d-table tr[data-source]'));
return JSON.stringify({
    shown: !results.classList.contains('hidden'),
    gridHidden: grid.classList.contains('hidden'),
    spectrum: spec.data.map(t => t.name),
    slicesRows: slices.layout.meta && slices.layout.meta.rows,
    series: series.data.length,
    errors: errors.data.map(t => (t.x || []).length),
    re: ['reference', 'model:0', 'model:1'].map(s => cell('Re_λ', s)),
    finalErrors: rows.map(r => [r.dataset.source,
        Array.from(r.querySelectorAll('.hit3d-error-at')).map(td => td.innerText.trim())]),
    note: document.getElementById('compare-hit3d-note').innerText,
    head: Array.from(document.querySelectorAll('#compare-hit3d-summary dd')[0]
        .querySelectorAll('span[class*="stat-"]')).map(s => s.innerText.trim()),
    errorNames: errors.data.map(t => t.name),
    details: document.getElementById('compare-details').innerText,
    exports: Array.from(document.querySelectorAll('#compare-exports a')).map(a => a.id)
});
"""

DEBUG_JS = """
const ids = ['compare-hit3d-results', 'compare-hit3d-spectrum', 'compare-hit3d-slices',
    'compare-hit3d-series', 'compare-hit3d-errors', 'compare-hit3d-note', 'compare-status'];
return JSON.stringify(ids.map(id => {
    const el = document.getElementById(id);
    return [id, el ? el.className : null, el ? el.innerText.slice(0, 200) : null,
        el ? !!el.querySelector('.js-plotly-plot') : null];
}));
"""

OPTIONS_JS = """
return JSON.stringify(Array.from(
    document.querySelectorAll('[role=option] input')).map(i => i.value));
"""


def _panels(driver) -> dict | None:
    raw = driver.execute_script(PANELS_JS)
    seen = json.loads(raw) if raw else None
    if not seen or not seen["shown"] or not all(seen["re"]) or len(seen["finalErrors"]) != 2:
        return None
    if seen["errors"] != [STEPS + 1, STEPS + 1]:
        return None
    return seen if f"step {STEPS}" in seen["note"] else None


def _frame(base: str, rollout_id: str, k: int, source: str) -> torch.Tensor:
    response = httpx.get(
        f"{base}/api/rollouts/{rollout_id}/frames/{k}", params={"source": source}, timeout=10
    )
    assert response.status_code == 200, response.text
    u = np.load(io.BytesIO(response.content), allow_pickle=False)
    return torch.from_numpy(u.astype(np.float64))[None]


def test_the_compare_page_shows_a_hit3d_comparison(browser, live_server: str):
    from selenium.webdriver.common.by import By

    base = live_server
    generate = _job(base, "generate", flow="hit3d", resolution=N, n_trajectories=2,
                    n_snapshots=3, interval=0.1, batch_size=2, seed=5)  # fmt: skip
    dataset_id = generate["result"]["dataset_id"]
    models = [
        _job(base, "train", dataset_id=dataset_id, arch=arch, config=config, epochs=1)["result"][
            "model_id"
        ]
        for arch, config in (("fno3d", FNO), ("ifno3d", IFNO))
    ]
    u0 = get_flow("hit3d").make_initial_condition("random", N, 1, 2, "cpu", torch.float32)
    buffer = io.BytesIO()
    np.save(buffer, u0[0].numpy())
    response = httpx.post(
        f"{base}/api/initial-conditions",
        files={"file": ("velocity.npy", buffer.getvalue())},
        data={"flow": "hit3d"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    ic = response.json()["id"]

    # The picker offers the hit3d models only (the live server holds other flows' models too).
    browser.get(f"{base}/compare?ic={ic}")
    _wait(lambda: browser.find_elements(By.ID, "compare-models"), 30, "the models picker")
    _wait(lambda: "trained on hit3d" in browser.find_element(By.ID, "compare-models-note").text,
          30, "the hit3d models note")  # fmt: skip
    browser.find_element(By.ID, "compare-models").click()
    offered = _wait(
        lambda: (o := json.loads(browser.execute_script(OPTIONS_JS))) and o, 15, "the options"
    )
    stored = {m["id"] for m in httpx.get(f"{base}/api/models", timeout=10).json()}
    assert sorted(set(offered) & stored) == sorted(models)  # (other inputs: the form's)

    job = _job(
        base,
        "compare",
        initial_condition_id=ic,
        models=[{"model_id": m} for m in models],
        steps=STEPS,
    )
    rollout_id = job["result"]["rollout_id"]
    browser.get(f"{base}/compare/{job['id']}")
    try:
        seen = _wait(lambda: _panels(browser), 60, "the HIT panels of the comparison")
    except AssertionError:
        print("seen:", browser.execute_script(DEBUG_JS))  # what the page shows, for the log
        raise
    assert seen["gridHidden"]
    by_id = {m["id"]: m["name"] for m in httpx.get(f"{base}/api/models", timeout=10).json()}
    labels = ["reference LES", *(f"{by_id[m]} (float32)" for m in models)]
    assert seen["spectrum"] == [f"E(k), {label}" for label in labels] + ["k^(−5/3)"]
    assert seen["head"] == labels and seen["errorNames"] == labels[1:]
    assert f"{N}³" in seen["details"] and f"{N}²" not in seen["details"]
    assert seen["exports"] == ["compare-export-metrics"]
    assert seen["slicesRows"] == list(SOURCES)
    assert seen["series"] == 2 * len(SOURCES)  # E and ε of every source

    events = httpx.get(
        f"{base}/api/jobs/{job['id']}/events", params={"limit": 10_000}, timeout=10
    ).json()
    nu = next(e for e in events if e["type"] == "compare_setup")["payload"]["nu"]
    frames = {s: _frame(base, rollout_id, STEPS, s) for s in SOURCES}
    for source, shown in zip(SOURCES, seen["re"], strict=True):
        expected = float(diagnostics.taylor_reynolds(frames[source], nu)[0])
        assert float(shown) == pytest.approx(expected, rel=1e-3), (source, shown, expected)
    for source, values in seen["finalErrors"]:
        ref, model = frames["reference"], frames[source]
        expected = float((model - ref).flatten().norm() / ref.flatten().norm())
        assert float(values[-1]) == pytest.approx(expected, rel=1e-3), (source, values)
