"""Channel statistics against fields whose x–z averages are known exactly.

The synthetic field is U(y) = a(1 − y²) plus single Fourier modes in x and z with amplitudes
A(y), B(y), C(y): discrete x–z averages of cos² over a periodic grid are exactly ½ (away from
the mean and Nyquist modes), so ⟨u′²⟩ = A²/4, ⟨v′²⟩ = B²/4, ⟨u′v′⟩ = AB/4, ⟨w′²⟩ = C²/4 to
round-off, and the second-order wall derivatives and quadrature are exact for the parabola."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from physics.channel.stats import (
    MKM_RE180,
    ChannelStatistics,
    channel_grid,
    derivative,
    log_law,
    quadrature_weights,
    snapshot_statistics,
    viscous_sublayer,
)

NX, NZ = 8, 6
LX, LZ = 2 * math.pi, math.pi
NU, A_MEAN = 0.01, 1.5
TAU = 2 * A_MEAN * NU  # ν dU/dy at y = −1 for U = a(1 − y²)
KX, KZ = 2 * math.pi / LX, 2 * math.pi / LZ


def lobatto(n: int) -> np.ndarray:
    return -np.cos(np.pi * np.arange(n) / (n - 1))


def gauss(n: int) -> np.ndarray:
    return -np.cos(np.pi * (np.arange(n) + 0.5) / n)


def tanh_grid(n: int, gamma: float = 2.0) -> np.ndarray:
    return np.tanh(gamma * np.linspace(-1, 1, n)) / np.tanh(gamma)


def cell_centred(n: int) -> np.ndarray:
    return -1 + (np.arange(n) + 0.5) * 2 / n


GRIDS = {
    "lobatto-odd": lobatto(17),
    "lobatto-even-decreasing": lobatto(16)[::-1].copy(),
    "gauss-interior": gauss(12),
    "tanh-walls": tanh_grid(13),
    "uniform-cell-centred": cell_centred(11),
}


def amplitudes(y: np.ndarray):
    """A even, B odd (so ⟨u′v′⟩ < 0 in the lower half, > 0 in the upper), C even."""
    return 0.3 * (1 - y**2), 0.2 * y * (1 - y**2), 0.1 * (1 - y**4)


def synthetic(y: np.ndarray, batch: int = 3, w_offset: float = 0.0) -> np.ndarray:
    """(batch, 3, NX, ny, NZ); snapshot s is shifted in x and has its own plane-mean u."""
    x = np.arange(NX) * LX / NX
    z = np.arange(NZ) * LZ / NZ
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    a, b, c = amplitudes(Y)
    out = []
    offsets = np.linspace(-0.2, 0.2, batch) if batch > 1 else [0.0]
    for s in range(batch):
        phase = 0.7 * s
        mode = np.cos(KX * X + phase) * np.cos(2 * KZ * Z)
        u = A_MEAN * (1 - Y**2) + offsets[s] * Y**2 * (1 - Y**2) + a * mode
        v = b * mode
        w = w_offset + c * np.sin(3 * KX * X + phase) * np.cos(KZ * Z)
        out.append(np.stack([u, v, w]))
    return np.stack(out)


def expected(y: np.ndarray, batch: int = 3):
    """Folded exact profiles at the lower-half points (increasing y)."""
    y = np.sort(y)
    lower = y[: (y.size + 1) // 2]
    a, b, c = amplitudes(lower)
    offsets = np.linspace(-0.2, 0.2, batch) if batch > 1 else np.zeros(1)
    between = np.mean(offsets**2) * (lower**2 * (1 - lower**2)) ** 2
    d = 1 + lower
    return {
        "y": d,
        "yplus": d * math.sqrt(TAU) / NU,
        "u_mean_plus": A_MEAN * (1 - lower**2) / math.sqrt(TAU),
        "u_rms_plus": np.sqrt(a**2 / 4 + between) / math.sqrt(TAU),
        "v_rms_plus": np.abs(b) / 2 / math.sqrt(TAU),
        "w_rms_plus": np.abs(c) / 2 / math.sqrt(TAU),
        "reynolds_stress_plus": -a * b / 4 / TAU,
        "viscous_stress_plus": 1 - d,
        "total_stress_linear": 1 - d,
    }


def close(actual, wanted, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(actual, wanted, rtol=rtol, atol=atol)


def same_results(actual, wanted, rtol=1e-12, atol=1e-12):
    got, want = actual.to_dict(), wanted.to_dict()
    assert got.keys() == want.keys()
    for key in want.keys() - {"components"}:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol, err_msg=key)


@pytest.mark.parametrize("name", list(GRIDS))
def test_synthetic_field_statistics_are_exact(name):
    y = GRIDS[name]
    result = snapshot_statistics(synthetic(y), y, NU, LX, LZ)
    want = expected(y)
    assert result.n_snapshots == 3
    close(result.u_tau, math.sqrt(TAU))
    close([result.tau_wall_lower, result.tau_wall_upper], [TAU, TAU])
    close(result.re_tau, math.sqrt(TAU) / NU)
    for key, value in want.items():
        close(getattr(result, key), value)
    close(result.total_stress_plus, want["viscous_stress_plus"] + want["reynolds_stress_plus"])
    close(result.total_stress_deviation, want["reynolds_stress_plus"])
    close(result.stress_balance_error, np.abs(want["reynolds_stress_plus"]).max())
    close(result.bulk_u_plus, 2 * A_MEAN / 3 / math.sqrt(TAU))
    close(result.centreline_u_plus, A_MEAN / math.sqrt(TAU))


def test_a_parabola_alone_balances_the_stress_exactly():
    y = tanh_grid(15, gamma=2.5)
    X = np.zeros((1, 3, 4, y.size, 4))
    X[:, 0] = 3.0 * (1 - y[None, :, None] ** 2)
    result = snapshot_statistics(X, y, 1e-3, 1.0, 1.0)
    close(result.u_tau, math.sqrt(2 * 3.0 * 1e-3))
    close(result.total_stress_deviation, 0.0, atol=1e-13)
    close(result.reynolds_stress_plus, 0.0)
    close(result.u_rms_plus, 0.0)


def test_antisymmetric_reynolds_stress_folds_to_one_sign():
    y = lobatto(15)
    u = synthetic(y, batch=1)
    result = snapshot_statistics(u, y, NU, LX, LZ)
    interior = result.reynolds_stress_plus[1:-1]  # zero at the wall and the centre
    assert (interior > 0).all()
    # Each half alone gives the same profile: the upper half's ⟨u′v′⟩ has the other sign.
    ny = y.size
    uv = (u[0, 0] - u[0, 0].mean(axis=(0, 2), keepdims=True)) * u[0, 1]
    uv = uv.mean(axis=(0, 2)) / TAU
    close(-uv[: (ny + 1) // 2], result.reynolds_stress_plus)
    close(uv[::-1][: (ny + 1) // 2], result.reynolds_stress_plus)
    # A symmetric ⟨u′v′⟩ (v even) has no wall-normal flux left after folding.
    u_sym = u.copy()
    u_sym[:, 1] = u[:, 1] * np.sign(y)[None, None, :, None]  # odd × odd = even
    close(snapshot_statistics(u_sym, y, NU, LX, LZ).reynolds_stress_plus, 0.0)


def test_decreasing_y_gives_the_same_result():
    y = lobatto(12)
    u = synthetic(y)
    up = snapshot_statistics(u, y, NU, LX, LZ)
    down = snapshot_statistics(u[:, :, :, ::-1].copy(), y[::-1].copy(), NU, LX, LZ)
    same_results(down, up)


@pytest.mark.parametrize(("nx", "nz"), [(9, 8), (8, 7)])
def test_spectra_sum_to_the_variance(nx, nz):
    # Noise puts energy in every mode, Nyquist included, so any miscounted rfft bin shows.
    rng = np.random.default_rng(nx)
    y = gauss(10)
    u = rng.standard_normal((3, 3, nx, y.size, nz))
    u[:, 0] += 5 * (1 - y[None, :, None] ** 2) + rng.standard_normal((3, 1, y.size, 1))
    first = snapshot_statistics(u, y, NU, 1.0, 2.0)
    result = snapshot_statistics(u, y, NU, 1.0, 2.0, spectra_at_yplus=first.yplus)
    close(result.spectra_yplus, result.yplus)
    variance = np.stack([result.u_rms_plus, result.v_rms_plus, result.w_rms_plus], axis=1)
    variance = (variance * result.u_tau) ** 2  # (P, 3)
    close(result.spectra_x.sum(-1), variance)
    close(result.spectra_z.sum(-1), variance)
    assert result.spectra_x.shape == (y.size // 2, 3, nx // 2 + 1)
    assert result.spectra_z.shape == (y.size // 2, 3, nz // 2 + 1)
    assert (result.spectra_x >= 0).all() and (result.spectra_z >= 0).all()
    close(result.kx, 2 * math.pi * np.arange(nx // 2 + 1))
    close(result.kz, math.pi * np.arange(nz // 2 + 1))


def test_a_single_mode_lands_in_its_bins():
    y = lobatto(9)
    result = snapshot_statistics(synthetic(y, batch=1), y, NU, LX, LZ, spectra_at_yplus=(8,))
    plane = int(np.argmin(np.abs(result.yplus - 8)))
    assert result.spectra_yplus[0] == result.yplus[plane]
    a, b, c = amplitudes(np.sort(y)[plane])
    ex, ez = result.spectra_x[0], result.spectra_z[0]
    # u and v: cos(k_x x) cos(2 k_z z); w: sin(3 k_x x) cos(k_z z); each a quarter of amp².
    close(ex[:, 0], [0, 0, 0], atol=1e-15)
    close(ex[:, 1], [a**2 / 4, b**2 / 4, 0], atol=1e-15)
    close(ex[2, 3], c**2 / 4)
    close(ez[:2, 2], [a**2 / 4, b**2 / 4])
    close(ez[2, 1], c**2 / 4)
    assert ex.sum() == pytest.approx((a**2 + b**2 + c**2) / 4, rel=1e-12)


def running(u: np.ndarray, y: np.ndarray, parts=((0, 1), (1, 3), (3, 6))):
    stats = ChannelStatistics(y, NU, LX, LZ)
    for i, (start, stop) in enumerate(parts):
        part = u[start:stop]
        stats.update(torch.from_numpy(part) if i % 2 else part)
    return stats.result()


def test_accumulator_equals_all_snapshots_at_once():
    y = tanh_grid(11)
    u = synthetic(y, batch=6)
    u += 1e-2 * np.random.default_rng(0).standard_normal(u.shape)
    stepwise = running(u, y)
    assert stepwise.n_snapshots == 6
    same_results(stepwise, snapshot_statistics(u, y, NU, LX, LZ))


def test_a_large_mean_costs_no_digits_of_the_fluctuations():
    # w = 10⁶ + O(0.1): ⟨w²⟩ − W² in float64 would keep about 4 digits of ⟨w′²⟩.
    y = tanh_grid(11)
    u = synthetic(y, batch=6, w_offset=1e6)
    u += 1e-2 * np.random.default_rng(0).standard_normal(u.shape)
    stepwise = running(u, y)
    direct = u[:, 2] - u[:, 2].mean(axis=(0, 1, 3), keepdims=True)
    variance = (direct**2).mean(axis=(0, 1, 3))
    half = (y.size + 1) // 2
    w_rms = np.sqrt(0.5 * (variance[:half] + variance[::-1][:half]))
    close(stepwise.w_rms_plus * stepwise.u_tau, w_rms, rtol=1e-9)


def test_inputs_of_every_kind_agree():
    y = gauss(8)
    u = synthetic(y, batch=1).astype(np.float32)
    numpy4d = snapshot_statistics(u[0], y, NU, LX, LZ)
    torch5d = snapshot_statistics(torch.from_numpy(u), torch.from_numpy(y), NU, LX, LZ)
    same_results(torch5d, numpy4d, rtol=0, atol=0)


def test_to_dict_is_json():
    y = lobatto(9)
    data = snapshot_statistics(synthetic(y), y, NU, LX, LZ).to_dict()
    text = json.dumps(data)
    back = json.loads(text)
    assert back["components"] == ["u", "v", "w"]
    assert isinstance(back["u_tau"], float) and back["n_snapshots"] == 3
    assert len(back["yplus"]) == 5 and len(back["spectra_x"]) == 4
    assert len(back["spectra_x"][0]) == 3 and len(back["spectra_x"][0][0]) == NX // 2 + 1


def test_derivative_and_quadrature_are_exact_for_quadratics():
    y = np.sort(np.random.default_rng(1).uniform(-1, 1, 9))
    f = 2.0 - 3.0 * y + 0.7 * y**2
    close(derivative(f, y), -3.0 + 1.4 * y)

    def integral(t):  # an antiderivative of f
        return 2.0 * t - 1.5 * t**2 + 0.7 * t**3 / 3

    close(quadrature_weights(y) @ f, integral(y[-1]) - integral(y[0]))


def test_grid_detects_walls():
    assert channel_grid(lobatto(9)).walls
    assert not channel_grid(gauss(9)).walls
    grid = channel_grid(lobatto(9)[::-1].astype(np.float32))
    assert grid.flipped and grid.walls and grid.y[0] == -1.0 and grid.y[-1] == 1.0


def _field(y):
    return synthetic(y, batch=1)


BAD_SETUPS = {
    "y not monotonic": (np.array([-1.0, 0.5, 0.0, -0.5, 1.0]), "strictly monotonic"),
    "y outside": (np.linspace(-2, 2, 5), r"\[-1, 1\]"),
    "y asymmetric": (np.array([-1.0, -0.5, 0.1, 0.6, 1.0]), "symmetric"),
    "y 2D": (np.zeros((3, 3)), "one array"),
    "y too short": (np.array([-0.5, 0.5]), "at least 3"),
    "y NaN": (np.array([-1.0, np.nan, 1.0]), "NaN"),
}


@pytest.mark.parametrize("case", list(BAD_SETUPS))
def test_bad_grids_are_refused(case):
    y, message = BAD_SETUPS[case]
    with pytest.raises(ValueError, match=message):
        ChannelStatistics(y, NU, LX, LZ)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nu": 0.0}, "nu must be"),
        ({"lx": -1.0}, "lx must be"),
        ({"lz": float("nan")}, "lz must be"),
        ({"spectra_at_yplus": (5, -1)}, "spectra_at_yplus"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    args = {"y": lobatto(5), "nu": NU, "lx": LX, "lz": LZ, **kwargs}
    with pytest.raises(ValueError, match=message):
        ChannelStatistics(**args)


def test_bad_fields_are_refused():
    y = lobatto(7)
    stats = ChannelStatistics(y, NU, LX, LZ)
    u = _field(y)
    with pytest.raises(ValueError, match="No snapshots"):
        stats.result()
    with pytest.raises(ValueError, match=r"\(B, 3, nx, ny, nz\)"):
        stats.update(u[0])
    with pytest.raises(ValueError, match=r"\(B, 3, nx, ny, nz\)"):
        stats.update(u[:, :2])
    with pytest.raises(ValueError, match="but y has 7"):
        stats.update(u[:, :, :, :5])
    bad = u.copy()
    bad[0, 1, 2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        stats.update(bad)
    with pytest.raises(ValueError, match="numeric"):
        stats.update(np.array([[None]], dtype=object))
    stats.update(u)
    with pytest.raises(ValueError, match="earlier ones"):
        stats.update(u[:, :, :4])
    assert stats.count == 1
    at_rest = np.zeros_like(u)
    with pytest.raises(ValueError, match="not positive"):
        snapshot_statistics(at_rest, y, NU, LX, LZ)


def test_reference_lines():
    close(viscous_sublayer([1.0, 5.0]), [1.0, 5.0])
    close(log_law(1.0), 5.2)
    close(log_law(math.e), 1 / 0.41 + 5.2)
    assert MKM_RE180.centreline_u_plus == pytest.approx(18.3)
    assert MKM_RE180.bulk_u_plus == pytest.approx(15.7)
    assert MKM_RE180.peak_u_rms_plus == pytest.approx(2.6)
    assert MKM_RE180.peak_u_rms_yplus == pytest.approx(15.0)
    # The log law sits near the reference centreline at the reference Re_τ.
    assert abs(log_law(MKM_RE180.re_tau) - MKM_RE180.centreline_u_plus) < 1.0
