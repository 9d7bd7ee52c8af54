"""Issue 15 item 4 in a real headless Chromium against the real server and worker: before
Start, the Rollout and Compare pages warn, with the numbers, when the chosen initial
condition is far from what the chosen model was trained on, and say nothing for a field
like its training data (the shipped example)."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest

from physics.flows import get_flow
from tests import test_ui_browser
from tests.test_ui_browser import _wait

pytestmark = pytest.mark.browser

browser = test_ui_browser.browser
model_id = test_ui_browser.model_id


@pytest.fixture(scope="module")
def far_ic(live_server: str, model_id: str) -> str:
    """A fresh random field of the demo model's flow, 30 times its amplitude: an energy 900×
    that of the field, far above the largest the model saw."""
    field = 30 * get_flow("ns2d-forced").random_initial_condition(64, seed=11)[0, 0].numpy()
    buffer = io.BytesIO()
    np.save(buffer, field.astype(np.float32), allow_pickle=False)
    reply = httpx.post(
        f"{live_server}/api/initial-conditions",
        files={"file": ("far-from-training.npy", buffer.getvalue())},
        data={"flow": "ns2d-forced"},
    )
    assert reply.status_code == 201, reply.text
    # The upload's own answer already names the demo model among those it is far from.
    assert model_id in {f["model_id"] for f in reply.json()["model_fit"]}
    return reply.json()["id"]


def _warnings(browser, page: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, f".{page}-fit-warning")]


def test_rollout_and_compare_warn_before_start_when_the_field_is_far(
    browser, live_server: str, far_ic: str, model_id: str
):
    expected = httpx.get(
        f"{live_server}/api/models/{model_id}/fit", params={"initial_condition_id": far_ic}
    ).json()
    assert expected["far"], expected
    numbers = next(i for i in expected["items"] if i["stat"] == "energy")

    browser.get(f"{live_server}/rollout?model={model_id}&ic={far_ic}")
    [text] = _wait(lambda: _warnings(browser, "rollout"), 30, "the rollout page's warning")
    assert text.startswith("Out of distribution: far from demo"), text
    assert numbers["text"] in text and "× the largest it saw" in numbers["text"], (text, numbers)

    browser.get(f"{live_server}/compare?models={model_id}&ic={far_ic}")
    [text] = _wait(lambda: _warnings(browser, "compare"), 30, "the compare page's warning")
    assert text.startswith("Out of distribution: far from demo") and numbers["text"] in text

    # The shipped example is the kind of field the model was trained on: no warning.
    browser.get(f"{live_server}/rollout?model={model_id}&example=1")
    _wait(
        lambda: "example" in test_ui_browser._text(browser, "rollout-ic").lower(),
        30,
        "the example preselected",
    )
    _wait(lambda: test_ui_browser._text(browser, "rollout-model").startswith("demo"), 15, "model")
    assert _warnings(browser, "rollout") == []
