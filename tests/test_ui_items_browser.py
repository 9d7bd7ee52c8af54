"""Runs you can find, in a real headless Chromium against the real server (issue 15, item 3):
delete a model from the Models page through its confirmation (its folder goes, its
dataset's lineage no longer lists it), overlay two training runs on ``/train/runs`` (loss,
validation, by step or wall time), and the Runs page's filters kept in the address.

The items are written straight into the live server's database and artifact store, as a
worker would leave them, so the test needs no training."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.artifacts import ArtifactStore
from app.db.session import get_database
from app.db.tables import Job, JobEvent, Model, utcnow
from app.settings import Settings
from tests.test_compare import fno, register_model, write_dataset
from tests.test_ui_browser import _text, _wait, browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_store(live_server: str, tmp_path_factory):
    """The live server's database and artifact store."""
    base = tmp_path_factory.getbasetemp()
    found = [d for d in sorted(base.glob("live*")) if (d / "eddyscope.sqlite").exists()]
    assert found, f"no live data directory under {base}"
    settings = Settings(data_dir=Path(found[-1]))
    return get_database(settings.resolved_database_url), ArtifactStore(
        settings.resolved_artifact_root
    )


def _train_job(db, dataset_id: str, name: str | None = None, *, losses=(), vals=()) -> str:
    """A finished training run with its events: a train event per loss (one second apart)
    and an epoch event per validation error."""
    start = utcnow() - timedelta(minutes=10)
    steps = len(losses)
    epochs = max(len(vals), 1)
    with db.session() as session:
        job = Job(
            kind="train",
            status="succeeded",
            queue="cpu",
            name=name,
            params={"dataset_id": dataset_id, "arch": "fno2d", "epochs": epochs},
            progress=1.0,
            created_at=start,
            started_at=start,
            finished_at=start + timedelta(seconds=steps + 1),
        )
        session.add(job)
        session.flush()
        for i, loss in enumerate(losses, start=1):
            session.add(
                JobEvent(
                    job_id=job.id,
                    type="train",
                    payload={
                        "type": "train",
                        "epoch": 1 + (i - 1) * epochs // steps,
                        "step": i,
                        "total_steps": steps,
                        "train_loss": loss,
                        "lr": 1e-3 * (1 - i / (steps + 1)),
                    },
                    created_at=start + timedelta(seconds=i),
                )
            )
        for e, val in enumerate(vals, start=1):
            session.add(
                JobEvent(
                    job_id=job.id,
                    type="epoch",
                    payload={
                        "type": "epoch",
                        "epoch": e,
                        "epochs": epochs,
                        "train_loss": losses[-1] if losses else 0.1,
                        "val_rel_l2": val,
                        "persistence_rel_l2": 0.5,
                    },
                    created_at=start + timedelta(seconds=e * steps / epochs),
                )
            )
        session.commit()
        return job.id


def _click(driver, xpath: str, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By

    def attempt():
        found = driver.find_elements(By.XPATH, xpath)
        if not found:
            return False
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
        found[0].click()
        return True

    _wait(attempt, timeout, xpath)


def _dialog_open(driver) -> bool:
    return driver.execute_script(
        "const d = document.getElementById('item-dialog');"
        "return !!d && !d.classList.contains('hidden');"
    )


def test_delete_a_model_from_the_models_page(browser, live_server: str, live_store):  # noqa: F811
    db, artifacts = live_store
    dataset_id, _ = write_dataset(db, artifacts)
    train = _train_job(db, dataset_id, "browser training", losses=[0.5, 0.4], vals=[0.3])
    model_id = register_model(db, artifacts, *fno(0), name="doomed model", dataset_id=dataset_id)
    with db.session() as session:
        session.get(Model, model_id).job_id = train
        session.commit()
    folder = artifacts.resolve(f"models/{model_id}")
    assert folder.is_dir()
    lineage = httpx.get(f"{live_server}/api/datasets/{dataset_id}/lineage").json()
    assert model_id in [r["id"] for r in lineage["used_by"]]

    browser.get(f"{live_server}/models")
    row = f"//tr[@id='model-row-{model_id}']"
    _click(browser, f"{row}//button[normalize-space()='Delete']")
    _wait(lambda: _dialog_open(browser), 30, "the delete dialog")
    _wait(lambda: "doomed model" in _text(browser, "item-dialog-title"), 30, "the dialog title")
    # The dialog shows the model's lineage (its training run and dataset) before deleting.
    _wait(lambda: "browser training" in _text(browser, "item-lineage"), 30, "the lineage")
    assert folder.is_dir()  # nothing goes before the confirmation
    _click(browser, "//button[@id='item-dialog-delete']")
    _wait(lambda: "Deleted the model" in _text(browser, "item-dialog-deleted"), 60, "deleted")

    assert not folder.exists()
    assert httpx.get(f"{live_server}/api/models/{model_id}").status_code == 404
    lineage = httpx.get(f"{live_server}/api/datasets/{dataset_id}/lineage").json()
    assert [r["id"] for r in lineage["used_by"]] == [train]
    _click(browser, "//button[@id='item-dialog-close']")
    _wait(lambda: not _dialog_open(browser), 10, "the dialog to close")
    _wait(
        lambda: (
            not browser.execute_script(
                "return !!document.getElementById(arguments[0]);", f"model-row-{model_id}"
            )
        ),
        30,
        "the row to go",
    )

    # The dataset's lineage on the Data page no longer names the model.
    browser.get(f"{live_server}/data")
    _click(
        browser,
        f"//tr[.//code[normalize-space()='{dataset_id}']]//button[normalize-space()='Lineage']",
        60,
    )
    _wait(lambda: "browser training" in _text(browser, "item-lineage"), 30, "the dataset lineage")
    assert "doomed model" not in _text(browser, "item-lineage")


OVERLAY_JS = """
const gd = document.querySelector('#overlay-graph .js-plotly-plot');
if (!gd || !gd.data) { return null; }
return JSON.stringify(gd.data.filter(t => t.showlegend !== false).map(
    t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])})));
"""


def _overlay(driver) -> list[dict] | None:
    import json

    raw = driver.execute_script(OVERLAY_JS)
    return json.loads(raw) if raw else None


def test_overlay_two_training_runs(browser, live_server: str, live_store):  # noqa: F811
    db, artifacts = live_store
    dataset_id, _ = write_dataset(db, artifacts)
    a = _train_job(db, dataset_id, "overlay run A", losses=[1.0, 0.5, 0.25, 0.125], vals=[0.4, 0.2])
    b = _train_job(db, dataset_id, "overlay run B", losses=[0.8, 0.6, 0.4], vals=[0.5])

    browser.get(f"{live_server}/train/runs?jobs={a},{b}")

    def names(expect_y=None):
        traces = _overlay(browser)
        if not traces or {t["name"] for t in traces} != {"overlay run A", "overlay run B"}:
            return None
        if expect_y and [t["y"] for t in traces] != expect_y:
            return None
        return traces

    traces = _wait(lambda: names([[1.0, 0.5, 0.25, 0.125], [0.8, 0.6, 0.4]]), 60, "two runs")
    assert traces[0]["x"] == [1, 2, 3, 4]  # by optimiser step

    # Validation error per epoch, by wall time (seconds since each run started).
    _click(browser, "//label[normalize-space()='Validation rel. L2']")
    _click(browser, "//label[normalize-space()='by wall time']")
    traces = _wait(lambda: names([[0.4, 0.2], [0.5]]), 30, "the validation curves")
    _wait(lambda: (names() or [{}])[0].get("x") == [2, 4], 30, "wall-time x")
    # The address follows each choice in turn: wait for both.
    _wait(
        lambda: "metric=val" in browser.current_url and "x=time" in browser.current_url,
        10,
        "the address",
    )

    # The address reopens the same view.
    browser.get(browser.current_url)
    _wait(lambda: names([[0.4, 0.2], [0.5]]), 60, "the reopened overlay")

    # Each run's own page reopens its curves (Runs → Curves).
    browser.get(f"{live_server}/train?job={a}")
    _wait(
        lambda: browser.execute_script(
            "const g = document.querySelector('#train-loss .js-plotly-plot');"
            "return g && g.data && g.data.length >= 2;"
        ),
        60,
        "the reopened loss curve",
    )


def test_runs_filters_live_in_the_address(browser, live_server: str, live_store):  # noqa: F811
    db, artifacts = live_store
    dataset_id, _ = write_dataset(db, artifacts)
    wanted = _train_job(db, dataset_id, "findable sweep", losses=[0.3], vals=[0.2])
    _train_job(db, dataset_id, "another run", losses=[0.3], vals=[0.2])

    browser.get(f"{live_server}/?kind=train&q=findable")

    def listed() -> list[str]:
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('.jobs-table code')).map(c => c.title);"
        )

    _wait(lambda: listed() == [wanted], 60, "only the matching run")
    assert "Curves" in _text(browser, "runs-table")
    # Typing a new search changes the address (bookmarkable) without a page load.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element(By.ID, "runs-search")
    box.send_keys(Keys.CONTROL, "a")  # clear() bypasses React: select and type over
    box.send_keys("another")
    _wait(lambda: "q=another" in browser.current_url, 30, "the address to follow")
    _wait(lambda: len(listed()) == 1 and listed() != [wanted], 30, "the other run")
