"""The UI's WebSocket (the live pages' push, Dash's ``/_dash-ws-callback``) passes the same
gate as the HTTP callbacks (``app.security.AuthGate``): with auth on, a socket without a
session or token is refused, one with a valid session cookie or API token is accepted, a
socket opened from another origin is refused, and an open socket whose session is no longer
valid is closed at its next callback request. Real app, real SQLite; no browser."""

from __future__ import annotations

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
