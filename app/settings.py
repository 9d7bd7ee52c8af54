"""One settings object for every process (API, UI, workers, CLI).

Every field can be set from the environment with the prefix ``EDDYSCOPE_``, e.g.
``EDDYSCOPE_DATABASE_URL=postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Room in a UI callback request for the values sent beside an uploaded file.
CALLBACK_OVERHEAD = 4 * 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDDYSCOPE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"),
        description="Where the default SQLite database, broker and artifacts live.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite (WAL) in data_dir."
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL; default is Redis on localhost if it answers, "
        "else an embedded SQLite broker in data_dir.",
    )
    result_backend: str | None = Field(default=None, description="Celery result backend URL.")
    artifact_root: Path | None = Field(
        default=None, description="Folder for datasets, checkpoints and trajectories."
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest initial-condition file accepted, by the API and the Upload page.",
    )
    max_array_bytes: int = Field(
        default=128 * 1024 * 1024,
        gt=0,
        description="The most memory the arrays of one uploaded file may declare (all "
        "together, as inflated); larger declarations are refused from the headers (413).",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body of every endpoint other than the upload and the "
        "UI's callbacks (e.g. POST /api/jobs); a larger one gets 413.",
    )
    max_callback_bytes: int | None = Field(
        default=None,
        gt=0,
        description="Largest body of a UI callback request (/_dash-update-component); "
        "default: room for the Upload page's base64-encoded file of max_upload_bytes plus "
        "4 MiB for the callback's other values.",
    )
    device: str = Field(
        default="auto", description="'auto' (CUDA when available), 'cpu' or 'cuda[:N]'."
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads per worker process for torch; 0: half the cores (at least 1).",
    )
    job_kinds: str = Field(
        default="",
        description="Modules of extra job kinds, comma-separated (each defines "
        "KIND = app.jobkinds.base.JobKind(...)); added to the built-in kinds.",
    )
    redispatch_after_s: float = Field(
        default=120.0,
        description="Re-send a queued job's message when it has waited this long and is no "
        "longer in the broker's queue (lost with the broker, or taken by a worker that died "
        "before starting it).",
    )
    # Bounded work: what one request and one owner may ask for (app.jobkinds.limits).
    max_trajectories: int = Field(
        default=10_000, ge=1, description="Most trajectories one generate job may ask for."
    )
    max_shards: int = Field(
        default=256,
        ge=1,
        description="Most shards one generate job may make (n_trajectories / shard_size, "
        "rounded up): each is a job row and a broker message.",
    )
    max_dataset_values: int = Field(
        default=2**32,
        ge=1,
        description="Most values one generated dataset may hold: trajectories × snapshots × "
        "stored grid points (× 3 velocity components for a channel flow).",
    )
    max_steps_points: int = Field(
        default=2**28,
        ge=1,
        description="Most steps × grid points of one rollout or comparison (the frames it "
        "computes and stores per source).",
    )
    max_gpus: int | None = Field(
        default=None,
        ge=1,
        description="Most data-parallel processes (`gpus`) a train or finetune job may ask "
        "for; default: the GPUs of this machine, else its CPU cores, at least 1. A worker "
        "also refuses more than it has.",
    )
    max_active_jobs: int = Field(
        default=100,
        ge=1,
        description="Most queued and running jobs at once (a generate job and its shards "
        "count as one); per owner once jobs have owners, today for the whole server.",
    )
    heartbeat_every_s: float = Field(
        default=10.0,
        gt=0,
        description="How often a worker records that it is still running a job (the job's "
        "heartbeat).",
    )
    lost_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose heartbeat is older than this has lost its worker: the "
        "API's sweep puts it back in the queue, and a redelivered message may take it over.",
    )

    # The live pages (Rollout, Compare): frames pushed over the UI's WebSocket.
    ui_push: bool = Field(
        default=True,
        description="Push live frames and metrics to the Rollout and Compare pages over a "
        "WebSocket; off: the pages poll (500 ms / 700 ms), as they also do when a proxy "
        "refuses the WebSocket.",
    )
    ui_push_max_per_connection: int = Field(
        default=4,
        gt=0,
        description="How many live runs one browser connection may follow by push at once.",
    )

    # Accounts and access control (app.security, app.services.auth).
    host: str = Field(
        default="127.0.0.1",
        description="The address the server is bound to (set by `eddyscope up/api --host`); "
        "decides the default of `auth` and is a trusted host.",
    )
    auth: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Login and roles: 'on', 'off', or 'auto' (off only when the server is "
        "bound to a loopback address, on for any other bind).",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs session cookies; default: a random key generated once and kept "
        "in data_dir/secret_key.",
    )
    trusted_hosts: str | None = Field(
        default=None,
        description="Host header values the server answers, comma-separated ('*' for any); "
        "default: localhost, 127.0.0.1, ::1 and the bind host. Others get 400 (DNS "
        "rebinding).",
    )
    session_max_age_s: int = Field(
        default=14 * 24 * 3600, gt=0, description="How long a login lasts (seconds)."
    )

    @property
    def auth_enabled(self) -> bool:
        if self.auth != "auto":
            return self.auth == "on"
        return not is_loopback(self.host)

    @property
    def resolved_trusted_hosts(self) -> list[str]:
        if self.trusted_hosts is not None:
            return [h.strip() for h in self.trusted_hosts.split(",") if h.strip()]
        hosts = ["localhost", "127.0.0.1", "::1", "[::1]"]
        if self.host not in ("0.0.0.0", "::", "") and self.host not in hosts:
            hosts.append(self.host)
        return hosts

    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once and kept (mode 600) in data_dir."""
        if self.secret_key:
            return self.secret_key
        import secrets

        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            # A hard link is atomic and never replaces: of two processes starting at once,
            # one key wins and both read it.
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()

    @property
    def resolved_max_callback_bytes(self) -> int:
        if self.max_callback_bytes is not None:
            return self.max_callback_bytes
        # dcc.Upload sends the file inside the callback's JSON as base64: 4 bytes per 3.
        return -(-self.max_upload_bytes // 3) * 4 + CALLBACK_OVERHEAD

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'eddyscope.sqlite').resolve()}"

    @property
    def resolved_artifact_root(self) -> Path:
        return (self.artifact_root or self.data_dir / "artifacts").resolve()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
