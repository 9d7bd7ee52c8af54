"""Statistics of turbulent channel flow in wall units: mean and rms profiles, shear-stress
balance and 1D energy spectra, averaged over x, z, snapshots and both halves of the channel.

Conventions. Velocity fields are shaped (B, 3, nx, ny, nz): the components (u, v, w) are
streamwise, wall-normal and spanwise; x and z are periodic with lengths Lx and Lz (uniform
points), y ∈ [−1, 1] (half-height h = 1) is given by its points ``y`` (ny,), strictly
monotonic (increasing or decreasing) and symmetric about y = 0. Either the walls are grid
points (y = ±1, e.g. Chebyshev–Gauss–Lobatto) or all points are inside (a cell-centred grid),
in which case the no-slip value u = 0 at y = ±1 closes the wall derivatives.

Averages. ⟨·⟩ is the mean over x, z and snapshots; U(y) = ⟨u⟩ and u′ = u − U(y). With p_s(y)
the x–z mean of snapshot s and N snapshots, the covariance splits exactly into a within-plane
and a between-snapshot part,

    ⟨u′_i u′_j⟩ = (1/N) Σ_s ⟨(u_i − p_si)(u_j − p_sj)⟩_xz + (1/N) Σ_s (p_si − U_i)(p_sj − U_j),

and both are accumulated without the cancellation of ⟨u²⟩ − U² (the second by Chan et al.'s
pairwise update of a running mean and sum of squared deviations), so a long run with
U ≫ u′ loses no digits.

Wall units. τ_w = ν dU/dy at the walls, both walls averaged (τ_w = ½ν(U′(−1) − U′(+1))),
u_τ = √τ_w, Re_τ = u_τ h/ν, y⁺ = (1 − |y|) u_τ/ν, U⁺ = U/u_τ, u′⁺_rms = ⟨u′²⟩^½/u_τ,
−⟨u′v′⟩⁺ = −⟨u′v′⟩/u_τ². dU/dy is the derivative of the 3-point Lagrange interpolant on the
non-uniform grid (second order; one-sided at the walls), exact for quadratics.

Folding. Point j of the lower half and its mirror j′ = ny − 1 − j (at the same distance
1 − |y| from the other wall) are averaged. Even quantities (U, the variances, the spectra)
average as they are; ⟨u′v′⟩ and dU/dy are odd in y (v and ∂/∂y point away from the lower
wall but towards the upper one), so the folded wall-normal flux is ½(−⟨u′v′⟩_j + ⟨u′v′⟩_j′).

Shear-stress balance. For a statistically steady pressure-driven channel the x-momentum
balance integrates to a linear total stress: ν dU/dy − ⟨u′v′⟩ = −τ_w y, i.e. in the folded
half, in wall units, τ⁺(y) = dU⁺/dy⁺ − ⟨u′v′⟩⁺ = 1 − (1 − |y|) = 1 − y⁺/Re_τ. The deviation
from that line measures how far from a steady state (or from a converged average) a run is.

Spectra. At a plane y, the 1D spectrum in x of component c is

    E_cc(k_x) = w_k ⟨|û_c(k_x; y, z, t)|²⟩_{z,t} / nx²,   k_x = 2πm/Lx, m = 0, …, nx//2,

with û the unnormalised DFT of u′ along x and w_k = 2 for 0 < m < nx/2 (the rfft stores ±k_x
once), 1 for m = 0 and for the Nyquist mode of even nx. Then Σ_m E_cc(k_x) = ⟨u′_c²⟩(y)
(Parseval); the same in z. The k = 0 bin holds the variance of the line means (x-means for
the x-spectrum) about U(y).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

# --- reference lines and numbers -------------------------------------------------------------

LOG_LAW_KAPPA = 0.41
LOG_LAW_B = 5.2


def viscous_sublayer(yplus: Any) -> np.ndarray:
    """The viscous-sublayer line U⁺ = y⁺ (valid for y⁺ ≲ 5)."""
    return np.asarray(yplus, dtype=np.float64).copy()


def log_law(yplus: Any, kappa: float = LOG_LAW_KAPPA, b: float = LOG_LAW_B) -> np.ndarray:
    """The log law U⁺ = (1/κ) ln y⁺ + B, κ = 0.41, B = 5.2 (valid for y⁺ ≳ 30, y/h ≲ 0.3)."""
    return np.log(np.asarray(yplus, dtype=np.float64)) / kappa + b


@dataclass(frozen=True)
class ChannelReference:
    """Headline numbers of a reference channel simulation (for guide marks on plots)."""

    name: str
    re_tau: float
    centreline_u_plus: float
    bulk_u_plus: float
    peak_u_rms_plus: float
    peak_u_rms_yplus: float
    source: str


# Moser, Kim & Mansour (1999), "Direct numerical simulation of turbulent channel flow up to
# Re_τ = 590", Phys. Fluids 11, 943, case Re_τ = 180 (178.12 in its data files), which repeats
# Kim, Moin & Moser (1987), J. Fluid Mech. 177, 133: Re_c = U_c h/ν ≈ 3300 → U_c⁺ ≈ 18.3,
# Re_b = 2U_b h/ν ≈ 5600 → U_b⁺ ≈ 15.7; the u′⁺_rms peak ≈ 2.6 near y⁺ ≈ 15. The tabulated
# profiles themselves are not bundled (no copy could be fetched); these are approximate.
MKM_RE180 = ChannelReference(
    name="Moser, Kim & Mansour (1999), Re_tau = 180",
    re_tau=178.12,
    centreline_u_plus=18.3,
    bulk_u_plus=15.7,
    peak_u_rms_plus=2.6,
    peak_u_rms_yplus=15.0,
    source="Moser, Kim & Mansour, Phys. Fluids 11, 943 (1999); Kim, Moin & Moser, "
    "J. Fluid Mech. 177, 133 (1987)",
)

# --- the wall-normal grid ----------------------------------------------------------------------

# A first point within this fraction of the first spacing of a wall is taken to be the wall.
_WALL_FRACTION = 1e-4
# Tolerance on |y| ≤ 1 and on the grid's symmetry about y = 0 (coordinates stored as float32).
_Y_TOL = 1e-6


@dataclass(frozen=True)
class ChannelGrid:
    """A validated wall-normal grid, increasing: ``y`` (ny,) float64, ``flipped`` when the
    caller's order was decreasing, ``walls`` when y = ±1 are grid points (then snapped to ±1
    exactly)."""

    y: np.ndarray
    flipped: bool
    walls: bool

    @property
    def extended(self) -> np.ndarray:
        """The points with the walls y = ±1 added when they are not grid points."""
        if self.walls:
            return self.y
        return np.concatenate([[-1.0], self.y, [1.0]])


def channel_grid(y: Any) -> ChannelGrid:
    """Check a wall-normal grid and put it in increasing order (ValueError with a sentence)."""
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if y.dtype.kind not in "fiu":
        raise ValueError(f"The y coordinates must be numbers; got an array of {y.dtype}.")
    y = y.astype(np.float64)
    if y.ndim != 1:
        raise ValueError(f"The y coordinates must be one array (ny,); got shape {y.shape}.")
    if y.size < 3:
        raise ValueError(f"The y coordinates need at least 3 points; got {y.size}.")
    if not np.isfinite(y).all():
        raise ValueError("The y coordinates contain NaN or infinite values.")
    steps = np.diff(y)
    flipped = bool(steps[0] < 0)
    if not (np.all(steps < 0) if flipped else np.all(steps > 0)):
        raise ValueError(
            "The y coordinates must be strictly monotonic (all increasing or all decreasing)."
        )
    if flipped:
        y = y[::-1].copy()
    if y[0] < -1 - _Y_TOL or y[-1] > 1 + _Y_TOL:
        raise ValueError(
            f"The y coordinates must lie in [-1, 1] (walls at y = ±1); they span "
            f"[{y[0]:.6g}, {y[-1]:.6g}]."
        )
    if np.abs(y + y[::-1]).max() > _Y_TOL:
        raise ValueError(
            "The y points must be symmetric about the centreline y = 0 (y_j = −y_(ny−1−j)) so "
            "that both halves fold onto each other."
        )
    y = np.clip(y, -1.0, 1.0)
    walls = bool(1 + y[0] <= _WALL_FRACTION * (y[1] - y[0]))
    if walls:
        y[0], y[-1] = -1.0, 1.0
    return ChannelGrid(y=y, flipped=flipped, walls=walls)


def derivative(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """df/dy along the last axis of f at the points y (increasing, n ≥ 3), second order.

    Interior points use the derivative of the Lagrange parabola through y_{i−1}, y_i, y_{i+1}
    (h₋ = y_i − y_{i−1}, h₊ = y_{i+1} − y_i):

        f′_i = −h₊/(h₋(h₋+h₊)) f_{i−1} + (h₊ − h₋)/(h₋h₊) f_i + h₋/(h₊(h₋+h₊)) f_{i+1};

    the ends use the one-sided parabola through the first (last) three points, at y_0 with
    h₁ = y_1 − y_0, h₂ = y_2 − y_0:

        f′_0 = −(h₁+h₂)/(h₁h₂) f_0 + h₂/(h₁(h₂−h₁)) f_1 − h₁/(h₂(h₂−h₁)) f_2.

    All are exact for quadratics.
    """
    f = np.asarray(f, dtype=np.float64)
    out = np.empty_like(f)
    hm = y[1:-1] - y[:-2]
    hp = y[2:] - y[1:-1]
    out[..., 1:-1] = (
        -hp / (hm * (hm + hp)) * f[..., :-2]
        + (hp - hm) / (hm * hp) * f[..., 1:-1]
        + hm / (hp * (hm + hp)) * f[..., 2:]
    )
    out[..., 0] = _one_sided(f[..., :3], y[:3] - y[0])
    # At the last point, in s = y_end − y (pointing inward), df/dy = −df/ds.
    out[..., -1] = -_one_sided(f[..., ::-1][..., :3], y[-1] - y[::-1][:3])
    return out


def _one_sided(f: np.ndarray, s: np.ndarray) -> np.ndarray:
    h1, h2 = s[1], s[2]
    return (
        -(h1 + h2) / (h1 * h2) * f[..., 0]
        + h2 / (h1 * (h2 - h1)) * f[..., 1]
        - h1 / (h2 * (h2 - h1)) * f[..., 2]
    )


def quadrature_weights(y: np.ndarray) -> np.ndarray:
    """Weights q (n,) with Σ q_i f(y_i) = ∫_{y_0}^{y_n−1} f dy for every quadratic f.

    Each interval [y_i, y_{i+1}] integrates the parabola through three neighbouring points,
    (y_{i−1}, y_i, y_{i+1}) and (y_i, y_{i+1}, y_{i+2}) averaged where both exist; third-order
    accurate on a smooth non-uniform grid (trapezoid for n = 2).
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    q = np.zeros(n)
    if n == 2:
        return np.full(2, 0.5 * (y[1] - y[0]))
    for i in range(n - 1):
        stencils = [s for s in (i - 1, i) if s >= 0 and s + 2 < n]
        for s in stencils:
            nodes = y[s : s + 3]
            for k in range(3):
                others = np.delete(nodes, k)
                basis = np.poly(others) / np.prod(nodes[k] - others)
                antiderivative = np.polyint(basis)
                integral = np.polyval(antiderivative, y[i + 1]) - np.polyval(antiderivative, y[i])
                q[s + k] += integral / len(stencils)
    return q


# --- the result ----------------------------------------------------------------------------------

COMPONENTS = ("u", "v", "w")


@dataclass
class ChannelStatisticsResult:
    """Channel statistics, folded onto the half channel from the lower wall to the centre.

    Profiles (P,) run from the wall (or the first interior point) to the centreline; P =
    ceil(ny/2). ``y`` is the distance from the wall 1 − |y| (h = 1), ``yplus`` = y u_τ/ν.
    ``u_mean_plus`` U⁺; ``u_rms_plus``, ``v_rms_plus``, ``w_rms_plus`` the rms fluctuations in
    wall units; ``reynolds_stress_plus`` −⟨u′v′⟩⁺ (positive for a flow in +x);
    ``viscous_stress_plus`` dU⁺/dy⁺; ``total_stress_plus`` their sum; ``total_stress_linear``
    the steady-state line 1 − y; ``total_stress_deviation`` the difference, whose largest
    magnitude is ``stress_balance_error``.

    Scalars: ``u_tau`` = √τ_w from ``tau_wall`` = ½(``tau_wall_lower`` + ``tau_wall_upper``)
    (kinematic, ν|dU/dy| at each wall), ``re_tau`` = u_τ/ν, ``bulk_u_plus`` = (1/2)∫U dy / u_τ,
    ``centreline_u_plus`` = U(0)/u_τ (interpolated by the even parabola through the two points
    nearest the centre when y = 0 is not a grid point), ``n_snapshots``, ``nu``, ``lx``, ``lz``.

    Spectra, for each requested y⁺ in ``spectra_yplus_requested`` (S,) at the nearest folded
    plane, whose y⁺ is ``spectra_yplus``: ``spectra_x`` (S, 3, nx//2+1) E_uu, E_vv, E_ww
    against ``kx`` = 2πm/Lx, and ``spectra_z`` (S, 3, nz//2+1) against ``kz`` = 2πm/Lz, in
    velocity² (not in wall units); each sums over its wavenumbers to the variance at its plane.
    """

    n_snapshots: int
    nu: float
    lx: float
    lz: float
    u_tau: float
    re_tau: float
    tau_wall: float
    tau_wall_lower: float
    tau_wall_upper: float
    bulk_u_plus: float
    centreline_u_plus: float
    stress_balance_error: float
    y: np.ndarray
    yplus: np.ndarray
    u_mean_plus: np.ndarray
    u_rms_plus: np.ndarray
    v_rms_plus: np.ndarray
    w_rms_plus: np.ndarray
    reynolds_stress_plus: np.ndarray
    viscous_stress_plus: np.ndarray
    total_stress_plus: np.ndarray
    total_stress_linear: np.ndarray
    total_stress_deviation: np.ndarray
    kx: np.ndarray
    kz: np.ndarray
    spectra_yplus_requested: np.ndarray
    spectra_yplus: np.ndarray
    spectra_x: np.ndarray
    spectra_z: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: floats, ints and (nested) lists of floats."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name] = value.astype(np.float64).tolist()
            elif isinstance(value, int):
                out[f.name] = int(value)
            else:
                out[f.name] = float(value)
        out["components"] = list(COMPONENTS)
        return out


# --- the accumulator ---------------------------------------------------------------------------


def _as_tensor(u: Any) -> torch.Tensor:
    if isinstance(u, torch.Tensor):
        return u.detach()
    array = np.asarray(u)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"The velocity must be a numeric array; got {array.dtype}.")
    return torch.from_numpy(np.ascontiguousarray(array))


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")
    return number


class ChannelStatistics:
    """Running channel statistics: ``update(u)`` with batches of snapshots, ``result()``.

    ``y`` (ny,) wall-normal points (see the module docstring), ``nu`` kinematic viscosity,
    ``lx``, ``lz`` periodic lengths, ``spectra_at_yplus`` the y⁺ at which ``result()`` reports
    1D spectra (nearest folded plane). Every update adds its B snapshots with equal weight
    (equally spaced samples in time are the caller's choice). State is O(ny·(nx + nz)) float64
    on the CPU; each update reduces on u's device in float64.
    """

    def __init__(
        self,
        y: Any,
        nu: float,
        lx: float,
        lz: float,
        spectra_at_yplus: Sequence[float] = (5, 15, 30, 100),
    ):
        self.grid = channel_grid(y)
        self.nu, self.lx, self.lz = (
            _positive(name, value) for name, value in (("nu", nu), ("lx", lx), ("lz", lz))
        )
        targets = np.asarray(spectra_at_yplus, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(targets) & (targets >= 0)):
            raise ValueError(
                f"spectra_at_yplus must be non-negative numbers; got {list(spectra_at_yplus)}."
            )
        self.spectra_at_yplus = targets
        self.ny = self.grid.y.size
        self.nx: int | None = None
        self.nz: int | None = None
        self.count = 0
        self._mean = np.zeros((3, self.ny))  # running mean of the plane means p_s
        self._between = np.zeros((3, 3, self.ny))  # Σ_s (p_s − mean)(p_s − mean)ᵀ
        self._within = np.zeros((3, 3, self.ny))  # Σ_s ⟨(u − p_s)(u − p_s)ᵀ⟩_xz
        self._spec_x: np.ndarray | None = None  # Σ_s spectra of u − p_s, (3, ny, nx//2+1)
        self._spec_z: np.ndarray | None = None

    def _check(self, u: torch.Tensor) -> None:
        if u.ndim != 5 or u.shape[1] != 3:
            raise ValueError(
                "Expected velocity snapshots shaped (B, 3, nx, ny, nz) with components "
                f"(u, v, w); got {tuple(u.shape)}."
            )
        if u.shape[3] != self.ny:
            raise ValueError(
                f"The velocity has {u.shape[3]} points along y (axis 3), but y has {self.ny}."
            )
        if u.shape[0] == 0:
            raise ValueError("The batch of snapshots is empty.")
        if self.nx is not None and (u.shape[2], u.shape[4]) != (self.nx, self.nz):
            raise ValueError(
                f"The snapshots are on a {u.shape[2]}×{u.shape[4]} x–z grid, but earlier ones "
                f"were on {self.nx}×{self.nz}."
            )
        if not bool(torch.isfinite(u).all()):
            raise ValueError("The velocity contains NaN or infinite values.")

    def update(self, u: Any) -> None:
        """Add a batch of snapshots u (B, 3, nx, ny, nz), torch (any device) or numpy."""
        u = _as_tensor(u)
        self._check(u)
        u = u.to(torch.float64)
        if self.grid.flipped:
            u = torch.flip(u, dims=(3,))
        batch, _, nx, _, nz = u.shape
        plane = u.mean(dim=(2, 4))  # (B, 3, ny): p_s
        fluct = u - plane[:, :, None, :, None]
        within = torch.einsum("bixyz,bjxyz->ijy", fluct, fluct) / (nx * nz)
        spec_x = _line_spectra(fluct, dim=2).mean(dim=-1).sum(dim=0)  # (3, Kx, ny)
        spec_z = _line_spectra(fluct, dim=4).mean(dim=2).sum(dim=0)  # (3, ny, Kz)
        plane = plane.cpu().numpy()
        batch_mean = plane.mean(axis=0)
        dev = plane - batch_mean
        batch_between = np.einsum("biy,bjy->ijy", dev, dev)
        # Chan, Golub & LeVeque's pairwise update of (count, mean, M2).
        total = self.count + batch
        delta = batch_mean - self._mean
        self._between += batch_between + np.einsum("iy,jy->ijy", delta, delta) * (
            self.count * batch / total
        )
        self._mean += delta * (batch / total)
        self._within += within.cpu().numpy()
        if self._spec_x is None:
            self.nx, self.nz = nx, nz
            self._spec_x = np.zeros((3, self.ny, nx // 2 + 1))
            self._spec_z = np.zeros((3, self.ny, nz // 2 + 1))
        self._spec_x += spec_x.cpu().numpy().transpose(0, 2, 1)
        self._spec_z += spec_z.cpu().numpy()
        self.count = total

    def result(self) -> ChannelStatisticsResult:
        """The statistics of every snapshot added so far (ValueError if none, or if the mean
        wall shear is not positive, as for a flow at rest or in −x)."""
        if self.count == 0:
            raise ValueError("No snapshots have been added yet; call update() first.")
        n, ny, nu = self.count, self.ny, self.nu
        mean = self._mean
        cov = (self._within + self._between) / n  # ⟨u′_i u′_j⟩ (3, 3, ny)

        ext = self.grid.extended
        u_ext = mean[0] if self.grid.walls else np.concatenate([[0.0], mean[0], [0.0]])
        dudy_ext = derivative(u_ext, ext)
        tau_lower = nu * dudy_ext[0]
        tau_upper = -nu * dudy_ext[-1]
        tau = 0.5 * (tau_lower + tau_upper)
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(
                f"The mean wall shear stress is not positive (τ_w = {tau:.6g}); wall units need "
                "a mean flow in +x."
            )
        u_tau = math.sqrt(tau)
        dudy = dudy_ext if self.grid.walls else dudy_ext[1:-1]

        half = (ny + 1) // 2
        lower = np.arange(half)
        upper = ny - 1 - lower
        y = self.grid.y
        dist = 0.5 * ((1 + y[lower]) + (1 - y[upper]))

        def even(a: np.ndarray) -> np.ndarray:
            return 0.5 * (a[..., lower] + a[..., upper])

        def odd(a: np.ndarray) -> np.ndarray:
            return 0.5 * (a[..., lower] - a[..., upper])

        u_mean = even(mean[0])
        reynolds = -odd(cov[0, 1]) / tau
        viscous = nu * odd(dudy) / tau
        total = viscous + reynolds
        linear = 1.0 - dist
        deviation = total - linear

        bulk = 0.5 * float(quadrature_weights(ext) @ u_ext)
        centreline = _centreline(dist, u_mean)

        yplus = dist * u_tau / nu
        planes = np.array(
            [int(np.argmin(np.abs(yplus - t))) for t in self.spectra_at_yplus], dtype=int
        )
        spec_x = self._spec_x / n
        spec_z = self._spec_z / n
        # Zero bins: add the between-snapshot variance of the plane means (module docstring).
        between_var = np.einsum("iiy->iy", self._between) / n
        spec_x[:, :, 0] += between_var
        spec_z[:, :, 0] += between_var
        spec_x = even(spec_x.transpose(0, 2, 1)).transpose(0, 2, 1)  # (3, P, Kx)
        spec_z = even(spec_z.transpose(0, 2, 1)).transpose(0, 2, 1)

        return ChannelStatisticsResult(
            n_snapshots=n,
            nu=nu,
            lx=self.lx,
            lz=self.lz,
            u_tau=u_tau,
            re_tau=u_tau / nu,
            tau_wall=tau,
            tau_wall_lower=float(tau_lower),
            tau_wall_upper=float(tau_upper),
            bulk_u_plus=bulk / u_tau,
            centreline_u_plus=centreline / u_tau,
            stress_balance_error=float(np.abs(deviation).max()),
            y=dist,
            yplus=yplus,
            u_mean_plus=u_mean / u_tau,
            u_rms_plus=np.sqrt(even(cov[0, 0])) / u_tau,
            v_rms_plus=np.sqrt(even(cov[1, 1])) / u_tau,
            w_rms_plus=np.sqrt(even(cov[2, 2])) / u_tau,
            reynolds_stress_plus=reynolds,
            viscous_stress_plus=viscous,
            total_stress_plus=total,
            total_stress_linear=linear,
            total_stress_deviation=deviation,
            kx=2 * math.pi / self.lx * np.arange(self.nx // 2 + 1, dtype=np.float64),
            kz=2 * math.pi / self.lz * np.arange(self.nz // 2 + 1, dtype=np.float64),
            spectra_yplus_requested=self.spectra_at_yplus.copy(),
            spectra_yplus=yplus[planes],
            spectra_x=spec_x[:, planes].transpose(1, 0, 2).copy(),
            spectra_z=spec_z[:, planes].transpose(1, 0, 2).copy(),
        )


def _line_spectra(fluct: torch.Tensor, dim: int) -> torch.Tensor:
    """w_k |û_k|²/n² along ``dim`` (rfft; w_k = 2 except the mean and Nyquist modes), so the
    sum over k is the mean square along each line."""
    n = fluct.shape[dim]
    power = torch.fft.rfft(fluct, dim=dim).abs() ** 2 / float(n) ** 2
    weights = torch.full((n // 2 + 1,), 2.0, dtype=power.dtype, device=power.device)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    shape = [1] * power.ndim
    shape[dim] = n // 2 + 1
    return power * weights.reshape(shape)


def _centreline(dist: np.ndarray, u_mean: np.ndarray) -> float:
    """U at y = 0: the grid value there, else the even parabola U = a + b(1 − d)² through the
    two folded points nearest the centre (exact for a parabolic profile)."""
    if abs(1.0 - dist[-1]) <= _Y_TOL:
        return float(u_mean[-1])
    s1, s2 = (1.0 - dist[-1]) ** 2, (1.0 - dist[-2]) ** 2
    return float((u_mean[-1] * s2 - u_mean[-2] * s1) / (s2 - s1))


def snapshot_statistics(
    u: Any,
    y: Any,
    nu: float,
    lx: float,
    lz: float,
    spectra_at_yplus: Sequence[float] = (5, 15, 30, 100),
) -> ChannelStatisticsResult:
    """The statistics of one field (3, nx, ny, nz) or a batch (B, 3, nx, ny, nz) at once."""
    u = _as_tensor(u)
    if u.ndim == 4:
        u = u[None]
    stats = ChannelStatistics(y, nu, lx, lz, spectra_at_yplus)
    stats.update(u)
    return stats.result()
