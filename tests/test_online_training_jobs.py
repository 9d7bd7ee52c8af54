"""Online training through the REST API on real Redis and real Celery worker processes: a
train job with ``online`` launches producer jobs that step ns2d-forced at 32² from fresh
initial conditions and stream windows to it; one producer's worker process is SIGKILLed
(it is redelivered and resumes), another is cancelled (the trainer replaces it); the
trainer registers a model that beats persistence on the held-out validation dataset, its
events carry produced/consumed rates, buffer fill and unique trajectories, and nothing is
written under the data directory but checkpoints and the model. Wrong options get a 422
sentence."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.tables import Dataset, Job
from app.settings import Settings
from tests.conftest import service_env
from tests.test_integration import _app, submit, wait_for
from tests.test_training_jobs import events_of
from workers.online_stream import redis_keys

pytestmark = pytest.mark.integration

CONFIG = {"width": 8, "modes": 6, "n_layers": 2}
TRAJECTORIES = 48
ONLINE = {
    "producers": 2,
    "trajectories": TRAJECTORIES,
    "buffer_size": 48,
    "min_fill": 24,
    "buffer_policy": "reservoir",
    # Each window drawn at most 4 times: the run ends once every trajectory has arrived
    # and been used, whatever the machine's speed, so the test can count them all.
    "max_seen": 4,
    "stream_size": 16,
    "steps_per_epoch": 20,
    # Small solver batches: each producer streams for a while, long enough to be caught
    # at it and killed or cancelled mid-range.
    "solver_batch": 2,
}


def files_under(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".log")
    }


def children(client, job_id: str) -> list[dict]:
    return client.get("/api/jobs", params={"parent_id": job_id}).json()


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_online_training_streams_producers_into_a_model_that_beats_persistence(
    tmp_path, redis_url, start_worker
):
    import redis

    settings = Settings(data_dir=tmp_path, broker_url=redis_url, lost_after_s=10)
    env = service_env(
        tmp_path,
        EDDYSCOPE_BROKER_URL=redis_url,
        EDDYSCOPE_HEARTBEAT_EVERY_S="1",
        EDDYSCOPE_LOST_AFTER_S="10",
    )
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        for _ in range(3):  # the trainer and two producers run at once
            start_worker(env)
        generated = wait_for(
            client,
            submit(
                client,
                "generate",
                n_trajectories=4,
                n_snapshots=6,
                resolution=32,
                interval=1.0,
                batch_size=4,
                seed=11,
            ),
        )
        assert generated["status"] == "succeeded", generated
        validation_id = generated["result"]["dataset_id"]
        before = files_under(tmp_path)

        job_id = submit(
            client,
            "train",
            dataset_id=validation_id,
            epochs=8,
            batch_size=8,
            lr=1e-2,
            events_every=5,
            config=CONFIG,
            online=ONLINE,
        )
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["params"]["online"]["seed"] == 12  # the validation set's seed + 1
        assert job["params"]["online"]["validation_dataset_id"] == validation_id

        # Both producers running and streaming: kill one's worker process, cancel the other.
        def streaming():
            rows = children(client, job_id)
            busy = [r for r in rows if r["status"] == "running"]
            produced = [
                r
                for r in busy
                if any(e.get("produced") for e in events_of(client, r["id"], "progress"))
            ]
            return produced if len(busy) == 2 and produced else None

        killed = wait_until(streaming, 180, "two producers streaming")[0]
        cancelled = next(r for r in children(client, job_id) if r["id"] != killed["id"])
        with state.db.session() as session:
            pid = session.get(Job, killed["id"]).worker_pid
        os.kill(pid, signal.SIGKILL)
        assert client.post(f"/api/jobs/{cancelled['id']}/cancel").json()["status"] == "cancelled"
        # Mid-run, the data directory has gained the trainer's checkpoints at most.
        mid = files_under(tmp_path) - before
        assert all(f.startswith(f"artifacts/checkpoints/{job_id}/") for f in mid), mid

        job = wait_for(client, job_id, timeout=420)
        assert job["status"] == "succeeded", job
        result = job["result"]
        model = client.get(f"/api/models/{result['model_id']}").json()
        metrics = model["metrics"]
        print(
            f"online: val {metrics['val_rel_l2']:.4f}, persistence "
            f"{metrics['persistence_rel_l2']:.4f}, steps {metrics['online']['steps']}, "
            f"consumed {metrics['online']['consumed']}, received {metrics['online']['received']}"
        )
        assert metrics["val_rel_l2"] < 0.8 * metrics["persistence_rel_l2"]
        assert model["flow"] == "ns2d-forced" and model["resolution"] == 32

        # Every trajectory arrived, whole, once: the killed producer's rerun and the
        # cancelled one's replacement sent what was missing, repeats were dropped.
        online = metrics["online"]
        assert online["unique_trajectories"] == TRAJECTORIES
        assert online["complete_trajectories"] == TRAJECTORIES
        assert online["received"] == TRAJECTORIES * 5  # 6 snapshots, windows of 2
        assert online["ended_early"]  # max_seen: the run ends when the stream is used up
        assert online["consumed"] <= 4 * online["received"]

        rows = {r["id"]: r for r in children(client, job_id)}
        assert rows[killed["id"]]["attempts"] == 2
        assert rows[killed["id"]]["status"] == "succeeded"
        assert rows[cancelled["id"]]["status"] == "cancelled"
        (replacement,) = [
            r for r in rows.values() if r["params"].get("replaces") == cancelled["id"]
        ]
        assert replacement["status"] == "succeeded"
        (replaced,) = events_of(client, job_id, "producer_replaced")
        assert replaced["replaced"] == cancelled["id"] and replaced["by"] == replacement["id"]
        assert replaced["reason"] == "cancelled"

        # The live view's numbers: rates, buffer fill, unique trajectories; producers with
        # their workers.
        training = [e for e in events_of(client, job_id, "online") if e["stage"] == "training"]
        assert training
        assert all(0 <= e["buffer_fill"] <= ONLINE["buffer_size"] for e in training)
        assert any(e["buffer_fill"] >= ONLINE["min_fill"] for e in training)
        assert all(e["stream_fill"] <= ONLINE["stream_size"] for e in training)
        assert any(e["consumed_per_s"] > 0 for e in training)
        assert any(e["received_per_s"] > 0 for e in training)
        assert any(e["produced_per_s"] > 0 for e in training)
        assert max(e["unique_trajectories"] for e in training) <= TRAJECTORIES
        listed = [p for e in events_of(client, job_id, "producers") for p in e["producers"]]
        assert {p["job_id"] for p in listed} == set(rows)
        assert all(p["worker"] for p in listed if p["status"] == "running")
        epochs = events_of(client, job_id, "epoch")
        assert epochs and all(e["persistence_rel_l2"] > 0 for e in epochs)

        # Nothing under the data directory but the model (the checkpoints went with the
        # registration); nothing left in Redis but the closed flag, which expires.
        after = files_under(tmp_path) - before
        assert after and all(f.startswith(f"artifacts/models/{model['id']}/") for f in after), after
        assert not (tmp_path / "scratch").exists()
        client_redis = redis.Redis.from_url(redis_url)
        stream_key, closed_key = redis_keys(job_id)
        assert not client_redis.exists(stream_key)
        assert client_redis.ttl(closed_key) > 0


def validation_row(client, seed: int | None = 5) -> str:
    """A 2D dataset row with generation parameters, as a generate job registers one (the
    file is never read: these requests are refused or only queued)."""
    state = client.app.state.eddyscope
    params = {"flow": "ns2d-forced", "resolution": 32, "interval": 1.0, "n_snapshots": 6}
    if seed is not None:
        params["seed"] = seed
    with state.db.session() as session:
        row = Dataset(
            name="v", flow="ns2d-forced", params=params, shape=[4, 6, 32, 32], path="datasets/v.h5"
        )
        session.add(row)
        session.commit()
        return row.id


@pytest.mark.parametrize(
    ("extra", "online", "sentence"),
    [
        ({}, {"seed": 5}, "params.online.seed: 5 is the validation dataset's seed"),
        ({}, {"producers": 5, "trajectories": 4}, "params.online.producers: 5 producers for 4"),
        ({}, {"buffer_policy": "fifo", "max_seen": 2}, "params.online.max_seen: fifo draws"),
        ({}, {"buffer_size": 8, "min_fill": 9}, "params.online.min_fill: 9 is more than"),
        ({}, {"buffer_policy": "lifo"}, "params.online.buffer_policy"),
        ({}, {"color": 1}, "params.online.color: is not a parameter"),
        ({"gpus": 2}, {}, "params.gpus: online training runs in one process"),
        ({"pde_weight": 1.0}, {}, "online training minimises the data loss alone"),
        ({}, {"trajectories": 20_000}, "params.online.trajectories: the trajectory count"),
    ],
)
def test_wrong_online_options_get_a_sentence(client, extra, online, sentence):
    dataset_id = validation_row(client)
    response = client.post(
        "/api/jobs",
        json={
            "kind": "train",
            "params": {"dataset_id": dataset_id, "config": CONFIG, **extra, "online": online},
        },
    )
    assert response.status_code == 422, response.text
    assert sentence in response.json()["detail"]


def test_a_dataset_without_generation_parameters_cannot_template_producers(client):
    response = client.post(
        "/api/jobs",
        json={
            "kind": "train",
            "params": {"dataset_id": validation_row(client, seed=None), "online": {}},
        },
    )
    assert response.status_code == 422
    assert "was not made by a generate job" in response.json()["detail"]


def test_online_jobs_are_queued_with_their_defaults_filled_in(client):
    dataset_id = validation_row(client)
    response = client.post(
        "/api/jobs",
        json={
            "kind": "train",
            "params": {"dataset_id": dataset_id, "batch_size": 8, "online": {"buffer_size": 40}},
        },
    )
    assert response.status_code == 202, response.text
    job = client.get(f"/api/jobs/{response.json()['id']}").json()
    online = job["params"]["online"]
    assert online["seed"] == 6 and online["min_fill"] == 20 and online["queue"] == "cpu"
    client.post(f"/api/jobs/{job['id']}/cancel")


def test_a_killed_trainer_resumes_from_its_checkpoint_with_the_same_producers(
    tmp_path, redis_url, start_worker
):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url, lost_after_s=10)
    env = service_env(
        tmp_path,
        EDDYSCOPE_BROKER_URL=redis_url,
        EDDYSCOPE_HEARTBEAT_EVERY_S="1",
        EDDYSCOPE_LOST_AFTER_S="10",
    )
    epochs = 6
    with TestClient(_app(settings)) as client:
        state = client.app.state.eddyscope
        for _ in range(3):
            start_worker(env)
        generated = wait_for(
            client,
            submit(client, "generate", n_trajectories=2, n_snapshots=6, resolution=32, seed=3),
        )
        assert generated["status"] == "succeeded", generated
        job_id = submit(
            client,
            "train",
            dataset_id=generated["result"]["dataset_id"],
            epochs=epochs,
            batch_size=8,
            lr=1e-2,
            config=CONFIG,
            # Enough trajectories that the stream is still flowing when the trainer dies
            # (a reservoir takes a window only for one it has drawn).
            online={**ONLINE, "trajectories": 200, "max_seen": None, "steps_per_epoch": 15},
        )
        wait_until(lambda: len(events_of(client, job_id, "epoch")) >= 2, 240, "two epochs")
        with state.db.session() as session:
            trainer_pid = session.get(Job, job_id).worker_pid
        os.kill(trainer_pid, signal.SIGKILL)

        job = wait_for(client, job_id, timeout=300)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        (resumed,) = events_of(client, job_id, "resumed")
        assert resumed["epoch"] >= 2 and job["result"]["resumed_from_epoch"] == resumed["epoch"]
        model = client.get(f"/api/models/{job['result']['model_id']}").json()
        assert [e["epoch"] for e in model["metrics"]["history"]] == list(range(1, epochs + 1))
        assert model["metrics"]["online"]["steps"] == epochs * 15
        # The resumed trainer kept the producers it had (none made twice) and went on
        # receiving from the stream they kept filling.
        assert len(children(client, job_id)) == ONLINE["producers"]
        last = events_of(client, job_id, "online")[-1]
        assert last["received"] > 0 and last["stage"] == "done"
        print(
            f"trainer killed after epoch {resumed['epoch']}, resumed; val "
            f"{model['metrics']['val_rel_l2']:.4f} vs persistence "
            f"{model['metrics']['persistence_rel_l2']:.4f}"
        )


def test_online_training_on_the_embedded_broker_streams_through_the_local_spool(
    tmp_path, start_worker, monkeypatch
):
    from tests.conftest import DEAD_REDIS

    monkeypatch.setenv("EDDYSCOPE_REDIS_PROBE_URL", DEAD_REDIS)
    settings = Settings(data_dir=tmp_path)
    with TestClient(_app(settings)) as client:
        assert client.app.state.eddyscope.broker.kind == "embedded"
        env = service_env(tmp_path, EDDYSCOPE_REDIS_PROBE_URL=DEAD_REDIS)
        for _ in range(3):
            start_worker(env)
        generated = wait_for(
            client,
            submit(client, "generate", n_trajectories=2, n_snapshots=6, resolution=32, seed=7),
        )
        assert generated["status"] == "succeeded", generated
        job_id = submit(
            client,
            "train",
            dataset_id=generated["result"]["dataset_id"],
            epochs=2,
            batch_size=8,
            lr=1e-2,
            config=CONFIG,
            online={**ONLINE, "trajectories": 8, "max_seen": 3, "steps_per_epoch": 10},
        )
        spool = tmp_path / "scratch" / "online" / job_id / "spool.sqlite"
        wait_until(spool.exists, 120, "the local spool")
        job = wait_for(client, job_id, timeout=300)
        assert job["status"] == "succeeded", job
        online = client.get(f"/api/models/{job['result']['model_id']}").json()["metrics"]["online"]
        assert online["unique_trajectories"] == online["complete_trajectories"] == 8
        assert online["received"] == 8 * 5
        assert not spool.parent.exists()  # removed when the trainer ended
        assert all(r["status"] == "succeeded" for r in children(client, job_id))
