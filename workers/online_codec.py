"""The wire format of one streamed training window (online training): a small JSON header
and the raw float32 bytes of the frames, never pickle.

header = {"v": 1, "dtype": "<f4", "shape": [frames, channels, *space],
          "trajectory": i, "start": k}
data   = the little-endian float32 values, C order.

``trajectory`` is the producer's trajectory index (its solver seed derives from it) and
``start`` the window's first snapshot: the trainer uses the pair to drop a window a
replaced producer sends twice and to count the trajectories it has seen. The decoder reads
the message as untrusted (whatever reaches the transport's key could have been written by
anyone who reaches the broker): the header is bounded, the shape is checked against the
byte count and a size limit before any array is made.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

VERSION = 1
DTYPE = "<f4"
MAX_HEADER_BYTES = 1024
MAX_DIMS = 8
MAX_AXIS = 1 << 16


class BadWindow(ValueError):
    """A message that is not a window this trainer can use; the text says why."""


def encode_window(
    frames: np.ndarray | torch.Tensor, trajectory: int, start: int
) -> tuple[bytes, bytes]:
    """``(header, data)`` of one window of frames ``(frames, channels, *space)``."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().to("cpu").numpy()
    array = np.ascontiguousarray(frames, dtype=DTYPE)
    header = {
        "v": VERSION,
        "dtype": DTYPE,
        "shape": list(array.shape),
        "trajectory": int(trajectory),
        "start": int(start),
    }
    return json.dumps(header, separators=(",", ":")).encode(), array.tobytes()


def _count(value: object, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
        raise BadWindow(f"{name} must be an integer in [0, {upper}], got {value!r}")
    return value


def decode_window(header: bytes, data: bytes, max_bytes: int) -> tuple[int, int, torch.Tensor]:
    """``(trajectory, start, frames)`` of a message; raises BadWindow for anything else."""
    if len(header) > MAX_HEADER_BYTES:
        raise BadWindow(f"the header has {len(header)} bytes, more than {MAX_HEADER_BYTES}")
    try:
        meta = json.loads(header)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWindow(f"the header is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("v") != VERSION:
        raise BadWindow(f"the header is not a version-{VERSION} window header")
    if meta.get("dtype") != DTYPE:
        raise BadWindow(f"windows are {DTYPE} (little-endian float32), got {meta.get('dtype')!r}")
    shape = meta.get("shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= MAX_DIMS:
        raise BadWindow(f"the shape must list 1 to {MAX_DIMS} axes, got {shape!r}")
    shape = [_count(n, "every axis", MAX_AXIS) for n in shape]
    expected = math.prod(shape) * 4
    if expected > max_bytes:
        raise BadWindow(f"the window declares {expected} bytes, more than {max_bytes}")
    if len(data) != expected:
        raise BadWindow(f"the shape {shape} needs {expected} bytes, the data has {len(data)}")
    trajectory = _count(meta.get("trajectory"), "trajectory", 2**62)
    start = _count(meta.get("start"), "start", 2**62)
    frames = np.frombuffer(data, dtype=DTYPE).reshape(shape).astype(np.float32, copy=True)
    return trajectory, start, torch.from_numpy(frames)
