"""An animated GIF of a rollout or comparison file (``physics.formats.comparison``'s layout):
the reference and each model's field on top, each model's error below, a colour bar under
them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from physics.formats.comparison import FIELD, error_frame, rollout_layout
from physics.formats.store import open_swmr

MAX_GIF_FRAMES = 100
# The colour range is this percentile of |value| over the frames drawn: a few extreme cells
# (or one frame of a model blowing up) do not wash out every other panel.
ROBUST_PERCENTILE = 99.0
# Values read per frame for the colour range (a strided subsample of bigger frames).
RANGE_SAMPLES = 1 << 16

# --- GIF ---------------------------------------------------------------------------------

# A diverging map (blue, white, red, as ColorBrewer's RdBu reversed) on palette indices
# 0..250; 251: NaN (grey); 252: background; 253: text.
_ANCHORS = np.array(
    [(5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31)], dtype=float
)
_LEVELS = 251
_NAN, _BACKGROUND, _TEXT = 251, 252, 253
_FONT_SIZE = 11
_LINE = 13  # pixels per line of text


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
    index = np.rint((np.nan_to_num(scaled) + 1.0) * 0.5 * (_LEVELS - 1))
    index = np.where(np.isfinite(frame), index, _NAN)
    return index.astype(np.uint8)


def robust_limit(frames: Iterable[np.ndarray], percentile: float = ROBUST_PERCENTILE) -> float:
    """The half-width of a symmetric colour range over several frames: the ``percentile``
    of |value| over their finite values (each frame strided to about ``RANGE_SAMPLES``
    values), so the range is the same on every frame of the animation and a few extreme
    cells saturate instead of washing the rest out. 1.0 when nothing is finite; never 0."""
    parts = []
    for frame in frames:
        values = np.abs(np.asarray(frame, dtype=np.float64))
        if values.ndim >= 2 and values.size > RANGE_SAMPLES:
            stride = math.ceil(math.sqrt(values.size / RANGE_SAMPLES))
            values = values[..., ::stride, ::stride]
        values = values[np.isfinite(values)]
        if values.size:
            parts.append(values.ravel())
    if not parts:
        return 1.0
    limit = float(np.percentile(np.concatenate(parts), percentile))
    if limit > 0:
        return limit
    peak = float(max(p.max() for p in parts))
    return peak if peak > 0 else 1.0


def frame_indices(count: int, max_frames: int = MAX_GIF_FRAMES) -> list[int]:
    """At most ``max_frames`` frames spread evenly from the first to the last (just the
    first when ``max_frames`` is 1)."""
    if count <= max_frames:
        return list(range(count))
    if max_frames <= 1:
        return [0]
    return sorted({round(i * (count - 1) / (max_frames - 1)) for i in range(max_frames)})


def panel_labels(
    names: list[str], errors: Iterable[str], labels: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The title of every panel: a field's ``labels[source]`` (else the source's name), a
    model's error panel "error: <that model's title>" (``labels["error:<i>"]`` when given)."""
    labels = labels or {}
    out = {s: labels.get(s) or s for s in names}
    for s in errors:
        key = "error:" + s.split(":", 1)[1] if ":" in s else "error"
        out[key] = labels.get(key) or f"error: {out.get(s, s)}"
    return out


def wrap_text(text: str, width: float, measure) -> list[str]:
    """``text`` in lines no wider than ``width`` (by ``measure(str) -> pixels``): broken at
    spaces, a word wider than a line broken between characters. Nothing is dropped."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if measure(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for ch in word:
            if current and measure(current + ch) > width:
                lines.append(current)
                current = ""
            current += ch
    if current:
        lines.append(current)
    return lines or [""]


def _tick(value: float) -> str:
    return f"{value:.3g}"


def render_gif(
    h5_path: Path,
    out_path: Path,
    labels: Mapping[str, str] | None = None,
    max_frames: int = MAX_GIF_FRAMES,
    frame_ms: int = 100,
    notes: Mapping[str, str] | None = None,
) -> Path:
    """An animated GIF of the rollout: top row the reference and each model's field, bottom
    row each model's error (under its field), each grid drawn at the same panel size
    (nearest-neighbour cells), all on one symmetric diverging colour range, so errors read
    in the field's units, with a colour bar under the panels.

    The range is ``robust_limit`` (the 99th percentile of |ω|) over the reference's frames
    drawn (without a reference, the models'), the same on every frame. ``labels`` name the
    panels by source (``panel_labels``: a model's error panel is "error: <its label>");
    titles wrap onto as many lines as they need. ``notes`` say why a source has no frame
    (``{"model:1": "diverged at step 7"}``): a panel without finite values (a stopped model)
    is grey with its note, or "no frame", written on it. At most ``max_frames`` frames,
    evenly subsampled."""
    from PIL import Image, ImageDraw, ImageFont

    notes = notes or {}
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
        picked = frame_indices(count, max_frames)
        ranged = ["reference"] if has_reference else models
        vmax = robust_limit(f[s][FIELD][k] for s in ranged for k in picked)
        titles = panel_labels(names, models, labels)
        font = ImageFont.load_default(size=_FONT_SIZE)
        measure = font.getlength
        wrapped = {key: wrap_text(text, panel, measure) for key, text in titles.items()}
        title = _LINE * max(len(lines) for lines in wrapped.values()) + 2
        pad = 6
        columns = len(names)
        rows = 2 if (has_reference and models) or any(errors.values()) else 1
        width = columns * (panel + pad) + pad
        bar_top = _LINE + pad + rows * (panel + title + pad) + 4
        bar_height = 10
        legend = wrap_text(
            # (The built-in font has no Greek letters: words, not ω.)
            f"colour: vorticity and error on +/-{_tick(vmax)} (the {ROBUST_PERCENTILE:g}th "
            f"percentile of |{'reference' if has_reference else 'model'} vorticity| over "
            "these frames)",
            width - 2 * pad,
            measure,
        )
        height = bar_top + bar_height + _LINE * (1 + len(legend)) + pad + 4
        palette = diverging_palette()
        bar_width = min(width - 2 * pad, max(panel, 256))
        bar_x = (width - bar_width) // 2
        ramp = np.rint(np.linspace(0, _LEVELS - 1, bar_width)).astype(np.uint8)
        bar = Image.fromarray(np.repeat(ramp[None, :], bar_height, axis=0), "P")
        images = []
        for k in picked:
            canvas = Image.new("P", (width, height), _BACKGROUND)
            canvas.putpalette(palette)
            draw = ImageDraw.Draw(canvas)
            draw.text(
                (pad, 2), f"t = {times[k]:.4g}  (frame {k}/{count - 1})", fill=_TEXT, font=font
            )
            for c, s in enumerate(names):
                x0 = pad + c * (panel + pad)
                panels = [(0, f[s][FIELD][k], s)]
                if s in errors and rows == 2:
                    key = "error:" + s.split(":", 1)[1] if ":" in s else "error"
                    panels.append((1, error_frame(f, s, errors[s], k, n), key))
                for r, data, key in panels:
                    y0 = _LINE + pad + r * (panel + title + pad)
                    for i, line in enumerate(wrapped[key]):
                        draw.text((x0, y0 + i * _LINE), line, fill=_TEXT, font=font)
                    data = np.asarray(data)
                    image = Image.fromarray(colour_indices(data, vmax), "P")
                    # Every grid fills the same panel: a coarser model's cells look bigger.
                    image = image.resize((panel, panel), Image.Resampling.NEAREST)
                    canvas.paste(image, (x0, y0 + title))
                    if not np.isfinite(data).any():
                        note = notes.get(s) or "no frame"
                        for i, line in enumerate(wrap_text(note, panel - 8, measure)):
                            draw.text(
                                (x0 + 4, y0 + title + panel // 2 - _LINE + i * _LINE),
                                line,
                                fill=_TEXT,
                                font=font,
                            )
            canvas.paste(bar, (bar_x, bar_top))
            label_y = bar_top + bar_height + 2
            left, right = _tick(-vmax), _tick(vmax)
            draw.text((bar_x, label_y), left, fill=_TEXT, font=font)
            draw.text((bar_x + (bar_width - measure("0")) / 2, label_y), "0", fill=_TEXT, font=font)
            draw.text((bar_x + bar_width - measure(right), label_y), right, fill=_TEXT, font=font)
            for i, line in enumerate(legend):
                draw.text((pad, label_y + (i + 1) * _LINE), line, fill=_TEXT, font=font)
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
