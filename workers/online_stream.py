"""The bounded transport between online-training producers and their trainer: a queue of
encoded windows (``workers.online_codec``) that holds at most ``capacity`` of them.

Producers ``push``; a push that finds the queue full takes only what fits, and
``push_all`` waits and retries the rest (back-pressure: producers go no faster than the
trainer takes windows). The trainer ``pull``s the oldest windows, which leave the queue.
``close`` (the trainer is done) makes every later push answer ``CLOSED``, so producers
stop; ``delete`` removes what is left.

Two implementations, chosen by the broker the deployment uses (``transport_kind``):

- ``RedisWindowStream``: a Redis stream under ``eddyscope:online:<job id>:windows`` on the
  broker's Redis, so producers on any machine that reaches the broker can feed the
  trainer. The bound is exact: one Lua script checks the length, the closed flag and adds,
  atomically. Every push and pull renews a TTL (a day), so the keys of a job whose trainer
  died for good disappear by themselves; the trainer deletes them when it ends.
- ``SpoolWindowStream``, for the embedded default (no Redis): the processes of one
  machine share nothing but the data directory, so the queue is a bounded table in a
  SQLite file of its own under ``<data dir>/scratch/online/<job id>/`` (not the job
  database: no migration, and removing the folder removes everything). SQLite's write
  lock makes the bound exact across processes; rows are deleted as they are pulled, and
  the folder is removed when the trainer ends. It holds at most ``capacity`` windows on
  disk while the job runs: the price of having no shared memory between processes.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.settings import Settings

CLOSED = -1
TTL_S = 24 * 3600
KINDS = ("redis", "spool")

Message = tuple[bytes, bytes]  # (header, data) of one window


class WindowStream(Protocol):
    capacity: int

    def push(self, messages: list[Message]) -> int:
        """Add as many of ``messages`` as fit, in order; how many, or CLOSED."""

    def pull(self, n: int) -> list[Message]:
        """Take up to ``n`` of the oldest windows out of the queue."""

    def __len__(self) -> int: ...

    def close(self) -> None: ...

    def delete(self) -> None: ...


@dataclass
class PushOutcome:
    pushed: int
    waited_s: float
    closed: bool


def push_all(
    stream: WindowStream,
    messages: list[Message],
    should_stop: Callable[[], bool],
    poll_s: float = 0.02,
    max_poll_s: float = 0.25,
) -> PushOutcome:
    """Push every message, waiting while the queue is full (polling from ``poll_s`` up to
    ``max_poll_s`` apart); stops early when the stream is closed or ``should_stop()``."""
    pushed, waited, delay = 0, 0.0, poll_s
    while pushed < len(messages):
        took = stream.push(messages[pushed:])
        if took == CLOSED:
            return PushOutcome(pushed, waited, True)
        pushed += took
        if pushed == len(messages):
            break
        if should_stop():
            break
        if took:
            delay = poll_s
        time.sleep(delay)
        waited += delay
        delay = min(delay * 2, max_poll_s)
    return PushOutcome(pushed, waited, False)


# --- Redis --------------------------------------------------------------------------------

# KEYS: stream, closed flag. ARGV: capacity, ttl, then header, data of each window.
_PUSH = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local room = tonumber(ARGV[1]) - redis.call('XLEN', KEYS[1])
local n = math.min(room, (#ARGV - 2) / 2)
for i = 1, n do
  redis.call('XADD', KEYS[1], '*', 'h', ARGV[1 + 2 * i], 'd', ARGV[2 + 2 * i])
end
if n > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return math.max(n, 0)
"""


def redis_keys(job_id: str) -> tuple[str, str]:
    """The stream and closed-flag keys of one online training job."""
    return f"eddyscope:online:{job_id}:windows", f"eddyscope:online:{job_id}:closed"


class RedisWindowStream:
    def __init__(self, url: str, job_id: str, capacity: int):
        import redis

        self.capacity = capacity
        self.key, self.closed_key = redis_keys(job_id)
        self.client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        self._push = self.client.register_script(_PUSH)

    def push(self, messages: list[Message]) -> int:
        if not messages:
            return 0
        args: list[bytes | int] = [self.capacity, TTL_S]
        for header, data in messages:
            args += [header, data]
        return int(self._push(keys=[self.key, self.closed_key], args=args))

    def pull(self, n: int) -> list[Message]:
        entries = self.client.xrange(self.key, count=n)
        if not entries:
            return []
        pipe = self.client.pipeline()
        pipe.xdel(self.key, *[entry_id for entry_id, _ in entries])
        pipe.expire(self.key, TTL_S)
        pipe.execute()
        return [(fields[b"h"], fields[b"d"]) for _, fields in entries]

    def __len__(self) -> int:
        return int(self.client.xlen(self.key))

    def close(self) -> None:
        self.client.set(self.closed_key, b"1", ex=TTL_S)

    def delete(self) -> None:
        self.client.delete(self.key)

    def release(self) -> None:
        self.client.close()


# --- local spool (embedded default) ---------------------------------------------------------


def spool_dir(settings: Settings, job_id: str) -> Path:
    return Path(settings.data_dir).resolve() / "scratch" / "online" / job_id


class SpoolWindowStream:
    FILE = "spool.sqlite"

    def __init__(self, directory: Path, capacity: int, create: bool):
        self.capacity = capacity
        self.directory = Path(directory)
        self.path = self.directory / self.FILE
        self._conn: sqlite3.Connection | None = None
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            conn.execute(
                "CREATE TABLE IF NOT EXISTS windows "
                "(id INTEGER PRIMARY KEY AUTOINCREMENT, header BLOB NOT NULL, data BLOB NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS closed (flag INTEGER)")

    def _connect(self) -> sqlite3.Connection | None:
        """The connection, or None once the trainer removed the spool (it ended)."""
        if self._conn is None:
            if not self.path.exists() and not self.directory.exists():
                return None
            try:
                # autocommit mode: each statement's transaction is the explicit BEGIN below
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                return None
            self._conn = conn
        return self._conn

    def push(self, messages: list[Message]) -> int:
        conn = self._connect()
        if conn is None:
            return CLOSED
        if not messages:
            return 0
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock: count and insert as one
            try:
                if conn.execute("SELECT count(*) FROM closed").fetchone()[0]:
                    return CLOSED
                held = conn.execute("SELECT count(*) FROM windows").fetchone()[0]
                n = max(0, min(self.capacity - held, len(messages)))
                conn.executemany("INSERT INTO windows (header, data) VALUES (?, ?)", messages[:n])
                return n
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError:  # the spool was removed under us: the trainer ended
            return CLOSED

    def pull(self, n: int) -> list[Message]:
        conn = self._connect()
        if conn is None:
            return []
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(
                "SELECT id, header, data FROM windows ORDER BY id LIMIT ?", (n,)
            ).fetchall()
            if rows:
                conn.execute("DELETE FROM windows WHERE id <= ?", (rows[-1][0],))
        finally:
            conn.execute("COMMIT")
        return [(bytes(h), bytes(d)) for _, h, d in rows]

    def __len__(self) -> int:
        conn = self._connect()
        return 0 if conn is None else conn.execute("SELECT count(*) FROM windows").fetchone()[0]

    def close(self) -> None:
        conn = self._connect()
        if conn is not None:
            conn.execute("INSERT INTO closed (flag) VALUES (1)")

    def delete(self) -> None:
        self.release()
        shutil.rmtree(self.directory, ignore_errors=True)

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- choice ---------------------------------------------------------------------------------


def transport_kind(broker_url: str) -> str:
    """Redis streams where the broker is Redis (any machine reaching it can produce), the
    local spool otherwise (the embedded SQLite broker: one machine)."""
    return "redis" if broker_url.startswith(("redis://", "rediss://", "unix://")) else "spool"


def open_stream(
    kind: str,
    job_id: str,
    settings: Settings,
    capacity: int,
    broker_url: str | None = None,
    create: bool = False,
) -> RedisWindowStream | SpoolWindowStream:
    """The transport of online training job ``job_id``. Each process resolves the broker
    from its own settings (``broker_url`` overrides), so no address travels in job
    parameters. ``create``: the trainer makes the local spool; producers only open it."""
    if kind == "redis":
        if broker_url is None:
            from app.queue.broker import resolve_broker

            broker_url = resolve_broker(settings).url
        if transport_kind(broker_url) != "redis":
            raise RuntimeError(
                "this job streams through Redis, but this worker's broker is not Redis; "
                "run its producers on workers of the same broker"
            )
        return RedisWindowStream(broker_url, job_id, capacity)
    if kind == "spool":
        return SpoolWindowStream(spool_dir(settings, job_id), capacity, create)
    raise ValueError(f"transport must be one of {', '.join(KINDS)}; got {kind!r}")
