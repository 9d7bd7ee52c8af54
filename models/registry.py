"""The registry of model architectures: a name → (config class, model class) table.

Everything outside ``models/`` (job parameters, checkpoints, the UI) names an architecture
by its registry key and describes it by a plain dict, so adding an operator family means
adding one module and one entry here. Modules are imported on first use, so listing the
zoo (the UI's picker, ``GET /api/catalog``) does not import every family.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.base import Contract


class UnknownModelError(ValueError):
    """Raised for an architecture name that is not in :data:`MODELS`."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture.

    ``module`` holds ``config_name`` (an :class:`models.config.OperatorConfig` dataclass
    with a ``contract()`` method) and ``model_name`` (constructed as ``model(config)``).
    ``dims`` is the number of spatial dimensions the architecture works in.
    """

    name: str
    label: str
    dims: int
    module: str
    model_name: str
    config_name: str
    description: str

    @property
    def config_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.config_name)

    @property
    def model_cls(self) -> type[nn.Module]:
        return getattr(importlib.import_module(self.module), self.model_name)


def _spec(name, label, dims, module, model, config, description) -> tuple[str, ModelSpec]:
    return name, ModelSpec(name, label, dims, module, model, config, description)


MODELS: dict[str, ModelSpec] = dict(
    [
        _spec(
            "fno2d",
            "FNO (2D)",
            2,
            "models.fno",
            "FNO2d",
            "FNO2dConfig",
            "Fourier neural operator: spectral convolutions on the lowest modes, "
            "resolution-independent, residual over persistence.",
        ),
        _spec(
            "fno3d",
            "FNO (3D)",
            3,
            "models.fno",
            "FNO3d",
            "FNO3dConfig",
            "Fourier neural operator on 3D velocity fields, with domain padding on the "
            "non-periodic (wall-normal) axis.",
        ),
        _spec(
            "sfno",
            "Spatiotemporal FNO",
            2,
            "models.sfno",
            "SFNO",
            "SFNOConfig",
            "Spectral-Refiner's spatiotemporal FNO: a trajectory in, a trajectory out, "
            "spectral convolution over space and time; its output layer can be rebuilt with "
            "more modes for spectral fine-tuning.",
        ),
        _spec(
            "ifno",
            "Implicit FNO",
            2,
            "models.ifno",
            "IFNO",
            "IFNOConfig",
            "One Fourier layer whose weights are shared across L iterations, "
            "h ← h + σ(Kh + Wh + b)/L.",
        ),
        _spec(
            "ifno3d",
            "Implicit FNO (3D)",
            3,
            "models.ifno",
            "IFNO3d",
            "IFNO3dConfig",
            "Implicit FNO on 3D velocity fields: one Fourier layer shared across L "
            "iterations, with domain padding on the non-periodic (wall-normal) axis.",
        ),
        _spec(
            "factformer2d",
            "FactFormer (2D)",
            2,
            "models.factformer",
            "FactFormer",
            "FactFormer2dConfig",
            "Factorized transformer: axis-wise low-rank attention applied in a chain "
            "(K_x then K_y).",
        ),
        _spec(
            "factformer3d",
            "FactFormer (3D)",
            3,
            "models.factformer",
            "FactFormer",
            "FactFormer3dConfig",
            "Factorized transformer on 3D velocity: axis-wise attention chained K_x, K_y, K_z.",
        ),
        _spec(
            "ifactformer2d",
            "IFactFormer-m (2D)",
            2,
            "models.factformer",
            "FactFormer",
            "IFactFormer2dConfig",
            "Implicit factorized transformer, parallel form: axis kernels applied to the "
            "values separately, concatenated, normalised and projected; one block shared "
            "over n iterations.",
        ),
        _spec(
            "ifactformer3d",
            "IFactFormer-m (3D)",
            3,
            "models.factformer",
            "FactFormer",
            "IFactFormer3dConfig",
            "Implicit factorized transformer (parallel form) for channel flow velocity; "
            "one block shared over n iterations.",
        ),
        _spec(
            "unet2d",
            "U-Net (2D)",
            2,
            "models.unet",
            "UNet",
            "UNet2dConfig",
            "Convolutional encoder–decoder baseline with skip connections and periodic padding.",
        ),
    ]
)


def get_spec(arch: str) -> ModelSpec:
    """The spec registered under ``arch``; :class:`UnknownModelError` if there is none."""
    try:
        return MODELS[arch]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"unknown model architecture {arch!r}; known: {', '.join(sorted(MODELS))}"
        ) from None


def make_config(arch: str, config: dict[str, Any] | None = None):
    """The validated config object of ``arch`` (``ValueError`` naming a bad key or value)."""
    return get_spec(arch).config_cls.from_dict(config)


def contract_of(arch: str, config: dict[str, Any] | None = None) -> Contract:
    """The contract a model of ``arch`` with ``config`` would have, without building it."""
    return make_config(arch, config).contract()


def build_model(arch: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised model of architecture ``arch``.

    ``config`` may be partial (missing keys take the config class's defaults); keys the
    config class does not know raise ``ValueError`` naming them.
    """
    spec = get_spec(arch)
    return spec.model_cls(spec.config_cls.from_dict(config))


def count_parameters(arch: str, config: dict[str, Any] | None = None) -> int:
    """Parameters of ``build_model(arch, config)``, counted on the meta device (no memory)."""
    with torch.device("meta"):
        return parameter_count(build_model(arch, config))


def parameter_count(model: nn.Module) -> int:
    """The number of scalar parameters (buffers such as normalisation statistics excluded).

    Complex parameters, if a model has any, count as two real scalars each, matching the
    real/imag storage used by :class:`models.layers.SpectralConv2d`.
    """
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
