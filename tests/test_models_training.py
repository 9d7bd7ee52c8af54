"""Training and rollout: the FNO learns an exactly known one-step map.

The data are solutions of linear advection–diffusion on the periodic unit square,

    ∂u/∂t + c·∇u = ν ∇²u,

advanced exactly in Fourier space: û_k(t + Δt) = û_k(t) · exp(−(2πi k·c + ν (2π|k|)²) Δt).
With c = (1, 0.5) and Δt = 0.25 each frame is shifted by a quarter period along x, so
persistence (predicting frame t+1 by frame t) is a poor predictor (relative L2 ≈ 1.4),
while the one-step map is a Fourier multiplier an FNO can represent exactly.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.registry import build_model, parameter_count
from models.rollout import autoregressive_rollout
from models.training import TrainConfig, TrainingStopped, train_one_step

N = 32
MODEL = {"width": 4, "modes": 5, "n_layers": 2}  # 3353 parameters
FAST = TrainConfig(epochs=12, batch_size=8, lr=1e-2, weight_decay=0.0, events_every=5)


def advection_diffusion(
    n_traj: int,
    n_time: int,
    n: int = N,
    kmax: int = 4,
    velocity: tuple[float, float] = (1.0, 0.5),
    nu: float = 2e-3,
    dt: float = 0.25,
    seed: int = 0,
) -> torch.Tensor:
    """Exact trajectories ``(n_traj, n_time, 1, n, n)`` from random smooth initial fields
    (Fourier modes with |k_x|, |k_y| ≤ kmax, amplitude ∝ 1/(1 + |k|²)), unit std overall."""
    g = torch.Generator().manual_seed(seed)
    ky = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64).view(n, 1)
    kx = torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64).view(1, -1)
    k2 = kx**2 + ky**2
    amplitude = ((ky.abs() <= kmax) & (kx <= kmax) & (k2 > 0)) / (1 + k2)
    shape = (n_traj, n, n // 2 + 1)
    coeff = amplitude * torch.complex(
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )
    step = torch.exp(
        -(2j * math.pi * (velocity[0] * kx + velocity[1] * ky) + nu * (2 * math.pi) ** 2 * k2) * dt
    )
    frames = []
    for _ in range(n_time):
        frames.append(torch.fft.irfft2(coeff, s=(n, n)))
        coeff = coeff * step
    u = torch.stack(frames, dim=1)
    return (u / u.std()).unsqueeze(2).float()


@pytest.fixture(scope="module")
def trajectories() -> torch.Tensor:
    return advection_diffusion(n_traj=10, n_time=9)


def _fresh_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("fno2d", MODEL)


@pytest.fixture(scope="module")
def trained(trajectories):
    events: list[dict] = []
    result = train_one_step(_fresh_model(), trajectories, FAST, on_event=events.append)
    return result, events


def test_model_learns_the_exact_map(trained):
    result, _ = trained
    assert parameter_count(result.model) == 3353
    print(f"val rel L2 {result.val_rel_l2:.4f}, persistence {result.persistence_rel_l2:.4f}")
    assert result.persistence_rel_l2 > 1.0  # the problem is not solvable by copying
    assert result.val_rel_l2 < 0.3 * result.persistence_rel_l2
    assert result.history[-1]["val_rel_l2"] < result.history[0]["val_rel_l2"]
    assert not result.validated_on_training_data


def test_split_is_by_trajectory(trained, trajectories):
    result, _ = trained
    train, val = set(result.train_trajectories), set(result.val_trajectories)
    assert train.isdisjoint(val)
    assert train | val == set(range(trajectories.shape[0]))
    assert len(val) == 2  # val_fraction 0.2 of 10


def test_normalisation_is_set_from_training_trajectories(trained, trajectories):
    result, _ = trained
    train = trajectories[result.train_trajectories]
    torch.testing.assert_close(result.model.in_mean, train.mean().reshape(1))
    torch.testing.assert_close(result.model.in_std, train.std().reshape(1))


def test_events_have_documented_keys(trained):
    result, events = trained
    train_events = [e for e in events if e["type"] == "train"]
    epoch_events = [e for e in events if e["type"] == "epoch"]
    assert train_events and len(epoch_events) == FAST.epochs
    for e in train_events:
        assert set(e) == {
            "type", "epoch", "step", "total_steps", "train_loss", "lr", "samples_per_s"
        }  # fmt: skip
        assert e["step"] % FAST.events_every == 0
    # 8 trajectories × 8 pairs = 64 training pairs = 8 batches of 8 per epoch.
    assert train_events[-1]["total_steps"] == FAST.epochs * 8
    for e in epoch_events:
        assert set(e) == {"type", "epoch", "train_loss", "val_rel_l2", "persistence_rel_l2"}
    assert [e["epoch"] for e in epoch_events] == list(range(1, FAST.epochs + 1))
    assert result.history == epoch_events


def test_same_seed_same_losses(trajectories):
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=3)
    a = train_one_step(_fresh_model(), trajectories, config)
    b = train_one_step(_fresh_model(), trajectories, config)
    assert a.history == b.history
    assert a.val_trajectories == b.val_trajectories
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_single_trajectory_validates_on_training_data(trajectories):
    result = train_one_step(_fresh_model(), trajectories[:1], TrainConfig(epochs=1, batch_size=8))
    assert result.validated_on_training_data
    assert result.train_trajectories == result.val_trajectories == [0]
    assert result.notes


def test_should_stop_raises(trajectories):
    polls = []

    def stop_after_three() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(TrainingStopped) as info:
        train_one_step(_fresh_model(), trajectories, FAST, should_stop=stop_after_three)
    assert info.value.step == 3 and info.value.epoch == 1


def test_rollout_yields_frames(trained, trajectories):
    result, _ = trained
    x0 = trajectories[result.val_trajectories, 0]
    frames = autoregressive_rollout(result.model, x0, steps=4)
    first = next(frames)
    assert torch.is_grad_enabled()  # no_grad does not leak out of the generator
    rest = list(frames)
    assert len(rest) == 3
    for frame in [first, *rest]:
        assert frame.shape == x0.shape and not frame.requires_grad
    assert not result.model.training
    # The learned map stays far better than persistence over a short rollout.
    truth = trajectories[result.val_trajectories, 4]
    err = ((rest[-1] - truth).norm() / truth.norm()).item()
    assert err < 0.3 * ((x0 - truth).norm() / truth.norm()).item()
