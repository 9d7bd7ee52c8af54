"""Inference precision: run a trained operator in float32, bfloat16, float16 or int8.

* ``float32``: the model as trained.
* ``bfloat16`` / ``float16`` (CUDA only): weights and activations cast with
  ``model.to(dtype)``; the window is cast on the way in and the prediction back to float32
  on the way out. The spectral layers compute their FFTs in at least float32
  (``models.layers``), so only the pointwise and attention work runs in half precision.
  On a device without CUDA :func:`prepare` raises :class:`PrecisionUnavailable`.
* ``int8`` (CPU): dynamic quantisation (``torch.ao.quantization.quantize_dynamic``):
  ``nn.Linear`` weights stored as int8, activations quantised per call, accumulation in
  int32. The zoo does most pointwise work in 1×1 convolutions (``models.layers.pointwise``),
  which ``quantize_dynamic`` does not touch, so every 1×1 convolution is first rewritten as
  the equivalent :class:`PointwiseLinear` (same weights, a linear map over the channel axis).
  Spectral weights (complex), wider convolutions (U-Net's 3×3), norms and biases stay
  float32; :attr:`InferenceModel.quantized_fraction` says which share of the parameters
  became int8. The quantised model runs on the CPU even on a GPU worker.

``prepare(model, precision, device)`` returns an :class:`InferenceModel`: call it with a
float32 window ``(B, history, C, *space)`` and it returns float32 frames ``(B, out_steps, C,
*space)`` on its own device, whatever precision runs inside.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import nn

PRECISIONS = ("float32", "bfloat16", "float16", "int8")
HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class PrecisionUnavailable(RuntimeError):
    """This device cannot run the model at the requested precision."""


class PointwiseLinear(nn.Module):
    """A 1×1 convolution (1D, 2D or 3D, no groups) as an ``nn.Linear`` over the channel axis.

    ``(B, C_in, *space) → (B, C_out, *space)``, the same numbers as the convolution it was
    made from; it exists so that linear-layer tools (dynamic quantisation) reach the work.
    """

    def __init__(self, linear: nn.Module):
        super().__init__()
        self.linear = linear

    @classmethod
    def from_conv(cls, conv: nn.Conv1d | nn.Conv2d | nn.Conv3d) -> PointwiseLinear:
        linear = nn.Linear(conv.in_channels, conv.out_channels, bias=conv.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(conv.weight.reshape(conv.out_channels, conv.in_channels))
            if conv.bias is not None:
                linear.bias.copy_(conv.bias)
        return cls(linear.to(conv.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.movedim(1, -1)).movedim(-1, 1)


def is_pointwise_conv(module: nn.Module) -> bool:
    """A plain 1×1 convolution: kernel 1, stride 1, no padding, dilation 1, one group."""
    if not isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return False
    return (
        all(k == 1 for k in module.kernel_size)
        and all(s == 1 for s in module.stride)
        and all(d == 1 for d in module.dilation)
        and module.groups == 1
        and (isinstance(module.padding, str) or all(p == 0 for p in module.padding))
        and module.padding_mode == "zeros"
    )


def convert_pointwise(model: nn.Module) -> int:
    """Replaces, in place, every 1×1 convolution of ``model`` by a :class:`PointwiseLinear`;
    returns how many were replaced."""
    replaced = 0
    for name, child in list(model.named_children()):
        if is_pointwise_conv(child):
            setattr(model, name, PointwiseLinear.from_conv(child))
            replaced += 1
        else:
            replaced += convert_pointwise(child)
    return replaced


def _parameter_scalars(model: nn.Module) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def _quantize(model: nn.Module, names: set[str]) -> nn.Module:
    with warnings.catch_warnings():
        # torch.ao.quantization is marked deprecated in favour of torchao; it still works.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        spec = {name: torch.ao.quantization.default_dynamic_qconfig for name in names}
        return quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8).eval()


def _runs(model: nn.Module, example: torch.Tensor | None) -> bool:
    if example is None:
        return True
    try:
        with torch.no_grad():
            model(example)
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False
    return True


def _called(model: nn.Module, linears: dict[str, nn.Module], example: torch.Tensor) -> set[str]:
    """The linear layers ``model`` calls on ``example``: a layer that is never called (its
    weight is read directly by its parent) is left alone."""
    called: set[str] = set()
    hooks = [
        module.register_forward_hook(lambda *_, name=name: called.add(name))
        for name, module in linears.items()
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return called


def quantize_int8(model: nn.Module, example: torch.Tensor | None = None) -> tuple[nn.Module, float]:
    """A dynamically int8-quantised copy of ``model`` on the CPU, and the fraction of its
    parameters (counted as in ``models.registry.parameter_count``) now stored as int8: the
    weights of its linear layers, 1×1 convolutions included (biases stay float32).

    With an ``example`` input, only the linear layers the model calls on it are quantised (a
    layer whose parent reads its ``.weight`` tensor directly, which a quantised layer no
    longer has, keeps float32), and the result is checked to run on it; should it not, the
    layers are added one at a time and those that break it keep float32.
    """
    work = copy.deepcopy(model).to("cpu").float().eval()
    total = _parameter_scalars(work)
    convert_pointwise(work)
    linears = {name: m for name, m in work.named_modules() if type(m) is nn.Linear}
    example = example.to("cpu", torch.float32) if example is not None else None
    chosen = _called(work, linears, example) if example is not None else set(linears)
    out = _quantize(work, chosen)
    if not _runs(out, example):
        chosen_before, chosen = chosen, set()
        for name in sorted(chosen_before):
            if _runs(_quantize(work, chosen | {name}), example):
                chosen.add(name)
        out = _quantize(work, chosen)
    quantised = sum(linears[name].weight.numel() for name in chosen)
    return out, (quantised / total if total else 0.0)


def to_half(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``model`` (a copy) with its parameters and floating buffers cast to ``dtype``."""
    return copy.deepcopy(model).to(dtype).eval()


@dataclass
class InferenceModel:
    """A model prepared for one precision; call it like the model (float32 in and out)."""

    model: nn.Module
    precision: str
    device: torch.device
    dtype: torch.dtype
    quantized_fraction: float | None = None

    @property
    def contract(self):
        return self.model.contract

    @property
    def config(self):
        return self.model.config

    @torch.no_grad()
    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        out = self.model(window.to(self.device, self.dtype))
        return out.float()

    def synchronize(self) -> None:
        """Waits for queued GPU work, so a timer around a call measures the call."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def prepare(
    model: nn.Module,
    precision: str,
    device: str | torch.device = "cpu",
    example: torch.Tensor | None = None,
) -> InferenceModel:
    """``model`` ready to run at ``precision`` on ``device`` (int8: always the CPU; with an
    ``example`` window, layers that cannot be quantised are found and kept float32).

    Raises :class:`PrecisionUnavailable` for bfloat16/float16 without CUDA (or bfloat16 on a
    GPU without it) and ``ValueError`` for an unknown precision. ``model`` is not modified.
    """
    device = torch.device(device)
    if precision == "float32":
        return InferenceModel(model.to(device).float().eval(), precision, device, torch.float32)
    if precision in HALF:
        if device.type != "cuda":
            raise PrecisionUnavailable(
                f"{precision} inference needs a CUDA GPU; this worker runs on the "
                f"{device.type.upper()}"
            )
        if precision == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise PrecisionUnavailable(
                f"this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16 support"
            )
        dtype = HALF[precision]
        return InferenceModel(to_half(model.to(device), dtype), precision, device, dtype)
    if precision == "int8":
        quantised, fraction = quantize_int8(model, example)
        return InferenceModel(quantised, precision, torch.device("cpu"), torch.float32, fraction)
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
