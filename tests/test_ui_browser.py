"""The UI in a real headless Chromium against the real server and a real Celery worker
(the ``live_server`` fixture): upload an initial condition, roll it out, and watch the
spectrum figure fill and change while the job runs.

Set ``EDDYSCOPE_SCREENSHOT=1`` to also save the Rollout page to ``docs/rollout.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
EXAMPLES = ROOT / "static" / "examples"
# Long enough that the job is still running while the page is sampled twice.
STEPS = 200
RUN_TIMEOUT_S = 300

SPECTRUM_JS = """
const gd = document.querySelector('#rollout-spectrum .js-plotly-plot');
if (!gd || !gd.data) { return null; }
return JSON.stringify(gd.data.map(t => ({name: t.name, y: Array.from(t.y || [])})));
"""


def _wait(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the page may be re-rendering; try again
            last_error = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="eddyscope-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1440,1500",
    ):
        options.add_argument(arg)
    # An explicit driver path: Selenium Manager (which would download one) never runs.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def upload_file(tmp_path_factory) -> Path:
    """The shipped 64² example, under a name of its own so the test can find its upload."""
    for name in ("ns2d_forced_64.npy", "example_ns2d_forced_64.npy"):
        if (EXAMPLES / name).exists():
            source = EXAMPLES / name
            break
    else:
        pytest.fail(f"no 64² example initial condition in {EXAMPLES}")
    target = tmp_path_factory.mktemp("upload") / "ns2d_forced_64.npy"
    shutil.copyfile(source, target)
    return target


def _upload(browser, path: Path) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.CSS_SELECTOR, "#upload-file input[type=file]")
    field.send_keys(str(path))


def _text(browser, element_id: str) -> str:
    # Read in one script call: Dash may replace the element between a find and a .text,
    # which would raise a stale-element error under load.
    return browser.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';", element_id
    )


@pytest.fixture(scope="module")
def uploaded_ic(browser, live_server: str, upload_file: Path) -> str:
    """Upload through the Upload page; returns the new initial condition's id."""
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/upload")
    _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#upload-file input[type=file]"),
        30,
        "the upload area",
    )
    _upload(browser, upload_file)
    success = _wait(
        lambda: browser.find_elements(By.ID, "upload-success"), 60, "the success message"
    )[0]
    assert "Stored" in success.text and "64×64" in success.text
    ic_id = browser.find_element(By.ID, "upload-ic-id").text.strip()
    assert ic_id
    # The preview heatmap and the stored list show the new field.
    _wait(
        lambda: browser.execute_script(
            "const g = document.querySelector('#upload-preview .js-plotly-plot');"
            "return g && g.data && g.data.length > 0 && g.data[0].type === 'heatmap';"
        ),
        30,
        "the preview heatmap",
    )
    _wait(lambda: ic_id in _text(browser, "upload-list"), 30, "the stored list")
    return ic_id


def test_upload_shows_the_exact_reason_for_a_refused_file(
    browser, live_server: str, tmp_path: Path
):
    from selenium.webdriver.common.by import By

    from physics.flows import get_flow

    bad = tmp_path / "odd_grid.npy"
    np.save(bad, np.zeros((63, 63), dtype=np.float32))
    with pytest.raises(ValueError) as expected:
        get_flow("ns2d-forced").check_grid((63, 63))

    browser.get(f"{live_server}/upload")
    _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#upload-file input[type=file]"),
        30,
        "the upload area",
    )
    _upload(browser, bad)
    error = _wait(lambda: browser.find_elements(By.ID, "upload-error-text"), 60, "the error")[0]
    assert error.text == str(expected.value)
    assert "alert-error" in browser.find_element(By.ID, "upload-error").get_attribute("class")


def _choose(browser, dropdown_id: str, value: str) -> None:
    """``_choose_once``, again when Dash re-rendered the dropdown under the pointer (the
    element went stale, or was briefly absent from the page while a callback redrew it) or
    when another element covered the option as it was clicked."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for attempt in range(3):
        _wait(lambda: browser.find_elements(By.ID, dropdown_id), 15, dropdown_id)
        try:
            return _choose_once(browser, dropdown_id, value)
        except (
            StaleElementReferenceException,
            NoSuchElementException,
            ElementClickInterceptedException,  # another element over the option for a moment
        ):
            if attempt == 2:
                raise
            browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # close what is open
            time.sleep(0.5)


def _choose_once(browser, dropdown_id: str, value: str) -> None:
    """Open a Dash dropdown, click the option whose value is ``value``, and check that the
    dropdown now shows that option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dropdown = browser.find_element(By.ID, dropdown_id)
    dropdown.click()
    option = _wait(
        lambda: browser.find_elements(By.XPATH, f"//*[@role='option'][.//input[@value='{value}']]"),
        15,
        f"option {value} of {dropdown_id}",
    )[0]
    label = option.text.strip()
    if option.get_attribute("aria-selected") != "true":
        # The list scrolls under its own sticky search box: bring the option to the middle
        # of the list first, so the box never sits over it when it is clicked.
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", option)
        option.click()
    if dropdown.get_attribute("aria-expanded") == "true":
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    _wait(
        lambda: browser.find_element(By.ID, dropdown_id).text.strip() == label,
        10,
        f"{dropdown_id} to show {label!r}",
    )


def _spectrum(browser) -> list[dict] | None:
    raw = browser.execute_script(SPECTRUM_JS)
    data = json.loads(raw) if raw else None
    if not data or not any(any(v is not None for v in trace["y"]) for trace in data):
        return None
    return data


def _run_rollout(
    browser, live_server: str, ic_id: str, model: str, steps: int = STEPS
) -> dict[str, Any]:
    """Start a rollout from the Rollout page and follow it to the end; returns what was
    seen: the spectra sampled while it ran, the final status text and the page URL."""
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/rollout")
    _wait(
        lambda: browser.find_elements(
            By.XPATH, "//*[@id='rollout-ic']//*[contains(@class, 'dash-dropdown-value-item')]"
        ),
        30,
        "the initial conditions to load",
    )
    _choose(browser, "rollout-ic", ic_id)
    _choose(browser, "rollout-model", model)
    box = browser.find_element(By.ID, "rollout-steps")
    box.clear()
    box.send_keys(str(steps))
    browser.find_element(By.ID, "rollout-start").click()

    samples: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = ""
    while time.monotonic() < deadline:
        status = _text(browser, "rollout-status").lower()
        if any(word in status for word in ("succeeded", "failed", "cancelled")):
            break
        if "running" in status:
            spectrum = _spectrum(browser)
            if spectrum is not None:
                samples.append(json.dumps(spectrum))
        time.sleep(0.25)
    return {"samples": samples, "status": status, "url": browser.current_url}


def _check_live_run(browser, seen: dict[str, Any], expect: set[str]) -> None:
    assert "succeeded" in seen["status"], seen["status"]
    # The spectrum figure received data while the job ran, and it changed between samples.
    assert seen["samples"], "the spectrum figure got no data while the job was running"
    assert len(set(seen["samples"])) >= 2, "the spectrum did not change while the job ran"
    names = {trace["name"] for trace in json.loads(seen["samples"][-1])}
    assert expect <= names
    # After Start the address names the run, so it can be reopened.
    assert "/rollout/" in seen["url"]
    final = _spectrum(browser)
    assert final is not None and expect <= {trace["name"] for trace in final}


def _screenshot(browser) -> None:
    if os.environ.get("EDDYSCOPE_SCREENSHOT"):
        target = ROOT / "docs" / "rollout.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1.0)  # let the last figures finish drawing
        browser.save_screenshot(str(target))


def test_reference_rollout_live(browser, live_server: str, uploaded_ic: str):
    from selenium.webdriver.common.by import By

    # The solver alone runs hundreds of steps a second: enough of them that the page is
    # sampled several times while the job runs.
    seen = _run_rollout(browser, live_server, uploaded_ic, "__reference__", steps=1500)
    _check_live_run(browser, seen, {"reference"})
    # Reference only: one field panel, and the error curve says why it is empty.
    fields = browser.execute_script(
        "return document.querySelector('#rollout-fields .js-plotly-plot').data.length"
    )
    assert fields == 1
    assert browser.find_elements(By.ID, "rollout-slider")
    _screenshot(browser)

    # Reopening the address shows the finished run again.
    browser.get(seen["url"])
    _wait(lambda: "succeeded" in _text(browser, "rollout-status").lower(), 60, "the reopened run")
    _wait(lambda: _spectrum(browser), 30, "the reopened spectrum")


@pytest.fixture(scope="module")
def model_id(live_server: str) -> str:
    """The demo FNO that ships in static/demo_model, registered when the server starts."""
    import httpx

    models = httpx.get(f"{live_server}/api/models").json()
    demo = [m for m in models if m["name"].startswith("demo")]
    assert demo, f"the demo model was not registered: {models}"
    return demo[0]["id"]


def test_model_rollout_live(browser, live_server: str, uploaded_ic: str, model_id: str):
    # 300 steps of Δt = 1, far past the demo model's training pieces (10 steps): a run long
    # enough that the page is sampled several times while it goes.
    seen = _run_rollout(browser, live_server, uploaded_ic, model_id, steps=300)
    _check_live_run(browser, seen, {"model", "reference"})
    fields = browser.execute_script(
        "return document.querySelector('#rollout-fields .js-plotly-plot').data.length"
    )
    assert fields == 3  # model, reference, error
    curve = browser.execute_script(
        "return document.querySelector('#rollout-error-curve .js-plotly-plot').data.length"
    )
    assert curve == 1
    _screenshot(browser)
