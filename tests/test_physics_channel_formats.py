"""The channel-snapshot reader on each accepted layout, and each refusal.

The velocity is asymmetric, V[c, i, j, k] = 1000c + 100i + 10j + k (c the component, i, j, k
along x, y, z), on an nx × ny × nz grid with three different sizes, so any transposition of
components or axes shows."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from physics.channel.stats import snapshot_statistics
from physics.formats import ChannelSnapshot, read_channel_snapshot

NX, NY, NZ = 4, 5, 6
Y = -np.cos(np.pi * np.arange(NY) / (NY - 1))


def velocity(dtype=np.float32) -> np.ndarray:
    """(3, nx, ny, nz)."""
    c, i, j, k = np.meshgrid(
        np.arange(3), np.arange(NX), np.arange(NY), np.arange(NZ), indexing="ij"
    )
    return (1000 * c + 100 * i + 10 * j + k).astype(dtype)


def last(v: np.ndarray) -> np.ndarray:
    """(3, nx, ny, nz) → (nx, ny, nz, 3)."""
    return np.ascontiguousarray(np.moveaxis(v, 0, -1))


def check(snapshot: ChannelSnapshot, fmt: str, dtype=np.float32) -> None:
    assert snapshot.source_format == fmt
    assert snapshot.velocity.dtype == dtype
    assert snapshot.shape == (NX, NY, NZ)
    np.testing.assert_array_equal(snapshot.velocity, velocity(dtype))
    np.testing.assert_array_equal(snapshot.y, Y)
    assert snapshot.y.dtype == np.float64


# --- .npz ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["first", "last", "batch-of-one"])
def test_npz_velocity(tmp_path: Path, layout: str):
    v = {"first": velocity(), "last": last(velocity()), "batch-of-one": velocity()[None]}[layout]
    path = tmp_path / "snap.npz"
    np.savez(path, velocity=v, y=Y, nu=np.float64(1 / 180), Lx=np.float64(4.0), lz=2.0)
    snapshot = read_channel_snapshot(path)
    check(snapshot, "npz")
    assert (snapshot.nu, snapshot.lx, snapshot.lz, snapshot.re_tau) == (1 / 180, 4.0, 2.0, None)
    assert snapshot.source == "velocity"


def test_npz_components_from_bytes(tmp_path: Path):
    path = tmp_path / "uvw.npz"
    v = velocity(np.float64)
    np.savez(path, u=v[0], v=v[1], w=v[2], y=Y, Re_tau=np.float64(180.0))
    snapshot = read_channel_snapshot(path.read_bytes())
    check(snapshot, "npz", np.float64)
    assert snapshot.re_tau == 180.0 and snapshot.nu is None and snapshot.lx is None
    assert snapshot.source == "u, v, w"


def test_integer_velocity_reads_as_float64(tmp_path: Path):
    path = tmp_path / "int.npz"
    np.savez(path, velocity=velocity(np.int32), y=Y)
    check(read_channel_snapshot(path), "npz", np.float64)


# --- HDF5 ----------------------------------------------------------------------------------------


def test_hdf5_velocity_and_attributes(tmp_path: Path):
    path = tmp_path / "snap.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("velocity", data=last(velocity()))
        ds.attrs["lx"] = 6.0
        f.create_dataset("y", data=Y)
        f.attrs["nu"] = 5e-3
        f.attrs["Lz"] = 3.0
    snapshot = read_channel_snapshot(path)
    check(snapshot, "hdf5")
    assert (snapshot.nu, snapshot.lx, snapshot.lz) == (5e-3, 6.0, 3.0)


def test_hdf5_components_and_dimensions_y_from_bytes(tmp_path: Path):
    path = tmp_path / "uvw.hdf5"
    v = velocity()
    with h5py.File(path, "w") as f:
        for name, part in zip("uvw", v, strict=True):
            f.create_dataset(name, data=part)
        f.create_group("dimensions").create_dataset("y", data=Y)
        f.attrs["re_tau"] = 395
    snapshot = read_channel_snapshot(path.read_bytes())
    check(snapshot, "hdf5")
    assert snapshot.re_tau == 395.0


def write_well(path: Path, spatial=("x", "y", "z"), sample=True, time=True) -> np.ndarray:
    """A 3D file in The Well's layout; returns the velocity (traj, time, 3, nx, ny, nz)."""
    n_traj, n_time = 2, 3
    base = velocity()
    frames = np.stack(
        [np.stack([base + 10000 * b + 100000 * t for t in range(n_time)]) for b in range(n_traj)]
    )  # (traj, time, 3, nx, ny, nz), our order
    order = ["xyz".index(s) for s in spatial]  # file axis a holds our axis order[a]
    stored = frames[:, :, order].transpose(0, 1, *(3 + a for a in order), 2)
    if not time:
        stored = stored[:, 0]
    if not sample:
        stored = stored[0]
    sizes = {"x": NX, "y": NY, "z": NZ}
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "toy_channel"
        f.attrs["n_spatial_dims"] = 3
        f.attrs["n_trajectories"] = n_traj
        f.attrs["Lx"] = 2.0
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = list(spatial)
        dims.create_dataset("time", data=np.arange(n_time, dtype=np.float32))
        for name in spatial:
            data = Y if name == "y" else np.arange(sizes[name], dtype=np.float32)
            dims.create_dataset(name, data=data)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["nu"]
        scalars.create_dataset("nu", data=np.float32(0.25))
        f.create_group("t0_fields").attrs["field_names"] = []
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        ds = t1.create_dataset("velocity", data=np.ascontiguousarray(stored))
        ds.attrs["sample_varying"] = sample
        ds.attrs["time_varying"] = time
        ds.attrs["dim_varying"] = [True, True, True]
    return frames


def test_the_well_picks_one_snapshot(tmp_path: Path):
    path = tmp_path / "well.hdf5"
    frames = write_well(path)
    snapshot = read_channel_snapshot(path)  # the first trajectory's last time
    assert snapshot.source_format == "the_well"
    np.testing.assert_array_equal(snapshot.velocity, frames[0, -1])
    np.testing.assert_array_equal(snapshot.y, Y)
    assert snapshot.nu == 0.25 and snapshot.lx == 2.0 and snapshot.lz is None
    assert snapshot.source == "t1_fields/velocity[0, -1]"
    other = read_channel_snapshot(path, trajectory=1, time=0)
    np.testing.assert_array_equal(other.velocity, frames[1, 0])


def test_the_well_in_another_axis_order_without_sample_or_time_axes(tmp_path: Path):
    path = tmp_path / "zyx.hdf5"
    frames = write_well(path, spatial=("z", "x", "y"), sample=False, time=False)
    snapshot = read_channel_snapshot(path)
    np.testing.assert_array_equal(snapshot.velocity, frames[0, 0])
    assert snapshot.source == "t1_fields/velocity"


def test_read_then_statistics(tmp_path: Path):
    ny = 9
    y = -np.cos(np.pi * np.arange(ny) / (ny - 1))
    v = np.zeros((3, 4, ny, 4))
    v[0] = 2.0 * (1 - y[None, :, None] ** 2)
    path = tmp_path / "flow.npz"
    np.savez(path, velocity=v, y=y, nu=0.02, lx=1.0, lz=1.0)
    snap = read_channel_snapshot(path)
    result = snapshot_statistics(snap.velocity, snap.y, snap.nu, snap.lx, snap.lz)
    assert result.u_tau == pytest.approx(np.sqrt(0.02 * 4.0), rel=1e-12)


# --- refusals ------------------------------------------------------------------------------------


def npz(tmp_path: Path, **arrays) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def with_nan(value: float) -> np.ndarray:
    v = velocity()
    v[1, 2, 3, 4] = value
    return v


REFUSALS = {
    "no y": ({"velocity": velocity()}, "no y coordinates"),
    "y length": ({"velocity": velocity(), "y": Y[:-1]}, "y has 4 points"),
    "wrong rank": ({"velocity": np.stack([velocity()] * 2), "y": Y}, "one snapshot"),
    "two components": ({"velocity": velocity()[:2], "y": Y}, "3 velocity components"),
    "NaN": ({"velocity": with_nan(np.nan), "y": Y}, "1 NaN or infinite"),
    "Inf": ({"velocity": with_nan(np.inf), "y": Y}, "1 NaN or infinite"),
    "y not monotonic": ({"velocity": velocity(), "y": Y[[0, 2, 1, 3, 4]]}, "strictly monotonic"),
    "y repeated": ({"velocity": velocity(), "y": np.array([-1, 0, 0, 0.5, 1.0])}, "monotonic"),
    "y outside": ({"velocity": velocity(), "y": 2 * Y}, r"\[-1, 1\]"),
    "y NaN": ({"velocity": velocity(), "y": np.array([-1, np.nan, 0, 0.5, 1])}, "NaN"),
    "y 2D": ({"velocity": velocity(), "y": np.stack([Y, Y])}, "one axis"),
    "no velocity": ({"pressure": velocity()[0], "y": Y}, r"no velocity.*pressure \(4, 5, 6\)"),
    "uvw unlike": (
        {"u": velocity()[0], "v": velocity()[1, :2], "w": velocity()[2], "y": Y},
        "all alike",
    ),
    "bad nu": ({"velocity": velocity(), "y": Y, "nu": -1.0}, "'nu' must be positive"),
    "string velocity": ({"velocity": np.array(["a", "b"]), "y": Y}, "not a numeric array"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_npz_refusals(tmp_path: Path, case: str):
    arrays, message = REFUSALS[case]
    with pytest.raises(ValueError, match=message):
        read_channel_snapshot(npz(tmp_path, **arrays))


def test_object_array_refused(tmp_path: Path):
    path = tmp_path / "obj.npz"
    np.savez(path, velocity=np.array([{"a": 1}, None], dtype=object), y=Y)
    with pytest.raises(ValueError, match="pickle, which is never loaded"):
        read_channel_snapshot(path)


def test_npy_refused_for_want_of_y(tmp_path: Path):
    path = tmp_path / "v.npy"
    np.save(path, velocity())
    with pytest.raises(ValueError, match="no y coordinates"):
        read_channel_snapshot(path)


def test_pickle_and_unknown_bytes_refused():
    with pytest.raises(ValueError, match="pickle"):
        read_channel_snapshot(pickle.dumps({"velocity": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"neither a \.npz archive nor an HDF5 file"):
        read_channel_snapshot(b"hello world")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        read_channel_snapshot(b"PK\x03\x04 truncated")


def test_hdf5_refusals(tmp_path: Path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=np.array([b"abc"] * 3))
        f.create_dataset("y", data=Y)
    with pytest.raises(ValueError, match="not a numeric array"):
        read_channel_snapshot(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=velocity())
    with pytest.raises(ValueError, match="no y coordinates"):
        read_channel_snapshot(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("temperature", data=velocity()[0])
        f.create_dataset("y", data=Y)
    with pytest.raises(ValueError, match=r"no velocity.*temperature \(4, 5, 6\)"):
        read_channel_snapshot(path)


def test_the_well_refusals(tmp_path: Path):
    path = tmp_path / "well.hdf5"
    write_well(path)
    with pytest.raises(ValueError, match="3 time entries; time = 5 is out of range"):
        read_channel_snapshot(path, time=5)
    with h5py.File(path, "a") as f:
        f.attrs["n_spatial_dims"] = 2
    with pytest.raises(ValueError, match="2 spatial dimensions"):
        read_channel_snapshot(path)


def test_our_channel_datasets_read_as_snapshots(tmp_path: Path):
    """A channel dataset we write (a shard, and the virtual file joining shards) is read by
    the snapshot reader as The Well's layout: any trajectory's frame, its y and ν. The
    joined file reaches into its shards, so only a trusted read (limits=None) takes it."""
    from physics.formats.channel_store import ChannelDatasetWriter, write_virtual_channel_dataset
    from physics.formats.untrusted import UnsafeFile

    coords = {"x": np.arange(NX) * 0.5, "y": Y, "z": np.arange(NZ) * 0.25}
    times = np.array([0.0, 0.1])
    blocks = []
    for shard in range(2):
        block = np.stack([np.stack([last(velocity()) + 1e4 * shard + 1e5 * t for t in range(2)])])
        blocks.append(block)
        writer = ChannelDatasetWriter(
            tmp_path / f"shard{shard}.h5", 1, times, coords, {"nu": 0.005, "lx": 2.0}
        )
        writer.write(0, block.astype(np.float32), np.zeros((1, NY)))
        writer.close()
    shard = read_channel_snapshot(tmp_path / "shard1.h5", time=0)
    np.testing.assert_array_equal(shard.velocity, velocity() + 1e4)
    assert shard.nu == 0.005 and shard.source == "t1_fields/velocity[0, 0]"
    np.testing.assert_array_equal(shard.y, Y)

    joined = tmp_path / "joined.h5"
    write_virtual_channel_dataset(
        joined, [("shard0.h5", 1), ("shard1.h5", 1)], times, coords, {"nu": 0.005}
    )
    both = read_channel_snapshot(joined, trajectory=1, time=1, limits=None)
    np.testing.assert_array_equal(both.velocity, velocity() + 1e4 + 1e5)
    with pytest.raises(UnsafeFile):
        read_channel_snapshot(joined)
