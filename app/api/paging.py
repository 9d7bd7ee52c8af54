"""Cursor paging of the lists that grow while a job runs (a job's events, a rollout's
per-step metrics): ``after`` (an event ``seq``, exclusive) and a capped ``limit``.

Each row carries its ``seq``; the next page starts after the last row's. A page that came
back full has a ``Link: <…?after=SEQ&limit=N>; rel="next"`` header to the next one; a
shorter page is everything recorded so far (a running job may add more: ask again with
``after`` = the last seq)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Query, Request, Response

from app.api import MAX_SEQ

METRICS_PAGE = 500
MAX_METRICS_PAGE = 5000
EVENTS_PAGE = 1000
MAX_EVENTS_PAGE = 10_000

NEXT_PAGE_HEADERS = {
    "Link": {
        "description": 'Only on a full page: `<URL>; rel="next"`, the next page (the same '
        "request with `after` = the last row's seq).",
        "schema": {"type": "string"},
    }
}


def after_param(what: str) -> Any:
    return Query(
        0,
        ge=0,
        le=MAX_SEQ,
        description=f"Only {what} with a larger seq (the last seq already read; 0: from the "
        "start).",
    )


def limit_param(default: int, most: int, what: str) -> Any:
    return Query(default, ge=1, le=most, description=f"At most this many {what} (1–{most}).")


def _seq(row: Any) -> int:
    return int(row["seq"] if isinstance(row, dict) else row.seq)


def link_next(request: Request, response: Response, rows: Sequence[Any], limit: int) -> None:
    """Point a full page at the next one (``Link: <…>; rel="next"``)."""
    if rows and len(rows) >= limit:
        url = request.url.include_query_params(after=_seq(rows[-1]), limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
