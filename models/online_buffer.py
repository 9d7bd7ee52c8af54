"""The trainer's side of online training: a bounded buffer of training samples that solver
runs stream in while the model trains, with a policy for which samples a batch draws and
how often one sample may be drawn.

Streaming straight from solvers makes consecutive samples strongly correlated (windows of
one trajectory, trajectories of one solver batch); the buffer decorrelates them, and its
bound is what holds the producers back when training is slower than generation
(back-pressure: a ``put`` that the policy refuses is retried later, so the transport fills
and the producers wait). The policies follow Melissa's training buffers (Meyer et al.,
"High throughput training of deep surrogates from large ensemble runs", SC '23):

- ``fifo``: first in, first out. A batch takes the oldest samples; each sample is drawn
  exactly once, in arrival order. No decorrelation: the baseline.
- ``firo``: first in, random out. A batch takes samples uniformly at random; each is drawn
  exactly once and leaves the buffer when drawn.
- ``reservoir``: a batch draws samples uniformly at random and they stay (so a sample is
  seen several times while data arrive slower than they are consumed); a new sample that
  finds the buffer full replaces a uniformly chosen sample that has already been drawn at
  least once, so no sample leaves unseen, and is refused when every held sample is unseen.
  ``max_seen`` (optional) removes a sample once drawn that many times.

Every policy refuses batches while it holds fewer than ``min_fill`` samples (Melissa's
watermark): the first batches would otherwise all come from the first few trajectories.
Once the stream has ended (``draining``) the rest is drawn down to the last sample.

Plain Python and torch: the items are opaque (the trainer stores window tensors); the
random choices come from a ``torch.Generator`` so a run is reproducible for a seed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

POLICIES = ("fifo", "firo", "reservoir")


class SampleBuffer:
    """A bounded buffer of samples; subclasses decide what ``sample`` draws and what a
    ``put`` into a full buffer does. Counters: ``added`` (puts accepted), ``drawn`` (samples
    handed out, with repeats), ``evicted`` (samples that left before being drawn ``max_seen``
    times: replaced by a newer one)."""

    policy = ""
    #: How often one sample may be drawn (None: no limit).
    max_seen: int | None = 1

    def __init__(self, capacity: int, min_fill: int, generator: torch.Generator | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if not 1 <= min_fill <= capacity:
            raise ValueError(f"min_fill must be in [1, capacity={capacity}], got {min_fill}")
        self.capacity = capacity
        self.min_fill = min_fill
        self.generator = generator if generator is not None else torch.Generator()
        self.added = 0
        self.drawn = 0
        self.evicted = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def room(self) -> int:
        """How many ``put`` calls would succeed now, one after another."""
        return self.capacity - len(self)

    def put(self, item: Any) -> bool:
        """Add one sample; False when the policy refuses it now (the caller keeps it and
        tries again after the next batch)."""
        raise NotImplementedError

    def ready(self, draining: bool = False) -> bool:
        """Whether a batch may be drawn: ``min_fill`` samples held, or any once the stream
        has ended."""
        return len(self) >= self.min_fill or (draining and len(self) > 0)

    def sample(self, n: int, draining: bool = False) -> list[Any] | None:
        """Up to ``n`` distinct samples (fewer only when fewer are held), or None when the
        buffer is not ``ready``."""
        if n < 1:
            raise ValueError(f"a batch holds at least one sample, got {n}")
        if not self.ready(draining):
            return None
        items = self._draw(min(n, len(self)))
        self.drawn += len(items)
        return items

    def _draw(self, k: int) -> list[Any]:
        raise NotImplementedError

    def _choose(self, k: int, population: int) -> list[int]:
        """``k`` distinct indices in ``range(population)``, uniformly at random."""
        return torch.randperm(population, generator=self.generator)[:k].tolist()

    def items(self) -> list[Any]:
        """What the buffer holds now (the trainer's input statistics read it once)."""
        raise NotImplementedError


class FifoBuffer(SampleBuffer):
    policy = "fifo"

    def __init__(self, capacity: int, min_fill: int, generator: torch.Generator | None = None):
        super().__init__(capacity, min_fill, generator)
        self._queue: deque[Any] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: Any) -> bool:
        if len(self._queue) >= self.capacity:
            return False
        self._queue.append(item)
        self.added += 1
        return True

    def _draw(self, k: int) -> list[Any]:
        return [self._queue.popleft() for _ in range(k)]

    def items(self) -> list[Any]:
        return list(self._queue)


class FiroBuffer(SampleBuffer):
    policy = "firo"

    def __init__(self, capacity: int, min_fill: int, generator: torch.Generator | None = None):
        super().__init__(capacity, min_fill, generator)
        self._items: list[Any] = []

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any) -> bool:
        if len(self._items) >= self.capacity:
            return False
        self._items.append(item)
        self.added += 1
        return True

    def _draw(self, k: int) -> list[Any]:
        chosen = self._choose(k, len(self._items))
        out = [self._items[i] for i in chosen]
        # Remove the drawn ones: move the tail into their slots (the order held is not a
        # promise of this policy, so O(1) removals are fine).
        for i in sorted(chosen, reverse=True):
            last = self._items.pop()
            if i < len(self._items):
                self._items[i] = last
        return out

    def items(self) -> list[Any]:
        return list(self._items)


class ReservoirBuffer(SampleBuffer):
    policy = "reservoir"

    def __init__(
        self,
        capacity: int,
        min_fill: int,
        generator: torch.Generator | None = None,
        max_seen: int | None = None,
    ):
        super().__init__(capacity, min_fill, generator)
        if max_seen is not None and max_seen < 1:
            raise ValueError(f"max_seen must be at least 1 (or None), got {max_seen}")
        self.max_seen = max_seen
        self._items: list[Any] = []
        self._seen: list[int] = []
        self.retired = 0  # samples removed after being drawn max_seen times

    def __len__(self) -> int:
        return len(self._items)

    def _evictable(self) -> list[int]:
        return [i for i, seen in enumerate(self._seen) if seen > 0]

    def room(self) -> int:
        # A full buffer takes one new sample per sample already drawn at least once.
        return self.capacity - len(self._items) + len(self._evictable())

    def put(self, item: Any) -> bool:
        if len(self._items) < self.capacity:
            self._items.append(item)
            self._seen.append(0)
            self.added += 1
            return True
        evictable = self._evictable()
        if not evictable:
            return False  # every sample held is still unseen: back-pressure
        slot = evictable[int(torch.randint(len(evictable), (1,), generator=self.generator))]
        self._items[slot] = item
        self._seen[slot] = 0
        self.added += 1
        self.evicted += 1
        return True

    def _draw(self, k: int) -> list[Any]:
        chosen = self._choose(k, len(self._items))
        out = [self._items[i] for i in chosen]
        for i in chosen:
            self._seen[i] += 1
        if self.max_seen is not None:
            spent = [i for i in chosen if self._seen[i] >= self.max_seen]
            for i in sorted(spent, reverse=True):
                self._items[i] = self._items[-1]
                self._seen[i] = self._seen[-1]
                self._items.pop()
                self._seen.pop()
            self.retired += len(spent)
        return out

    def seen_counts(self) -> list[int]:
        """How often each held sample has been drawn, in the buffer's order."""
        return list(self._seen)

    def items(self) -> list[Any]:
        return list(self._items)


def make_buffer(
    policy: str,
    capacity: int,
    min_fill: int,
    generator: torch.Generator | None = None,
    max_seen: int | None = None,
) -> SampleBuffer:
    """The buffer of ``policy`` (one of ``POLICIES``); ``max_seen`` applies to the
    reservoir only (FIFO and FIRO hand each sample out once)."""
    if policy == "fifo":
        return FifoBuffer(capacity, min_fill, generator)
    if policy == "firo":
        return FiroBuffer(capacity, min_fill, generator)
    if policy == "reservoir":
        return ReservoirBuffer(capacity, min_fill, generator, max_seen)
    raise ValueError(f"buffer policy must be one of {', '.join(POLICIES)}; got {policy!r}")
