"""Filtered channel data, as the IFactFormer paper makes it: the solver runs on a fine grid
and the velocity is stored on a coarser training grid through a recorded filter (a spectral
cut or a top-hat in x–z, a top-hat over the coarse cells in y). The filters' exact
properties, the parameter sentences, and a generate job through the API on a real worker."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.channel_params import channel_attrs, channel_config, check_channel_generate
from app.settings import Settings
from physics.channel.fields import box_transfer, filter_xz, filter_y, y_box_weights
from physics.channel.grid import ChannelGrid
from tests.conftest import service_env
from tests.test_channel_generation import generate
from tests.test_integration import _app

F64 = torch.float64


def _integral(u: torch.Tensor, grid: ChannelGrid) -> torch.Tensor:
    """∫ u dy over the channel of cell values (..., ny, nz) (midpoint rule on the cells)."""
    return torch.einsum("j,...jz->...z", grid.dy.to(u.dtype), u)


@pytest.mark.parametrize("coarse_ny", [12, 8, 7, 5])  # nested (24 = 2·12, 3·8) and not
def test_y_box_filter_keeps_the_wall_normal_integral(coarse_ny):
    fine = ChannelGrid(8, 24, 8)
    coarse = ChannelGrid(8, coarse_ny, 8)
    u = torch.randn(2, 3, 8, 24, 8, generator=torch.Generator().manual_seed(3), dtype=F64)
    out = filter_y(u, y_box_weights(fine.y_faces, coarse.y_faces))
    assert out.shape == (2, 3, 8, coarse_ny, 8)
    torch.testing.assert_close(_integral(out, coarse), _integral(u, fine), rtol=1e-13, atol=1e-13)
    # A constant stays that constant (each row of weights sums to one).
    ones = torch.ones(8, 24, 8, dtype=F64)
    torch.testing.assert_close(
        filter_y(ones, y_box_weights(fine.y_faces, coarse.y_faces)),
        torch.ones(8, coarse_ny, 8, dtype=F64),
    )


def test_y_box_filter_is_exact_for_a_profile_linear_within_the_coarse_cells():
    """On nested grids (the same stretching, 24 = 3·8 cells) the fine cells' values of a
    profile linear within each coarse cell (slopes and jumps differ from cell to cell) are
    their means, and the filter gives each coarse cell's exact mean: the profile at the
    coarse centre."""
    fine, coarse = ChannelGrid(4, 24, 4), ChannelGrid(4, 8, 4)
    faces = coarse.y_faces
    slopes = torch.linspace(-3.0, 5.0, 8, dtype=F64)
    offsets = torch.linspace(1.0, -2.0, 8, dtype=F64) ** 2

    def profile(y: torch.Tensor) -> torch.Tensor:
        cell = (torch.searchsorted(faces, y) - 1).clamp(0, 7)
        return offsets[cell] + slopes[cell] * (y - faces[cell])

    u = profile(fine.y_centres)[None, :, None].expand(4, 24, 4)
    out = filter_y(u, y_box_weights(fine.y_faces, coarse.y_faces))
    expected = profile(coarse.y_centres)[None, :, None].expand(4, 8, 4)
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-13)


def test_y_box_filter_refuses_a_finer_target():
    with pytest.raises(ValueError, match="finer"):
        y_box_weights(ChannelGrid(4, 8, 4).y_faces, ChannelGrid(4, 12, 4).y_faces)


def _mode(nx: int, ny: int, nz: int, lx: float, lz: float, mx: int, mz: int, phase: float):
    x = torch.arange(nx, dtype=F64) * (lx / nx)
    z = torch.arange(nz, dtype=F64) * (lz / nz)
    angle = (2 * math.pi * mx / lx) * x[:, None] + (2 * math.pi * mz / lz) * z[None, :] + phase
    return torch.cos(angle)[:, None, :].expand(nx, ny, nz)


@pytest.mark.parametrize(("mx", "mz"), [(1, 0), (2, 3), (3, 1), (0, 2)])
def test_x_z_box_filter_multiplies_a_mode_by_the_top_hat_transfer_function(mx, mz):
    lx, lz = 4 * math.pi, 4 * math.pi / 3
    dx, dz = 2 * lx / 8, 1.5 * lz / 8  # widths of 2 and 1.5 coarse cells
    u = _mode(16, 3, 16, lx, lz, mx, mz, 0.3)
    out = filter_xz(u, 8, 8, kind="box", widths=(dx, dz), lengths=(lx, lz))
    kx, kz = 2 * math.pi * mx / lx, 2 * math.pi * mz / lz
    gain = math.sin(kx * dx / 2) / (kx * dx / 2) if mx else 1.0
    gain *= math.sin(kz * dz / 2) / (kz * dz / 2) if mz else 1.0
    assert gain < 1 or (mx, mz) == (0, 0)
    torch.testing.assert_close(out, gain * _mode(8, 3, 8, lx, lz, mx, mz, 0.3))
    torch.testing.assert_close(
        box_transfer(torch.tensor([0.0, kx], dtype=F64), dx),
        torch.tensor([1.0, math.sin(kx * dx / 2) / (kx * dx / 2) if mx else 1.0], dtype=F64),
    )


@pytest.mark.parametrize("kind", ["spectral", "box"])
def test_the_cut_removes_modes_above_the_target_nyquist_and_keeps_the_mean(kind):
    lx, lz = 2 * math.pi, 2 * math.pi
    widths = (lx / 8, lz / 8)
    kept = _mode(16, 2, 16, lx, lz, 3, 2, 0.1)
    mean = 0.7
    high = sum(_mode(16, 2, 16, lx, lz, m, 0, 0.2) for m in (4, 5, 7)) + _mode(
        16, 2, 16, lx, lz, 1, 6, 0.4
    )
    out = filter_xz(mean + kept + high, 8, 8, kind=kind, widths=widths, lengths=(lx, lz))
    gain = 1.0
    if kind == "box":
        gain = float(box_transfer(torch.tensor(3.0, dtype=F64), widths[0]))
        gain *= float(box_transfer(torch.tensor(2.0, dtype=F64), widths[1]))
    torch.testing.assert_close(out, mean + gain * _mode(8, 2, 8, lx, lz, 3, 2, 0.1))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"channel_grid": [16, 24, 16], "output_grid": [8, 30, 8]},
            "params.output_grid: the stored ny (cells between the walls) must be between 4 and "
            "the solver's 24; got 30.",
        ),
        (
            {"channel_grid": [16, 24, 16], "output_grid": [8, 2, 8]},
            "params.output_grid: the stored ny (cells between the walls) must be between 4 and "
            "the solver's 24; got 2.",
        ),
        (
            {"channel_grid": [16, 24, 16], "output_grid": [32, 12, 8]},
            "params.output_grid: the stored x–z grid must be between 2 and the solver's 16×16; "
            "got 32×8.",
        ),
        (
            {"output_grid": [8, 8], "filter_width": 2.0},
            "params.filter_width: applies to the box filter only (filter: box); the spectral "
            "cut's width is the stored grid's spacing.",
        ),
        (
            {"filter": "gaussian"},
            "params.filter: the x–z filter is one of spectral, box; got 'gaussian'.",
        ),
    ],
)
def test_filtered_generate_parameters_are_refused_with_a_sentence(params, message):
    with pytest.raises(ValueError) as info:
        check_channel_generate({"flow": "channel3d", **params})
    assert str(info.value) == message


def test_filter_is_recorded_in_the_attributes():
    p = {
        "flow": "channel3d",
        "channel_grid": [16, 24, 16],
        "output_grid": [8, 12, 8],
        "filter": "box",
        "filter_width": 2.0,
        "interval": 0.1,
        "warmup": 1.0,
        "seed": 0,
    }
    check_channel_generate(p)
    config = channel_config(p)
    attrs = channel_attrs(p, config)
    assert attrs["filter"] == "box" and attrs["filter_y"] == "box"
    assert attrs["filter_width_cells"] == 2.0
    assert attrs["filter_width"] == pytest.approx([2 * config.lx / 8, 2 * config.lz / 8])
    assert attrs["filter_source_grid"] == [16, 24, 16] == attrs["solver_grid"]
    assert attrs["filter_target_grid"] == [8, 12, 8] == attrs["stored_grid"]
    assert "exact cell means" in attrs["filter_description"]
    plain = channel_attrs({**p, "output_grid": None, "filter": None, "filter_width": None}, config)
    assert plain["filter"] == "spectral" and plain["filter_y"] == "none"
    assert plain["filter_target_grid"] == [16, 24, 16]


def _bulk(velocity: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Bulk velocity ½∫⟨u⟩ dy per trajectory and time, of (traj, time, nx, ny, nz, 3)."""
    profile = velocity[..., 0].astype(np.float64).mean(axis=(2, 4))
    return 0.5 * profile @ dy


def test_filtered_channel_dataset_through_the_api(tmp_path, redis_url, start_worker):
    settings = Settings(data_dir=tmp_path, broker_url=redis_url)
    common = dict(channel_grid=[16, 24, 16], n_trajectories=1, n_snapshots=2, warmup=0.05)
    with TestClient(_app(settings)) as client:
        start_worker(service_env(tmp_path, EDDYSCOPE_BROKER_URL=redis_url))
        filtered = generate(
            client, **common, output_grid=[8, 12, 8], filter="box", filter_width=2.0
        )
        fine = generate(client, **common)
        state = client.app.state.eddyscope
        datasets = {d["id"]: d for d in client.get("/api/datasets").json()}
        dataset = datasets[filtered["result"]["dataset_id"]]
        assert dataset["shape"] == [1, 2, 8, 12, 8, 3]

        def path_of(job):
            return state.artifacts.resolve(f"datasets/{job['result']['dataset_id']}.h5")

        def read(job):
            with h5py.File(path_of(job), "r") as f:
                return f["t1_fields/velocity"][...], f["dimensions/y"][...], dict(f.attrs)

        stored, y, attrs = read(filtered)
        reference, y_fine, _ = read(fine)
    coarse = ChannelGrid(8, 12, 8)
    np.testing.assert_allclose(y, coarse.y_centres.numpy())
    np.testing.assert_allclose(y_fine, ChannelGrid(16, 24, 16).y_centres.numpy())
    assert stored.shape == (1, 2, 8, 12, 8, 3) and np.isfinite(stored).all()
    assert attrs["filter"] == "box" and attrs["filter_y"] == "box"
    assert list(attrs["filter_source_grid"]) == [16, 24, 16]
    assert list(attrs["filter_target_grid"]) == [8, 12, 8]
    assert attrs["filter_width_cells"] == 2.0
    # The filters keep the mean: the stored bulk velocity is the fine solver's.
    bulk = _bulk(stored, coarse.dy.numpy())
    bulk_fine = _bulk(reference, ChannelGrid(16, 24, 16).dy.numpy())
    assert bulk_fine.min() > 1.0  # a real flow, not zeros
    np.testing.assert_allclose(bulk, bulk_fine, rtol=1e-5)
    # and it is a real filter: the fluctuations lose energy.
    assert stored[..., 1].var() < reference[..., 1].var()
