"""Accounts and access control (issue 10, item 3): with auth on, anonymous calls are 401, a
viewer changes nothing, a member changes only its own jobs, an admin everything; tokens;
trusted hosts; cross-origin browser requests; security headers; and with auth off (the
loopback default) everything works as before. Real databases: SQLite and PostgreSQL."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.db.session import get_database
from app.db.tables import InitialCondition, Job
from app.main import create_app
from app.services import auth
from app.settings import Settings, is_loopback
from tests.conftest import free_port

PASSWORD = "correct horse battery"


def _job_body() -> dict:
    # A tiny generate job; it stays queued (no worker runs here).
    return {
        "kind": "generate",
        "params": {
            "flow": "ns2d-forced",
            "n_trajectories": 2,
            "shard_size": 1,
            "resolution": 32,
            "n_snapshots": 2,
        },
    }


@pytest.fixture
def auth_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth": "on", "secret_key": "test-secret"})


@pytest.fixture
def users(auth_settings: Settings) -> dict[str, str]:
    """One account per role (and a second member); returns name -> API token."""
    db = get_database(auth_settings.resolved_database_url)
    tokens = {}
    with db.session() as session:
        for name, role in [
            ("ada", "admin"),
            ("mia", "member"),
            ("max", "member"),
            ("vic", "viewer"),
        ]:
            auth.add_user(session, name, PASSWORD, role)
            tokens[name] = auth.create_token(session, name, "test")[1]
    return tokens


@pytest.fixture
def secured(auth_settings: Settings, users) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings, with_ui=False)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_auth_default_follows_the_bind_address():
    assert not Settings(host="127.0.0.1").auth_enabled
    assert not Settings(host="localhost").auth_enabled
    assert not Settings(host="::1").auth_enabled
    assert Settings(host="0.0.0.0").auth_enabled
    assert Settings(host="192.168.1.20").auth_enabled
    assert Settings(host="127.0.0.1", auth="on").auth_enabled
    assert not Settings(host="0.0.0.0", auth="off").auth_enabled
    assert is_loopback("127.0.0.2") and not is_loopback("example.org")
    hosts = Settings(host="gpu-box", trusted_hosts=None).resolved_trusted_hosts
    assert {"localhost", "127.0.0.1", "gpu-box"} <= set(hosts)


def test_anonymous_api_calls_are_401(secured: TestClient):
    for method, path in [
        ("GET", "/api/jobs"),
        ("GET", "/api/datasets"),
        ("GET", "/api/initial-conditions"),
        ("GET", "/api/flows"),
        ("POST", "/api/jobs"),
    ]:
        response = secured.request(method, path, json=_job_body())
        assert response.status_code == 401, (method, path)
        assert "Log in" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
    # Health stays open (probes, compose's healthcheck).
    assert secured.get("/api/health").status_code == 200


def test_wrong_or_revoked_token_is_401(secured: TestClient, auth_settings: Settings, users):
    assert secured.get("/api/jobs", headers=bearer("esk_not-a-token")).status_code == 401
    assert secured.get("/api/jobs", headers=bearer("nonsense")).status_code == 401
    assert secured.get("/api/jobs", headers=bearer(users["mia"])).status_code == 200
    db = get_database(auth_settings.resolved_database_url)
    with db.session() as session:
        row, token = auth.create_token(session, "mia", "short-lived")
    assert secured.get("/api/jobs", headers=bearer(token)).status_code == 200
    with db.session() as session:
        assert auth.revoke_token(session, row.id)
    response = secured.get("/api/jobs", headers=bearer(token))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_viewer_cannot_submit_or_upload(secured: TestClient, users):
    response = secured.post("/api/jobs", json=_job_body(), headers=bearer(users["vic"]))
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]
    field = io.BytesIO()
    np.save(field, np.zeros((64, 64), dtype=np.float32))
    response = secured.post(
        "/api/initial-conditions",
        files={"file": ("ic.npy", field.getvalue())},
        data={"flow": "ns2d-forced"},
        headers=bearer(users["vic"]),
    )
    assert response.status_code == 403
    # A viewer still sees everything.
    assert secured.get("/api/jobs", headers=bearer(users["vic"])).status_code == 200


def test_jobs_and_uploads_belong_to_their_owner(
    secured: TestClient, auth_settings: Settings, users
):
    mia, max_, ada = (bearer(users[n]) for n in ("mia", "max", "ada"))
    response = secured.post("/api/jobs", json=_job_body(), headers=mia)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    db = get_database(auth_settings.resolved_database_url)
    with db.session() as session:
        job = session.get(Job, job_id)
        owner = job.owner_id
        shards = session.query(Job).filter(Job.parent_id == job_id).all()
    assert owner is not None
    assert shards and all(shard.owner_id == owner for shard in shards)

    # Members see the group's jobs but cannot cancel another member's.
    assert secured.get(f"/api/jobs/{job_id}", headers=max_).status_code == 200
    response = secured.post(f"/api/jobs/{job_id}/cancel", headers=max_)
    assert response.status_code == 403
    assert "owner or an admin" in response.json()["detail"]
    assert (
        secured.post(f"/api/jobs/{job_id}/cancel", headers=bearer(users["vic"])).status_code == 403
    )
    # The owner can.
    response = secured.post(f"/api/jobs/{job_id}/cancel", headers=mia)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"

    # An admin can cancel anyone's.
    other = secured.post("/api/jobs", json=_job_body(), headers=max_).json()["id"]
    response = secured.post(f"/api/jobs/{other}/cancel", headers=ada)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"

    # Uploads are owned too.
    field = io.BytesIO()
    np.save(field, np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32))
    response = secured.post(
        "/api/initial-conditions",
        files={"file": ("ic.npy", field.getvalue())},
        data={"flow": "ns2d-forced"},
        headers=mia,
    )
    assert response.status_code == 201, response.text
    with db.session() as session:
        assert session.get(InitialCondition, response.json()["id"]).owner_id == owner


def test_per_owner_active_job_limit(auth_settings: Settings, users):
    settings = auth_settings.model_copy(update={"max_active_jobs": 1})
    with TestClient(create_app(settings, with_ui=False)) as client:
        assert (
            client.post("/api/jobs", json=_job_body(), headers=bearer(users["mia"])).status_code
            == 202
        )
        refused = client.post("/api/jobs", json=_job_body(), headers=bearer(users["mia"]))
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("You have")
        # Another member's limit is their own.
        assert (
            client.post("/api/jobs", json=_job_body(), headers=bearer(users["max"])).status_code
            == 202
        )


def test_login_sets_a_session_cookie_and_logout_clears_it(secured: TestClient):
    # A UI page redirects to the login page.
    response = secured.get("/data", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/data"
    assert "login-form" in secured.get("/login").text

    wrong = secured.post("/login", data={"name": "mia", "password": "nope", "next": "/"})
    assert wrong.status_code == 401
    assert "Wrong user name or password" in wrong.text
    assert secured.get("/api/jobs").status_code == 401

    response = secured.post(
        "/login",
        data={"name": "mia", "password": PASSWORD, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"  # never off-site
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert secured.get("/api/jobs").status_code == 200
    # Same-origin POSTs with the cookie pass.
    origin = {"Origin": "http://testserver"}
    assert secured.post("/api/jobs", json=_job_body(), headers=origin).status_code == 202

    # A forged cookie is no login.
    secured.cookies.clear()
    secured.cookies.set("eddyscope_session", "forged.value.here")
    assert secured.get("/api/jobs").status_code == 401

    secured.cookies.clear()
    secured.post("/login", data={"name": "mia", "password": PASSWORD})
    assert secured.get("/api/jobs").status_code == 200
    response = secured.post("/logout", headers=origin, follow_redirects=False)
    assert response.status_code == 303
    assert secured.get("/api/jobs").status_code == 401


def test_cross_origin_cookie_post_is_refused(secured: TestClient):
    secured.post("/login", data={"name": "mia", "password": PASSWORD})
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        # Credentials a browser attaches by itself (a proxy's Basic auth) are no exemption.
        {"Origin": "http://evil.example", "Authorization": "Basic dXNlcjpwdw=="},
    ):
        response = secured.post("/api/jobs", json=_job_body(), headers=headers)
        assert response.status_code == 403, headers
        assert "cross-origin" in response.json()["detail"]
    # A bearer token is not sent by a browser on its own: no origin check.
    secured.cookies.clear()


def test_cross_origin_upload_is_refused_with_auth_off(client: TestClient):
    """A web page cannot make a login-free laptop server store a file (or run a job)."""
    field = io.BytesIO()
    np.save(field, np.zeros((64, 64), dtype=np.float32))
    response = client.post(
        "/api/initial-conditions",
        files={"file": ("ic.npy", field.getvalue())},
        data={"flow": "ns2d-forced"},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert client.get("/api/initial-conditions").json() == []
    response = client.post("/api/jobs", json=_job_body(), headers={"Origin": "http://evil.example"})
    assert response.status_code == 403


def test_untrusted_host_is_400(settings: Settings):
    trusted = settings.model_copy(update={"trusted_hosts": None})
    with TestClient(create_app(trusted, with_ui=False), base_url="http://127.0.0.1") as client:
        assert client.get("/api/health").status_code == 200
        response = client.get("/api/health", headers={"Host": "attacker.example"})
        assert response.status_code == 400
        assert "Host" in response.json()["detail"]
    with TestClient(create_app(trusted, with_ui=False), base_url="http://localhost:8050") as c:
        assert c.get("/api/health").status_code == 200


def test_security_headers_and_no_cors(client: TestClient):
    response = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "same-origin"
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/jobs",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_auth_off_works_as_before(client: TestClient):
    """The loopback default: no login, no owner, every change allowed."""
    response = client.post("/api/jobs", json=_job_body())
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    assert client.get("/api/jobs").status_code == 200
    # Even a bearer token is simply not needed.
    assert client.get("/api/jobs", headers=bearer("esk_whatever")).status_code == 200


def test_openapi_documents_401_and_403(secured: TestClient, users):
    schema = secured.get("/openapi.json", headers=bearer(users["vic"])).json()
    create = schema["paths"]["/api/jobs"]["post"]["responses"]
    assert {"401", "403"} <= set(create)
    assert "401" in schema["paths"]["/api/jobs"]["get"]["responses"]
    assert "401" not in schema["paths"]["/api/health"]["get"]["responses"]


def test_cli_user_and_token_commands(auth_settings: Settings, monkeypatch, capsys):
    from app import cli
    from app.settings import get_settings

    monkeypatch.setenv("EDDYSCOPE_DATABASE_URL", auth_settings.resolved_database_url)
    monkeypatch.setenv("EDDYSCOPE_DATA_DIR", str(auth_settings.data_dir))
    get_settings.cache_clear()
    try:
        monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
        assert cli.main(["user", "add", "zoe", "--role", "member", "--password-stdin"]) == 0
        monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
        assert cli.main(["user", "add", "zoe", "--password-stdin"]) == 2  # taken
        capsys.readouterr()
        assert cli.main(["token", "create", "zoe", "--label", "laptop"]) == 0
        token = capsys.readouterr().out.strip()
        assert token.startswith("esk_")
        assert cli.main(["token", "create", "nobody"]) == 2
        assert cli.main(["user", "role", "zoe", "viewer"]) == 0
        capsys.readouterr()
        assert cli.main(["user", "list"]) == 0
        assert "zoe\tviewer" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    db = get_database(auth_settings.resolved_database_url)
    with db.session() as session:
        assert auth.user_for_token(session, token).name == "zoe"


def test_a_token_works_from_the_cli(auth_settings: Settings, users, capsys):
    """`eddyscope generate --server URL --token T` submits through a real server with auth
    on, as the token's user; without the token the server says 401."""
    import uvicorn

    from app import cli

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(auth_settings, with_ui=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        args = ["generate", "--server", url, "--no-wait", "--n-trajectories", "1",
                "--resolution", "32", "--n-snapshots", "2"]  # fmt: skip
        assert cli.main(args) == 2
        assert "401" in capsys.readouterr().err
        assert cli.main([*args, "--token", users["vic"]]) == 2
        assert "403" in capsys.readouterr().err
        assert cli.main([*args, "--token", users["mia"]]) == 0
        out = capsys.readouterr().out
        assert "generate job" in out
        job_id = out.split("generate job ")[1].split()[0]
    finally:
        server.should_exit = True
        thread.join(10)
    db = get_database(auth_settings.resolved_database_url)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job.owner_id is not None
        from app.db.tables import User

        assert session.get(User, job.owner_id).name == "mia"
