"""The Compare page: its pure pieces (options, entries, series, column headers, the Runs
page's link) without a browser, then one run in a real headless Chromium against the real
server and a real Celery worker (the ``live_server`` fixture): two tiny FNOs trained through
the API, the 64² example uploaded, compared on the page — both model columns, the overlaid
spectra filling in while the job runs, the summary table once it is done — and the
comparison reopened from the Runs page.

Set ``EDDYSCOPE_SCREENSHOT=1`` to also save the page to ``docs/compare.png``.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from dash import html
from plotly.utils import PlotlyJSONEncoder

from app.ui.pages import runs
from app.ui.pages.compare import helpers as compare
from tests import test_ui_browser

# The headless Chromium of the other browser tests (a module-scoped fixture).
browser = test_ui_browser.browser

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "static" / "examples" / "example_ns2d_forced_64.npy"


def _text(component) -> str:
    """The visible text of a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def _setup() -> dict:
    return {
        "type": "compare_setup",
        "reference": True,
        "steps": 4,
        "interval": 0.5,
        "reference_resolution": 64,
        "models": [
            {
                "index": 0,
                "model_id": "a" * 32,
                "name": "fno-a",
                "arch": "fno2d",
                "parameters": 1234,
                "precision": "float32",
                "resolution": 32,
                "resampled_from": 64,
                "history": 1,
                "status": "running",
                "message": None,
            },
            {
                "index": 1,
                "model_id": "b" * 32,
                "name": "fno-b",
                "arch": "fno2d",
                "parameters": 999,
                "precision": "int8",
                "resolution": 64,
                "resampled_from": None,
                "history": 1,
                "quantized_fraction": 0.8,
                "status": "running",
                "message": None,
            },
        ],
    }


def _metrics(step: int, b_status: str = "running") -> dict:
    def entry(value, status="running", message=None):
        return {
            "rel_l2": value,
            "rel_h1": value,
            "corr": 1 - value if value is not None else None,
            "energy": 1.0,
            "enstrophy": 2.0,
            "spectrum": [0.0, 1.0, 0.1],
            "band_errors": None,
            "ms": 1.0,
            "status": status,
            "message": message,
        }

    b_message = f"diverged at step {step}" if b_status == "diverged" else None
    return {
        "type": "metrics",
        "step": step,
        "t": step * 0.5,
        "k": [0, 1, 2],
        "reference": {"energy": 1.0, "enstrophy": 2.0, "spectrum": [0.0, 1.0, 0.1], "ms": 3.0},
        "models": {
            "0": entry(0.1 * step),
            "1": entry(None if b_status != "running" else 0.2 * step, b_status, b_message),
        },
    }


# --- pure pieces ---------------------------------------------------------------------------


def test_series_and_statuses_follow_the_events():
    setup = _setup()
    series = compare.series_from(setup, [_metrics(0), _metrics(1)])
    assert series["t"] == [0.0, 0.5] and series["step"] == [0, 1]
    assert series["models"]["0"]["rel_l2"] == [0.0, 0.1]
    assert series["reference"]["energy"] == [1.0, 1.0]
    assert series["status"]["1"]["status"] == "running"
    # Model 1 diverges at step 2; later events say "diverged" too, the step stays 2.
    status = compare.status_after(series["status"], [_metrics(2, "diverged")])
    status = compare.status_after(status, [_metrics(3, "diverged")])
    assert status["1"] == {"status": "diverged", "message": "diverged at step 2", "step": 2}
    assert status["0"]["status"] == "running"


def test_columns_headers_show_status_resampling_and_precision():
    setup = _setup()
    columns = compare.columns_of(setup)
    assert [c["key"] for c in columns] == ["reference", "0", "1"]
    assert columns[1]["label"] == "fno-a (float32)" and columns[2]["label"] == "fno-b (int8)"
    assert compare.columns_of(None) == []
    assert [c["key"] for c in compare.columns_of({**setup, "reference": False})] == ["0", "1"]

    diverged = {"status": "diverged", "message": "diverged at step 7", "step": 7}
    state = compare.column_status(columns[2], diverged, None, "running")
    header = _text(compare.column_header(columns[2], state, setup))
    assert "diverged at step 7" in header and "int8" in header and "80% int8" in header
    header = _text(
        compare.column_header(
            columns[1], compare.column_status(columns[1], None, None, "running"), setup
        )
    )
    assert "resampled 64→32" in header and "fno2d · float32 · 1,234 params" in header
    assert "running" in header
    reference = compare.column_header(
        columns[0], compare.column_status(columns[0], None, None, "succeeded"), setup
    )
    assert "Reference solver" in _text(reference) and "completed" in _text(reference)
    # The summary's word wins once the job is done; a failure shows its reason.
    done = compare.column_status(columns[1], None, {"status": "completed"}, "succeeded")
    assert done["status"] == "completed"
    failed = compare.column_status(
        {**columns[1], "status": "failed", "message": "bfloat16 needs a CUDA worker"},
        None,
        None,
        "running",
    )
    assert failed["status"] == "failed"
    assert "bfloat16 needs a CUDA worker" in _text(compare.column_header(columns[1], failed, setup))
    # Blank panels after the divergence say why.
    notes = compare.panel_notes(columns[2], state, 9, diverged)
    assert notes["note"] == "diverged at step 7"
    assert compare.panel_notes(columns[2], state, 7, diverged) == {"stopped": True}


def test_model_options_follow_the_flow_and_the_interval():
    models = [
        {"id": "a", "name": "a", "arch": "fno2d", "flow": "ns2d-forced", "interval": 0.5,
         "resolution": 32, "parameter_count": 10},
        {"id": "b", "name": "b", "arch": "unet2d", "flow": "ns2d-forced", "interval": 1.0,
         "resolution": 64, "parameter_count": 20},
        {"id": "c", "name": "c", "arch": "fno2d", "flow": "kolmogorov2d", "interval": 0.5,
         "resolution": 32, "parameter_count": 30},
    ]  # fmt: skip
    options, kept, note = compare.model_options(models, "ns2d-forced", ["a", "c"])
    assert [o["value"] for o in options] == ["a", "b"]
    assert kept == ["a"]  # c is of another flow
    assert [o["disabled"] for o in options] == [False, True]  # b steps at another Δt
    assert "10 params" in options[0]["label"] and "32²" in options[0]["label"]
    assert "1 on other flows not listed" in note


def test_trajectory_options_list_the_held_out_split_first():
    dataset = {"id": "d", "n_trajectories": 5}
    models = [
        {"id": "a", "name": "fno-a", "dataset_id": "d", "held_out": [3, 4]},
        {"id": "b", "name": "fno-b", "dataset_id": "d", "held_out": [4, 1]},
    ]
    options, default, note = compare.trajectory_options(dataset, models)
    assert [o["value"] for o in options] == [4, 0, 1, 2, 3]
    assert "held out" in options[0]["label"]
    assert "fno-a" in options[2]["label"] and "fno-b" in options[4]["label"]
    assert default == 4 and "1 of 5" in note
    options, default, note = compare.trajectory_options(dataset, [])
    assert default == 0 and "None of the chosen models" in note


def test_entries_and_params_from_the_form():
    ids = [{"type": "compare-precision", "model": "a"}, {"type": "compare-precision", "model": "b"}]
    entries = compare.entries_of(["b", "a"], [["float32", "int8"], ["bfloat16"]], ids)
    assert entries == [
        {"model_id": "b", "precision": "bfloat16"},
        {"model_id": "a", "precision": "float32"},
        {"model_id": "a", "precision": "int8"},
    ]
    params = compare.compare_params("dataset", "ic", "d", 3, entries, 20, None, [], 5.0, [1.0, 2.0])
    assert params == {
        "models": entries,
        "steps": 20,
        "reference": False,
        "dataset_id": "d",
        "trajectory": 3,
        "divergence_factor": 5.0,
        "report_times": [1.0, 2.0],
    }
    params = compare.compare_params("upload", "ic", "d", 3, entries, 20, 0.5, ["on"], None, None)
    assert params["initial_condition_id"] == "ic" and "dataset_id" not in params
    assert params["reference"] is True and params["interval"] == 0.5
    assert compare.parse_times(" 1, 2.5 5 ") == [1.0, 2.5, 5.0]
    assert compare.parse_times("") is None
    with pytest.raises(ValueError, match="'x' is not a number"):
        compare.parse_times("1, x")


def test_runs_page_links_a_comparison_to_its_page():
    job = {
        "id": "j" * 32,
        "kind": "compare",
        "status": "succeeded",
        "params": {"models": [{"model_id": "a"}, {"model_id": "a"}, {"model_id": "b"}],
                   "steps": 40},
        "result": {"rollout_id": "r" * 32},
    }  # fmt: skip
    link = runs._open_link(job)
    assert link.href == f"/compare/{'r' * 32}" and link.children == "Open comparison"
    assert runs._open_link({**job, "result": {}}).href == f"/compare/{'j' * 32}"
    assert runs.job_detail(job) == "2 models · 3 columns · 40 steps"
    assert runs.KIND_LABELS["compare"] == "Compare"
    assert isinstance(compare.export_links("r"), html.Div)
    hrefs = [a.href for a in compare.export_links("r").children[1:]]
    assert hrefs == ["/api/rollouts/r/export.nc", "/api/rollouts/r/metrics.csv",
                     "/api/rollouts/r/animation.gif"]  # fmt: skip


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"


def test_a_followed_comparison_page_is_drawn_with_its_grid_before_the_first_frame(client):
    # The page of a comparison its worker has not started yet already holds one blank
    # column per model and one for the reference (from the job's parameters), so the
    # browser draws them while the worker loads the models; the push reads the keys back.
    from app.examples import register_demo_model
    from app.services import jobs_view
    from app.ui.context import set_state

    # (The package's ``layout`` is the page function; the module holds planned.)
    layout = importlib.import_module("app.ui.pages.compare.layout")
    state = client.app.state.eddyscope
    set_state(state)
    register_demo_model(state.db, state.artifacts)
    with EXAMPLE.open("rb") as f:
        ic = client.post(
            "/api/initial-conditions",
            files={"file": ("example.npy", f.read())},
            data={"flow": "ns2d-forced"},
        ).json()
    demo = next(m for m in client.get("/api/models").json() if m["name"].startswith("demo"))
    entries = [{"model_id": demo["id"]}, {"model_id": demo["id"], "precision": "int8"}]
    params = {"initial_condition_id": ic["id"], "models": entries, "steps": 3}
    job = jobs_view.submit_job(state, "compare", params)
    shells, style, keys = compare.grid_shells(*layout.planned(job["id"]))
    assert keys == ["reference", "0", "1"]
    assert [c.id for c in shells] == ["compare-col-reference", "compare-col-0", "compare-col-1"]
    figure = shells[1].children[1].figure
    assert [t.opacity for t in figure.data] == [0, 0]  # blank, the frame's layout
    notes = [a.text for a in figure.layout.annotations]
    assert notes == ["waiting for the first frame", "waiting"]
    assert style == compare.grid_style(3)
    page_json = json.dumps(layout.layout(compare_id=job["id"]), cls=PlotlyJSONEncoder)
    assert '"compare-col-1"' in page_json and '"data": ["reference", "0", "1"]' in page_json
    # Its page leaves the hidden channel and hit3d views out (nine graphs fewer to draw
    # before the first frame); the set-up page keeps them, and both keep the stores.
    for panel in PANEL_IDS:
        assert f'"{panel}"' not in page_json, panel
    # Its charts are laid out too: a line for every column, no data, the same note.
    page = layout.layout(compare_id=job["id"])
    charts = {g: _find(page, g).figure for g in ("compare-spectra", "compare-error")}
    names = [t["name"] for t in charts["compare-spectra"]["data"]]
    assert len(names) == 5 and names[0] == "reference solver", names  # and the two guides
    assert names[1].endswith("(float32)") and names[2].endswith("(int8)"), names
    assert len(charts["compare-error"]["data"]) == 4  # L2 and H1 of the two models
    for fig in charts.values():
        assert [a["text"] for a in fig["layout"]["annotations"]] == [compare.WAITING]
    # ... and its set-up form folded behind a button (loaded when asked for).
    assert _find(page, "compare-setup-open") is not None
    assert "hidden" in _find(page, "compare-setup-wrap").className
    setup_json = json.dumps(layout.layout(), cls=PlotlyJSONEncoder)
    assert '"compare-setup-open"' not in setup_json
    for panel in PANEL_IDS:
        assert f'"{panel}"' in setup_json, panel
    assert '"compare-ch-stats"' in page_json and '"compare-ch-stats"' in setup_json
    # Without the reference: no reference column; a ref naming nothing: no grid.
    job = jobs_view.submit_job(state, "compare", {**params, "reference": False})
    assert compare.grid_shells(*layout.planned(job["id"]))[2] == ["0", "1"]
    assert layout.planned("f" * 16) is None


PANEL_IDS = ("compare-channel-results", "compare-ch-slices", "compare-hit3d-results")


def _find(component, wanted: str):
    """The component with id ``wanted`` in a Dash component tree, or None."""
    if getattr(component, "id", None) == wanted:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found = _find(child, wanted)
            if found is not None:
                return found
    return None


def _ids(component, out: set[str]) -> set[str]:
    """Every string id in a Dash component tree."""
    if isinstance(getattr(component, "id", None), str):
        out.add(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            _ids(child, out)
    return out


def test_every_callback_of_the_flow_views_lies_wholly_inside_them(live_server: str):
    # A page without the channel and hit3d views (a followed 2D comparison's) relies on the
    # renderer skipping their callbacks: it does for a callback none of whose outputs is on
    # the page, but one with only some of them would be sent with a short output list (a
    # server error), and one reading a missing State fails in the browser. The callbacks
    # are read as the browser reads them (/_dash-dependencies).
    from app.ui.pages.compare import channel, hit3d

    inside: set[str] = set()
    for panel in (channel.results(), channel.slices_panel(), hit3d.results()):
        _ids(panel, inside)
    assert {"compare-ch-mean", "compare-hit3d-errors", "compare-ch-shown"} <= inside
    checked = 0
    for cb in httpx.get(f"{live_server}/_dash-dependencies").json():
        outputs = [
            o.rsplit(".", 1)[0] for o in cb["output"].strip(".").split("...") if o.strip(".")
        ]
        reads = [d["id"] for d in cb["inputs"] + cb["state"] if isinstance(d["id"], str)]
        touched = [i for i in outputs + reads if i in inside]
        if not touched:
            continue
        checked += 1
        assert all(o in inside for o in outputs), cb["output"]
        assert any(o in inside for o in outputs), cb["output"]
    assert checked >= 6  # the channel views' five callbacks and hit3d's two, at least


# --- in the browser ------------------------------------------------------------------------

GRID = 32
INTERVAL = 0.5
# Long enough that the job still runs while the page is sampled a few times and the user
# goes back to an earlier frame (~8 s here).
STEPS = 240
RUN_TIMEOUT_S = 300
CONFIG = {"width": 8, "modes": 4, "n_layers": 2}

SPECTRA_JS = """
const gd = document.querySelector('#compare-spectra .js-plotly-plot');
if (!gd || !gd.data) { return null; }
return JSON.stringify(gd.data.map(t => ({
    name: t.name, n: Array.from(t.y || []).filter(v => v !== null).length
})));
"""
# The modes of the error chart's curves that have points (a browsed run's curves get a
# marker on each point up to 60 points; live ones never do).
CURVE_MODES_JS = """
const gd = document.querySelector('#compare-error .js-plotly-plot');
if (!gd || !gd.data) { return []; }
return gd.data.filter(t => t.mode !== 'markers' && t.y && t.y.length > 0).map(t => t.mode);
"""
# The step a field column shows (its figure's layout.meta.step).
FIELD_STEP_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return gd && gd.layout && gd.layout.meta ? gd.layout.meta.step : null;
"""
COLUMN_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd.data) { return 0; }
return gd.data.filter(t => t.type === 'heatmap' && !(t.meta && t.meta.blank)).length;
"""

FIELDS_IN_VIEW_JS = """
const card = document.getElementById('compare-fields-card');
if (!card) { return false; }
const r = card.getBoundingClientRect();
return r.top >= 0 && r.top < window.innerHeight * 0.7;
"""
TABLE_CLIP_JS = """
const card = document.getElementById('compare-summary-card');
const table = card.querySelector('table');
const boxes = [...card.querySelectorAll('.dash-spreadsheet-container, .dash-table-container')];
const scroller = boxes.find(b => b.scrollWidth > b.clientWidth + 1 &&
    ['auto', 'scroll'].includes(getComputedStyle(b).overflowX));
const heads = [...card.querySelectorAll('th')].map(th => th.innerText.trim()).filter(t => t);
let scrolls = false;
if (scroller) {
    scroller.scrollLeft = scroller.scrollWidth;
    const last = [...card.querySelectorAll('th')].pop().getBoundingClientRect();
    const box = scroller.getBoundingClientRect();
    scrolls = last.right <= box.right + 1 && last.left >= box.left - 1;
    scroller.scrollLeft = 0;
}
return JSON.stringify({
    headers: heads,
    fits: table.getBoundingClientRect().right <= card.getBoundingClientRect().right + 1,
    scrolls: scrolls,
});
"""


def _wait_job(base: str, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _submit(base: str, kind: str, params: dict) -> str:
    response = httpx.post(f"{base}/api/jobs", json={"kind": kind, "params": params})
    assert response.status_code == 202, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def two_models(live_server: str) -> list[str]:
    """Two tiny FNOs trained through the API on a tiny generated dataset (32², Δt 0.5)."""
    tag = uuid.uuid4().hex[:6]
    generate = _submit(
        live_server,
        "generate",
        {
            "name": f"ui-compare-{tag}",
            "n_trajectories": 4,
            "n_snapshots": 5,
            "resolution": GRID,
            "interval": INTERVAL,
            "batch_size": 4,
            "seed": 2,
        },
    )
    job = _wait_job(live_server, generate)
    assert job["status"] == "succeeded", job
    dataset_id = job["result"]["dataset_id"]
    ids = []
    for i, width in enumerate((8, 6)):
        train = _submit(
            live_server,
            "train",
            {
                "dataset_id": dataset_id,
                "name": f"cmp-{tag}-{i}",
                "arch": "fno2d",
                "config": CONFIG | {"width": width},
                "epochs": 2,
                "batch_size": 4,
                "seed": i,
            },
        )
        job = _wait_job(live_server, train)
        assert job["status"] == "succeeded", job
        ids.append(job["result"]["model_id"])
    return ids


@pytest.fixture(scope="module")
def example_ic(live_server: str) -> str:
    """The shipped 64² example, uploaded through the API (the models run on 32²)."""
    with open(EXAMPLE, "rb") as f:
        response = httpx.post(
            f"{live_server}/api/initial-conditions",
            files={"file": ("compare_example_64.npy", f.read())},
            data={"flow": "ns2d-forced"},
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _spectra(browser) -> list[dict] | None:
    raw = browser.execute_script(SPECTRA_JS)
    return json.loads(raw) if raw else None


def _choose_models(browser, model_ids: list[str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.test_ui_browser import _wait

    for model_id in model_ids:
        browser.find_element(By.ID, "compare-models").click()
        option = _wait(
            lambda m=model_id: browser.find_elements(
                By.XPATH, f"//*[@role='option'][.//input[@value='{m}']]"
            ),
            15,
            f"option {model_id}",
        )[0]
        if option.get_attribute("aria-selected") != "true":
            # clear of the list's sticky search box (see tests/test_ui_browser.py::_choose_once)
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", option)
            option.click()
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)
        _wait(
            lambda m=model_id: browser.find_elements(
                By.CSS_SELECTOR, f"#compare-precisions [id*='{m}']"
            ),
            15,
            f"the precision row of {model_id}",
        )


@pytest.mark.browser
def test_compare_two_models_live_and_reopen_from_runs(
    browser, live_server: str, two_models: list[str], example_ic: str
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.test_ui_browser import _choose, _text, _wait

    browser.get(f"{live_server}/compare")
    _wait(
        lambda: browser.find_elements(
            By.XPATH, "//*[@id='compare-ic']//*[contains(@class, 'dash-dropdown-value-item')]"
        ),
        30,
        "the initial conditions to load",
    )
    _choose(browser, "compare-ic", example_ic)
    _choose_models(browser, two_models)
    box = browser.find_element(By.ID, "compare-steps")
    box.clear()
    box.send_keys(str(STEPS))
    time.sleep(0.3)
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    # Scrolled as far down as leaves Start visible: at the bottom of the window, never under
    # the sticky navigation bar (advice that appears under the form makes the page longer).
    start = browser.find_element(By.ID, "compare-start")
    browser.execute_script("arguments[0].scrollIntoView({block: 'end'});", start)
    start.click()
    _wait(lambda: "/compare/" in browser.current_url, 30, "the comparison's address")
    job_id = browser.current_url.rsplit("/", 1)[1]
    # The live fields are in view after Start (even from a window scrolled to the bottom).
    _wait(lambda: browser.execute_script(FIELDS_IN_VIEW_JS), 15, "the fields in view")

    # Both model columns and the reference fill in; the spectra overlay every column and
    # change while the job runs.
    samples: list[str] = []
    live_modes: set[str] = set()
    browsed = None  # the status line when the user's frame was drawn
    status = ""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _text(browser, "compare-status").lower()
        if "running" in status:
            spectra = _spectra(browser)
            if spectra and any(t["n"] for t in spectra):
                samples.append(json.dumps(spectra))
            live_modes |= set(browser.execute_script(CURVE_MODES_JS) or [])
            newest = browser.execute_script(FIELD_STEP_JS, "compare-col-0") or 0
            if browsed is None and newest >= 3 and "running ·" in status:
                # Back to frame 2 while the run goes on: the push leaves the fields there
                # and views draws that frame (the setup reaches it only now).
                box = browser.find_elements(
                    By.CSS_SELECTOR, "#compare-slider-wrap input[type='number']"
                )
                box[0].send_keys(Keys.CONTROL, "a")
                box[0].send_keys("2")
                _wait(
                    lambda: browser.execute_script(FIELD_STEP_JS, "compare-col-0") == 2,
                    30,
                    "frame 2 drawn while the run goes on",
                )
                browsed = _text(browser, "compare-status").lower()
                assert "step 2 " in _text(browser, "compare-frame-label") + " "
        if any(word in status for word in ("succeeded", "failed", "cancelled")):
            break
        time.sleep(0.25)
    assert "succeeded" in status, f"{status} (job {job_id})"
    # Followed live, the curves are lines only, even while short enough for point markers.
    assert live_modes == {"lines"}, live_modes
    assert browsed is not None and "running" in browsed, browsed
    # The user's frame stays: the last frames did not move the fields back to the newest.
    assert browser.execute_script(FIELD_STEP_JS, "compare-col-0") == 2
    # The page of this 2D comparison carries no hidden channel or hit3d views.
    assert browser.execute_script(
        "return ['compare-channel-results', 'compare-ch-slices', 'compare-hit3d-results']"
        ".every(id => document.getElementById(id) === null);"
    )
    for column in ("compare-col-reference", "compare-col-0", "compare-col-1"):
        _wait(
            lambda c=column: browser.execute_script(COLUMN_JS, c) >= (1 if "ref" in c else 2),
            30,
            f"the heatmaps of {column}",
        )
    head0 = _text(browser, "compare-col-0")
    assert "fno2d" in head0 and "float32" in head0 and "resampled 64→32" in head0
    assert samples, "the spectra got no data while the job was running"
    names = {t["name"] for t in _spectra(browser)}
    assert "reference solver" in names and {"k⁻³", "k⁻⁵ᐟ³"} <= names
    assert len([n for n in names if n.endswith("(float32)")]) == 2
    # The summary table: one row per model, sortable.
    _wait(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")) >= 3,
        30,
        "the summary table",
    )
    table = _text(browser, "compare-table")
    assert "Decorrelation t" in table and "Speedup" in table
    # No column is cut off: the table fits its card, or scrolls sideways to its last column.
    clip = json.loads(browser.execute_script(TABLE_CLIP_JS))
    assert clip["headers"][-1] == "Status", clip
    assert clip["fits"] or clip["scrolls"], clip
    # A frame number typed into the slider's box applies without leaving the box.
    box = browser.find_elements(By.CSS_SELECTOR, "#compare-slider-wrap input[type='number']")
    if box:
        box[0].send_keys(Keys.CONTROL, "a")
        box[0].send_keys("3")
        _wait(
            lambda: "step 3 " in _text(browser, "compare-frame-label") + " ",
            10,
            "the typed frame to show",
        )
    assert browser.find_elements(By.CSS_SELECTOR, "#compare-table .column-header--sort")
    # The run's page folds its set-up form away; its button shows it, filled in from the run.
    assert not browser.find_element(By.ID, "compare-steps").is_displayed()
    assert browser.find_element(By.ID, "compare-steps").get_attribute("value") != str(STEPS)
    opener = browser.find_element(By.ID, "compare-setup-open")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", opener)
    opener.click()
    _wait(
        lambda: browser.find_element(By.ID, "compare-steps").get_attribute("value") == str(STEPS),
        30,
        "the set-up form filled in from the run",
    )
    assert browser.find_element(By.ID, "compare-steps").is_displayed()
    assert not browser.find_element(By.ID, "compare-setup-open").is_displayed()
    assert (
        browser.find_element(By.ID, "compare-export-netcdf")
        .get_attribute("href")
        .endswith("/export.nc")
    )
    csv = httpx.get(browser.find_element(By.ID, "compare-export-metrics").get_attribute("href"))
    assert csv.status_code == 200 and "rel_l2" in csv.text.splitlines()[0]
    if os.environ.get("EDDYSCOPE_SCREENSHOT"):
        target = ROOT / "docs" / "compare.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1.0)
        browser.save_screenshot(str(target))

    # Reopened from the Runs page: the same comparison, finished.
    rollout_id = httpx.get(f"{live_server}/api/jobs/{job_id}").json()["result"]["rollout_id"]
    browser.get(f"{live_server}/")
    link = _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, f"a[href='/compare/{rollout_id}']"),
        30,
        "the comparison's link on the Runs page",
    )[0]
    link.click()
    _wait(lambda: browser.current_url.endswith(f"/compare/{rollout_id}"), 30, "the reopened page")
    _wait(lambda: "succeeded" in _text(browser, "compare-status").lower(), 60, "the reopened run")
    _wait(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")) >= 3,
        30,
        "the reopened summary",
    )
    _wait(lambda: browser.execute_script(COLUMN_JS, "compare-col-1") >= 2, 30, "reopened fields")
    assert {t["name"] for t in _spectra(browser)} == names
