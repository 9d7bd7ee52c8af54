"""One error shape for the whole API (``app.schemas.ErrorOut``: ``{"detail": sentence}``,
plus ``errors`` for request validation), its handlers, and its place in the OpenAPI.

* ``install(app)`` makes every error path answer in that shape: ``HTTPException`` (ours,
  and Starlette's own 404/405), request validation (422, with each invalid field under
  ``errors``) and unexpected exceptions (500). The body-size middleware
  (``app.body_limit``) writes its 413 in the same shape itself, outside the application.
* Routes declare the codes that are theirs with ``responses=errors(404, 409, ...)``.
  ``document_errors`` then adds what every operation can answer: 413 (the body limit
  applies to every request), 400 wherever it takes a body (one that cannot be parsed:
  not JSON, a broken multipart form), 422 wherever it takes parameters or a body (in place
  of FastAPI's default ``HTTPValidationError``, which is not what we send) and 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.schemas import ErrorItem, ErrorOut
from app.services.auth import Forbidden

log = logging.getLogger("eddyscope")

# What each error status means across the API; a route may say it more precisely.
MEANING = {
    400: "The request body could not be parsed (malformed JSON or multipart), or its Host "
    "is not one this server answers.",
    401: "Auth is on and the request has no valid session or API token (Authorization: Bearer).",
    403: "The user may not do this (a viewer changes nothing, a member only what it owns), "
    "or a browser request came from another origin.",
    404: "There is no such resource.",
    409: "The resource is not in a state that allows this.",
    413: "The request body is larger than the server's limit.",
    415: "The uploaded file is of a type this flow does not take.",
    422: "The request is invalid; the detail says why (and `errors` lists each invalid "
    "field when the request's own validation refused it).",
    500: "An unexpected error on the server.",
}

_REF = "#/components/schemas/"
# Operations open without an account when auth is on (app.security.OPEN_PATHS).
OPEN_PATHS = frozenset({"/api/health"})


def errors(*codes: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own error codes, each documented as ``ErrorOut``, with
    the common meaning or one of its own: ``errors(409, (404, "There is no such job."))``."""
    out: dict[int | str, dict[str, Any]] = {}
    for entry in codes:
        code, description = entry if isinstance(entry, tuple) else (entry, MEANING[entry])
        out[code] = {"model": ErrorOut, "description": description}
    return out


def error_body(detail: str, items: list[ErrorItem] | None = None) -> dict[str, Any]:
    return ErrorOut(detail=detail, errors=items).model_dump(mode="json", exclude_none=True)


async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
    headers = getattr(exc, "headers", None)
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail
    if not isinstance(detail, str):
        detail = json.dumps(jsonable_encoder(detail))
    return JSONResponse(error_body(detail), exc.status_code, headers=headers)


def _where(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie"))


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422: one sentence naming each invalid field, and the fields themselves under
    ``errors`` (where, what, the error's type; not the input, which may be large)."""
    found = exc.errors()
    parts, items = [], []
    for error in found:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        msg = str(error.get("msg", "invalid"))
        where = _where(loc)
        parts.append(f"{where}: {msg}" if where else msg)
        items.append(ErrorItem(loc=loc, msg=msg, type=str(error.get("type", "value_error"))))
    detail = "; ".join(parts) + "." if parts else "The request is invalid."
    return JSONResponse(error_body(detail, items), 422)


async def forbidden(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(exc)), 403)


async def server_error(_request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the exception and re-raises it after this response is sent.
    return JSONResponse(error_body("An unexpected error occurred on the server."), 500)


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + "ErrorOut"}}},
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add 413, 422 (operations with input) and 500 to every operation of an OpenAPI
    ``schema``, all as ``ErrorOut``, and drop FastAPI's unused validation-error schemas."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    shape = ErrorOut.model_json_schema(ref_template=_REF + "{model}", mode="serialization")
    for name, definition in shape.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("ErrorOut", shape)
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in (400, 413, 500):
                # 400: every request whose Host is not trusted.
                responses.setdefault(str(code), _error_response(MEANING[code]))
            if path not in OPEN_PATHS:
                responses.setdefault("401", _error_response(MEANING[401]))
            if method.lower() in ("post", "put", "patch", "delete"):
                responses.setdefault("403", _error_response(MEANING[403]))
            validation = responses.get("422")
            if _takes_input(operation) and (
                validation is None or "HTTPValidationError" in json.dumps(validation)
            ):
                responses["422"] = _error_response(MEANING[422])
    if "HTTPValidationError" not in json.dumps(schema.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """The handlers, and the OpenAPI documenting them, on ``app``."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(Exception, server_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
