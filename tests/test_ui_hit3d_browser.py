"""The Data page and hit3d in a real headless Chromium against the real server and a real
Celery worker (``live_server``): choose hit3d in the generate form (its parameters appear,
the 2D ν goes, the grid is n³), generate a tiny decaying dataset (16³, 3 snapshots, one
trajectory), follow it in the Isotropic turbulence card, and preview it: the energy
spectrum with its k^(−5/3) guide, the three midplane slices, and the statistics card whose
Re_λ is the one the stored velocity gives, recomputed here from the file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest
import torch

from app.settings import Settings
from physics.hit3d import diagnostics
from tests import test_ui_browser
from tests.test_ui_browser import _choose, _text, _wait
from tests.test_ui_data_page import _fill

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

N, T, INTERVAL = 16, 3, 0.05

PANELS_JS = """
const spec = document.querySelector('#data-hit3d-spectrum .js-plotly-plot');
const slices = document.querySelector('#data-hit3d-slices .js-plotly-plot');
const series = document.querySelector('#data-hit3d-series .js-plotly-plot');
if (!spec || !spec.data || !slices || !slices.data || !series || !series.data) { return null; }
const dts = Array.from(document.querySelectorAll('#data-hit3d-summary dt'));
const row = label => {
    const dt = dts.find(d => d.innerText.trim() === label);
    return dt ? dt.nextElementSibling.innerText.trim() : null;
};
return JSON.stringify({
    spectrum: spec.data.map(t => ({n: (t.x || []).length, meta: t.meta || null})),
    xaxis: spec.layout.xaxis.type,
    spectrumTitle: spec.layout.title && spec.layout.title.text,
    slices: slices.data.map(t => t.type),
    quantity: slices.layout.meta && slices.layout.meta.quantity,
    series: series.data.map(t => (t.x || []).length),
    re: row('Re_λ'),
    grid: row('grid')
});
"""


def _hidden(driver, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return "hidden" in (driver.find_element(By.ID, element_id).get_attribute("class") or "")


def _panels(driver) -> dict | None:
    raw = driver.execute_script(PANELS_JS)
    seen = json.loads(raw) if raw else None
    drawn = seen and len(seen["spectrum"]) == 2 and seen["slices"] == ["heatmap"] * 3
    return seen if drawn and seen["re"] else None


def _live_artifacts(tmp_path_factory) -> Path:
    """The live server's artifact store (its data directory is a session temp folder)."""
    base = tmp_path_factory.getbasetemp()
    found = [d for d in sorted(base.glob("live*")) if (d / "eddyscope.sqlite").exists()]
    assert found, f"no live data directory under {base}"
    return Settings(data_dir=Path(found[-1])).resolved_artifact_root


def test_the_data_page_generates_and_shows_a_hit3d_dataset(
    browser, live_server: str, tmp_path_factory
):
    from selenium.webdriver.common.by import By

    name = f"ui-hit3d-{uuid.uuid4().hex[:6]}"
    browser.get(f"{live_server}/data")
    _wait(lambda: browser.find_elements(By.ID, "data-generate"), 30, "the form")
    assert _hidden(browser, "data-hit3d-params") and _hidden(browser, "data-hit3d-card")

    _choose(browser, "data-flow", "hit3d")
    _wait(lambda: not _hidden(browser, "data-hit3d-params"), 15, "the hit3d parameters")
    assert _hidden(browser, "data-nu-row") and _hidden(browser, "data-channel-params")
    # The flow's own grid and ν fill the form.
    _wait(
        lambda: browser.find_element(By.ID, "data-resolution").get_attribute("value") == "32",
        10,
        "the flow's 32³ grid",
    )
    _fill(browser, "data-resolution", N)
    _fill(browser, "data-n", 1)
    _fill(browser, "data-t", T)
    _fill(browser, "data-interval", INTERVAL)
    _fill(browser, "data-warmup", 0)
    _fill(browser, "data-shard-size", 1)
    _fill(browser, "data-name", name)
    _wait(lambda: f"at {N}³ (velocity)" in _text(browser, "data-summary"), 10, "the summary")

    button = browser.find_element(By.ID, "data-generate")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    # Texts are read in one script call each: Dash may replace an element between a find
    # and a .text (a stale element under load).
    ok = _wait(lambda: _text(browser, "data-feedback-ok"), 30, "the job to start")
    assert "Isotropic turbulence" in ok, ok
    job_short = ok.split("Job ", 1)[1].split()[0]
    # The job is followed in the HIT card at once.
    _wait(
        lambda: f"generate job {job_short}" in _text(browser, "data-hit3d-title"),
        15,
        "the HIT card to follow the job",
    )
    item = f"//*[@id='data-jobs']//*[contains(@class, 'gen-job')][.//code[text()='{job_short}']]"
    item_text = _wait(
        lambda: browser.execute_script(
            "const e = document.evaluate(arguments[0], document, null, "
            "XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;"
            "return e ? e.innerText : '';",
            item,
        ),
        30,
        "the job in the generation list",
    )
    assert f"@ {N}³" in item_text, item_text
    live = _wait(lambda: _panels(browser), 120, "the HIT panels of the running job")
    assert live["grid"] == f"{N}³"

    preview = _wait(
        lambda: browser.find_elements(
            By.XPATH,
            f"//*[@id='data-table']//tr[.//span[text()='{name}']]//button[text()='Preview']",
        ),
        120,
        "the dataset in the list",
    )[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", preview)
    preview.click()
    _wait(
        lambda: f"on the {N}³ grid" in _text(browser, "data-preview"), 30, "the preview's pointer"
    )
    assert not browser.find_elements(By.ID, "data-preview-error")
    _wait(
        lambda: "snapshot 2 of 3" in _text(browser, "data-hit3d-note"), 30, "the dataset's snapshot"
    )
    seen = _wait(lambda: _panels(browser), 30, "the HIT panels of the dataset")
    assert seen["xaxis"] == "log" and f"{N}³" in seen["spectrumTitle"]
    assert seen["spectrum"][1]["meta"] == "guide:-5/3" and seen["spectrum"][0]["n"] >= 5
    assert seen["series"] == [T, T] and seen["quantity"] == "vorticity"

    # The card's Re_λ is the stored velocity's, recomputed here from the file.
    datasets = httpx.get(f"{live_server}/api/datasets", timeout=10).json()
    dataset = next(d for d in datasets if d["name"] == name)
    assert dataset["shape"] == [1, T, N, N, N, 3]
    path = _live_artifacts(tmp_path_factory) / f"datasets/{dataset['id']}.h5"
    with h5py.File(path, "r") as f:
        velocity = f["t1_fields/velocity"][0, T - 1]
        nu = float(f.attrs["nu"])
    u = torch.from_numpy(velocity.astype(np.float64)).permute(3, 0, 1, 2)[None]
    expected = float(diagnostics.taylor_reynolds(u, nu)[0])
    assert float(seen["re"]) == pytest.approx(expected, rel=1e-3), (seen["re"], expected)

    # The slices switch to the Q-criterion.
    q = browser.find_element(By.CSS_SELECTOR, "#data-hit3d-quantity input[value='q']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", q)
    q.click()
    _wait(lambda: (_panels(browser) or {}).get("quantity") == "q", 30, "the Q slices")
