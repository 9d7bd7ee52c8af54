"""Fourier neural operator in two dimensions (Li et al., 2021), as a one-step map.

``FNO2d`` maps a field at time ``t`` to the field at ``t + Δt``, both in physical units.
It is a composition of the layers in :mod:`models.layers`, configured by ``FNO2dConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.layers import GridEmbedding2d, SpectralConv2d, pointwise

# The projection's hidden width is this multiple of ``width`` (128 for the reference
# width 32, as in the original FNO code). A fixed ratio keeps the parameter formula simple.
PROJECTION_RATIO = 4

# Channels with (almost) no spread would be blown up by normalisation; they get std 1.
_MIN_STD = 1e-12


@dataclass
class FNO2dConfig:
    """Hyper-parameters of :class:`FNO2d`.

    ``modes`` is used along both axes (``modes1 = modes2 = modes``), so inputs need
    ``H, W ≥ 2·modes``. ``out_channels`` may be smaller than ``in_channels``: output
    channel ``k`` is taken to be the same quantity as input channel ``k`` (extra input
    channels are conditioning, e.g. forcing), which is what lets the output be
    de-normalised with the input statistics and added to the input when ``residual``.
    """

    in_channels: int = 1
    out_channels: int = 1
    width: int = 32
    modes: int = 12
    n_layers: int = 4
    add_grid: bool = True
    residual: bool = True

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "width", "modes", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FNO2dConfig.{name} must be a positive integer, got {value!r}")
        for name in ("add_grid", "residual"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"FNO2dConfig.{name} must be a boolean")
        if self.out_channels > self.in_channels:
            raise ValueError(
                "FNO2dConfig.out_channels must not exceed in_channels: output channel k is "
                "de-normalised with (and, when residual, added to) input channel k"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FNO2dConfig:
        """Builds a config from a (possibly partial) dict; unknown keys are an error."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown FNO2dConfig keys: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**data)

    def parameter_count(self) -> int:
        """The number of parameters of ``FNO2d(self)``; see :class:`FNO2d` for the formula."""
        c_in, c_out, w, m, n = (
            self.in_channels,
            self.out_channels,
            self.width,
            self.modes,
            self.n_layers,
        )
        lifted = c_in + (2 if self.add_grid else 0)
        hidden = PROJECTION_RATIO * w
        lift = lifted * w + w
        blocks = n * (4 * w * w * m * m + w * w + w)
        projection = w * hidden + hidden + hidden * c_out + c_out
        return lift + blocks + projection


class FNO2d(nn.Module):
    """Two-dimensional Fourier neural operator with input normalisation and residual output.

    Pipeline, for ``x`` of shape ``(B, C_in, H, W)`` in physical units:

    1. normalise: ``z = (x − in_mean) / in_std`` per channel;
    2. grid (``add_grid``): append the coordinates ``x, y ∈ [0, 1)`` → ``C_in + 2`` channels;
    3. lift: pointwise linear to ``width`` channels;
    4. ``n_layers`` blocks ``z ← σ(SpectralConv2d(z) + pointwise(z))`` with σ = GELU, except
       after the last block, where the projection's own nonlinearity follows;
    5. project: pointwise ``width → 4·width``, GELU, pointwise ``4·width → C_out``;
    6. de-normalise with the input statistics of the first ``C_out`` channels:
       ``residual``: ``y = x[:, :C_out] + in_std · correction`` (the network predicts the
       change, in units of the field's spread); otherwise ``y = in_mean + in_std · out``.

    When ``residual`` the last projection layer starts at zero, so an untrained model is
    exactly persistence (``y = x``) and training learns the increment from there.

    Parameter count, with ``c = C_in + 2·add_grid``, ``w = width``, ``m = modes``,
    ``L = n_layers``, ``h = 4·w``::

        (c·w + w)                            lift
        + L·(4·w²·m² + w² + w)               spectral (two complex corner blocks) + pointwise
        + (w·h + h) + (h·C_out + C_out)      projection

    (``FNO2dConfig.parameter_count()`` evaluates it). The buffers ``in_mean`` and
    ``in_std`` (shape ``(C_in,)``, default 0 and 1) are saved in the state dict but are not
    parameters. Shapes: ``(B, C_in, H, W) → (B, C_out, H, W)`` for any ``H, W ≥ 2·modes``.
    """

    def __init__(self, config: FNO2dConfig | None = None):
        super().__init__()
        self.config = config = config or FNO2dConfig()
        w = config.width
        self.register_buffer("in_mean", torch.zeros(config.in_channels))
        self.register_buffer("in_std", torch.ones(config.in_channels))

        self.grid = GridEmbedding2d() if config.add_grid else None
        self.lift = pointwise(config.in_channels + (2 if config.add_grid else 0), w)
        self.spectral = nn.ModuleList(
            SpectralConv2d(w, w, config.modes, config.modes) for _ in range(config.n_layers)
        )
        self.pointwise = nn.ModuleList(pointwise(w, w) for _ in range(config.n_layers))
        self.project_hidden = pointwise(w, PROJECTION_RATIO * w)
        self.project_out = pointwise(PROJECTION_RATIO * w, config.out_channels)
        if config.residual:
            nn.init.zeros_(self.project_out.weight)
            nn.init.zeros_(self.project_out.bias)

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Sets the per-channel statistics (shape ``(C_in,)``) used to normalise inputs."""
        mean = torch.as_tensor(mean, dtype=self.in_mean.dtype).reshape(-1)
        std = torch.as_tensor(std, dtype=self.in_std.dtype).reshape(-1)
        n = self.config.in_channels
        if mean.numel() != n or std.numel() != n:
            raise ValueError(f"mean and std need {n} entries, got {mean.numel()}, {std.numel()}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("mean and std must be finite")
        self.in_mean.copy_(mean)
        self.in_std.copy_(torch.where(std > _MIN_STD, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"FNO2d expects (B, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
        mean = self.in_mean.to(x.dtype).view(1, -1, 1, 1)
        std = self.in_std.to(x.dtype).view(1, -1, 1, 1)

        z = (x - mean) / std
        if self.grid is not None:
            z = self.grid(z)
        z = self.lift(z)
        for i, (spectral, local) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            z = spectral(z) + local(z)
            if i < cfg.n_layers - 1:
                z = F.gelu(z)
        z = self.project_out(F.gelu(self.project_hidden(z)))

        c_out = cfg.out_channels
        if cfg.residual:
            return x[:, :c_out] + std[:, :c_out] * z
        return mean[:, :c_out] + std[:, :c_out] * z
