"""FNO2d, its layers, the registry and checkpoints: shapes, counts, errors, round trips."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch

from models.checkpoint import CheckpointError, load_model, save_model
from models.fno import FNO2d, FNO2dConfig
from models.layers import GridEmbedding2d, SpectralConv2d
from models.losses import relative_l2
from models.registry import MODELS, UnknownModelError, build_model, parameter_count

SMALL = {"width": 4, "modes": 3, "n_layers": 2}


def _randomise(model: torch.nn.Module, seed: int = 1) -> None:
    """Random parameters everywhere, so outputs depend on every weight (the residual
    model's zero-initialised last layer would otherwise hide the rest of the network)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


# --- layers ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(32, 32), (48, 48), (32, 48), (33, 35)])
def test_spectral_conv_shapes(shape):
    layer = SpectralConv2d(3, 5, 4, 6)
    y = layer(torch.randn(2, 3, *shape))
    assert y.shape == (2, 5, *shape)
    assert parameter_count(layer) == 4 * 3 * 5 * 4 * 6


def test_spectral_conv_is_a_convolution():
    """A Fourier multiplier commutes with periodic shifts."""
    torch.manual_seed(0)
    layer = SpectralConv2d(2, 2, 4, 4)
    x = torch.randn(1, 2, 32, 32)
    shifted = layer(torch.roll(x, shifts=(5, -7), dims=(-2, -1)))
    torch.testing.assert_close(shifted, torch.roll(layer(x), shifts=(5, -7), dims=(-2, -1)))


def test_spectral_conv_rejects_coarse_grid():
    with pytest.raises(ValueError, match="too coarse"):
        SpectralConv2d(1, 1, 12, 12)(torch.randn(1, 1, 16, 32))


def test_grid_embedding_coordinates():
    out = GridEmbedding2d()(torch.zeros(1, 1, 4, 8))
    assert out.shape == (1, 3, 4, 8)
    torch.testing.assert_close(out[0, 1, 0], torch.arange(8) / 8)
    torch.testing.assert_close(out[0, 2, :, 0], torch.arange(4) / 4)


# --- FNO2d ----------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [32, 48])
def test_fno_shapes_at_several_resolutions(resolution):
    torch.manual_seed(0)
    model = build_model("fno2d", {"in_channels": 3, "out_channels": 2, **SMALL})
    y = model(torch.randn(2, 3, resolution, resolution))
    assert y.shape == (2, 2, resolution, resolution)


def test_parameter_count_matches_documented_formula():
    cfg = FNO2dConfig(in_channels=2, out_channels=1, width=5, modes=3, n_layers=2)
    c, w, m, n_layers, h, c_out = 2 + 2, 5, 3, 2, 4 * 5, 1
    formula = (
        (c * w + w) + n_layers * (4 * w * w * m * m + w * w + w) + (w * h + h) + (h * c_out + c_out)
    )
    assert parameter_count(FNO2d(cfg)) == formula == cfg.parameter_count() == 2026
    no_grid = FNO2dConfig(width=5, modes=3, n_layers=2, add_grid=False)
    assert parameter_count(FNO2d(no_grid)) == no_grid.parameter_count()


def test_untrained_residual_model_is_persistence():
    model = build_model("fno2d", SMALL)
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(model(x), x)


@pytest.mark.parametrize("residual", [True, False])
def test_normalisation_makes_the_model_unit_free(residual):
    """With statistics (a·m + b, a·s), the model maps a·x + b to a·f(x) + b."""
    model = build_model(
        "fno2d", {"in_channels": 2, "out_channels": 2, "residual": residual, **SMALL}
    )
    _randomise(model)
    x = torch.randn(2, 2, 32, 32)
    mean, std = torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.5])
    a, b = torch.tensor([10.0, 0.1]).view(1, 2, 1, 1), torch.tensor([-4.0, 7.0]).view(1, 2, 1, 1)
    model.set_normalization(mean, std)
    y = model(x)
    model.set_normalization(a.flatten() * mean + b.flatten(), a.flatten() * std)
    torch.testing.assert_close(model(a * x + b), a * y + b, rtol=1e-4, atol=1e-4)


def test_set_normalization_validates():
    model = build_model("fno2d", SMALL)
    with pytest.raises(ValueError, match="1 entries"):
        model.set_normalization(torch.zeros(2), torch.ones(2))
    model.set_normalization(torch.tensor([1.0]), torch.tensor([0.0]))  # constant channel
    assert model.in_std.item() == 1.0


def test_config_round_trip_and_validation():
    cfg = FNO2dConfig(width=8, residual=False)
    assert FNO2dConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="out_channels"):
        FNO2dConfig(in_channels=1, out_channels=2)
    with pytest.raises(ValueError, match="modes"):
        FNO2dConfig(modes=0)


# --- registry -------------------------------------------------------------------------


def test_registry_lists_fno2d():
    spec = MODELS["fno2d"]
    assert spec.name == "fno2d" and spec.config_cls is FNO2dConfig and spec.model_cls is FNO2d
    assert spec.description


def test_unknown_arch_lists_known_ones():
    with pytest.raises(UnknownModelError, match="fno2d") as info:
        build_model("unet9000", {})
    assert isinstance(info.value, ValueError)


def test_bad_config_keys_are_named():
    with pytest.raises(ValueError, match="depth") as info:
        build_model("fno2d", {"depth": 3, "width": 4, "colour": "red"})
    assert "colour" in str(info.value)
    assert not isinstance(info.value, UnknownModelError)


# --- checkpoints ----------------------------------------------------------------------


def _saved(tmp_path, config=None):
    config = {"in_channels": 2, "out_channels": 2, **SMALL} if config is None else config
    model = build_model("fno2d", config)
    _randomise(model)
    model.set_normalization(torch.tensor([0.5, -0.5]), torch.tensor([2.0, 3.0]))
    save_model(tmp_path / "ckpt", "fno2d", config, model, {"dataset": "toy", "epochs": 3})
    return model, tmp_path / "ckpt"


def test_save_load_round_trip(tmp_path):
    model, directory = _saved(tmp_path)
    loaded, info = load_model(directory)
    x = torch.randn(2, 2, 32, 32)
    assert torch.equal(loaded(x), model.eval()(x))
    torch.testing.assert_close(loaded.in_std, torch.tensor([2.0, 3.0]))
    assert info["arch"] == "fno2d"
    assert info["metadata"] == {"dataset": "toy", "epochs": 3}
    assert info["parameter_count"] == parameter_count(model)
    assert info["config"] == FNO2dConfig(in_channels=2, out_channels=2, **SMALL).to_dict()
    assert json.loads((directory / "config.json").read_text()) == info
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "weights.safetensors"]


def test_weights_file_is_safetensors_not_pickle(tmp_path, monkeypatch):
    _, directory = _saved(tmp_path)
    raw = (directory / "weights.safetensors").read_bytes()
    # safetensors: little-endian u64 header length, then a JSON header.
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert "in_mean" in header and "in_std" in header and "lift.weight" in header
    assert not raw.startswith(b"\x80") and not raw.startswith(b"PK")  # pickle / torch zip

    def forbidden(*args, **kwargs):
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    load_model(directory)


def test_save_rejects_config_that_does_not_describe_model(tmp_path):
    model = build_model("fno2d", SMALL)
    with pytest.raises(ValueError, match="does not describe"):
        save_model(tmp_path, "fno2d", {**SMALL, "width": 8}, model, {})


def test_load_detects_mismatched_weights(tmp_path):
    _, directory = _saved(tmp_path)
    other = tmp_path / "other"
    save_model(other, "fno2d", SMALL, build_model("fno2d", SMALL), {})
    (directory / "weights.safetensors").write_bytes((other / "weights.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="does not match"):
        load_model(directory)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path / "nowhere")


def test_relative_l2():
    target = torch.ones(2, 1, 4, 4)
    pred = torch.stack([torch.ones(1, 4, 4), torch.zeros(1, 4, 4)])
    assert relative_l2(pred, target).item() == pytest.approx(0.5)
    assert relative_l2(2 * target, target).item() == pytest.approx(1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_code_on_cuda(tmp_path):
    model, directory = _saved(tmp_path)
    loaded, _ = load_model(directory, device="cuda")
    x = torch.randn(2, 2, 48, 48)
    torch.testing.assert_close(loaded(x.cuda()).cpu(), model.eval()(x), rtol=1e-4, atol=1e-4)
