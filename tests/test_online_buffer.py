"""The online trainer's buffer policies (models/online_buffer.py): what each hands out, how
often, in which order, what it evicts, and that it never holds more than its capacity."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
import torch

from models.online_buffer import (
    FifoBuffer,
    FiroBuffer,
    ReservoirBuffer,
    make_buffer,
)


def stream_through(buffer, n_items: int, batch: int) -> tuple[list[int], int]:
    """Push items 0…n−1 into the buffer as far as it takes them, drawing a batch whenever a
    put is refused or nothing is left to put (draining at the end); returns every drawn item
    in order and the largest size the buffer reached."""
    drawn: list[int] = []
    largest = 0
    pending = list(range(n_items))
    while pending or len(buffer):
        while pending and buffer.put(pending[0]):
            pending.pop(0)
            largest = max(largest, len(buffer))
        got = buffer.sample(batch, draining=not pending)
        if got is None:
            assert pending, "a buffer refusing puts must be ready to sample"
            continue
        drawn += got
        if isinstance(buffer, ReservoirBuffer) and buffer.max_seen is None and not pending:
            break  # without a limit a reservoir would hand out its last samples forever
    return drawn, largest


def test_fifo_hands_every_sample_out_once_in_arrival_order():
    buffer = FifoBuffer(capacity=8, min_fill=4)
    drawn, largest = stream_through(buffer, 50, batch=3)
    assert drawn == list(range(50))
    assert largest == 8 and buffer.added == 50 and buffer.drawn == 50


def test_fifo_refuses_a_put_when_full_and_a_batch_below_min_fill():
    buffer = FifoBuffer(capacity=4, min_fill=3)
    assert [buffer.put(i) for i in range(5)] == [True, True, True, True, False]
    assert buffer.room() == 0
    assert buffer.sample(2) == [0, 1]
    # Two left, below the watermark: no batch until the stream has ended.
    assert buffer.sample(2) is None
    assert buffer.sample(5, draining=True) == [2, 3]
    assert buffer.sample(1, draining=True) is None


def test_firo_hands_every_sample_out_once_but_not_in_arrival_order():
    buffer = FiroBuffer(capacity=8, min_fill=4, generator=torch.Generator().manual_seed(1))
    drawn, largest = stream_through(buffer, 200, batch=3)
    assert sorted(drawn) == list(range(200))  # each exactly once
    assert largest == 8
    assert drawn != list(range(200))
    # Random out: a later sample is often drawn before an earlier one (FIFO: never), and
    # how long a sample waits varies (FIFO: each waits the same).
    overtaken = sum(later < earlier for earlier, later in pairwise(drawn))
    assert overtaken > 40
    lag = [position - item for position, item in enumerate(drawn)]
    assert len(set(lag)) > 5


def test_firo_draws_uniformly():
    # Ten samples held; over many independent draws of one, each comes first about 1/10 of
    # the time (binomial: mean 400, sd 19; 5 sd either side).
    counts = Counter()
    generator = torch.Generator().manual_seed(0)
    for _ in range(4000):
        buffer = FiroBuffer(capacity=10, min_fill=10, generator=generator)
        for i in range(10):
            buffer.put(i)
        counts[buffer.sample(1)[0]] += 1
    assert set(counts) == set(range(10))
    assert all(abs(c - 400) < 5 * 19 for c in counts.values()), counts


def test_reservoir_with_max_seen_hands_each_sample_out_exactly_that_often():
    buffer = ReservoirBuffer(
        capacity=6, min_fill=6, generator=torch.Generator().manual_seed(3), max_seen=3
    )
    drawn, largest = stream_through(buffer, 40, batch=4)
    counts = Counter(drawn)
    assert set(counts) == set(range(40))
    # With max_seen = 3 a sample can also be replaced by a newer one once it was drawn at
    # least once: it is then seen 1 or 2 times. Never 0 times, never more than 3.
    assert min(counts.values()) >= 1 and max(counts.values()) <= 3
    assert buffer.retired + buffer.evicted == 40
    assert sum(counts.values()) == buffer.drawn
    assert largest == 6


def test_reservoir_never_evicts_an_unseen_sample_and_refuses_when_all_are_unseen():
    generator = torch.Generator().manual_seed(5)
    buffer = ReservoirBuffer(capacity=5, min_fill=5, generator=generator)
    assert all(buffer.put(i) for i in range(5))
    assert buffer.put(5) is False  # all five unseen: back-pressure
    assert buffer.room() == 0
    first = buffer.sample(2)
    assert len(set(first)) == 2 and buffer.seen_counts().count(1) == 2
    assert buffer.room() == 2
    # Two new samples replace exactly the two that were drawn; the unseen three stay.
    assert buffer.put(10) and buffer.put(11)
    assert buffer.put(12) is False
    held = set(buffer.items())
    assert held == ({0, 1, 2, 3, 4} - set(first)) | {10, 11}
    assert buffer.evicted == 2 and len(buffer) == 5


def test_reservoir_keeps_samples_and_draws_them_uniformly_with_repeats():
    buffer = ReservoirBuffer(capacity=10, min_fill=10, generator=torch.Generator().manual_seed(2))
    for i in range(10):
        buffer.put(i)
    counts = Counter()
    for _ in range(800):
        batch = buffer.sample(5)
        assert len(set(batch)) == 5  # distinct within a batch
        counts.update(batch)
    assert len(buffer) == 10  # nothing left: samples stay in a reservoir
    # 4000 draws over 10 samples: 400 each, binomial sd 19 (tighter here: without
    # replacement inside a batch); 5 sd either side.
    assert all(abs(c - 400) < 5 * 19 for c in counts.values()), counts
    assert buffer.seen_counts() == [counts[i] for i in buffer.items()]


def test_min_fill_holds_the_first_batch_back():
    for policy in ("fifo", "firo", "reservoir"):
        buffer = make_buffer(policy, capacity=10, min_fill=6)
        for i in range(5):
            buffer.put(i)
        assert buffer.sample(2) is None, policy
        buffer.put(5)
        assert len(buffer.sample(2)) == 2, policy


def test_bad_settings_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="min_fill"):
        make_buffer("fifo", capacity=4, min_fill=5)
    with pytest.raises(ValueError, match="one of fifo, firo, reservoir"):
        make_buffer("lifo", capacity=4, min_fill=1)
    with pytest.raises(ValueError, match="max_seen"):
        make_buffer("reservoir", capacity=4, min_fill=1, max_seen=0)
