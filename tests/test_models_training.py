"""The training loop: it learns, it is deterministic, it splits by trajectory, it unrolls,
it checkpoints atomically and resumes exactly where it stopped.

The model under training is a tiny U-Net (any contract-following model would do); the data
are exact advection–diffusion trajectories from ``tests/learning.py``.
"""

from __future__ import annotations

import json

import pytest
import torch

from models.registry import build_model
from models.train_state import latest_directory
from models.training import (
    MIN_TRAIN_POINTS,
    TrainConfig,
    TrainingStopped,
    event_interval,
    train,
    unrolled_predictions,
)
from tests.learning import advect_diffuse, smooth_fields

SPACE = (16, 16)
UNET = {"width": 8, "levels": 2, "groups": 4}
FAST = TrainConfig(epochs=12, batch_size=4, lr=5e-3, weight_decay=0.0, events_every=4)


@pytest.fixture(scope="module")
def trajectories() -> torch.Tensor:
    return advect_diffuse(smooth_fields(10, 1, SPACE, seed=3), steps=6)


def unet(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("unet2d", {**UNET, **overrides})


@pytest.fixture(scope="module")
def trained(trajectories):
    events: list[dict] = []
    result = train(unet(), trajectories, FAST, on_event=events.append)
    return result, events


def test_model_learns_well_below_persistence(trained):
    result, _ = trained
    assert result.val_rel_l2 < 0.3 * result.persistence_rel_l2
    assert result.history[-1]["val_rel_l2"] < result.history[0]["val_rel_l2"]


def test_split_is_by_trajectory(trained, trajectories):
    result, _ = trained
    assert set(result.train_trajectories).isdisjoint(result.val_trajectories)
    assert sorted(result.train_trajectories + result.val_trajectories) == list(range(10))
    assert len(result.val_trajectories) == 2  # val_fraction 0.2 of 10


def test_normalisation_comes_from_training_trajectories(trained, trajectories):
    result, _ = trained
    train_frames = trajectories[result.train_trajectories]
    assert result.model.in_mean.item() == pytest.approx(train_frames.mean().item(), abs=1e-5)
    assert result.model.in_std.item() == pytest.approx(train_frames.std().item(), rel=1e-4)


def test_events_carry_loss_rate_throughput_and_eta(trained):
    _, events = trained
    train_events = [e for e in events if e["type"] == "train"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 13))
    assert set(epochs[0]) == {
        "type",
        "epoch",
        "epochs",
        "train_loss",
        "val_rel_l2",
        "persistence_rel_l2",
    }
    assert set(train_events[0]) == {
        "type",
        "epoch",
        "step",
        "total_steps",
        "train_loss",
        "lr",
        "samples_per_s",
        "eta_s",
    }
    # A short run reports more often than events_every: at least 50 points (every step
    # here, where the whole run has fewer than 50 × 4 steps).
    total = train_events[0]["total_steps"]
    every = event_interval(FAST.events_every, total)
    assert every == max(1, min(FAST.events_every, total // MIN_TRAIN_POINTS))
    assert [e["step"] for e in train_events] == list(range(every, total + 1, every))
    assert len(train_events) >= min(total, MIN_TRAIN_POINTS)
    assert train_events[-1]["eta_s"] < train_events[0]["eta_s"]
    assert all(e["samples_per_s"] > 0 for e in train_events)


def test_event_interval_gives_a_short_run_at_least_50_points():
    assert event_interval(10, 30) == 1  # 30 steps: every step
    assert event_interval(10, 50) == 1
    assert event_interval(10, 120) == 2  # 60 points
    assert event_interval(10, 499) == 9
    assert event_interval(10, 100_000) == 10  # a long run keeps events_every
    assert event_interval(1, 100_000) == 1
    for total in (1, 7, 50, 51, 99, 100, 333, 501, 2000):
        every = event_interval(10, total)
        assert total // every >= min(total, MIN_TRAIN_POINTS) or every == 10


def test_same_seed_gives_identical_weights(trajectories):
    a = train(unet(), trajectories, TrainConfig(epochs=1, batch_size=8)).model
    b = train(unet(), trajectories, TrainConfig(epochs=1, batch_size=8)).model
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_resume_continues_exactly_where_it_stopped(trajectories, tmp_path):
    config = TrainConfig(epochs=3, batch_size=8, lr=3e-3)
    straight = train(unet(), trajectories, config).model

    steps_per_epoch = 6  # 8 training trajectories × 6 one-step windows / batch 8
    polls = {"n": 0}

    def stop_in_third_epoch() -> bool:
        polls["n"] += 1
        return polls["n"] > 2 * steps_per_epoch + 1

    with pytest.raises(TrainingStopped) as stopped:
        train(
            unet(), trajectories, config, should_stop=stop_in_third_epoch, checkpoint_dir=tmp_path
        )
    assert stopped.value.epoch == 3
    assert latest_directory(tmp_path).name == "epoch-0002"

    events: list[dict] = []
    # A fresh model (as a redelivered job would build): everything comes from the checkpoint.
    resumed = train(unet(), trajectories, config, on_event=events.append, checkpoint_dir=tmp_path)
    assert events[0] == {"type": "resumed", "epoch": 2, "step": 2 * steps_per_epoch}
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [3]
    assert resumed.resumed_from_epoch == 2
    assert [e["epoch"] for e in resumed.history] == [1, 2, 3]
    for (name, pa), pb in zip(
        straight.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name


def test_checkpoints_are_replaced_atomically(trajectories, tmp_path):
    train(unet(), trajectories, TrainConfig(epochs=2, batch_size=16), checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "latest.json").read_text()) == {"directory": "epoch-0002"}
    # Only the latest epoch is kept, and no temporary directory is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "latest.json"]
    assert sorted(p.name for p in (tmp_path / "epoch-0002").iterdir()) == [
        "state.json",
        "state.safetensors",
    ]


def test_a_finished_checkpoint_resumes_to_the_same_result(trajectories, tmp_path):
    config = TrainConfig(epochs=1, batch_size=16)
    first = train(unet(), trajectories, config, checkpoint_dir=tmp_path)
    again = train(unet(), trajectories, config, checkpoint_dir=tmp_path)
    assert again.resumed_from_epoch == 1
    assert again.val_rel_l2 == pytest.approx(first.val_rel_l2)


def test_step_decay_halves_the_rate_every_step_epochs(trajectories):
    events: list[dict] = []
    config = TrainConfig(
        epochs=3,
        batch_size=16,
        lr=1e-3,
        scheduler="step",
        step_epochs=1,
        gamma=0.5,
        events_every=1,
    )
    train(unet(), trajectories, config, on_event=events.append)
    rates = {e["epoch"]: e["lr"] for e in events if e["type"] == "train"}
    assert rates == pytest.approx({1: 1e-3, 2: 5e-4, 3: 2.5e-4})


def test_unrolled_training_and_push_forward_learn(trajectories):
    for push_forward in (False, True):
        config = TrainConfig(epochs=8, batch_size=4, lr=5e-3, unroll=2, push_forward=push_forward)
        result = train(unet(), trajectories, config)
        assert result.val_rel_l2 < 0.5 * result.persistence_rel_l2, push_forward


def test_push_forward_cuts_the_gradient_before_the_last_call():
    model = unet()
    with torch.no_grad():
        model.head.weight.normal_()  # a model that is not persistence, so x matters
    x = torch.randn(2, 1, 1, *SPACE, requires_grad=True)
    pred = unrolled_predictions(model, x, unroll=2, push_forward=True)
    assert pred.shape == (2, 1, 1, *SPACE)  # the last call's frame only
    pred.sum().backward()
    assert x.grad is None  # x reached the last call only through a no-grad call

    x.grad = None
    pred = unrolled_predictions(model, x, unroll=2, push_forward=False)
    assert pred.shape == (2, 2, 1, *SPACE)
    pred[:, 1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sobolev_losses_train(trajectories):
    for loss in ("h-1", "h1", "rel_l1"):
        result = train(
            unet(), trajectories, TrainConfig(epochs=8, batch_size=4, lr=5e-3, loss=loss)
        )
        assert result.val_rel_l2 < 0.5 * result.persistence_rel_l2, loss


def test_should_stop_raises_and_keeps_weights(trajectories):
    with pytest.raises(TrainingStopped) as stopped:
        train(unet(), trajectories, FAST, should_stop=lambda: True)
    assert stopped.value.epoch == 1 and stopped.value.step == 0


def test_bad_settings_are_refused(trajectories):
    with pytest.raises(ValueError, match="push_forward needs unroll"):
        TrainConfig(push_forward=True)
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="h2")
    with pytest.raises(ValueError, match="cannot hold a window"):
        train(unet(), trajectories, TrainConfig(unroll=7))
    with pytest.raises(ValueError, match="expects trajectories"):
        train(unet(channels=2), trajectories, TrainConfig())
