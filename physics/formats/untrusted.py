"""Reading array files that come from someone else: every size a header declares is checked
before any data is read, and every feature that reaches outside the file is refused.

A user-supplied ``.npy``, ``.npz`` or HDF5 file is an attack surface:

- **HDF5** can point outside itself: external raw storage (a dataset whose bytes live in
  another file, e.g. ``/etc/passwd``), virtual datasets mapping other files, and external
  links. It can declare a dataspace of any size in a few bytes (reading it allocates the
  whole array), name filters that load plugins, and hold deflate chunks that inflate far past
  their declared size (HDF5's inflate grows its buffer until the stream ends). Hard links can
  form cycles. ``open_hdf5`` walks the whole file (a bounded number of objects, links not
  followed out of it) and refuses all of that before any reader touches it; deflate chunks
  are inflated once, chunk by chunk, into a bounded buffer to prove their size.
- **.npy** declares its shape and dtype in a header: ``load_npy`` checks them, and that the
  file holds exactly that many bytes, before allocating.
- **.npz** is a zip: ``load_npz`` caps the member count, allows only stored or deflated
  members, checks each member's declared inflated size and its ``.npy`` header against the
  limits, and reads each member into an array of the declared size (the zip reader stops at
  the declared size and checks the CRC).

Refusals raise ``UnsafeFile`` (a ValueError) with a sentence for the user. No data is read
before a refusal, so memory does not grow; the whole module never unpickles.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np

from physics.formats.core import UnrecognisedLayout

Source = str | Path | bytes | bytearray | memoryview

# HDF5 filters whose output size is fixed by the data type or the chunk (shuffle, fletcher32,
# n-bit, scale-offset) or is checked here (deflate). Anything else, LZF and szip included,
# would run code we cannot bound (or load a plugin) and is refused.
DEFLATE, SHUFFLE, FLETCHER32, NBIT, SCALEOFFSET = 1, 2, 3, 5, 6
ALLOWED_FILTERS = {
    DEFLATE: "gzip",
    SHUFFLE: "shuffle",
    FLETCHER32: "fletcher32",
    NBIT: "n-bit",
    SCALEOFFSET: "scale-offset",
}
# Data types an array file may hold: numbers and booleans, and (small) fixed-length strings
# for names and parameters. Never objects, which would need pickle.
NUMERIC_KINDS = "fiub"
TEXT_KINDS = "SU"


class UnsafeFile(ValueError):
    """A file refused before its data was read; the message is a sentence for the user."""


class NotAnArray(UnsafeFile, UnrecognisedLayout):
    """An archive member that is not a .npy array (a layout no reader takes)."""


class TooLarge(UnsafeFile):
    """A file whose declared sizes exceed the limits (HTTP 413 at an upload)."""


@dataclass(frozen=True)
class Limits:
    """What one untrusted file may declare. ``max_bytes`` bounds the arrays a reader may
    allocate, all together (the sum of every dataset's or member's declared size)."""

    max_bytes: int = 128 * 1024 * 1024
    max_members: int = 64  # .npz members
    max_objects: int = 4096  # HDF5 groups, datasets and links walked
    max_chunks: int = 1_000_000  # HDF5 chunks of one dataset
    max_attributes: int = 256  # HDF5 attributes on one object
    max_attribute_bytes: int = 1024 * 1024  # one HDF5 attribute's declared size
    max_text_bytes: int = 1024 * 1024  # one string array's size

    def check_total(self, total: int, what: str) -> None:
        if total > self.max_bytes:
            raise TooLarge(
                f"{what} would take {_size(total)} in memory; the limit is {_size(self.max_bytes)}."
            )


DEFAULT_LIMITS = Limits()
# For files this program wrote itself (trusted): no size bounds, the same code path.
UNBOUNDED = Limits(
    max_bytes=1 << 62,
    max_members=1 << 30,
    max_objects=1 << 30,
    max_chunks=1 << 62,
    max_attributes=1 << 30,
    max_attribute_bytes=1 << 62,
    max_text_bytes=1 << 62,
)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def _nbytes(shape: tuple[int, ...], itemsize: int) -> int:
    return math.prod(int(s) for s in shape) * int(itemsize)


def _check_dtype(dtype: np.dtype, where: str, shape: tuple[int, ...], limits: Limits) -> None:
    if dtype.hasobject or dtype.kind == "O":
        raise UnsafeFile(
            f"{where} holds Python objects (an object array needs pickle, which is never "
            "loaded); save numeric float arrays instead."
        )
    if dtype.kind in TEXT_KINDS:
        if _nbytes(shape, dtype.itemsize) > limits.max_text_bytes:
            raise UnsafeFile(f"{where} is a text array larger than {_size(limits.max_text_bytes)}.")
        return
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafeFile(
            f"{where} has the data type {dtype}, which is not numeric in the sense read here; "
            "save plain float or integer arrays."
        )


def _named(source: Source) -> tuple[io.BytesIO | Path, str]:
    """The file as something to open (bytes in memory, or a path) and its name for
    messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source)), "The upload"
    path = Path(source)
    return path, path.name


def _as_stream(source: Source) -> tuple[BinaryIO, str]:
    opened, name = _named(source)
    return (opened if isinstance(opened, io.BytesIO) else open(opened, "rb")), name


# --- .npy ----------------------------------------------------------------------------------


def _read_npy_header(
    stream: BinaryIO, where: str, limits: Limits
) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a .npy header, checked; the stream is left at the
    start of the data."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"version {version}")
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise UnsafeFile(f"{where} is not a readable .npy array (its header: {exc}).") from None
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise UnsafeFile(f"{where} declares a negative size in its shape {shape}.")
    _check_dtype(dtype, where, shape, limits)
    return shape, bool(fortran), dtype


def _read_exactly(stream: BinaryIO, shape: tuple, fortran: bool, dtype: np.dtype, where: str):
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(array.reshape(-1, order="A")).cast("B") if array.size else memoryview(b"")
    filled = 0
    while filled < len(view):
        n = stream.readinto(view[filled:])
        if not n:
            raise UnsafeFile(
                f"{where} declares {_size(len(view))} of data but ends after {_size(filled)}."
            )
        filled += n
    return array


def load_npy(source: Source, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """One array from a .npy file or its bytes; the header's shape and dtype are checked
    against ``limits`` and the file's length before anything is allocated."""
    stream, name = _as_stream(source)
    with stream:
        shape, fortran, dtype = _read_npy_header(stream, name, limits)
        nbytes = _nbytes(shape, dtype.itemsize)
        limits.check_total(nbytes, f"{name}'s array {shape} {dtype}")
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        remaining = end - here
        if remaining != nbytes:
            raise UnsafeFile(
                f"{name} declares an array of {shape} {dtype} ({_size(nbytes)}) but holds "
                f"{_size(remaining)} of data."
            )
        return _read_exactly(stream, shape, fortran, dtype, name)


# --- .npz ----------------------------------------------------------------------------------


def load_npz(source: Source, limits: Limits = DEFAULT_LIMITS) -> dict[str, np.ndarray]:
    """Every array of a .npz archive (name without ``.npy`` → array), after checking the
    member count, each member's compression and declared size, and each ``.npy`` header."""
    stream, name = _as_stream(source)
    with stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise UnsafeFile(f"{name} is not a readable .npz archive ({exc}).") from None
        with archive:
            members = archive.infolist()
            if len(members) > limits.max_members:
                raise TooLarge(
                    f"{name} holds {len(members):,} members; at most {limits.max_members} "
                    "arrays are read from one .npz archive."
                )
            for info in members:
                _check_member(info, name)
            limits.check_total(
                sum(info.file_size for info in members), f"{name}'s arrays, inflated,"
            )
            arrays: dict[str, np.ndarray] = {}
            for info in members:
                key = info.filename[: -len(".npy")]
                where = f"{name}: the array {key!r}"
                try:
                    with archive.open(info) as member:
                        shape, fortran, dtype = _read_npy_header(member, where, limits)
                        declared = _nbytes(shape, dtype.itemsize)
                        if member.tell() + declared != info.file_size:
                            raise UnsafeFile(
                                f"{where} declares {shape} {dtype} ({_size(declared)}) but its "
                                f"member holds {_size(info.file_size - member.tell())} of data."
                            )
                        arrays[key] = _read_exactly(member, shape, fortran, dtype, where)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    raise UnsafeFile(f"{where} is damaged ({exc}).") from None
            return arrays


def _check_member(info: zipfile.ZipInfo, name: str) -> None:
    shown = info.filename[:80]
    if info.is_dir() or not info.filename.endswith(".npy"):
        raise NotAnArray(
            f"{name} holds the member {shown!r}, which is not a .npy array; a .npz archive "
            "holds .npy arrays only."
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UnsafeFile(
            f"{name}: the member {shown!r} uses a compression other than deflate; save it "
            "with numpy.savez or numpy.savez_compressed."
        )
    if info.flag_bits & 0x1:
        raise UnsafeFile(f"{name}: the member {shown!r} is encrypted.")


# --- HDF5 ----------------------------------------------------------------------------------


@contextmanager
def open_hdf5(source: Source, limits: Limits = DEFAULT_LIMITS) -> Iterator[h5py.File]:
    """An HDF5 file opened read-only after ``check_hdf5`` has walked all of it."""
    opened, name = _named(source)
    try:
        f = h5py.File(opened, "r")
    except (OSError, ValueError) as exc:
        raise UnsafeFile(f"{name} is not a readable HDF5 file ({exc}).") from None
    with f:
        check_hdf5(f, limits, name)
        yield f


def check_hdf5(f: h5py.File, limits: Limits = DEFAULT_LIMITS, name: str = "The file") -> None:
    """Walk every object reachable through hard links (each once: hard links may form
    cycles), at most ``limits.max_objects`` of them; refuse external links, soft links that
    do not resolve inside the file, and any dataset or attribute ``_check_dataset`` and
    ``_check_attributes`` refuse; the datasets' declared sizes together within the limit."""
    seen: set[int] = set()
    pending: list[tuple[str, h5py.Group]] = [("/", f)]
    walked = 0
    total = 0
    while pending:
        path, group = pending.pop()
        _check_attributes(group, path, name, limits)
        for key in group:
            walked += 1
            if walked > limits.max_objects:
                raise TooLarge(
                    f"{name} holds more than {limits.max_objects:,} objects; that is more "
                    "than an array file needs."
                )
            where = f"{path.rstrip('/')}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UnsafeFile(
                    f"{name}: {where!r} is an external link to {link.filename!r}; links to "
                    "other files are not followed. Save the data in the file itself."
                )
            if isinstance(link, h5py.SoftLink):
                _check_soft_link(f, link.path, where, name)
                continue  # its target is walked where it is hard-linked
            try:
                obj = group[key]
            except (KeyError, OSError, ValueError) as exc:
                raise UnsafeFile(f"{name}: {where!r} cannot be opened ({exc}).") from None
            ident = hash(obj.id)
            if ident in seen:
                continue
            seen.add(ident)
            if isinstance(obj, h5py.Group):
                pending.append((where, obj))
            elif isinstance(obj, h5py.Dataset):
                total += _check_dataset(obj, where, name, limits)
                _check_attributes(obj, where, name, limits)
                limits.check_total(total, f"{name}'s datasets")
            else:  # a committed datatype: harmless, but nothing we read
                continue


def _check_soft_link(f: h5py.File, target: str, where: str, name: str) -> None:
    """A soft link is allowed when every step of its absolute target is a hard link."""
    if not target.startswith("/"):
        raise UnsafeFile(f"{name}: {where!r} is a relative soft link ({target!r}); not followed.")
    node: Any = f
    for part in [p for p in target.split("/") if p]:
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        if not isinstance(link, h5py.HardLink):
            raise UnsafeFile(
                f"{name}: {where!r} is a soft link to {target!r}, which does not lead to an "
                "object stored in this file."
            )
        node = node[part]


def _check_dataset(ds: h5py.Dataset, where: str, name: str, limits: Limits) -> int:
    """The dataset's declared size in bytes, after refusing what must not be read."""
    if ds.is_virtual:
        raise UnsafeFile(
            f"{name}: {where!r} is a virtual dataset (its data lives in other files); "
            "save the data in the file itself."
        )
    plist = ds.id.get_create_plist()
    if plist.get_external_count() > 0:
        raise UnsafeFile(
            f"{name}: {where!r} keeps its data in external files "
            f"({plist.get_external(0)[0].decode(errors='replace')!r}, …); save the data in "
            "the file itself."
        )
    shape = tuple(ds.shape or ())
    _check_dtype(ds.dtype, f"{name}: {where!r}", shape, limits)
    nbytes = _nbytes(shape, ds.dtype.itemsize)
    limits.check_total(nbytes, f"{name}: {where!r} {shape} {ds.dtype}")
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = [f for f in filters if f not in ALLOWED_FILTERS]
    if unknown:
        raise UnsafeFile(
            f"{name}: {where!r} is compressed with the HDF5 filter {unknown[0]}, which is not "
            f"read here; use {', '.join(sorted(set(ALLOWED_FILTERS.values())))} or none."
        )
    if ds.chunks is not None:
        counts = [math.ceil(s / c) if s else 0 for s, c in zip(shape, ds.chunks, strict=True)]
        n_chunks = math.prod(counts)
        if n_chunks > limits.max_chunks:
            raise UnsafeFile(
                f"{name}: {where!r} is cut into {n_chunks:,} chunks of {ds.chunks}; at most "
                f"{limits.max_chunks:,} are read. Save it with larger chunks."
            )
        limits.check_total(_nbytes(ds.chunks, ds.dtype.itemsize), f"{name}: {where!r}'s chunk")
        if DEFLATE in filters:
            _check_deflate_chunks(ds, filters.index(DEFLATE), where, name)
    return nbytes


def _check_deflate_chunks(ds: h5py.Dataset, position: int, where: str, name: str) -> None:
    """Inflate each stored chunk into a buffer of the chunk's size: a stream that would
    inflate past it (a compression bomb) is refused before HDF5 reads it."""
    chunk_bytes = _nbytes(ds.chunks, ds.dtype.itemsize)
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        if info.filter_mask & (1 << position):
            continue  # deflate was skipped for this chunk
        _mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
        inflater = zlib.decompressobj()
        try:
            inflater.decompress(raw, chunk_bytes)
            # Input left over once the buffer is full, and it still yields a byte: too big.
            past = bool(inflater.unconsumed_tail) and bool(
                inflater.decompress(inflater.unconsumed_tail, 1)
            )
        except zlib.error as exc:
            raise UnsafeFile(f"{name}: {where!r} has a damaged compressed chunk ({exc}).") from None
        if past:
            raise UnsafeFile(
                f"{name}: {where!r} has a compressed chunk that inflates past its declared "
                f"size of {_size(chunk_bytes)}."
            )


def _check_attributes(obj: h5py.HLObject, where: str, name: str, limits: Limits) -> None:
    count = h5py.h5o.get_info(obj.id).num_attrs
    if count > limits.max_attributes:
        raise UnsafeFile(
            f"{name}: {where!r} has {count:,} attributes; at most {limits.max_attributes} are read."
        )
    for key in obj.attrs:
        attr = h5py.h5a.open(obj.id, key.encode() if isinstance(key, str) else key)
        shape = attr.shape or ()
        declared = _nbytes(shape, attr.dtype.itemsize)
        if declared > limits.max_attribute_bytes:
            raise UnsafeFile(
                f"{name}: the attribute {key[:80]!r} of {where!r} declares {_size(declared)}; "
                f"at most {_size(limits.max_attribute_bytes)} is read."
            )
