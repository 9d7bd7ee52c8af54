"""The registry of model architectures: a name → (config class, model class) table.

Everything outside ``models/`` (job parameters, checkpoints, the UI) names an architecture
by its registry key and describes it by a plain dict, so adding an operator family means
adding one module and one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from models.fno import FNO2d, FNO2dConfig


class UnknownModelError(ValueError):
    """Raised for an architecture name that is not in :data:`MODELS`."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture.

    ``config_cls`` must provide ``from_dict`` (rejecting unknown keys) and ``to_dict``;
    ``model_cls`` is constructed as ``model_cls(config)``.
    """

    name: str
    config_cls: type
    model_cls: type[nn.Module]
    description: str


MODELS: dict[str, ModelSpec] = {
    "fno2d": ModelSpec(
        name="fno2d",
        config_cls=FNO2dConfig,
        model_cls=FNO2d,
        description=(
            "Fourier neural operator (2D): one-step map of periodic fields, "
            "resolution-independent, residual over persistence."
        ),
    ),
}


def get_spec(arch: str) -> ModelSpec:
    """The spec registered under ``arch``; :class:`UnknownModelError` if there is none."""
    try:
        return MODELS[arch]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"unknown model architecture {arch!r}; known: {', '.join(sorted(MODELS))}"
        ) from None


def build_model(arch: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised model of architecture ``arch``.

    ``config`` may be partial (missing keys take the config class's defaults); keys the
    config class does not know raise ``ValueError`` naming them.
    """
    spec = get_spec(arch)
    return spec.model_cls(spec.config_cls.from_dict(config))


def parameter_count(model: nn.Module) -> int:
    """The number of scalar parameters (buffers such as normalisation statistics excluded).

    Complex parameters, if a model has any, count as two real scalars each, matching the
    real/imag storage used by :class:`models.layers.SpectralConv2d`.
    """
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
