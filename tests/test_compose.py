"""docker-compose.yml cannot run here (no Docker engine); read it and check that it wires
the services the design names, with commands our CLI accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_healthchecks(compose):
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "app", "worker-gpu", "worker-cpu"}
    for name, service in services.items():
        assert "healthcheck" in service, name
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_commands_are_valid_eddyscope_commands(compose):
    parser = build_parser()
    for name in ("app", "worker-gpu", "worker-cpu"):
        command = compose["services"][name]["command"]
        assert command[0] == "eddyscope", name
        parser.parse_args(command[1:])  # raises SystemExit on an unknown option
    gpu = parser.parse_args(compose["services"]["worker-gpu"]["command"][1:])
    cpu = parser.parse_args(compose["services"]["worker-cpu"]["command"][1:])
    assert (gpu.queues, gpu.concurrency) == ("gpu", 1)
    assert cpu.queues == "cpu"


def test_environment_points_at_the_compose_services(compose):
    services = compose["services"]
    pg = services["postgres"]["environment"]
    for name in ("app", "worker-gpu", "worker-cpu"):
        env = services[name]["environment"]
        url = make_url(env["EDDYSCOPE_DATABASE_URL"])
        assert (url.host, url.username, url.password, url.database) == (
            "postgres",
            pg["POSTGRES_USER"],
            pg["POSTGRES_PASSWORD"],
            pg["POSTGRES_DB"],
        )
        assert env["EDDYSCOPE_BROKER_URL"].startswith("redis://redis:6379")
        assert env["EDDYSCOPE_ARTIFACT_ROOT"] == "/artifacts"
        assert "artifacts:/artifacts" in services[name]["volumes"], name
    assert services["worker-gpu"]["environment"]["EDDYSCOPE_DEVICE"] == "cuda"


def test_gpu_worker_reserves_an_nvidia_device(compose):
    devices = compose["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_start_order_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    assert services["app"]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    for worker in ("worker-gpu", "worker-cpu"):
        assert services[worker]["depends_on"]["app"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) >= {"artifacts", "pg-data"}
    assert services["app"]["ports"] == ["8050:8050"]


def test_dockerfile_copies_every_package(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("app", "physics", "models", "workers", "static"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert compose["services"]["app"]["build"] == "."


def test_app_starts_with_auth_on_and_a_secret_from_the_environment(compose):
    env = compose["services"]["app"]["environment"]
    assert env["EDDYSCOPE_AUTH"] == "on"
    # Interpolated from the operator's environment (required), never written in the file.
    assert env["EDDYSCOPE_SECRET_KEY"].startswith("${EDDYSCOPE_SECRET_KEY:?")
    assert env["EDDYSCOPE_TRUSTED_HOSTS"].startswith("${EDDYSCOPE_TRUSTED_HOSTS")
    for name in ("worker-gpu", "worker-cpu"):
        assert "EDDYSCOPE_SECRET_KEY" not in compose["services"][name]["environment"]


def test_the_image_runs_as_a_non_root_user():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the Dockerfile sets no USER: the containers would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    # The user is created and owns what the app writes.
    text = (ROOT / "Dockerfile").read_text()
    assert "useradd" in text and "chown eddyscope:eddyscope /data /artifacts" in text
