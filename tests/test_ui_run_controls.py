"""The Rollout and Compare pages' run controls without a browser: which models a field
offers (never one of another flow, never a 2D model for a channel field), which field the
Models page's "Roll out →" preselects, what a queued job says (where it waits, how many are
ahead, never "gpu queue"), the ETA, and exports taken mid-run said to be partial."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from app.queue.waiting import waiting_order
from app.ui.components import eta_seconds, eta_text, waiting_text
from app.ui.pages import rollout
from app.ui.pages.compare.helpers import export_links, partial_note, status_line

MODELS = [
    {"id": "m2", "name": "fno-2d", "arch": "fno2d", "dims": 2, "flow": "ns2d-forced"},
    {"id": "k2", "name": "kolmo", "arch": "fno2d", "dims": 2, "flow": "kolmogorov2d"},
    {"id": "c3", "name": "chan", "arch": "fno3d", "dims": 3, "flow": "channel3d"},
    # A 2D architecture recorded on the channel flow: still never offered for a channel field.
    {"id": "c2", "name": "chan-2d", "arch": "fno2d", "dims": 2, "flow": "channel3d"},
]
for m in MODELS:
    m.update(resolution=32, interval=1.0, dataset_id=None)

ICS = [
    {
        "id": "ch",
        "name": "channel.npz",
        "flow": "channel3d",
        "shape": [3, 8, 12, 8],
        "example": False,
    },
    {"id": "ns", "name": "mine.npy", "flow": "ns2d-forced", "shape": [64, 64], "example": False},
    {"id": "ex", "name": "example", "flow": "ns2d-forced", "shape": [64, 64], "example": True},
]


def offered(flow):
    return [o["value"] for o in rollout.model_options(MODELS, None, flow)]


def test_a_channel_field_offers_only_3d_channel_models():
    assert offered("channel3d") == [rollout.REFERENCE_ONLY, "c3"]
    assert offered("ns2d-forced") == [rollout.REFERENCE_ONLY, "m2"]
    assert offered("kolmogorov2d") == [rollout.REFERENCE_ONLY, "k2"]
    # No field chosen: the reference solver alone, and the note says why.
    assert offered(None) == [rollout.REFERENCE_ONLY]
    assert "Choose an initial condition" in rollout.model_note(MODELS, None)
    assert "3 of other flows" in rollout.model_note(MODELS, "channel3d")
    assert rollout.ic_flow(ICS, rollout.RANDOM_FIELD) == "ns2d-forced"
    assert rollout.ic_flow(ICS, "ch") == "channel3d"


def test_roll_out_from_models_preselects_a_field_of_the_models_flow():
    by_id = {m["id"]: m for m in MODELS}
    pick = rollout.pick_initial_condition
    # The newest upload is a channel field; a 2D model gets the example of its own flow.
    assert pick({}, ICS, None) == "ch"
    assert pick({"model": "m2"}, ICS, None, by_id["m2"]) == "ex"
    assert pick({"model": "c3"}, ICS, None, by_id["c3"]) == "ch"
    # No field of its flow: none (not another flow's), and Start refuses with a sentence.
    assert pick({"model": "k2"}, ICS, None, by_id["k2"]) is None
    assert pick({"model": "m2"}, ICS[:1], None, by_id["m2"]) == rollout.RANDOM_FIELD
    # An explicit ?ic= still wins.
    assert pick({"ic": "ns", "model": "m2"}, ICS, None, by_id["m2"]) == "ns"


def test_a_queued_job_says_where_it_waits_and_its_place():
    assert waiting_text({"broker": "the Redis queue", "ahead": 2}) == (
        "Queued in the Redis queue: 2 jobs ahead of it, waiting for a free worker…"
    )
    assert "next for a free worker" in waiting_text({"broker": "the Redis queue", "ahead": 0})
    assert "1 job ahead" in waiting_text({"broker": "the embedded SQLite queue", "ahead": 1})
    assert waiting_text(None) == "Queued in the job queue, waiting for a free worker…"
    for place in (None, {"broker": "the Redis queue", "ahead": 3}):
        text = str(status_line({"status": "queued", "queue": "gpu", "place": place}))
        text += str(rollout.status_line({"status": "queued", "queue": "gpu", "place": place}))
        assert "gpu" not in text


def test_the_eta_goes_by_the_pace_so_far():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    started = (now - timedelta(seconds=30)).isoformat().replace("+00:00", "")
    assert eta_seconds(0.25, started, now) == 90.0
    assert eta_text(0.25, started, now) == " · about 1 min 30 s left"
    assert eta_seconds(0.01, started, now) is None  # no pace yet
    assert eta_seconds(0.5, None, now) is None
    run = {"status": "running", "frames": 11, "steps": 40, "progress": 0.25, "started_at": started}
    assert "left" in str(status_line(run)) and "left" in str(rollout.status_line(run))


def test_exports_taken_mid_run_say_they_are_partial():
    running = {"status": "running", "frames": 13, "steps": 50, "final": False}
    note = partial_note(running)
    assert note == "Partial: the run is still going, an export now holds step 12 of 50."
    links = str(export_links("r1", partial=note))
    assert links.count("(partial)") == 3 and "compare-export-partial" in links
    done = {**running, "status": "succeeded", "final": True}
    assert partial_note(done) is None
    assert "(partial)" not in str(export_links("r1", partial=partial_note(done)))


def test_the_queue_order_is_read_from_redis(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    queue = f"test-order-{uuid.uuid4().hex[:8]}"
    try:
        # kombu pushes on the left; the worker pops on the right: a is next, then b, then c.
        for job in ("a", "b", "c"):
            client.lpush(queue, json.dumps({"headers": {"id": job}}))
        assert waiting_order(redis_url, queue) == ["a", "b", "c"]
        assert waiting_order(redis_url, f"{queue}-empty") == []
        assert waiting_order("amqp://nowhere", queue) is None
    finally:
        client.delete(queue)
