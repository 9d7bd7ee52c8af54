"""No figure can send its data anywhere: every dcc.Graph of every page gets the one private
config of ``app.ui.components`` (no Plotly logo link to plotly.com, no "Share chart" to
Plotly's cloud, no "Edit in Chart Studio", no link, no server URL).

Three checks: the configs themselves; every page's layout, walked component by component;
and every ``dcc.Graph(...)`` written anywhere under ``app/`` (graphs that callbacks build,
such as the Compare page's field columns, are not in a layout), read with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from dash import dcc

from app.ui import components
from app.ui.components import (
    CHART_GRAPH,
    FIELD_GRAPH,
    PRIVATE_CONFIG,
    graph,
    graph_config,
    png_config,
)

ROOT = Path(__file__).resolve().parents[1]
# Config keys that, set to anything but these values, would reach outside the page.
CLOUD_OPTIONS = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "showLink": False,
    "sendData": False,
    "plotlyServerURL": "",
}
CLOUD_BUTTONS = {"sendChartToCloud", "editInChartStudio"}


def cloud_problems(config: dict[str, Any] | None) -> list[str]:
    """What in a dcc.Graph config could share to a cloud (empty: nothing)."""
    if not config:
        return ["no config: plotly.js's defaults show the logo link and 'Share chart'"]
    problems = [
        f"{key}={config.get(key)!r}"
        for key, safe in CLOUD_OPTIONS.items()
        if config.get(key, "missing") != safe
    ]
    added = {
        str(b.get("name", b) if isinstance(b, dict) else b)
        for b in config.get("modeBarButtonsToAdd") or []
    }
    problems += [f"adds {b}" for b in sorted(added & CLOUD_BUTTONS)]
    missing = CLOUD_BUTTONS - set(config.get("modeBarButtonsToRemove") or [])
    problems += [f"does not remove {b}" for b in sorted(missing)]
    if config.get("modeBarButtons"):
        flat = {str(b) for group in config["modeBarButtons"] for b in group}
        problems += [f"lists {b}" for b in sorted(flat & CLOUD_BUTTONS)]
    return problems


def walk(component: Any):
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "_type"):
            yield from walk(child)


def page_layouts() -> dict[str, Any]:
    from app.ui.pages import compare, datasets, models, rollout, runs, train, upload

    return {
        "runs": runs.layout(),
        "rollout": rollout.layout(),
        "rollout-reopen": rollout.layout(rollout_id="x"),
        "upload": upload.layout(),
        "data": datasets.layout(),
        "train": train.layout(),
        "models": models.layout(),
        "compare": compare.layout(),
        "compare-reopen": compare.layout(compare_id="x"),
    }


@pytest.mark.parametrize(
    "config",
    [FIELD_GRAPH, CHART_GRAPH, png_config("x"), graph_config(), graph_config(displayModeBar=True)],
)
def test_every_shared_config_is_private(config):
    assert cloud_problems(config) == []


def test_overrides_cannot_turn_a_cloud_option_back_on():
    config = graph_config(
        displaylogo=True,
        showSendToCloud=True,
        showEditInChartStudio=True,
        showLink=True,
        plotlyServerURL="https://cloud.plotly.com",
        modeBarButtonsToRemove=[],
    )
    assert cloud_problems(config) == []
    made = graph("g", config={"showSendToCloud": True, "displayModeBar": True})
    assert cloud_problems(made.config) == []
    assert made.config["displayModeBar"] is True


def test_the_checker_catches_a_cloud_option():
    # The test below would pass vacuously if the checker saw nothing wrong in anything.
    assert cloud_problems(None)
    assert cloud_problems({"displaylogo": False})
    assert cloud_problems({**PRIVATE_CONFIG, "showSendToCloud": True})
    leaky = {**PRIVATE_CONFIG, "modeBarButtonsToRemove": list(CLOUD_BUTTONS)}
    assert cloud_problems({**leaky, "modeBarButtonsToAdd": ["sendChartToCloud"]})


def test_every_graph_of_every_page_is_private():
    layouts = page_layouts()
    seen = 0
    for name, layout in layouts.items():
        for node in walk(layout):
            if isinstance(node, dcc.Graph):
                seen += 1
                problems = cloud_problems(getattr(node, "config", None))
                assert not problems, f"{name}: graph {node.id!r}: {problems}"
    # The walk did reach the pages' charts (Rollout alone has four, Compare four).
    assert seen >= 10


def _graph_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "Graph") or (
                isinstance(f, ast.Name) and f.id == "Graph"
            ):
                yield node


# The names a dcc.Graph's config may come from: the shared private configs.
SHARED_CONFIGS = {"CHART_GRAPH", "FIELD_GRAPH", "png_config", "graph_config", "config"}


def test_every_graph_in_the_source_takes_a_shared_config():
    """A graph built in a callback (not in any layout) is found in the source instead: each
    ``dcc.Graph(...)`` outside ``components.graph`` takes its config from the shared ones."""
    bad = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in _graph_calls(tree):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            config = next((k.value for k in call.keywords if k.arg == "config"), None)
            if config is None:
                bad.append(f"{where}: no config")
                continue
            names = {n.id for n in ast.walk(config) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(config) if isinstance(n, ast.Attribute)}
            if not names & SHARED_CONFIGS or isinstance(config, ast.Dict):
                bad.append(f"{where}: config={ast.unparse(config)}")
    assert not bad, "graphs without the shared private config:\n" + "\n".join(bad)
    assert components.graph.__module__ == "app.ui.components"
