"""The REST API on SQLite and on PostgreSQL (each test runs against both), with Redis as
the broker. No worker runs here: these tests check validation, storage and job rows."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from sqlalchemy import func, select

from app.db.tables import InitialCondition, Job

FLOW = "ns2d-forced"


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def upload(client, name: str, content: bytes, flow: str = FLOW):
    return client.post(
        "/api/initial-conditions", files={"file": (name, content)}, data={"flow": flow}
    )


def field(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, n)).astype(np.float32)


def stored(client) -> tuple[int, list[Path]]:
    state = client.app.state.eddyscope
    with state.db.session() as session:
        rows = session.scalar(select(func.count()).select_from(InitialCondition))
    folder = state.artifacts.root / "initial_conditions"
    return rows, sorted(folder.glob("*")) if folder.exists() else []


def test_health_reports_database_and_broker(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["database"].split()[0] in ("sqlite", "postgresql")
    assert "redis" in body["broker"]


def test_openapi_lists_the_public_surface(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/health",
        "/api/initial-conditions",
        "/api/initial-conditions/{ic_id}",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/events",
        "/api/jobs/{job_id}/cancel",
        "/api/datasets",
        "/api/models",
        "/api/models/{model_id}",
        "/api/rollouts/{rollout_id}",
        "/api/rollouts/{rollout_id}/metrics",
        "/api/rollouts/{rollout_id}/frames/{k}",
    ):
        assert path in paths, path


def test_upload_npy_stores_field_and_stats(client):
    w = field()
    response = upload(client, "w.npy", npy_bytes(w))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["flow"] == FLOW and body["shape"] == [64, 64] and body["fields"] == ["vorticity"]
    assert body["stats"]["max"] == pytest.approx(float(w.max()))
    assert body["stats"]["enstrophy"] == pytest.approx(
        0.5 * float((w.astype(np.float64) ** 2).mean())
    )
    assert client.get(f"/api/initial-conditions/{body['id']}").json()["id"] == body["id"]
    assert [ic["id"] for ic in client.get("/api/initial-conditions").json()] == [body["id"]]
    state = client.app.state.eddyscope
    with state.db.session() as session:
        path = state.artifacts.resolve(session.get(InitialCondition, body["id"]).path)
    np.testing.assert_array_equal(np.load(path), w)


def test_upload_batch_of_one_npz_and_hdf5(client):
    w = field(32, seed=1)
    buffer = io.BytesIO()
    np.savez(buffer, vorticity=w[None, None], other=np.zeros(3))
    assert upload(client, "w.npz", buffer.getvalue()).json()["shape"] == [32, 32]

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_dataset("t0_fields/vorticity", data=w[None])
    response = upload(client, "w.h5", buffer.getvalue())
    assert response.status_code == 201, response.text
    assert response.json()["shape"] == [32, 32]


class Evil:
    pass


BAD_UPLOADS = {
    "object array": (
        "w.npy",
        lambda: npy_bytes(np.array([Evil(), 1], dtype=object), allow_pickle=True),
        422,
        "Python objects",
    ),
    "pickle": ("w.npy", lambda: pickle.dumps({"w": [1.0, 2.0]}), 422, "pickle"),
    "nan": ("w.npy", lambda: npy_bytes(np.where(field() > 2, np.nan, field())), 422, "NaN"),
    "inf": ("w.npy", lambda: npy_bytes(np.full((64, 64), np.inf, np.float32)), 422, "infinite"),
    "wrong rank": ("w.npy", lambda: npy_bytes(np.zeros((64,), np.float32)), 422, "shape (64,)"),
    "batch of two": (
        "w.npy",
        lambda: npy_bytes(np.zeros((2, 64, 64), np.float32)),
        422,
        "batch of one",
    ),
    "odd grid": ("w.npy", lambda: npy_bytes(np.zeros((63, 63), np.float32)), 422, "63"),
    "non-square grid": ("w.npy", lambda: npy_bytes(np.zeros((32, 64), np.float32)), 422, "square"),
    "too small grid": ("w.npy", lambda: npy_bytes(np.zeros((8, 8), np.float32)), 422, "16"),
    "complex": ("w.npy", lambda: npy_bytes(np.zeros((32, 32), np.complex64)), 422, "not numeric"),
    "not an npy": ("w.npy", lambda: b"hello world", 422, "not a readable .npy"),
    "ambiguous npz": (
        "w.npz",
        lambda: (lambda b: (np.savez(b, a=field(), b=field()), b.getvalue())[1])(io.BytesIO()),
        422,
        "holds a, b",
    ),
    "wrong extension": ("w.txt", lambda: b"1 2 3", 415, ".npy, .npz"),
    "too large": ("w.npy", lambda: npy_bytes(np.zeros((256, 256), np.float32)), 413, "limit"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_get_their_own_message_and_store_nothing(client, case):
    upload(client, "good.npy", npy_bytes(field()))
    before = stored(client)
    name, make, status, phrase = BAD_UPLOADS[case]
    response = upload(client, name, make())
    assert response.status_code == status, response.text
    assert phrase in response.json()["detail"]
    assert stored(client) == before


def test_unknown_flow_is_refused(client):
    response = upload(client, "w.npy", npy_bytes(field()), flow="pipe-flow")
    assert response.status_code == 422
    assert "pipe-flow" in response.json()["detail"] and FLOW in response.json()["detail"]
    assert stored(client)[0] == 0


def job_rows(client) -> int:
    with client.app.state.eddyscope.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ({"kind": "teleport", "params": {}}, "kind"),
        ({"kind": "rollout", "params": {"steps": 0}}, "params.steps"),
        ({"kind": "rollout", "params": {"steps": 5, "warp": 9}}, "params.warp: is not a parameter"),
        ({"kind": "rollout", "params": {"initial_condition_id": "nope"}}, "no initial condition"),
        ({"kind": "rollout", "params": {"model_id": "nope"}}, "no model"),
        ({"kind": "rollout", "params": {"flow": "pipe"}}, "unknown flow"),
        ({"kind": "rollout", "params": {"resolution": 51}}, "params.resolution"),
        ({"kind": "rollout", "params": {"nu": 3e-3}}, "params.nu"),
        ({"kind": "generate", "params": {"flow": "pipe"}}, "pipe"),
        ({"kind": "generate", "params": {"interval": -1}}, "params.interval"),
        ({"kind": "generate", "params": {"nu": 0.5}}, "params.nu"),
        ({"kind": "generate", "params": {"initial_condition": "zebra"}}, "offers grf"),
        ({"kind": "generate", "params": {"scheme": "euler"}}, "params.scheme"),
        (
            {"kind": "generate", "params": {"resolution": 64, "solver_resolution": 32}},
            "solver_resolution",
        ),
        ({"kind": "train", "params": {}}, "params.dataset_id: Field required"),
        ({"kind": "train", "params": {"dataset_id": "nope"}}, "no dataset"),
        ({"kind": "finetune", "params": {"model_id": "x", "dataset_id": "y"}}, "no model"),
    ],
)
def test_invalid_job_parameters_are_refused_with_a_sentence(client, body, phrase):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    assert phrase.lower() in response.json()["detail"].lower()
    assert job_rows(client) == 0


def test_job_row_is_committed_queued_then_cancelled(client):
    response = client.post("/api/jobs", json={"kind": "rollout", "params": {"steps": 3}})
    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "queued" and created["kind"] == "rollout"
    job = client.get(f"/api/jobs/{created['id']}").json()
    assert job["status"] == "queued" and job["queue"] == "cpu" and job["progress"] == 0
    assert job["params"]["steps"] == 3 and job["params"]["flow"] == FLOW
    assert [j["id"] for j in client.get("/api/jobs").json()] == [created["id"]]

    cancelled = client.post(f"/api/jobs/{created['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    again = client.post(f"/api/jobs/{created['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]

    events = client.get(f"/api/jobs/{created['id']}/events").json()
    assert [e["payload"]["status"] for e in events] == ["queued", "cancelled"]
    tail = client.get(f"/api/jobs/{created['id']}/events", params={"after": events[0]["seq"]})
    assert [e["seq"] for e in tail.json()] == [events[1]["seq"]]


def test_missing_things_are_404(client):
    for path in (
        "/api/jobs/nope",
        "/api/jobs/nope/events",
        "/api/initial-conditions/nope",
        "/api/models/nope",
        "/api/datasets/nope",
        "/api/rollouts/nope",
        "/api/rollouts/nope/metrics",
        "/api/rollouts/nope/frames/0",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]
    assert client.post("/api/jobs/nope/cancel").status_code == 404


def test_train_config_is_checked_against_the_architecture_and_the_data(client):
    from app.db.tables import Dataset

    with client.app.state.eddyscope.db.session() as session:
        session.add(Dataset(id="ds32", name="tiny", flow=FLOW, shape=[2, 3, 32, 32], path="x.h5"))
        session.commit()
    cases = [
        ({"arch": "transformer9000"}, "unknown model 'transformer9000'"),
        ({"config": {"widht": 8}}, "widht"),
        ({"config": {"modes": 20}}, "each axis needs at least 2·modes = 40 points"),
        ({"arch": "fno3d"}, "fno (3d) works on 3d fields; the dataset holds 2d fields"),
        ({"arch": "unet2d", "config": {"levels": 6}}, "divisible"),
        ({"arch": "sfno"}, "params.unroll: a sample needs 20 consecutive snapshots"),
        ({"unroll": 3}, "a sample needs 4 consecutive snapshots"),
        ({"config": {"channels": 3}}, "the dataset has 1 channel(s)"),
        ({"push_forward": True}, "push_forward needs unroll of at least 2"),
        ({"loss": "h2"}, "params.loss"),
        ({"scheduler": "cosine"}, "params.scheduler"),
        ({"long_horizon_steps": 10}, "params.long_horizon_steps: the long-horizon skill rollout"),
    ]
    for extra, phrase in cases:
        response = client.post(
            "/api/jobs", json={"kind": "train", "params": {"dataset_id": "ds32", **extra}}
        )
        assert response.status_code == 422, response.text
        assert phrase.lower() in response.json()["detail"].lower()
    assert job_rows(client) == 0
    # hit3d data are 6-D like a channel's, but a hit3d model gets no skill rollout.
    with client.app.state.eddyscope.db.session() as session:
        session.add(
            Dataset(id="hit16", name="hit", flow="hit3d", shape=[2, 3, 16, 16, 16, 3], path="h.h5")
        )
        session.commit()
    response = client.post(
        "/api/jobs",
        json={
            "kind": "train",
            "params": {
                "dataset_id": "hit16",
                "arch": "fno3d",
                "config": {"pad_y": 0, "add_grid": False, "modes_x": 4, "modes_y": 4, "modes_z": 4},
                "long_horizon_steps": 10,
            },
        },
    )
    assert response.status_code == 422, response.text
    assert "run for channel models only" in response.json()["detail"]
    assert job_rows(client) == 0
    ok = client.post(
        "/api/jobs",
        json={"kind": "train", "params": {"dataset_id": "ds32", "config": {"modes": 8}}},
    )
    assert ok.status_code == 202, ok.text
