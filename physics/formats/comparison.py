"""Comparison files: the SWMR HDF5 a comparison writes while it runs, and its exports
(netCDF and CSV of the per-step metrics; the animated GIF is ``physics.formats.gif``).

The HDF5 layout extends ``physics.formats.store``'s rollout file, so that module's
``read_rollout_frame`` and ``rollout_length`` read it unchanged: root attribute ``sources`` lists
the groups,
each ``<source>/vorticity`` is (time, n_s, n_s) chunked one frame per chunk, and
``dimensions/{time, x, y}`` hold the times and the reference grid. Sources are
``reference``, ``model:<i>`` (entry i's prediction on its own grid, attribute
``resolution``) and ``error:<i>`` (entry i's prediction, spectrally resampled to the
reference grid, minus the reference). A source with nothing to show at a step (a model
stopped by the divergence guard, or failed) gets a NaN frame, so every source has one frame
per time and the file stays rectangular.

The exports read either kind of rollout file: a comparison's, or a single-model rollout's
(sources ``reference`` and ``model``, whose error is computed as model − reference).
Every export streams frame by frame, so a 10 000-step rollout never sits in memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physics.formats.export import attr_value
from physics.formats.store import (
    FrameAppender,
    open_swmr,
    set_attrs,
    write_square_dimensions,
)
from physics.resample import resample_array

FIELD = "vorticity"
BANDS = ("low", "mid", "high")
# Per-source metrics of an event, in CSV column order (and netCDF variables, over (source,
# time)); band errors are flattened to band_error_low/mid/high.
METRICS = ("rel_l2", "rel_h1", "corr", "energy", "enstrophy", "ms")


# --- the file a comparison writes --------------------------------------------------------


class ComparisonWriter(FrameAppender):
    """Frames of several sources, each on its own grid, appended one chunk per frame (SWMR).

    ``grids`` maps each source name to its grid size; ``reference_n`` is the grid of
    ``dimensions/{x, y}``; ``source_attrs`` adds attributes to each source's group.
    """

    def __init__(
        self,
        path: Path,
        grids: Mapping[str, int],
        reference_n: int,
        length: float,
        attrs: Mapping[str, Any],
        source_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.grids = dict(grids)
        self.file = h5py.File(path, "w", libver="latest")
        set_attrs(self.file, {k: attr_value(v) for k, v in attrs.items()})
        self.file.attrs["sources"] = list(grids)
        write_square_dimensions(self.file, reference_n, length)
        self.time = self.file["dimensions"].create_dataset(
            "time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(256,)
        )
        self.frames = {}
        for source, n in self.grids.items():
            group = self.file.create_group(source)
            group.attrs["resolution"] = n
            set_attrs(
                group, {k: attr_value(v) for k, v in (source_attrs or {}).get(source, {}).items()}
            )
            self.frames[source] = group.create_dataset(
                FIELD, shape=(0, n, n), maxshape=(None, n, n), dtype=np.float32, chunks=(1, n, n)
            )
        self.file.swmr_mode = True

    def append(self, t: float, frames: Mapping[str, np.ndarray | None]) -> int:
        """Appends one frame per source (a missing or None frame is written as NaN); the time
        goes last, so a reader counting frames by time sees only whole frames."""
        filled = {}
        for source, n in self.grids.items():
            frame = frames.get(source)
            filled[source] = np.full((n, n), np.nan, np.float32) if frame is None else frame
        return super().append(t, filled)


# --- reading either kind of rollout file --------------------------------------------------


def rollout_layout(f: h5py.File) -> tuple[bool, list[str], dict[str, str | None]]:
    """(has a reference, the model sources, each model source's error dataset or None when
    the error is computed as model − reference)."""
    sources = [s.decode() if isinstance(s, bytes) else str(s) for s in f.attrs["sources"]]
    models = [s for s in sources if s == "model" or s.startswith("model:")]
    errors: dict[str, str | None] = {}
    for s in models:
        name = "error:" + s.split(":", 1)[1] if ":" in s else None
        errors[s] = name if name in sources else None
    return "reference" in sources, models, errors


def error_frame(f: h5py.File, model: str, dataset: str | None, k: int, n: int) -> np.ndarray:
    if dataset is not None:
        return f[dataset][FIELD][k]
    if "reference" not in f:
        return np.full((n, n), np.nan, np.float32)
    return f[model][FIELD][k] - f["reference"][FIELD][k]


def source_metrics(event: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-source metrics of one ``metrics`` event, in any format: a 2D comparison's
    (``reference`` and ``models[<i>]``), a channel comparison's (``reference`` and
    ``columns[<key>]``) or a single rollout's (``energy_reference``,
    ``energy_model``, ...). Keys: those of :data:`METRICS`, ``band_errors``, ``spectrum``,
    ``status``, ``message``."""
    out: dict[str, dict[str, Any]] = {}
    if "models" in event or isinstance(event.get("reference"), dict):
        if isinstance(event.get("reference"), dict):
            out["reference"] = dict(event["reference"])
        for index, metrics in (event.get("models") or {}).items():
            out[f"model:{index}"] = dict(metrics)
        # A channel comparison keys its columns itself ("model:0", "les:wale").
        for key, metrics in (event.get("columns") or {}).items():
            out[key] = dict(metrics)
        return out
    out["reference"] = {
        "energy": event.get("energy_reference"),
        "enstrophy": event.get("enstrophy_reference"),
        "spectrum": event.get("spectrum_reference"),
    }
    if "energy_model" in event or "rel_l2" in event:
        out["model"] = {
            "rel_l2": event.get("rel_l2"),
            "energy": event.get("energy_model"),
            "enstrophy": event.get("enstrophy_model"),
            "spectrum": event.get("spectrum_model"),
        }
    return out


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --- netCDF ------------------------------------------------------------------------------


def export_netcdf(
    h5_path: Path,
    out_path: Path,
    events: Iterable[Mapping[str, Any]],
    attrs: Mapping[str, Any],
    descriptions: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Writes a rollout file and its metrics events as netCDF-4 (h5netcdf), frame by frame
    and event by event (``events`` in step order, read once: it may be a lazy pager).

    Dimensions ``source`` (reference and models), ``model`` (the model sources), ``time``,
    ``y``, ``x`` (the reference grid), ``k`` (shell wavenumbers); variables:

    * ``vorticity(source, time, y, x)``: every source on the reference grid (a model that
      ran on another grid is spectrally resampled; its own frames are kept as
      ``vorticity_native_<i>(time, y_<i>, x_<i>)``);
    * ``error(model, time, y, x)``: prediction − reference on the reference grid;
    * per-step metrics over ``(source, time)``: ``rel_l2``, ``rel_h1``, ``corr``,
      ``energy``, ``enstrophy``, ``ms``, ``band_error_low/mid/high`` (NaN where a source has
      no value: the reference's errors, a stopped model's later steps);
    * ``spectrum(source, time, k)``; string coordinates ``model_id(source)`` and
      ``precision(source)``; ``status(source)`` (each source's last status).

    ``attrs`` become global attributes (lists and dicts as JSON); ``descriptions`` (per
    source name) add ``model_id``/``precision``. Only frames already written are exported.
    """
    import h5netcdf  # the export is the only user

    events = iter(events)
    first = next(events, None)
    if first is not None:
        events = itertools.chain([first], events)
    k_axis = list((first or {}).get("k") or [])
    descriptions = descriptions or {}
    with open_swmr(h5_path) as f:
        has_reference, models, errors = rollout_layout(f)
        names = (["reference"] if has_reference else []) + models
        times = f["dimensions"]["time"][...]
        count = len(times)
        x = f["dimensions"]["x"][...]
        n = len(x)
        length = float(x[1] - x[0]) * n if n > 1 else 1.0
        grids = {s: int(f[s][FIELD].shape[-1]) for s in names}
        file_attrs = {
            key: (v.decode() if isinstance(v, bytes) else v) for key, v in f.attrs.items()
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with h5netcdf.File(out_path, "w") as nc:
            dims = {"source": len(names), "model": len(models), "time": count, "y": n, "x": n}
            dims["k"] = len(k_axis)
            for s in models:
                if grids[s] != n:
                    i = s.split(":", 1)[-1]
                    dims[f"y_{i}"] = dims[f"x_{i}"] = grids[s]
            nc.dimensions = dims

            def coord(name, dim, values, dtype, **var_attrs):
                var = nc.create_variable(name, (dim,), dtype=dtype)
                var[:] = values
                var.attrs.update(var_attrs)

            strings = h5py.string_dtype()
            coord("source", "source", np.array(names, dtype=object), strings)
            coord("model", "model", np.array(models, dtype=object), strings)
            coord("time", "time", times, "f8", long_name="time", units="1", axis="T")
            cell = length / n
            coord("y", "y", np.arange(n) * cell, "f8", long_name="y coordinate", axis="Y")
            coord("x", "x", np.arange(n) * cell, "f8", long_name="x coordinate", axis="X")
            coord("k", "k", np.asarray(k_axis, dtype=np.float64), "f8", long_name="wavenumber")
            for key in ("model_id", "precision"):
                values = [str(descriptions.get(s, {}).get(key) or "") for s in names]
                var = nc.create_variable(key, ("source",), dtype=strings)
                var[:] = np.array(values, dtype=object)
            for s in models:
                if grids[s] != n:
                    i = s.split(":", 1)[-1]
                    m = grids[s]
                    coord(f"y_{i}", f"y_{i}", np.arange(m) * (length / m), "f8")
                    coord(f"x_{i}", f"x_{i}", np.arange(m) * (length / m), "f8")

            chunks = (1, 1, n, n)
            vort = nc.create_variable(
                FIELD, ("source", "time", "y", "x"), "f4", chunks=chunks, fillvalue=np.nan
            )
            vort.attrs.update(
                long_name="vorticity on the reference grid",
                comment="models on another grid are spectrally resampled",
            )
            err = nc.create_variable(
                "error",
                ("model", "time", "y", "x"),
                "f4",
                chunks=chunks if models else None,
                fillvalue=np.nan,
            )
            err.attrs["long_name"] = "prediction minus reference, on the reference grid"
            native = {}
            for s in models:
                if grids[s] != n:
                    i = s.split(":", 1)[-1]
                    native[s] = nc.create_variable(
                        f"{FIELD}_native_{i}",
                        ("time", f"y_{i}", f"x_{i}"),
                        "f4",
                        chunks=(1, grids[s], grids[s]),
                        fillvalue=np.nan,
                    )
            for step in range(count):
                for j, s in enumerate(names):
                    frame = f[s][FIELD][step]
                    vort[j, step] = resample_array(frame, n)
                    if s in native:
                        native[s][step] = frame
                for j, s in enumerate(models):
                    err[j, step] = error_frame(f, s, errors[s], step, n)

            columns = {name: np.full((len(names), count), np.nan) for name in METRICS}
            columns |= {f"band_error_{b}": np.full((len(names), count), np.nan) for b in BANDS}
            spectrum = nc.create_variable(
                "spectrum", ("source", "time", "k"), "f8", fillvalue=np.nan
            )
            spectrum.attrs["long_name"] = "kinetic energy spectrum (shell sums)"
            status = [""] * len(names)
            for event in events:
                step = int(event.get("step", -1))
                if not 0 <= step < count:
                    continue
                per_source = source_metrics(event)
                row = np.full((len(names), len(k_axis)), np.nan)
                for j, s in enumerate(names):
                    metrics = per_source.get(s)
                    if not metrics:
                        continue
                    for name in METRICS:
                        columns[name][j, step] = _number(metrics.get(name))
                    for b in BANDS:
                        value = (metrics.get("band_errors") or {}).get(b)
                        columns[f"band_error_{b}"][j, step] = _number(value)
                    values = metrics.get("spectrum") or []
                    if len(values) == len(k_axis):
                        row[j] = [_number(v) for v in values]
                    status[j] = metrics.get("status") or status[j]
                if k_axis:
                    spectrum[:, step, :] = row
            for name, values in columns.items():
                var = nc.create_variable(name, ("source", "time"), "f8", fillvalue=np.nan)
                var[...] = values
            var = nc.create_variable("status", ("source",), dtype=strings)
            var[:] = np.array(status, dtype=object)

            merged = {**file_attrs, **attrs}
            merged.pop("sources", None)
            nc.attrs.update({str(k): attr_value(v) for k, v in merged.items()})
            nc.attrs["sources"] = json.dumps(
                {s: dict(descriptions.get(s, {})) for s in names}, default=str
            )
            nc.attrs["Conventions"] = "CF-1.8"
            nc.attrs["title"] = "Eddyscope rollout: reference and model predictions"
            nc.attrs["length"] = length
    return out_path


# --- CSV ---------------------------------------------------------------------------------

CSV_COLUMNS = (
    "step",
    "t",
    "source",
    "model_id",
    "precision",
    "status",
    *METRICS,
    *(f"band_error_{b}" for b in BANDS),
    "message",
)


def metrics_csv(
    events: Iterable[Mapping[str, Any]],
    descriptions: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[str]:
    """The per-step metrics as CSV, one row per step per source (:data:`CSV_COLUMNS`;
    empty cells where a source has no value), yielded as text: the header, then one chunk
    per event, so a long rollout streams."""
    descriptions = descriptions or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for event in events:
        if "step" not in event:
            continue
        for source, metrics in source_metrics(event).items():
            about = descriptions.get(source, {})
            bands = metrics.get("band_errors") or {}
            row = [event["step"], event.get("t"), source, about.get("model_id") or ""]
            row += [about.get("precision") or "", metrics.get("status") or ""]
            row += [metrics.get(name) for name in METRICS]
            row += [bands.get(b) for b in BANDS]
            row.append(metrics.get("message") or "")
            writer.writerow(["" if v is None else v for v in row])
        yield flush()
