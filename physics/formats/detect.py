"""Which layout a file is in, judged from its content (the suffix only breaks ties), and a
reader that dispatches on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py

from physics.formats.core import TrajectoryData, UnrecognisedLayout, hdf5_contents
from physics.formats.eddyscope import is_eddyscope_dataset, is_eddyscope_rollout, read_eddyscope
from physics.formats.fno_mat import V5_MAGIC, V73_MAGIC, check_v5, read_fno_mat
from physics.formats.netcdf import NETCDF3_MAGIC, read_netcdf
from physics.formats.numpy_files import read_npy, read_npz
from physics.formats.pdebench import pdebench_layout, read_pdebench
from physics.formats.well import is_the_well, read_the_well

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

READERS: dict[str, Callable[..., TrajectoryData]] = {
    "npy": read_npy,
    "npz": read_npz,
    "eddyscope": read_eddyscope,
    "eddyscope-rollout": read_eddyscope,
    "the_well": read_the_well,
    "pdebench-ns-incomp": read_pdebench,
    "pdebench-per-sample": read_pdebench,
    "pdebench-cfd": read_pdebench,
    "fno-mat-v5": read_fno_mat,
    "fno-mat-v73": read_fno_mat,
    "netcdf": read_netcdf,
}
FORMATS = tuple(READERS)


def detect_format(path: str | Path) -> str:
    """One of ``FORMATS``; raises UnrecognisedLayout (listing the contents) for anything else."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(128)
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    if head.startswith(V5_MAGIC):
        check_v5(path)
        return "fno-mat-v5"
    if head[:4] in NETCDF3_MAGIC:
        return "netcdf"
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l"):
        raise UnrecognisedLayout(
            f"{path.name} is a Python pickle, which is never loaded; "
            "save numeric arrays with numpy.save or h5py instead"
        )
    if head.startswith(V73_MAGIC) or h5py.is_hdf5(path):
        return _detect_hdf5(path, matlab=head.startswith(V73_MAGIC))
    raise UnrecognisedLayout(
        f"{path.name} is not a format read here (.npy, .npz, HDF5, MATLAB .mat, netCDF); "
        f"it starts with the bytes {head[:16]!r}"
    )


def _detect_hdf5(path: Path, matlab: bool) -> str:
    with h5py.File(path, "r") as f:
        if matlab:
            if isinstance(f.get("u"), h5py.Dataset):
                return "fno-mat-v73"
            raise UnrecognisedLayout(
                f"{path.name} is a MATLAB v7.3 file without the FNO benchmark's 'u'; "
                f"it holds {hdf5_contents(f)}"
            )
        if is_the_well(f):
            return "the_well"
        if is_eddyscope_dataset(f):
            return "eddyscope"
        if is_eddyscope_rollout(f):
            return "eddyscope-rollout"
        if _is_netcdf4(f):
            return "netcdf"
        layout = pdebench_layout(f)
        if layout is not None:
            return layout
        if path.suffix.lower() == ".mat" and isinstance(f.get("u"), h5py.Dataset):
            return "fno-mat-v73"
        raise UnrecognisedLayout(
            f"{path.name} is an HDF5 file in no layout read here (Eddyscope's, The Well's, "
            f"PDEBench's 2D ones, a MATLAB v7.3 file with 'u', netCDF-4); it holds "
            f"{hdf5_contents(f)}"
        )


def _is_netcdf4(f: h5py.File) -> bool:
    if "_NCProperties" in f.attrs:
        return True
    return any(
        ds.attrs.get("CLASS") == b"DIMENSION_SCALE"
        for ds in f.values()
        if isinstance(ds, h5py.Dataset)
    )


def read_trajectories(path: str | Path, field: str | None = None) -> TrajectoryData:
    """Read a file in any layout ``detect_format`` knows; ``field`` reads just that field."""
    return READERS[detect_format(path)](path, field)
