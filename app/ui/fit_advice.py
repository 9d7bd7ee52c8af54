"""The out-of-distribution advice the Rollout and Compare pages show before Start: for the
chosen initial condition and models, one warning per model whose training inputs the field
is far from, with the numbers (``app.services.model_fit.start_warnings``, the same sentences
``POST /api/jobs`` answers and the runs' setup events record)."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import html

from app.services import model_fit
from app.ui.components import alert
from app.ui.context import get_state


def advice(warnings: list[str], page: str) -> list[Any]:
    """The warnings as the pages draw them ([] when there are none)."""
    if not warnings:
        return []
    return [
        html.Div(
            alert([html.Strong("Out of distribution: "), message], "warning"),
            className=f"fit-warning {page}-fit-warning",
        )
        for message in warnings
    ]


async def advice_for(ic_id: str | None, model_ids: list[str], page: str) -> list[Any]:
    """``advice`` for an initial condition id and the chosen model ids (any that is not a
    model, such as the page's "reference only" choice, is skipped)."""
    if not ic_id or not model_ids:
        return []
    warnings = await asyncio.to_thread(model_fit.start_warnings, get_state(), ic_id, model_ids)
    return advice(warnings, page)
