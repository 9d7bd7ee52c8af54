"""The training loop with a physics loss: the objective is data_weight·data +
pde_weight·physics, events carry both parts and the validation residual, label-free
training never reads a target-only frame, and bad weights are refused. (That physics-only
training learns is tests/test_pino_training.py.)"""

from __future__ import annotations

import pytest
import torch

from models.pde_loss import make_pde_loss
from models.registry import build_model
from models.training import (
    TrainConfig,
    data_pde_residual,
    evaluate_pde_residual,
    train,
    unrolled_predictions,
)
from models.windows import Windows
from physics.flows import get_flow

FLOW = get_flow("kolmogorov2d")
N = 16
FRAME_DT = 0.05
TINY_FNO = {"width": 6, "modes": 4, "n_layers": 1}


@pytest.fixture(scope="module")
def trajectories() -> torch.Tensor:
    """Four Kolmogorov-flow trajectories of 3 frames 0.05 apart on 16², (4, 3, 1, 16, 16)."""
    solver = FLOW.make_solver(N)
    w = solver.advance(FLOW.make_initial_condition("mcwilliams", N, batch=4, seed=5), 0.5)
    frames = [w]
    for _ in range(2):
        w = solver.advance(w, FRAME_DT)
        frames.append(w)
    return torch.stack(frames, dim=1)


def pde_loss():
    return make_pde_loss(FLOW.name, {"nu": FLOW.nu, "drag": FLOW.drag}, FRAME_DT, FLOW.length)


def fno() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("fno2d", TINY_FNO)


def config(**overrides) -> TrainConfig:
    base = dict(epochs=2, batch_size=2, lr=3e-3, weight_decay=0.0, events_every=1, amp=False)
    return TrainConfig(**{**base, **overrides})


def test_events_carry_both_parts_and_the_objective_is_their_weighted_sum(trajectories):
    events: list[dict] = []
    loss = pde_loss()
    result = train(
        fno(),
        trajectories,
        config(data_weight=0.5, pde_weight=2.0),
        on_event=events.append,
        pde_loss=loss,
    )
    steps = [e for e in events if e["type"] == "train"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert steps and all({"data_loss", "pde_loss"} <= set(e) for e in steps)
    for e in steps:  # one step per event here: the parts are that step's
        assert e["train_loss"] == pytest.approx(0.5 * e["data_loss"] + 2.0 * e["pde_loss"])
    # The untrained FNO is persistence (its last layer starts at zero): residual exactly 1.
    assert steps[0]["pde_loss"] == pytest.approx(1.0, abs=1e-5)
    assert all("val_pde_residual" in e for e in epochs)
    # The reported residual is the physics loss of the final model's one-step predictions on
    # the held-out windows, in physical units.
    val = Windows(trajectories, result.val_trajectories, 1, 1)
    x, _ = val.batch(torch.arange(len(val)), torch.device("cpu"))
    with torch.no_grad():
        by_hand = loss(x, result.model(x)).item()
    assert result.val_pde_residual == pytest.approx(by_hand, rel=1e-5)
    assert epochs[-1]["val_pde_residual"] == result.val_pde_residual
    assert evaluate_pde_residual(result.model, val, 1, torch.device("cpu"), loss) == pytest.approx(
        by_hand, rel=1e-5
    )


def test_a_data_only_run_reports_as_before(trajectories):
    events: list[dict] = []
    result = train(fno(), trajectories, config(epochs=1), on_event=events.append)
    assert not any("pde_loss" in e or "data_loss" in e for e in events)
    assert not any("val_pde_residual" in e for e in events)
    assert result.val_pde_residual is None


def test_label_free_training_never_reads_a_target_only_frame(trajectories):
    """History 1, one step: the last frame of each trajectory is only ever a target. With
    data_weight 0 replacing it by noise changes nothing the model learns; with data weight
    it does (so the comparison can fail)."""
    noisy = trajectories.clone()
    noisy[:, -1] = torch.randn(noisy[:, -1].shape, generator=torch.Generator().manual_seed(1))

    def weights(data, data_weight):
        events: list[dict] = []
        cfg = config(data_weight=data_weight, pde_weight=1.0)
        model = train(fno(), data, cfg, on_event=events.append, pde_loss=pde_loss()).model
        return torch.cat([p.detach().flatten() for p in model.state_dict().values()]), events

    clean, clean_events = weights(trajectories, 0.0)
    dirty, dirty_events = weights(noisy, 0.0)
    assert torch.equal(clean, dirty)
    pde = [e["pde_loss"] for e in clean_events if e["type"] == "train"]
    assert pde == [e["pde_loss"] for e in dirty_events if e["type"] == "train"]
    # The targets are still read for the curves: the reported data loss sees the noise.
    data = [e["data_loss"] for e in clean_events if e["type"] == "train"]
    assert data != [e["data_loss"] for e in dirty_events if e["type"] == "train"]
    with_data, _ = weights(trajectories, 1.0)
    with_noisy_data, _ = weights(noisy, 1.0)
    assert not torch.equal(with_data, with_noisy_data)


def test_push_forward_pairs_the_last_call_with_its_own_window():
    torch.manual_seed(0)
    model = build_model("fno2d", {**TINY_FNO, "residual": False})
    x = torch.randn(2, 1, 1, 8, 8)
    frames, window = unrolled_predictions(model, x, 3, push_forward=True, with_last_window=True)
    second = model(model(x))
    torch.testing.assert_close(window, second)
    torch.testing.assert_close(frames, model(second))
    assert not window.requires_grad
    frames, window = unrolled_predictions(model, x, 1, with_last_window=True)
    assert window is x


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data_weight": -1.0}, "data_weight must be finite and non-negative"),
        ({"pde_weight": float("nan")}, "pde_weight must be finite and non-negative"),
        ({"data_weight": 0.0, "pde_weight": 0.0}, "cannot both be 0"),
    ],
)
def test_bad_weights_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_a_physics_weight_needs_a_physics_loss(trajectories):
    with pytest.raises(ValueError, match="needs a physics loss"):
        train(fno(), trajectories, config(pde_weight=1.0))


def test_epochs_report_the_datas_own_residual(trajectories):
    """``data_pde_residual`` is the physics loss of the validation windows' true next frames
    (a perfect model's score), measured once and repeated on every epoch event."""
    events: list[dict] = []
    loss = pde_loss()
    result = train(
        fno(),
        trajectories,
        config(data_weight=0.0, pde_weight=1.0),
        on_event=events.append,
        pde_loss=loss,
    )
    epochs = [e for e in events if e["type"] == "epoch"]
    val = Windows(trajectories, result.val_trajectories, 1, 1)
    x, y = val.batch(torch.arange(len(val)), torch.device("cpu"))
    with torch.no_grad():
        truth = loss(x, y).item()
        persistence = loss(x, x).item()
    assert [e["data_pde_residual"] for e in epochs] == pytest.approx([truth] * len(epochs))
    assert data_pde_residual(val, 1, torch.device("cpu"), loss) == pytest.approx(truth)
    # The solver's frames satisfy the equations far better than persistence (which is 1).
    assert persistence == pytest.approx(1.0, abs=1e-5) and truth < 0.1 * persistence
