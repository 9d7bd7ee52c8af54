"""The training losses equal their definitions on random fields."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import make_loss, relative_h1, relative_h_minus1, relative_l1, relative_l2
from tests.fields import noise


def sobolev_by_definition(f: torch.Tensor, s: float, length: float) -> torch.Tensor:
    """(Σ_κ (1 + |κ|²)ˢ |f̂(κ)|² / n⁴)^½ per sample, from the FULL 2D DFT (no half plane),
    summed over channels: the definition, written independently of physics.norms."""
    n = f.shape[-1]
    f_hat = torch.fft.fft2(f)
    k = 2 * math.pi / length * torch.fft.fftfreq(n, 1 / n, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    weight = (1 + k2) ** s
    return ((weight * f_hat.abs() ** 2).sum(dim=(-3, -2, -1)) / n**4).sqrt()


@pytest.mark.parametrize("length", [1.0, 2 * math.pi])
def test_h_minus1_loss_equals_its_definition(length):
    target = noise(4, 2, 12, 12, seed=1)
    pred = target + 0.3 * noise(4, 2, 12, 12, seed=2)
    expected = (
        sobolev_by_definition(pred - target, -1, length) / sobolev_by_definition(target, -1, length)
    ).mean()
    assert relative_h_minus1(pred, target, length).item() == pytest.approx(
        expected.item(), rel=1e-12
    )
    assert make_loss("h-1", length)(pred, target).item() == pytest.approx(
        expected.item(), rel=1e-12
    )


def test_h1_loss_equals_its_definition():
    target = noise(3, 1, 10, 10, seed=3)
    pred = target + 0.1 * noise(3, 1, 10, 10, seed=4)
    expected = (
        sobolev_by_definition(pred - target, 1, 1.0) / sobolev_by_definition(target, 1, 1.0)
    ).mean()
    assert relative_h1(pred, target).item() == pytest.approx(expected.item(), rel=1e-12)


def test_lp_losses_equal_their_definitions():
    target = noise(3, 2, 8, 8, seed=5)
    pred = noise(3, 2, 8, 8, seed=6)
    for p, loss in ((2, relative_l2), (1, relative_l1)):
        per_sample = [
            (pred[i] - target[i]).abs().pow(p).sum() ** (1 / p)
            / target[i].abs().pow(p).sum() ** (1 / p)
            for i in range(3)
        ]
        assert loss(pred, target).item() == pytest.approx(torch.stack(per_sample).mean().item())


def test_h_minus1_forgives_small_scales_more_than_l2():
    """A small-scale error costs less in H⁻¹ than the same-size large-scale error."""
    n = 32
    x = torch.arange(n, dtype=torch.float64) / n
    target = torch.sin(2 * math.pi * x)[None, None, :, None].expand(1, 1, n, n).clone()
    fine = 0.1 * torch.sin(2 * math.pi * 8 * x)[None, None, :, None].expand(1, 1, n, n)
    coarse = 0.1 * torch.cos(2 * math.pi * x)[None, None, :, None].expand(1, 1, n, n)
    assert relative_l2(target + fine, target) == pytest.approx(
        relative_l2(target + coarse, target).item()
    )
    # Mode 8 against mode 1: the ratio is ((1 + 4π²)/(1 + 256π²))^½ ≈ 0.127.
    ratio = relative_h_minus1(target + fine, target) / relative_h_minus1(target + coarse, target)
    assert ratio.item() == pytest.approx(math.sqrt((1 + 4 * math.pi**2) / (1 + 256 * math.pi**2)))


def test_sobolev_losses_are_differentiable_and_refuse_non_square_fields():
    pred = torch.randn(2, 1, 8, 8, requires_grad=True)
    target = torch.randn(2, 1, 8, 8)
    relative_h_minus1(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="periodic square 2D"):
        make_loss("h-1")(torch.randn(2, 3, 8, 9, 4), torch.randn(2, 3, 8, 9, 4))
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("h2")
