"""A small database for contract tests (``tests/test_contract.py``) and for running the
schemathesis CLI against a server: an uploaded initial condition, a dataset, a model, a
finished single-model rollout, a finished comparison and a job left queued, so generated
requests reach the happy paths as well as the 4xx ones.

The rollout and the comparison run in this process through their runners (as a worker
would run them, ``tests.test_compare.run_in_process``); no worker is started and the
queued job's message just sits in the broker.

``python -m tests.contract_data DATA_DIR`` fills a data directory (SQLite in it) and prints
the ids as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app import jobs
from app.jobkinds import validate_params
from app.settings import Settings
from tests.test_compare import (
    INTERVAL,
    fno,
    register_model,
    run_in_process,
    upload_ic,
    write_dataset,
)

STEPS = 3


def _rollout(ctx):
    from workers.runners.rollout import run_rollout

    return run_rollout(ctx)


def _compare(ctx):
    from workers.runners.compare import run_compare

    return run_compare(ctx)


def populate(client: TestClient) -> dict[str, str]:
    """Fill the app behind ``client``; returns the ids of what it made."""
    state = client.app.state.eddyscope
    ic_id, _ = upload_ic(client, n=32)
    dataset_id, _ = write_dataset(state.db, state.artifacts)
    model_id = register_model(
        state.db, state.artifacts, *fno(0), name="contract", dataset_id=dataset_id
    )
    rollout_job, rollout = run_in_process(
        state.db,
        state.artifacts,
        "rollout",
        {
            "initial_condition_id": ic_id,
            "model_id": model_id,
            "steps": STEPS,
            "interval": INTERVAL,
        },
        _rollout,
    )
    compare_job, comparison = run_in_process(
        state.db,
        state.artifacts,
        "compare",
        {
            "initial_condition_id": ic_id,
            "models": [{"model_id": model_id}, {"model_id": model_id, "precision": "int8"}],
            "steps": STEPS,
            "interval": INTERVAL,
        },
        _compare,
    )
    with state.db.session() as session:
        params, queue = validate_params(
            session, "rollout", {"initial_condition_id": ic_id, "steps": 2, "interval": INTERVAL}
        )
    queued = jobs.submit(state.db, state.dispatcher, "rollout", params, queue)
    return {
        "initial_condition_id": ic_id,
        "dataset_id": dataset_id,
        "model_id": model_id,
        "rollout_job_id": rollout_job,
        "rollout_id": rollout["rollout_id"],
        "compare_job_id": compare_job,
        "comparison_id": comparison["rollout_id"],
        "queued_job_id": queued.id,
    }


if __name__ == "__main__":
    from app.main import create_app

    data_dir = Path(sys.argv[1])
    data_dir.mkdir(parents=True, exist_ok=True)
    with TestClient(create_app(Settings(data_dir=data_dir), with_ui=False)) as client:
        print(json.dumps(populate(client)))
