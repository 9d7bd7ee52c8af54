"""Server push for the live pages (Rollout, Compare): the pieces both pages share.

A page that follows a run renders, besides its stores, ``<prefix>-push`` (the run's id and
a token unique to this rendering of the page), ``<prefix>-push-beat`` and a watchdog
Interval. The page's push callback is a Dash WebSocket callback (``websocket=True``, on the
FastAPI backend's ``/_dash-ws-callback``, behind ``app.security.AuthGate`` like every HTTP
callback): it runs for as long as the run does, waits for the job's next event with one
indexed query every ``WAIT_S`` (``rollouts.newest_event``: the SQL database is the source
of truth, so it works on SQLite, PostgreSQL, with Redis or the embedded broker), reads only
what is new, and sends the newest frame together with the status and the curves in one
batch of ``set_props`` (the renderer applies a batch in one render). It stops when the job
has ended and everything was sent, when the socket closes, or when the page is no longer
showing that run (its token is checked every ``CHECK_PAGE_S``).

Fallback: the push beats ``<prefix>-push-beat`` at least every ``HEARTBEAT_S``; a
clientside watchdog switches the page to its old HTTP polling (the ``<prefix>-interval``)
when no beat came for ``STALE_MS`` (a proxy that refuses WebSockets, a dropped socket, a
browser without SharedWorker), starting the poll from the run's first step. With
``EDDYSCOPE_UI_PUSH=false`` the pages poll from the start, as before.

Re-arming: a question the push asks the page (``Push.ask``) that gets no answer within
``ANSWER_S`` makes the push hand over to a new one. Dash's shared worker (dash 4.4.1) can
move a page to a second socket while the first stays open: when its socket closes on a full
navigation it schedules a reconnect, and a page that connects meanwhile gets a socket at
once; the scheduled reconnect is not cancelled and opens a third one a second or two later,
which the worker sends on from then on. A push that started on the socket before carries on
sending (the page still receives on it), but the page's answers go out on the new socket,
where nobody waits for them. So on a missing answer the push sets a new token in the page's
``<prefix>-push`` store: the page starts its push callback again, on the socket it now uses,
and the old push stops. At most ``MAX_REARMS`` times per page, then the watchdog decides.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dash import Input, Output, State, clientside_callback, dcc, set_props
from plotly.io.json import to_json_plotly

from app.services import rollouts
from app.ui.context import get_state

WAIT_S = 0.04  # between two looks for a new event while a run is followed
QUEUED_WAIT_S = 0.1  # the same while the job waits in the queue (one indexed query)
HEARTBEAT_S = 2.0  # at least this often the push says it is alive
CHECK_PAGE_S = 1.0  # how often the push asks the page whether it still shows the run
STALE_MS = 7000  # the watchdog's patience before it falls back to polling
ANSWER_S = 3.0  # how long the push waits for the page to answer before it re-arms
MAX_REARMS = 3  # re-armed pushes per rendering of a page
MAX_S = 48 * 3600  # one push never follows a run for longer than this

# Push loops running per WebSocket connection (bounded by ui_push_max_per_connection).
_active: dict[int, int] = {}


def enabled() -> bool:
    try:
        settings = get_state().settings
    except RuntimeError:  # a layout built without the app (tests of the pages' layouts)
        from app.settings import get_settings

        settings = get_settings()
    return bool(settings.ui_push)


def components(prefix: str, ref: str | None) -> list[Any]:
    """The stores and the watchdog a page following run ``ref`` by push renders; none when
    push is off or there is no run (the page then polls, or waits for Start)."""
    if not ref or not enabled():
        return []
    return [
        dcc.Store(id=f"{prefix}-push", data={"ref": ref, "token": uuid.uuid4().hex}),
        dcc.Store(id=f"{prefix}-push-beat", data=None),
        dcc.Interval(id=f"{prefix}-push-watch", interval=1000),
    ]


def as_sent(value: Any) -> str:
    """``value`` as the JSON that ``set_props`` sends: what a push compares to decide that a
    prop is unchanged and need not be sent again (Dash components compare by identity, so
    two equal status lines built a frame apart are never ``==``)."""
    return to_json_plotly(value)


def polls_first(ref: str | None) -> bool:
    """Whether the page's HTTP polling starts enabled: a run and no push."""
    return ref is not None and not enabled()


def register_watchdog(prefix: str) -> None:
    """The clientside fallback: no beat from the push for ``STALE_MS`` → enable the page's
    polling Interval, reset its run store (the poll then reads the run from its first
    step) and mark the push store off (the server loop, if any, stops at its next check)."""
    clientside_callback(
        """
        function(n, beat, push) {
            const nu = window.dash_clientside.no_update;
            if (!push || !push.ref || push.off) { return [nu, nu, true, nu]; }
            const all = (window.__eddyscopePush = window.__eddyscopePush || {});
            const now = Date.now();
            const seen = all[push.token] || (all[push.token] = {n: null, at: now});
            const beatN = beat ? beat.n : null;
            if (beatN !== seen.n) { seen.n = beatN; seen.at = now; }
            if (beat && beat.final) { return [nu, nu, true, nu]; }
            if (now - seen.at < STALE_MS) { return [nu, nu, nu, nu]; }
            console.info('Eddyscope: no live push; polling instead.');
            return [false, {ref: push.ref}, true, Object.assign({}, push, {off: true})];
        }
        """.replace("STALE_MS", str(STALE_MS)),
        Output(f"{prefix}-interval", "disabled", allow_duplicate=True),
        Output(f"{prefix}-run", "data", allow_duplicate=True),
        Output(f"{prefix}-push-watch", "disabled"),
        Output(f"{prefix}-push", "data"),
        Input(f"{prefix}-push-watch", "n_intervals"),
        State(f"{prefix}-push-beat", "data"),
        State(f"{prefix}-push", "data"),
        prevent_initial_call=True,
    )


@asynccontextmanager
async def slot(ws: Any) -> AsyncIterator[bool]:
    """One of the connection's push slots, or False when all are taken (the page's
    watchdog then falls back to polling)."""
    key = id(getattr(ws, "_shutdown_event", ws))
    limit = get_state().settings.ui_push_max_per_connection
    if _active.get(key, 0) >= limit:
        yield False
        return
    _active[key] = _active.get(key, 0) + 1
    try:
        yield True
    finally:
        _active[key] -= 1
        if _active[key] <= 0:
            del _active[key]


class NoAnswer(Exception):
    """The page did not answer a push's question: it is gone, or its answer went elsewhere."""


class Push:
    """One page's push: its beat, whether the page still shows the run, the wait for news.
    ``data`` is the page's ``<prefix>-push`` store: the run's ref, the token of this
    rendering of the page and how often its push was re-armed."""

    def __init__(self, ws: Any, prefix: str, data: dict[str, Any]):
        self.ws = ws
        self.prefix = prefix
        self.ref = data["ref"]
        self.token = data["token"]
        self.rearms = int(data.get("rearms") or 0)
        self.beats = 0
        self.last_beat = 0.0
        self.next_check = time.monotonic() + CHECK_PAGE_S
        self.deadline = time.monotonic() + MAX_S

    def beat(self, final: bool = False) -> None:
        """Queue a beat (call it in the same batch as an update, or alone when due)."""
        self.beats += 1
        self.last_beat = time.monotonic()
        set_props(f"{self.prefix}-push-beat", {"data": {"n": self.beats, "final": final}})

    def beat_if_due(self) -> None:
        if time.monotonic() - self.last_beat >= HEARTBEAT_S:
            self.beat()

    async def ask(self, component_id: str, prop: str) -> Any:
        """The page's value of ``component_id.prop``. Raises ``NoAnswer`` when the socket
        closed or no answer came within ``ANSWER_S``; in the second case the push is
        re-armed first (see the module docstring), and the caller should stop."""
        try:
            return await self.ws.get_prop(component_id, prop, timeout=ANSWER_S)
        except TimeoutError:
            self.rearm()
            raise NoAnswer from None
        except Exception:  # disconnected: nobody is watching
            raise NoAnswer from None

    def rearm(self) -> None:
        """Ask the page to start a new push, on the socket it now uses; nothing once it was
        re-armed ``MAX_REARMS`` times or the socket is closed (the watchdog then decides)."""
        if self.rearms >= MAX_REARMS or self.ws.is_shutdown:
            return
        data = {"ref": self.ref, "token": uuid.uuid4().hex, "rearms": self.rearms + 1}
        set_props(f"{self.prefix}-push", {"data": data})

    async def page_shows_run(self, now: bool = False) -> bool:
        """False once the socket closed, the page moved to another run or page (its push
        store is gone or has another token), the watchdog switched it to polling, or the
        page did not answer (``ask``).

        Asked every ``CHECK_PAGE_S``, and (``now``) after each frame sent: the page answers
        after it applied what was sent before, so the push never runs ahead of what the
        browser can draw (one frame in flight; a slow page gets fewer, newer frames)."""
        if self.ws.is_shutdown or time.monotonic() > self.deadline:
            return False
        if not now and time.monotonic() < self.next_check:
            return True
        self.next_check = time.monotonic() + CHECK_PAGE_S
        try:
            data = await self.ask(f"{self.prefix}-push", "data")
        except NoAnswer:
            return False
        return isinstance(data, dict) and data.get("token") == self.token and not data.get("off")

    async def wait_for_news(self, job_id: str, after: int, queued: bool = False) -> int:
        """Wait until the job records an event newer than ``after`` (its newest ``seq``),
        or until the next beat or page check is due; returns the newest ``seq``."""
        pause = QUEUED_WAIT_S if queued else WAIT_S
        until = min(self.last_beat + HEARTBEAT_S, self.next_check)
        while True:
            newest = await asyncio.to_thread(rollouts.newest_event, get_state(), job_id)
            if newest > after or time.monotonic() >= until or self.ws.is_shutdown:
                return newest
            await asyncio.sleep(pause)
