"""FactFormer / IFactFormer-m: layers, shapes, parameter counts, config errors, weight
sharing, learning and checkpoints."""

from __future__ import annotations

import pytest
import torch

from models.checkpoint import load_model, save_model
from models.factformer import (
    FactFormer,
    FactFormer2dConfig,
    FactFormer3dConfig,
    IFactFormer2dConfig,
    IFactFormer3dConfig,
)
from models.layers_attention import (
    AxisPooling,
    FactorizedAttention,
    apply_along_axis,
    axis_coordinates,
    rotary_angles,
    rotate_pairs,
)
from models.registry import MODELS, build_model, count_parameters, parameter_count
from tests.helpers import randomise
from tests.learning import errors, fit, learning_problem

ARCHS = ("factformer2d", "factformer3d", "ifactformer2d", "ifactformer3d")
SMALL = {"dim": 12, "heads": 2, "head_dim": 4, "kernel_multiplier": 2}
SMALL_DEPTH = {"factformer2d": {"n_layers": 2}, "factformer3d": {"n_layers": 2}}


def _small(arch: str, **extra) -> dict:
    depth = SMALL_DEPTH.get(arch, {"n_iterations": 3})
    return {**SMALL, **depth, **extra}


def _formula(d, heads, e, m, n_axes, parallel, channels, history, blocks) -> int:
    """The documented parameter count of FactFormer, term by term."""
    groups = n_axes if parallel else 1
    lift = d + history * d * d // 2
    position = d * d + d
    block = (
        (2 * d + d * heads * e + d * d)
        + n_axes * (4 * d * d + 5 * d)
        + n_axes * 2 * d * heads * e * m
        + (groups * heads * e * d + d * d)
    )
    head = d * d // 2 + (d // 2) * channels + channels
    return lift + blocks * (position + block) + head


# --- layers ---------------------------------------------------------------------------


def test_axis_coordinates_periodic_and_wall_bounded():
    torch.testing.assert_close(
        axis_coordinates(4, periodic=True), torch.tensor([0, 0.25, 0.5, 0.75])
    )
    torch.testing.assert_close(axis_coordinates(5, periodic=False), torch.linspace(0, 1, 5))


def test_rotary_kernel_depends_on_relative_position_only():
    """rot(q, φ(x))·rot(k, φ(x')) is unchanged when both positions move by the same amount."""
    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)
    x = torch.tensor([0.1, 0.35])
    a = rotary_angles(x, 16, 64.0)
    b = rotary_angles(x + 0.27, 16, 64.0)
    dot_a = rotate_pairs(q, a[0]) @ rotate_pairs(k, a[1])
    dot_b = rotate_pairs(q, b[0]) @ rotate_pairs(k, b[1])
    torch.testing.assert_close(dot_a, dot_b, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(dot_a, q @ k)  # the positions do matter


def test_apply_along_axis_is_the_axis_contraction():
    torch.manual_seed(0)
    v = torch.randn(2, 3, 4, 5, 6, 2)
    kx, ky, kz = (torch.randn(2, 3, n, n) for n in (4, 5, 6))
    torch.testing.assert_close(
        apply_along_axis(ky, v, 1), torch.einsum("bhlm,bhimsc->bhilsc", ky, v)
    )
    chained = apply_along_axis(kz, apply_along_axis(ky, apply_along_axis(kx, v, 0), 1), 2)
    dense = torch.einsum("bhij,bhlm,bhrs,bhjmsc->bhilrc", kx, ky, kz, v)
    torch.testing.assert_close(chained, dense, rtol=1e-4, atol=1e-4)


def _dense_block(block: FactorizedAttention, u: torch.Tensor, coords, parallel: bool):
    """The block's equations written out independently: rotary encoding as multiplication
    of complex pairs by exp(iφ), axis maps and chaining by one einsum, InstanceNorm3d."""
    heads, e = block.heads, block.head_dim
    u = block.norm(u)
    v = block.to_v(u).unflatten(-1, (heads, e))  # (B, X, Y, Z, H, e)
    w = block.to_in(u)
    kernels = []
    for a, (pool, kern, x) in enumerate(zip(block.pool, block.kernel, coords, strict=True)):
        tokens = pool.norm(pool.to_in(w.movedim(1 + a, 1).flatten(2, -2).mean(2)))
        first, second = pool.gate(tokens).chunk(2, dim=-1)
        tokens = pool.out(torch.nn.functional.gelu(first) * second)
        half = kern.kernel_dim // 2
        freq = 10000.0 ** (-torch.arange(half) * 2 / kern.kernel_dim)
        phase = torch.polar(torch.ones(len(x), half), 64.0 * x[:, None] * freq)

        def rotated(t, phase=phase, half=half):
            t = t.unflatten(-1, (heads, 2 * half))
            return torch.complex(t[..., :half], t[..., half:]) * phase[:, None, :]

        q, k = rotated(kern.to_q(tokens)), rotated(kern.to_k(tokens))
        kernels.append(torch.einsum("bihc,bjhc->bhij", q, k.conj()).real * kern.scaling)
    kx, ky, kz = kernels
    if parallel:
        parts = [
            torch.einsum("bhij,bjyzhc->bhciyz", kx, v),
            torch.einsum("bhij,bxjzhc->bhcxiz", ky, v),
            torch.einsum("bhij,bxyjhc->bhcxyi", kz, v),
        ]
    else:
        parts = [torch.einsum("bhil,bhjm,bhkn,blmnhc->bhcijk", kx, ky, kz, v)]
    phi = torch.stack(parts, dim=2).flatten(1, 3)  # channels ordered (head, part, feature)
    phi = torch.nn.functional.instance_norm(phi, eps=1e-5).movedim(1, -1)
    return block.out(torch.nn.functional.gelu(block.out_hidden(phi)))


@pytest.mark.parametrize("parallel", [False, True])
def test_block_matches_its_equations(parallel):
    torch.manual_seed(0)
    block = FactorizedAttention(8, 2, 4, 3, 3, parallel=parallel, rotary_scale=64.0)
    randomise(block)
    coords = [axis_coordinates(5, True), axis_coordinates(6, False), axis_coordinates(4, True)]
    u = torch.randn(2, 5, 6, 4, 8)
    expected = _dense_block(block, u, coords, parallel)
    torch.testing.assert_close(block(u, coords), expected, rtol=1e-4, atol=1e-4)


def test_axis_pooling_shape_and_count():
    layer = AxisPooling(6, 5, axis=1)
    assert layer(torch.randn(2, 7, 8, 9, 6)).shape == (2, 8, 5)
    assert parameter_count(layer) == 6 * 6 + 2 * 6 + (6 * 12 + 12) + (6 * 5 + 5)


@pytest.mark.parametrize("parallel", [False, True])
def test_chained_and_parallel_forms(parallel):
    """With the y kernel switched off, the chained product K_x ⋆ K_y ⋆ v vanishes (and so does
    the block), while the parallel form still passes K_x ⋆ v through."""
    torch.manual_seed(0)
    block = FactorizedAttention(8, 2, 4, 2, 2, parallel=parallel, rotary_scale=64.0)
    randomise(block)
    with torch.no_grad():
        block.kernel[1].to_q.weight.zero_()
    coords = [axis_coordinates(6, True), axis_coordinates(7, True)]
    out = block(torch.randn(2, 6, 7, 8), coords)
    assert out.shape == (2, 6, 7, 8)
    if parallel:
        assert out.abs().max() > 1e-3
    else:
        assert out.abs().max() == 0
    d, h, e, m, n_axes = 8, 2, 4, 2, 2
    groups = n_axes if parallel else 1
    assert parameter_count(block) == (
        2 * d + d * h * e + d * d + n_axes * (4 * d * d + 5 * d) + 2 * n_axes * d * h * e * m
        + groups * h * e * d + d * d
    )  # fmt: skip


# --- shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["factformer2d", "ifactformer2d"])
@pytest.mark.parametrize("space", [(16, 16), (24, 20), (9, 33)])
def test_2d_shapes(arch, space):
    torch.manual_seed(0)
    model = build_model(arch, _small(arch, history=2))
    randomise(model)
    x = torch.randn(2, 2, 1, *space)
    y = model(x)
    assert y.shape == (2, 1, 1, *space) and y.dtype == x.dtype
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ["factformer3d", "ifactformer3d"])
@pytest.mark.parametrize("space", [(8, 9, 6), (6, 5, 10)])
def test_3d_shapes(arch, space):
    torch.manual_seed(0)
    model = build_model(arch, _small(arch))
    randomise(model)
    y = model(torch.randn(2, 1, 3, *space))
    assert y.shape == (2, 1, 3, *space) and torch.isfinite(y).all()


def test_channel_flow_grid_parallel_form():
    """The 32×33×16 channel-flow grid (wall-normal y with 33 points) at a small width."""
    torch.manual_seed(0)
    model = build_model("ifactformer3d", {"dim": 12, "heads": 2, "head_dim": 6, "n_iterations": 2})
    randomise(model)
    y = model(torch.randn(1, 1, 3, 32, 33, 16))
    assert y.shape == (1, 1, 3, 32, 33, 16) and torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_untrained_model_is_persistence(arch):
    model = build_model(arch, _small(arch, history=2))
    c = model.contract
    space = (8, 6) if c.dims == 2 else (6, 7, 4)
    x = torch.randn(2, 2, c.channels, *space)
    torch.testing.assert_close(model(x), x[:, -1:])


def test_keeps_double_precision_and_is_deterministic():
    torch.manual_seed(3)
    a = build_model("ifactformer2d", _small("ifactformer2d"))
    torch.manual_seed(3)
    b = build_model("ifactformer2d", _small("ifactformer2d"))
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    randomise(a)
    a = a.double()
    x = torch.randn(1, 1, 1, 10, 12, dtype=torch.float64)
    assert a(x).dtype == torch.float64


def test_normalisation_makes_the_model_unit_free():
    """With statistics (a·m + b, a·s) the model maps a·x + b to a·f(x) + b."""
    model = build_model("factformer3d", _small("factformer3d"))
    randomise(model)
    x = torch.randn(2, 1, 3, 6, 5, 4)
    mean, std = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([2.0, 0.5, 1.5])
    a = torch.tensor([10.0, 0.1, 3.0]).view(1, 1, 3, 1, 1, 1)
    b = torch.tensor([-4.0, 7.0, 0.5]).view(1, 1, 3, 1, 1, 1)
    model.set_normalization(mean, std)
    y = model(x)
    model.set_normalization(a.flatten() * mean + b.flatten(), a.flatten() * std)
    torch.testing.assert_close(model(a * x + b), a * y + b, rtol=1e-4, atol=1e-4)


# --- parameter counts -----------------------------------------------------------------


def test_paper_ifactformer3d_has_1_16_million_parameters():
    """IFactFormer-m as in the paper's code (dim 96, 5 heads of 96, rank 3·96, 10
    iterations, 3 velocity channels, 1 input frame):

        lift 48 + 48 + 48·96                                  =     4,704
        positional map 96² + 96                               =     9,312
        block 2·96 + 96·480 + 96² + 3·(4·96² + 5·96)
              + 3·2·96·480·3 + 3·480·96 + 96²                 = 1,144,416
        head 96·48 + 48·3 + 3                                 =     4,755
                                                              = 1,163,187

    the reference implementation's trainable-parameter count exactly (its own
    count_params says 1,163,331: it also counts the frozen 3 × 48 Fourier-frequency
    matrix, which is a buffer here)."""
    assert count_parameters("ifactformer3d", {}) == 1_163_187
    assert 4_704 + 9_312 + 1_144_416 + 4_755 == 1_163_187
    assert IFactFormer3dConfig().parameter_count() == 1_163_187
    assert _formula(96, 5, 96, 3, 3, True, 3, 1, 1) == 1_163_187


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    "config",
    [{}, {"dim": 12, "heads": 3, "head_dim": 5, "kernel_multiplier": 2, "history": 3}],
)
def test_parameter_count_matches_formula(arch, config):
    cfg = MODELS[arch].config_cls.from_dict(config)
    blocks = getattr(cfg, "n_layers", 1)
    expected = _formula(
        cfg.dim, cfg.heads, cfg.head_dim, cfg.kernel_multiplier, cfg.dims, cfg.parallel,
        cfg.channels, cfg.history, blocks,
    )  # fmt: skip
    assert count_parameters(arch, config) == expected == cfg.parameter_count()
    if config:  # small enough to build for real: the meta-device count is the real one
        assert parameter_count(build_model(arch, config)) == expected


@pytest.mark.parametrize("arch", ["ifactformer2d", "ifactformer3d"])
def test_iterations_share_one_block(arch):
    counts = {n: count_parameters(arch, _small(arch, n_iterations=n)) for n in (1, 4, 25)}
    assert len(set(counts.values())) == 1
    one = build_model(arch, _small(arch, n_iterations=1))
    four = build_model(arch, _small(arch, n_iterations=4))
    assert one.state_dict().keys() == four.state_dict().keys()
    # same weights, more iterations: a different (deeper) map
    randomise(one)
    four.load_state_dict(one.state_dict())
    space = (6, 7) if one.contract.dims == 2 else (5, 6, 4)
    x = torch.randn(1, 1, one.contract.channels, *space)
    assert not torch.allclose(one(x), four(x))


def test_factformer_layers_are_distinct():
    counts = [
        count_parameters("factformer2d", _small("factformer2d", n_layers=n)) for n in (1, 2, 3)
    ]
    assert counts[2] - counts[1] == counts[1] - counts[0] > 0


# --- configuration errors -------------------------------------------------------------


def test_config_round_trip_and_forms():
    for cls, parallel, dims in (
        (FactFormer2dConfig, False, 2),
        (FactFormer3dConfig, False, 3),
        (IFactFormer2dConfig, True, 2),
        (IFactFormer3dConfig, True, 3),
    ):
        cfg = cls()
        assert cls.from_dict(cfg.to_dict()) == cfg
        assert (cfg.parallel, cfg.dims) == (parallel, dims)
        assert cfg.contract().channels == (1 if dims == 2 else 3)
        assert [f["name"] for f in cls.form_fields()][:3] == ["channels", "history", "dim"]
    assert "n_iterations" in IFactFormer3dConfig().to_dict()
    assert "n_layers" in FactFormer3dConfig().to_dict()


def test_config_errors_are_sentences():
    with pytest.raises(ValueError, match="unknown IFactFormer3dConfig keys: depth"):
        build_model("ifactformer3d", {"depth": 2})
    with pytest.raises(ValueError, match="n_layers"):
        build_model("ifactformer2d", {"n_layers": 2})  # the shared-block form has none
    with pytest.raises(ValueError, match="heads must be at least 1"):
        IFactFormer2dConfig(heads=0)
    with pytest.raises(ValueError, match="n_iterations must be int"):
        IFactFormer2dConfig(n_iterations=2.5)
    with pytest.raises(ValueError, match=r"dim/2 divisible by channels.*dim=128, channels=3"):
        FactFormer3dConfig(dim=128)
    with pytest.raises(ValueError, match="must be even"):
        FactFormer2dConfig(head_dim=5, kernel_multiplier=3)


def test_grid_errors():
    cfg = IFactFormer3dConfig()
    cfg.check_grid((32, 33, 16))
    with pytest.raises(ValueError, match=r"works on 3D grids \(X, Y, Z\); got a grid of shape"):
        cfg.check_grid((32, 32))
    with pytest.raises(ValueError, match="a 32×1×16 grid is too small for IFactFormer-m"):
        cfg.check_grid((32, 1, 16))
    model = build_model("factformer2d", _small("factformer2d"))
    with pytest.raises(ValueError, match="every axis needs at least 2 points"):
        model(torch.randn(1, 1, 1, 1, 8))
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(1, 1, 2, 8, 8))  # two channels for a one-channel model


# --- learning -------------------------------------------------------------------------


def test_chained_2d_learns_advection():
    torch.manual_seed(0)
    train, val = learning_problem(1, (16, 16))
    model = build_model(
        "factformer2d",
        {"dim": 16, "heads": 4, "head_dim": 8, "kernel_multiplier": 4, "n_layers": 1},
    )
    fit(model, train, steps=300, lr=5e-3)
    model_err, persistence_err = errors(model, val)
    assert model_err < 0.3 * persistence_err


def test_parallel_3d_learns_advection():
    torch.manual_seed(0)
    train, val = learning_problem(3, (8, 9, 8))  # an odd number of wall-normal points
    model = build_model(
        "ifactformer3d",
        {"dim": 12, "heads": 2, "head_dim": 8, "kernel_multiplier": 4, "n_iterations": 2},
    )
    fit(model, train, steps=300, lr=1e-2)
    model_err, persistence_err = errors(model, val)
    assert model_err < 0.3 * persistence_err


# --- checkpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["factformer2d", "ifactformer3d"])
def test_checkpoint_round_trip(tmp_path, arch):
    config = _small(arch)
    model = build_model(arch, config)
    randomise(model)
    model.set_normalization(
        torch.linspace(0.5, 1.0, model.contract.channels),
        torch.linspace(1.0, 2.0, model.contract.channels),
    )
    save_model(tmp_path, arch, config, model, {"note": "test"})
    loaded, info = load_model(tmp_path)
    assert isinstance(loaded, FactFormer) and info["arch"] == arch
    assert info["parameter_count"] == parameter_count(model)
    space = (8, 6) if model.contract.dims == 2 else (6, 5, 4)
    x = torch.randn(2, 1, model.contract.channels, *space)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
