"""The hostile files of the upload attacks, built in memory: shared by
``tests/test_hostile_uploads.py`` and ``bench/hostile_uploads.py``."""

from __future__ import annotations

import functools
import io
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np

MiB = 1 << 20


def h5_bytes(build) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        build(f)
    return buffer.getvalue()


def external_storage(target: str, size: int = 32 * 32) -> bytes:
    """A 32×32 uint8 'vorticity' whose raw bytes live in ``target``."""
    return h5_bytes(
        lambda f: f.create_dataset(
            "vorticity", shape=(32, 32), dtype="u1", external=[(target, 0, size)]
        )
    )


def virtual_dataset(tmp_path: Path) -> bytes:
    source = tmp_path / "other.h5"
    with h5py.File(source, "w") as f:
        f["secret"] = np.full((32, 32), 7.0)
    layout = h5py.VirtualLayout(shape=(32, 32), dtype="f8")
    layout[:] = h5py.VirtualSource(str(source), "secret", shape=(32, 32))
    return h5_bytes(lambda f: f.create_virtual_dataset("vorticity", layout))


def external_link(tmp_path: Path) -> bytes:
    source = tmp_path / "other.h5"
    with h5py.File(source, "w") as f:
        f["secret"] = np.full((32, 32), 7.0)
    return h5_bytes(lambda f: f.__setitem__("vorticity", h5py.ExternalLink(str(source), "/secret")))


def declared_hdf5(shape: tuple[int, ...], chunks: tuple[int, ...]) -> bytes:
    """A few KB that declare ``shape`` float32 (no chunk written: reading fills it)."""
    return h5_bytes(
        lambda f: f.create_dataset(
            "vorticity", shape=shape, dtype="f4", chunks=chunks, compression="gzip"
        )
    )


def declared_hdf5_velocity(shape: tuple[int, ...], chunks: tuple[int, ...]) -> bytes:
    """A few KB whose 'velocity' declares ``shape`` float32 (no chunk written)."""
    return h5_bytes(lambda f: f.create_dataset("velocity", shape=shape, dtype="f4", chunks=chunks))


def deflate_bomb() -> bytes:
    """A 32×32 float32 dataset (one 4 KiB chunk) whose stored chunk inflates to 64 MiB."""

    def build(f: h5py.File) -> None:
        ds = f.create_dataset(
            "vorticity", shape=(32, 32), dtype="f4", chunks=(32, 32), compression="gzip"
        )
        ds.id.write_direct_chunk((0, 0), zlib.compress(b"\0" * (64 * MiB), 9))

    return h5_bytes(build)


@functools.cache
def damaged_chunks() -> bytes:
    """Checksummed chunks of 'vorticity' (64, 64) and of u, v, w (4, 64, 4) with y (for the
    channel reader), the first chunk of 'vorticity' and of 'u' overwritten: the checksum
    fails on reading."""
    rng = np.random.default_rng(2)
    arrays = {"vorticity": rng.random((64, 64))}
    arrays |= {c: rng.random((4, 64, 4)) for c in "uvw"}

    def build(f: h5py.File) -> None:
        for name, array in arrays.items():
            f.create_dataset(name, data=array, fletcher32=True, chunks=(2, 32, 2)[-array.ndim :])
        f["y"] = np.linspace(-1, 1, 64)

    content = bytearray(h5_bytes(build))
    for name in ("vorticity", "u"):
        first = np.ascontiguousarray(
            arrays[name][(slice(0, 2), slice(0, 32), slice(0, 2))[-arrays[name].ndim :]]
        )
        where = content.find(first.tobytes()[:32])
        assert where > 0, name
        content[where : where + 32] = b"\xff" * 32
    return bytes(content)


@functools.cache
def npz_bomb(inflated: int = 2 << 30) -> bytes:
    """A deflated .npz whose one member inflates to ``inflated`` bytes of zeros."""
    buffer = io.BytesIO()
    side = int(np.sqrt((inflated - 128) // 4))
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("vorticity.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f4", "fortran_order": False, "shape": (side, side)}
        )
        zeros = b"\0" * (16 * MiB)
        left = side * side * 4
        while left:
            member.write(zeros[: min(left, len(zeros))])
            left -= min(left, len(zeros))
    return buffer.getvalue()


def declared_npy(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return header.getvalue() + b"\0" * 64


def many_members(count: int) -> bytes:
    buffer = io.BytesIO()
    small = io.BytesIO()
    np.save(small, np.zeros(1, np.float32))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"a_rather_long_member_name_number_{i:06d}.npy", small.getvalue())
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
