"""The transport of online training (workers/online_stream.py) and its wire format
(workers/online_codec.py): a producer in another process is held back while the queue is
full and goes on as the trainer takes windows; windows arrive in order, bit for bit; a
closed stream stops a waiting producer; a malformed message is refused with a sentence.
Both transports: a Redis stream on a real Redis (the test database), and the local SQLite
spool of the embedded default."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from app.settings import Settings
from tests.conftest import ROOT
from workers.online_codec import BadWindow, decode_window, encode_window
from workers.online_stream import (
    CLOSED,
    TTL_S,
    open_stream,
    redis_keys,
    spool_dir,
    transport_kind,
)

CAPACITY = 4
WINDOW = (2, 1, 3, 3)

PRODUCER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from app.settings import Settings
    from workers.online_codec import encode_window
    from workers.online_stream import open_stream, push_all

    kind, job_id, data_dir, url, n = sys.argv[1:6]
    stream = open_stream(kind, job_id, Settings(data_dir=data_dir), capacity=4, broker_url=url)
    messages = [
        encode_window(np.full((2, 1, 3, 3), i, np.float32) + np.arange(9).reshape(3, 3) / 10,
                      trajectory=i // 5, start=i % 5)
        for i in range(int(n))
    ]
    outcome = push_all(stream, messages, lambda: False)
    print("pushed", outcome.pushed, "closed", outcome.closed, "waited", outcome.waited_s)
    """
)


def expected_frames(i: int) -> np.ndarray:
    return np.full(WINDOW, i, np.float32) + np.arange(9).reshape(3, 3).astype(np.float32) / 10


@pytest.fixture(params=["redis", "spool"])
def transport(request, tmp_path):
    """(kind, job id, settings, broker url) of a fresh stream; the trainer's side made."""
    job_id = f"job{time.monotonic_ns()}"
    settings = Settings(data_dir=tmp_path)
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "sqla+sqlite://"
    trainer = open_stream(request.param, job_id, settings, CAPACITY, broker_url=url, create=True)
    yield request.param, job_id, settings, url, trainer
    trainer.delete()
    trainer.release()


def start_producer(kind: str, job_id: str, settings: Settings, url: str, n: int):
    return subprocess.Popen(
        [sys.executable, "-c", PRODUCER, kind, job_id, str(settings.data_dir), url, str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_full_stream_holds_the_producer_back_until_the_trainer_takes_windows(transport):
    kind, job_id, settings, url, trainer = transport
    n = 12
    producer = start_producer(kind, job_id, settings, url, n)
    try:
        wait_until(lambda: len(trainer) == CAPACITY)
        time.sleep(1.0)
        # Held back: still running, and the queue never holds more than its capacity.
        assert producer.poll() is None
        assert len(trainer) == CAPACITY
        received = []
        while len(received) < n:
            got = trainer.pull(3)
            assert len(trainer) <= CAPACITY
            received += got
            if not got:
                time.sleep(0.05)
        out, _ = producer.communicate(timeout=30)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == 0, out
    assert out.split()[:4] == ["pushed", str(n), "closed", "False"]
    assert float(out.split()[5]) > 0.5  # it did wait for room
    decoded = [decode_window(h, d, max_bytes=10_000) for h, d in received]
    assert [(t, s) for t, s, _ in decoded] == [(i // 5, i % 5) for i in range(n)]
    for i, (_, _, frames) in enumerate(decoded):
        assert frames.dtype == torch.float32 and tuple(frames.shape) == WINDOW
        assert np.array_equal(frames.numpy(), expected_frames(i))  # bit for bit


def test_closing_the_stream_stops_a_waiting_producer(transport):
    kind, job_id, settings, url, trainer = transport
    producer = start_producer(kind, job_id, settings, url, 10)
    try:
        wait_until(lambda: len(trainer) == CAPACITY)
        trainer.close()
        out, _ = producer.communicate(timeout=30)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert out.split()[:4] == ["pushed", str(CAPACITY), "closed", "True"], out
    assert trainer.push([encode_window(np.zeros(WINDOW), 0, 0)]) == CLOSED


def test_the_redis_stream_is_bounded_namespaced_and_expires(redis_url, tmp_path):
    import redis

    client = redis.Redis.from_url(redis_url)
    settings = Settings(data_dir=tmp_path)
    stream = open_stream("redis", "abc123", settings, 3, broker_url=redis_url, create=True)
    message = encode_window(np.zeros(WINDOW), 0, 0)
    assert stream.push([message] * 5) == 3  # takes what fits
    assert stream.push([message]) == 0
    key, closed_key = redis_keys("abc123")
    assert "abc123" in key and client.xlen(key) == 3
    assert 0 < client.ttl(key) <= TTL_S  # a job that dies for good leaves nothing forever
    assert len(stream.pull(2)) == 2 and stream.push([message] * 5) == 2
    stream.close()
    assert 0 < client.ttl(closed_key) <= TTL_S
    stream.delete()
    assert not client.exists(key)
    client.delete(closed_key)


def test_the_spool_lives_under_the_scratch_folder_and_goes_with_delete(tmp_path):
    settings = Settings(data_dir=tmp_path)
    stream = open_stream("spool", "j1", settings, 3, create=True)
    assert spool_dir(settings, "j1") == tmp_path.resolve() / "scratch" / "online" / "j1"
    assert stream.push([encode_window(np.zeros(WINDOW), 0, 0)] * 4) == 3
    stream.delete()
    assert not spool_dir(settings, "j1").exists()
    # A producer opening the stream of a trainer that has ended is told it is closed, and
    # creates nothing.
    late = open_stream("spool", "j1", settings, 3)
    assert late.push([encode_window(np.zeros(WINDOW), 0, 0)]) == CLOSED
    assert not spool_dir(settings, "j1").exists()


def test_the_transport_follows_the_broker():
    assert transport_kind("redis://127.0.0.1:6379/7") == "redis"
    assert transport_kind("sqla+sqlite:////tmp/broker.sqlite") == "spool"


def test_a_window_round_trips_bit_for_bit():
    frames = torch.randn(3, 1, 8, 8)
    header, data = encode_window(frames, trajectory=41, start=7)
    assert len(data) == frames.numel() * 4
    trajectory, start, back = decode_window(header, data, max_bytes=10_000)
    assert (trajectory, start) == (41, 7) and torch.equal(back, frames)


@pytest.mark.parametrize(
    ("header", "data", "sentence"),
    [
        (b"not json", b"", "not JSON"),
        (b'{"v": 2}', b"", "version-1"),
        (b'{"v":1,"dtype":"<f8","shape":[1],"trajectory":0,"start":0}', b"\0" * 8, "float32"),
        (b'{"v":1,"dtype":"<f4","shape":[2,2],"trajectory":0,"start":0}', b"\0" * 12, "needs 16"),
        (b'{"v":1,"dtype":"<f4","shape":[5000,5000],"trajectory":0,"start":0}', b"", "more than"),
        (b'{"v":1,"dtype":"<f4","shape":[1],"trajectory":-1,"start":0}', b"\0" * 4, "trajectory"),
        (b'{"v":1,"dtype":"<f4","shape":[1],"trajectory":true,"start":0}', b"\0" * 4, "trajectory"),
        (b'{"v":1,"dtype":"<f4","shape":"1","trajectory":0,"start":0}', b"\0" * 4, "axes"),
        (b" " * 2000, b"", "more than 1024"),
    ],
)
def test_a_malformed_window_is_refused_with_a_sentence(header, data, sentence):
    with pytest.raises(BadWindow, match=sentence):
        decode_window(header, data, max_bytes=10_000)
