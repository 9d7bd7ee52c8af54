"""The Compare page's channel mode in a real headless Chromium against the real server and a
real Celery worker (``live_server``): a small filtered channel dataset generated and two
fno3d models trained on it through the API, a fine-grid channel snapshot uploaded; then, on
the Compare page, choose the snapshot, the two models and the Smagorinsky and WALE
baselines, Start, and see the overlaid U⁺ and rms profiles fill in while the job runs (one
trace per source, the MKM 1999 marks), the slices side by side, and the summary table with
the statistics errors once it is done.

Set ``EDDYSCOPE_SCREENSHOT=1`` to also save the page to ``docs/compare_channel.png``."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests import test_ui_browser
from tests.test_ui_browser import _choose, _text, _wait
from tests.test_ui_compare_page import _choose_models, _submit, _wait_job

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

FINE = [16, 24, 16]
COARSE = [8, 12, 8]
FNO3D = {"width": 4, "modes_x": 2, "modes_y": 2, "modes_z": 2, "n_layers": 1, "pad_y": 2}
# Statistics come every steps // 20 steps: long enough to sample the page a few times.
STEPS = 40
RUN_TIMEOUT_S = 420

PROFILES_JS = """
function traces(id) {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!gd || !gd.data) { return null; }
    return gd.data.map(t => ({
        meta: (typeof t.meta === 'string') ? t.meta : null,
        name: t.name,
        legend: t.showlegend !== false,
        type: t.type,
        n: Array.from(t.y || []).filter(v => v !== null).length,
        y: (t.type === 'heatmap') ? null : Array.from(t.y || []).slice(0, 6)
    }));
}
return JSON.stringify({
    mean: traces('compare-ch-mean'),
    rms: traces('compare-ch-rms'),
    slices: traces('compare-ch-slices'),
    xaxis: (() => {
        const gd = document.querySelector('#compare-ch-mean .js-plotly-plot');
        return gd && gd.layout && gd.layout.xaxis ? gd.layout.xaxis.type : null;
    })()
});
"""


TABLE_JS = """
return Array.from(document.querySelectorAll('#compare-ch-table tbody tr')).map(tr => {
    const out = {};
    tr.querySelectorAll('td[data-dash-column]').forEach(
        td => { out[td.getAttribute('data-dash-column')] = td.innerText.trim(); });
    return out;
}).filter(r => Object.keys(r).length);
"""


def _views(browser) -> dict:
    raw = browser.execute_script(PROFILES_JS)
    return json.loads(raw) if raw else {}


def _sources(traces: list[dict] | None) -> list[str]:
    keys = ("reference", "model:", "les:")
    return [t["meta"] for t in traces or [] if t["meta"] and t["meta"].startswith(keys)]


@pytest.fixture(scope="module")
def channel_models(live_server: str) -> dict:
    """A filtered channel dataset (solved on 16×24×16, stored on 8×12×8), two fno3d models
    trained on it, and a snapshot on the solver's grid uploaded: ``{"models", "ic"}``."""
    from physics.channel.solver import ChannelConfig, ChannelSolver

    tag = uuid.uuid4().hex[:6]
    generate = _submit(
        live_server,
        "generate",
        {
            "name": f"ui-channel-compare-{tag}",
            "flow": "channel3d",
            "channel_grid": FINE,
            "output_grid": COARSE,
            "n_trajectories": 2,
            "n_snapshots": 3,
            "interval": 0.02,
            "warmup": 0.05,
            "batch_size": 1,
            "seed": 5,
        },
    )
    job = _wait_job(live_server, generate, timeout=300)
    assert job["status"] == "succeeded", job
    dataset_id = job["result"]["dataset_id"]
    models = []
    for i, config in enumerate((FNO3D, FNO3D | {"width": 6})):
        train = _submit(
            live_server,
            "train",
            {
                "dataset_id": dataset_id,
                "name": f"ch-{tag}-{i}",
                "arch": "fno3d",
                "config": config,
                "epochs": 1,
                "seed": i,
            },
        )
        job = _wait_job(live_server, train, timeout=300)
        assert job["status"] == "succeeded", job
        models.append(job["result"]["model_id"])

    solver = ChannelSolver(ChannelConfig(nx=FINE[0], ny=FINE[1], nz=FINE[2]))
    centred = solver.grid.to_centres(solver.initial_condition(seed=7))[0]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        velocity=np.moveaxis(centred.numpy().astype(np.float32), 0, -1),
        y=solver.grid.y_centres.numpy(),
        nu=np.float64(1 / 180),
    )
    upload = httpx.post(
        f"{live_server}/api/initial-conditions",
        files={"file": (f"channel-{tag}.npz", buffer.getvalue())},
        data={"flow": "channel3d"},
    )
    assert upload.status_code == 201, upload.text
    return {"models": models, "ic": upload.json()["id"]}


def test_a_channel_comparison_from_the_compare_page(browser, live_server: str, channel_models):
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/compare")
    _wait(
        lambda: browser.find_elements(
            By.XPATH, "//*[@id='compare-ic']//*[contains(@class, 'dash-dropdown-value-item')]"
        ),
        30,
        "the initial conditions to load",
    )
    row = browser.find_element(By.ID, "compare-baselines-row")
    _choose(browser, "compare-ic", channel_models["ic"])
    _wait(lambda: "hidden" not in (row.get_attribute("class") or ""), 15, "the Baselines checklist")
    # The models picker offers the channel models of the flow, with their grid.
    _choose_models(browser, channel_models["models"])
    assert "8×12×8" in _text(browser, "compare-models")
    for closure in ("smagorinsky", "wale"):
        box = browser.find_element(By.CSS_SELECTOR, f"#compare-baselines input[value='{closure}']")
        if not box.is_selected():
            box.click()
    steps = browser.find_element(By.ID, "compare-steps")
    steps.clear()
    steps.send_keys(str(STEPS))
    time.sleep(0.3)
    browser.find_element(By.ID, "compare-start").click()
    _wait(lambda: "/compare/" in browser.current_url, 30, "the comparison's address")
    job_id = browser.current_url.rsplit("/", 1)[1]
    job = httpx.get(f"{live_server}/api/jobs/{job_id}").json()
    assert job["params"]["baselines"] == ["smagorinsky", "wale"], job["params"]
    keys = ["reference", "model:0", "model:1", "les:smagorinsky", "les:wale"]

    # While the job runs, the U⁺ and rms overlays fill in and change.
    live: list[str] = []
    status = ""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _text(browser, "compare-status").lower()
        if "running" in status:
            seen = _views(browser)
            if _sources(seen.get("mean")) and _sources(seen.get("rms")):
                live.append(json.dumps([seen["mean"], seen["rms"]]))
        if any(word in status for word in ("succeeded", "failed", "cancelled")):
            break
        time.sleep(0.3)
    assert "succeeded" in status, f"{status} (job {job_id}: {_text(browser, 'compare-status')})"
    assert live, "the U⁺ and rms overlays got no statistics while the job was running"
    assert len(set(live)) >= 2, "the overlays did not change while the job was running"

    summary = httpx.get(f"{live_server}/api/jobs/{job_id}").json()["result"]["summary"]
    completed = [r["key"] for r in summary["rows"] if r["status"] == "completed"]
    assert {"les:smagorinsky", "les:wale"} <= set(completed), summary["rows"]

    def final_views():
        seen = _views(browser)
        mean, rms = _sources(seen.get("mean")), _sources(seen.get("rms"))
        if {"reference", *completed} <= set(mean) and {"reference", *completed} <= set(rms):
            return seen
        return None

    seen = _wait(final_views, 30, "a U⁺ and an rms trace of every source")
    assert seen["xaxis"] == "log"
    mean = _sources(seen["mean"])
    # One trace per source in the U⁺ plot; in the rms figure, one per source per panel.
    assert len(mean) == len(set(mean)) and set(mean) <= set(keys)
    rms = _sources(seen["rms"])
    assert len(rms) == 4 * len(set(rms))
    assert [t["meta"] for t in seen["rms"] if t["meta"] in keys and t["legend"]] == [
        k for k in keys if k in rms
    ]
    assert any(t["meta"] == "mkm" for t in seen["mean"]), "the MKM 1999 marks"
    assert {"guide:sublayer", "guide:log-law"} <= {t["meta"] for t in seen["mean"]}
    # Slices: one heatmap per source, side by side.
    slices = _wait(
        lambda: [t for t in _views(browser).get("slices") or [] if t["type"] == "heatmap"],
        30,
        "the slices",
    )
    assert [t["meta"] for t in slices] == keys

    # Each column's status, and the summary table with the statistics errors.
    columns = _text(browser, "compare-ch-status")
    assert "Smagorinsky LES" in columns and "WALE LES" in columns
    _wait(
        lambda: (
            len(browser.find_elements(By.CSS_SELECTOR, "#compare-ch-table tbody tr")) >= len(keys)
        ),
        30,
        "the summary table",
    )
    table = _text(browser, "compare-ch-table")
    for header in ("U⁺", "u′rms", "v′rms", "w′rms", "−u′v′", "ms/step", "Speedup over"):
        assert header in table, header
    assert "Smagorinsky LES" in table and "WALE LES" in table
    assert "completed" in table
    # Exports: the metrics CSV only (netCDF and GIF are of 2D frames).
    assert browser.find_elements(By.ID, "compare-export-metrics")
    assert not browser.find_elements(By.ID, "compare-export-netcdf")
    assert not browser.find_elements(By.ID, "compare-export-animated")
    # The table's numbers are the summary's (formatted to 3 significant digits).
    cells = browser.execute_script(TABLE_JS)
    for i, row in enumerate(summary["rows"]):
        shown = cells[i]
        assert shown["column"] and shown["status"] == row["status"], (shown, row)
        for closure, value in row["speedup"].items():
            assert shown[f"speedup_{closure}"] == f"{value:.3g}", (row["key"], shown)
        for name, value in row["errors"].items():
            percent = float(shown[name].rstrip("%"))
            assert percent == pytest.approx(value * 100, abs=0.006), (row["key"], name, shown)
    if os.environ.get("EDDYSCOPE_SCREENSHOT"):
        target = Path(__file__).resolve().parents[1] / "docs" / "compare_channel.png"
        browser.set_window_size(1440, 3200)
        time.sleep(1.0)
        browser.save_screenshot(str(target))

    # Reopened at its address: the same views from the stored events.
    browser.get(f"{live_server}/compare/{job_id}")
    _wait(lambda: "succeeded" in _text(browser, "compare-status").lower(), 60, "the reopened run")
    again = _wait(final_views, 30, "the reopened U⁺ and rms overlays")
    assert _sources(again["mean"]) == mean
    _wait(
        lambda: (
            len(browser.find_elements(By.CSS_SELECTOR, "#compare-ch-table tbody tr")) >= len(keys)
        ),
        30,
        "the reopened summary table",
    )
    assert browser.find_element(By.ID, "compare-grid").get_attribute("class").endswith("hidden")


def test_the_models_page_shows_the_channel_models_long_horizon_skill(
    browser, live_server: str, channel_models
):
    """Each channel model trained above has its long-horizon skill on the Models page,
    beside its one-step error, as the API records it; its grid is written nx×ny×nz."""
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/models")
    for model_id in channel_models["models"]:
        row = _wait(
            lambda model_id=model_id: browser.find_elements(By.ID, f"model-row-{model_id}"),
            30,
            f"the row of model {model_id}",
        )[0]
        skill = httpx.get(f"{live_server}/api/models/{model_id}").json()["metrics"]["long_horizon"]
        cell = row.find_element(By.CSS_SELECTOR, ".model-long-horizon").text
        if skill["stopped_at"]:
            assert f"stopped at step {skill['stopped_at']} of {skill['steps']}" in cell, cell
        else:
            assert f"stable over {skill['steps']} steps" in cell, cell
        if skill["errors"]:
            assert f"U {100 * skill['errors']['u_mean']:.3g} %" in cell, (cell, skill)
        assert "8×12×8" in row.text, row.text
