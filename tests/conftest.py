"""Fixtures that start real services: PostgreSQL databases, Redis, Celery worker processes
and the API server. Tests talk to these over real connections; nothing is mocked."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("EDDYSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
PG_ADMIN_URL = os.environ.get("EDDYSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# TestClient sends Host: testserver; the app answers only trusted hosts (DNS rebinding), so
# in-process tests trust it too. Servers the tests start (service_env) keep the defaults.
os.environ.setdefault("EDDYSCOPE_TRUSTED_HOSTS", "testserver,localhost,127.0.0.1")
# A port nothing listens on: the probe for Redis fails there, as on a machine without Redis.
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread in the test process: on 2 cores, OpenMP threads that lose their core
    to the workers and servers the tests start make small FFTs several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()  # a test-only database number: stale messages from earlier runs go
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_server() -> str:
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"eddyscope_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    from app.db import session as db_session

    for url in [u for u in db_session._databases if u.endswith(name)]:
        db_session._databases.pop(url).engine.dispose()
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=database_url, broker_url=redis_url, max_upload_bytes=200_000
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(settings, with_ui=False)) as test_client:
        yield test_client


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDDYSCOPE_")}
    env |= {"EDDYSCOPE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    # Two cores: one torch thread per process keeps the API, the worker and pytest responsive.
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return env | extra


class Service:
    """A real process of ours (worker or server), in its own process group, logging to a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


class Worker(Service):
    """A real Celery worker process, started like `eddyscope worker` starts one."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "gpu,cpu"):
        from app.cli import worker_command

        name = f"test-{uuid.uuid4().hex[:6]}@%h"
        super().__init__(worker_command(queues, 1, name), env, log_path)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start:\n{self.output()}")


@pytest.fixture
def start_worker(tmp_path: Path):
    started: list[Worker] = []

    def start(env: dict[str, str], queues: str = "gpu,cpu") -> Worker:
        worker = Worker(env, tmp_path / f"worker{len(started)}.log", queues)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


class Server(Service):
    """The whole app (API + UI) under uvicorn in its own process."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "app.cli", "api", "--port", str(self.port)]
        super().__init__(command, env, log_path)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.output()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, redis_url: str) -> Iterator[str]:
    """The full product on Redis and SQLite: the API/UI server and a real Celery worker.
    Yields the base URL.

    It lives for the whole session on a Redis database of its own (the test database's
    number + 1): its worker would otherwise take the messages of tests that start their own
    workers, and skip them as jobs its database does not have."""
    import redis

    live_redis = f"{redis_url.rsplit('/', 1)[0]}/{int(redis_url.rsplit('/', 1)[1]) + 1}"
    redis.Redis.from_url(live_redis).flushdb()  # this fixture's own number: stale messages go
    data_dir = tmp_path_factory.mktemp("live")
    env = service_env(data_dir, EDDYSCOPE_BROKER_URL=live_redis)
    worker = Worker(env, data_dir / "worker.log")
    server = Server(env, data_dir / "server.log")
    try:
        worker.wait_ready()
        server.wait_ready()
        yield server.url
    finally:
        server.stop()
        worker.stop()
