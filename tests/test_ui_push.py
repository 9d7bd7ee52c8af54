"""The UI's WebSocket (the live pages' push, Dash's ``/_dash-ws-callback``) passes the same
gate as the HTTP callbacks (``app.security.AuthGate``): with auth on, a socket without a
session or token is refused, one with a valid session cookie or API token is accepted, a
socket opened from another origin is refused, and an open socket whose session is no longer
valid is closed at its next callback request. Real app, real SQLite; no browser."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.security import SESSION_COOKIE, Sessions
from app.services import auth
from app.settings import Settings

WS = "/_dash-ws-callback"
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def secured(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        auth="on",
        broker_url="sqla+sqlite:///" + str(tmp_path / "broker.sqlite"),
    )
    app = create_app(settings)
    state = app.state.eddyscope
    with state.db.session() as session:
        user = auth.add_user(session, "ada", "correct horse battery", "member")
        user_id = user.id
        _row, token = auth.create_token(session, "ada")
    cookie = Sessions(settings).dump(user_id)
    with TestClient(app) as client:
        yield client, cookie, token, state, user_id


def _heartbeat(ws) -> dict:
    ws.send_json({"type": "heartbeat"})
    return ws.receive_json()


def test_a_socket_without_a_session_is_refused(secured):
    client, _cookie, _token, _state, _user = secured
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(WS, headers=ORIGIN),
    ):
        pass
    assert refused.value.code == 1008
    # The HTTP callbacks answer the same caller 401.
    assert client.post("/_dash-update-component", json={}, headers=ORIGIN).status_code == 401


def test_a_socket_with_a_session_or_a_token_is_accepted(secured):
    client, cookie, token, _state, _user = secured
    headers = {**ORIGIN, "cookie": f"{SESSION_COOKIE}={cookie}"}
    with client.websocket_connect(WS, headers=headers) as ws:
        assert _heartbeat(ws) == {"type": "heartbeat_ack"}
    bearer = {**ORIGIN, "authorization": f"Bearer {token}"}
    with client.websocket_connect(WS, headers=bearer) as ws:
        assert _heartbeat(ws) == {"type": "heartbeat_ack"}


def test_a_forged_or_cross_origin_socket_is_refused(secured):
    client, cookie, _token, _state, _user = secured
    forged = {**ORIGIN, "cookie": f"{SESSION_COOKIE}={cookie}x"}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(WS, headers=forged):
        pass
    elsewhere = {"origin": "http://evil.example", "cookie": f"{SESSION_COOKIE}={cookie}"}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(WS, headers=elsewhere):
        pass


def test_an_open_socket_closes_when_its_user_is_gone(secured):
    """Every callback request on an open socket is checked again, like an HTTP callback."""
    client, cookie, _token, state, user_id = secured
    headers = {**ORIGIN, "cookie": f"{SESSION_COOKIE}={cookie}"}
    with client.websocket_connect(WS, headers=headers) as ws:
        assert _heartbeat(ws) == {"type": "heartbeat_ack"}
        from app.db.tables import ApiToken, User

        with state.db.session() as session:
            session.query(ApiToken).filter(ApiToken.user_id == user_id).delete()
            session.delete(session.get(User, user_id))
            session.commit()
        ws.send_json({"type": "callback_request", "requestId": "1", "payload": {}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401


def test_a_push_sees_an_equal_status_line_as_unchanged():
    # Dash components compare by identity: two equal status lines built a frame apart are
    # never ==, so the pushes compare what set_props would send (live.as_sent).
    from app.ui import live
    from app.ui.pages.compare.helpers import status_line

    run = {"status": "running", "steps": 60, "frames": 12}
    first, again = status_line(run), status_line(dict(run))
    assert first != again  # why as_sent exists
    assert live.as_sent(first) == live.as_sent(again)
    assert live.as_sent(first) != live.as_sent(status_line({**run, "frames": 13}))


# --- A push whose page does not answer re-arms itself -------------------------------------
# Dash's shared worker can move a page to a new socket while its push goes on on the old one
# (``app.ui.live``, "Re-arming"): the page's answers then arrive on a socket where nobody
# waits for them. These tests play the page by hand, on real sockets of a real server (its
# own process: the first Dash app of a test session takes all the pages' callbacks).


@pytest.fixture
def push_server(tmp_path: Path):
    """The app under uvicorn, with no worker, and a queued rollout job for a push to follow;
    yields its URL, the app state (the same SQLite database) and the job id."""
    from app.db.tables import Job
    from app.state import AppState
    from tests.conftest import Server, service_env

    broker = "sqla+sqlite:///" + str(tmp_path / "broker.sqlite")
    server = Server(service_env(tmp_path, EDDYSCOPE_BROKER_URL=broker), tmp_path / "server.log")
    try:
        server.wait_ready()
        state = AppState.from_settings(Settings(data_dir=tmp_path, broker_url=broker))
        with state.db.session() as session:
            job = Job(kind="rollout", params={"steps": 10}, status="queued", queue="cpu")
            session.add(job)
            session.commit()
            job_id = job.id
        yield server.url, state, job_id
    finally:
        server.stop()


class Page:
    """One socket of a page's renderer (websocket-client, which Selenium brings)."""

    def __init__(self, base: str):
        import websocket

        url = base.replace("http://", "ws://") + WS
        self.ws = websocket.create_connection(url, origin=base, timeout=10)
        self.pending: list[dict] = []
        self.seen: list[dict] = []

    def send(self, message: dict) -> None:
        import json

        self.ws.send(json.dumps(message))

    def until(self, wanted, within: float) -> dict:
        """The next message that ``wanted`` accepts (the server batches messages that come
        within 5 ms into one list); fails after ``within`` seconds."""
        import json

        import websocket

        deadline = time.monotonic() + within
        while True:
            while self.pending:
                message = self.pending.pop(0)
                self.seen.append(message)
                if wanted(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no such message within {within} s; saw {self.seen}")
            self.ws.settimeout(left)
            try:
                got = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            self.pending.extend(got if isinstance(got, list) else [got])

    def close(self) -> None:
        self.ws.close()


def _push_request(job_id: str, token: str, rearms: int = 0) -> dict:
    """What the Rollout page's renderer sends when its push store is drawn."""
    data = {"ref": job_id, "token": token, "rearms": rearms}
    return {
        "type": "callback_request",
        "requestId": "page-1",
        "rendererId": "renderer-1",
        "payload": {
            "output": "rollout-push-beat.data",
            "outputs": {"id": "rollout-push-beat", "property": "data"},
            "inputs": [{"id": "rollout-push", "property": "data", "value": data}],
            "state": [{"id": "rollout-catalog", "property": "data", "value": None}],
            "changedPropIds": ["rollout-push.data"],
        },
    }


def _answer(asked: dict, job_id: str, token: str) -> dict:
    return {
        "type": "get_props_response",
        "rendererId": "renderer-1",
        "requestId": asked["requestId"],
        "payload": {"data": {"ref": job_id, "token": token}},
    }


def _asks_for_push(message: dict) -> bool:
    return (
        message.get("type") == "get_props_request"
        and message["payload"]["componentId"] == "rollout-push"
    )


def _sets_push(message: dict) -> bool:
    return (
        message.get("type") == "set_props" and message["payload"]["componentId"] == "rollout-push"
    )


def _returns(message: dict) -> bool:
    return message.get("type") == "callback_response" and message["requestId"] == "page-1"


def test_a_push_whose_page_answers_elsewhere_is_rearmed(push_server):
    from app.ui import live

    url, _state, job_id = push_server
    old, new = Page(url), Page(url)
    try:
        old.send(_push_request(job_id, "token-1"))
        asked = old.until(_asks_for_push, 10)
        t_asked = time.monotonic()
        # The page answers on the socket the worker now uses: Dash drops it there.
        new.send(_answer(asked, job_id, "token-1"))
        rearmed = old.until(_sets_push, live.ANSWER_S + 10)
        waited = time.monotonic() - t_asked
        data = rearmed["payload"]["props"]["data"]
        # A new token for the same run: the page starts its push again, on its new socket.
        assert data["ref"] == job_id
        assert data["token"] != "token-1" and len(data["token"]) == 32
        assert data["rearms"] == 1
        assert live.ANSWER_S - 0.5 <= waited <= live.ANSWER_S + 5, waited
        # The old push has stopped: its callback returned.
        old.until(_returns, 10)
    finally:
        old.close()
        new.close()


def _answering(page: Page, job_id: str, token: str, asked: list):
    """A ``wanted`` for ``Page.until`` that answers each question of the push like a page
    that shows the run, and counts them in ``asked``."""

    def wanted(message: dict) -> bool:
        if _asks_for_push(message):
            asked.append(message)
            page.send(_answer(message, job_id, token))
        return _returns(message)

    return wanted


def test_a_push_whose_page_answers_goes_on(push_server):
    from app.db.tables import Job
    from app.ui import live

    url, state, job_id = push_server
    page = Page(url)
    try:
        page.send(_push_request(job_id, "token-1"))
        # A page that shows the run answers every question, for longer than a push waits
        # for an answer: the push keeps asking and never re-arms or returns.
        asked: list = []
        with pytest.raises(pytest.fail.Exception, match="no such message"):
            page.until(_answering(page, job_id, "token-1", asked), live.ANSWER_S + 2.5)
        assert len(asked) >= 2
        assert not any(_sets_push(m) for m in page.seen)
        # The job ends: the push sends the final status and returns.
        with state.db.session() as session:
            session.get(Job, job_id).status = "cancelled"
            session.commit()
        page.until(_answering(page, job_id, "token-1", asked), 10)
        assert not any(_sets_push(m) for m in page.seen)
    finally:
        page.close()


def test_a_push_rearmed_too_often_leaves_it_to_the_watchdog(push_server):
    from app.ui import live

    url, _state, job_id = push_server
    page = Page(url)
    try:
        page.send(_push_request(job_id, "token-1", rearms=live.MAX_REARMS))
        page.until(_asks_for_push, 10)
        # No answer: the push stops without asking for another one.
        page.until(_returns, live.ANSWER_S + 10)
        assert not any(_sets_push(m) for m in page.seen)
    finally:
        page.close()
