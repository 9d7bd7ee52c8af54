"""Wall-clock timing shared by the benchmark scripts (solver2d.py, train.py).

The scripts import it as ``_timing``: a script's own directory is first on ``sys.path``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    """Waits for queued CUDA work, so a timer read after it covers the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(
    fn: Callable[[], object], device: torch.device, min_calls: int, min_s: float
) -> float:
    """Median wall time of fn() in ms over at least min_calls calls and min_s seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_s:
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_alternating(
    runs: dict[str, Callable[[int], object]],
    device: torch.device,
    repeats: int,
    repeat_s: float,
    *,
    warmup: int,
    min_steps: int = 1,
) -> dict[str, list[float]]:
    """Per-step ms of each run (``run(steps)`` takes ``steps`` steps), one value per repeat.

    Every run first takes ``warmup`` untimed steps (plans, caches, optimiser state,
    first-touch allocations), then one timed probe of ``min_steps`` steps. The runs take
    turns in a rotating order so that load drifts on a shared machine hit all alike; each
    repeat runs the same number of steps (at least ``min_steps``) for all, sized from the
    probe so that the slowest takes about ``repeat_s`` seconds.
    """

    def once(run: Callable[[int], object], steps: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        run(steps)
        sync(device)
        return (time.perf_counter() - t0) * 1e3 / steps

    for run in runs.values():
        run(warmup)
    estimate = max(once(run, min_steps) for run in runs.values())
    steps = max(min_steps, round(repeat_s * 1e3 / estimate))
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(once(runs[name], steps))
    return times


def ms_range(times: list[float]) -> list[float]:
    """``[min, max]`` of per-step times, rounded to µs: the spread a row reports."""
    return [round(min(times), 3), round(max(times), 3)]
