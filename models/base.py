"""What every neural operator in the zoo shares: its contract and its normalisation.

The trajectory convention: a model maps a window of ``history`` consecutive frames,
``(B, history, C, *space)``, to the ``out_steps`` frames that follow, ``(B, out_steps, C,
*space)``, all in physical units. A one-step map has ``history = out_steps = 1``. Training,
rollout and comparison loops read the contract and never special-case an architecture.

Normalisation: per physical channel, statistics of the training data stored as buffers
(``in_mean``, ``in_std``, shape ``(C,)``) so they travel with the weights.

The forward pass every model shares (:meth:`NeuralOperator.forward`): check the window
against the contract and the config's grid rule, normalise, run the architecture's
:meth:`~NeuralOperator.body`, and return to physical units, by default as a change over
the last input frame (:meth:`~NeuralOperator.to_physical`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# Channels with (almost) no spread would be blown up by normalisation; they get std 1.
MIN_STD = 1e-12


@dataclass(frozen=True)
class Contract:
    """What a model consumes and produces.

    ``dims``: spatial dimensions (2: ``(H, W)``; 3: ``(X, Y, Z)`` with y wall-normal for
    the channel). ``channels``: physical channels in and out (1 for vorticity, 3 for
    velocity). ``history``: input frames. ``out_steps``: output frames per call.
    """

    dims: int
    channels: int
    history: int = 1
    out_steps: int = 1

    def to_dict(self) -> dict[str, int]:
        return {
            "dims": self.dims,
            "channels": self.channels,
            "history": self.history,
            "out_steps": self.out_steps,
        }

    def input_shape(self, *space: int, batch: int = 1) -> tuple[int, ...]:
        return (batch, self.history, self.channels, *space)


def stack_frames(z: torch.Tensor) -> torch.Tensor:
    """``(B, T, C, *space) → (B, T·C, *space)``: frames stacked into channels, frame-major
    (channel ``t·C + c`` is channel ``c`` of frame ``t``)."""
    return z.flatten(1, 2)


def zero_init(layer: nn.Module) -> None:
    """Zeroes a layer's ``weight`` and ``bias`` (when it has one). As a model's last layer,
    with a residual output, it makes an untrained model exactly persistence."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class NeuralOperator(nn.Module):
    """Base class: the config, normalisation buffers, input checks, contract and forward pass.

    Subclasses pass their config (which has ``channels``, ``contract()`` and
    ``check_grid(space)``) to ``__init__`` and implement :meth:`body`; a model whose
    network predicts the frames themselves rather than their change overrides
    :attr:`residual`.
    """

    def __init__(self, config: Any):
        super().__init__()
        self.register_buffer("in_mean", torch.zeros(config.channels))
        self.register_buffer("in_std", torch.ones(config.channels))
        self.config = config

    @property
    def contract(self) -> Contract:
        return self.config.contract()

    @property
    def residual(self) -> bool:
        """Whether :meth:`body` predicts the change over the last input frame (``True``) or
        the output frames themselves, both in units of each channel's spread."""
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, history, C, *space) → (B, out_steps, C, *space)``, in physical units."""
        self.check_input(x)
        self.config.check_grid(tuple(x.shape[3:]))
        return self.to_physical(x, self.body(self.normalize(x)))

    def body(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The network: the normalised window ``(B, history, C, *space)`` to the output
        ``(B, out_steps, C, *space)`` in normalised units (see :attr:`residual`)."""
        raise NotImplementedError

    def to_physical(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The output frames in physical units from the input window ``x`` and the network's
        output ``z`` ``(B, S, C, *space)``: ``x_last + in_std · z`` when :attr:`residual`,
        otherwise ``in_mean + in_std · z``."""
        mean, std = self._stats(x)
        base = x[:, -1:] if self.residual else mean
        return base + std * z

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Sets the per-channel statistics (shape ``(C,)``) used to normalise inputs."""
        mean = torch.as_tensor(mean, dtype=self.in_mean.dtype).reshape(-1)
        std = torch.as_tensor(std, dtype=self.in_std.dtype).reshape(-1)
        n = self.in_mean.numel()
        if mean.numel() != n or std.numel() != n:
            raise ValueError(f"mean and std need {n} entries, got {mean.numel()}, {std.numel()}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("mean and std must be finite")
        self.in_mean.copy_(mean)
        self.in_std.copy_(torch.where(std > MIN_STD, std, torch.ones_like(std)))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, 1, -1) + (1,) * (x.ndim - 3)
        return self.in_mean.to(x.dtype).view(shape), self.in_std.to(x.dtype).view(shape)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x − mean)/std`` per channel, for ``x`` shaped ``(B, T, C, *space)``."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return mean + std * z

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ``ValueError`` naming the expected shape when ``x`` breaks the contract."""
        c = self.contract
        expected = (
            f"(B, {c.history}, {c.channels}, "
            + ", ".join("XYZ"[i] if c.dims == 3 else "HW"[i] for i in range(c.dims))
            + ")"
        )
        if x.ndim != 3 + c.dims or x.shape[1] != c.history or x.shape[2] != c.channels:
            raise ValueError(f"{type(self).__name__} expects {expected}, got {tuple(x.shape)}")
