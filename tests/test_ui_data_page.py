"""The Data page in a real headless Chromium against the real server and a real Celery worker
(the ``live_server`` fixture): generate a tiny dataset from the form, follow it to the end,
preview one of its trajectories; and a refused request shows the API's own sentence."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests import test_ui_browser
from tests.test_ui_browser import _text, _wait

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

N, T, GRID = 2, 4, 32

ANIMATION_JS = """
const gd = document.querySelector('#data-preview-animation .js-plotly-plot');
if (!gd || !gd.data || !gd._transitionData) { return null; }
const frames = gd._transitionData._frames || [];
return JSON.stringify({
    type: gd.data[0].type,
    frames: frames.map(f => f.name),
    cmin: gd.layout.coloraxis.cmin,
    cmax: gd.layout.coloraxis.cmax,
    title: gd.layout.title.text,
    sliders: (gd.layout.sliders || []).length,
    buttons: (gd.layout.updatemenus || []).length
});
"""

CURVES_JS = """
const gd = document.querySelector('#data-preview-energy .js-plotly-plot');
if (!gd || !gd.data) { return null; }
return JSON.stringify(gd.data.map(t => ({
    name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])
})));
"""

SPECTRUM_JS = """
const gd = document.querySelector('#data-preview-spectrum .js-plotly-plot');
if (!gd || !gd.data || !gd._transitionData) { return null; }
return JSON.stringify({
    names: gd.data.map(t => t.name),
    frames: (gd._transitionData._frames || []).length,
    xaxis: gd.layout.xaxis.type,
    yaxis: gd.layout.yaxis.type
});
"""


def _js(driver, script: str):
    raw = driver.execute_script(script)
    return json.loads(raw) if raw else None


def _fill(driver, element_id: str, value) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.ID, element_id)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    if value is not None:
        box.send_keys(str(value))
    _wait(
        lambda: (
            driver.find_element(By.ID, element_id).get_attribute("value")
            == ("" if value is None else str(value))
        ),
        5,
        f"{element_id} to read {value}",
    )


def _open_form(driver, live_server: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{live_server}/data")
    _wait(lambda: driver.find_elements(By.ID, "data-generate"), 30, "the form")
    _wait(lambda: "1e-3" in _text(driver, "data-nu"), 15, "the viscosity choices")


def _fill_tiny(driver, solver_resolution: int | None = None) -> None:
    _fill(driver, "data-n", N)
    _fill(driver, "data-t", T)
    _fill(driver, "data-resolution", GRID)
    _fill(driver, "data-solver-resolution", solver_resolution)
    _fill(driver, "data-interval", 0.1)
    _fill(driver, "data-shard-size", 1)


def test_generate_follow_and_preview_a_dataset(browser, live_server: str):
    from selenium.webdriver.common.by import By

    name = f"ui-data-{uuid.uuid4().hex[:6]}"
    _open_form(browser, live_server)
    _fill_tiny(browser)
    _fill(browser, "data-name", name)
    assert f"{N} × {T} snapshots at {GRID}²" in _text(browser, "data-summary")
    browser.find_element(By.ID, "data-generate").click()

    ok = _wait(lambda: browser.find_elements(By.ID, "data-feedback-ok"), 30, "the job to start")
    assert "Started" in ok[0].text and "2 shards" in ok[0].text
    job_short = ok[0].text.split("Job ", 1)[1].split()[0]

    # Progress: the job is listed with a progress bar and its shards counted out of 2.
    def job_item():
        items = browser.find_elements(
            By.XPATH,
            f"//*[@id='data-jobs']//*[contains(@class, 'gen-job')][.//code[text()='{job_short}']]",
        )
        return items[0] if items and "/2 shards done" in items[0].text else None

    item = _wait(job_item, 30, "the job in the generation list")
    assert item.find_elements(By.CSS_SELECTOR, ".progress .progress-fill")
    assert f"{N} × {T} snapshots @ {GRID}²" in item.text

    # The dataset appears in the list when the last shard is done.
    preview = _wait(
        lambda: browser.find_elements(
            By.XPATH,
            f"//*[@id='data-table']//tr[.//span[text()='{name}']]//button[text()='Preview']",
        ),
        90,
        "the dataset in the list",
    )[0]
    done = _wait(job_item, 10, "the finished job")
    assert "2/2 shards done" in done.text and "succeeded" in done.text
    # The "Started." note gives way to the outcome once the job has ended.
    outcome = _wait(
        lambda: browser.find_elements(By.ID, "data-feedback-done"), 15, "the job's outcome"
    )[0]
    assert "succeeded" in outcome.text and job_short in outcome.text
    assert not browser.find_elements(By.ID, "data-feedback-ok")
    preview.click()

    anim = _wait(lambda: _js(browser, ANIMATION_JS), 30, "the animation")
    assert anim["type"] == "heatmap"
    assert anim["frames"] == [str(i) for i in range(T)]
    assert anim["cmin"] == pytest.approx(-anim["cmax"]) and anim["cmax"] > 0
    assert anim["sliders"] == 1 and anim["buttons"] == 1
    assert f"snapshot 1 of {T}" in anim["title"]

    curves = _wait(lambda: _js(browser, CURVES_JS), 30, "the energy and enstrophy curves")
    assert [c["name"] for c in curves] == ["energy E", "enstrophy Z"]
    for curve in curves:
        assert len(curve["x"]) == len(curve["y"]) == T
        assert all(v is not None and v > 0 for v in curve["y"])
    assert curves[0]["x"] == pytest.approx([0.1 * i for i in range(T)])

    spectrum = _wait(lambda: _js(browser, SPECTRUM_JS), 30, "the spectrum")
    assert spectrum["xaxis"] == spectrum["yaxis"] == "log"
    assert spectrum["frames"] == T
    assert any(n.startswith("first") for n in spectrum["names"])
    assert any(n.startswith("last") for n in spectrum["names"])
    assert name in _text(browser, "data-preview-title")

    # Another trajectory of the same dataset: other values; one that is not there: a sentence.
    _fill(browser, "data-preview-trajectory", 1)
    browser.find_element(By.ID, "data-preview-trajectory").send_keys("\n")
    other = _wait(
        lambda: (c := _js(browser, CURVES_JS)) and c[0]["y"] != curves[0]["y"] and c,
        30,
        "trajectory 1",
    )
    assert len(other[0]["y"]) == T
    _fill(browser, "data-preview-trajectory", 5)
    browser.find_element(By.ID, "data-preview-trajectory").send_keys("\n")
    error = _wait(lambda: browser.find_elements(By.ID, "data-preview-error"), 30, "the error")
    assert error[0].text == f"Trajectory 5 is not in the dataset; it has {N} (0–{N - 1})."


def test_a_refused_request_shows_the_api_sentence(browser, live_server: str):
    from selenium.webdriver.common.by import By

    # The sentence the API gives for the same request.
    refused = httpx.post(
        f"{live_server}/api/jobs",
        json={
            "kind": "generate",
            "params": {
                "flow": "ns2d-forced",
                "n_trajectories": N,
                "n_snapshots": T,
                "resolution": GRID,
                "solver_resolution": 16,
                "interval": 0.1,
                "warmup": 0,
                "shard_size": 1,
                "seed": 0,
            },
        },
    )
    assert refused.status_code == 422
    sentence = refused.json()["detail"]
    assert "solver_resolution" in sentence

    _open_form(browser, live_server)
    _fill_tiny(browser, solver_resolution=16)
    browser.find_element(By.ID, "data-generate").click()
    error = _wait(lambda: browser.find_elements(By.ID, "data-feedback-error"), 30, "the refusal")
    assert error[0].text == sentence
    assert "alert-error" in error[0].get_attribute("class")
    assert not browser.find_elements(By.ID, "data-feedback-ok")
