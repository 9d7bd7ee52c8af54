"""FNO2d, FNO3d, their layers, the registry and checkpoints: shapes, counts, errors, round
trips, the shipped demo model, and learning an exact map."""

from __future__ import annotations

import json
import math
import pickle
import struct

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_model, save_model
from models.fno import FNO2d, FNO2dConfig, FNO3d, FNO3dConfig
from models.layers import (
    GridEmbedding2d,
    GridEmbedding3d,
    SpectralConv2d,
    SpectralConv3d,
    pointwise,
)
from models.losses import relative_l2
from models.registry import (
    MODELS,
    UnknownModelError,
    build_model,
    contract_of,
    count_parameters,
    parameter_count,
)
from tests.helpers import randomise
from tests.learning import errors, fit, learning_problem

SMALL = {"width": 4, "modes": 3, "n_layers": 2}
SMALL3D = {"width": 4, "modes_x": 3, "modes_y": 3, "modes_z": 2, "n_layers": 2, "pad_y": 3}
DEMO = "static/demo_model"
# The demo model shipped before issue 15, saved by the earlier FNO2d: kept to check that
# such checkpoints still load and compute what they computed then.
LEGACY = "tests/data/legacy_fno2d"


def _direct_spectral_conv(x: torch.Tensor, layer: torch.nn.Module, corners) -> torch.Tensor:
    """The spectral convolution written out with explicit DFT sums in float64.

    ``corners`` maps each weight name to the wavenumbers of its block, one range per full
    axis (the last axis always runs over k = 0 … m−1). The inverse transform of the
    one-sided spectrum counts each k_last > 0 twice (its conjugate partner is implied) and
    takes the real part: y(n) = (1/N) Σ_k c_k Re(ŷ_k e^{2πi k·n/n_axes}).
    """
    x = x.double()
    space = x.shape[2:]
    d = len(space)
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in space], indexing="ij")
    out = torch.zeros(x.shape[0], layer.out_channels, *space, dtype=torch.float64)
    m_last = layer.modes2 if d == 2 else layer.modes[2]
    for name, ranges in corners.items():
        weight = torch.view_as_complex(getattr(layer, name).detach().double())
        for index in np.ndindex(*weight.shape[2:]):
            k = [ranges[a][index[a]] for a in range(d - 1)] + [index[-1]]
            assert index[-1] < m_last
            phase = sum(2 * math.pi * k[a] * grids[a] / space[a] for a in range(d))
            wave = torch.exp(1j * phase)  # e^{+i k·x}
            coeff = (x.to(torch.complex128) * wave.conj()).sum(dim=tuple(range(2, 2 + d)))
            y_k = coeff @ weight[(slice(None), slice(None), *index)]  # (B, out)
            factor = 1.0 if k[-1] == 0 else 2.0
            out += factor * (y_k[..., *([None] * d)] * wave).real
    return out / math.prod(space)


# --- layers ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(32, 32), (48, 48), (32, 48), (33, 35)])
def test_spectral_conv_shapes(shape):
    layer = SpectralConv2d(3, 5, 4, 6)
    y = layer(torch.randn(2, 3, *shape))
    assert y.shape == (2, 5, *shape)
    assert parameter_count(layer) == 4 * 3 * 5 * 4 * 6


@pytest.mark.parametrize("shape", [(8, 8), (9, 11)])
def test_spectral_conv2d_equals_direct_dft(shape):
    torch.manual_seed(0)
    layer = SpectralConv2d(2, 3, 3, 2)
    randomise(layer)
    x = torch.randn(2, 2, *shape, dtype=torch.float64)
    m1 = layer.modes1
    corners = {"weight_pos": [range(m1)], "weight_neg": [range(-m1, 0)]}
    expected = _direct_spectral_conv(x, layer, corners)
    torch.testing.assert_close(layer.double()(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 6, 4), (7, 9, 5)])
def test_spectral_conv3d_equals_direct_dft(shape):
    torch.manual_seed(0)
    layer = SpectralConv3d(2, 3, 3, 2, 2)
    randomise(layer)
    x = torch.randn(2, 2, *shape, dtype=torch.float64)
    m1, m2, _ = layer.modes
    signs = {"p": [range(m1), range(m2)], "n": [range(-m1, 0), range(-m2, 0)]}
    corners = {f"weight_{c}": [signs[c[0]][0], signs[c[1]][1]] for c in SpectralConv3d.CORNERS}
    expected = _direct_spectral_conv(x, layer, corners)
    torch.testing.assert_close(layer.double()(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(16, 17, 8), (12, 12, 5)])
def test_spectral_conv3d_shapes_and_count(shape):
    layer = SpectralConv3d(3, 5, 4, 2, 2)
    assert layer(torch.randn(2, 3, *shape)).shape == (2, 5, *shape)
    assert parameter_count(layer) == 8 * 3 * 5 * 4 * 2 * 2
    assert sorted(n for n, _ in layer.named_parameters()) == [
        "weight_nn",
        "weight_np",
        "weight_pn",
        "weight_pp",
    ]


@pytest.mark.parametrize("layer", [SpectralConv2d(2, 2, 4, 4), SpectralConv3d(2, 2, 3, 3, 2)])
def test_spectral_conv_is_a_convolution(layer):
    """A Fourier multiplier commutes with periodic shifts."""
    torch.manual_seed(0)
    space = (16, 12) if isinstance(layer, SpectralConv2d) else (10, 9, 6)
    shifts, dims = (5, -7, 2)[: len(space)], tuple(range(-len(space), 0))
    x = torch.randn(1, 2, *space)
    shifted = layer(torch.roll(x, shifts=shifts, dims=dims))
    torch.testing.assert_close(shifted, torch.roll(layer(x), shifts=shifts, dims=dims))


def test_spectral_conv_rejects_coarse_grid():
    with pytest.raises(ValueError, match="too coarse"):
        SpectralConv2d(1, 1, 12, 12)(torch.randn(1, 1, 16, 32))
    with pytest.raises(ValueError, match=r"too coarse for modes \(4, 4, 4\)"):
        SpectralConv3d(1, 1, 4, 4, 4)(torch.randn(1, 1, 8, 8, 7))
    with pytest.raises(ValueError, match="positive"):
        SpectralConv3d(1, 1, 4, 0, 4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_spectral_convs_run_half_precision_in_float32(dtype):
    """Half-precision input: the FFTs run in float32 (odd sizes included) and the result
    comes back in the input's dtype, close to the float32 computation."""
    torch.manual_seed(0)
    for layer, space in (
        (SpectralConv2d(2, 2, 3, 3), (9, 10)),
        (SpectralConv3d(2, 2, 2, 2, 2), (5, 7, 4)),
    ):
        x = torch.randn(1, 2, *space)
        y = layer(x.to(dtype))
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), layer(x), rtol=0.05, atol=0.02)


def test_grid_embeddings():
    out = GridEmbedding2d()(torch.zeros(1, 1, 4, 8))
    assert out.shape == (1, 3, 4, 8)
    torch.testing.assert_close(out[0, 1, 0], torch.arange(8) / 8)
    torch.testing.assert_close(out[0, 2, :, 0], torch.arange(4) / 4)

    out = GridEmbedding3d(periodic=(True, False, True))(torch.zeros(2, 3, 4, 5, 8))
    assert out.shape == (2, 6, 4, 5, 8)
    torch.testing.assert_close(out[1, 3, :, 2, 3], torch.arange(4) / 4)  # x ∈ [0, 1)
    torch.testing.assert_close(out[1, 4, 0, :, 0], torch.linspace(0, 1, 5))  # walls at 0, 1
    torch.testing.assert_close(out[1, 5, 1, 1, :], torch.arange(8) / 8)


def test_pointwise_in_every_dimension():
    for dims in (1, 2, 3):
        layer = pointwise(3, 5, dims=dims)
        assert layer(torch.randn(2, 3, *(4,) * dims)).shape == (2, 5, *(4,) * dims)
        assert parameter_count(layer) == 3 * 5 + 5
    with pytest.raises(ValueError, match="1, 2 or 3"):
        pointwise(3, 5, dims=4)


# --- FNO2d ----------------------------------------------------------------------------


@pytest.mark.parametrize("space", [(32, 32), (48, 48), (33, 35), (20, 27)])
def test_fno2d_shapes_at_several_resolutions(space):
    torch.manual_seed(0)
    model = build_model("fno2d", {"channels": 2, "history": 3, **SMALL})
    y = model(torch.randn(2, 3, 2, *space))
    assert y.shape == (2, 1, 2, *space)
    assert model.contract == contract_of("fno2d", {"channels": 2, "history": 3})
    assert model.contract.to_dict() == {"dims": 2, "channels": 2, "history": 3, "out_steps": 1}


@pytest.mark.parametrize("space", [(9, 10), (13, 7)])
def test_padding_is_cropped_and_lets_coarse_grids_in(space):
    """With padding the spectral layers see (H + p)×(W + p) points: the output is cropped
    back to the input grid, and a grid below 2·modes passes once padded."""
    cfg = {"width": 4, "modes": 6, "n_layers": 2, "padding": 5}
    model = build_model("fno2d", cfg)
    randomise(model)
    assert model(torch.randn(2, 1, 1, *space)).shape == (2, 1, 1, *space)
    with pytest.raises(ValueError, match="too coarse for FNO2d with 6 Fourier modes"):
        build_model("fno2d", {**cfg, "padding": 0})(torch.randn(1, 1, 1, *space))


@pytest.mark.parametrize("padding", [0, 4])
def test_padding_breaks_periodicity_only_when_asked(padding):
    """Without grid channels and padding an FNO commutes with periodic shifts; zero
    padding makes the two boundaries distinct, so it must not."""
    model = build_model("fno2d", {**SMALL, "add_grid": False, "padding": padding})
    randomise(model)
    x = torch.randn(1, 1, 1, 16, 12)
    shifted = model(torch.roll(x, shifts=(5, -3), dims=(-2, -1)))
    expected = torch.roll(model(x), shifts=(5, -3), dims=(-2, -1))
    assert torch.allclose(shifted, expected, atol=1e-5) == (padding == 0)


def test_fno2d_parameter_count_matches_documented_formula():
    cfg = FNO2dConfig(channels=2, history=3, width=5, modes=3, n_layers=2)
    c, w, m, n_layers, h, ch = 3 * 2 + 2, 5, 3, 2, 4 * 5, 2
    formula = (c * w + w) + n_layers * (4 * w * w * m * m + w * w + w) + (w * h + h) + (h * ch + ch)
    assert formula == 2067
    assert parameter_count(FNO2d(cfg)) == formula == cfg.parameter_count()
    assert count_parameters("fno2d", cfg.to_dict()) == formula
    for variant in ({"add_grid": False}, {"padding": 7}):
        other = FNO2dConfig(width=5, modes=3, n_layers=2, **variant)
        assert parameter_count(FNO2d(other)) == other.parameter_count()
        assert count_parameters("fno2d", other.to_dict()) == other.parameter_count()


@pytest.mark.parametrize("arch,space", [("fno2d", (32, 32)), ("fno3d", (8, 9, 6))])
def test_untrained_residual_model_is_persistence_of_the_last_frame(arch, space):
    config = SMALL if arch == "fno2d" else SMALL3D
    channels = 1 if arch == "fno2d" else 3
    model = build_model(arch, {**config, "history": 2})
    x = torch.randn(2, 2, channels, *space)
    torch.testing.assert_close(model(x), x[:, -1:])


@pytest.mark.parametrize("residual", [True, False])
def test_normalisation_makes_the_model_unit_free(residual):
    """With statistics (a·m + b, a·s), the model maps a·x + b to a·f(x) + b."""
    model = build_model("fno2d", {"channels": 2, "history": 2, "residual": residual, **SMALL})
    randomise(model)
    x = torch.randn(2, 2, 2, 32, 32)
    mean, std = torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.5])
    a = torch.tensor([10.0, 0.1]).view(1, 1, 2, 1, 1)
    b = torch.tensor([-4.0, 7.0]).view(1, 1, 2, 1, 1)
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


def test_forward_names_the_expected_shape():
    model = build_model("fno2d", {"history": 2, **SMALL})
    with pytest.raises(ValueError, match=r"FNO2d expects \(B, 2, 1, H, W\), got \(2, 1, 32, 32\)"):
        model(torch.randn(2, 1, 32, 32))  # the old (B, C, H, W) convention
    with pytest.raises(ValueError, match=r"expects \(B, 2, 1, H, W\)"):
        model(torch.randn(2, 1, 1, 32, 32))


def test_fno2d_config_round_trip_and_validation():
    cfg = FNO2dConfig(width=8, residual=False, padding=2, history=4)
    assert FNO2dConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"FNO2dConfig\.modes must be at least 1, got 0"):
        FNO2dConfig(modes=0)
    with pytest.raises(ValueError, match=r"FNO2dConfig\.padding must be at least 0"):
        FNO2dConfig(padding=-1)
    with pytest.raises(ValueError, match=r"FNO2dConfig\.add_grid must be bool"):
        FNO2dConfig.from_dict({"add_grid": 1})
    with pytest.raises(ValueError, match="unknown FNO2dConfig keys: depth"):
        FNO2dConfig.from_dict({"depth": 3})


def test_fno2d_check_grid_sentences():
    cfg = FNO2dConfig(modes=12)
    cfg.check_grid((24, 64))
    with pytest.raises(ValueError) as info:
        cfg.check_grid((16, 64))
    assert str(info.value) == (
        "a 16×64 grid is too coarse for FNO2d with 12 Fourier modes: each axis needs at "
        "least 2·modes = 24 points (padding of 0 included); use fewer modes or a finer grid"
    )
    FNO2dConfig(modes=12, padding=8).check_grid((16, 64))
    with pytest.raises(ValueError, match=r"FNO2d works on 2D grids \(H, W\)"):
        cfg.check_grid((32, 32, 32))


def test_legacy_config_keys_are_mapped():
    """Configs of the earlier FNO2d (in_channels/out_channels) still describe a model."""
    cfg = FNO2dConfig.from_dict({"in_channels": 2, "out_channels": 2, "width": 8})
    assert cfg == FNO2dConfig(channels=2, width=8)
    assert FNO2dConfig.from_dict({"in_channels": 1}).channels == 1
    with pytest.raises(ValueError, match="in_channels=3 and out_channels=1 differ"):
        FNO2dConfig.from_dict({"in_channels": 3, "out_channels": 1})
    with pytest.raises(ValueError, match="channels=2 contradicts"):
        FNO2dConfig.from_dict({"in_channels": 1, "out_channels": 1, "channels": 2})
    assert count_parameters("fno2d", {"in_channels": 1, "out_channels": 1, **SMALL}) == (
        FNO2dConfig(**SMALL).parameter_count()
    )


def test_fno2d_keeps_the_input_dtype():
    model = build_model("fno2d", SMALL)
    randomise(model)
    x = torch.randn(1, 1, 1, 12, 13)
    y64 = model.double()(x.double())
    assert y64.dtype == torch.float64
    y16 = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert y16.dtype == torch.bfloat16 and torch.isfinite(y16.float()).all()
    assert relative_l2(y16.double(), y64).item() < 0.05
    model.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # convolutions in bf16, FFTs in fp32
        y_mixed = model(x)
    assert relative_l2(y_mixed.double(), y64).item() < 0.01


def test_fno2d_learns_the_exact_map_at_any_resolution():
    """Trained on 32² advection–diffusion, it beats persistence by far on held-out fields,
    and, being resolution-independent, also on 48² fields it never saw."""
    torch.manual_seed(0)
    train, val = learning_problem(1, (32, 32))
    model = build_model("fno2d", {"width": 8, "modes": 4, "n_layers": 2})
    fit(model, train, steps=150, lr=1e-2)
    model_err, persistence_err = errors(model, val)
    assert model_err < 0.1 * persistence_err
    _, val_fine = learning_problem(1, (48, 48))
    model_err, persistence_err = errors(model, val_fine)
    assert model_err < 0.1 * persistence_err


# --- FNO3d ----------------------------------------------------------------------------


@pytest.mark.parametrize("space", [(16, 17, 8), (8, 3, 5), (9, 12, 7)])
def test_fno3d_shapes_with_wall_padding(space):
    """Any grid with X ≥ 2·modes_x, Y + pad_y ≥ 2·modes_y, Z ≥ 2·modes_z: the padded
    wall-normal axis is cropped back to the input's Y."""
    torch.manual_seed(0)
    model = build_model("fno3d", {**SMALL3D, "history": 2})
    randomise(model)
    y = model(torch.randn(2, 2, 3, *space))
    assert y.shape == (2, 1, 3, *space)
    assert model.contract.to_dict() == {"dims": 3, "channels": 3, "history": 2, "out_steps": 1}


def test_fno3d_is_periodic_in_x_and_z_only():
    """Shifts along x and z commute with the model; along the padded y they do not."""
    model = build_model("fno3d", {**SMALL3D, "add_grid": False})
    randomise(model)
    x = torch.randn(1, 1, 3, 8, 9, 6)
    y = model(x)
    rolled = model(torch.roll(x, shifts=(3, 2), dims=(-3, -1)))
    torch.testing.assert_close(rolled, torch.roll(y, shifts=(3, 2), dims=(-3, -1)))
    rolled_y = model(torch.roll(x, shifts=4, dims=-2))
    assert not torch.allclose(rolled_y, torch.roll(y, shifts=4, dims=-2), atol=1e-3)


def test_fno3d_parameter_count_matches_documented_formula():
    cfg = FNO3dConfig(history=2, width=5, modes_x=3, modes_y=2, modes_z=2, n_layers=2)
    c, w, big_m, n_layers, h, ch = 2 * 3 + 3, 5, 3 * 2 * 2, 2, 20, 3
    formula = (c * w + w) + n_layers * (8 * w * w * big_m + w * w + w) + (w * h + h) + (h * ch + ch)
    assert formula == 5093
    assert parameter_count(FNO3d(cfg)) == formula == cfg.parameter_count()
    assert count_parameters("fno3d", cfg.to_dict()) == formula
    no_grid = FNO3dConfig(width=5, modes_x=3, modes_y=2, modes_z=2, add_grid=False)
    assert count_parameters("fno3d", no_grid.to_dict()) == no_grid.parameter_count()


def test_fno3d_config_validation_and_grid_sentences():
    assert FNO3dConfig.from_dict(FNO3dConfig(pad_y=0).to_dict()) == FNO3dConfig(pad_y=0)
    default = FNO3dConfig()
    default.check_grid((32, 33, 16))  # the channel flow's grid at the defaults
    with pytest.raises(ValueError, match=r"FNO3dConfig\.modes_y must be at least 1"):
        FNO3dConfig(modes_y=0)
    with pytest.raises(ValueError, match="unknown FNO3dConfig keys: modes"):
        FNO3dConfig.from_dict({"modes": 4})
    with pytest.raises(ValueError) as info:
        default.check_grid((32, 33, 12))
    assert str(info.value) == (
        "a 32×33×12 grid is too coarse for FNO3d with modes_z = 8: the z axis needs at "
        "least 2·modes_z = 16 points and has 12; use fewer modes or a finer grid"
    )
    with pytest.raises(ValueError, match=r"y axis needs .* 16 points \(padding of 2"):
        FNO3dConfig(pad_y=2).check_grid((32, 13, 16))
    with pytest.raises(ValueError, match=r"FNO3d works on 3D grids \(X, Y, Z\)"):
        default.check_grid((32, 32))
    with pytest.raises(ValueError, match=r"FNO3d expects \(B, 1, 3, X, Y, Z\)"):
        build_model("fno3d", SMALL3D)(torch.randn(1, 3, 8, 8, 8))


def test_fno3d_learns_the_exact_map():
    """Three velocity components advected and diffused on a 16×17×8 periodic box (the
    problem is periodic in y too, so no wall padding here: padding would hide the
    wrap-around the data have)."""
    torch.manual_seed(0)
    train, val = learning_problem(3, (16, 17, 8))
    config = {"width": 6, "modes_x": 4, "modes_y": 4, "modes_z": 4, "n_layers": 1, "pad_y": 0}
    model = build_model("fno3d", config)
    fit(model, train, steps=120, lr=1e-2)
    model_err, persistence_err = errors(model, val)
    assert model_err < 0.2 * persistence_err


# --- registry -------------------------------------------------------------------------


def test_registry_lists_the_fnos():
    for arch, config_cls, model_cls in (
        ("fno2d", FNO2dConfig, FNO2d),
        ("fno3d", FNO3dConfig, FNO3d),
    ):
        spec = MODELS[arch]
        assert spec.config_cls is config_cls and spec.model_cls is model_cls
        assert spec.description and config_cls.title
        assert all(field["help"] for field in config_cls.form_fields())


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


def _saved(tmp_path, arch="fno2d", config=None):
    default = {"channels": 2, "history": 2, **SMALL} if arch == "fno2d" else SMALL3D
    config = default if config is None else config
    model = build_model(arch, config)
    randomise(model)
    channels = model.contract.channels
    model.set_normalization(torch.linspace(-0.5, 0.5, channels), torch.linspace(2, 3, channels))
    save_model(tmp_path / "ckpt", arch, config, model, {"dataset": "toy", "epochs": 3})
    return model, tmp_path / "ckpt"


@pytest.mark.parametrize("arch,space", [("fno2d", (32, 32)), ("fno3d", (8, 9, 6))])
def test_save_load_round_trip(tmp_path, arch, space):
    model, directory = _saved(tmp_path, arch)
    loaded, info = load_model(directory)
    contract = model.contract
    x = torch.randn(contract.input_shape(*space, batch=2))
    assert torch.equal(loaded(x), model.eval()(x))
    torch.testing.assert_close(loaded.in_std, torch.linspace(2, 3, contract.channels))
    assert info["arch"] == arch
    assert info["metadata"] == {"dataset": "toy", "epochs": 3}
    assert info["parameter_count"] == parameter_count(model) == model.config.parameter_count()
    assert info["config"] == model.config.to_dict()
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


# --- the shipped demo model -----------------------------------------------------------


def _analytic_input(height: int, width: int) -> torch.Tensor:
    """Two smooth fields on an H×W grid, (2, 1, H, W): no random numbers involved."""
    y = torch.arange(height, dtype=torch.float64).view(height, 1) / height
    x = torch.arange(width, dtype=torch.float64).view(1, width) / width
    a = torch.sin(2 * torch.pi * (x + 2 * y)) + 0.3 * torch.cos(2 * torch.pi * 3 * y)
    b = 0.5 * torch.cos(2 * torch.pi * (4 * x - y)) - 0.2 * torch.sin(2 * torch.pi * 5 * x)
    return torch.stack([a, b]).unsqueeze(1).float()


def test_a_checkpoint_of_the_earlier_fno2d_loads_and_gives_its_outputs():
    """tests/data/legacy_fno2d (the demo model shipped until issue 15) was saved by the
    earlier FNO2d ((B, C, H, W) in and out, config keys in_channels/out_channels). It must
    load unchanged and compute what it computed then: the reference numbers below came from
    that code (git bc52ba8, models/fno.py) on the same input."""
    model, info = load_model(LEGACY)
    assert isinstance(model, FNO2d)
    assert model.config == FNO2dConfig(channels=1, width=12, modes=10, n_layers=4)
    assert parameter_count(model) == info["parameter_count"] == 231745
    x = _analytic_input(40, 36)
    with torch.no_grad():
        y = model(x.unsqueeze(1))
    assert y.shape == (2, 1, 1, 40, 36)
    y = y[:, 0]
    points = [
        (0, 0, 0, 0),
        (0, 0, 7, 11),
        (0, 0, 39, 35),
        (1, 0, 3, 30),
        (1, 0, 20, 5),
        (1, 0, 33, 17),
    ]
    reference = [0.11075269, -0.9050796, -0.26410261, 0.15364508, 0.16285852, -0.015110701]
    torch.testing.assert_close(
        torch.stack([y[p] for p in points]), torch.tensor(reference), rtol=1e-5, atol=1e-6
    )
    sum_of_squares = y.double().pow(2).sum(dim=(1, 2, 3))
    torch.testing.assert_close(
        sum_of_squares,
        torch.tensor([469.9718911835753, 86.7277006790627], dtype=torch.float64),
        rtol=1e-5,
        atol=0.0,
    )


def test_demo_model_beats_persistence_on_the_shipped_example():
    """One step (Δt = 1) from the shipped example initial condition, against the solver."""
    from physics.flows import get_flow

    w0 = torch.from_numpy(np.load("static/examples/example_ns2d_forced_64.npy"))[None, None]
    w1 = get_flow("ns2d-forced").make_solver(64, dtype=torch.float64).advance(w0.double(), 1.0)
    model, _ = load_model(DEMO)
    with torch.no_grad():
        prediction = model(w0[:, None].float())[:, 0]
    model_err = relative_l2(prediction.double(), w1).item()
    persistence_err = relative_l2(w0.double(), w1).item()
    assert model_err < 0.5 * persistence_err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch,space", [("fno2d", (48, 48)), ("fno3d", (16, 17, 8))])
def test_same_code_on_cuda(tmp_path, arch, space):
    model, directory = _saved(tmp_path, arch)
    loaded, _ = load_model(directory, device="cuda")
    x = torch.randn(model.contract.input_shape(*space, batch=2))
    torch.testing.assert_close(loaded(x.cuda()).cpu(), model.eval()(x), rtol=1e-4, atol=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = loaded(x.cuda())
    assert torch.isfinite(y).all()
    assert relative_l2(y.float().cpu(), model(x)).item() < 0.05
