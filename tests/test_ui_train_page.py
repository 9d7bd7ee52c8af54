"""The Train and Models pages in a real headless Chromium against the real server and a real
Celery worker (the ``live_server`` fixture): pick a dataset and an architecture, see the form
generated from its config with the parameter count (and the grid's sentence for a config the
dataset cannot hold), train a tiny model, watch the curves fill in until the job succeeds,
then find the model on /models with its parameter count and a link to roll it out."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from app.ui.config_form import parameter_text
from models.registry import count_parameters, make_config
from tests import test_ui_browser
from tests.test_ui_browser import _choose, _text, _wait

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

GRID = 32
CONFIG = {"width": 8, "modes": 4, "n_layers": 2}
# Enough epochs that the run outlasts a few of the page's 1 s polls (about 5 s here), so
# the curves are seen part-drawn before the job ends.
EPOCHS = 30
RUN_TIMEOUT_S = 300

CURVES_JS = """
const gd = document.querySelector('#train-loss .js-plotly-plot');
if (!gd || !gd.data) { return null; }
return JSON.stringify({
    yaxis: gd.layout.yaxis.type,
    traces: gd.data.map(t => ({name: t.name, n: (t.y || []).filter(v => v !== null).length}))
});
"""


@pytest.fixture(scope="module")
def dataset_id(live_server: str) -> str:
    """A tiny dataset, generated through the API: 4 trajectories of 6 snapshots at 32²."""
    response = httpx.post(
        f"{live_server}/api/jobs",
        json={
            "kind": "generate",
            "params": {
                "name": f"ui-train-{uuid.uuid4().hex[:6]}",
                "n_trajectories": 4,
                "n_snapshots": 6,
                "resolution": GRID,
                "interval": 0.5,
                "batch_size": 4,
                "seed": 1,
            },
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = httpx.get(f"{live_server}/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    return job["result"]["dataset_id"]


def _field(driver, kind: str, name: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.NAME, f"{kind}.{name}")


def _fill(driver, kind: str, name: str, value) -> None:
    """Type into a generated number box (found by its name, ``kind.field``)."""
    from selenium.webdriver.common.keys import Keys

    box = _field(driver, kind, name)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(str(value))
    _wait(
        lambda: _field(driver, kind, name).get_attribute("value") == str(value),
        5,
        f"{name} to read {value}",
    )


def _curves(driver) -> dict | None:
    raw = driver.execute_script(CURVES_JS)
    return json.loads(raw) if raw else None


def test_train_a_model_from_the_generated_form(browser, live_server: str, dataset_id: str):
    from selenium.webdriver.common.by import By

    name = f"ui-fno-{uuid.uuid4().hex[:6]}"
    browser.get(f"{live_server}/train")
    _wait(
        lambda: browser.find_elements(
            By.XPATH, "//*[@id='train-dataset']//*[contains(@class, 'dash-dropdown-value-item')]"
        ),
        30,
        "the datasets to load",
    )
    _choose(browser, "train-dataset", dataset_id)

    # The picker lists the 2D architectures; FNO (2D) is chosen and its form generated.
    radio = _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#train-arch input[value='fno2d']"),
        30,
        "the architecture picker",
    )[0]
    labels = _text(browser, "train-arch")
    assert "FNO (2D)" in labels and "FNO (3D)" not in labels
    if not radio.is_selected():
        radio.click()
    _wait(lambda: browser.find_elements(By.NAME, "cfg-field.modes"), 30, "the generated form")
    defaults = make_config("fno2d", {}).to_dict()
    expected = parameter_text(count_parameters("fno2d", defaults))
    _wait(lambda: _text(browser, "train-param-count") == expected, 30, f"'{expected}'")
    assert "frame in" in _text(browser, "train-contract")

    # Too many Fourier modes for the dataset's 32² grid: the config's own sentence.
    with pytest.raises(ValueError) as too_many:
        make_config("fno2d", {"modes": 20}).check_grid((GRID, GRID))
    sentence = str(too_many.value)
    sentence = sentence[0].upper() + sentence[1:]  # shown as a sentence: capital first
    _fill(browser, "cfg-field", "modes", 20)
    _wait(
        lambda: _text(browser, "train-config-error") == sentence,
        30,
        f"the grid's sentence {sentence!r}",
    )

    # A tiny model: the count follows the form.
    for key, value in CONFIG.items():
        _fill(browser, "cfg-field", key, value)
    count = count_parameters("fno2d", CONFIG)
    _wait(
        lambda: _text(browser, "train-param-count") == parameter_text(count),
        30,
        f"the count of {CONFIG}",
    )

    _fill(browser, "train-opt", "epochs", EPOCHS)
    _fill(browser, "train-opt", "batch_size", 2)
    _fill(browser, "train-opt", "lr", 0.01)
    browser.find_element(By.CSS_SELECTOR, "#train-opt-form details > summary").click()
    _fill(browser, "train-opt", "events_every", 1)
    box = browser.find_element(By.ID, "train-name")
    box.send_keys(name)
    time.sleep(0.5)  # the number boxes send their value after a short pause (debounce)
    browser.find_element(By.ID, "train-start").click()

    # The address names the job, so the run can be reopened; the curves fill in live.
    _wait(lambda: "job=" in browser.current_url, 30, "the job's address")
    job_id = browser.current_url.split("job=", 1)[1].split("&")[0]
    seen: list[dict] = []
    status = ""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _text(browser, "train-status").lower()
        curves = _curves(browser)
        if curves and curves.get("traces"):
            seen.append(curves)
        if any(word in status for word in ("succeeded", "failed", "cancelled")):
            break
        time.sleep(0.25)
    assert "succeeded" in status, f"{status} (job {job_id})"
    # The curves are drawn from the events a poll brought, just after the status it set.
    final = _wait(
        lambda: (
            ((c := _curves(browser)) and len(c["traces"]) == 3 and c["traces"][1]["n"] == EPOCHS)
            and c
        ),
        30,
        f"the final curves (validation after each of the {EPOCHS} epochs)",
    )
    assert final["yaxis"] == "log"
    names = [t["name"] for t in final["traces"]]
    assert names == ["training loss (relative L2)", "validation rel. L2", "persistence baseline"]
    assert final["traces"][0]["n"] >= EPOCHS  # one point per train event, events_every = 1
    assert final["traces"][2]["n"] == EPOCHS
    partial = [c for c in seen if len(c["traces"]) == 3 and 0 < c["traces"][1]["n"] < EPOCHS]
    assert partial, f"the curves were not seen filling in while the job ran ({len(seen)} samples)"
    assert "samples/s" in _text(browser, "train-throughput")
    lr = browser.execute_script(
        "const g = document.querySelector('#train-lr .js-plotly-plot');"
        "return g && g.layout.yaxis.type;"
    )
    assert lr == "log"

    # Reopening the address shows the same run, its form filled from the job.
    browser.get(f"{live_server}/train?job={job_id}")
    _wait(lambda: "succeeded" in _text(browser, "train-status").lower(), 60, "the reopened run")
    _wait(
        lambda: _field(browser, "cfg-field", "width").get_attribute("value") == "8",
        30,
        "the reopened form",
    )
    model_id = httpx.get(f"{live_server}/api/jobs/{job_id}").json()["result"]["model_id"]

    # The Models page lists it with its parameter count and a link to roll it out.
    browser.get(f"{live_server}/models")
    row = _wait(lambda: browser.find_elements(By.ID, f"model-row-{model_id}"), 30, "the model")[0]
    assert name in row.text and "FNO (2D)" in row.text
    assert row.find_element(By.CSS_SELECTOR, ".model-parameters").text == f"{count:,}"
    assert "32² · Δt 0.5" in row.text
    link = row.find_element(By.LINK_TEXT, "Roll out →")
    assert link.get_attribute("href").endswith(f"/rollout?model={model_id}")
