"""IFNO and IFNO3d: one Fourier layer shared across L iterations, h ← h + σ(K h + W h + b)/L
(3D: channel-flow velocity on (X, Y, Z) with domain padding on the wall-normal Y)."""

from __future__ import annotations

import itertools

import pytest
import torch

from models.checkpoint import load_model, save_model
from models.fno import FNO2dConfig, FNO3dConfig
from models.ifno import IFNO, IFNO3d, IFNO3dConfig, IFNOConfig
from models.registry import MODELS, build_model, count_parameters, parameter_count
from tests.helpers import randomise
from tests.learning import errors, fit, learning_problem, smooth_fields

SMALL = {"width": 4, "modes": 3, "n_iterations": 3}
SMALL3D = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 2, "n_iterations": 3, "pad_y": 3}


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


@pytest.mark.parametrize("arch", ["ifno", "ifno3d"])
def test_iterations_are_forward_euler_steps_of_size_one_over_l(arch):
    """The same weights with L, 2L, 4L iterations: h ← h + σ(·)/L is forward Euler for
    dh/ds = σ(K h + W h + b) on s ∈ [0, 1], so the outputs converge at first order
    (each doubling of L halves the change). Without the 1/L they would not converge."""
    config, shape = (SMALL, (1, 16, 16)) if arch == "ifno" else (SMALL3D, (3, 8, 9, 6))
    x = torch.randn(2, 1, *shape, generator=torch.Generator().manual_seed(1))
    outputs = []
    state = None
    for n_iterations in (4, 8, 16, 32):
        model = build_model(arch, {**config, "n_iterations": n_iterations, "residual": False})
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


# --- IFNO3d ---------------------------------------------------------------------------


@pytest.mark.parametrize("space", [(8, 12, 8), (9, 13, 7), (6, 3, 4)])
def test_ifno3d_shapes_and_contract(space):
    model = build_model("ifno3d", {"history": 2, **SMALL3D})
    randomise(model)
    y = model(torch.randn(2, 2, 3, *space))
    assert y.shape == (2, 1, 3, *space)
    assert model.contract.to_dict() == {"dims": 3, "channels": 3, "history": 2, "out_steps": 1}
    assert isinstance(model, IFNO3d)


def test_ifno3d_parameter_count_is_independent_of_the_iterations():
    """The documented formula, counted by hand: an FNO3d's with one layer, whatever L."""
    counts = set()
    for n_iterations in (1, 4, 16):
        cfg = IFNO3dConfig(
            history=2, width=5, modes_x=3, modes_y=2, modes_z=2, n_iterations=n_iterations
        )
        c, w, big_m, h, ch = 2 * 3 + 3, 5, 3 * 2 * 2, 20, 3
        formula = (c * w + w) + (8 * w * w * big_m + w * w + w) + (w * h + h) + (h * ch + ch)
        assert formula == 2663
        assert parameter_count(IFNO3d(cfg)) == formula == cfg.parameter_count()
        assert count_parameters("ifno3d", cfg.to_dict()) == formula
        counts.add(formula)
    one_layer = FNO3dConfig(history=2, width=5, modes_x=3, modes_y=2, modes_z=2, n_layers=1)
    assert counts == {one_layer.parameter_count()}
    no_grid = IFNO3dConfig(width=5, modes_x=3, modes_y=2, modes_z=2, add_grid=False)
    assert count_parameters("ifno3d", no_grid.to_dict()) == no_grid.parameter_count()
    assert count_parameters("ifno3d", {}) == IFNO3dConfig().parameter_count() == 1_640_883


def test_ifno3d_has_one_shared_layer():
    names = sorted(build_model("ifno3d", SMALL3D).state_dict())
    assert [n for n in names if n.startswith(("spectral", "pointwise"))] == [
        "pointwise.bias",
        "pointwise.weight",
        "spectral.weight_nn",
        "spectral.weight_np",
        "spectral.weight_pn",
        "spectral.weight_pp",
    ]


def test_untrained_residual_ifno3d_is_persistence():
    model = build_model("ifno3d", {**SMALL3D, "history": 2})
    x = torch.randn(2, 2, 3, 8, 9, 6)
    torch.testing.assert_close(model(x), x[:, -1:])


def test_ifno3d_config_validation_and_grid_sentences():
    cfg = IFNO3dConfig(width=8, n_iterations=12, residual=False, pad_y=0)
    assert IFNO3dConfig.from_dict(cfg.to_dict()) == cfg
    IFNO3dConfig().check_grid((32, 33, 16))  # the channel flow's grid at the defaults
    with pytest.raises(ValueError, match=r"IFNO3dConfig\.n_iterations must be at least 1"):
        IFNO3dConfig(n_iterations=0)
    with pytest.raises(ValueError, match=r"IFNO3dConfig\.pad_y must be at least 0"):
        IFNO3dConfig(pad_y=-1)
    with pytest.raises(ValueError, match="unknown IFNO3dConfig keys: n_layers"):
        build_model("ifno3d", {"n_layers": 4})
    with pytest.raises(ValueError) as info:
        IFNO3dConfig().check_grid((32, 33, 12))
    assert str(info.value) == (
        "a 32×33×12 grid is too coarse for IFNO3d with modes_z = 8: the z axis needs at "
        "least 2·modes_z = 16 points and has 12; use fewer modes or a finer grid"
    )
    with pytest.raises(ValueError) as info:
        IFNO3dConfig(pad_y=2).check_grid((32, 13, 16))
    assert str(info.value) == (
        "a 32×13×16 grid is too coarse for IFNO3d with modes_y = 8: the y axis needs at "
        "least 2·modes_y = 16 points (padding of 2 included) and has 15; use fewer modes "
        "or a finer grid"
    )
    with pytest.raises(ValueError, match=r"IFNO3d works on 3D grids \(X, Y, Z\)"):
        IFNO3dConfig().check_grid((32, 32))
    model = build_model("ifno3d", SMALL3D)
    with pytest.raises(ValueError, match="too coarse for IFNO3d with modes_x = 3"):
        model(torch.randn(1, 1, 3, 5, 8, 8))
    with pytest.raises(ValueError, match=r"IFNO3d expects \(B, 1, 3, X, Y, Z\)"):
        model(torch.randn(1, 3, 8, 8, 8))


def test_ifno3d_wall_padding():
    """The wall-normal axis is padded inside the network and cropped back: a
    non-power-of-two Y, and one below 2·modes_y that only the padding lets in, give finite
    outputs on the input's grid. The padding separates the walls: the model commutes with
    periodic shifts along x and z, along y only without padding."""
    model = build_model("ifno3d", {**SMALL3D, "modes_y": 4, "pad_y": 5})
    randomise(model)
    for space in ((8, 13, 6), (8, 5, 6)):
        y = model(torch.randn(2, 1, 3, *space))
        assert y.shape == (2, 1, 3, *space) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match=r"y axis needs at least 2·modes_y = 8 points"):
        build_model("ifno3d", {**SMALL3D, "modes_y": 4, "pad_y": 0})(torch.randn(1, 1, 3, 8, 5, 6))

    x = torch.randn(1, 1, 3, 8, 13, 6, generator=torch.Generator().manual_seed(3))
    for pad_y in (0, 5):
        model = build_model("ifno3d", {**SMALL3D, "add_grid": False, "pad_y": pad_y})
        randomise(model)
        y = model(x)
        rolled = model(torch.roll(x, shifts=(3, 2), dims=(-3, -1)))
        torch.testing.assert_close(rolled, torch.roll(y, shifts=(3, 2), dims=(-3, -1)))
        rolled_y = model(torch.roll(x, shifts=4, dims=-2))
        assert torch.allclose(rolled_y, torch.roll(y, shifts=4, dims=-2), atol=1e-5) == (pad_y == 0)


def _shifted_in_x(n_samples: int, seed: int, steps: int = 3) -> torch.Tensor:
    """Trajectories ``(N, steps + 1, 3, 8, 12, 8)`` of smooth random velocity fields, each
    frame the previous one shifted by one cell along x: a fixed linear map."""
    fields = smooth_fields(n_samples, 3, (8, 12, 8), max_mode=2, seed=seed)
    return torch.stack([torch.roll(fields, t, dims=-3) for t in range(steps + 1)], dim=1)


def test_ifno3d_learns_a_shift_in_x():
    """A one-cell shift along x on 8×12×8 (so every x wavenumber moves by up to 3/8 of a
    wavelength): a few hundred steps take it far below persistence on held-out fields."""
    torch.manual_seed(0)
    train, val = _shifted_in_x(8, seed=1), _shifted_in_x(4, seed=2)
    config = {"width": 6, "modes_x": 4, "modes_y": 4, "modes_z": 3, "n_iterations": 2}
    model = build_model("ifno3d", {**config, "pad_y": 4})
    fit(model, train, steps=200, lr=1e-2, batch=4)
    model_err, persistence_err = errors(model, val)
    assert persistence_err > 0.9
    assert model_err < 0.3 * persistence_err


def test_ifno3d_checkpoint_round_trip(tmp_path):
    config = {"history": 2, **SMALL3D}
    model = build_model("ifno3d", config)
    randomise(model)
    model.set_normalization(torch.tensor([0.2, -0.1, 0.0]), torch.tensor([1.5, 0.5, 0.7]))
    save_model(tmp_path, "ifno3d", config, model, {"note": "round trip"})
    loaded, info = load_model(tmp_path)
    assert isinstance(loaded, IFNO3d)
    x = torch.randn(2, 2, 3, 8, 11, 6)
    assert torch.equal(loaded(x), model.eval()(x))
    assert info["arch"] == "ifno3d"
    assert info["config"] == IFNO3dConfig(**config).to_dict()
    assert info["parameter_count"] == IFNO3dConfig(**config).parameter_count()


def test_ifno3d_is_registered_for_the_train_page():
    """The registry entry, and the Train page's architecture list built from it: offered
    for 3D velocity data, with a form whose every field has help text."""
    from app.services.architectures import architectures
    from app.ui.pages.train import arch_options

    spec = MODELS["ifno3d"]
    assert spec.config_cls is IFNO3dConfig and spec.model_cls is IFNO3d
    assert (spec.label, spec.dims) == ("Implicit FNO (3D)", 3)
    assert spec.description and IFNO3dConfig.title
    assert all(field["help"] for field in IFNO3dConfig.form_fields())
    entry = {a["name"]: a for a in architectures()}["ifno3d"]
    assert entry["error"] is None and entry["label"] == "Implicit FNO (3D)"
    assert [f["name"] for f in entry["fields"]] == [
        "channels",
        "history",
        "width",
        "modes_x",
        "modes_y",
        "modes_z",
        "n_iterations",
        "add_grid",
        "residual",
        "pad_y",
    ]
    options3, _ = arch_options(architectures(), 3)
    options2, _ = arch_options(architectures(), 2)
    assert "ifno3d" in {o["value"] for o in options3}
    assert "ifno3d" not in {o["value"] for o in options2}
