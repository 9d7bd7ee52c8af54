"""The before/after report of a fine-tune (models/finetune_report.py), against maps whose
errors are known in closed form: on trajectories w_t = aᵗ·w₀, a model that multiplies its
last frame by b has one-step error |b − a|/a (in every norm: the error is a multiple of the
truth), rollout error |bʰ − aʰ|/aʰ at horizon h and persistence |1 − aʰ|/aʰ. The held-out
trajectories decay by another factor than the training ones, so numbers measured on the
wrong ones, or before and after swapped, cannot pass."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from models.base import Contract
from models.finetune_report import Errors, finetune_report, held_out_split, report_horizons
from models.registry import build_model
from models.training import TrainConfig, train
from tests.fields import mode, noise

N = 16
A_HELD, A_TRAIN = 0.9, 1.1


class Scale(nn.Module):
    """Frame k of a call (k = 1 … out_steps) is the last input frame times ``factor``ᵏ."""

    def __init__(self, factor: float, history: int = 1, out_steps: int = 1):
        super().__init__()
        self.factor = factor
        self.dummy = nn.Parameter(torch.zeros(()))
        self.contract = Contract(dims=2, channels=1, history=history, out_steps=out_steps)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        k = torch.arange(1, self.contract.out_steps + 1, dtype=window.dtype)
        return window[:, -1:] * self.factor ** k.view(1, -1, 1, 1, 1)


class AddField(nn.Module):
    """Persistence plus a fixed field (an error of known spectrum, the same every step)."""

    def __init__(self, field: torch.Tensor):
        super().__init__()
        self.field = nn.Parameter(field.float().reshape(1, 1, 1, N, N))
        self.contract = Contract(dims=2, channels=1)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return window[:, -1:] + self.field


def decaying(factors: list[float], n_time: int) -> torch.Tensor:
    """Trajectories (len(factors), n_time, 1, N, N): trajectory i is factors[i]ᵗ·w₀ᵢ."""
    out = []
    for i, a in enumerate(factors):
        w0 = noise(1, N, N, seed=i)
        out.append(torch.stack([w0 * a**t for t in range(n_time)]))
    return torch.stack(out).float()


def test_before_after_and_persistence_are_the_exact_errors_on_the_held_out_trajectories():
    held = [1, 3]
    factors = [A_HELD if i in held else A_TRAIN for i in range(5)]
    data = decaying(factors, 12)
    base, tuned = Scale(0.7), Scale(0.85)
    report = finetune_report(base, tuned, data, held, interval=0.5)

    a = A_HELD
    assert report.trajectories == held
    assert report.horizons == [1, 2, 5, 10, 11] and report.t == [0.5, 1.0, 2.5, 5.0, 5.5]
    for errors, b in ((report.before, 0.7), (report.after, 0.85), (report.persistence, 1.0)):
        assert errors.one_step_rel_l2 == pytest.approx(abs(b - a) / a, rel=1e-5)
        assert errors.one_step_rel_h_minus1 == pytest.approx(abs(b - a) / a, rel=1e-5)
        expected = [abs(b**h - a**h) / a**h for h in report.horizons]
        assert errors.rollout_rel_l2 == pytest.approx(expected, rel=1e-4)
    # 0.7 → 0.85 against 0.9: one-step error 0.222 → 0.0556, 75 % lower.
    changes = report.changes()
    assert changes["one_step_rel_l2"] == pytest.approx((0.05 - 0.2) / 0.2, rel=1e-4)
    assert all(c < 0 for c in changes["rollout_rel_l2"])
    assert report.improved()

    swapped = finetune_report(tuned, base, data, held)
    assert swapped.before.one_step_rel_l2 == pytest.approx(report.after.one_step_rel_l2)
    assert not swapped.improved() and swapped.changes()["one_step_rel_l2"] == pytest.approx(3.0)

    # The same models on the training trajectories (×1.1 per step) score otherwise.
    on_train = finetune_report(base, tuned, data, [0, 2, 4])
    assert on_train.after.one_step_rel_l2 == pytest.approx(abs(0.85 - 1.1) / 1.1, rel=1e-5)

    stored = json.loads(json.dumps(report.to_dict()))
    assert stored["before"]["rollout_rel_l2"] == pytest.approx(report.before.rollout_rel_l2)
    assert stored["improved"] is True and stored["horizons"] == report.horizons


def test_every_frame_of_a_multi_step_call_is_scored():
    data = decaying([A_HELD, A_HELD], 9)
    a, b, history, steps = A_HELD, 0.8, 2, 3
    report = finetune_report(
        Scale(b, history, steps), Scale(a, history, steps), data, [0, 1], horizons=[1, 3, 4, 7]
    )
    # One call: frames k = 1, 2, 3 after the window, each weighing the same.
    one_step = sum(abs(b**k - a**k) / a**k for k in (1, 2, 3)) / 3
    assert report.before.one_step_rel_l2 == pytest.approx(one_step, rel=1e-5)
    assert report.after.one_step_rel_l2 == pytest.approx(0.0, abs=1e-6)
    persistence = sum(abs(1 - a**k) / a**k for k in (1, 2, 3)) / 3
    assert report.persistence.one_step_rel_l2 == pytest.approx(persistence, rel=1e-5)
    # Rollouts start from the window's last frame (t = history − 1 = 1) for horizons ≤ 7.
    assert report.horizons == [1, 3, 4, 7]
    expected = [abs(b**h - a**h) / a**h for h in report.horizons]
    assert report.before.rollout_rel_l2 == pytest.approx(expected, rel=1e-4)


def test_h_minus1_weighs_an_error_by_its_wavenumber():
    """Truth: a steady cos(2πx). An error δ·cos(2π·5x) has relative L² δ and relative H⁻¹
    δ·√((1 + (2π)²)/(1 + (10π)²)); an error δ·cos(2πx), δ in both norms."""
    truth = mode(N, 1, 0)
    data = truth.float().expand(1, 6, 1, N, N).clone()
    delta = 0.05
    high, low = AddField(delta * mode(N, 5, 0)), AddField(delta * mode(N, 1, 0))
    report = finetune_report(high, low, data, [0], length=1.0)
    k1, k5 = 2 * math.pi, 10 * math.pi
    assert report.before.one_step_rel_l2 == pytest.approx(delta, rel=1e-5)
    assert report.before.one_step_rel_h_minus1 == pytest.approx(
        delta * math.sqrt((1 + k1**2) / (1 + k5**2)), rel=1e-5
    )
    assert report.after.one_step_rel_h_minus1 == pytest.approx(delta, rel=1e-5)
    # Rollouts add the field once per step: h·δ after h steps; persistence is exact here.
    assert report.after.rollout_rel_l2 == pytest.approx([h * delta for h in (1, 2, 5)], rel=1e-4)
    assert report.persistence.rollout_rel_l2 == pytest.approx([0, 0, 0], abs=1e-7)
    # A box of side 2π has wavenumbers 1 and 5: the weights change, the L² does not.
    on_2pi = finetune_report(high, low, data, [0], length=2 * math.pi)
    assert on_2pi.before.one_step_rel_h_minus1 == pytest.approx(delta * math.sqrt(2 / 26), rel=1e-5)


def test_a_rollout_the_guard_stopped_has_no_errors_after_the_stop():
    steady = decaying([1.0], 8)
    report = finetune_report(Scale(4.0), Scale(1.0), steady, [0])
    # ×4 per step: mean square 16× the truth's at step 1, over the guard's 10×.
    assert report.before.stopped_at == 1
    assert report.before.rollout_rel_l2 == [None] * len(report.horizons)
    assert report.changes()["rollout_rel_l2"] == [None] * len(report.horizons)
    assert report.after.stopped_at is None and report.improved()
    assert json.loads(json.dumps(report.to_dict()))["before"]["stopped_at"] == 1


def test_a_stored_baseline_is_used_as_it_is_and_bad_input_is_refused():
    data = decaying([A_HELD, A_HELD], 6)
    horizons = report_horizons(6, 1)
    assert horizons == [1, 2, 5]
    before = Errors(0.5, 0.4, [0.1, 0.2, 0.3])
    report = finetune_report(Scale(0.1), Scale(A_HELD), data, [0, 1], before=before)
    assert report.before is before
    with pytest.raises(ValueError, match="other horizons"):
        finetune_report(Scale(0.1), Scale(A_HELD), data, [0], before=Errors(0.5, 0.4, [0.1]))
    with pytest.raises(ValueError, match="no held-out"):
        finetune_report(Scale(0.1), Scale(A_HELD), data, [])
    with pytest.raises(ValueError, match="different windows"):
        finetune_report(Scale(0.1, history=2), Scale(A_HELD), data, [0])
    with pytest.raises(ValueError, match="more than 1 frame"):
        report_horizons(1, 1)


@pytest.mark.parametrize(("seed", "val_fraction"), [(0, 0.2), (3, 0.4), (7, 0.5)])
def test_the_held_out_split_is_the_trainers(seed, val_fraction):
    """Known before training starts, so the base can be scored on it first."""
    trajectories = torch.randn(6, 3, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    model = build_model("fno2d", {"width": 2, "modes": 2, "n_layers": 1})
    config = TrainConfig(epochs=1, batch_size=8, val_fraction=val_fraction, seed=seed)
    outcome = train(model, trajectories, config)
    train_idx, held = held_out_split(6, val_fraction, seed)
    assert (train_idx, held) == (outcome.train_trajectories, outcome.val_trajectories)
    assert held and not set(held) & set(train_idx)
    assert held_out_split(6, 0.0, seed)[0] == held_out_split(6, 0.0, seed)[1]
