"""Bounded request bodies, enforced while they stream in.

``BodyLimit`` is a plain ASGI middleware (no Starlette ``BaseHTTPMiddleware``, which would
read the body itself). Each request gets a limit chosen by its method and path:

* a declared ``Content-Length`` above the limit is refused at once with 413, before the
  application sees the request;
* otherwise the bytes of the ``http.request`` messages are counted as the application
  receives them; the message that takes the count past the limit is never handed on: the
  client gets a 413 (unless a response had already started), the application's ``receive``
  raises ``BodyTooLarge`` (afterwards it reports a disconnect) and anything the application
  still sends is dropped.

So a chunked upload without a Content-Length can make the server hold or spool at most
the limit, never the whole body, and the request's handler never runs on a partial body.
The 413's body is the API's one error shape (``app.schemas.ErrorOut``), ``{"detail": the
limit's sentence}``; ``app.api.errors`` documents it on every operation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.schemas import ErrorOut

log = logging.getLogger("eddyscope")


@dataclass(frozen=True)
class Limit:
    """At most ``max_bytes`` of body; ``message`` is the sentence a refused client reads."""

    max_bytes: int
    message: str


class BodyTooLarge(Exception):
    """Raised by the bounded ``receive`` when the body passes its limit."""


def _path_key(path: str) -> str:
    return path.rstrip("/") or "/"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


async def _refuse(send: Send, limit: Limit) -> None:
    body = ErrorOut(detail=limit.message).model_dump_json(exclude_none=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not wanted: the server closes the connection
                # instead of reading it to the end.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimit:
    """Refuse request bodies over ``routes[(METHOD, path)]`` (or ``default``) with 413."""

    def __init__(
        self,
        app: ASGIApp,
        default: Limit,
        routes: Mapping[tuple[str, str], Limit] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.routes = {
            (method.upper(), _path_key(path)): limit
            for (method, path), limit in (routes or {}).items()
        }

    def limit_for(self, method: str, path: str) -> Limit:
        return self.routes.get((method.upper(), _path_key(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await _refuse(send, limit)
            return

        received = 0
        refused = False
        started = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    refused = True
                    if not started:
                        await _refuse(send, limit)
                    raise BodyTooLarge(limit.message)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out instead (or the response is cut short)
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The application gave up on the body it could not read; the outcome is the 413.
            log.debug("request body over %d bytes refused", limit.max_bytes, exc_info=True)
        if refused and started:
            log.warning(
                "%s %s: request body passed %d bytes after the response had started; "
                "the response was cut short",
                scope["method"],
                scope["path"],
                limit.max_bytes,
            )
