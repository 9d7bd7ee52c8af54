"""Which broker a process uses: the configured one, else Redis on localhost when it
answers, else Celery's SQLAlchemy transport on a SQLite file in the data directory."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from app.settings import Settings

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BrokerChoice:
    url: str
    backend: str | None
    kind: str  # "configured", "redis" or "embedded"

    @property
    def supports_broadcast(self) -> bool:
        # Revoke and other remote control need fanout, which the SQL transport lacks.
        return not self.url.startswith("sqla+")

    def describe(self) -> str:
        shown = urlparse(self.url)._replace(netloc=urlparse(self.url).hostname or "").geturl()
        if self.kind == "embedded":
            return f"embedded SQLite broker ({self.url.removeprefix('sqla+sqlite:///')})"
        return f"{self.kind} broker {shown}"


def redis_answers(url: str, timeout: float = 0.3) -> bool:
    """True when something at the URL's host:port answers a Redis PING."""
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout
        ) as s:
            s.settimeout(timeout)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def resolve_broker(settings: Settings) -> BrokerChoice:
    if settings.broker_url:
        backend = settings.result_backend
        if backend is None and settings.broker_url.startswith(("redis://", "rediss://")):
            backend = settings.broker_url
        return BrokerChoice(settings.broker_url, backend, "configured")
    probe = os.environ.get("EDDYSCOPE_REDIS_PROBE_URL", DEFAULT_REDIS)
    if redis_answers(probe):
        return BrokerChoice(probe, settings.result_backend or probe, "redis")
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return BrokerChoice(
        f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
        settings.result_backend or f"db+sqlite:///{data_dir / 'celery-results.sqlite'}",
        "embedded",
    )
