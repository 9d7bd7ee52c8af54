"""The REST API keeps its OpenAPI contract: schemathesis generates requests for every
operation (valid ones and invalid ones) against the app on a small database
(``tests.contract_data``: an initial condition, a dataset, a model, a finished rollout, a
finished comparison, a queued job) and checks every answer: no 5xx, every status code
documented, the documented content type, the body valid against its schema. Then the
pieces of the contract one by one: one error shape on every error path, paged metrics and
events with capped limits, typed response schemas.

No worker runs here: submitted jobs stay queued, their messages sit in the test broker.
``EDDYSCOPE_CONTRACT_EXAMPLES`` raises the number of generated cases per operation (the
default keeps the whole module near a minute on 2 cores).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.paging import MAX_EVENTS_PAGE, MAX_METRICS_PAGE, METRICS_PAGE
from app.main import create_app
from app.schemas import ErrorOut, MetricsRow
from app.settings import Settings
from physics.formats.gif import frame_indices
from tests.conftest import REDIS_URL
from tests.contract_data import STEPS, populate

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("EDDYSCOPE_CONTRACT_EXAMPLES", "500"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The app is made when the module is collected, so that schemathesis can read its OpenAPI
# and make one test per operation; ``contract`` fills its database before the first test.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="eddyscope-contract-"))
atexit.register(shutil.rmtree, _DATA_DIR, True)
APP = create_app(
    Settings(
        data_dir=_DATA_DIR,
        database_url=f"sqlite:///{_DATA_DIR / 'eddyscope.sqlite'}",
        broker_url=REDIS_URL,
        max_upload_bytes=200_000,
    ),
    with_ui=False,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)
# Path parameter → values that exist (filled by ``contract``): ids and frame numbers, so
# generated requests reach the happy paths as well as the 404s.
KNOWN: dict[str, list[str]] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Each generated set of path parameters, or the same with ids that exist (not for
    DELETE: the items the other operations reach must stay; tests/test_items_api.py
    deletes its own)."""
    if context.operation is not None and context.operation.method.upper() == "DELETE":
        return st.just(path_parameters)
    existing = {k: st.sampled_from(KNOWN[k]) for k in path_parameters or {} if k in KNOWN}
    if not existing:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.fixed_dictionaries(existing).map(lambda found: {**path_parameters, **found}),
    )


@pytest.fixture(scope="module")
def contract(redis_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """``APP`` (no UI, a fresh SQLite database) holding ``populate``'s rows, and their ids."""
    with TestClient(APP) as client:
        ids = populate(client)
        KNOWN.update(
            ic_id=[ids["initial_condition_id"]],
            dataset_id=[ids["dataset_id"]],
            model_id=[ids["model_id"]],
            rollout_id=[ids["rollout_id"], ids["comparison_id"]],
            job_id=[ids["rollout_job_id"], ids["compare_job_id"], ids["queued_job_id"]],
            name=["ns2d-forced", "channel3d"],
            k=list(range(STEPS + 1)),
        )
        yield client, ids
    KNOWN.clear()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_the_contract(contract, case):
    case.call_and_validate(checks=CHECKS)


# --- the pieces, one by one ----------------------------------------------------------------


def _error(response: httpx.Response, status: int) -> ErrorOut:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return ErrorOut.model_validate_json(response.content)


def test_every_error_path_answers_in_one_shape(contract):
    client, ids = contract
    # HTTPException from a route, and Starlette's own 404 and 405.
    assert "no job" in _error(client.get("/api/jobs/nope"), 404).detail
    assert _error(client.get("/api/no-such-route"), 404).detail == "Not Found"
    assert _error(client.delete("/api/jobs"), 405).detail == "Method Not Allowed"
    # 409 from a route.
    conflict = client.post(f"/api/jobs/{ids['rollout_job_id']}/cancel")
    assert "already succeeded" in _error(conflict, 409).detail
    # Request validation: a sentence, and each field under errors (no echo of the input).
    invalid = _error(client.get("/api/jobs", params={"limit": 0}), 422)
    assert invalid.detail == "limit: Input should be greater than or equal to 1."
    assert [(e.loc, e.type) for e in invalid.errors] == [(["query", "limit"], "greater_than_equal")]
    assert "input" not in client.get("/api/jobs", params={"limit": 0}).json()["errors"][0]
    body = _error(client.post("/api/jobs", json={"kind": 3}), 422)
    assert body.errors and body.errors[0].loc == ["body", "kind"]
    # A body that is not JSON at all.
    broken = client.post(
        "/api/jobs", content=b"{\xff", headers={"content-type": "application/json"}
    )
    assert broken.status_code in (400, 422)
    _error(broken, broken.status_code)
    # The body-limit middleware's 413, outside the application.
    too_big = client.post(
        "/api/jobs", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert "larger than the limit" in _error(too_big, 413).detail
    # A refused upload (UploadError) and a frame that is not there.
    refused = client.post("/api/initial-conditions", files={"file": ("w.txt", b"hello")})
    assert refused.status_code in (415, 422)
    _error(refused, refused.status_code)
    frame = client.get(f"/api/rollouts/{ids['rollout_id']}/frames/{STEPS + 1}")
    _error(frame, 404)
    source = client.get(f"/api/rollouts/{ids['rollout_id']}/frames/0", params={"source": "x"})
    assert "source must be one of" in _error(source, 422).detail


def test_the_openapi_documents_every_error_as_the_one_shape(contract):
    client, _ = contract
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    operations = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    ]
    assert len(operations) >= 20
    for path, method, op in operations:
        responses = op["responses"]
        where = f"{method.upper()} {path}"
        assert {"413", "500"} <= responses.keys(), where
        if op.get("parameters") or "requestBody" in op:
            assert "422" in responses, where
        if "requestBody" in op:
            assert "400" in responses, where
        if "{" in path:
            assert "404" in responses, where
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                schema_ = response["content"]["application/json"]["schema"]
                assert schema_ == {"$ref": "#/components/schemas/ErrorOut"}, (where, code)
    for code in ("404", "409"):
        assert code in spec["paths"]["/api/jobs/{job_id}/cancel"]["post"]["responses"]
    upload = spec["paths"]["/api/initial-conditions"]["post"]["responses"]
    assert {"400", "413", "415", "422"} <= upload.keys()


def _untyped(node, where: str = "") -> list[str]:
    """Properties whose schema says nothing about their type."""
    found = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            if not ({"type", "$ref", "anyOf", "allOf", "oneOf", "enum", "const"} & prop.keys()):
                found.append(f"{where}.{name}")
        for key, value in node.items():
            found += _untyped(value, f"{where}/{key}")
    elif isinstance(node, list):
        for value in node:
            found += _untyped(value, where)
    return found


def test_response_models_type_every_property(contract):
    client, _ = contract
    spec = client.get("/openapi.json").json()
    assert _untyped(spec["components"]["schemas"]) == []
    metrics = spec["paths"]["/api/rollouts/{rollout_id}/metrics"]["get"]["responses"]["200"]
    rows = metrics["content"]["application/json"]["schema"]
    assert rows["items"] == {"$ref": "#/components/schemas/MetricsRow"}
    detail = spec["components"]["schemas"]["RolloutDetail"]["properties"]
    assert detail["sources"]["items"] == {"$ref": "#/components/schemas/Source"}
    assert detail["created_at"]["type"] == "string"
    assert detail["created_at"]["format"] == "date-time"


def _events(client, job_id: str, **params) -> httpx.Response:
    return client.get(f"/api/jobs/{job_id}/events", params=params)


def test_metrics_are_paged_with_a_capped_limit_and_a_link_to_the_next_page(contract):
    client, ids = contract
    url = f"/api/rollouts/{ids['rollout_id']}/metrics"
    whole = client.get(url)
    assert whole.status_code == 200 and "link" not in whole.headers
    rows = whole.json()
    assert [r["step"] for r in rows] == list(range(STEPS + 1))
    TypeAdapter(list[MetricsRow]).validate_python(rows)
    # Pages of 2: the first links to the second, which starts after the first's last seq.
    first = client.get(url, params={"limit": 2})
    assert first.json() == rows[:2]
    assert first.links["next"]["url"].endswith(f"?after={rows[1]['seq']}&limit=2")
    second = client.get(first.links["next"]["url"])
    assert second.json() == rows[2:4] and "next" in second.links
    last = client.get(second.links["next"]["url"])
    assert last.json() == [] and "link" not in last.headers
    # The cap and the cursor's bounds.
    assert client.get(url, params={"limit": MAX_METRICS_PAGE}).json() == rows
    _error(client.get(url, params={"limit": MAX_METRICS_PAGE + 1}), 422)
    _error(client.get(url, params={"limit": 0}), 422)
    _error(client.get(url, params={"after": 2**63}), 422)
    _error(client.get(url, params={"after": -1}), 422)
    assert client.get(url, params={"after": 2**63 - 1}).json() == []
    spec = client.get("/openapi.json").json()
    limit = next(
        p
        for p in spec["paths"]["/api/rollouts/{rollout_id}/metrics"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert limit["schema"]["default"] == METRICS_PAGE
    assert limit["schema"]["maximum"] == MAX_METRICS_PAGE


def test_metrics_rows_are_the_recorded_payloads_unchanged(contract):
    """The typed rows add nothing and drop nothing: each is its event's payload plus seq."""
    client, ids = contract
    for rollout_id, job_id in (
        (ids["rollout_id"], ids["rollout_job_id"]),
        (ids["comparison_id"], ids["compare_job_id"]),
    ):
        rows = client.get(f"/api/rollouts/{rollout_id}/metrics").json()
        events = _events(client, job_id).json()
        recorded = [{"seq": e["seq"], **e["payload"]} for e in events if e["type"] == "metrics"]
        assert rows == json.loads(json.dumps(recorded)), rollout_id
    single = client.get(f"/api/rollouts/{ids['rollout_id']}/metrics").json()[1]
    assert {"rel_l2", "spectrum_model", "k", "energy_reference"} <= single.keys()
    assert "models" not in single and "reference" not in single
    compared = client.get(f"/api/rollouts/{ids['comparison_id']}/metrics").json()[1]
    assert compared["type"] == "metrics" and set(compared["models"]) == {"0", "1"}
    assert "rel_l2" not in compared


def test_events_are_paged_with_a_capped_limit(contract):
    client, ids = contract
    job_id = ids["compare_job_id"]
    events = _events(client, job_id).json()
    assert len(events) > 3
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    paged, after = [], 0
    while True:
        page = _events(client, job_id, after=after, limit=3)
        paged += page.json()
        if "next" not in page.links:
            break
        after = page.json()[-1]["seq"]
    assert paged == events
    _error(_events(client, job_id, limit=MAX_EVENTS_PAGE + 1), 422)
    assert _events(client, job_id, limit=MAX_EVENTS_PAGE).json() == events


def test_an_animation_of_one_frame_is_its_first(contract):
    client, ids = contract
    assert frame_indices(STEPS + 1, 1) == [0]
    gif = client.get(f"/api/rollouts/{ids['rollout_id']}/animation.gif", params={"max_frames": 1})
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"


def test_typed_rollout_and_initial_condition_keep_their_json(contract):
    client, ids = contract
    detail = client.get(f"/api/rollouts/{ids['rollout_id']}").json()
    assert [s["name"] for s in detail["sources"]] == ["reference", "model", "error"]
    assert detail["sources"][0] == {"name": "reference", "role": "reference", "resolution": 32}
    assert detail["sources"][1]["model_id"] == ids["model_id"]
    assert detail["created_at"].endswith("Z")
    comparison = client.get(f"/api/rollouts/{ids['comparison_id']}").json()
    assert comparison["kind"] == "compare"
    assert {"index", "label", "precision"} <= comparison["sources"][1].keys()
    ic = client.get(f"/api/initial-conditions/{ids['initial_condition_id']}").json()
    assert set(ic["stats"]) == {"min", "max", "mean", "std", "kinetic_energy", "enstrophy"}
    flows = {f["name"]: f for f in client.get("/api/flows").json()}
    assert flows["channel3d"]["grid"]["ny_counts"] == "cells between the walls"
    assert "square" not in flows["channel3d"]["grid"]
    assert flows["ns2d-forced"]["parameters"]["forced"] is True
