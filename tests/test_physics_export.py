"""Exports read back through ``read_trajectories`` to what was written."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from physics.formats import detect_format, read_trajectories
from physics.formats.export import export_trajectory

ATTRS = {"flow": "kolmogorov2d", "nu": 1e-3, "seed": 7, "resolution": 8, "notes": None}


def field(n_traj: int = 2, n_time: int = 3, ny: int = 6, nx: int = 8) -> np.ndarray:
    b, t, j, i = np.meshgrid(
        np.arange(n_traj), np.arange(n_time), np.arange(ny), np.arange(nx), indexing="ij"
    )
    return (i + 10 * j + 100 * t + 1000 * b).astype(np.float32)


@pytest.mark.parametrize("fmt", ["netcdf", "hdf5"])
@pytest.mark.parametrize("ndim", [4, 3])
def test_round_trip(tmp_path: Path, fmt: str, ndim: int):
    w = field() if ndim == 4 else field()[0]
    times = np.array([0.0, 0.25, 0.5])
    path = export_trajectory(tmp_path / f"w.{fmt}", w, times, 2 * np.pi, ATTRS, format=fmt)
    assert detect_format(path) == {"netcdf": "netcdf", "hdf5": "the_well"}[fmt]
    data = read_trajectories(path)
    np.testing.assert_array_equal(data.vorticity, w if ndim == 4 else w[None])
    assert data.vorticity.dtype == np.float32
    np.testing.assert_array_equal(data.times, times)
    np.testing.assert_allclose(data.x, np.arange(8) * 2 * np.pi / 8)
    np.testing.assert_allclose(data.y, np.arange(6) * 2 * np.pi / 6)
    for key in ("flow", "nu", "seed", "resolution"):
        assert data.attrs[key] == ATTRS[key]
    assert data.attrs["notes"] == ""


def test_netcdf_cf_attributes(tmp_path: Path):
    path = export_trajectory(tmp_path / "w.nc", field(), np.arange(3.0), 1.0, ATTRS)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["vorticity"].dims == ("trajectory", "time", "y", "x")
        assert ds["vorticity"].attrs["units"] == "1"
        assert "vorticity" in ds["vorticity"].attrs["long_name"]
        assert ds["x"].attrs["axis"] == "X" and ds["time"].attrs["axis"] == "T"
        assert ds.attrs["Conventions"].startswith("CF-")


def test_hdf5_is_in_the_wells_layout(tmp_path: Path):
    w = field()
    path = export_trajectory(tmp_path / "w.hdf5", w, np.arange(3.0), (1.0, 2.0), ATTRS, "hdf5")
    with h5py.File(path, "r") as f:
        assert f.attrs["n_spatial_dims"] == 2 and f.attrs["n_trajectories"] == 2
        assert f.attrs["dataset_name"] == "kolmogorov2d"
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x", "y"]
        stored = f["t0_fields/vorticity"]
        assert stored.shape == (2, 3, 8, 6)  # (trajectory, time, x, y), as The Well stores
        np.testing.assert_array_equal(stored[1, 2], w[1, 2].T)
        assert f["dimensions/x"].shape == (8,) and f["dimensions/y"][-1] == pytest.approx(2 - 2 / 6)
        assert set(f["scalars"].attrs["field_names"]) == {"nu", "seed", "resolution"}
        assert f["boundary_conditions/x_periodic"].attrs["bc_type"] == "periodic"


def test_bad_input(tmp_path: Path):
    with pytest.raises(ValueError, match="time steps"):
        export_trajectory(tmp_path / "w.nc", field(), np.arange(4.0), 1.0)
    with pytest.raises(ValueError, match="shaped"):
        export_trajectory(tmp_path / "w.nc", np.zeros((4, 4)), np.arange(4.0), 1.0)
    with pytest.raises(ValueError, match="format"):
        export_trajectory(tmp_path / "w.x", field(), np.arange(3.0), 1.0, format="zarr")
