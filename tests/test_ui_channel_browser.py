"""The Data page and channel flow in a real headless Chromium against the real server and a
real Celery worker (``live_server``): choose channel3d in the generate form (its parameters
appear, the 2D-only ones go), generate a tiny box-filtered channel dataset (8×12×8 solved,
4×8×4 stored), see its grid
nx×ny×nz in the generation list, and preview it: the channel card shows U⁺ and a slice."""

from __future__ import annotations

import json
import uuid

import pytest

from tests import test_ui_browser
from tests.test_ui_browser import _choose, _text, _wait
from tests.test_ui_data_page import _fill

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

CHANNEL_JS = """
const mean = document.querySelector('#data-channel-mean .js-plotly-plot');
const slice = document.querySelector('#data-channel-slice .js-plotly-plot');
if (!mean || !mean.data || !slice || !slice.data) { return null; }
return JSON.stringify({
    xaxis: mean.layout.xaxis.type,
    points: (mean.data[0] && mean.data[0].x || []).length,
    slice: slice.data.length ? slice.data[0].type : null
});
"""


def _hidden(driver, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return "hidden" in (driver.find_element(By.ID, element_id).get_attribute("class") or "")


def test_the_data_page_generates_and_previews_a_channel_dataset(browser, live_server: str):
    from selenium.webdriver.common.by import By

    name = f"ui-channel-{uuid.uuid4().hex[:6]}"
    browser.get(f"{live_server}/data")
    _wait(lambda: browser.find_elements(By.ID, "data-generate"), 30, "the form")
    assert _hidden(browser, "data-channel-params") and not _hidden(browser, "data-resolution-row")

    _choose(browser, "data-flow", "channel3d")
    _wait(lambda: not _hidden(browser, "data-channel-params"), 15, "the channel parameters")
    assert _hidden(browser, "data-resolution-row") and _hidden(browser, "data-nu-row")
    assert browser.find_element(By.ID, "data-ch-ny").get_attribute("value") == "49"

    _fill(browser, "data-ch-nx", 8)
    _fill(browser, "data-ch-ny", 12)
    _fill(browser, "data-ch-nz", 8)
    _fill(browser, "data-ch-out-nx", 4)
    _fill(browser, "data-ch-out-ny", 8)
    _fill(browser, "data-ch-out-nz", 4)
    _choose(browser, "data-ch-filter", "box")
    _fill(browser, "data-n", 1)
    _fill(browser, "data-t", 2)
    _fill(browser, "data-interval", 0.02)
    _fill(browser, "data-warmup", 0.02)
    _fill(browser, "data-shard-size", 1)
    _fill(browser, "data-name", name)
    _wait(lambda: "4×8×4" in _text(browser, "data-summary"), 10, "the summary")
    assert "solved on 8×12×8" in _text(browser, "data-summary")

    # A grid the flow refuses shows the job check's own sentence, as for a 2D flow.
    _fill(browser, "data-ch-nx", 2)
    browser.find_element(By.ID, "data-generate").click()
    refused = _wait(
        lambda: _text(browser, "data-feedback-error"), 30, "the refusal of a 2-point grid"
    )
    assert "params.channel_grid" in refused and "nx and nz must be 4–512" in refused, refused
    _fill(browser, "data-ch-nx", 8)
    browser.find_element(By.ID, "data-generate").click()

    # Read in one script call: Dash may replace the element between a find and a .text.
    ok = _wait(lambda: _text(browser, "data-feedback-ok"), 30, "the job to start")
    assert "Started" in ok and "Channel flow" in ok, ok
    job_short = ok.split("Job ", 1)[1].split()[0]
    # The job is followed live in the channel card at once.
    _wait(
        lambda: (
            f"Live statistics of generate job {job_short}" in _text(browser, "data-channel-title")
        ),
        15,
        "the channel card to follow the job",
    )

    item = _wait(
        lambda: browser.find_elements(
            By.XPATH,
            f"//*[@id='data-jobs']//*[contains(@class, 'gen-job')][.//code[text()='{job_short}']]",
        ),
        30,
        "the job in the generation list",
    )[0]
    assert "@ 4×8×4 (solver 8×12×8)" in item.text and "box filter" in item.text, item.text

    preview = _wait(
        lambda: browser.find_elements(
            By.XPATH,
            f"//*[@id='data-table']//tr[.//span[text()='{name}']]//button[text()='Preview']",
        ),
        120,
        "the dataset in the list",
    )[0]
    # The longer channel form can leave the button under the sticky navbar: centre it first.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", preview)
    preview.click()

    _wait(lambda: not _hidden(browser, "data-channel-card"), 30, "the channel card")
    _wait(
        lambda: "A channel-flow dataset" in _text(browser, "data-preview"), 30, "the preview note"
    )
    assert not browser.find_elements(By.ID, "data-preview-error")

    def drawn():
        raw = browser.execute_script(CHANNEL_JS)
        seen = json.loads(raw) if raw else None
        return seen if seen and seen["points"] and seen["slice"] == "heatmap" else None

    seen = _wait(drawn, 60, "the U⁺ profile and a slice of the channel dataset")
    assert seen["xaxis"] == "log"
    assert "u_τ" in _wait(lambda: _text(browser, "data-channel-summary"), 30, "the statistics")
    assert "4×8×4" in _text(browser, "data-channel-card")
