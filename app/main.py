"""The ASGI application: REST under /api, the Dash UI at / on the same FastAPI server."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import catalog, errors, flows, health, initial_conditions, rollouts
from app.api import jobs as jobs_api
from app.body_limit import BodyLimit, Limit
from app.security import AuthGate, SecurityHeaders, Sessions, TrustedHosts
from app.security import router as login_router
from app.settings import Settings, get_settings
from app.state import AppState

log = logging.getLogger("eddyscope")

# Room for multipart headers and form fields around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def create_app(settings: Settings | None = None, with_ui: bool = True) -> FastAPI:
    settings = settings or get_settings()
    state = AppState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        log.info("database: %s; broker: %s", state.db.backend, state.broker.describe())
        # The outbox's thread sends job messages (new ones at once, lost ones again every
        # few seconds), so no request waits on the broker (app.queue.outbox).
        state.outbox.start()
        yield
        state.outbox.stop()

    api = FastAPI(
        title="Eddyscope",
        description="Neural operators for turbulent flows: data, training and live rollouts.",
        version="0.1.0",
        lifespan=lifespan,
    )
    api.state.eddyscope = state

    # Every error in one shape (app.schemas.ErrorOut), documented on every operation.
    errors.install(api)

    for module in (health, initial_conditions, jobs_api, catalog, rollouts, flows):
        api.include_router(module.router, prefix="/api")
    # /login and /logout, ahead of the UI's catch-all page route.
    sessions = Sessions(settings)
    api.state.sessions = sessions
    api.include_router(login_router)

    if with_ui:
        # Imported here so API-only processes never load Dash.
        from app.ui import mount_ui

        ui = mount_ui(api, state)
        callback_path = ui.config.routes_pathname_prefix + "_dash-update-component"
    else:
        callback_path = None
    # Outermost last: security headers on every response; the body limit (Dash's own
    # middleware reads callback bodies); the Host check (DNS rebinding); then who is asking
    # (app.security), ahead of Dash's middleware and every route. No CORS middleware: no
    # other origin is ever allowed.
    api.add_middleware(AuthGate, state=state, sessions=sessions)
    api.add_middleware(TrustedHosts, allowed_hosts=settings.resolved_trusted_hosts)
    api.add_middleware(BodyLimit, **body_limits(settings, callback_path))
    api.add_middleware(SecurityHeaders)
    return api


def body_limits(settings: Settings, callback_path: str | None) -> dict:
    """The request-body limits: the upload endpoint takes a file of max_upload_bytes in its
    multipart body, the UI callback endpoint the same file base64-encoded in JSON, every
    other request max_request_bytes."""
    upload = settings.max_upload_bytes
    routes = {
        ("POST", "/api/initial-conditions"): Limit(
            upload + MULTIPART_OVERHEAD,
            f"The upload is larger than the limit of {upload:,} bytes.",
        )
    }
    if callback_path is not None:
        callback = settings.resolved_max_callback_bytes
        routes[("POST", callback_path)] = Limit(
            callback,
            f"The request is larger than the limit of {callback:,} bytes for a UI callback; "
            f"the Upload page takes files of up to {upload:,} bytes.",
        )
    default = settings.max_request_bytes
    return {
        "default": Limit(
            default, f"The request body is larger than the limit of {default:,} bytes."
        ),
        "routes": routes,
    }
