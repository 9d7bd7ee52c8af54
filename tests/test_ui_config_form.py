"""The Train and Models pages without a browser: forms generated from a config class, the
values read back into a config dict, the model check (parameter count, contract, grid),
a registry entry that appears with its form and no UI code, the live run's text, the
training curves on log axes, and the sortable model table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import torch
from dash import dcc, html
from torch import nn

from app.jobkinds.train import TrainParams
from app.services import architectures, training_options
from app.ui import config_form, training_figures
from app.ui.pages import models as models_page
from app.ui.pages import train
from models import registry
from models.base import Contract
from models.config import OperatorConfig, param

# --- a toy architecture, registered only inside the tests that need it -------------------


@dataclass
class ToyConfig(OperatorConfig):
    """A pointwise linear map of ``history`` frames to ``out_steps`` frames: parameters
    ``history·C·out_steps·C·width`` + ``width`` (a weight per hidden unit and a bias)."""

    title = "Toy operator for the form tests"

    channels: int = param(1, "Physical channels.", min=1, max=3)
    history: int = param(2, "Input frames.", min=1, max=8)
    width: int = param(4, "Hidden units.", min=1, max=64)
    scale: float = param(0.5, "Output scale.", min=0.0)
    activation: str = param("gelu", "Non-linearity.", choices=("gelu", "relu", "tanh"))
    out_steps: int = param(1, "Output frames per call.", choices=(1, 2, 4))
    residual: bool = param(True, "Predict a correction to the last frame.")
    label: str = param("toy", "A free-text tag.", advanced=True)
    dropout: float = param(0.0, "Dropout probability.", min=0.0, max=0.9, advanced=True)

    def contract(self) -> Contract:
        return Contract(2, self.channels, self.history, self.out_steps)

    def check_grid(self, space: tuple[int, ...]) -> None:
        if min(space) < 2 * self.width:
            raise ValueError(
                f"A {'×'.join(map(str, space))} grid is too small for the toy with width "
                f"{self.width}: it needs {2 * self.width} points per side."
            )


class ToyModel(nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.weight = nn.Parameter(
            torch.zeros(config.history * c, config.out_steps * c, config.width)
        )
        self.bias = nn.Parameter(torch.zeros(config.width))


def toy_count(config: ToyConfig) -> int:
    c = config.channels
    return config.history * c * config.out_steps * c * config.width + config.width


TOY = registry.ModelSpec(
    "toy2d", "Toy (2D)", 2, __name__, "ToyModel", "ToyConfig", "A toy for the form tests."
)
BROKEN = registry.ModelSpec(
    "broken2d",
    "Broken (2D)",
    2,
    "models.no_such_family",
    "Nope",
    "NopeConfig",
    "A family whose module is not there.",
)


@pytest.fixture
def toy_registry(monkeypatch):
    monkeypatch.setitem(registry.MODELS, "toy2d", TOY)
    monkeypatch.setitem(registry.MODELS, "broken2d", BROKEN)


# --- walking Dash component trees --------------------------------------------------------


def walk(node: Any):
    if isinstance(node, list | tuple):
        for child in node:
            yield from walk(child)
        return
    if node is None or isinstance(node, str | int | float):
        return
    yield node
    yield from walk(getattr(node, "children", None))


def controls(tree: Any, kind: str = config_form.CONFIG) -> dict[str, Any]:
    return {
        c.id["field"]: c
        for c in walk(tree)
        if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == kind
    }


def texts(tree: Any) -> str:
    out = []
    for node in walk(tree):
        children = getattr(node, "children", None)
        if isinstance(children, str):
            out.append(children)
        elif isinstance(children, list):
            out += [c for c in children if isinstance(c, str)]
    return " ".join(out)


# --- form generation ---------------------------------------------------------------------


def test_form_is_generated_from_the_config_class():
    fields = ToyConfig.form_fields()
    tree = config_form.form(fields)
    found = controls(tree)
    assert list(found) == [f.name for f in dataclasses.fields(ToyConfig)]

    width = found["width"]
    assert isinstance(width, dcc.Input) and width.type == "number"
    assert (width.min, width.max, width.step, width.value) == (1, 64, 1, 4)
    scale = found["scale"]
    assert scale.step == "any" and scale.min == 0.0 and not hasattr(scale, "max")
    activation = found["activation"]
    assert isinstance(activation, dcc.Dropdown) and activation.value == "gelu"
    assert [o["value"] for o in activation.options] == ["gelu", "relu", "tanh"]
    assert [o["value"] for o in found["out_steps"].options] == [1, 2, 4]
    residual = found["residual"]
    assert isinstance(residual, dcc.Checklist) and residual.value == [config_form.ON]
    assert isinstance(found["label"], dcc.Input) and found["label"].type == "text"

    # Help text is shown as a hint, with the range of a bounded number.
    words = texts(tree)
    assert "Hidden units. (1 to 64)" in words and "Output scale." in words
    assert "at least 0" not in words and "Physical channels. (1 to 3)" in words
    assert "Number of" not in words and "Width" in words

    # The advanced fields, and only those, sit in a collapsed <details>.
    details = [n for n in walk(tree) if isinstance(n, html.Details)]
    assert len(details) == 1 and not getattr(details[0], "open", False)
    assert set(controls(details[0])) == {"label", "dropout"}
    assert "Advanced (2)" in texts(details[0])


def test_form_values_override_the_defaults():
    tree = config_form.form(ToyConfig.form_fields(), values={"width": 9, "residual": False})
    found = controls(tree)
    assert found["width"].value == 9 and found["residual"].value == []
    assert found["history"].value == 2


def test_labels_read_like_words():
    assert config_form.label_of({"name": "n_layers"}) == "Number of layers"
    assert config_form.label_of({"name": "modes_t"}) == "Modes t"
    assert config_form.label_of({"name": "lr", "label": "Learning rate"}) == "Learning rate"


# --- values back into a config -----------------------------------------------------------


def test_coerce_turns_the_inputs_back_into_the_config_dict():
    fields = ToyConfig.form_fields()
    raw = {
        "channels": 1,
        "history": 3.0,  # a number box may send a whole number as a float
        "width": 8,
        "scale": 2,  # and a float field may hold an int
        "activation": "tanh",
        "out_steps": 2,
        "residual": [],
        "label": "  run-a ",
        "dropout": 0.1,
        "not_a_field": 5,
    }
    config, problems = config_form.coerce(fields, raw)
    assert problems == []
    assert config == {
        "channels": 1,
        "history": 3,
        "width": 8,
        "scale": 2.0,
        "activation": "tanh",
        "out_steps": 2,
        "residual": False,
        "label": "run-a",
        "dropout": 0.1,
    }
    assert type(config["history"]) is int and type(config["scale"]) is float
    assert ToyConfig.from_dict(config).to_dict() == config
    # A field the form did not send keeps its default.
    partial, _ = config_form.coerce(fields, {"width": 5, "residual": ["on"]})
    assert partial == {"width": 5, "residual": True}


def test_coerce_says_what_is_wrong_with_an_empty_or_fractional_box():
    fields = ToyConfig.form_fields()
    _, problems = config_form.coerce(fields, {"width": None, "history": 2.5, "scale": None})
    assert problems == [
        "History: enter a whole number, not 2.5.",
        "Width: enter a whole number (1 to 64).",
        "Scale: enter a number (at least 0).",
    ]


# --- the model check -----------------------------------------------------------------------


def test_evaluate_config_counts_parameters_and_gives_the_contract(toy_registry):
    config = {"width": 6, "history": 3, "out_steps": 2}
    result = architectures.evaluate_config("toy2d", config, (32, 32), channels=1)
    assert result["parameters"] == toy_count(ToyConfig(**config)) == 3 * 2 * 6 + 6
    assert result["parameters"] == registry.count_parameters("toy2d", config)
    assert result["contract"] == {"dims": 2, "channels": 1, "history": 3, "out_steps": 2}
    assert "error" not in result


def test_evaluate_config_gives_the_config_and_grid_sentences(toy_registry):
    with pytest.raises(ValueError) as bad_value:
        ToyConfig(width=100)
    assert architectures.evaluate_config("toy2d", {"width": 100})["error"] == str(bad_value.value)
    with pytest.raises(ValueError) as grid:
        ToyConfig(width=20).check_grid((32, 32))
    assert architectures.evaluate_config("toy2d", {"width": 20}, (32, 32))["error"] == str(
        grid.value
    )
    assert "works on 2D fields" in architectures.evaluate_config("toy2d", {}, (16, 16, 16))["error"]
    assert "3 channels" in architectures.evaluate_config("toy2d", {}, (32, 32), channels=3)["error"]
    short = architectures.evaluate_config("toy2d", {"history": 4, "out_steps": 2}, snapshots=5)
    assert short["error"] == (
        "A training sample needs 6 consecutive snapshots (4 in, 2 out); the dataset's "
        "trajectories have 5."
    )
    assert "error" not in architectures.evaluate_config("toy2d", {"history": 4}, snapshots=5)
    unknown = architectures.evaluate_config("toy2d", {"depth": 3})["error"]
    assert "depth" in unknown and unknown[0].isupper()


def test_dataset_shapes_give_grid_and_channels():
    assert architectures.spatial_shape([4, 10, 32, 32]) == (32, 32)
    assert architectures.dataset_channels([4, 10, 32, 32]) == 1
    assert architectures.spatial_shape([2, 5, 32, 33, 16, 3]) == (32, 33, 16)
    assert architectures.dataset_channels([2, 5, 32, 33, 16, 3]) == 3
    assert architectures.spatial_shape([2, 5, 16, 16, 16]) == (16, 16, 16)
    assert architectures.dataset_channels([2, 5, 16, 16, 16]) == 1
    assert architectures.dataset_channels(None) is None


def test_parameter_and_contract_text():
    assert config_form.parameter_text(1) == "1 parameter"
    assert config_form.parameter_text(9_999) == "9,999 parameters"
    assert config_form.parameter_text(2_368_001) == "2,368,001 parameters (2.37 M)"
    assert config_form.parameter_text(None) == ""
    contract = {"dims": 2, "channels": 1, "history": 10, "out_steps": 1}
    assert config_form.contract_text(contract) == "10 frames in → 1 frame out · 1 channel · 2D"
    panel = train.check_panel({"parameters": 1234, "contract": contract})
    assert "1,234 parameters" in texts(panel)
    error = train.check_panel({"error": "Too coarse."})
    assert error[0].id == "train-config-error" and error[0].children == "Too coarse."


# --- a new registry entry: its form with no UI code -----------------------------------------


def test_a_registered_architecture_appears_with_its_generated_form(toy_registry):
    archs = {a["name"]: a for a in architectures.architectures()}
    toy = archs["toy2d"]
    assert toy["error"] is None and toy["label"] == "Toy (2D)" and toy["dims"] == 2
    assert toy["title"] == ToyConfig.title
    assert [f["name"] for f in toy["fields"]] == [f["name"] for f in ToyConfig.form_fields()]

    # Listed for 2D data, not for 3D; the one that cannot load is disabled, with its reason.
    options, _ = train.arch_options(list(archs.values()), 2)
    by_value = {o["value"]: o for o in options}
    assert not by_value["toy2d"].get("disabled")
    assert "A toy for the form tests." in texts(by_value["toy2d"]["label"])
    assert by_value["broken2d"]["disabled"]
    assert "models.no_such_family" in texts(by_value["broken2d"]["label"])
    assert archs["broken2d"]["fields"] == []
    options3, left_out = train.arch_options(list(archs.values()), 3)
    assert "toy2d" not in {o["value"] for o in options3}
    assert "toy2d" in {a["name"] for a in left_out}
    assert train.pick_arch(options, "broken2d", "toy2d") == "toy2d"

    panel = train.config_panel(toy, {"width": 7})
    found = controls(panel)
    assert set(found) == {f["name"] for f in toy["fields"]}
    assert found["width"].value == 7 and found["width"].max == 64
    assert ToyConfig.title in texts(panel)


def test_train_params_from_the_form_pass_the_api_schema(toy_registry):
    archs = architectures.architectures()
    catalog = {"archs": archs, "datasets": [], "options": training_options.train_options()}
    option_values = {f["name"]: f["default"] for f in catalog["options"]}
    option_values.update(epochs=2.0, amp=[], scheduler="step", gamma=0.3)
    params, problems = train.train_params(
        catalog, "ds1", " my run ", "toy2d", {"width": 3, "residual": ["on"]}, option_values
    )
    assert problems == []
    assert params["config"] == {"width": 3, "residual": True}
    assert params["name"] == "my run" and params["arch"] == "toy2d"
    assert params["epochs"] == 2 and params["amp"] is False and params["gamma"] == 0.3
    checked = TrainParams.model_validate(params)
    assert checked.scheduler == "step" and checked.config == {"width": 3, "residual": True}

    _, problems = train.train_params(catalog, None, None, "toy2d", {}, {})
    assert problems == ["Choose a dataset first (generate one on the Data page)."]
    _, problems = train.train_params(catalog, "ds1", None, "broken2d", {}, {})
    assert problems[0].startswith("Broken (2D): its module cannot be imported")
    _, problems = train.train_params(catalog, "ds1", None, "toy2d", {}, {"lr": None})
    assert problems == ["Learning rate: enter a number (more than 0, at most 1)."]


def test_training_options_come_from_the_api_schema():
    fields = {f["name"]: f for f in training_options.train_options()}
    assert {"dataset_id", "config", "name", "queue"}.isdisjoint(fields)
    assert fields["lr"]["min"] == 0 and fields["lr"]["exclusive_min"] and fields["lr"]["max"] == 1
    assert fields["epochs"]["type"] == "int" and fields["epochs"]["min"] == 1
    assert fields["scheduler"]["choices"] == ["onecycle", "step", "constant"]
    assert fields["loss"]["choices"] == ["rel_l2", "rel_l1", "h1", "h-1"]
    assert fields["amp"]["type"] == "bool"
    assert config_form.help_text(fields["epochs"]) == "1 to 100,000"
    for name, field in fields.items():
        assert field["default"] == TrainParams.model_fields[name].default

    tree = train.options_form(
        training_options.train_options(), {"scheduler": "constant", "epochs": 3}
    )
    found = controls(tree, train.OPTION)
    assert set(found) == set(fields)
    assert found["epochs"].value == 3
    assert [o["label"] for o in found["loss"].options] == [
        "relative L2",
        "relative L1",
        "relative H1",
        "relative H⁻¹",
    ]
    step = next(n for n in walk(tree) if getattr(n, "id", None) == "train-step-settings")
    assert "hidden" in step.className and set(controls(step, train.OPTION)) == {
        "step_epochs",
        "gamma",
    }
    details = next(n for n in walk(tree) if isinstance(n, html.Details))
    assert set(controls(details, train.OPTION)) == {
        "seed",
        "weight_decay",
        "val_fraction",
        "amp",
        "gpus",
        "events_every",
        "data_weight",
        "pde_weight",
    }
    shown = train.options_form(training_options.train_options(), {"scheduler": "step"})
    step = next(n for n in walk(shown) if getattr(n, "id", None) == "train-step-settings")
    assert "hidden" not in step.className


# --- the live run ---------------------------------------------------------------------------


def _job(status="running", progress=0.25, started="2025-01-01T12:00:00Z") -> dict[str, Any]:
    return {
        "id": "job1",
        "status": status,
        "progress": progress,
        "started_at": started,
        "queue": "gpu",
        "params": {"epochs": 4, "arch": "fno2d"},
        "result": {},
        "error": None,
    }


def test_live_stats_show_throughput_and_eta():
    now = datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)
    last = {"step": 10, "total_steps": 40, "samples_per_s": 1234.4, "lr": 1e-3, "eta_s": 95}
    stats = {s.children[1].id: s.children[1].children for s in train.live_stats(_job(), last, now)}
    assert stats["train-throughput"] == "1,234 samples/s"
    assert stats["train-eta"] == "1 min 35 s"
    assert stats["train-step"] == "10 of 40"
    # Without the worker's ETA: from the time spent and the progress (30 s for a quarter).
    assert train.eta_seconds(_job(), {"step": 10}, now) == pytest.approx(90.0)
    assert train.eta_seconds(_job(status="succeeded"), last, now) is None
    assert train.live_stats(_job(status="succeeded"), None, now) == []


def test_events_update_the_run_summary_and_a_resume_rewinds_it():
    run: dict[str, Any] = {}
    train.absorb(
        run,
        [
            {"type": "train", "epoch": 1, "step": 5},
            {"type": "epoch", "epoch": 1, "val_rel_l2": 0.5},
            {"type": "epoch", "epoch": 2, "val_rel_l2": 0.4},
        ],
    )
    assert run["epochs_done"] == 2 and run["last_train"]["step"] == 5
    train.absorb(run, [{"type": "resumed", "epoch": 1, "step": 8}])
    assert run["epochs_done"] == 1 and len(run["resumed"]) == 1
    words = texts(train.summary(_job(), run["last_epoch"], run["resumed"]))
    assert "Resumed from its checkpoint at epoch 1, step 8" in words


# --- curves ----------------------------------------------------------------------------------


def test_training_figure_is_on_log_axes_and_names_the_loss():
    train_events = [
        {"epoch": 1, "step": 2, "total_steps": 8, "train_loss": 0.5, "lr": 1e-4},
        {"epoch": 2, "step": 4, "total_steps": 8, "train_loss": 0.3, "lr": 1e-3},
    ]
    epochs = [
        {"epoch": 1, "val_rel_l2": 0.2, "persistence_rel_l2": 0.3},
        {"epoch": 2, "val_rel_l2": 0.1, "persistence_rel_l2": 0.3},
    ]
    fig = training_figures.training_figure(
        train_events, epochs, epochs=4, loss="h1", uirevision="j"
    )
    assert [t.name for t in fig.data] == [
        "training loss (relative H1)",
        "validation rel. L2",
        "persistence baseline",
    ]
    assert fig.layout.yaxis.type == "log" and fig.layout.uirevision == "j"
    assert "H1" in fig.layout.yaxis.title.text
    assert list(fig.data[0].x) == [1.0, 2.0]
    lr = training_figures.lr_figure(train_events, epochs=4)
    assert lr.layout.yaxis.type == "log" and list(lr.data[0].y) == [1e-4, 1e-3]
    fig.to_json()
    lr.to_json()
    empty = training_figures.lr_figure([])
    assert len(empty.data) == 0


def test_a_resumed_run_draws_each_step_once_and_marks_the_resume():
    def ev(step, loss):
        return {"epoch": 1 + (step - 1) // 4, "step": step, "total_steps": 8, "train_loss": loss}

    # Steps 1–6 ran, the worker died, the job resumed from the step-4 checkpoint.
    events = [ev(s, 1.0) for s in range(1, 7)] + [ev(s, 0.5) for s in range(5, 9)]
    kept = training_figures.latest_pass(events, "step")
    assert [e["step"] for e in kept] == list(range(1, 9))
    assert [e["train_loss"] for e in kept[4:]] == [0.5] * 4
    fig = training_figures.training_figure(
        events, [], epochs=2, resumed=[{"type": "resumed", "epoch": 1, "step": 4}]
    )
    xs = list(fig.data[0].x)
    assert xs == sorted(xs) and len(xs) == 8
    assert [s.x0 for s in fig.layout.shapes] == [1.0]
    assert "resumed" in [a.text for a in fig.layout.annotations]


# --- the Models page -------------------------------------------------------------------------


def _model(i, params, val, base, created, dataset="ds"):
    return {
        "id": f"m{i}",
        "name": f"model {i}",
        "arch": "fno2d",
        "label": "FNO (2D)",
        "flow": "ns2d-forced",
        "config": {"channels": 1, "history": 1, "width": 8, "modes": 4, "add_grid": True},
        "val_rel_l2": val,
        "persistence_rel_l2": base,
        "parameter_count": params,
        "resolution": 32,
        "interval": 0.1,
        "dataset_id": "d1",
        "dataset_name": dataset,
        "created_at": created,
    }


def test_models_table_sorts_and_links_to_rollout():
    models = [
        _model(1, 500, 0.1, 0.3, "2025-01-01T10:00:00Z"),
        _model(2, 90_000, None, None, "2025-01-02T10:00:00Z"),
        _model(3, 4_000, 0.4, 0.2, "2025-01-03T10:00:00Z", dataset=None),
    ]
    by = models_page.sort_models
    assert [m["id"] for m in by(models, "parameters", "desc")] == ["m2", "m3", "m1"]
    assert [m["id"] for m in by(models, "val", "asc")] == ["m1", "m3", "m2"]
    assert [m["id"] for m in by(models, "val", "desc")] == ["m3", "m1", "m2"]  # unknown last
    assert [m["id"] for m in by(models, "skill", "desc")] == ["m1", "m3", "m2"]
    assert [m["id"] for m in by(models, "created", "desc")] == ["m3", "m2", "m1"]
    assert models_page.sort_href("parameters", "parameters", "desc").endswith("order=asc")
    assert models_page.sort_href("name", "parameters", "desc").endswith("sort=name&order=asc")
    assert models_page.normalise_sort("bogus", "up") == models_page.DEFAULT_SORT

    table = models_page.models_table(models, "parameters", "desc")
    rows = [n for n in walk(table) if isinstance(n, html.Tr) and getattr(n, "id", None)]
    assert [r.id for r in rows] == ["model-row-m2", "model-row-m3", "model-row-m1"]
    links = [n.href for n in walk(table) if isinstance(n, dcc.Link)]
    assert "/rollout?model=m1" in links
    words = texts(table)
    assert "90,000" in words and "3.0× better" in words and "2.0× worse" in words
    # Within 5 % of persistence a model is on par with it, not "1.0× better".
    assert models_page.skill_text(0.186 / 0.184) == ("on par with persistence", "tag")
    assert models_page.skill_text(1 / 0.96)[0] == "on par with persistence"
    assert models_page.skill_text(1.06) == ("1.1× better", "tag tag-good")
    assert models_page.skill_text(0.5) == ("2.0× worse", "tag tag-bad")
    assert models_page.skill_text(25.0)[0] == "25× better"
    assert "ds · 32² · Δt 0.1" in words and "deleted dataset · 32² · Δt 0.1" in words
    assert "width 8, modes 4" in words
    assert "Parameters ▼" in words
    empty = models_page.models_table([])
    assert "No models yet" in texts(empty)
