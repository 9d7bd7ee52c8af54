"""The pages, one module per page. Each module has a ``layout`` function (the page's
components; no database access, so navigation never waits) and its callbacks, which load
data through ``app.services`` off the event loop and draw with ``app.ui.figures``."""

from __future__ import annotations

import dash


def _register(
    key: str,
    name: str,
    layout,
    order: int | None = None,
    *,
    path: str | None = None,
    template: str | None = None,
) -> None:
    # Every page's title is "<its name> · Eddyscope".
    dash.register_page(
        key,
        path=path,
        path_template=template,
        name=name,
        title=f"{name} · Eddyscope",
        layout=layout,
        order=order,
    )


def register_pages() -> None:
    """Register every page with Dash (called once by ``mount_ui``)."""
    from app.ui.pages import (
        compare,
        datasets,
        models,
        rollout,
        runs,
        train,
        training_runs,
        upload,
    )

    _register("runs", "Runs", runs.layout, 0, path="/")
    _register("rollout", "Rollout", rollout.layout, 1, path="/rollout")
    _register("rollout-reopen", "Rollout", rollout.layout, 2, template="/rollout/<rollout_id>")
    _register("upload", "Upload", upload.layout, 3, path="/upload")
    _register("data", "Data", datasets.layout, 4, path="/data")
    _register("train", "Train", train.layout, 5, path="/train")
    _register("training-runs", "Training runs", training_runs.layout, 9, path="/train/runs")
    _register("models", "Models", models.layout, 6, path="/models")
    _register("compare", "Compare", compare.layout, 7, path="/compare")
    _register("compare-reopen", "Compare", compare.layout, 8, template="/compare/<compare_id>")
    _register("not_found_404", "Not found", not_found, path="/404")


def not_found(**_kwargs) -> dash.html.Main:
    from dash import dcc, html

    from app.ui.components import page

    return page(
        "Page not found",
        "There is no page at this address.",
        html.P(dcc.Link("Back to the runs", href="/")),
    )
