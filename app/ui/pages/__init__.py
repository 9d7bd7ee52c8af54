"""The pages, one module per page. Each module has a ``layout`` function (the page's
components; no database access, so navigation never waits) and its callbacks, which load
data through ``app.services`` off the event loop and draw with ``app.ui.figures``."""

from __future__ import annotations

import dash


def register_pages() -> None:
    """Register every page with Dash (called once by ``mount_ui``)."""
    from app.ui.pages import compare, datasets, models, rollout, runs, train, upload

    dash.register_page(
        "runs", path="/", name="Runs", title="Runs · Eddyscope", layout=runs.layout, order=0
    )
    dash.register_page(
        "rollout",
        path="/rollout",
        name="Rollout",
        title="Rollout · Eddyscope",
        layout=rollout.layout,
        order=1,
    )
    dash.register_page(
        "rollout-reopen",
        path_template="/rollout/<rollout_id>",
        name="Rollout",
        title="Rollout · Eddyscope",
        layout=rollout.layout,
        order=2,
    )
    dash.register_page(
        "upload",
        path="/upload",
        name="Upload",
        title="Upload · Eddyscope",
        layout=upload.layout,
        order=3,
    )
    dash.register_page(
        "data", path="/data", name="Data", title="Data · Eddyscope", layout=datasets.layout, order=4
    )
    dash.register_page(
        "train",
        path="/train",
        name="Train",
        title="Train · Eddyscope",
        layout=train.layout,
        order=5,
    )
    dash.register_page(
        "models",
        path="/models",
        name="Models",
        title="Models · Eddyscope",
        layout=models.layout,
        order=6,
    )
    dash.register_page(
        "compare",
        path="/compare",
        name="Compare",
        title="Compare · Eddyscope",
        layout=compare.layout,
        order=7,
    )
    dash.register_page(
        "compare-reopen",
        path_template="/compare/<compare_id>",
        name="Compare",
        title="Compare · Eddyscope",
        layout=compare.layout,
        order=8,
    )
    dash.register_page(
        "not_found_404",
        path="/404",
        name="Not found",
        title="Not found · Eddyscope",
        layout=not_found,
    )


def not_found(**_kwargs) -> dash.html.Main:
    from dash import dcc, html

    from app.ui.components import page

    return page(
        "Page not found",
        "There is no page at this address.",
        html.P(dcc.Link("Back to the runs", href="/")),
    )
