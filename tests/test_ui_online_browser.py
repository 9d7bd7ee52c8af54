"""Online training from the Train page in a real headless Chromium against the real server
and its one real Celery worker (``live_server``: one slot, as under a default ``eddyscope
up``, so the trainer runs its producers in child processes of its own): tick "Train
online", get the API's own sentence for a seed that is the validation dataset's, start a
tiny ns2d job at 16², follow it, and check that the rates figure, the buffer fill and the
stream's numbers drawn are those of the job's ``online`` events in the database, and the
producers are listed with where they ran."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.db.session import get_database
from app.db.tables import Job, JobEvent
from app.settings import Settings
from tests import test_ui_browser
from tests.test_ui_browser import _choose, _text, _wait
from tests.test_ui_train_page import _fill

pytestmark = pytest.mark.browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

GRID, SEED = 16, 21
CONFIG = {"width": 8, "modes": 4, "n_layers": 2}
ONLINE = {"producers": 2, "trajectories": 8, "buffer_size": 16, "seed": SEED + 5}
ADVANCED = {"min_fill": 8, "stream_size": 8, "steps_per_epoch": 40, "solver_batch": 2}
RUN_TIMEOUT_S = 300

# Everything the check reads, in one script call (Dash may replace an element between a
# find and a .text under load).
VIEW_JS = """
const text = id => { const e = document.getElementById(id); return e ? e.innerText.trim() : null; };
const gd = document.querySelector('#train-online-rates .js-plotly-plot');
const card = document.getElementById('train-online-card');
return JSON.stringify({
    status: text('train-status'),
    cardHidden: !card || card.className.includes('hidden'),
    traces: gd && gd.data ? gd.data.map(t => ({name: t.name, y: Array.from(t.y || [])})) : [],
    stats: Object.fromEntries([
        'produced', 'received', 'consumed', 'buffer', 'trajectories', 'windows'
    ].map(k => [k, text('train-online-' + k)])),
    producers: Array.from(document.querySelectorAll('#train-online .producer-row')).map(
        r => Array.from(r.cells).map(c => c.innerText.trim()))
});
"""


def _view(driver) -> dict:
    return json.loads(driver.execute_script(VIEW_JS))


def _live_database(tmp_path_factory):
    """The live server's database (its data directory is a session temp folder)."""
    base = tmp_path_factory.getbasetemp()
    found = [d for d in sorted(base.glob("live*")) if (d / "eddyscope.sqlite").exists()]
    assert found, f"no live data directory under {base}"
    return get_database(Settings(data_dir=Path(found[-1])).resolved_database_url)


def _generate(live_server: str) -> str:
    response = httpx.post(
        f"{live_server}/api/jobs",
        json={
            "kind": "generate",
            "params": {
                "name": f"ui-online-{uuid.uuid4().hex[:6]}",
                "n_trajectories": 2,
                "n_snapshots": 6,
                "resolution": GRID,
                "interval": 0.5,
                "batch_size": 2,
                "seed": SEED,
            },
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 180
    while (job := httpx.get(f"{live_server}/api/jobs/{job_id}").json())["status"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    return job["result"]["dataset_id"]


def _settle(driver, field: str) -> None:
    """Leave a number box, so it sends its value now, and give Dash a moment to take it (the
    boxes send after a short pause while typing)."""
    from selenium.webdriver.common.keys import Keys

    driver.find_element("name", f"train-online-opt.{field}").send_keys(Keys.TAB)
    time.sleep(1.0)


def _click(driver, by: str, what: str) -> None:
    """Click an element brought to the middle of the window (the sticky bar covers the top)."""
    element = driver.find_element(by, what)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _rate(value: float) -> str:  # as the page writes a rate
    return f"{value:,.1f}/s"


def test_the_train_page_starts_and_follows_an_online_job(
    browser, live_server: str, tmp_path_factory
):
    from selenium.webdriver.common.by import By

    dataset_id = _generate(live_server)
    browser.get(f"{live_server}/train?dataset={dataset_id}")
    _wait(
        lambda: browser.find_elements(
            By.XPATH, "//*[@id='train-dataset']//*[contains(@class, 'dash-dropdown-value-item')]"
        ),
        60,
        "the datasets to load",
    )
    _choose(browser, "train-dataset", dataset_id)
    _wait(lambda: browser.find_elements(By.NAME, "cfg-field.modes"), 60, "the generated form")
    for key, value in CONFIG.items():
        _fill(browser, "cfg-field", key, value)
    _fill(browser, "train-opt", "epochs", 2)
    _fill(browser, "train-opt", "batch_size", 4)
    _fill(browser, "train-opt", "lr", 0.01)

    # The online options appear when "Train online" is ticked.
    fields = browser.find_element(By.ID, "train-online-fields")
    assert "hidden" in fields.get_attribute("class")
    _click(browser, By.CSS_SELECTOR, "#train-online-on input")
    _wait(
        lambda: (
            "hidden"
            not in browser.find_element(By.ID, "train-online-fields").get_attribute("class")
        ),
        15,
        "the online options",
    )
    for key, value in ONLINE.items():
        _fill(browser, "train-online-opt", key, value)
    _click(browser, By.CSS_SELECTOR, "#train-online-form details > summary")
    for key, value in ADVANCED.items():
        _fill(browser, "train-online-opt", key, value)

    # The validation dataset's own seed: the API's sentence, word for word.
    _fill(browser, "train-online-opt", "seed", SEED)
    api = httpx.post(
        f"{live_server}/api/jobs",
        json={
            "kind": "train",
            "params": {
                "dataset_id": dataset_id,
                "config": CONFIG,
                "online": {**ONLINE, **ADVANCED, "seed": SEED},
            },
        },
    )
    assert api.status_code == 422, api.text
    _settle(browser, "seed")
    _click(browser, By.ID, "train-start")
    shown = _wait(lambda: _text(browser, "train-feedback-error"), 30, "the seed's sentence")
    assert shown == api.json()["detail"], shown
    assert "is the validation dataset's seed" in shown

    _fill(browser, "train-online-opt", "seed", ONLINE["seed"])
    _settle(browser, "seed")
    _click(browser, By.ID, "train-start")
    _wait(lambda: "job=" in browser.current_url, 30, "the job's address")
    job_id = browser.current_url.split("job=", 1)[1].split("&")[0]
    job = httpx.get(f"{live_server}/api/jobs/{job_id}").json()
    online = job["params"]["online"]
    assert {k: online[k] for k in {**ONLINE, **ADVANCED}} == {**ONLINE, **ADVANCED}
    assert online["buffer_policy"] == "reservoir" and online["validation_dataset_id"] == dataset_id

    # Followed live: the online card and the stream's numbers while the job runs.
    running: list[dict] = []
    view: dict = {}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        view = _view(browser)
        status = (view["status"] or "").lower()
        if "training" in status and not view["cardHidden"] and view["stats"]["buffer"]:
            running.append(view)
        if any(word in status for word in ("succeeded", "failed", "cancelled")):
            break
        time.sleep(0.3)
    assert "succeeded" in (view["status"] or "").lower(), (
        view,
        httpx.get(f"{live_server}/api/jobs/{job_id}").json(),
        httpx.get(f"{live_server}/api/jobs", params={"parent_id": job_id}).json(),
    )
    assert running, "the online view was not seen while the job ran"

    db = _live_database(tmp_path_factory)
    with db.session() as session:
        events = [
            p
            for p in session.scalars(
                select(JobEvent.payload)
                .where(JobEvent.job_id == job_id, JobEvent.type == "online")
                .order_by(JobEvent.seq)
            )
        ]
        producers = {
            j.id: j.worker for j in session.scalars(select(Job).where(Job.parent_id == job_id))
        }
    timed = [e for e in events if e.get("time") is not None]
    assert timed and timed[-1]["stage"] == "done", events[-3:]

    # The page's poll stops once it has the final events; the figure is drawn from them.
    def final_view():
        seen = _view(browser)
        traces = {t["name"]: t["y"] for t in seen["traces"]}
        fill = traces.get("buffer fill, windows") or []
        return seen if len(fill) == len(timed) else None

    final = _wait(final_view, 60, f"the rates figure with all {len(timed)} online events")
    traces = {t["name"]: t["y"] for t in final["traces"]}
    assert traces["buffer fill, windows"] == [e["buffer_fill"] for e in timed], (traces, timed)
    assert max(traces["buffer fill, windows"]) >= ADVANCED["min_fill"]
    for key, name in (
        ("produced", "produced (all producers), samples/s"),
        ("received", "received by the trainer, samples/s"),
        ("consumed", "consumed by training, samples/s"),
    ):
        assert traces[name] == [e[f"{key}_per_s"] for e in timed], key
    assert any(v > 0 for v in traces["consumed by training, samples/s"])
    assert traces["buffer size"] == [ONLINE["buffer_size"]] * 2

    last = timed[-1]
    assert final["stats"] == {
        "produced": _rate(last["produced_per_s"]),
        "received": _rate(last["received_per_s"]),
        "consumed": _rate(last["consumed_per_s"]),
        "buffer": f"{last['buffer_fill']:,} / {last['buffer_size']:,}",
        "trajectories": (
            f"{last['unique_trajectories']:,} ({last['complete_trajectories']:,} whole)"
        ),
        "windows": f"{last['received']:,}",
    }
    # The producers, each with the worker the database says it ran on: the one slot is
    # the trainer's, so those that ran did in its child processes. (One started just
    # before the trainer ended may still be listed as queued, without a worker.)
    listed = {row[0]: row[2] for row in final["producers"]}
    assert set(listed) == set(producers), (final["producers"], producers)
    ran = {p: w for p, w in producers.items() if w}
    assert ran and all(w.endswith("(child of the trainer)") for w in ran.values()), producers
    shown = {p: w for p, w in listed.items() if w != "—"}
    assert shown and all(producers[p] == w for p, w in shown.items()), (shown, producers)
    # Reopened, the page shows the job's online options in the form.
    browser.get(f"{live_server}/train?job={job_id}")
    _wait(
        lambda: (
            browser.find_element(By.NAME, "train-online-opt.trajectories").get_attribute("value")
            == str(ONLINE["trajectories"])
        ),
        60,
        "the reopened online options",
    )
    # (The box is ticked in the same callback; the fields show in the next round.)
    _wait(
        lambda: (
            "hidden"
            not in browser.find_element(By.ID, "train-online-fields").get_attribute("class")
        ),
        30,
        "the reopened job's online options to show",
    )
    print(
        f"online job {job_id}: {len(timed)} online events, {len(running)} samples while "
        f"running; last: buffer {last['buffer_fill']}/{last['buffer_size']}, consumed "
        f"{last['consumed']}, received {last['received']}"
    )
