"""A job kind that exists only for the tests: one module, as a new kind would be. It is
added to a process through the ``job_kinds`` setting (``EDDYSCOPE_JOB_KINDS``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.jobkinds.base import InvalidParams, JobKind, JobParams


class EchoParams(JobParams):
    text: str = Field(max_length=100)
    times: int = Field(default=1, ge=1, le=10)


def check(session, params: EchoParams, data: dict[str, Any], queue: str):
    if not params.text.strip():
        raise InvalidParams("params.text: there is nothing to echo.")
    data["text"] = params.text.strip()  # the row says what ran
    return data, queue


def run_echo(ctx) -> dict[str, Any]:
    # Runs in the worker: one progress event per repetition, then the result.
    for i in range(ctx.params["times"]):
        ctx.report("echo", {"i": i}, progress=(i + 1) / ctx.params["times"])
    return {"echo": " ".join([ctx.params["text"]] * ctx.params["times"]), "kind": ctx.kind}


KIND = JobKind(
    name="echo",
    description="Repeat a text (a test kind).",
    params=EchoParams,
    task="eddyscope.test_echo",
    runner="tests.jobkind_echo:run_echo",
    check=check,
    default_queue="cpu",
)
