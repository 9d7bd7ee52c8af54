"""The Dash UI, served by the FastAPI app itself (one process, one port).

``mount_ui`` builds the one Dash app of the process on the FastAPI server: the pages
(``app.ui.pages``, one module per page, registered explicitly), the shell with the nav
bar, and ``static/`` as the assets folder. Callbacks find the AppState through
``app.ui.context``.
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, html, set_props
from fastapi import FastAPI

from app.examples import STATIC
from app.services import auth
from app.state import AppState
from app.ui.components import alert, navbar
from app.ui.context import set_state


def shell() -> html.Div:
    # Built per page load, inside the request: the nav bar shows who is logged in.
    return html.Div(
        [
            navbar(auth.current_user()),
            # Where a refused change (a viewer's, or on another member's job) is said.
            html.Div(id="auth-notice"),
            html.Div(dash.page_container, className="page-container"),
            html.Footer(
                [
                    "Eddyscope · REST API under ",
                    html.A("/api", href="/docs", target="_blank"),
                    " · times in UTC",
                ],
                className="footer",
            ),
        ],
        className="app-shell",
    )


def _on_callback_error(error: Exception):
    """A change the user may not make (``auth.Forbidden`` from the services) is said in the
    shell's notice and changes nothing else; any other error stays a callback error."""
    if isinstance(error, auth.Forbidden):
        set_props("auth-notice", {"children": alert(str(error), "error", id="auth-refused")})
        return None
    raise error


def mount_ui(server: FastAPI, state: AppState) -> dash.Dash:
    set_state(state)
    ui = dash.Dash(
        __name__,
        server=server,
        title="Eddyscope",
        use_pages=True,
        pages_folder="",
        assets_folder=str(STATIC),  # the repository's static/ folder
        suppress_callback_exceptions=True,
        update_title=None,
        on_error=_on_callback_error,
    )
    from app.ui.pages import register_pages

    register_pages()
    ui.layout = shell
    _register_nav_highlight()
    _prime(ui)
    return ui


def _prime(ui: dash.Dash) -> None:
    """Run Dash's first-request setup now instead of on the first request.

    With the FastAPI backend, Dash's middleware runs its before-request hooks only for "/"
    and "/_dash-*" paths, while a page such as /upload is served by the catch-all route.
    When a browser's first request is such a page, its HTML is rendered before the setup
    ran: without the CSS of the assets folder and without the pages' title callback script
    (the renderer then fails with "Cannot read properties of undefined (reading 'apply')").
    Both hooks are idempotent, so running them here is safe.
    """
    ui._setup_server()
    for hook in list(getattr(ui.backend, "_before_request_funcs", [])):
        if getattr(hook, "__name__", "") in ("router_sync", "router_async"):
            hook()


def _register_nav_highlight() -> None:
    dash.clientside_callback(
        """
        function(pathname, ids) {
            const here = pathname || "/";
            return ids.map(function(id) {
                const p = id.path;
                const on = p === "/" ? here === "/" : (here === p || here.startsWith(p + "/"));
                return on ? "nav-link active" : "nav-link";
            });
        }
        """,
        Output({"type": "nav-link", "path": ALL}, "className"),
        Input("_pages_location", "pathname"),
        dash.State({"type": "nav-link", "path": ALL}, "id"),
    )
