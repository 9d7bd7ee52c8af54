"""Logging in and out of the UI in a real headless Chromium, against a real server started
with auth on (``EDDYSCOPE_AUTH=on``): a page redirects to /login, a wrong password is
refused, the right one opens the UI with the user in the nav bar, a viewer's change from
the UI is refused and said, and Log out ends the session."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEAD_REDIS, ROOT, Server, service_env
from tests.test_ui_browser import _wait, browser  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The app with auth on, two accounts (admin ada, viewer vic) made with the CLI, and a
    job of ada's. Yields the base URL and the job's id."""
    data_dir: Path = tmp_path_factory.mktemp("login")
    # Its own embedded broker (no Redis probe answers): the job below must never reach the
    # shared Redis queue, where another test's live worker would take it.
    env = service_env(data_dir, EDDYSCOPE_REDIS_PROBE_URL=DEAD_REDIS, EDDYSCOPE_AUTH="on")
    _cli(env, "user", "add", "ada", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    _cli(env, "user", "add", "vic", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    token = _cli(env, "token", "create", "ada")
    server = Server(env, data_dir / "server.log")
    try:
        server.wait_ready()
        job = httpx.post(
            f"{server.url}/api/jobs",
            json={"kind": "generate", "params": {"n_trajectories": 1, "resolution": 32}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert job.status_code == 202, job.text
        yield server.url, job.json()["id"]
    finally:
        server.stop()


def _login(browser, url: str, name: str, password: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(f"{url}/")
    _wait(lambda: "/login" in browser.current_url, 30, "the redirect to /login")
    browser.find_element(By.ID, "login-name").send_keys(name)
    browser.find_element(By.ID, "login-password").send_keys(password)
    browser.find_element(By.ID, "login-submit").click()


def test_login_and_logout(browser, secured_server):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, job_id = secured_server
    browser.delete_all_cookies()

    # A page without a session goes to the login page; a wrong password is refused.
    browser.get(f"{url}/data")
    _wait(lambda: browser.current_url.endswith("/login?next=/data"), 30, "the login page")
    _login(browser, url, "ada", "wrong password")
    error = _wait(lambda: browser.find_element(By.ID, "login-error"), 30, "the refusal")
    assert "Wrong user name or password" in error.text

    # The right one opens the UI, with the user in the nav bar and the group's jobs listed.
    _login(browser, url, "ada", PASSWORD)
    user = _wait(lambda: browser.find_element(By.ID, "nav-user"), 60, "the logged-in UI")
    assert user.text == "ada (admin)"
    _wait(lambda: job_id[:8] in browser.page_source, 60, "ada's job on the Runs page")

    # Log out: back to the login page, and the UI is closed again.
    browser.find_element(By.ID, "logout-button").click()
    _wait(lambda: "/login" in browser.current_url, 30, "the login page after logging out")
    assert not [c for c in browser.get_cookies() if c["name"] == "eddyscope_session"]
    browser.get(f"{url}/models")
    _wait(lambda: "/login" in browser.current_url, 30, "the redirect after logging out")


def test_a_viewer_sees_but_cannot_cancel(browser, secured_server):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, job_id = secured_server
    browser.delete_all_cookies()
    _login(browser, url, "vic", PASSWORD)
    user = _wait(lambda: browser.find_element(By.ID, "nav-user"), 60, "the logged-in UI")
    assert user.text == "vic (viewer)"
    _wait(lambda: job_id[:8] in browser.page_source, 60, "the group's job on the Runs page")
    button = _wait(
        lambda: browser.find_element(
            By.XPATH, f"//button[contains(@id, 'cancel-job') and contains(@id, '{job_id}')]"
        ),
        30,
        "the job's Cancel button",
    )
    button.click()
    notice = _wait(lambda: browser.find_element(By.ID, "auth-refused"), 30, "the refusal")
    assert "viewer" in notice.text
    # The job is still queued.
    browser.get(f"{url}/api/jobs/{job_id}")
    assert '"status":"queued"' in browser.page_source.replace(" ", "")
