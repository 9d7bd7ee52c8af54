"""Which job messages are still waiting in the broker's queues, read without taking them.

The outbox's sweep asks before it sends a message again: a queued job whose first message
is still in the queue, behind other jobs, is only waiting its turn and is not sent twice.
A message a worker has taken is no longer waiting (if that worker died before starting the
job, sending again is what runs it).

Redis keeps each queue as a list of JSON messages (one list per priority step; jobs are
sent without a priority, so the plain list); the embedded SQLAlchemy transport keeps them
as rows, visible until a worker takes them. Other brokers cannot be read without
consuming: ``None`` ("cannot tell").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import Engine

# kombu.transport.redis: a priority's list is "<queue>\x06\x16<priority>" (0 is "<queue>").
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
TIMEOUT_S = 2.0


def waiting_job_ids(broker_url: str, queues: Iterable[str]) -> set[str] | None:
    """The task ids (= job ids) of the messages waiting in ``queues``; None when the broker
    cannot tell. Raises when the broker does not answer."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return _redis(broker_url, list(queues))
    if broker_url.startswith("sqla+"):
        return _sql(broker_url.removeprefix("sqla+"), list(queues))
    return None


def waiting_order(broker_url: str, queue: str) -> list[str] | None:
    """The task ids (= job ids) waiting in ``queue``, the next to be taken first; None when
    the broker cannot tell. Raises when the broker does not answer. A job's index in this
    list is how many jobs are ahead of it in its queue."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return _redis_order(broker_url, queue)
    if broker_url.startswith("sqla+"):
        return _sql_order(broker_url.removeprefix("sqla+"), queue)
    return None


def _task_id(payload: str | bytes) -> str | None:
    try:
        message = json.loads(payload)
        return message["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None


def _redis(url: str, queues: list[str]) -> set[str]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.lrange(queue, 0, -1)
            for step in REDIS_PRIORITY_STEPS:
                pipe.lrange(f"{queue}{REDIS_PRIORITY_SEP}{step}", 0, -1)
        lists = pipe.execute()
    finally:
        client.close()
    return {i for items in lists for i in map(_task_id, items) if i is not None}


def _redis_order(url: str, queue: str) -> list[str]:
    """kombu pushes on the left of a list and workers pop from the right, lower priority
    steps first: the next message is the last of the plain list."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.lrange(queue, 0, -1)
        for step in REDIS_PRIORITY_STEPS:
            pipe.lrange(f"{queue}{REDIS_PRIORITY_SEP}{step}", 0, -1)
        lists = pipe.execute()
    finally:
        client.close()
    return [i for items in lists for i in map(_task_id, reversed(items)) if i is not None]


@lru_cache
def _engine(url: str) -> Engine:
    return create_engine(url, connect_args={"timeout": TIMEOUT_S} if "sqlite" in url else {})


def _sql(url: str, queues: list[str]) -> set[str]:
    query = text(
        "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
        "WHERE m.visible AND q.name IN :names"
    ).bindparams(bindparam("names", expanding=True))
    engine = _engine(url)
    with engine.connect() as conn:
        tables = engine.dialect.get_table_names(conn)
        if "kombu_message" not in tables or "kombu_queue" not in tables:
            return set()  # nothing was ever sent through this broker
        payloads = conn.execute(query, {"names": list(queues)}).scalars().all()
    return {i for i in map(_task_id, payloads) if i is not None}


def _sql_order(url: str, queue: str) -> list[str]:
    query = text(
        "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
        "WHERE m.visible AND q.name = :name ORDER BY m.id"
    )
    engine = _engine(url)
    with engine.connect() as conn:
        tables = engine.dialect.get_table_names(conn)
        if "kombu_message" not in tables or "kombu_queue" not in tables:
            return []
        payloads = conn.execute(query, {"name": queue}).scalars().all()
    return [i for i in map(_task_id, payloads) if i is not None]
