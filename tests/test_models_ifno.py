"""IFNO: one Fourier layer shared across L iterations, h ← h + σ(K h + W h + b)/L."""

from __future__ import annotations

import itertools

import pytest
import torch

from models.checkpoint import load_model, save_model
from models.fno import FNO2dConfig
from models.ifno import IFNO, IFNOConfig
from models.registry import MODELS, build_model, count_parameters, parameter_count
from tests.helpers import randomise
from tests.learning import errors, fit, learning_problem

SMALL = {"width": 4, "modes": 3, "n_iterations": 3}


@pytest.mark.parametrize("space", [(16, 16), (24, 40), (13, 17)])
def test_shapes(space):
    model = build_model("ifno", {"channels": 2, "history": 3, **SMALL})
    randomise(model)
    y = model(torch.randn(2, 3, 2, *space))
    assert y.shape == (2, 1, 2, *space)
    assert model.contract.to_dict() == {"dims": 2, "channels": 2, "history": 3, "out_steps": 1}


def test_parameter_count_is_independent_of_the_iterations():
    """The formula is an FNO2d's with one layer, whatever L."""
    counts = set()
    for n_iterations in (1, 4, 16):
        cfg = IFNOConfig(channels=2, history=3, width=5, modes=3, n_iterations=n_iterations)
        c, w, m, h, ch = 3 * 2 + 2, 5, 3, 20, 2
        formula = (c * w + w) + (4 * w * w * m * m + w * w + w) + (w * h + h) + (h * ch + ch)
        assert formula == 1137
        assert parameter_count(IFNO(cfg)) == formula == cfg.parameter_count()
        assert count_parameters("ifno", cfg.to_dict()) == formula
        counts.add(formula)
    one_layer = FNO2dConfig(channels=2, history=3, width=5, modes=3, n_layers=1)
    assert counts == {one_layer.parameter_count()}
    no_grid = IFNOConfig(width=5, modes=3, add_grid=False)
    assert count_parameters("ifno", no_grid.to_dict()) == no_grid.parameter_count()


def test_one_shared_layer():
    model = build_model("ifno", SMALL)
    names = sorted(model.state_dict())
    assert [n for n in names if n.startswith("spectral")] == [
        "spectral.weight_neg",
        "spectral.weight_pos",
    ]
    assert [n for n in names if n.startswith("pointwise")] == ["pointwise.bias", "pointwise.weight"]


def test_iterations_are_forward_euler_steps_of_size_one_over_l():
    """The same weights with L, 2L, 4L iterations: h ← h + σ(·)/L is forward Euler for
    dh/ds = σ(K h + W h + b) on s ∈ [0, 1], so the outputs converge at first order
    (each doubling of L halves the change). Without the 1/L they would not converge."""
    x = torch.randn(2, 1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    outputs = []
    state = None
    for n_iterations in (4, 8, 16, 32):
        model = build_model("ifno", {**SMALL, "n_iterations": n_iterations, "residual": False})
        if state is None:
            randomise(model, seed=2)
            state = model.state_dict()
        model.load_state_dict(state)
        with torch.no_grad():
            outputs.append(model(x))
    changes = [(a - b).norm().item() for a, b in itertools.pairwise(outputs)]
    assert changes[0] > 0
    for coarse, fine in itertools.pairwise(changes):
        assert 0.4 < fine / coarse < 0.6


def test_untrained_residual_model_is_persistence():
    model = build_model("ifno", {**SMALL, "history": 2})
    x = torch.randn(2, 2, 1, 16, 16)
    torch.testing.assert_close(model(x), x[:, -1:])


def test_config_validation_and_grid_sentences():
    cfg = IFNOConfig(width=8, n_iterations=12, residual=False)
    assert IFNOConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"IFNOConfig\.n_iterations must be at least 1, got 0"):
        IFNOConfig(n_iterations=0)
    with pytest.raises(ValueError, match="unknown IFNOConfig keys: n_layers"):
        build_model("ifno", {"n_layers": 4})
    with pytest.raises(ValueError) as info:
        IFNOConfig(modes=12).check_grid((32, 20))
    assert str(info.value) == (
        "a 32×20 grid is too coarse for IFNO with 12 Fourier modes: each axis needs at "
        "least 2·modes = 24 points; use fewer modes or a finer grid"
    )
    with pytest.raises(ValueError, match="too coarse for IFNO"):
        build_model("ifno", SMALL)(torch.randn(1, 1, 1, 5, 16))
    with pytest.raises(ValueError, match=r"IFNO expects \(B, 1, 1, H, W\)"):
        build_model("ifno", SMALL)(torch.randn(1, 1, 16, 16))
    assert MODELS["ifno"].config_cls is IFNOConfig and MODELS["ifno"].model_cls is IFNO
    assert all(field["help"] for field in IFNOConfig.form_fields())


def test_learns_the_exact_map():
    torch.manual_seed(0)
    train, val = learning_problem(1, (32, 32))
    model = build_model("ifno", {"width": 8, "modes": 4, "n_iterations": 4})
    fit(model, train, steps=150, lr=1e-2)
    model_err, persistence_err = errors(model, val)
    assert model_err < 0.1 * persistence_err


def test_checkpoint_round_trip(tmp_path):
    config = {"history": 2, **SMALL}
    model = build_model("ifno", config)
    randomise(model)
    model.set_normalization(torch.tensor([0.2]), torch.tensor([1.5]))
    save_model(tmp_path, "ifno", config, model, {"note": "round trip"})
    loaded, info = load_model(tmp_path)
    x = torch.randn(2, 2, 1, 16, 18)
    assert torch.equal(loaded(x), model.eval()(x))
    assert info["config"] == IFNOConfig(**config).to_dict()
    assert info["parameter_count"] == IFNOConfig(**config).parameter_count()
