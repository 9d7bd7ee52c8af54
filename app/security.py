"""Who is asking, and what a browser may be made to do: the login, the gate every request
passes, and the headers every response carries.

* ``AuthGate`` (a plain ASGI middleware) finds the request's user: a bearer token
  (``Authorization: Bearer esk_...``, for scripts and the CLI) or the signed session cookie
  the login page sets (for the UI). With auth on, a request without a valid one gets 401
  (the API, the UI's callbacks) or a redirect to ``/login`` (a UI page); ``/login``,
  ``/logout`` and ``/api/health`` are open. A viewer's state-changing request is 403, except
  the UI's callbacks (every UI update is a POST; the services refuse a viewer's changes
  there). The user is kept for the request's services (``app.services.auth``).
* CSRF: a state-changing request not authenticated by a bearer token (so one a browser may
  send with its cookies, or a cross-site form post to a login-free laptop server) must come
  from this origin: its ``Origin`` (else ``Referer``), when present, must name the host it
  was sent to; otherwise 403. Browsers always send ``Origin`` on cross-origin POSTs, and the
  session cookie is ``SameSite=Lax`` besides. No CORS headers are ever sent.
* ``SecurityHeaders`` adds ``X-Content-Type-Options``, ``X-Frame-Options`` and CSP
  ``frame-ancestors`` (no framing), ``Referrer-Policy`` and ``Cross-Origin-Opener-Policy``.
* The trusted hosts (``Settings.trusted_hosts``) are Starlette's ``TrustedHostMiddleware``,
  installed by ``app.main``.
"""

from __future__ import annotations

import html
import time
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.schemas import ErrorOut
from app.services import auth
from app.settings import Settings
from app.state import AppState

SESSION_COOKIE = "eddyscope_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/login", "/logout", "/api/health"})
CALLBACK_PATH = "/_dash-update-component"
# How often an open UI WebSocket's session is checked again, at the least (every callback
# request on it is checked).
RECHECK_S = 10.0

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class Sessions:
    """Signed (``itsdangerous``), expiring session cookies naming a user id."""

    def __init__(self, settings: Settings):
        self.max_age = settings.session_max_age_s
        self.serializer = URLSafeTimedSerializer(
            settings.resolved_secret_key(), salt="eddyscope-session"
        )

    def dump(self, user_id: str) -> str:
        return self.serializer.dumps({"u": user_id})

    def load(self, cookie: str) -> str | None:
        try:
            data = self.serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also expired (SignatureExpired is a BadSignature)
            return None
        return data.get("u") if isinstance(data, dict) else None


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    # Other schemes (e.g. a proxy's Basic credentials, which a browser attaches on its own)
    # are not ours: such a request is treated as a browser's, origin check included.
    return token.strip() if scheme.lower() == "bearer" else None


def same_origin(headers: Headers) -> bool:
    """Whether a request's ``Origin`` (else ``Referer``) names the host it was sent to; a
    request with neither is not a browser's cross-site one and passes."""
    origin = headers.get("origin") or headers.get("referer")
    if origin is None:
        return True
    if origin == "null":
        return False
    host = headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower() and bool(host)


async def _json_error(send: Send, status: int, detail: str, headers=()) -> None:
    body = ErrorOut(detail=detail).model_dump_json(exclude_none=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _is_page(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and not path.startswith(("/api/", "/_dash", "/openapi.json"))


class AuthGate:
    def __init__(self, app: ASGIApp, state: AppState, sessions: Sessions):
        self.app = app
        self.state = state
        self.sessions = sessions
        self.enabled = state.settings.auth_enabled

    def _lookup(self, token: str | None, user_id: str | None) -> auth.Principal | None:
        with self.state.db.session() as session:
            if token is not None:
                user = auth.user_for_token(session, token)
            else:
                user = auth.user_by_id(session, user_id) if user_id else None
            return auth.principal(user) if user is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        token = _bearer(headers)
        unsafe = method not in SAFE_METHODS
        if unsafe and token is None and not same_origin(headers):
            await _json_error(
                send,
                403,
                "A cross-origin request that changes something is refused (its Origin is "
                "not this server); scripts use an API token (Authorization: Bearer).",
            )
            return
        user = None
        if self.enabled:
            if token is not None:
                user = await run_in_threadpool(self._lookup, token, None)
                if user is None:
                    await _json_error(
                        send,
                        401,
                        "The API token is not valid (mistyped or revoked).",
                        [(b"www-authenticate", b"Bearer")],
                    )
                    return
            else:
                cookie = _cookie(headers, SESSION_COOKIE)
                user_id = self.sessions.load(cookie) if cookie else None
                if user_id is not None:
                    user = await run_in_threadpool(self._lookup, None, user_id)
            if user is None and path not in OPEN_PATHS:
                if _is_page(method, path):
                    await _redirect(send, "/login?next=" + quote(path, safe="/"))
                else:
                    await _json_error(
                        send,
                        401,
                        "Log in first: this server requires an account (a session from "
                        "/login, or an API token as Authorization: Bearer).",
                        [(b"www-authenticate", b"Bearer")],
                    )
                return
            if (
                user is not None
                and user.role == "viewer"
                and unsafe
                and path not in OPEN_PATHS
                and not path.endswith(CALLBACK_PATH)
            ):
                await _json_error(send, 403, f"{user.name} is a viewer: viewers change nothing.")
                return
        scope.setdefault("state", {})["user"] = user
        reset = auth.set_current_user(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth.reset_current_user(reset)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The UI's WebSocket (Dash's callbacks pushed live): allowed exactly as the HTTP
        callbacks are. The handshake must come from this origin (a browser always sends
        ``Origin``), and with auth on it must carry a valid session cookie or bearer token;
        every callback request on the open socket is checked again (an expired session or a
        deleted user closes it, code 4401), and the others at least every
        ``RECHECK_S``."""
        headers = Headers(scope=scope)
        token = _bearer(headers)
        if token is None and (headers.get("origin") is None or not same_origin(headers)):
            await send({"type": "websocket.close", "code": 1008, "reason": "Origin refused"})
            return
        cookie = _cookie(headers, SESSION_COOKIE)
        user = None
        if self.enabled:
            user = await self._ws_user(token, cookie)
            if user is None:
                # Refused before the handshake completes: the browser sees the socket fail
                # and the pages go on polling over HTTP, where the gate answers 401.
                await send({"type": "websocket.close", "code": 1008, "reason": "Log in first"})
                return
        scope.setdefault("state", {})["user"] = user
        reset = auth.set_current_user(user)
        checked = [time.monotonic()]

        async def receive_checked() -> Message:
            message = await receive()
            if not self.enabled or message["type"] != "websocket.receive":
                return message
            text = message.get("text") or ""
            now = time.monotonic()
            if '"callback_request"' in text or now - checked[0] >= RECHECK_S:
                checked[0] = now
                current = await self._ws_user(token, cookie)
                if current is None:
                    await send({"type": "websocket.close", "code": 4401, "reason": "Log in again"})
                    return {"type": "websocket.disconnect", "code": 4401}
                scope["state"]["user"] = current
                auth.set_current_user(current)
            return message

        try:
            await self.app(scope, receive_checked, send)
        finally:
            auth.reset_current_user(reset)

    async def _ws_user(self, token: str | None, cookie: str | None) -> auth.Principal | None:
        if token is not None:
            return await run_in_threadpool(self._lookup, token, None)
        user_id = self.sessions.load(cookie) if cookie else None
        if user_id is None:
            return None
        return await run_in_threadpool(self._lookup, None, user_id)


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's ``TrustedHostMiddleware``, whose refusal (400) is written in the API's one
    error shape instead of plain text."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]):
        super().__init__(app, allowed_hosts=allowed_hosts, www_redirect=False)
        inner = self.app

        async def trusted(scope: Scope, receive: Receive, send: Send) -> None:
            scope["eddyscope.host_trusted"] = True
            await inner(scope, receive, send)

        self.app = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def send_or_refuse(message: Message) -> None:
            if scope.get("eddyscope.host_trusted"):
                await send(message)
            elif message["type"] == "http.response.start":
                await _json_error(
                    send,
                    400,
                    "This server does not answer for that Host; the operator lists the names "
                    "it is reached by in EDDYSCOPE_TRUSTED_HOSTS.",
                )
            # The plain-text body of the refusal is dropped.

        await super().__call__(scope, receive, send_or_refuse)


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def current_user(request: Request) -> auth.Principal | None:
    """The request's user (a FastAPI dependency); None when auth is off."""
    return request.scope.get("state", {}).get("user")


# The login page -------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · Eddyscope</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f6f8; display: flex;
  justify-content: center; padding-top: 12vh; margin: 0; }}
form {{ background: #fff; padding: 2rem 2.5rem; border-radius: 8px;
  box-shadow: 0 1px 4px rgba(0,0,0,.15); display: flex; flex-direction: column;
  gap: .6rem; min-width: 18rem; }}
h1 {{ font-size: 1.3rem; margin: 0 0 .6rem; }}
input {{ padding: .45rem; font-size: 1rem; }}
button {{ padding: .5rem; font-size: 1rem; cursor: pointer; }}
.error {{ color: #b00020; margin: 0; }}
</style></head>
<body><form method="post" action="/login" id="login-form">
<h1>Eddyscope</h1>{error}
<label for="login-name">User</label>
<input id="login-name" name="name" autocomplete="username" required autofocus>
<label for="login-password">Password</label>
<input id="login-password" name="password" type="password"
  autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button id="login-submit" type="submit">Log in</button>
</form></body></html>
"""


def _safe_next(target: str | None) -> str:
    # Only a path on this server: never //elsewhere or a full URL.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    message = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    body = _PAGE.format(error=message, next=html.escape(_safe_next(next_path)))
    return HTMLResponse(body, status, headers={"cache-control": "no-store"})


@router.get("/login")
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(next)


@router.post("/login")
def login(
    request: Request,
    name: str = Form(...),
    password: str = Form(...),
    next: str = Form("/"),
):
    state: AppState = request.app.state.eddyscope
    with state.db.session() as session:
        user = auth.authenticate(session, name, password)
        user_id = user.id if user is not None else None
    if user_id is None:
        return _login_page(next, "Wrong user name or password.", 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    sessions: Sessions = request.app.state.sessions
    response.set_cookie(
        SESSION_COOKIE,
        sessions.dump(user_id),
        max_age=sessions.max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/logout")
def logout_page() -> RedirectResponse:
    # A link may only log out (a cross-site one can do no more than that, as a POST).
    return logout()
