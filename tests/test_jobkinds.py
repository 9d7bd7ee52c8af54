"""The job-kind registry: the API's kinds, the Celery task names, the worker's runners and
the CLI's commands all come from it, so a new kind is one module plus its registry entry
(here the ``job_kinds`` setting) and works end to end on a real worker."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app import jobkinds
from app.jobkinds.base import JobKind
from app.settings import Settings, get_settings
from tests.conftest import service_env
from tests.test_integration import submit, wait_for

ECHO = "tests.jobkind_echo"


@pytest.fixture
def echo_registered(monkeypatch):
    """This process reads EDDYSCOPE_JOB_KINDS like any other: the registry is rebuilt with
    the setting, and rebuilt without it afterwards."""
    monkeypatch.setenv("EDDYSCOPE_JOB_KINDS", ECHO)
    get_settings.cache_clear()
    monkeypatch.setattr(jobkinds, "_KINDS", {})
    yield
    get_settings.cache_clear()


def test_the_built_in_kinds_and_what_is_generated_from_them():
    assert jobkinds.submittable() == ("generate", "train", "finetune", "rollout", "compare")
    assert jobkinds.coordinators() == ("generate",)
    assert jobkinds.task_names() == {
        "generate-shard": "eddyscope.generate_shard",
        "train": "eddyscope.train",
        "finetune": "eddyscope.train",
        "rollout": "eddyscope.rollout",
        "compare": "eddyscope.compare",
        "produce": "eddyscope.produce",
    }
    from workers.tasks import TASKS, runner_of

    assert sorted(TASKS) == sorted(set(jobkinds.task_names().values()))
    assert runner_of("finetune") is runner_of("train")
    assert runner_of("generate-shard").__name__ == "run_generate_shard"


def test_a_kind_is_checked_when_it_is_declared_and_registered():
    with pytest.raises(ValueError, match="both a task and a runner"):
        JobKind(name="x", description="", params=None, task="t", runner=None)
    with pytest.raises(ValueError, match="module:function"):
        JobKind(name="x", description="", params=None, task="t", runner="no_colon")
    clash = JobKind(name="train", description="", params=None, task=None, runner=None)
    with pytest.raises(ValueError, match="already registered"):
        jobkinds.register(clash)
    assert jobkinds.get_kind("train").task == "eddyscope.train"  # untouched


def test_shards_cannot_be_submitted_and_unknown_kinds_are_named(client):
    response = client.post("/api/jobs", json={"kind": "generate-shard", "params": {}})
    assert response.status_code == 422
    assert "unknown job kind 'generate-shard'" in response.text
    response = client.post("/api/jobs", json={"kind": "nope", "params": {}})
    assert response.status_code == 422
    assert "expected one of generate, train, finetune, rollout, compare" in response.text


@pytest.mark.integration
def test_a_new_kind_is_one_module_and_one_registry_entry(
    echo_registered, tmp_path, redis_url, start_worker
):
    from app.cli import _collect, build_parser
    from app.main import create_app

    assert "echo" in jobkinds.submittable()
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    with TestClient(create_app(settings, with_ui=False)) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["JobCreate"]
        assert "echo" in schema["properties"]["kind"]["enum"]
        # The kind's own shape and meaning checks answer through the API.
        response = client.post("/api/jobs", json={"kind": "echo", "params": {"times": 2}})
        assert response.status_code == 422 and "params.text: Field required" in response.text
        response = client.post("/api/jobs", json={"kind": "echo", "params": {"text": "  "}})
        assert response.status_code == 422 and "nothing to echo" in response.text

        start_worker(
            service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url, EDDYSCOPE_JOB_KINDS=ECHO)
        )
        job_id = submit(client, "echo", text=" turbulence ", times=3)
        job = wait_for(client, job_id, timeout=60)
        assert job["status"] == "succeeded", job
        assert job["queue"] == "cpu" and job["params"]["text"] == "turbulence"
        assert job["result"] == {"echo": "turbulence turbulence turbulence", "kind": "echo"}
        events = client.get(f"/api/jobs/{job_id}/events").json()
        assert [e["payload"]["i"] for e in events if e["type"] == "echo"] == [0, 1, 2]
    # And the CLI offers it, with its parameters as options.
    args = build_parser().parse_args(["echo", "--text", "hi", "--times", "2"])
    assert args.kind == "echo"
    parsed = jobkinds.get_kind("echo").params.model_validate(_collect(args))
    assert (parsed.text, parsed.times) == ("hi", 2)
