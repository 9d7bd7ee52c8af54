"""The scripting CLI builds one option per job parameter from the job's schema: grids as
several numbers, model configs and model lists as JSON, help texts with percent signs."""

from __future__ import annotations

import pytest

from app.cli import _collect, build_parser


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_list_and_json_parameters_parse():
    args = parse("generate", "--flow", "channel3d", "--channel-grid", "8", "12", "8", "--no-wait")
    assert _collect(args)["channel_grid"] == [8, 12, 8]
    args = parse("train", "--dataset-id", "d", "--config", '{"width": 8}', "--no-wait")
    assert _collect(args)["config"] == {"width": 8}
    args = parse("compare", "--models", '[{"model_id": "m", "precision": "int8"}]', "--no-wait")
    assert _collect(args)["models"] == [{"model_id": "m", "precision": "int8"}]


@pytest.mark.parametrize("kind", ["generate", "train", "finetune", "rollout", "compare"])
def test_every_job_kind_has_help(kind, capsys):
    with pytest.raises(SystemExit) as done:
        parse(kind, "--help")
    assert done.value.code == 0
    assert "--wait" in capsys.readouterr().out
