"""What the pages show of stored fields, computed in the web process: one trajectory of a
dataset for the Data page's preview (thinned frames, their spectra, energy and enstrophy
over time), the energy spectrum of one uploaded 2D field, and the |ω| midplanes and spectrum
of one uploaded periodic-box velocity."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.services import catalog
from app.services.flows import flow_length
from app.state import AppState


def evenly_spaced(count: int, limit: int) -> list[int]:
    """At most ``limit`` indices of ``range(count)``, evenly spaced, first and last included."""
    if count <= 0:
        return []
    if count <= limit or limit < 2:
        return list(range(count)) if count <= limit else [0]
    return sorted({int(i) for i in np.round(np.linspace(0, count - 1, limit))})


def field_spectrum(field: np.ndarray, flow_name: str) -> tuple[list[int], list[float]]:
    """Energy spectrum of one 2D vorticity field on the flow's domain."""
    import torch

    from physics.flows import get_flow
    from physics.spectra import energy_spectrum

    w = torch.from_numpy(np.asarray(field, dtype=np.float64))[None, None]
    k, e = energy_spectrum(w, get_flow(flow_name).length)
    return [int(x) for x in k.tolist()], [float(x) for x in e[0].tolist()]


def velocity_preview(velocity: np.ndarray, flow_name: str) -> dict[str, Any]:
    """What the Upload page shows of a periodic-box velocity (3, n, n, n): the three
    midplanes of |ω| (``app.hit3d_summary.midplanes``) and the shell spectrum E(k)
    (Σ E = ½⟨|u|²⟩), on the flow's box: ``{"n", "length", "slices", "k", "spectrum"}``."""
    import torch

    from app.hit3d_summary import as_batch, midplanes, spectrum
    from physics.hit3d import diagnostics

    length = flow_length(flow_name)
    u = as_batch(velocity)
    k, e = spectrum(u, length)
    magnitude = torch.sqrt((diagnostics.vorticity(u, length)[0] ** 2).sum(dim=0))
    return {
        "n": int(u.shape[-1]),
        "length": length,
        "slices": midplanes(magnitude.float().numpy()),
        "k": k,
        "spectrum": e,
    }


# Energy and enstrophy are computed on at most this many snapshots of a trajectory.
SERIES_SNAPSHOTS = 500


def _thin(frame: np.ndarray, stride: int) -> np.ndarray:
    """Block means of stride × stride when they tile the field, else every stride-th point."""
    if stride == 1:
        return frame
    ny, nx = frame.shape
    if ny % stride == 0 and nx % stride == 0:
        return frame.reshape(ny // stride, stride, nx // stride, stride).mean(axis=(1, 3))
    return frame[::stride, ::stride]


def dataset_preview(
    state: AppState,
    dataset_id: str,
    index: int = 0,
    max_frames: int = 100,
    max_pixels: int = 128,
    max_series: int = SERIES_SNAPSHOTS,
) -> dict[str, Any] | None:
    """One trajectory of a dataset, for the preview: at most ``max_frames`` snapshots
    (evenly spaced, first and last included) thinned to at most ``max_pixels`` per side for
    the animation, their energy spectra at full resolution, and energy and enstrophy over at
    most ``max_series`` snapshots. Only the chosen trajectory is read, one block of snapshots
    at a time, so memory stays small for big datasets.

    Returns None for an unknown dataset; raises ValueError with a sentence for a trajectory
    that is not in it or a file that cannot be read.
    """
    import h5py
    import torch

    from physics.diagnostics import enstrophy, kinetic_energy
    from physics.spectra import energy_spectrum

    found = catalog.dataset_file(state, dataset_id)
    if found is None:
        return None
    dataset, relative = found
    path = state.artifacts.resolve(relative)
    length = float(dataset["params"].get("length") or flow_length(dataset["flow"]))
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"The dataset's file {relative} cannot be read ({exc}).") from exc
    with f:
        if "vorticity" not in f.get("t0_fields", {}):  # e.g. hit3d's velocity
            raise ValueError(
                f"The 2D vorticity preview does not draw {dataset['flow']} datasets (they "
                "hold 3D velocity); their panels are on the Data page's flow card."
            )
        data = f["t0_fields"]["vorticity"]
        n_traj, n_snap, ny, nx = data.shape
        if not 0 <= index < n_traj:
            last = f" (0–{n_traj - 1})" if n_traj > 1 else " (0)"
            raise ValueError(f"Trajectory {index} is not in the dataset; it has {n_traj}{last}.")
        dims = f["dimensions"]
        all_times = dims["time"][...] if "time" in dims else np.arange(n_snap, dtype=float)
        shown = evenly_spaced(n_snap, max_frames)
        series = sorted(set(evenly_spaced(n_snap, max_series)) | set(shown))
        stride = max(1, math.ceil(max(ny, nx) / max_pixels))
        shown_set = set(shown)
        energy, enstrophy_values, frames, spectra = [], [], [], []
        peak, k = 0.0, None
        block = max(1, min(16, (1 << 22) // (ny * nx)))
        for start in range(0, len(series), block):
            which = series[start : start + block]
            raw = np.asarray(data[index, which], dtype=np.float64)  # (b, ny, nx)
            w = torch.from_numpy(raw)[:, None]
            energy += kinetic_energy(w, length).tolist()
            enstrophy_values += enstrophy(w).tolist()
            finite = np.abs(raw[np.isfinite(raw)])  # a blown-up run leaves NaN: not drawn
            peak = max(peak, float(finite.max()) if finite.size else 0.0)
            picked = [i for i, s in enumerate(which) if s in shown_set]
            if picked:
                k_t, e = energy_spectrum(w[picked], length)
                k = k_t
                spectra.append(e.numpy())
                frames += [_thin(raw[i], stride).astype(np.float32) for i in picked]
    return {
        "dataset": dataset,
        "index": index,
        "n_trajectories": int(n_traj),
        "n_snapshots": int(n_snap),
        "resolution": int(nx),
        "length": length,
        "stride": stride,
        "frame_snapshots": shown,
        "frame_t": [float(all_times[s]) for s in shown],
        "frames": np.stack(frames),
        "limit": peak,
        "k": [int(x) for x in k.tolist()] if k is not None else [],
        "spectra": np.concatenate(spectra),
        "series_snapshots": series,
        "series_t": [float(all_times[s]) for s in series],
        "energy": energy,
        "enstrophy": enstrophy_values,
    }
