"""What the HIT panels show of one periodic-box velocity snapshot, computed with
``physics.hit3d.diagnostics``: the statistics card's numbers, the shell spectrum, the
vorticity PDFs and the three midplane slices of |ω| and of Q.

Shared by the hit3d generate worker (its live ``hit3d_stats`` events carry
``snapshot_summary``) and the Data page (``app.services.hit3d_views``, which reads stored
snapshots), so a running job and its finished dataset show the same numbers. Everything
returned is plain floats and lists (JSON for an event row), except the slices (numpy).

A snapshot is a velocity (n, n, n, 3), components last as a dataset stores it, or
(3, n, n, n); axes x, y, z in that order on [0, L)³.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from physics.hit3d import diagnostics
from physics.hit3d.operators import vorticity_from_gradient

PDF_BINS = 64
# Fields up to this side are analysed in float64; larger ones in float32, since the
# velocity gradient alone is nine n³ fields (9·128³ float64 = 150 MB).
FLOAT64_MAX_N = 64
SLICE_QUANTITIES = ("vorticity", "q")
SLICE_AXES = ("x", "y", "z")


def as_batch(velocity: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The snapshot as a batch of one (1, 3, n, n, n), float64 (float32 above
    ``FLOAT64_MAX_N``). ValueError, in a sentence, for any other shape."""
    u = velocity if torch.is_tensor(velocity) else torch.from_numpy(np.asarray(velocity))
    if u.ndim == 4 and u.shape[-1] == 3 and u.shape[0] == u.shape[1] == u.shape[2]:
        u = u.movedim(-1, 0)  # components last, as stored
    if u.ndim != 4 or u.shape[0] != 3 or not u.shape[1] == u.shape[2] == u.shape[3]:
        raise ValueError(
            "A hit3d snapshot is a velocity (n, n, n, 3) or (3, n, n, n) on a cube; got "
            f"{tuple(u.shape)}."
        )
    dtype = torch.float64 if u.shape[-1] <= FLOAT64_MAX_N else torch.float32
    return u.to(dtype)[None]


def snapshot_statistics(u: torch.Tensor, nu: float, length: float) -> dict[str, float]:
    """The statistics card of a batch of one (1, 3, n, n, n): kinetic energy E, dissipation
    ε = 2ν⟨SᵢⱼSᵢⱼ⟩, rms velocity u', Taylor microscale λ = (15u'²/⟨|ω|²⟩)^½, Re_λ = u'λ/ν,
    integral scale L, velocity-gradient skewness S, max |∇·u|, the Kolmogorov scale
    η = (ν³/ε)^¼ and k_max·η with k_max = (2π/L_box)·n/3 (the 2/3 rule's last wavenumber;
    ≥ 1 resolves the dissipation range).

    The definitions are ``physics.hit3d.diagnostics``'s, evaluated from one velocity
    gradient (each diagnostic would transform the field again: 4 s instead of 1 s at
    128³), so they agree with those functions to round-off."""
    n = u.shape[-1]
    g = diagnostics.velocity_gradient(u, length)  # (1, 3, 3, n, n, n), g_ij = ∂u_i/∂x_j
    strain = 0.5 * (g + g.transpose(1, 2))
    epsilon = float(2 * nu * (strain**2).sum(dim=(1, 2)).mean())
    omega = vorticity_from_gradient(g)
    omega_squared = float((omega**2).sum(dim=1).mean())
    u_rms = float(diagnostics.rms_velocity(u)[0])
    taylor = math.sqrt(15 * u_rms**2 / omega_squared) if omega_squared > 0 else math.inf
    diagonal = torch.stack([g[:, i, i] for i in range(3)], dim=1)
    second = float((diagonal**2).mean())
    skewness = float((diagonal**3).mean()) / second**1.5 if second > 0 else 0.0
    eta = (nu**3 / epsilon) ** 0.25 if epsilon > 0 else math.inf
    return {
        "energy": float(diagnostics.kinetic_energy(u)[0]),
        "dissipation": epsilon,
        "u_rms": u_rms,
        "taylor_microscale": taylor,
        "taylor_reynolds": u_rms * taylor / nu,
        "integral_scale": float(diagnostics.integral_scale(u, length)[0]),
        "skewness": skewness,
        "divergence_max": float(diagonal.sum(dim=1).abs().max()),
        "kolmogorov_scale": eta,
        "kmax_eta": (2 * math.pi / length) * n / 3 * eta,
        "nu": float(nu),
    }


def spectrum(u: torch.Tensor, length: float) -> tuple[list[int], list[float]]:
    """Integer shells k and the shell-summed spectrum E(k), Σ E = E (Parseval)."""
    k, e = diagnostics.energy_spectrum(u, length)
    return [int(x) for x in k.tolist()], [float(x) for x in e[0].tolist()]


def vorticity_pdfs(
    u: torch.Tensor, length: float, bins: int = PDF_BINS
) -> dict[str, dict[str, list[float]]]:
    """Two PDFs of the vorticity, each of a variable scaled by its rms and with unit area
    (Σ density·Δx = 1): "magnitude", |ω|/⟨|ω|²⟩^½ on [0, max] (from
    ``diagnostics.vorticity_pdf``, rescaled), and "component", ωᵢ/σ with σ = (⟨|ω|²⟩/3)^½,
    the three components pooled (one component's PDF, by isotropy) on [−max, max]."""
    omega = diagnostics.vorticity(u, length)[0].double()  # (3, n, n, n)
    rms = float(torch.sqrt((omega**2).sum(dim=0).mean()))
    scale = rms if rms > 0 else 1.0
    centres, density = diagnostics.vorticity_pdf(u, bins, length=length)
    sigma = scale / math.sqrt(3)
    values = (omega / sigma).flatten().cpu().numpy()
    top = float(np.abs(values).max()) or 1.0
    counts, edges = np.histogram(values, bins=bins, range=(-top, top), density=True)
    return {
        "magnitude": {
            "x": (centres.double() / scale).tolist(),
            "density": (density[0].double() * scale).tolist(),
        },
        "component": {
            "x": ((edges[:-1] + edges[1:]) / 2).tolist(),
            "density": counts.tolist(),
        },
        "rms": [scale],
    }


def snapshot_summary(velocity: np.ndarray | torch.Tensor, nu: float, length: float) -> dict:
    """Statistics, spectrum and vorticity PDFs of one snapshot, JSON-ready: ``{"n",
    "stats", "k", "spectrum", "pdf"}``."""
    u = as_batch(velocity)
    k, e = spectrum(u, length)
    return _finite(
        {
            "n": int(u.shape[-1]),
            "stats": snapshot_statistics(u, nu, length),
            "k": k,
            "spectrum": e,
            "pdf": vorticity_pdfs(u, length),
        }
    )


def _finite(value: Any) -> Any:
    """None for every non-finite float inside (JSON, and PostgreSQL's json, have no inf)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def midplanes(field: np.ndarray) -> dict[str, np.ndarray]:
    """The three midplanes of a scalar field (n, n, n) on axes (x, y, z), each as a heatmap
    draws it (rows the vertical axis): "x" the plane x = x[n//2] (columns y, rows z), "y"
    the plane y = y[n//2] (columns x, rows z), "z" the plane z = z[n//2] (columns x, rows
    y)."""
    field = np.asarray(field)
    m = field.shape[0] // 2
    return {"x": field[m, :, :].T, "y": field[:, m, :].T, "z": field[:, :, m].T}


def snapshot_slices(
    velocity: np.ndarray | torch.Tensor, length: float
) -> dict[str, dict[str, np.ndarray]]:
    """The midplanes (``midplanes``) of |ω| ("vorticity") and of Q = ½(ΩᵢⱼΩᵢⱼ − SᵢⱼSᵢⱼ)
    ("q"), float32."""
    u = as_batch(velocity)
    magnitude = torch.sqrt((diagnostics.vorticity(u, length)[0] ** 2).sum(dim=0))
    q = diagnostics.q_criterion(u, length)[0]
    return {
        "vorticity": midplanes(magnitude.float().cpu().numpy()),
        "q": midplanes(q.float().cpu().numpy()),
    }


def series_summary(t: Any, energy: Any, dissipation: Any) -> dict[str, list[float]]:
    """E(t) and ε(t) as plain lists, non-finite values (a shard not yet joined) dropped."""
    t, energy, dissipation = (np.asarray(a, dtype=np.float64) for a in (t, energy, dissipation))
    keep = np.isfinite(t) & np.isfinite(energy) & np.isfinite(dissipation)
    return {
        "t": t[keep].tolist(),
        "energy": energy[keep].tolist(),
        "dissipation": dissipation[keep].tolist(),
    }


# A live event's E(t), ε(t) carry at most this many points (evenly spaced, ends kept).
EVENT_SERIES_POINTS = 200


def _thinned(values: np.ndarray, limit: int = EVENT_SERIES_POINTS) -> np.ndarray:
    if len(values) <= limit:
        return values
    return values[np.unique(np.round(np.linspace(0, len(values) - 1, limit)).astype(int))]


class Throttle:
    """When a live summary is due, at a bounded cost: ``due()`` is true at most every
    ``every`` seconds and, since a 128³ summary takes about a second on one CPU core, never
    more often than keeps the summaries under ``share`` of the wall time (``spent(cost)``
    records what the last one took); ``due(final=True)`` is always true. The first call is
    due."""

    def __init__(self, every: float = 1.0, share: float = 0.1):
        import time

        self._clock = time.monotonic
        self.every, self.share = float(every), float(share)
        self._next = self._clock()

    def now(self) -> float:
        return self._clock()

    def due(self, final: bool = False) -> bool:
        return final or self._clock() >= self._next

    def spent(self, cost: float) -> None:
        self._next = self._clock() + max(self.every, cost / self.share)


class LiveSummaries:
    """The ``hit3d_stats`` events of a generate shard, at a bounded cost (``Throttle``):
    ``offer`` returns an event payload at most every ``every`` seconds and within ``share``
    of the shard's wall time; a ``final`` offer (a shard's last snapshot) always gives one.

    The payload: ``{"shard", "trajectory", "snapshot", "t", **snapshot_summary(...),
    "series": {"t", "energy", "dissipation"}}``, the series being the solver's energy
    budget of that trajectory up to the snapshot (at most ``EVENT_SERIES_POINTS``)."""

    def __init__(self, nu: float, length: float, shard: int, every: float = 1.0, share=0.1):
        self.nu, self.length, self.shard = float(nu), float(length), int(shard)
        self.every, self.share = float(every), float(share)
        self.throttle = Throttle(every, share)  # the first snapshot is always reported

    def offer(
        self,
        velocity: np.ndarray,
        t: float,
        trajectory: int,
        snapshot: int,
        series: dict[str, np.ndarray],
        final: bool = False,
    ) -> dict[str, Any] | None:
        if not self.throttle.due(final):
            return None
        start = self.throttle.now()
        summary = snapshot_summary(velocity, self.nu, self.length)
        self.throttle.spent(self.throttle.now() - start)
        return {
            "shard": self.shard,
            "trajectory": int(trajectory),
            "snapshot": int(snapshot),
            "t": float(t),
            **summary,
            "series": series_summary(*(_thinned(np.asarray(series[k])) for k in SERIES_KEYS)),
        }


SERIES_KEYS = ("t", "energy", "dissipation")
