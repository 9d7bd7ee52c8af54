"""Rename, tags, notes, delete and lineage through REST (issue 15, item 3): ``PATCH`` and
``DELETE`` on initial conditions, datasets, models and jobs, each refusal (409) and
cascade stated, the artifact files removed and nothing else touched; lineage from a
dataset through its training job and model to the rollouts that used it; the owner and
role rules; and the runs' filters. Real databases: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import jobs
from app.db.session import get_database
from app.db.tables import Job, Model
from app.main import create_app
from app.services import auth
from app.settings import Settings
from tests.test_compare import (
    INTERVAL,
    fno,
    register_model,
    run_in_process,
    upload_ic,
    write_dataset,
)

PASSWORD = "correct horse battery"


def _rollout(ctx):
    from workers.runners.rollout import run_rollout

    return run_rollout(ctx)


def _train_job(state, dataset_id: str, status: str = "succeeded", owner_id=None) -> str:
    with state.db.session() as session:
        job = Job(
            kind="train",
            status=status,
            queue="gpu",
            params={"dataset_id": dataset_id, "arch": "fno2d", "epochs": 1},
            owner_id=owner_id,
        )
        session.add(job)
        session.commit()
        return job.id


def _model_from(state, dataset_id: str, job_id: str | None, name: str, owner_id=None) -> str:
    model_id = register_model(state.db, state.artifacts, *fno(0), name=name, dataset_id=dataset_id)
    with state.db.session() as session:
        row = session.get(Model, model_id)
        row.job_id, row.owner_id = job_id, owner_id
        session.commit()
    return model_id


@pytest.fixture
def world(client: TestClient) -> dict:
    """An initial condition; dataset A (with a shard folder) → train job → model A → a
    finished rollout (with an export cache); and dataset B → model B, used by nothing."""
    state = client.app.state.eddyscope
    ic_id, _ = upload_ic(client, n=32)
    dataset_a, _ = write_dataset(state.db, state.artifacts)
    shards = state.artifacts.resolve(f"datasets/{dataset_a}")
    shards.mkdir(parents=True)
    (shards / "shard-00000.h5").write_bytes(b"shard")
    train = _train_job(state, dataset_a)
    model_a = _model_from(state, dataset_a, train, "model A")
    rollout_job, result = run_in_process(
        state.db,
        state.artifacts,
        "rollout",
        {"initial_condition_id": ic_id, "model_id": model_a, "steps": 2, "interval": INTERVAL},
        _rollout,
    )
    export = client.get(f"/api/rollouts/{result['rollout_id']}/export.nc")
    assert export.status_code == 200
    dataset_b, _ = write_dataset(state.db, state.artifacts)
    model_b = _model_from(state, dataset_b, None, "model B")
    return {
        "state": state,
        "ic": ic_id,
        "dataset_a": dataset_a,
        "train": train,
        "model_a": model_a,
        "rollout_job": rollout_job,
        "rollout": result["rollout_id"],
        "dataset_b": dataset_b,
        "model_b": model_b,
    }


def _files(state) -> set[str]:
    root = state.artifacts.root
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _ids(lineage: list[dict]) -> list[str]:
    return [r["id"] for r in lineage]


# --- PATCH --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/initial-conditions/{}", "ic"),
        ("/api/datasets/{}", "dataset_b"),
        ("/api/models/{}", "model_b"),
        ("/api/jobs/{}", "rollout_job"),
    ],
)
def test_patch_renames_tags_and_notes(client: TestClient, world: dict, path: str, key: str):
    url = path.format(world[key])
    body = {"name": "  spring run  ", "tags": ["re 1000", "baseline", "re 1000"], "notes": "ok"}
    changed = client.patch(url, json=body)
    assert changed.status_code == 200, changed.text
    out = changed.json()
    assert (out["name"], out["tags"], out["notes"]) == ("spring run", ["re 1000", "baseline"], "ok")
    # A field left out stays; the change is stored.
    client.patch(url, json={"notes": "second thoughts"})
    again = client.get(url).json()
    assert (again["name"], again["tags"], again["notes"]) == (
        "spring run",
        ["re 1000", "baseline"],
        "second thoughts",
    )
    # Invalid changes: the one error shape, naming the field.
    for bad in ({"name": "   "}, {"tags": ["a,b"]}, {"tags": ["x"] * 21}, {"colour": "red"}):
        refused = client.patch(url, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["detail"]
    missing = client.patch(path.format("nope"), json={"name": "x"})
    assert missing.status_code == 404 and "no " in missing.json()["detail"]


# --- lineage ------------------------------------------------------------------------------


def test_lineage_from_dataset_to_rollouts(client: TestClient, world: dict):
    w = world
    dataset = client.get(f"/api/datasets/{w['dataset_a']}/lineage").json()
    assert _ids(dataset["used_by"]) == [w["model_a"], w["train"]]
    model = client.get(f"/api/models/{w['model_a']}/lineage").json()
    assert _ids(model["came_from"]) == [w["train"], w["dataset_a"]]
    assert _ids(model["used_by"]) == [w["rollout_job"]]
    assert model["used_by"][0]["job_kind"] == "rollout"
    assert model["used_by"][0]["status"] == "succeeded"
    train = client.get(f"/api/jobs/{w['train']}/lineage").json()
    assert _ids(train["came_from"]) == [w["dataset_a"]]
    assert _ids(train["made"]) == [w["model_a"]]
    assert _ids(train["used_by"]) == [w["rollout_job"]]
    run = client.get(f"/api/jobs/{w['rollout_job']}/lineage").json()
    assert _ids(run["came_from"]) == [w["ic"], w["model_a"]]
    assert [(r["kind"], r["id"]) for r in run["made"]] == [("rollout", w["rollout"])]
    ic = client.get(f"/api/initial-conditions/{w['ic']}/lineage").json()
    assert _ids(ic["used_by"]) == [w["rollout_job"]]
    assert client.get("/api/models/nope/lineage").status_code == 404


# --- DELETE: refusals, cascades, files ------------------------------------------------------


def test_a_dataset_used_by_a_model_is_refused_then_cascades(client: TestClient, world: dict):
    w, state = world, world["state"]
    before = _files(state)
    refused = client.delete(f"/api/datasets/{w['dataset_a']}")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "model A" in detail and w["model_a"][:8] in detail and "cascade=true" in detail
    assert _files(state) == before  # nothing went

    gone = client.delete(f"/api/datasets/{w['dataset_a']}", params={"cascade": "true"})
    assert gone.status_code == 200, gone.text
    out = gone.json()
    assert next((d["kind"], d["id"]) for d in out["deleted"]) == ("dataset", w["dataset_a"])
    assert {d["id"] for d in out["deleted"]} == {
        w["dataset_a"],
        w["model_a"],
        w["train"],
        w["rollout_job"],
    }
    assert "model A" in out["detail"] and "2 runs" in out["detail"]
    for url in (
        f"/api/datasets/{w['dataset_a']}",
        f"/api/models/{w['model_a']}",
        f"/api/jobs/{w['train']}",
        f"/api/jobs/{w['rollout_job']}",
        f"/api/rollouts/{w['rollout']}",
    ):
        assert client.get(url).status_code == 404, url
    left = _files(state)
    assert not [f for f in left if w["dataset_a"] in f or w["model_a"] in f]
    assert not [f for f in left if w["rollout"] in f]  # rollout file and export cache
    # Nothing else damaged: the other dataset, model and the initial condition stay.
    kept = {f for f in before if w["dataset_b"] in f or w["model_b"] in f or w["ic"] in f}
    assert kept and kept <= left
    assert client.get(f"/api/models/{w['model_b']}").status_code == 200
    assert client.get(f"/api/initial-conditions/{w['ic']}").status_code == 200


def test_delete_a_model_updates_its_datasets_lineage(client: TestClient, world: dict):
    w, state = world, world["state"]
    refused = client.delete(f"/api/models/{w['model_a']}")
    assert refused.status_code == 409 and w["rollout_job"][:8] in refused.json()["detail"]
    gone = client.delete(f"/api/models/{w['model_a']}", params={"cascade": True})
    assert gone.status_code == 200, gone.text
    assert {d["id"] for d in gone.json()["deleted"]} == {w["model_a"], w["rollout_job"]}
    assert not state.artifacts.resolve(f"models/{w['model_a']}").exists()
    assert not state.artifacts.resolve(f"rollouts/{w['rollout']}.h5").exists()
    lineage = client.get(f"/api/datasets/{w['dataset_a']}/lineage").json()
    assert _ids(lineage["used_by"]) == [w["train"]]  # the run stays; its model went
    assert client.get(f"/api/jobs/{w['train']}/lineage").json()["made"] == []
    # The dataset itself and the initial condition are untouched.
    assert state.artifacts.resolve(f"datasets/{w['dataset_a']}.h5").exists()
    assert client.get(f"/api/initial-conditions/{w['ic']}").status_code == 200


def test_delete_a_run_removes_its_rollout_and_exports(client: TestClient, world: dict):
    w, state = world, world["state"]
    assert list(state.artifacts.resolve("exports").glob(f"{w['rollout']}.*"))
    gone = client.delete(f"/api/jobs/{w['rollout_job']}")
    assert gone.status_code == 200, gone.text
    assert [d["id"] for d in gone.json()["deleted"]] == [w["rollout_job"]]
    assert not state.artifacts.resolve(f"rollouts/{w['rollout']}.h5").exists()
    assert not list(state.artifacts.resolve("exports").glob(f"{w['rollout']}.*"))
    assert client.get(f"/api/rollouts/{w['rollout']}").status_code == 404
    assert client.get(f"/api/jobs/{w['rollout_job']}/events").status_code == 404
    # The model it used is free now: deleted without a cascade.
    assert client.delete(f"/api/models/{w['model_a']}").status_code == 200


def test_a_training_run_with_its_model_is_refused_without_cascade(client, world: dict):
    w = world
    refused = client.delete(f"/api/jobs/{w['train']}")
    assert refused.status_code == 409 and "model A" in refused.json()["detail"]
    gone = client.delete(f"/api/jobs/{w['train']}", params={"cascade": "true"})
    assert gone.status_code == 200
    assert {d["id"] for d in gone.json()["deleted"]} == {
        w["train"],
        w["model_a"],
        w["rollout_job"],
    }
    assert client.get(f"/api/datasets/{w['dataset_a']}").status_code == 200


def test_an_initial_condition_used_by_a_rollout(client: TestClient, world: dict):
    w, state = world, world["state"]
    path = state.artifacts.resolve(f"initial_conditions/{w['ic']}.npy")
    assert path.exists()
    refused = client.delete(f"/api/initial-conditions/{w['ic']}")
    assert refused.status_code == 409 and w["rollout_job"][:8] in refused.json()["detail"]
    assert client.delete(f"/api/jobs/{w['rollout_job']}").status_code == 200
    assert client.delete(f"/api/initial-conditions/{w['ic']}").status_code == 200
    assert not path.exists()
    assert client.get(f"/api/models/{w['model_a']}").status_code == 200


def test_running_jobs_are_never_deleted(client: TestClient, world: dict):
    w, state = world, world["state"]
    running = _train_job(state, w["dataset_b"], status="running")
    refused = client.delete(f"/api/jobs/{running}", params={"cascade": True})
    assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
    # Nor what a running job uses, even with a cascade.
    blocked = client.delete(f"/api/datasets/{w['dataset_b']}", params={"cascade": True})
    assert blocked.status_code == 409 and "cancel them first" in blocked.json()["detail"]
    jobs.cancel(state.db, state.dispatcher, running)
    assert client.delete(f"/api/jobs/{running}").status_code == 200
    assert client.delete(f"/api/datasets/{w['dataset_b']}", params={"cascade": True}).json()[
        "deleted"
    ]
    assert client.delete("/api/jobs/nope").status_code == 404


def test_a_generate_job_and_its_shards(client: TestClient):
    state = client.app.state.eddyscope
    body = {
        "kind": "generate",
        "params": {
            "flow": "ns2d-forced",
            "n_trajectories": 2,
            "shard_size": 1,
            "resolution": 32,
            "n_snapshots": 2,
        },
    }
    job_id = client.post("/api/jobs", json=body).json()["id"]
    job = client.get(f"/api/jobs/{job_id}").json()
    shards = client.get("/api/jobs", params={"parent_id": job_id}).json()
    assert len(shards) == 2
    assert client.delete(f"/api/jobs/{shards[0]['id']}").status_code == 409
    assert client.delete(f"/api/jobs/{job_id}").status_code == 409  # queued
    client.post(f"/api/jobs/{job_id}/cancel")
    folder = state.artifacts.resolve(f"datasets/{job['params']['dataset_id']}")
    folder.mkdir(parents=True)
    (folder / "shard-00000.h5").write_bytes(b"partial")
    gone = client.delete(f"/api/jobs/{job_id}")
    assert gone.status_code == 200, gone.text
    assert not folder.exists()
    assert client.get("/api/jobs", params={"parent_id": job_id}).json() == []


# --- owners and roles ------------------------------------------------------------------------


@pytest.fixture
def secured(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = settings.model_copy(update={"auth": "on", "secret_key": "test-secret"})
    db = get_database(settings.resolved_database_url)
    tokens = {}
    with db.session() as session:
        for name, role in [
            ("ada", "admin"),
            ("mia", "member"),
            ("max", "member"),
            ("vic", "viewer"),
        ]:
            auth.add_user(session, name, PASSWORD, role)
            tokens[name] = auth.create_token(session, name, "test")[1]
    with TestClient(create_app(settings, with_ui=False)) as client:
        yield client, tokens


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_viewer_member_admin_rules(secured):
    client, tokens = secured
    state = client.app.state.eddyscope
    with state.db.session() as session:
        owner = {u: auth.user_for_token(session, t).id for u, t in tokens.items()}
    dataset_mia, _ = write_dataset(state.db, state.artifacts)
    dataset_max, _ = write_dataset(state.db, state.artifacts)
    from app.db.tables import Dataset

    with state.db.session() as session:
        session.get(Dataset, dataset_mia).owner_id = owner["mia"]
        session.get(Dataset, dataset_max).owner_id = owner["max"]
        session.commit()
    # max trains a model on mia's dataset.
    model_max = _model_from(state, dataset_mia, None, "max's model", owner_id=owner["max"])

    url = f"/api/datasets/{dataset_mia}"
    assert client.patch(url, json={"name": "x"}).status_code == 401
    viewer = client.patch(url, json={"name": "x"}, headers=_as(tokens["vic"]))
    assert viewer.status_code == 403 and "viewer" in viewer.json()["detail"]
    assert client.delete(url, headers=_as(tokens["vic"])).status_code == 403
    other = client.patch(url, json={"name": "x"}, headers=_as(tokens["max"]))
    assert other.status_code == 403 and "owner" in other.json()["detail"]
    mine = client.patch(url, json={"tags": ["mine"]}, headers=_as(tokens["mia"]))
    assert mine.status_code == 200 and mine.json()["tags"] == ["mine"]
    # A viewer still reads lineage.
    lineage = client.get(f"{url}/lineage", headers=_as(tokens["vic"])).json()
    assert _ids(lineage["used_by"]) == [model_max]
    # mia's cascade would take max's model: refused, naming it.
    taking = client.delete(url, params={"cascade": True}, headers=_as(tokens["mia"]))
    assert taking.status_code == 403 and "max's model" in taking.json()["detail"]
    # The admin may; max may delete his own model.
    assert client.delete(f"/api/models/{model_max}", headers=_as(tokens["max"])).status_code == 200
    assert client.delete(url, headers=_as(tokens["mia"])).status_code == 200
    admin = client.delete(f"/api/datasets/{dataset_max}", headers=_as(tokens["ada"]))
    assert admin.status_code == 200


# --- finding runs ------------------------------------------------------------------------------


def test_runs_filters(client: TestClient, world: dict):
    w, state = world, world["state"]
    cancelled = _train_job(state, w["dataset_b"], status="cancelled")
    client.patch(f"/api/jobs/{cancelled}", json={"name": "Long Sweep", "tags": ["sweep-3"]})

    def ids(**params) -> set[str]:
        response = client.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        return {j["id"] for j in response.json()}

    assert ids(kind="train") == {w["train"], cancelled}
    assert ids(kind="train", status="cancelled") == {cancelled}
    assert ids(q="long sweep") == {cancelled}
    assert ids(q="SWEEP-3") == {cancelled}
    assert ids(q=w["rollout_job"][:6]) == {w["rollout_job"]}
    assert ids(q="%") == set()  # a wildcard is searched as itself
    assert ids(flow="ns2d-forced") >= {w["train"], cancelled, w["rollout_job"]}
    assert ids(flow="channel3d") == set()
    assert ids(owner="nobody") == set()
    assert client.get("/api/jobs", params={"q": "x" * 101}).status_code == 422
    assert {j["name"] for j in client.get("/api/jobs").json()} >= {"Long Sweep"}


def test_runs_filter_parses_an_address():
    from app.services.run_filters import RunFilter, parse

    f = parse({"kind": "train", "status": "bogus", "q": "  fno " + "x" * 200, "owner": ""})
    assert f.kind == "train" and f.status is None and f.owner is None
    assert f.q.startswith("fno") and len(f.q) == 100
    assert RunFilter(kind="train", q="a b").query_string() == "?kind=train&q=a+b"
    assert RunFilter().query_string() == ""


def test_migration_adds_the_columns(settings: Settings, tmp_path: Path):
    from sqlalchemy import inspect

    db = get_database(settings.resolved_database_url)
    columns = {
        table: {c["name"] for c in inspect(db.engine).get_columns(table)}
        for table in ("initial_conditions", "datasets", "models", "jobs")
    }
    for table, names in columns.items():
        assert {"tags", "notes"} <= names, table
    assert "name" in columns["jobs"]
