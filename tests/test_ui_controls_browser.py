"""Issue 15 in a real headless Chromium against the real server and worker (``live_server``):
no chart's toolbar offers to share to a cloud or links to plotly.com; a channel field never
offers a 2D model on the Rollout or Compare page, and "Roll out →" from Models preselects a
field of the model's flow; a rollout is cancelled from the Rollout page's Cancel button."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests import test_ui_browser
from tests.test_channel_upload import NU, channel_snapshot, npz_bytes
from tests.test_ui_browser import _choose, _text, _wait

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser
model_id = test_ui_browser.model_id

# Every plot's effective config, and any mode bar link or button that reaches a cloud.
CLOUD_JS = """
const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
return JSON.stringify({
    plots: plots.length,
    configs: plots.map(gd => {
        const c = gd._context || {};
        return {logo: c.displaylogo, cloud: c.showSendToCloud, studio: c.showEditInChartStudio,
                link: c.showLink, server: c.plotlyServerURL};
    }),
    links: Array.from(document.querySelectorAll('.modebar a, .js-plotly-plot a'))
        .map(a => a.href).filter(h => /plotly\\.com|plot\\.ly|chart-studio/i.test(h)),
    buttons: Array.from(document.querySelectorAll('.modebar-btn'))
        .map(b => (b.getAttribute('data-title') || '') + '|' + (b.getAttribute('data-attr') || ''))
        .filter(t => /share|cloud|chart studio|edit in/i.test(t)),
});
"""


def _options(browser, dropdown_id: str) -> list[str]:
    """The values a Dash dropdown offers (opened, read, closed)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.ID, dropdown_id).click()
    options = _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "[role='option'] input"),
        15,
        f"the options of {dropdown_id}",
    )
    values = [o.get_attribute("value") for o in options]
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    return values


@pytest.fixture(scope="module")
def channel_ic(live_server: str) -> str:
    """A channel snapshot, uploaded last so it is the newest field."""
    u, y = channel_snapshot()
    body = npz_bytes(velocity=np.moveaxis(u, 0, -1), y=y, nu=np.float64(NU))
    reply = httpx.post(
        f"{live_server}/api/initial-conditions",
        files={"file": ("ui-controls-channel.npz", body)},
        data={"flow": "channel3d"},
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def test_no_chart_can_share_to_a_cloud(browser, live_server: str):
    """The Rollout page's five charts and the Compare page's four: every plot's config has
    no logo link, no Share chart, no Chart Studio; no mode bar link or button to a cloud."""
    import json

    for path, least in (("/rollout", 4), ("/compare", 4)):
        browser.get(f"{live_server}{path}")
        seen = _wait(
            lambda least=least: (
                (s := json.loads(browser.execute_script(CLOUD_JS)))["plots"] >= least and s
            ),
            30,
            f"the charts of {path}",
        )
        # Hover each plot so its mode bar is drawn, then read again.
        browser.execute_script(
            "document.querySelectorAll('.js-plotly-plot').forEach(gd => "
            "gd.dispatchEvent(new MouseEvent('mousemove', {bubbles: true})));"
        )
        seen = json.loads(browser.execute_script(CLOUD_JS))
        for config in seen["configs"]:
            # Options this plotly.js no longer has read as undefined (None): also off.
            assert config["logo"] is False and config["cloud"] is False, (path, config)
            assert config["server"] == "", (path, config)
            assert config.get("studio") in (False, None) and config.get("link") in (False, None)
        assert seen["links"] == [] and seen["buttons"] == [], (path, seen)


def test_a_channel_field_never_offers_a_2d_model(
    browser, live_server: str, channel_ic: str, model_id: str
):
    from selenium.webdriver.common.by import By

    # "Roll out →" from Models: the demo model (ns2d-forced) gets a field of its own flow,
    # not the newest upload (the channel field).
    browser.get(f"{live_server}/rollout?model={model_id}")
    _wait(
        lambda: "ns2d-forced" in _text(browser, "rollout-ic"),
        30,
        "a field of the model's flow preselected",
    )
    _wait(lambda: _text(browser, "rollout-model").startswith("demo"), 15, "the model chosen")

    # Choosing the channel field: the 2D model is neither offered nor kept.
    _choose(browser, "rollout-ic", channel_ic)
    _wait(
        lambda: "Reference solver only" in _text(browser, "rollout-model"),
        15,
        "the 2D model dropped",
    )
    assert model_id not in _options(browser, "rollout-model")
    assert "not listed" in _text(browser, "rollout-model-note")

    # Compare: the channel field offers no 2D model either.
    browser.get(f"{live_server}/compare")
    _wait(lambda: browser.find_elements(By.ID, "compare-ic"), 30, "the Compare form")
    _choose(browser, "compare-ic", channel_ic)
    _wait(lambda: "channel3d" in _text(browser, "compare-models-note"), 15, "the channel note")
    browser.find_element(By.ID, "compare-models").click()
    offered = [
        o.get_attribute("value")
        for o in browser.find_elements(By.CSS_SELECTOR, "[role='option'] input")
    ]
    assert model_id not in offered


def test_cancel_a_rollout_from_the_rollout_page(browser, live_server: str, model_id: str):
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/rollout?model={model_id}")
    _wait(lambda: "ns2d-forced" in _text(browser, "rollout-ic"), 30, "the form")
    _wait(lambda: _text(browser, "rollout-model").startswith("demo"), 15, "the model")
    box = browser.find_element(By.ID, "rollout-steps")
    box.clear()
    box.send_keys("5000")
    browser.find_element(By.ID, "rollout-start").click()
    button = _wait(
        lambda: [b for b in browser.find_elements(By.ID, "rollout-cancel") if b.is_displayed()],
        60,
        "the Cancel button",
    )[0]
    status = _text(browser, "rollout-status").lower()
    assert "gpu queue" not in status
    _wait(lambda: "running" in _text(browser, "rollout-status").lower(), 120, "the run to start")
    button = browser.find_element(By.ID, "rollout-cancel")
    button.click()
    assert "/rollout/" in browser.current_url  # one change of address after Start
    job_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    _wait(lambda: "cancelled" in _text(browser, "rollout-status").lower(), 60, "the run cancelled")
    _wait(
        lambda: not browser.find_element(By.ID, "rollout-cancel").is_displayed(),
        15,
        "the Cancel button gone",
    )
    job = httpx.get(f"{live_server}/api/jobs/{job_id}").json()
    assert job["status"] == "cancelled", job
    assert "Cancelled" in _text(browser, "rollout-cancel-feedback")
