"""Statistics of rollouts against a reference: pattern correlation, decorrelation time, PDFs.

Fields are real tensors shaped (..., C, n, n); ⟨·⟩ is the mean over the periodic box (and
the sum over channels), so per-field statistics have shape (...), e.g. (B,) for (B, C, n, n)
and (B, T) for a trajectory (B, T, C, n, n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

_FIELD_DIMS = (-3, -2, -1)


def correlation(a: torch.Tensor, b: torch.Tensor, centered: bool = True) -> torch.Tensor:
    """Pattern correlation ⟨a′b′⟩ / (⟨a′²⟩⟨b′²⟩)^½ of fields (..., C, n, n), shape (...).

    With ``centered`` (the default) a′ = a − ⟨a⟩ and b′ = b − ⟨b⟩ are the fluctuations about
    each channel's box mean (for a periodic vorticity the mean is zero anyway); otherwise
    a′ = a, b′ = b. The products are summed over channels and averaged over the box. The
    result lies in [−1, 1]: 1 for a field with itself, −1 with its negative; a constant
    field (zero fluctuation) gives NaN.
    """
    if a.shape != b.shape:
        raise ValueError(f"Cannot correlate fields shaped {tuple(a.shape)} and {tuple(b.shape)}.")
    if a.ndim < 3:
        raise ValueError(f"Expected fields shaped (..., channel, n, n); got {tuple(a.shape)}.")
    if centered:
        a = a - a.mean(dim=(-2, -1), keepdim=True)
        b = b - b.mean(dim=(-2, -1), keepdim=True)
    ab = (a * b).sum(dim=_FIELD_DIMS)
    aa = (a * a).sum(dim=_FIELD_DIMS)
    bb = (b * b).sum(dim=_FIELD_DIMS)
    return ab / torch.sqrt(aa * bb)


def decorrelation_time(
    times: torch.Tensor | Sequence[float],
    corr: torch.Tensor | Sequence[float],
    threshold: float = 0.8,
) -> torch.Tensor:
    """First time at which the correlation falls below ``threshold``, shape corr.shape[:-1].

    ``corr`` (..., T) holds the correlation at the saved times ``times`` (T,) (increasing).
    With i the first frame where corr[i] < threshold, the crossing is interpolated linearly
    between frames i − 1 and i:

        t* = t_{i−1} + (c_{i−1} − θ)/(c_{i−1} − c_i) · (t_i − t_{i−1}),   θ = threshold.

    If the correlation is already below θ at the first frame, t* = t_0; if it never falls
    below θ (NaN entries never count as below), t* = NaN. Returns a float64 tensor (0-d for
    a single curve) on corr's device.
    """
    corr = torch.as_tensor(corr)
    corr = corr.to(torch.float64)
    times = torch.as_tensor(times, dtype=torch.float64, device=corr.device)
    if times.ndim != 1 or corr.shape[-1:] != times.shape:
        raise ValueError(
            f"Expected times (T,) and corr (..., T); got {tuple(times.shape)} and "
            f"{tuple(corr.shape)}."
        )
    below = corr < threshold
    found = below.any(dim=-1)
    first = below.to(torch.int8).argmax(dim=-1, keepdim=True)  # first True (0 if none)
    before = (first - 1).clamp_min(0)
    c0 = corr.gather(-1, before).squeeze(-1)
    c1 = corr.gather(-1, first).squeeze(-1)
    t0 = times[before.squeeze(-1)]
    t1 = times[first.squeeze(-1)]
    at_start = first.squeeze(-1) == 0
    # At the start c0 = c1; keep the division away from 0/0 there (the value is replaced).
    step = torch.where(at_start, torch.ones_like(c0), c0 - c1)
    crossing = t0 + (c0 - threshold) / step * (t1 - t0)
    crossing = torch.where(at_start, times[0], crossing)
    return torch.where(found, crossing, torch.full_like(crossing, math.nan))


def vorticity_pdf(
    w: torch.Tensor,
    bins: int = 64,
    range: tuple[float, float] | None = None,
    standardized: bool = False,
    per_item: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Histogram estimate of the probability density of the values of w: (centres, density).

    w is shaped (B, ...): every value of a batch item (all channels, times and points) is a
    sample. With ``standardized`` each item is first mapped to (w − mean)/std (its own mean
    and population standard deviation), the usual ω/σ_ω. The ``bins`` equal bins span
    ``range`` = (lo, hi), by default the smallest and largest (standardised) value over the
    whole batch, widened by ±½ if they coincide; values outside are dropped, a value equal
    to hi falls in the last bin (as in numpy). The density is counts/(N·Δ) with N the number
    of samples inside the range and Δ = (hi − lo)/bins, so Σ density·Δ = 1.

    Pooled by default: one density (bins,) from all items together. With ``per_item`` each
    item gets its own density (B, bins), all on the same bins. centres (bins,) are the bin
    midpoints. Not differentiable (a histogram); computed in w's dtype on w's device.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1; got {bins}.")
    x = w.detach().reshape(w.shape[0], -1)
    if standardized:
        mean = x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, correction=0, keepdim=True)
        x = (x - mean) / std
    if range is None:
        lo, hi = x.min().item(), x.max().item()
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = float(range[0]), float(range[1])
        if not lo < hi:
            raise ValueError(f"range must have lo < hi; got {range}.")
    width = (hi - lo) / bins
    inside = (x >= lo) & (x <= hi)
    index = torch.floor((x - lo) / width).long().clamp_(0, bins - 1)
    counts = torch.zeros(x.shape[0], bins, dtype=x.dtype, device=x.device)
    counts.scatter_add_(1, index, inside.to(x.dtype))
    if not per_item:
        counts = counts.sum(dim=0)
    density = counts / (counts.sum(dim=-1, keepdim=True) * width)
    centres = lo + (torch.arange(bins, dtype=x.dtype, device=x.device) + 0.5) * width
    return centres, density
