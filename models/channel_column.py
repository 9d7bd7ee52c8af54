"""A trained model as a column of a channel comparison: autoregressive rollout on the coarse
grid, one frame per ``advance``, with the wall time of each model call charged to the frames
it produced."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import torch


def _device_of(runner: Callable) -> torch.device | None:
    device = getattr(runner, "device", None)
    if device is not None:
        return torch.device(device)
    parameters = getattr(runner, "parameters", None)
    if callable(parameters):
        first = next(iter(parameters()), None)
        if first is not None:
            return first.device
    return None


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued GPU work on ``device`` (nothing on the CPU), so a timer around a call
    measures the call."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class ModelColumn:
    """``runner``: a callable model (a ``NeuralOperator`` or a ``models.quantize.
    InferenceModel``) mapping a window (1, history, 3, ox, oy, oz) to the next frames
    (1, out_steps, 3, ox, oy, oz); ``history`` the frames it needs.

    ``start(frames)`` takes the first ``history`` frames (1, 3, ox, oy, oz) (the filtered
    reference's: a model cannot warm itself up); each ``advance(interval)`` returns the next
    predicted frame, calling the model once per ``out_steps`` frames on the last ``history``
    frames (its own predictions included). ``interval`` is the model's own time step (that
    of its training data); the caller chooses the comparison's interval to match, so it is
    not used. ``last_ms``: the wall milliseconds charged to the frame ``advance`` returned,
    the call's time divided by the frames the call produced (GPU-synchronised).
    ``label`` and ``model_id`` name the model in tables."""

    def __init__(
        self,
        runner: Callable[[torch.Tensor], torch.Tensor],
        history: int,
        label: str | None = None,
        model_id: str | None = None,
    ):
        if int(history) < 1:
            raise ValueError(f"history must be at least 1 frame; got {history}")
        if isinstance(runner, torch.nn.Module):
            runner.eval()  # dropout and batch statistics off, as in ``models.rollout``
        self.runner = runner
        self.history = int(history)
        self.label = label
        self.model_id = model_id
        self.device = _device_of(runner)
        self.last_ms: float | None = None
        self._charge: float | None = None
        self._window: deque[torch.Tensor] = deque(maxlen=self.history)
        self._pending: deque[torch.Tensor] = deque()

    def start(self, frames: list[torch.Tensor]) -> None:
        """Take the first ``history`` frames, each (1, 3, ox, oy, oz)."""
        if len(frames) != self.history:
            raise ValueError(f"the model needs {self.history} start frame(s); got {len(frames)}")
        self._window.clear()
        self._pending.clear()
        for frame in frames:
            self._window.append(frame.detach())
        self.last_ms = None

    def advance(self, interval: float | None = None) -> torch.Tensor:
        """The next predicted frame (1, 3, ox, oy, oz)."""
        if len(self._window) < self.history:
            raise RuntimeError("the model column has not been started; call start() first")
        if not self._pending:
            window = torch.stack(list(self._window), dim=1)
            if self.device is not None:
                window = window.to(self.device)
            synchronize(self.device)
            began = time.perf_counter()
            with torch.no_grad():
                out = self.runner(window)
            synchronize(self.device)
            elapsed = 1000.0 * (time.perf_counter() - began)
            if out.ndim != window.ndim or tuple(out.shape[2:]) != tuple(window.shape[2:]):
                raise ValueError(
                    f"the model maps {tuple(window.shape)} to {tuple(out.shape)}; a rollout "
                    "needs frames shaped like its input frames"
                )
            self._pending.extend(out.unbind(dim=1))
            self._charge = elapsed / out.shape[1]
        frame = self._pending.popleft()
        self._window.append(frame)
        self.last_ms = self._charge
        return frame
