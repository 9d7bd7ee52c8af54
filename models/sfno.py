"""Spatiotemporal Fourier neural operator (SFNO) of Spectral-Refiner (Cao, Liu et al., ICLR 2025).

Where the FNO maps one frame to the next, the SFNO maps a trajectory to a trajectory: the
``history`` frames of a window form one field on the space–time volume ``(H, W, T)``, its
hidden layers are Fourier layers over space *and* time, and its output layer evaluates
the time spectrum on the ``out_steps`` frames that follow. The output layer is a spectral
convolution of its own so that, for Spectral-Refiner's fine-tuning, it can be rebuilt with
more (spatial and temporal) modes and trained alone while the rest stays frozen
(:meth:`SFNO.refine_output_modes`).

The model is a composition of :mod:`models.layers_spacetime`, configured by
:class:`SFNOConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Contract, NeuralOperator
from models.config import OperatorConfig, param
from models.layers_spacetime import (
    SpaceTimeEmbedding,
    SpectralConvSpaceTime,
    min_time_length,
    pointwise3d,
)

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}

# The output layer sees the last (up to) two input frames in front of the latent
# trajectory, so that the correction it writes is anchored on the actual state.
ANCHOR_FRAMES = 2


@dataclass
class SFNOConfig(OperatorConfig):
    """Hyper-parameters of :class:`SFNO` (2D space, vorticity-like fields)."""

    title = "Spatiotemporal FNO (Spectral-Refiner)"

    channels: int = param(1, "Physical channels of the field (1 for 2D vorticity).", min=1)
    history: int = param(
        10, "Input frames: the length of the trajectory window the model reads.", min=1
    )
    out_steps: int = param(
        10, "Output frames: how many frames following the window one call predicts.", min=1
    )
    width: int = param(20, "Hidden channels of the space–time layers.", min=1)
    modes: int = param(
        8,
        "Fourier modes kept per spatial direction in the hidden layers (the grid needs at "
        "least twice as many points per side).",
        min=1,
    )
    modes_t: int = param(
        4,
        "Fourier modes kept in time in the hidden layers (the input window and the latent "
        "trajectory need at least 2·(modes_t − 1) frames).",
        min=1,
    )
    n_layers: int = param(
        3,
        "Space–time Fourier blocks between the lifting (itself a Fourier layer) and the "
        "output layer.",
        min=0,
        max=32,
    )
    latent_steps: int = param(
        10,
        "Frames of the hidden trajectory, independent of the input and output lengths; "
        "about 1.5× the input window limits aliasing from non-periodicity in time.",
        min=1,
        advanced=True,
    )
    out_modes: int = param(
        0,
        "Spatial Fourier modes of the output layer; 0 means the same as modes. Spectral "
        "fine-tuning raises it to resolve finer scales.",
        min=0,
        advanced=True,
    )
    out_modes_t: int = param(
        0,
        "Temporal Fourier modes of the output layer; 0 means the same as modes_t.",
        min=0,
        advanced=True,
    )
    mlp_ratio: int = param(
        4,
        "Hidden size of the channel MLP after each spectral convolution, as a multiple of width.",
        min=1,
        advanced=True,
    )
    add_grid: bool = param(
        True, "Give the network the coordinates (x, y, t) of every point.", advanced=True
    )
    time_frequencies: int = param(
        4,
        "Sine/cosine pairs of the time encoding added to the lifting (0 for none).",
        min=0,
        max=64,
        advanced=True,
    )
    time_decay: float = param(
        0.01,
        "Decay rate of the time encoding's envelope exp(−rate·t), t ∈ (0, 1] over the "
        "window, after the a-priori energy decay of Navier–Stokes.",
        advanced=True,
    )
    temporal_padding: bool = param(
        True,
        "Zero-pad the output layer's input in time so that the end of the trajectory does "
        "not wrap around onto its beginning.",
        advanced=True,
    )
    activation: str = param(
        "gelu", "Nonlinearity of the hidden layers.", choices=tuple(ACTIVATIONS), advanced=True
    )

    # --- derived sizes ----------------------------------------------------------------

    @property
    def output_modes(self) -> int:
        """Spatial modes of the output layer (``out_modes``, or ``modes`` when 0)."""
        return self.out_modes or self.modes

    @property
    def output_modes_t(self) -> int:
        """Temporal modes of the output layer (``out_modes_t``, or ``modes_t`` when 0)."""
        return self.out_modes_t or self.modes_t

    @property
    def anchor_frames(self) -> int:
        return min(ANCHOR_FRAMES, self.history)

    def output_layer_lengths(self) -> tuple[int, int, int]:
        """(padding, input length, output length) in time of the output layer."""
        core = self.anchor_frames + self.latent_steps
        pad = core if self.temporal_padding else 0
        return pad, pad + core, pad + self.anchor_frames + self.out_steps

    def check(self) -> None:
        super().check()
        name = type(self).__name__
        need = min_time_length(self.modes_t)
        if self.history < need or self.latent_steps < need:
            raise ValueError(
                f"{name}: modes_t={self.modes_t} temporal modes need at least {need} frames "
                f"in the input window and in the latent trajectory; got history="
                f"{self.history}, latent_steps={self.latent_steps} (lower modes_t or add "
                "frames)"
            )
        need_out = min_time_length(self.output_modes_t)
        _, n_in, n_out = self.output_layer_lengths()
        if min(n_in, n_out) < need_out:
            raise ValueError(
                f"{name}: the output layer's {self.output_modes_t} temporal modes need at "
                f"least {need_out} frames, but it reads {n_in} and writes {n_out} (lower "
                "out_modes_t, or enable temporal_padding)"
            )

    def check_grid(self, space: tuple[int, ...]) -> None:
        """``ValueError`` unless ``space = (H, W)`` holds 2·modes and 2·output modes per side."""
        name = type(self).__name__
        if len(space) != 2:
            raise ValueError(f"{name} works on 2D grids (H, W); got a grid of shape {space}")
        need = 2 * max(self.modes, self.output_modes)
        if min(space) < need:
            raise ValueError(
                f"{name}: a {space[0]}×{space[1]} grid is too coarse for {self.modes} hidden "
                f"and {self.output_modes} output Fourier modes; it needs at least "
                f"{need}×{need} points"
            )

    def contract(self) -> Contract:
        return Contract(
            dims=2, channels=self.channels, history=self.history, out_steps=self.out_steps
        )

    def parameter_count(self) -> int:
        """The number of parameters of ``SFNO(self)``; see :class:`SFNO` for the formula."""
        c, w, m, mt = self.channels, self.width, self.modes, self.modes_t
        big_m, big_mt = self.output_modes, self.output_modes_t
        lifted = c + 3 * int(self.add_grid) + 2 * self.time_frequencies
        hidden = self.mlp_ratio * w
        spectral = 8 * w * w * m * m * mt
        lift = lifted * w + w + spectral
        block = spectral + (w * hidden + hidden) + (hidden * w + w) + (w * w + w)
        reduce = w * c + c
        output = 8 * c * c * big_m * big_m * big_mt + 8 * c * big_m * big_m * big_mt
        return lift + self.n_layers * block + reduce + output


class SFNOBlock(nn.Module):
    """One hidden space–time Fourier block: ``h ← σ(MLP(K h) + W h)``.

    ``K``: :class:`SpectralConvSpaceTime` (``width → width``, same time length), ``MLP``:
    pointwise ``width → r·width``, σ, pointwise ``r·width → width``; ``W``: pointwise
    ``width → width``. Parameters: ``8·w²·m²·m_t + (2·w·r·w + r·w + w) + (w² + w)``.
    Shapes: ``(B, w, H, W, T) → (B, w, H, W, T)``.
    """

    def __init__(self, width: int, modes: int, modes_t: int, mlp_ratio: int, activation: str):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.spectral = SpectralConvSpaceTime(width, width, modes, modes, modes_t)
        self.mlp = nn.Sequential(
            pointwise3d(width, mlp_ratio * width), act(), pointwise3d(mlp_ratio * width, width)
        )
        self.local = pointwise3d(width, width)
        self.activation = act()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.activation(self.mlp(self.spectral(h)) + self.local(h))


class SFNO(NeuralOperator):
    """Spatiotemporal FNO: a window of ``T_in`` frames to the ``T_out`` frames that follow.

    Pipeline, for ``x`` of shape ``(B, T_in, C, H, W)`` in physical units:

    1. normalise ``z = (x − mean)/std`` per channel and view the window as a space–time
       volume ``(B, C, H, W, T_in)``;
    2. embed (:class:`SpaceTimeEmbedding`): append ``(y, x, t)`` (``add_grid``) and
       ``2·time_frequencies`` damped sinusoids in ``t``;
    3. lift: pointwise to ``width`` channels, then a space–time spectral convolution that
       resamples time from ``T_in`` to ``latent_steps = T_h`` frames;
    4. ``n_layers`` blocks ``h ← σ(MLP(K h) + W h)`` (:class:`SFNOBlock`) on
       ``(B, width, H, W, T_h)``;
    5. reduce: pointwise ``width → C``;
    6. output layer (``self.output_layer``, a spectral convolution with bias, ``C → C``
       with ``out_modes``, ``out_modes_t``): its input is ``[z_{T_in−1}, z_{T_in}, u]`` in
       time (the last two normalised input frames in front of the latent trajectory
       ``u``), zero-padded in front to twice its length (``temporal_padding``); it is
       synthesised on ``pad + 2 + T_out`` frames of which the last ``T_out`` are the
       correction ``δ``;
    7. residual: ``y_k = x_{T_in} + std·δ_k`` for ``k = 1 … T_out``.

    The output layer starts at zero (weights and bias), so an untrained model is exactly
    persistence. :meth:`refine_output_modes` rebuilds it with more modes.

    Parameter count, with ``c = C + 3·add_grid + 2·time_frequencies``, ``w = width``,
    ``m = modes``, ``m_t = modes_t``, ``L = n_layers``, ``r = mlp_ratio``, ``M = out_modes``,
    ``M_t = out_modes_t`` (the hidden ones when 0)::

        (c·w + w) + 8·w²·m²·m_t                              lift
        + L·(8·w²·m²·m_t + 2·r·w² + r·w + w + w² + w)         blocks
        + (w·C + C)                                           reduce
        + 8·C²·M²·M_t + 8·C·M²·M_t                            output layer (+ bias)

    (``SFNOConfig.parameter_count()`` evaluates it). Shapes: ``(B, T_in, C, H, W) →
    (B, T_out, C, H, W)`` for ``H, W ≥ 2·max(m, M)`` (see ``SFNOConfig.check_grid``).
    """

    def __init__(self, config: SFNOConfig | None = None):
        config = config or SFNOConfig()
        super().__init__(config)
        c, w = config.channels, config.width
        self.embedding = SpaceTimeEmbedding(
            config.add_grid, config.time_frequencies, config.time_decay
        )
        self.lift = pointwise3d(c + self.embedding.extra_channels, w)
        self.lift_spectral = SpectralConvSpaceTime(w, w, config.modes, config.modes, config.modes_t)
        self.blocks = nn.ModuleList(
            SFNOBlock(w, config.modes, config.modes_t, config.mlp_ratio, config.activation)
            for _ in range(config.n_layers)
        )
        self.reduce = pointwise3d(w, c)
        m, mt = config.output_modes, config.output_modes_t
        self.output_layer = SpectralConvSpaceTime(c, c, m, m, mt, bias=True, zero_init=True)

    @property
    def residual(self) -> bool:
        # The body writes whole frames, ``z_last + δ`` in normalised units, as it always has:
        # ``x_last + std·δ`` would round differently.
        return False

    def body(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        z = z.permute(0, 2, 3, 4, 1)  # (B, C, H, W, T_in)

        h = self.lift(self.embedding(z))
        h = self.lift_spectral(h, out_steps=cfg.latent_steps)
        for block in self.blocks:
            h = block(h)
        u = self.reduce(h)  # (B, C, H, W, T_h)

        pad, _, n_out = cfg.output_layer_lengths()
        v = torch.cat([z[..., -cfg.anchor_frames :], u], dim=-1)
        v = F.pad(v, (pad, 0))
        correction = self.output_layer(v, out_steps=n_out)[..., -cfg.out_steps :]

        y = z[..., -1:] + correction  # normalised units, (B, C, H, W, T_out)
        return y.permute(0, 4, 1, 2, 3)

    def refine_output_modes(self, modes: int, modes_t: int | None = None) -> None:
        """Rebuilds the output layer with ``modes`` spatial (and ``modes_t`` temporal) modes.

        Spectral-Refiner's fine-tuning step: the trained output layer's weights are copied
        onto the same wavenumbers of the larger layer and the added modes start at zero, so
        the model's output is unchanged until the new layer is trained. ``self.config``
        records the new ``out_modes``/``out_modes_t``, so a checkpoint saved afterwards
        (with ``model.config.to_dict()``) rebuilds this architecture. Create the optimiser
        after calling this: the output layer's parameters are new tensors.
        """
        old = self.output_layer
        modes_t = old.modes_t if modes_t is None else modes_t
        if modes < old.modes1 or modes_t < old.modes_t:
            raise ValueError(
                f"refine_output_modes can only add modes: the output layer has "
                f"({old.modes1}, {old.modes_t}), asked for ({modes}, {modes_t})"
            )
        config = dataclasses.replace(self.config, out_modes=modes, out_modes_t=modes_t)
        layer = old.expanded(modes, modes, modes_t)
        layer.requires_grad_(old.weight.requires_grad)
        self.output_layer = layer
        self.config = config
