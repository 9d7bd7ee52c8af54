"""An animated GIF of a rollout or comparison file (``physics.formats.comparison``'s layout):
the reference and each model's field on top, each model's error below."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from physics.formats.comparison import FIELD, error_frame, rollout_layout
from physics.formats.store import open_swmr

MAX_GIF_FRAMES = 100

# --- GIF ---------------------------------------------------------------------------------

# A diverging map (blue, white, red, as ColorBrewer's RdBu reversed) on palette indices
# 0..250; 251: NaN (grey); 252: background; 253: text.
_ANCHORS = np.array(
    [(5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31)], dtype=float
)
_LEVELS = 251
_NAN, _BACKGROUND, _TEXT = 251, 252, 253


def diverging_palette() -> list[int]:
    position = np.linspace(0, len(_ANCHORS) - 1, _LEVELS)
    low = np.minimum(position.astype(int), len(_ANCHORS) - 2)
    frac = (position - low)[:, None]
    colours = _ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac
    palette = np.rint(colours).astype(int).flatten().tolist()
    palette += [150, 150, 150, 255, 255, 255, 20, 20, 20]
    return palette + [0] * (768 - len(palette))


def colour_indices(frame: np.ndarray, vmax: float) -> np.ndarray:
    """Palette indices of a field on the symmetric range [−vmax, vmax]; NaN → grey."""
    scaled = np.clip(frame / vmax, -1.0, 1.0) if vmax > 0 else np.zeros_like(frame)
    index = np.rint((scaled + 1.0) * 0.5 * (_LEVELS - 1))
    index = np.where(np.isfinite(frame), index, _NAN)
    return index.astype(np.uint8)


def frame_indices(count: int, max_frames: int = MAX_GIF_FRAMES) -> list[int]:
    """At most ``max_frames`` frames spread evenly from the first to the last (just the
    first when ``max_frames`` is 1)."""
    if count <= max_frames:
        return list(range(count))
    if max_frames <= 1:
        return [0]
    return sorted({round(i * (count - 1) / (max_frames - 1)) for i in range(max_frames)})


def render_gif(
    h5_path: Path,
    out_path: Path,
    labels: Mapping[str, str] | None = None,
    max_frames: int = MAX_GIF_FRAMES,
    frame_ms: int = 100,
) -> Path:
    """An animated GIF of the rollout: top row the reference and each model's field, bottom
    row each model's error (under its field), each grid drawn at the same panel size
    (nearest-neighbour cells), all on one symmetric diverging colour range
    (the initial field's largest |ω|), so errors read in the field's units. At most
    ``max_frames`` frames, evenly subsampled; NaN (a stopped model) is grey."""
    from PIL import Image, ImageDraw, ImageFont

    labels = labels or {}
    with open_swmr(h5_path) as f:
        has_reference, models, errors = rollout_layout(f)
        names = (["reference"] if has_reference else []) + models
        count = int(f["dimensions"]["time"].shape[0])
        if count == 0:
            raise IndexError("the rollout has not written any frame yet")
        times = f["dimensions"]["time"][...]
        n = len(f["dimensions"]["x"])
        size = max(n, max(int(f[s][FIELD].shape[-1]) for s in names))
        scale = max(1, math.ceil(128 / size))
        panel = size * scale
        first = f[names[0]][FIELD][0]
        vmax = float(np.nanmax(np.abs(first))) if np.isfinite(first).any() else 1.0
        vmax = vmax or 1.0
        pad, title = 6, 14
        columns = len(names)
        rows = 2 if (has_reference and models) or any(errors.values()) else 1
        width = columns * (panel + pad) + pad
        height = rows * (panel + title + pad) + pad + title
        palette = diverging_palette()
        font = ImageFont.load_default()
        images = []
        for k in frame_indices(count, max_frames):
            canvas = Image.new("P", (width, height), _BACKGROUND)
            canvas.putpalette(palette)
            draw = ImageDraw.Draw(canvas)
            draw.text(
                (pad, 2), f"t = {times[k]:.4g}  (frame {k}/{count - 1})", fill=_TEXT, font=font
            )
            for c, s in enumerate(names):
                x0 = pad + c * (panel + pad)
                panels = [(0, f[s][FIELD][k], labels.get(s, s))]
                if s in errors and rows == 2:
                    label = labels.get(f"error:{s.split(':', 1)[-1]}", f"error ({s})")
                    panels.append((1, error_frame(f, s, errors[s], k, n), label))
                for r, data, label in panels:
                    y0 = title + pad + r * (panel + title + pad)
                    draw.text((x0, y0), label[: max(4, panel // 6)], fill=_TEXT, font=font)
                    image = Image.fromarray(colour_indices(np.asarray(data), vmax), "P")
                    # Every grid fills the same panel: a coarser model's cells look bigger.
                    image = image.resize((panel, panel), Image.Resampling.NEAREST)
                    canvas.paste(image, (x0, y0 + title))
            images.append(canvas)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        out_path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=frame_ms,
        loop=0,
        optimize=False,
    )
    return out_path
