"""The Rollout page follows a run by server push, in a real headless Chromium against the
real server and worker (``live_server``): while the demo model rolls out, no HTTP polling
callback fires, yet the page shows every step's metrics in its curves at the end, and the
field, the status line and the curves name the same, last step. With the WebSocket blocked
(as behind a proxy that refuses it) the page falls back to polling and still shows the run."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.test_ui_browser import _text, _wait, browser  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.browser

STEPS = 40

# Every UI callback sent over HTTP, by the outputs it asked for.
RECORD_CALLBACKS = """
window.__httpCallbacks = [];
const __fetch = window.fetch;
window.fetch = function (url, options) {
  try {
    if (String(url).indexOf('_dash-update-component') >= 0 && options && options.body) {
      window.__httpCallbacks.push(JSON.parse(options.body).output);
    }
  } catch (e) {}
  return __fetch.apply(this, arguments);
};
"""

FINAL_VIEW = """
const gd = id => document.querySelector('#' + id + ' .js-plotly-plot');
const c = gd('rollout-error-curve'), f = gd('rollout-fields');
return {y: Array.from(c.data[0].y), curve_step: c.layout.meta.step,
        field_step: f.layout.meta.step, field_title: f.layout.title.text};
"""


@pytest.fixture(scope="module")
def recording(browser):  # noqa: F811
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CALLBACKS})
    return browser


def _demo(live_server: str) -> str:
    models = httpx.get(f"{live_server}/api/models").json()
    return next(m["id"] for m in models if m["name"].startswith("demo"))


def test_a_rollout_arrives_by_push(recording, live_server: str):
    from selenium.webdriver.common.by import By

    page = recording
    page.get(f"{live_server}/rollout?example=1&model={_demo(live_server)}")
    _wait(
        lambda: page.find_elements(
            By.XPATH, "//*[@id='rollout-ic']//*[contains(@class, 'dash-dropdown-value-item')]"
        ),
        30,
        "the form",
    )
    time.sleep(1.0)  # the model picker follows the initial condition
    box = page.find_element(By.ID, "rollout-steps")
    box.clear()
    box.send_keys(str(STEPS))
    page.find_element(By.ID, "rollout-start").click()
    _wait(lambda: "/rollout/" in page.current_url, 30, "the run's address")
    _wait(lambda: "succeeded" in _text(page, "rollout-status").lower(), 300, "the run")
    job_id = page.current_url.rsplit("/", 1)[-1]

    # No HTTP poll fired: the frames, the status and the curves came by push.
    outputs = page.execute_script("return window.__httpCallbacks")
    assert not [o for o in outputs if "rollout-interval" in o or "rollout-status" in o], outputs

    rollout_id = httpx.get(f"{live_server}/api/jobs/{job_id}").json()["result"]["rollout_id"]
    metrics = httpx.get(f"{live_server}/api/rollouts/{rollout_id}/metrics").json()
    assert len(metrics) == STEPS + 1
    last = metrics[-1]["step"]

    def final_view():
        view = page.execute_script(FINAL_VIEW)
        return view if view["field_step"] == last and len(view["y"]) == len(metrics) else None

    view = _wait(final_view, 30, "the last step drawn")
    # Every step's metric is in the curve, and field, status and curves show the last step.
    assert view["y"] == pytest.approx([m["rel_l2"] for m in metrics])
    assert view["curve_step"] == last
    assert f"step {last}" in view["field_title"]
    assert f"{STEPS + 1} frames" in _text(page, "rollout-status")


def test_without_a_websocket_the_page_polls(recording, live_server: str):
    page = recording
    job = httpx.post(
        f"{live_server}/api/jobs",
        json={"kind": "rollout", "params": {"steps": 5, "model_id": _demo(live_server)}},
    ).json()
    _wait(
        lambda: httpx.get(f"{live_server}/api/jobs/{job['id']}").json()["status"] == "succeeded",
        120,
        "the rollout job",
    )
    # No SharedWorker, no WebSocket for Dash: as when a proxy refuses the socket, the push
    # cannot start and the page's watchdog switches it to polling.
    script = page.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "window.SharedWorker = undefined;"}
    )
    try:
        page.get(f"{live_server}/rollout/{job['id']}")
        _wait(lambda: "succeeded" in _text(page, "rollout-status").lower(), 60, "the run")
        outputs = page.execute_script("return window.__httpCallbacks")
        assert [o for o in outputs if "rollout-status" in o], "the page did not poll"
        view = _wait(lambda: page.execute_script(FINAL_VIEW), 30, "the fields")
        assert view["field_step"] == view["curve_step"] == 5
    finally:
        page.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )
