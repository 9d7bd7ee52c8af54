"""The spatiotemporal FNO and its space–time layers: the spectral convolution against its
definition, time resampling, shapes, parameter counts, config errors, spectral refinement
of the output layer, learning, and checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from models.checkpoint import load_model, save_model
from models.layers_spacetime import SpaceTimeEmbedding, SpectralConvSpaceTime, min_time_length
from models.registry import build_model, contract_of, count_parameters, parameter_count
from models.sfno import SFNO, SFNOConfig
from tests.helpers import randomise
from tests.learning import errors, fit, learning_problem

SMALL = {"width": 4, "modes": 3, "modes_t": 2, "n_layers": 1, "latent_steps": 4, "mlp_ratio": 1}


def _band_limited(shape: tuple[int, ...], max_mode: int, seed: int = 0) -> torch.Tensor:
    """Random real fields (…, H, W) with spatial wavenumbers |k| ≤ max_mode only."""
    g = torch.Generator().manual_seed(seed)
    height, width = shape[-2:]
    spec = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
    ky = torch.fft.fftfreq(height, 1 / height).abs().view(-1, 1)
    kx = torch.fft.fftfreq(width, 1 / width).abs().view(1, -1)
    return torch.fft.ifft2(spec * ((ky <= max_mode) & (kx <= max_mode))).real


def _reference_conv(layer: SpectralConvSpaceTime, x: torch.Tensor, n_out: int) -> torch.Tensor:
    """The layer's docstring, literally: rfftn, multiply the four corner blocks, irfftn."""
    batch, _, height, width, _ = x.shape
    x_ft = torch.fft.rfftn(x, dim=(-3, -2, -1), norm="forward")
    w = torch.view_as_complex(layer.weight.to(x.dtype))
    b = None if layer.bias is None else torch.view_as_complex(layer.bias.to(x.dtype))
    m1, m2, mt = layer.modes1, layer.modes2, layer.modes_t
    out = x_ft.new_zeros(batch, layer.out_channels, height, width, n_out // 2 + 1)
    for s1 in (slice(0, m1), slice(-m1, None)):
        for s2 in (slice(0, m2), slice(-m2, None)):
            block = torch.einsum("bixyt,ioxyt->boxyt", x_ft[:, :, s1, s2, :mt], w[:, :, s1, s2])
            out[:, :, s1, s2, :mt] = block if b is None else block + b[:, s1, s2]
    return torch.fft.irfftn(out, s=(height, width, n_out), dim=(-3, -2, -1), norm="forward")


# --- the space–time spectral convolution -------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "n_in", "n_out"),
    [((16, 16), 6, 6), ((16, 20), 6, 11), ((12, 14), 8, 2), ((13, 15), 5, 3), ((8, 8), 4, 1)],
)
def test_spectral_conv_matches_its_definition(grid, n_in, n_out):
    """Shapes for equal, longer, shorter and single-frame outputs, odd grids included; values
    equal to the transform written out with rfftn/irfftn over the corner blocks."""
    torch.manual_seed(0)
    mt = 2 if n_out > 1 else 1
    layer = SpectralConvSpaceTime(3, 2, 4, 3, mt, bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 3, *grid, n_in, dtype=torch.float64)
    y = layer(x, out_steps=n_out)
    assert y.shape == (2, 2, *grid, n_out) and y.dtype == torch.float64
    torch.testing.assert_close(y, _reference_conv(layer, x, n_out))


def test_spectral_conv_parameter_count():
    assert parameter_count(SpectralConvSpaceTime(3, 5, 4, 6, 2)) == 8 * 3 * 5 * 4 * 6 * 2
    with_bias = SpectralConvSpaceTime(3, 5, 4, 6, 2, bias=True)
    assert parameter_count(with_bias) == 8 * 3 * 5 * 4 * 6 * 2 + 8 * 5 * 4 * 6 * 2


def _identity_layer(channels: int, modes: int, modes_t: int) -> SpectralConvSpaceTime:
    layer = SpectralConvSpaceTime(channels, channels, modes, modes, modes_t, zero_init=True)
    with torch.no_grad():
        for i in range(channels):
            layer.weight[i, i, ..., 0] = 1.0  # real part 1 on every retained mode
    return layer.double()


@pytest.mark.parametrize(("n_in", "n_out"), [(6, 6), (6, 11), (6, 3), (10, 1), (4, 16)])
def test_time_resampling_keeps_a_constant_signal_constant(n_in, n_out):
    """A field constant in time comes out constant, at the same amplitude, at any length:
    the amplitude-normalised transform does not scale it by T_out/T_in."""
    layer = _identity_layer(2, 4, 1)
    frame = _band_limited((1, 2, 16, 16), max_mode=3).double()
    x = frame.unsqueeze(-1).expand(-1, -1, -1, -1, n_in)
    y = layer(x, out_steps=n_out)
    torch.testing.assert_close(y, frame.unsqueeze(-1).expand(-1, -1, -1, -1, n_out))


@pytest.mark.parametrize(("n_in", "n_out"), [(6, 9), (8, 5), (7, 16)])
def test_time_resampling_interpolates_a_low_frequency(n_in, n_out):
    """A time-periodic signal of one cycle per window is re-sampled onto the new frames."""
    layer = _identity_layer(1, 4, 2)
    frame = _band_limited((1, 1, 16, 16), max_mode=3).double().unsqueeze(-1)

    def signal(n: int) -> torch.Tensor:
        t = torch.arange(n, dtype=torch.float64) / n
        return frame * (0.5 + torch.cos(2 * math.pi * t) + 0.3 * torch.sin(2 * math.pi * t))

    torch.testing.assert_close(layer(signal(n_in), out_steps=n_out), signal(n_out))


def test_spectral_conv_is_a_space_time_convolution():
    """A Fourier multiplier (same length in and out) commutes with periodic shifts."""
    torch.manual_seed(0)
    layer = SpectralConvSpaceTime(2, 2, 4, 4, 3).double()
    x = torch.randn(1, 2, 16, 16, 6, dtype=torch.float64)
    shifts, dims = (5, -7, 2), (-3, -2, -1)
    torch.testing.assert_close(
        layer(torch.roll(x, shifts, dims)), torch.roll(layer(x), shifts, dims)
    )


def test_spectral_conv_rejects_coarse_grids_and_short_time_axes():
    layer = SpectralConvSpaceTime(1, 1, 6, 6, 4)
    with pytest.raises(ValueError, match="too coarse"):
        layer(torch.randn(1, 1, 10, 12, 8))
    assert min_time_length(4) == 6
    with pytest.raises(ValueError, match="needs at least 6 frames in and out, got 5 in"):
        layer(torch.randn(1, 1, 12, 12, 5))
    with pytest.raises(ValueError, match="got 8 in and 4 out"):
        layer(torch.randn(1, 1, 12, 12, 8), out_steps=4)
    with pytest.raises(ValueError, match=r"expects \(B, 1, H, W, T\)"):
        layer(torch.randn(1, 12, 12, 8))


def test_expanded_layer_computes_the_same_function():
    torch.manual_seed(0)
    layer = SpectralConvSpaceTime(2, 3, 3, 2, 2, bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    big = layer.expanded(5, 4, 3)
    assert (big.modes1, big.modes2, big.modes_t) == (5, 4, 3)
    assert big.weight.dtype == torch.float64
    assert parameter_count(big) == 8 * 2 * 3 * 5 * 4 * 3 + 8 * 3 * 5 * 4 * 3
    x = torch.randn(2, 2, 12, 10, 6, dtype=torch.float64)
    torch.testing.assert_close(big(x, out_steps=7), layer(x, out_steps=7))
    with pytest.raises(ValueError, match="cannot shrink"):
        layer.expanded(2, 4, 3)


def test_space_time_embedding_channels():
    emb = SpaceTimeEmbedding(add_grid=True, frequencies=2, decay=0.5)
    out = emb(torch.zeros(2, 1, 4, 8, 5))
    assert out.shape == (2, 1 + 3 + 4, 4, 8, 5) and emb.extra_channels == 7
    t = torch.arange(1, 6) / 5
    torch.testing.assert_close(out[0, 1, :, 0, 0], torch.arange(4) / 4)  # y
    torch.testing.assert_close(out[1, 2, 0, :, 0], torch.arange(8) / 8)  # x
    torch.testing.assert_close(out[0, 3, 2, 3], t)
    torch.testing.assert_close(out[0, 6, 1, 1], torch.exp(-0.5 * t) * torch.sin(2 * math.pi * t))
    torch.testing.assert_close(out[0, 7, 1, 1], torch.exp(-0.5 * t) * torch.cos(2 * math.pi * t))
    assert SpaceTimeEmbedding(add_grid=False).extra_channels == 0


# --- the model -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "out_steps", "grid"),
    [(10, 10, (32, 32)), (3, 7, (32, 32)), (8, 1, (48, 40)), (4, 2, (33, 35)), (1, 1, (16, 16))],
)
def test_sfno_shapes_and_untrained_persistence(history, out_steps, grid):
    torch.manual_seed(0)
    config = {**SMALL, "history": history, "out_steps": out_steps}
    if history < 2:
        config["modes_t"] = 1
    model = build_model("sfno", config)
    x = torch.randn(2, history, 1, *grid)
    y = model(x)
    assert y.shape == (2, out_steps, 1, *grid)
    # The output layer starts at zero: every predicted frame is the last input frame.
    torch.testing.assert_close(y, x[:, -1:].expand_as(y))
    randomise(model)
    y = model(x)
    assert y.shape == (2, out_steps, 1, *grid) and torch.isfinite(y).all()
    assert not torch.allclose(y, x[:, -1:].expand_as(y))


def test_sfno_keeps_dtype_uses_normalisation_and_is_deterministic():
    config = {**SMALL, "history": 3, "out_steps": 2}

    def built(seed: int) -> SFNO:
        torch.manual_seed(seed)
        model = build_model("sfno", config).double()
        # Only the zero-initialised output layer gets fixed random weights (it would hide
        # the rest); every other weight is the one drawn at construction from ``seed``.
        randomise(model.output_layer)
        return model

    a, b, other = built(0), built(0), built(1)
    x = torch.randn(2, 3, 1, 16, 16, dtype=torch.float64)
    y = a(x)
    assert y.dtype == torch.float64
    # The same seed builds the same model, bit for bit ...
    torch.testing.assert_close(y, b(x), rtol=0, atol=0)
    # ... and the comparison can fail: another seed's construction-time weights show.
    assert not torch.allclose(y, other(x))
    # Affine equivariance: shifting and scaling the data together with the normalisation
    # statistics shifts and scales the prediction the same way.
    a.set_normalization(torch.tensor([3.0]), torch.tensor([2.0]))
    torch.testing.assert_close(a(3.0 + 2.0 * x), 3.0 + 2.0 * y)


def test_sfno_rejects_windows_that_break_the_contract():
    model = build_model("sfno", {**SMALL, "history": 3, "out_steps": 2})
    with pytest.raises(ValueError, match=r"expects \(B, 3, 1, H, W\)"):
        model(torch.randn(1, 4, 1, 16, 16))
    with pytest.raises(ValueError, match="too coarse"):
        model(torch.randn(1, 3, 1, 4, 4))


def test_contract():
    c = contract_of("sfno", {"history": 5, "out_steps": 3, "modes_t": 2, "channels": 2})
    assert (c.dims, c.channels, c.history, c.out_steps) == (2, 2, 5, 3)
    model = build_model("sfno", {**SMALL, "history": 4, "out_steps": 1})
    assert isinstance(model, SFNO)
    assert (
        model.contract == SFNOConfig.from_dict({**SMALL, "history": 4, "out_steps": 1}).contract()
    )
    defaults = SFNOConfig()
    assert (defaults.history, defaults.out_steps, defaults.channels) == (10, 10, 1)


def _formula(c, w, m, mt, n_layers, r, big_m, big_mt, extra) -> int:
    lifted = c + extra
    spectral = 8 * w * w * m * m * mt
    lift = lifted * w + w + spectral
    block = spectral + 2 * r * w * w + r * w + w + w * w + w
    reduce = w * c + c
    output = 8 * c * c * big_m * big_m * big_mt + 8 * c * big_m * big_m * big_mt
    return lift + n_layers * block + reduce + output


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, _formula(1, 20, 8, 4, 3, 4, 8, 4, 3 + 8)),
        (
            {"width": 5, "modes": 3, "modes_t": 2, "n_layers": 2, "mlp_ratio": 2,
             "add_grid": False},
            _formula(1, 5, 3, 2, 2, 2, 3, 2, 8),
        ),
        (
            {"channels": 2, "width": 4, "modes": 2, "modes_t": 3, "n_layers": 0,
             "out_modes": 5, "out_modes_t": 2, "time_frequencies": 0},
            _formula(2, 4, 2, 3, 0, 4, 5, 2, 3),
        ),
    ],
)  # fmt: skip
def test_parameter_count_matches_documented_formula(config, expected):
    assert count_parameters("sfno", config) == expected
    assert SFNOConfig.from_dict(config).parameter_count() == expected
    assert parameter_count(build_model("sfno", config)) == expected


def test_default_parameter_count_is_pinned():
    # lift (12·20 + 20) + 819 200; blocks 3·(819 200 + 3 300 + 420); reduce 21;
    # output layer 8·8²·4 + 8·8²·4.
    assert count_parameters("sfno") == 3_292_337


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"widht": 8}, "unknown SFNOConfig keys: widht"),
        ({"width": 0}, "SFNOConfig.width must be at least 1, got 0"),
        ({"modes": 2.5}, "SFNOConfig.modes must be int"),
        ({"activation": "softmax"}, "SFNOConfig.activation must be one of gelu, relu, silu"),
        (
            {"history": 4, "modes_t": 4},
            "modes_t=4 temporal modes need at least 6 frames in the input window and in the "
            "latent trajectory; got history=4, latent_steps=10",
        ),
        (
            {
                "temporal_padding": False,
                "modes_t": 2,
                "latent_steps": 4,
                "out_steps": 1,
                "out_modes_t": 5,
            },
            "the output layer's 5 temporal modes need at least 8 frames, but it reads 6 and "
            "writes 3",
        ),
    ],
)
def test_config_errors_say_what_is_wrong(config, message):
    with pytest.raises(ValueError, match=message):
        build_model("sfno", config)


def test_check_grid():
    config = SFNOConfig(modes=8, out_modes=12)
    config.check_grid((24, 24))
    config.check_grid((32, 48))
    with pytest.raises(ValueError, match="too coarse for 8 hidden and 12 output Fourier modes"):
        config.check_grid((32, 20))
    with pytest.raises(ValueError, match="at least 16×16"):
        SFNOConfig(modes=8).check_grid((16, 15))
    with pytest.raises(ValueError, match="2D grids"):
        SFNOConfig().check_grid((32, 32, 32))


# --- spectral refinement of the output layer -----------------------------------------------


def test_refine_output_modes_keeps_the_output_and_grows_the_layer():
    torch.manual_seed(0)
    config = {**SMALL, "history": 4, "out_steps": 3}
    model = build_model("sfno", config)
    randomise(model)
    x = torch.randn(2, 4, 1, 16, 16)
    before = model(x)
    count_before = parameter_count(model)

    model.refine_output_modes(6, 3)
    assert model.output_layer.modes1 == 6 and model.output_layer.modes_t == 3
    assert (model.config.out_modes, model.config.out_modes_t) == (6, 3)
    torch.testing.assert_close(model(x), before)
    grown = 8 * (6 * 6 * 3 - 3 * 3 * 2) * 2  # weights + bias, one channel
    assert parameter_count(model) == count_before + grown
    assert parameter_count(model) == model.config.parameter_count()
    assert parameter_count(model) == count_parameters("sfno", model.config.to_dict())

    # The added modes are trainable: they receive gradient from the data.
    model(x).square().sum().backward()
    new_modes = model.output_layer.weight.grad[:, :, 3:-3]
    assert new_modes.abs().sum() > 0

    # Spatial modes only; the temporal ones stay.
    model.refine_output_modes(7)
    assert (model.config.out_modes, model.config.out_modes_t) == (7, 3)
    torch.testing.assert_close(model(x), before)


def test_refine_output_modes_rejects_fewer_modes_and_invalid_configs():
    model = build_model("sfno", {**SMALL, "history": 4, "out_steps": 1})
    with pytest.raises(ValueError, match="can only add modes"):
        model.refine_output_modes(2)
    with pytest.raises(ValueError, match="temporal modes need at least"):
        model.refine_output_modes(3, 40)
    assert model.config.out_modes == 0 and model.output_layer.modes1 == 3  # untouched


# --- learning and checkpoints ---------------------------------------------------------------


def test_sfno_learns_advection_diffusion():
    torch.manual_seed(0)
    config = {
        "history": 3, "out_steps": 2, "width": 6, "modes": 4, "modes_t": 2,
        "n_layers": 1, "latent_steps": 4, "mlp_ratio": 1, "time_frequencies": 1,
    }  # fmt: skip
    model = build_model("sfno", config)
    assert parameter_count(model) < 20_000
    train, val = learning_problem(1, (32, 32), steps=8)
    fit(model, train, steps=100, lr=1e-2)
    model_err, persistence_err = errors(model, val)
    assert model_err < 0.15 * persistence_err, (model_err, persistence_err)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    config = {**SMALL, "history": 3, "out_steps": 2}
    model = build_model("sfno", config)
    randomise(model)
    model.set_normalization(torch.tensor([0.5]), torch.tensor([2.0]))
    save_model(tmp_path, "sfno", config, model, {"note": "test"})
    loaded, info = load_model(tmp_path)
    assert info["arch"] == "sfno" and info["metadata"] == {"note": "test"}
    x = torch.randn(2, 3, 1, 16, 16)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)


def test_checkpoint_round_trip_after_refinement(tmp_path):
    torch.manual_seed(0)
    model = build_model("sfno", {**SMALL, "history": 3, "out_steps": 2})
    randomise(model)
    model.refine_output_modes(5, 3)
    randomise(model, seed=2)  # fine-tuned: the new modes are no longer zero
    config = model.config.to_dict()
    assert (config["out_modes"], config["out_modes_t"]) == (5, 3)
    save_model(tmp_path, "sfno", config, model, {})
    loaded, info = load_model(tmp_path)
    assert info["parameter_count"] == parameter_count(model)
    assert loaded.output_layer.modes1 == 5
    x = torch.randn(2, 3, 1, 16, 16)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
