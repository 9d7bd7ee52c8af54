"""Where callbacks find the application state: set once by ``mount_ui``.

Dash callbacks are module-level functions, so they cannot take the FastAPI dependency
that REST handlers use; the one AppState of the process is kept here instead.
"""

from __future__ import annotations

from app.state import AppState

_state: AppState | None = None


def set_state(state: AppState) -> None:
    global _state
    _state = state


def get_state() -> AppState:
    if _state is None:
        raise RuntimeError("the UI is not mounted: call app.ui.mount_ui(server, state) first")
    return _state
