"""Profile errors, windowed statistics and the blow-up guard (physics.channel.skill)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from physics.channel.grid import ChannelGrid
from physics.channel.skill import (
    PROFILES,
    Guard,
    WindowedStatistics,
    bulk_velocity,
    bulk_weights,
    kinetic_energy,
    profile_errors,
)
from physics.channel.stats import ChannelStatistics, quadrature_weights, snapshot_statistics

F64 = torch.float64
GRID = ChannelGrid(8, 12, 8, 4.0, 2.0, 2.0)
Y = GRID.y_centres.numpy()
NU = 0.02


def frames(count: int, seed: int = 0) -> list[torch.Tensor]:
    """Channel-like frames (1, 3, 8, 12, 8): a parabolic mean in x plus noise that changes
    from frame to frame (so windows differ from the whole run)."""
    generator = torch.Generator().manual_seed(seed)
    parabola = (1 - GRID.y_centres**2)[None, :, None]
    out = []
    for k in range(count):
        u = 0.3 * (1 + k / 4) * torch.randn(1, 3, 8, 12, 8, generator=generator, dtype=F64)
        u[:, 0] += 10 * parabola * (1 + 0.1 * k)
        out.append(u)
    return out


def result(u: torch.Tensor | None = None):
    return snapshot_statistics(frames(1)[0] if u is None else u, Y, NU, 4.0, 2.0)


# --- profile_errors --------------------------------------------------------------------------


def test_identical_statistics_have_zero_profile_errors():
    r = result()
    assert set(profile_errors(r, r)) == set(PROFILES)
    assert all(e == 0 for e in profile_errors(r, r).values())


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ("u_mean", "u_mean_plus"),
        ("u_rms", "u_rms_plus"),
        ("v_rms", "v_rms_plus"),
        ("w_rms", "w_rms_plus"),
        ("uv", "reynolds_stress_plus"),
    ],
)
def test_a_profile_scaled_by_one_plus_e_has_error_e(profile, field):
    r = result()
    scaled = dataclasses.replace(r, **{field: getattr(r, field) * 1.07})
    errors = profile_errors(scaled, r)
    assert errors[profile] == pytest.approx(0.07, rel=1e-9)
    assert all(errors[p] == 0 for p in PROFILES if p != profile)
    # The relative L2 is against the reference's norm: the other way round, 0.07/1.07.
    assert profile_errors(r, scaled)[profile] == pytest.approx(0.07 / 1.07, rel=1e-9)


def test_profile_errors_compare_dimensional_profiles_with_quadrature_weights():
    r = result()
    # The same dimensional profiles in other wall units: no error.
    other_units = dataclasses.replace(
        r,
        u_tau=2 * r.u_tau,
        u_mean_plus=r.u_mean_plus / 2,
        u_rms_plus=r.u_rms_plus / 2,
        v_rms_plus=r.v_rms_plus / 2,
        w_rms_plus=r.w_rms_plus / 2,
        reynolds_stress_plus=r.reynolds_stress_plus / 4,
    )
    assert max(profile_errors(other_units, r).values()) < 1e-12
    # A bump at one point weighs as its quadrature weight says.
    bumped = r.u_mean_plus.copy()
    bumped[0] += 1.0
    q = quadrature_weights(r.y)
    expected = math.sqrt(q[0]) * r.u_tau / math.sqrt(q @ (r.u_mean_plus * r.u_tau) ** 2)
    got = profile_errors(dataclasses.replace(r, u_mean_plus=bumped), r)["u_mean"]
    assert got == pytest.approx(expected, rel=1e-12)


def test_profile_errors_refuse_different_y():
    r = result()
    with pytest.raises(ValueError, match="same y"):
        profile_errors(dataclasses.replace(r, y=r.y * 1.01), r)
    with pytest.raises(ValueError, match="same y"):
        profile_errors(dataclasses.replace(r, y=r.y[:-1]), r)


# --- WindowedStatistics ----------------------------------------------------------------------


def _same(a, b) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    assert da.pop("components") == db.pop("components")
    for key in da:
        np.testing.assert_allclose(da[key], db[key], rtol=1e-10, atol=1e-12, err_msg=key)


def fresh(fed: list[torch.Tensor]):
    stats = ChannelStatistics(Y, NU, 4.0, 2.0)
    for u in fed:
        stats.update(u)
    return stats.result()


def test_windowed_statistics_are_those_of_the_last_window_frames():
    fed = frames(7)
    stats = WindowedStatistics(Y, NU, 4.0, 2.0, window=3)
    assert stats.running() is None and stats.windowed() is None
    for k, u in enumerate(fed):
        stats.update(u)
        _same(stats.running(), fresh(fed[: k + 1]))
        _same(stats.windowed(), fresh(fed[max(0, k - 2) : k + 1]))
    assert stats.windowed().n_snapshots == 3 and stats.running().n_snapshots == 7
    # The window is not the whole run (the frames drift), so the test above can tell them apart.
    assert abs(stats.windowed().u_tau - stats.running().u_tau) > 1e-3


def test_statistics_without_positive_wall_shear_are_none():
    stats = WindowedStatistics(Y, NU, 4.0, 2.0, window=2)
    stats.update(torch.zeros(1, 3, 8, 12, 8, dtype=F64))
    assert stats.running() is None and stats.windowed() is None
    with pytest.raises(ValueError):
        WindowedStatistics(Y, NU, 4.0, 2.0, window=0)


# --- bulk, energy, guard ---------------------------------------------------------------------


def test_bulk_weights_integrate_the_poiseuille_profile():
    w = bulk_weights(Y)
    u = torch.zeros(2, 3, 8, 12, 8, dtype=F64)
    u[:, 0] = (1 - GRID.y_centres**2)[None, :, None]
    # ½∫(1 − y²) dy = 2/3; the quadrature is exact for quadratics.
    torch.testing.assert_close(bulk_velocity(u, w), torch.full((2,), 2 / 3, dtype=F64))
    # The same bulk velocity as the statistics report.
    stats = snapshot_statistics(frames(1)[0], Y, NU, 4.0, 2.0)
    got = float(bulk_velocity(frames(1)[0], w)[0])
    assert got == pytest.approx(stats.bulk_u_plus * stats.u_tau, rel=1e-12)
    u[:, 1] = 1.0
    expected = 0.5 * float(w @ ((1 - GRID.y_centres**2) ** 2 + 1.0))
    assert float(kinetic_energy(u, w)[0]) == pytest.approx(expected, rel=1e-12)


def test_guard_passes_a_close_field_and_trips_on_each_failure():
    guard = Guard(divergence_factor=10.0, drift=0.5)
    w = bulk_weights(Y)
    ref = frames(1)[0]
    assert guard.check(ref * 1.01, ref, w) is None
    broken = ref.clone()
    broken[0, 1, 2, 3, 4] = math.nan
    assert "NaN" in guard.check(broken, ref, w)
    inf = ref.clone()
    inf[0, 0, 0, 0, 0] = math.inf
    assert "infinite" in guard.check(inf, ref, w)
    # Energy: strong fluctuations with the same mean flow.
    noisy = ref.clone()
    noisy[:, 1:] += 30 * torch.sign(torch.randn(1, 2, 8, 12, 8, dtype=F64))
    assert bulk_velocity(noisy, w) == pytest.approx(bulk_velocity(ref, w))
    assert "kinetic energy" in guard.check(noisy, ref, w)
    assert Guard(divergence_factor=1e6).check(noisy, ref, w) is None
    # Bulk drift: 60% faster trips, 40% passes (energy stays under the factor in both).
    faster = ref.clone()
    faster[:, 0] *= 1.6
    assert "bulk velocity" in guard.check(faster, ref, w)
    faster[:, 0] = ref[:, 0] * 1.4
    assert guard.check(faster, ref, w) is None
    slower = ref.clone()
    slower[:, 0] *= 0.4
    assert "bulk velocity" in guard.check(slower, ref, w)
