"""A channel comparison: the filtered fine reference, coarse LES closures and trained models
stepped side by side on one coarse grid, scored frame by frame and by their wall-unit
statistics.

Every column reports cell-centred velocity (1, 3, ox, oy, oz) on the comparison grid (y
points ``y``), so errors and statistics compare point by point. Per step: relative L2
against the filtered reference, ‖u − u_ref‖₂/‖u_ref‖₂ over all points and components;
kinetic energy and bulk velocity (``physics.channel.skill``); the wall time of each advance
(ms, GPU-synchronised); a ``Guard`` that stops a column that has blown up; running and
windowed statistics of the reference and of each column still going.
"""

from __future__ import annotations

import math
import statistics as pystats
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from models.channel_column import synchronize
from physics.channel.skill import (
    PROFILES,
    Guard,
    WindowedStatistics,
    bulk_velocity,
    bulk_weights,
    kinetic_energy,
    profile_errors,
)

# The fractions of the run at which the summary reports each column's relative L2.
REPORT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
# Statistics events per run (besides the last step).
STATS_EVENTS = 20


class Column(Protocol):
    def start(self, *args: Any) -> Any: ...

    def advance(self, interval: float) -> torch.Tensor: ...


def _number(value: Any) -> float | None:
    """A JSON-ready float: None for NaN and ±inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def time_key(t: float) -> str:
    """The key of a time in ``rel_l2_at`` (6 significant digits, so 0.1·3 reads "0.3")."""
    return f"{t:.6g}"


class ChannelComparison:
    """``reference``: a ``physics.channel.columns.FilteredReference`` (already started, or
    started by ``run(initial=...)``). ``columns``: key → column, a ``CoarseLES`` (key
    ``les:<closure>``) or a ``models.channel_column.ModelColumn`` (key ``model:<i>``; told
    apart by its ``history`` attribute: the engine feeds it the first ``history`` reference
    frames, which are also its frames for those steps, with no ms). ``y`` (oy,), ``nu``,
    ``lx``, ``lz`` the comparison grid's wall-normal points, viscosity and box; ``window``
    the frames of the windowed statistics; ``guard`` the blow-up test; ``device`` where the
    frames are compared."""

    def __init__(
        self,
        reference: Any,
        columns: Mapping[str, Column],
        y: Any,
        nu: float,
        lx: float,
        lz: float,
        window: int,
        guard: Guard,
        spectra_at_yplus: Any = (5, 15, 30, 100),
        device: Any = "cpu",
    ):
        self.reference = reference
        self.columns = dict(columns)
        self.guard = guard
        self.device = torch.device(device)
        self.window = int(window)
        self.weights = bulk_weights(y)

        def accumulator() -> WindowedStatistics:
            return WindowedStatistics(y, nu, lx, lz, window, spectra_at_yplus)

        self.stats = {"reference": accumulator()} | {k: accumulator() for k in self.columns}
        self.status = dict.fromkeys(self.columns, "running")
        self.message: dict[str, str | None] = dict.fromkeys(self.columns)
        self.stopped_at: dict[str, int | None] = dict.fromkeys(self.columns)
        self.ms: dict[str, list[float]] = {k: [] for k in self.columns}
        self.reference_ms: list[float] = []
        self.rel_l2: dict[str, dict[int, float | None]] = {k: {} for k in self.columns}
        self.steps = 0
        self.interval = 0.0
        self.last_step: int | None = None

    # -- the run -------------------------------------------------------------------------------

    def _timed(self, advance: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        synchronize(self.device)
        began = time.perf_counter()
        out = advance()
        synchronize(self.device)
        return out, 1000.0 * (time.perf_counter() - began)

    def _stop(self, key: str, step: int, status: str, message: str) -> None:
        self.status[key] = status
        self.message[key] = message
        self.stopped_at[key] = step

    def _column_frame(
        self, key: str, column: Column, step: int, interval: float, seen: list[torch.Tensor]
    ) -> tuple[torch.Tensor | None, float | None]:
        """The column's frame at ``step`` and the ms charged to it (None: not measured)."""
        history = getattr(column, "history", None)
        try:
            if history is not None:  # a model: reference frames until it has its window
                if step < history:
                    if step == history - 1:
                        column.start([f.clone() for f in seen[:history]])
                    return seen[step], None
                # The column times its own model calls: a call that makes out_steps
                # frames is charged to each of them in equal parts.
                frame = column.advance(interval)
                return frame, getattr(column, "last_ms", None)
            if step == 0:
                return column.start(seen[0]), None
            return self._timed(lambda: column.advance(interval))
        except FloatingPointError as exc:  # the solver's flow stopped being finite
            self._stop(key, step, "diverged", str(exc))
        except Exception as exc:  # one broken column must not end the others
            self._stop(key, step, "failed", f"{type(exc).__name__}: {exc}")
        return None, None

    def run(
        self,
        steps: int,
        interval: float,
        on_step: Callable[[dict[str, Any]], None],
        should_stop: Callable[[], Any] | None = None,
        initial: torch.Tensor | None = None,
    ) -> None:
        """Steps 0 (the initial condition) to ``steps``, ``interval`` apart in time.

        ``initial``: a centred field for ``reference.start`` (fine or coarse grid); when
        None the reference must have been started. ``should_stop()`` is called before each
        step: it may raise (a cancelled job) or return true to end the run early.
        ``on_step(record)`` gets ``{"step", "t", "frames", "metrics", "stats_due"}``:
        ``frames`` maps "reference" and each column key to its frame (1, 3, ox, oy, oz) on
        ``device`` (None once the column has stopped), ``metrics`` the metrics event payload
        (non-finite numbers as None), ``stats_due`` true every max(1, steps // 20) steps and
        at the last step (``statistics(key)`` then has the numbers to report).
        """
        if steps < 0 or not interval > 0:
            raise ValueError(f"need steps ≥ 0 and interval > 0; got {steps}, {interval}")
        self.steps, self.interval = int(steps), float(interval)
        every = max(1, self.steps // STATS_EVENTS)
        history = max((getattr(c, "history", 1) for c in self.columns.values()), default=1)
        seen: list[torch.Tensor] = []  # the first reference frames, the models' warm-up
        for step in range(self.steps + 1):
            if should_stop is not None and should_stop():
                break
            t = step * self.interval
            ref_ms = None
            if step == 0:
                if initial is not None:
                    ref = self.reference.start(initial.to(self.device))
                elif getattr(self.reference, "coarse", None) is not None:
                    ref = self.reference.coarse
                else:
                    raise RuntimeError("the reference has not been started and no initial field")
            else:
                ref, ref_ms = self._timed(lambda: self.reference.advance(self.interval))
                self.reference_ms.append(ref_ms)
            ref = ref.to(self.device)
            if len(seen) < history:
                seen.append(ref)
            self.stats["reference"].update(ref)
            metrics: dict[str, Any] = {
                "step": step,
                "t": t,
                "reference": {
                    "energy": _number(kinetic_energy(ref, self.weights)[0]),
                    "bulk": _number(bulk_velocity(ref, self.weights)[0]),
                    "ms": _number(ref_ms),
                },
                "columns": {},
            }
            frames: dict[str, torch.Tensor | None] = {"reference": ref}
            for key, column in self.columns.items():
                metrics["columns"][key] = self._step_column(key, column, step, seen, ref, frames)
            self.last_step = step
            on_step(
                {
                    "step": step,
                    "t": t,
                    "frames": frames,
                    "metrics": metrics,
                    "stats_due": step % every == 0 or step == self.steps,
                }
            )

    def _step_column(
        self,
        key: str,
        column: Column,
        step: int,
        seen: list[torch.Tensor],
        ref: torch.Tensor,
        frames: dict[str, torch.Tensor | None],
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {"rel_l2": None, "energy": None, "bulk": None, "ms": None}
        frame = None
        if self.status[key] == "running":
            frame, ms = self._column_frame(key, column, step, self.interval, seen)
        if frame is not None:
            frame = frame.to(device=self.device, dtype=ref.dtype)
            diff = (frame - ref).to(torch.float64).flatten().norm()
            rel = float(diff / ref.to(torch.float64).flatten().norm())
            self.rel_l2[key][step] = _number(rel)
            entry |= {
                "rel_l2": _number(rel),
                "energy": _number(kinetic_energy(frame, self.weights)[0]),
                "bulk": _number(bulk_velocity(frame, self.weights)[0]),
                "ms": _number(ms),
            }
            if ms is not None:
                self.ms[key].append(ms)
            problem = self.guard.check(frame, ref, self.weights)
            if problem is not None:
                self._stop(key, step, "diverged", problem)
            else:
                self.stats[key].update(frame)
        else:
            self.rel_l2[key][step] = None
        frames[key] = frame
        entry |= {"status": self.status[key], "message": self.message[key]}
        return entry

    # -- results -------------------------------------------------------------------------------

    def statistics(self, key: str) -> dict[str, dict[str, Any] | None]:
        """``{"running", "window"}``: the ``to_dict()`` of the running and windowed statistics
        of "reference" or a column key (None where not computable)."""
        accumulator = self.stats[key]
        running, windowed = accumulator.running(), accumulator.windowed()
        return {
            "running": running.to_dict() if running is not None else None,
            "window": windowed.to_dict() if windowed is not None else None,
        }

    def report_steps(self) -> list[int]:
        """The steps of ``rel_l2_at``: a quarter, half, three quarters and all of the run."""
        if self.steps == 0:
            return [0]
        return sorted({max(1, round(self.steps * f)) for f in REPORT_FRACTIONS})

    def _errors(self, key: str, which: str) -> dict[str, float | None]:
        if self.stopped_at[key] is not None:  # its statistics cover a shorter run
            return dict.fromkeys(PROFILES)
        mine = getattr(self.stats[key], which)()
        ref = getattr(self.stats["reference"], which)()
        if mine is None or ref is None:
            return dict.fromkeys(PROFILES)
        return {name: _number(e) for name, e in profile_errors(mine, ref).items()}

    def summary(self) -> dict[str, Any]:
        """The summary event payload: one row per column with its status, where it stopped,
        profile errors of its running (``errors``) and windowed (``window_errors``)
        statistics against the reference's (None for a stopped column), its relative L2 at
        the ``report_times``, its median ms per step and its speedup over each closure
        column (closure median ms / its median ms)."""
        medians = {k: (pystats.median(v) if v else None) for k, v in self.ms.items()}
        closures = {
            getattr(c, "name", k): k
            for k, c in self.columns.items()
            if getattr(c, "history", None) is None
        }
        steps = self.report_steps()
        rows = []
        for key, column in self.columns.items():
            is_model = getattr(column, "history", None) is not None
            mine = medians[key]
            speedup = {}
            for closure, other in closures.items():
                theirs = medians[other]
                ok = mine is not None and mine > 0 and theirs is not None
                speedup[closure] = theirs / mine if ok else None
            status = self.status[key]
            rows.append(
                {
                    "key": key,
                    "kind": "model" if is_model else "closure",
                    "label": getattr(column, "label", None) or key,
                    "model_id": getattr(column, "model_id", None) if is_model else None,
                    "closure": None if is_model else getattr(column, "name", None),
                    "status": "completed" if status == "running" else status,
                    "message": self.message[key],
                    "stopped_at": self.stopped_at[key],
                    "errors": self._errors(key, "running"),
                    "window_errors": self._errors(key, "windowed"),
                    "rel_l2_at": {
                        time_key(s * self.interval): self.rel_l2[key].get(s) for s in steps
                    },
                    "ms": mine,
                    "speedup": speedup,
                }
            )
        return {
            "geometry": "channel",
            "rows": rows,
            "reference_ms": pystats.median(self.reference_ms) if self.reference_ms else None,
            "report_times": [s * self.interval for s in steps],
        }
