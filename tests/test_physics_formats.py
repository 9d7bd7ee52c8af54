"""Each reader on a file the test writes in that layout.

The fields are asymmetric, f[b, t, j, i] = i + 10·j + 100·t + 1000·b (i along x, j along y),
on a non-square grid, so any transposition of space, time or trajectories shows."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import xarray as xr

from physics.formats import (
    FieldNotFound,
    UnrecognisedLayout,
    detect_format,
    read_trajectories,
)
from physics.formats.store import DatasetWriter, RolloutWriter

N_TRAJ, N_TIME, NY, NX = 2, 3, 6, 8


def expected(n_traj: int = N_TRAJ, n_time: int = N_TIME, ny: int = NY, nx: int = NX):
    """(trajectory, time, ny, nx), our order."""
    b, t, j, i = np.meshgrid(
        np.arange(n_traj), np.arange(n_time), np.arange(ny), np.arange(nx), indexing="ij"
    )
    return (i + 10 * j + 100 * t + 1000 * b).astype(np.float32)


def to_xy(array: np.ndarray) -> np.ndarray:
    """Our (..., y, x) → a file's (..., x, y)."""
    return np.ascontiguousarray(array.swapaxes(-1, -2))


# --- .npy / .npz ---------------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [4, 3, 2])
def test_npy_shapes(tmp_path: Path, ndim: int):
    full = expected()
    array = {4: full, 3: full[0], 2: full[0, 0]}[ndim]
    path = tmp_path / "w.npy"
    np.save(path, array)
    assert detect_format(path) == "npy"
    data = read_trajectories(path)
    assert data.source_format == "npy"
    want = {4: full, 3: full[:1], 2: full[:1, :1]}[ndim]
    np.testing.assert_array_equal(data.vorticity, want)


def test_npy_object_array_refused(tmp_path: Path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        read_trajectories(path)


def test_npz_named_arrays(tmp_path: Path):
    path = tmp_path / "w.npz"
    times = np.array([0.0, 0.5, 1.0])
    x = np.arange(NX) / NX
    y = np.arange(NY) / NY
    np.savez(path, vorticity=expected(), t=times, x=x, y=y, nu=np.float64(1e-3))
    assert detect_format(path) == "npz"
    data = read_trajectories(path)
    assert list(data.fields) == ["vorticity"]
    np.testing.assert_array_equal(data.vorticity, expected())
    np.testing.assert_array_equal(data.times, times)
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)
    assert data.attrs == {"nu": 1e-3}


def test_npz_odd_keys_listed(tmp_path: Path):
    path = tmp_path / "odd.npz"
    np.savez(path, labels=np.arange(5), cube=np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(UnrecognisedLayout) as info:
        read_trajectories(path)
    message = str(info.value)
    assert "labels (5,) int64" in message
    assert "cube (2, 3, 4, 5, 6) float64" in message


def test_npz_object_array_refused(tmp_path: Path):
    path = tmp_path / "obj.npz"
    np.savez(path, vorticity=np.array([None, 1], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        read_trajectories(path)


def test_pickle_never_loaded(tmp_path: Path):
    import pickle

    path = tmp_path / "w.npy"
    path.write_bytes(pickle.dumps({"vorticity": [1.0, 2.0]}))
    with pytest.raises(UnrecognisedLayout, match="pickle"):
        read_trajectories(path)


def test_unknown_bytes(tmp_path: Path):
    path = tmp_path / "w.dat"
    path.write_bytes(b"hello, not an array")
    with pytest.raises(UnrecognisedLayout, match="hello"):
        detect_format(path)


# --- our HDF5 (physics.formats.store) ---------------------------------------------------


def test_eddyscope_dataset(tmp_path: Path):
    path = tmp_path / "dataset.h5"
    times = np.array([1.0, 2.0, 3.0])
    data = expected(ny=8, nx=8)
    writer = DatasetWriter(
        path, "vorticity", N_TRAJ, times, 8, 2 * np.pi, {"flow": "k", "nu": 0.01}
    )
    writer.write(0, data)
    writer.close()
    assert detect_format(path) == "eddyscope"
    read = read_trajectories(path)
    assert read.source_format == "eddyscope"
    np.testing.assert_array_equal(read.vorticity, data)
    np.testing.assert_array_equal(read.times, times)
    np.testing.assert_allclose(read.x, np.arange(8) * 2 * np.pi / 8)
    assert read.attrs["flow"] == "k" and read.attrs["nu"] == 0.01
    assert read.attrs["n_trajectories"] == N_TRAJ


def test_eddyscope_rollout(tmp_path: Path):
    path = tmp_path / "rollout.h5"
    data = expected(n_traj=1, ny=8, nx=8)[0]
    writer = RolloutWriter(path, 8, ("reference", "model"), 1.0, {"flow": "ns2d-forced"})
    for k, frame in enumerate(data):
        writer.append(0.5 * k, {"reference": frame, "model": -frame})
    writer.close()
    assert detect_format(path) == "eddyscope-rollout"
    read = read_trajectories(path)
    assert set(read.fields) == {"vorticity", "model_vorticity"}
    np.testing.assert_array_equal(read.vorticity, data[None])
    np.testing.assert_array_equal(read.fields["model_vorticity"], -data[None])
    np.testing.assert_array_equal(read.times, [0.0, 0.5, 1.0])


# --- The Well ----------------------------------------------------------------------------------


def write_well(path: Path) -> None:
    """A 2D file following the_well's docs/data_format.md; space stored (x, y)."""
    w = expected()
    x = np.linspace(0, 1, NX, endpoint=False)
    y = np.linspace(0, 2, NY, endpoint=False)
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "toy_shear_flow"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = N_TRAJ
        f.attrs["simulation_parameters"] = ["Reynolds"]
        f.attrs["Reynolds"] = 1000.0
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims.create_dataset("time", data=np.array([0.0, 0.1, 0.2], dtype=np.float32))
        dims["time"].attrs["sample_varying"] = False
        for name, coords in (("x", x), ("y", y)):
            ds = dims.create_dataset(name, data=coords.astype(np.float32))
            ds.attrs["sample_varying"] = False
            ds.attrs["time_varying"] = False
        bcs = f.create_group("boundary_conditions")
        bc = bcs.create_group("x_periodic")
        bc.attrs["associated_dims"] = ["x"]
        bc.attrs["bc_type"] = "periodic"
        bc.create_dataset("mask", data=np.eye(1, NX, dtype=bool)[0])
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["Reynolds"]
        scalars.create_dataset("Reynolds", data=np.float32(1000.0))

        def field(group: h5py.Group, name: str, data: np.ndarray, sample=True, time=True):
            ds = group.create_dataset(name, data=data)
            ds.attrs["dim_varying"] = [True, True]
            ds.attrs["sample_varying"] = sample
            ds.attrs["time_varying"] = time

        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["tracer", "mask"]
        field(t0, "tracer", to_xy(w))  # (B, T, X, Y)
        field(t0, "mask", to_xy(w[0, 0]), sample=False, time=False)  # (X, Y)
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        field(t1, "velocity", np.stack([to_xy(w), to_xy(-w)], axis=-1))  # (B, T, X, Y, 2)
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = []


def test_the_well(tmp_path: Path):
    path = tmp_path / "well.hdf5"
    write_well(path)
    assert detect_format(path) == "the_well"
    data = read_trajectories(path)
    assert set(data.fields) == {"tracer", "mask", "velocity_x", "velocity_y"}
    np.testing.assert_array_equal(data.fields["tracer"], expected())
    np.testing.assert_array_equal(data.fields["velocity_x"], expected())
    np.testing.assert_array_equal(data.fields["velocity_y"], -expected())
    mask = data.fields["mask"]
    assert mask.shape == (N_TRAJ, 1, NY, NX)
    np.testing.assert_array_equal(mask[1, 0], expected()[0, 0])
    assert data.attrs["constant_fields"] == ["mask"]
    np.testing.assert_allclose(data.times, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(data.x, np.linspace(0, 1, NX, endpoint=False))
    np.testing.assert_allclose(data.y, np.linspace(0, 2, NY, endpoint=False))
    assert data.attrs["dataset_name"] == "toy_shear_flow"
    assert data.attrs["Reynolds"] == 1000.0
    assert data.attrs["simulation_parameters"] == ["Reynolds"]
    assert data.attrs["boundary_conditions"] == {"x_periodic": "periodic"}


def test_the_well_one_field(tmp_path: Path):
    path = tmp_path / "well.hdf5"
    write_well(path)
    data = read_trajectories(path, field="velocity_y")
    assert list(data.fields) == ["velocity_y"]
    with pytest.raises(FieldNotFound, match="velocity_x"):
        read_trajectories(path, field="pressure")


# --- PDEBench ----------------------------------------------------------------------------------


def test_pdebench_ns_incomp(tmp_path: Path):
    path = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    w = expected()
    t = np.tile(np.array([0.0, 0.005, 0.01], dtype=np.float32), (N_TRAJ, 1))
    with h5py.File(path, "w") as f:
        f.attrs["config"] = "sim_name: ns_incom_inhom_2d_512\nseed: 0\n"
        f.create_dataset("velocity", data=np.stack([to_xy(w), to_xy(2 * w)], axis=-1))
        f.create_dataset("particles", data=to_xy(3 * w)[..., None])
        f.create_dataset("force", data=np.stack([to_xy(w[:, 0]), to_xy(-w[:, 0])], axis=-1))
        f.create_dataset("t", data=t)
    assert detect_format(path) == "pdebench-ns-incomp"
    data = read_trajectories(path)
    np.testing.assert_array_equal(data.fields["velocity_x"], w)
    np.testing.assert_array_equal(data.fields["velocity_y"], 2 * w)
    np.testing.assert_array_equal(data.fields["particles"], 3 * w)
    np.testing.assert_array_equal(data.fields["force_y"], -w[:, :1])
    assert data.attrs["constant_fields"] == ["force_x", "force_y"]
    np.testing.assert_array_equal(data.times, t[0])
    assert data.attrs["config"].startswith("sim_name")


def test_pdebench_per_sample(tmp_path: Path):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    w = expected()
    x = np.linspace(-1, 1, NX)
    y = np.linspace(-1, 1, NY) * 2
    t = np.linspace(0, 5, N_TIME + 1)  # one more entry than steps, as some generators write
    with h5py.File(path, "w") as f:
        for b in range(N_TRAJ):
            group = f.create_group(f"{b:04d}")
            group.attrs["config"] = "sim: diff-react"
            # data (T, X, Y, C): channel 0 = w, channel 1 = -w
            group.create_dataset("data", data=np.stack([to_xy(w[b]), to_xy(-w[b])], axis=-1))
            grid = group.create_group("grid")
            grid.create_dataset("x", data=x)
            grid.create_dataset("y", data=y)
            grid.create_dataset("t", data=t)
    assert detect_format(path) == "pdebench-per-sample"
    data = read_trajectories(path)
    np.testing.assert_array_equal(data.fields["data_0"], w)
    np.testing.assert_array_equal(data.fields["data_1"], -w)
    np.testing.assert_array_equal(data.times, t[:N_TIME])
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)
    assert data.attrs["samples"] == ["0000", "0001"]


def test_pdebench_cfd(tmp_path: Path):
    path = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"
    w = expected()
    with h5py.File(path, "w") as f:
        for k, name in enumerate(("density", "Vx", "Vy", "pressure")):
            f.create_dataset(name, data=to_xy(w + k))
        f.create_dataset("t-coordinate", data=np.linspace(0, 1, N_TIME + 1))
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, NX))
        f.create_dataset("y-coordinate", data=np.linspace(0, 3, NY))
    assert detect_format(path) == "pdebench-cfd"
    data = read_trajectories(path)
    assert list(data.fields) == ["density", "Vx", "Vy", "pressure"]
    np.testing.assert_array_equal(data.fields["Vy"], w + 2)
    np.testing.assert_array_equal(data.times, np.linspace(0, 1, N_TIME + 1)[:N_TIME])
    np.testing.assert_array_equal(data.y, np.linspace(0, 3, NY))


# --- The FNO benchmark's .mat -------------------------------------------------------------------


def fno_arrays() -> dict[str, np.ndarray]:
    w = expected().astype(np.float64)
    return {
        "u": w.transpose(0, 3, 2, 1),  # (N, X, Y, T)
        "a": to_xy(w[:, 0] - 7),  # (N, X, Y)
        "t": np.arange(1, N_TIME + 1, dtype=np.float64)[None],  # (1, T)
    }


def test_fno_mat_v5(tmp_path: Path):
    path = tmp_path / "NavierStokes_V1e-3_N2_T3.mat"
    scipy.io.savemat(path, fno_arrays())
    assert detect_format(path) == "fno-mat-v5"
    data = read_trajectories(path)
    np.testing.assert_array_equal(data.vorticity, expected())
    np.testing.assert_array_equal(data.fields["initial_vorticity"], expected()[:, :1] - 7)
    np.testing.assert_array_equal(data.times, [1.0, 2.0, 3.0])
    only_u = read_trajectories(path, field="u")
    assert list(only_u.fields) == ["vorticity"]


def test_fno_mat_v5_cell_refused(tmp_path: Path):
    path = tmp_path / "cell.mat"
    cell = np.empty((2,), dtype=object)
    cell[0], cell[1] = np.zeros(3), np.ones(2)
    scipy.io.savemat(path, {"u": cell})
    with pytest.raises(ValueError, match="cell"):
        read_trajectories(path)


def test_fno_mat_v5_without_u_listed(tmp_path: Path):
    path = tmp_path / "darcy.mat"
    scipy.io.savemat(path, {"coeff": np.zeros((2, 4, 4)), "sol": np.zeros((2, 4, 4))})
    for call in (detect_format, read_trajectories):
        with pytest.raises(UnrecognisedLayout, match=r"coeff \(2, 4, 4\) double"):
            call(path)


def write_mat_v73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file: a 512-byte user block with MATLAB's header, then HDF5 holding
    every array column-major (axes reversed)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            ds = f.create_dataset(name, data=np.ascontiguousarray(array.T))
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
    text += b"HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header)


def test_fno_mat_v73(tmp_path: Path):
    path = tmp_path / "ns_V1e-4_N2_T3.mat"
    arrays = fno_arrays()
    write_mat_v73(path, arrays)
    with h5py.File(path, "r") as f:  # as MATLAB lays it out: u is (T, Y, X, N)
        assert f["u"].shape == (N_TIME, NY, NX, N_TRAJ)
    assert detect_format(path) == "fno-mat-v73"
    data = read_trajectories(path)
    assert data.source_format == "fno-mat-v73"
    np.testing.assert_array_equal(data.vorticity, expected())
    np.testing.assert_array_equal(data.fields["initial_vorticity"], expected()[:, :1] - 7)
    np.testing.assert_array_equal(data.times, [1.0, 2.0, 3.0])


# --- netCDF ------------------------------------------------------------------------------------


def test_netcdf_any_dim_order(tmp_path: Path):
    path = tmp_path / "w.nc"
    w = expected()[0]  # (time, y, x)
    ds = xr.Dataset(
        {"omega": (("x", "t", "y"), w.transpose(2, 0, 1))},
        coords={"t": [0.0, 1.0, 2.0], "x": np.arange(NX) * 0.5, "y": np.arange(NY) * 0.25},
        attrs={"nu": 1e-4, "flow": "decaying2d"},
    )
    ds.to_netcdf(path, engine="h5netcdf")
    assert detect_format(path) == "netcdf"
    data = read_trajectories(path)
    np.testing.assert_array_equal(data.vorticity, w[None])
    np.testing.assert_array_equal(data.times, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(data.x, np.arange(NX) * 0.5)
    np.testing.assert_array_equal(data.y, np.arange(NY) * 0.25)
    assert data.attrs["nu"] == 1e-4 and data.attrs["flow"] == "decaying2d"


def test_netcdf_without_fields_listed(tmp_path: Path):
    path = tmp_path / "station.nc"
    xr.Dataset({"temperature": (("station", "time"), np.zeros((2, 3)))}).to_netcdf(
        path, engine="h5netcdf"
    )
    with pytest.raises(UnrecognisedLayout, match=r"temperature \(station, time\)"):
        read_trajectories(path)


# --- unrecognised HDF5 ---------------------------------------------------------------------------


def test_unrelated_hdf5_lists_contents(tmp_path: Path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((4, 5), dtype=np.uint8))
        f.create_group("meta").create_dataset("labels", data=np.arange(4))
        f.attrs["owner"] = "someone"
    with pytest.raises(UnrecognisedLayout) as info:
        read_trajectories(path)
    message = str(info.value)
    assert "images (4, 5) uint8" in message
    assert "meta/labels (4,) int64" in message
    assert "owner" in message


def test_zip_that_is_not_npz_listed(tmp_path: Path):
    import zipfile

    path = tmp_path / "notes.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(UnrecognisedLayout, match="readme"):
        read_trajectories(path)
