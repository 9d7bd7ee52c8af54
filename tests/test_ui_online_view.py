"""The Train page's live view of an online training job: the rates figure and the stream's
numbers are the events' own values, the producers are listed with their workers, and the
page's poll (on a real SQLite database, no browser) shows them for an online job only."""

from __future__ import annotations

import asyncio

import pytest

from app import jobs
from app.db.tables import Job
from app.ui import online_view
from app.ui.pages import train as train_page


def online_event(time: float, fill: int, produced: float, received: float, consumed: float):
    return {
        "type": "online",
        "stage": "training",
        "time": time,
        "step": int(time),
        "produced_per_s": produced,
        "received_per_s": received,
        "consumed_per_s": consumed,
        "buffer_fill": fill,
        "buffer_size": 48,
        "min_fill": 24,
        "buffer_policy": "reservoir",
        "stream_fill": 3,
        "stream_size": 16,
        "received": 130,
        "unique_trajectories": 27,
        "complete_trajectories": 25,
        "duplicates": 4,
    }


EVENTS = [
    online_event(1000.0, 10, 40.0, 35.0, 0.0),
    online_event(1001.5, 30, 52.5, 50.0, 80.0),
    online_event(1004.0, 48, 61.0, 60.0, 96.0),
]
PRODUCERS = [
    {
        "job_id": "p1",
        "status": "running",
        "worker": "alpha@host1",
        "attempts": 2,
        "start": 0,
        "count": 12,
        "replaces": None,
        "produced": 41,
        "produced_per_s": 20.5,
        "blocked_s": 1.25,
    },
    {
        "job_id": "p3",
        "status": "queued",
        "worker": None,
        "attempts": 0,
        "start": 17,
        "count": 7,
        "replaces": "p2",
        "produced": 0,
        "produced_per_s": 0.0,
        "blocked_s": 0.0,
    },
]


def test_the_rates_figure_plots_the_events_values_against_wall_time():
    fig = online_view.rates_figure(EVENTS, uirevision="j")
    traces = {t.name: t for t in fig.data}
    assert list(traces["produced (all producers), samples/s"].x) == [0.0, 1.5, 4.0]
    assert list(traces["produced (all producers), samples/s"].y) == [40.0, 52.5, 61.0]
    assert list(traces["received by the trainer, samples/s"].y) == [35.0, 50.0, 60.0]
    assert list(traces["consumed by training, samples/s"].y) == [0.0, 80.0, 96.0]
    fill = traces["buffer fill, windows"]
    assert list(fill.y) == [10, 30, 48] and fill.yaxis == "y2"
    assert list(traces["buffer size"].y) == [48, 48] and traces["buffer size"].yaxis == "y2"
    assert list(traces["min fill"].y) == [24, 24]
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis2.side == "right"
    assert fig.layout.xaxis.title.text == "wall time (s)"


def test_without_online_events_the_figure_says_why_it_is_blank():
    fig = online_view.rates_figure([])
    assert not fig.data
    assert "when the producers start" in fig.layout.annotations[0].text


def text_of(component) -> str:
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(text_of(c) for c in component)
    children = getattr(component, "children", None)
    return "" if children is None else text_of(children)


def by_id(component, wanted: str):
    if getattr(component, "id", None) == wanted:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = by_id(child, wanted)
            if found is not None:
                return found
    return None


def test_the_stream_numbers_and_the_producers_with_their_workers():
    panel = online_view.online_panel(EVENTS[-1], PRODUCERS)
    stats = {
        i: text_of(by_id(panel[1], i))
        for i in (
            "train-online-produced",
            "train-online-consumed",
            "train-online-buffer",
            "train-online-stream",
            "train-online-trajectories",
            "train-online-duplicates",
        )
    }
    assert stats == {
        "train-online-produced": "61.0/s",
        "train-online-consumed": "96.0/s",
        "train-online-buffer": "48 / 48",
        "train-online-stream": "3 / 16",
        "train-online-trajectories": "27 (25 whole)",
        "train-online-duplicates": "4",
    }
    table = panel[2]
    rows = table.children[1].children
    assert len(rows) == 2
    first, second = (text_of(r) for r in rows)
    assert "alpha@host1" in first and "0–11" in first and "20.5/s" in first and " 2 " in first
    assert "17–23" in second and "p2" in second  # the replacement of p2
    assert online_view.producers_table([]).children.startswith("No producer")


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"


@pytest.fixture
def ui_state(client):
    from app.ui.context import set_state

    state = client.app.state.eddyscope
    set_state(state)
    return state


def running_job(state, params) -> str:
    with state.db.session() as session:
        job = Job(kind="train", params=params, queue="gpu", status="running")
        session.add(job)
        session.commit()
        return job.id


def test_the_page_shows_the_stream_of_an_online_job_only(ui_state):
    online_id = running_job(ui_state, {"epochs": 2, "dataset_id": "d", "online": {"producers": 2}})
    for event in EVENTS:
        jobs.report(
            ui_state.db, online_id, "online", {k: v for k, v in event.items() if k != "type"}
        )
    jobs.report(ui_state.db, online_id, "producers", {"producers": PRODUCERS})
    out = asyncio.run(train_page.poll(1, {"job_id": online_id, "seq": 0}))
    run, _patch, *_rest, panel, panel_class, card_class = out
    assert panel_class == "online-view" and card_class == "card"
    assert run["last_online"]["buffer_fill"] == 48 and run["producers"] == PRODUCERS
    assert "alpha@host1" in text_of(panel)
    figure = asyncio.run(
        train_page.online_rates({"online": [dict(e) for e in EVENTS]}, {"job_id": online_id})
    )
    assert figure.data[0].name == "produced (all producers), samples/s"

    offline_id = running_job(ui_state, {"epochs": 2, "dataset_id": "d"})
    *_rest, panel, panel_class, card_class = asyncio.run(
        train_page.poll(1, {"job_id": offline_id, "seq": 0})
    )
    assert panel == [] and panel_class == "online-view hidden" and card_class == "card hidden"


def test_the_layout_holds_the_online_view_hidden_until_a_job_is_online():
    page = train_page.layout()
    assert "hidden" in by_id(page, "train-online").className
    assert "hidden" in by_id(page, "train-online-card").className
    assert by_id(page, "train-online-rates") is not None
    assert {"online", "producers"} <= set(train_page.empty_events())


# --- the set-up form --------------------------------------------------------------------


def test_the_online_form_is_generated_from_the_api_schema_and_gives_train_online():
    from app.jobkinds.online_params import OnlineOptions
    from app.jobkinds.train import TrainParams
    from app.services import training_options
    from app.ui import config_form

    options = training_options.online_options()
    fields = {f["name"]: f for f in train_page.online_fields(options)}
    assert set(fields) == set(OnlineOptions.model_fields)
    assert fields["buffer_policy"]["choices"] == ["fifo", "firo", "reservoir"]
    assert fields["seed"]["optional"] and fields["seed"]["default"] is None
    assert [f["name"] for f in train_page.online_fields(options)][:5] == list(
        train_page.ONLINE_BASIC
    )
    assert not any(fields[n]["advanced"] for n in train_page.ONLINE_BASIC)
    assert fields["stream_size"]["advanced"] and fields["max_seen"]["advanced"]

    tree = train_page.online_form(options, {"producers": 3, "seed": None})
    boxes = {
        c.id["field"]: c
        for c in _walk(tree)
        if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == train_page.ONLINE
    }
    assert set(boxes) == set(fields)
    assert boxes["producers"].value == 3 and boxes["seed"].value is None
    assert boxes["seed"].placeholder == "default" and boxes["max_seen"].placeholder == "no limit"
    assert [o["value"] for o in boxes["buffer_policy"].options] == ["fifo", "firo", "reservoir"]

    catalog = {
        "archs": [{"name": "fno2d", "label": "FNO (2D)", "error": None, "fields": []}],
        "options": training_options.train_options(),
        "online_options": options,
    }
    raw = {name: box.value for name, box in boxes.items()}
    raw.update(trajectories=8, buffer_policy="fifo", seed="")
    params, problems = train_page.train_params(catalog, "d1", None, "fno2d", {}, {}, raw)
    assert problems == []
    # The empty seed is left to the API (the dataset's seed + 1), as are min_fill/max_seen.
    assert params["online"]["trajectories"] == 8 and "seed" not in params["online"]
    assert "min_fill" not in params["online"] and "max_seen" not in params["online"]
    checked = TrainParams.model_validate(params)
    assert checked.online.producers == 3 and checked.online.buffer_policy == "fifo"
    # Unticked: no online options at all.
    params, _ = train_page.train_params(catalog, "d1", None, "fno2d", {}, {})
    assert "online" not in params
    _, problems = train_page.train_params(
        catalog, "d1", None, "fno2d", {}, {}, {**raw, "producers": 1.5}
    )
    assert problems == ["Producers: enter a whole number, not 1.5."]
    assert config_form.coerce(list(fields.values()), {"seed": 4})[0] == {"seed": 4}


def _walk(node):
    yield node
    children = node if isinstance(node, list | tuple) else getattr(node, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            yield from _walk(child)
    elif children is not None and not isinstance(children, str | int | float):
        yield from _walk(children)
