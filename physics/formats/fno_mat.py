"""The FNO benchmark's MATLAB files (Li et al., ``NavierStokes_V1e-3_N5000_T50.mat`` …).

Keys: ``u`` (N, X, Y, T), the vorticity trajectories; ``a`` (N, X, Y), the initial
vorticity; optionally ``t`` (T values, stored (1, T)). Read as ``vorticity`` (from ``u``)
and the constant ``initial_vorticity`` (from ``a``); ``field="u"`` / ``"a"`` are accepted
too. The benchmark's forcing is symmetric in x and y, so which spatial axis is x is a
convention: we follow the (N, X, Y, T) naming and transpose to our (y, x).

Two container versions:
- v5 (header ``MATLAB 5.0 MAT-file``): read with ``scipy.io.loadmat``, which never
  unpickles; cell arrays, structs and objects are refused.
- v7.3 (header ``MATLAB 7.3 MAT-file`` in a 512-byte user block, then HDF5): read with
  h5py. MATLAB writes arrays column-major, so h5py sees every axis reversed: ``u`` appears
  as (T, Y, X, N). We reverse the axes back, as the FNO code's ``MatReader`` does.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from physics.formats.core import (
    FieldNotFound,
    TrajectoryData,
    UnrecognisedLayout,
    check_numeric,
    hdf5_contents,
)

V5_MAGIC = b"MATLAB 5.0 MAT-file"
V73_MAGIC = b"MATLAB 7.3 MAT-file"
ALIASES = {"u": "vorticity", "a": "initial_vorticity"}
_NUMERIC_CLASSES = {
    "double", "single", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
}  # fmt: skip


def read_fno_mat(path: str | Path, field: str | None = None) -> TrajectoryData:
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(len(V73_MAGIC))
    if head == V73_MAGIC or (head[:4] != b"MATL" and h5py.is_hdf5(path)):
        arrays, attrs = _load_v73(path)
        source = "fno-mat-v73"
    else:
        arrays, attrs = _load_v5(path)
        source = "fno-mat-v5"
    return _as_data(arrays, attrs, path, field, source)


def check_v5(path: Path) -> dict[str, str]:
    """Variable name → MATLAB class, read from the headers only; UnrecognisedLayout (listing
    the variables) when there is no ``u``."""
    listing = scipy.io.whosmat(path)
    classes = {name: cls for name, _shape, cls in listing}
    if "u" not in classes:
        contents = "; ".join(f"{n} {tuple(s)} {c}" for n, s, c in listing) or "no variables"
        raise UnrecognisedLayout(
            f"{path.name} is a MATLAB file without the FNO benchmark's 'u' (N, X, Y, T); "
            f"it holds {contents}"
        )
    return classes


def _load_v5(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    classes = check_v5(path)
    for name in ("u", "a", "t"):
        if name in classes and classes[name] not in _NUMERIC_CLASSES:
            raise ValueError(
                f"{path.name}: {name!r} is a MATLAB {classes[name]}, not a numeric array; "
                "only numeric arrays are read"
            )
    wanted = [n for n in ("u", "a", "t") if n in classes]
    loaded = scipy.io.loadmat(path, variable_names=wanted, mat_dtype=False)
    header = loaded.get("__header__", b"")
    attrs = {"mat_header": header.decode(errors="replace") if isinstance(header, bytes) else ""}
    return {n: loaded[n] for n in wanted}, attrs


def _load_v73(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with h5py.File(path, "r") as f:
        if not isinstance(f.get("u"), h5py.Dataset):
            raise UnrecognisedLayout(
                f"{path.name} is a MATLAB v7.3 (HDF5) file without the FNO benchmark's 'u'; "
                f"it holds {hdf5_contents(f)}"
            )
        arrays = {}
        for name in ("u", "a", "t"):
            ds = f.get(name)
            if not isinstance(ds, h5py.Dataset):
                continue
            cls = ds.attrs.get("MATLAB_class", b"double")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            if cls not in _NUMERIC_CLASSES or ds.dtype.kind not in "fiu":
                raise ValueError(
                    f"{path.name}: {name!r} is a MATLAB {cls} ({ds.dtype}), not a numeric "
                    "array; only numeric arrays are read"
                )
            # Column-major MATLAB → reverse every axis to get MATLAB's own order back.
            arrays[name] = np.ascontiguousarray(ds[()].transpose())
    return arrays, {}


def _as_data(
    arrays: dict[str, np.ndarray], attrs: dict, path: Path, field: str | None, source: str
) -> TrajectoryData:
    available = ["vorticity"] + (["initial_vorticity"] if "a" in arrays else [])
    wanted = available if field is None else [ALIASES.get(field, field)]
    if wanted[0] not in available:
        raise FieldNotFound(
            f"{path.name} has no field {field!r}; it has {', '.join(available)} "
            "(also reachable as 'u' and 'a')"
        )
    u = arrays["u"]
    check_numeric(u, "u")
    if u.ndim != 4:
        raise ValueError(
            f"{path.name}: 'u' has shape {tuple(u.shape)}; the FNO benchmark's vorticity is "
            "(N, X, Y, T)"
        )
    fields = {}
    if "vorticity" in wanted:
        fields["vorticity"] = np.ascontiguousarray(u.transpose(0, 3, 2, 1))  # → (N, T, Y, X)
    constant = []
    if "initial_vorticity" in wanted:
        a = arrays["a"]
        check_numeric(a, "a")
        if a.ndim != 3:
            raise ValueError(f"{path.name}: 'a' has shape {tuple(a.shape)}; expected (N, X, Y)")
        fields["initial_vorticity"] = np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
        constant.append("initial_vorticity")
    times = None
    if "t" in arrays:
        check_numeric(arrays["t"], "t")
        t = np.ravel(arrays["t"])
        times = t if t.size == u.shape[-1] else None
    if constant:
        attrs = {**attrs, "constant_fields": constant}
    return TrajectoryData(fields=fields, times=times, attrs=attrs, source_format=source)
