"""The grid of a plane channel: periodic in x and z, walls at y = ±1, staggered in y.

Layout. Fields are tensors (..., nx, ny, nz): x on the third-to-last axis, y on the second-
to-last, z on the last. x and z are uniform and periodic, x_i = i·Lx/nx, z_k = k·Lz/nz. In
y the channel is cut into ny cells by ny + 1 faces, tanh-stretched towards the walls,

    y_f[j] = tanh(γ (2j/ny − 1)) / tanh(γ),   j = 0, …, ny     (y_f[0] = −1, y_f[ny] = +1),

(uniform for γ = 0), with cell heights Δy_j = y_f[j+1] − y_f[j] and cell centres
y_c[j] = (y_f[j] + y_f[j+1])/2 halfway between their faces.

Staggering (MAC in y). u, w and the pressure live at the cell centres y_c[j], j = 0, …, ny−1;
the wall-normal velocity v lives at the faces, stored with the cell below: v[..., j, :] is
v at y_f[j], the lower face of cell j, so v[..., 0, :] is the lower wall (always zero) and the
upper wall y_f[ny] (also zero) is not stored. Every component then has ny points in y and a
velocity is one tensor (B, 3, nx, ny, nz). The divergence of a cell,

    (D u)_j = ∂u_j/∂x + (v_{j+1} − v_j)/Δy_j + ∂w_j/∂z,

and the pressure gradient at an interior face, (p_j − p_{j−1})/(y_c[j] − y_c[j−1]), couple
neighbouring points only, so the pressure Laplacian D G is a compact 3-point operator with
no odd–even (checkerboard) decoupling, which a collocated grid would have.

Wall-normal operators are 3-band stencils (``Stencil``) along the y axis, second order on a
smoothly stretched grid (a smooth map y(ξ) makes neighbouring spacings differ by O(Δξ²)):
the 3-point Lagrange first and second derivatives on the non-uniform points (exact for
quadratics, so a Poiseuille parabola is differentiated exactly), the compact face ↔ centre
differences of D and G, and interpolations between centres and faces. Operators at the centres
take the no-slip value 0 at the walls as their missing neighbour.

In x and z the fields are Fourier series: ``rfft`` transforms (…, nx, ny, nz) to
(…, nx, ny, nz//2+1) (forward-normalised: the (0, 0) coefficient is the x–z mean), with the
angular wavenumbers of ``wavenumbers`` and Orszag's 2/3-rule mask of ``dealias_mask``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

F64 = torch.float64


def apply_bands(bands: tuple[torch.Tensor, ...], f: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """lower_j f_{j−1} + diag_j f_j + upper_j f_{j+1} along ``dim`` (< 0) of f, with bands
    already shaped to broadcast (``Stencil.bands``) and f beyond the ends taken as zero."""
    lower, diag, upper = bands
    n = f.shape[dim]
    out = f * diag
    out.narrow(dim, 1, n - 1).addcmul_(lower.narrow(dim, 1, n - 1), f.narrow(dim, 0, n - 1))
    out.narrow(dim, 0, n - 1).addcmul_(upper.narrow(dim, 0, n - 1), f.narrow(dim, 1, n - 1))
    return out


class Stencil:
    """A linear operator along the y axis (dim −2 unless told) with three bands:

        (A f)_j = lower_j f_{j−1} + diag_j f_j + upper_j f_{j+1},

    where f_{−1} and f_{ny} are taken as zero (the wall value, for operators that need one).
    Bands are float64 (ny,) tensors; ``apply`` casts them to the field's device and dtype
    (cached), and works on real or complex fields (..., ny, m).
    """

    def __init__(self, lower: torch.Tensor, diag: torch.Tensor, upper: torch.Tensor) -> None:
        self.lower = lower.to(F64).clone()
        self.diag = diag.to(F64).clone()
        self.upper = upper.to(F64).clone()
        self.lower[0] = 0.0
        self.upper[-1] = 0.0
        self._cast: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def bands(
        self, device: Any = None, dtype: torch.dtype = F64, dim: int = -2
    ) -> tuple[torch.Tensor, ...]:
        """(lower, diag, upper) shaped (ny, 1, …) to broadcast along ``dim`` (< 0) of a field,
        on ``device`` in ``dtype`` (cached)."""
        key = (torch.device(device or "cpu"), dtype, dim)
        if key not in self._cast:
            shape = (-1,) + (1,) * (-dim - 1)
            self._cast[key] = tuple(
                b.to(device=key[0], dtype=dtype).reshape(shape)
                for b in (self.lower, self.diag, self.upper)
            )
        return self._cast[key]

    def apply(self, f: torch.Tensor, dim: int = -2) -> torch.Tensor:
        """A f along the y axis ``dim`` (< 0) of f: (..., ny, m) by default."""
        lower, diag, upper = self.bands(f.device, f.real.dtype, dim)
        return apply_bands((lower, diag, upper), f, dim)

    def matrix(self) -> torch.Tensor:
        """The dense (ny, ny) float64 matrix, for tests and small problems."""
        return (
            torch.diag(self.diag) + torch.diag(self.lower[1:], -1) + torch.diag(self.upper[:-1], 1)
        )


@dataclass(frozen=True)
class TridiagonalFactors:
    """The Thomas-algorithm factorisation of tridiagonal systems along ``dim`` (see
    ``factor_tridiagonal``): a_j m_j, c′_j and m_j, each shaped like the bands."""

    lower_scaled: torch.Tensor
    upper_eliminated: torch.Tensor
    inverse_pivot: torch.Tensor
    dim: int = -2


def factor_tridiagonal(
    lower: torch.Tensor,
    diag: torch.Tensor,
    upper: torch.Tensor,
    dtype: torch.dtype = F64,
    dim: int = -2,
) -> TridiagonalFactors:
    """Factor a batch of tridiagonal systems A x = d, bands (..., n, ...) along ``dim`` (< 0).

    Gaussian elimination without pivoting (the Thomas algorithm), fine for the diagonally
    dominant Helmholtz and the pinned Poisson matrices solved here: with m_0 = 1/b_0,
    c′_0 = c_0 m_0 and, for j ≥ 1, m_j = 1/(b_j − a_j c′_{j−1}), c′_j = c_j m_j. The
    elimination runs in float64 (on the bands' device) and the factors are cast to ``dtype``.
    """
    a, b, c = (t.to(F64).movedim(dim, 0) for t in torch.broadcast_tensors(lower, diag, upper))
    m = torch.empty_like(b)
    cp = torch.empty_like(b)
    m[0] = 1 / b[0]
    cp[0] = c[0] * m[0]
    for j in range(1, b.shape[0]):
        m[j] = 1 / (b[j] - a[j] * cp[j - 1])
        cp[j] = c[j] * m[j]
    factors = (t.movedim(0, dim).to(dtype).contiguous() for t in (a * m, cp, m))
    return TridiagonalFactors(*factors, dim=dim)


def solve_tridiagonal(factors: TridiagonalFactors, rhs: torch.Tensor) -> torch.Tensor:
    """x = A⁻¹ d for the factored systems, d real or complex, broadcast against the factors;
    a new tensor.

    Forward sweep d′_j = d_j m_j − (a_j m_j) d′_{j−1}, back substitution
    x_j = d′_j − c′_j x_{j+1}: 2n small vectorised operations over all other axes (fastest
    when ``dim`` is not the last axis, so that each row is a contiguous block).
    """
    x = rhs * factors.inverse_pivot
    am, cp, dim = factors.lower_scaled, factors.upper_eliminated, factors.dim
    if x.is_complex():  # the real and imaginary parts share the (real) factors
        work, am, cp, dim = torch.view_as_real(x), am[..., None], cp[..., None], dim - 1
    else:
        work = x
    n = work.shape[dim]
    for j in range(1, n):
        work.select(dim, j).addcmul_(am.select(dim, j), work.select(dim, j - 1), value=-1)
    for j in range(n - 2, -1, -1):
        work.select(dim, j).addcmul_(cp.select(dim, j), work.select(dim, j + 1), value=-1)
    return x


def _lagrange_bands(
    points: torch.Tensor, below: torch.Tensor, above: torch.Tensor
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """First- and second-derivative weights of the parabola through (below, point, above).

    With h₋ = y − y₋, h₊ = y₊ − y:
        f′  ≈ −h₊/(h₋(h₋+h₊)) f₋ + (h₊ − h₋)/(h₋h₊) f + h₋/(h₊(h₋+h₊)) f₊,
        f″ ≈ 2/(h₋(h₋+h₊)) f₋ − 2/(h₋h₊) f + 2/(h₊(h₋+h₊)) f₊.
    """
    hm, hp = points - below, above - points
    first = (-hp / (hm * (hm + hp)), (hp - hm) / (hm * hp), hm / (hp * (hm + hp)))
    second = (2 / (hm * (hm + hp)), -2 / (hm * hp), 2 / (hp * (hm + hp)))
    return first, second


@dataclass(frozen=True)
class ChannelGrid:
    """A channel box [0, lx) × [−1, 1] × [0, lz) with nx × ny × nz points (see the module
    docstring for the staggered layout); ``stretching`` is γ of the tanh map (0: uniform)."""

    nx: int
    ny: int
    nz: int
    lx: float = 4 * math.pi
    lz: float = 4 * math.pi / 3
    stretching: float = 2.0
    _ops: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.nx < 4 or self.nz < 4:
            raise ValueError(f"nx and nz must be at least 4; got nx={self.nx}, nz={self.nz}.")
        if self.ny < 4:
            raise ValueError(f"ny must be at least 4 cells; got ny={self.ny}.")
        if not (self.lx > 0 and self.lz > 0):
            raise ValueError(f"lx and lz must be positive; got lx={self.lx}, lz={self.lz}.")
        if not (self.stretching >= 0 and math.isfinite(self.stretching)):
            raise ValueError(f"The stretching γ must be ≥ 0; got {self.stretching}.")

    # -- coordinates -------------------------------------------------------------------------

    @property
    def dx(self) -> float:
        return self.lx / self.nx

    @property
    def dz(self) -> float:
        return self.lz / self.nz

    @property
    def nz_rfft(self) -> int:
        return self.nz // 2 + 1

    def _cached(self, name: str, make) -> Any:
        if name not in self._ops:
            self._ops[name] = make()
        return self._ops[name]

    @property
    def y_faces(self) -> torch.Tensor:
        """Face coordinates y_f (ny+1,), float64, from −1 to 1."""

        def make() -> torch.Tensor:
            xi = torch.linspace(-1.0, 1.0, self.ny + 1, dtype=F64)
            if self.stretching == 0:
                y = xi
            else:
                y = torch.tanh(self.stretching * xi) / math.tanh(self.stretching)
            return 0.5 * (y - y.flip(0))  # exactly antisymmetric, ends exactly ∓1

        return self._cached("y_faces", make)

    @property
    def y_centres(self) -> torch.Tensor:
        """Cell-centre coordinates y_c (ny,), float64: where u, w and p live."""
        yf = self.y_faces
        return self._cached("y_centres", lambda: 0.5 * (yf[1:] + yf[:-1]))

    @property
    def dy(self) -> torch.Tensor:
        """Cell heights Δy_j = y_f[j+1] − y_f[j] (ny,), float64."""
        yf = self.y_faces
        return self._cached("dy", lambda: yf[1:] - yf[:-1])

    def coordinates(
        self, device: Any = None, dtype: torch.dtype = F64
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """1D coordinates (x (nx,), y_c (ny,), y_f (ny,), z (nz,)); y_f holds the faces that v
        is stored at (y_f[0] = −1, …, y_f[ny−1]; the upper wall is not stored)."""
        x = torch.arange(self.nx, dtype=F64) * self.dx
        z = torch.arange(self.nz, dtype=F64) * self.dz
        return tuple(
            t.to(device=device, dtype=dtype) for t in (x, self.y_centres, self.y_faces[:-1], z)
        )

    def wall_distance(self) -> torch.Tensor:
        """1 − |y_c| (ny,), float64: the distance of each centre from the nearer wall."""
        return 1 - self.y_centres.abs()

    def filter_width(self) -> torch.Tensor:
        """The LES filter width Δ_j = (Δx Δy_j Δz)^(1/3) at the centres (ny,), float64."""
        return (self.dx * self.dy * self.dz) ** (1 / 3)

    # -- Fourier directions ------------------------------------------------------------------

    def integer_wavenumbers(
        self, device: Any = None, y_dim: int = -2
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer wavenumbers (mx, mz), int64, shaped to broadcast against ``rfft`` spectra:
        (nx, 1, 1) and (1, 1, nz//2+1) for the (…, nx, ny, nzr) layout (``y_dim`` = −2), or
        (nx, 1) and (1, nz//2+1) for a y-first layout (…, ny, nx, nzr) (``y_dim`` = −3)."""
        mx = torch.fft.fftfreq(self.nx, d=1.0 / self.nx, device=device).round().long()
        mz = torch.arange(self.nz_rfft, device=device)
        if y_dim == -3:
            return mx[:, None], mz[None, :]
        return mx[:, None, None], mz[None, None, :]

    def wavenumbers(
        self, device: Any = None, dtype: torch.dtype = F64, y_dim: int = -2
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Angular wavenumbers (kx, kz) for first derivatives (``integer_wavenumbers``
        shapes), with the Nyquist entries of even nx, nz set to zero (their derivative is not
        resolved)."""
        mx, mz = self.integer_wavenumbers(device, y_dim)
        kx = mx.to(dtype) * (2 * math.pi / self.lx)
        kz = mz.to(dtype) * (2 * math.pi / self.lz)
        if self.nx % 2 == 0:
            kx = torch.where(mx.abs() == self.nx // 2, 0, kx)
        if self.nz % 2 == 0:
            kz = torch.where(mz == self.nz // 2, 0, kz)
        return kx, kz

    def dealias_mask(self, device: Any = None, ratio: float = 1.0, y_dim: int = -2) -> torch.Tensor:
        """The 2/3-rule mask, bool (``integer_wavenumbers`` shapes): keeps |mx| < nx/3 and
        |mz| < nz/3.

        ``ratio`` > 1 narrows the band to |m| < n/(3·ratio) (a sharp test filter of width
        ratio·Δ for the dynamic model)."""
        mx, mz = self.integer_wavenumbers(device, y_dim)
        return (3 * ratio * mx.abs() < self.nx) & (3 * ratio * mz < self.nz)

    def rfft(self, f: torch.Tensor, y_dim: int = -2) -> torch.Tensor:
        """Forward-normalised real FFT over x and z: (…, nx, ny, nz) → (…, nx, ny, nz//2+1)
        (or (…, ny, nx, nz) → (…, ny, nx, nz//2+1) for ``y_dim`` = −3)."""
        return torch.fft.rfftn(f, dim=(-3 if y_dim == -2 else -2, -1), norm="forward")

    def irfft(self, f_hat: torch.Tensor, y_dim: int = -2) -> torch.Tensor:
        """Inverse of ``rfft``."""
        dims = (-3 if y_dim == -2 else -2, -1)
        return torch.fft.irfftn(f_hat, s=(self.nx, self.nz), dim=dims, norm="forward")

    # -- wall-normal stencils ----------------------------------------------------------------

    def _stencil(self, name: str) -> Stencil:
        def make() -> Stencil:
            ny, yc, yf, dy = self.ny, self.y_centres, self.y_faces, self.dy
            zeros = torch.zeros(ny, dtype=F64)
            if name == "faces_to_centres":  # ½(f_j + f_{j+1})
                return Stencil(zeros, zeros + 0.5, zeros + 0.5)
            if name == "ddy_faces_to_centres":  # (f_{j+1} − f_j)/Δy_j
                return Stencil(zeros, -1 / dy, 1 / dy)
            h = torch.cat([torch.ones(1, dtype=F64), yc[1:] - yc[:-1]])  # h_j, j ≥ 1
            if name == "ddy_centres_to_faces":  # (q_j − q_{j−1})/h_j, 0 at the wall face
                diag = 1 / h
                diag[0] = 0.0
                return Stencil(-1 / h, diag, zeros)
            if name.startswith("centres_to_faces"):  # w₋ q_{j−1} + w₊ q_j, 0 at the wall face
                below = torch.cat([zeros[:1], dy[:-1]])  # Δy_{j−1}
                total = below + dy
                if name.endswith("arithmetic"):
                    lo, di = zeros + 0.5, zeros + 0.5
                elif name.endswith("volume"):
                    lo, di = below / total, dy / total
                else:  # linear interpolation: exact for linear functions
                    lo, di = dy / total, below / total
                di = di.clone()
                di[0] = 0.0
                return Stencil(lo, di, zeros)
            if name == "pressure_laplacian":  # D_y G_y with zero flux through the walls
                lower = torch.zeros(ny, dtype=F64)
                upper = torch.zeros(ny, dtype=F64)
                lower[1:] = 1 / (dy[1:] * h[1:])
                upper[:-1] = 1 / (dy[:-1] * h[1:])
                return Stencil(lower, -(lower + upper), upper)
            if name in ("ddy_centres", "d2dy2_centres"):
                below = torch.cat([yf[:1], yc[:-1]])  # the wall −1 below the first centre
                above = torch.cat([yc[1:], yf[-1:]])
                first, second = _lagrange_bands(yc, below, above)
                return Stencil(*(first if name == "ddy_centres" else second))
            if name == "d2dy2_faces":
                points = yf[:-1]
                below = torch.cat([yf[:1] - 1.0, yf[:-2]])  # row 0 (the wall) is dropped
                above = yf[1:]
                _, (lo, di, up) = _lagrange_bands(points, below, above)
                lo, di, up = lo.clone(), di.clone(), up.clone()
                lo[:2] = 0.0  # row 1's lower neighbour is the wall, where v = 0
                di[0] = up[0] = 0.0
                return Stencil(lo, di, up)
            raise KeyError(name)

        return self._cached(f"stencil:{name}", make)

    @property
    def faces_to_centres(self) -> Stencil:
        """Face values to centres, ½(f_j + f_{j+1}) (f = 0 at the upper wall)."""
        return self._stencil("faces_to_centres")

    @property
    def ddy_faces_to_centres(self) -> Stencil:
        """∂/∂y of face values at the centres, (f_{j+1} − f_j)/Δy_j: the y part of D."""
        return self._stencil("ddy_faces_to_centres")

    @property
    def ddy_centres_to_faces(self) -> Stencil:
        """∂/∂y of centre values at the interior faces, (q_j − q_{j−1})/(y_c[j] − y_c[j−1]):
        the y part of G; row 0 (the wall face) is zero."""
        return self._stencil("ddy_centres_to_faces")

    def centres_to_faces(self, weights: str = "linear") -> Stencil:
        """Centre values to the interior faces, w₋ q_{j−1} + w₊ q_j; 0 at the wall face.

        ``weights``: "linear" (interpolation, w₋ = Δy_j/(Δy_{j−1}+Δy_j)), "arithmetic" (½, ½)
        or "volume" (w₋ = Δy_{j−1}/(Δy_{j−1}+Δy_j): the x–z mass flux through the sides of
        the v control volume, which spans half of each neighbouring cell). All three are
        second order on a smoothly stretched grid.
        """
        if weights not in ("linear", "arithmetic", "volume"):
            raise ValueError(f"Unknown interpolation weights {weights!r}.")
        return self._stencil(f"centres_to_faces_{weights}")

    @property
    def ddy_centres(self) -> Stencil:
        """∂/∂y at the centres (3-point Lagrange; the wall, value 0, closes the end rows)."""
        return self._stencil("ddy_centres")

    @property
    def d2dy2_centres(self) -> Stencil:
        """∂²/∂y² at the centres (3-point Lagrange, exact for quadratics; wall value 0)."""
        return self._stencil("d2dy2_centres")

    @property
    def d2dy2_faces(self) -> Stencil:
        """∂²/∂y² at the interior faces (3-point Lagrange; wall values 0); row 0 is zero."""
        return self._stencil("d2dy2_faces")

    @property
    def pressure_laplacian(self) -> Stencil:
        """The y part of D G at the centres, (1/Δy_j)[(p_{j+1}−p_j)/h_{j+1} − (p_j−p_{j−1})/h_j],
        with no flux through the walls (G is zero at the wall faces)."""
        return self._stencil("pressure_laplacian")

    # -- profiles ----------------------------------------------------------------------------

    def wall_derivatives(self, profile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dq/dy at the lower and upper wall of centre profiles (..., ny) that vanish at the
        walls: the derivative of the parabola through the wall and the two nearest centres
        (exact for quadratics). Returns two tensors (...)."""
        yc = self.y_centres
        s1, s2 = float(yc[0] + 1), float(yc[1] + 1)
        w1, w2 = s2 / (s1 * (s2 - s1)), -s1 / (s2 * (s2 - s1))
        lower = w1 * profile[..., 0] + w2 * profile[..., 1]
        upper = -(w1 * profile[..., -1] + w2 * profile[..., -2])
        return lower, upper

    def bulk_mean(self, profile: torch.Tensor) -> torch.Tensor:
        """(1/2) Σ_j q_j Δy_j, the midpoint-rule mean over −1 < y < 1 of centre profiles
        (..., ny)."""
        dy = self.dy.to(device=profile.device, dtype=profile.dtype)
        return 0.5 * (profile * dy).sum(-1)

    # -- fields ------------------------------------------------------------------------------

    def to_centres(self, u: torch.Tensor) -> torch.Tensor:
        """A velocity (…, 3, nx, ny, nz) with v interpolated from the faces to the centres, so
        that all three components share the points y_c (e.g. for statistics)."""
        v = self.faces_to_centres.apply(u[..., 1, :, :, :])
        return torch.stack([u[..., 0, :, :, :], v, u[..., 2, :, :, :]], dim=-4)

    def velocity_gradient(self, u: torch.Tensor) -> torch.Tensor:
        """∂u_i/∂x_j at the cell centres, (…, 3, 3, nx, ny, nz), of a staggered velocity."""
        return self.irfft(self.velocity_gradient_hat(self.rfft(u)))

    def velocity_gradient_hat(self, u_hat: torch.Tensor, y_dim: int = -2) -> torch.Tensor:
        """The ``rfft`` of ``velocity_gradient`` from the ``rfft`` of the velocity,
        (…, 3, nx, ny, nz//2+1) → (…, 3, 3, nx, ny, nz//2+1) (y-first with ``y_dim`` = −3).

        x and z derivatives are spectral; ∂u/∂y, ∂w/∂y use ``ddy_centres``; ∂v/∂y is the y part
        of the divergence, (v_{j+1} − v_j)/Δy_j, so the trace is the discrete divergence;
        ∂v/∂x and ∂v/∂z are taken at the faces and averaged to the centres.
        """
        kx, kz = self.wavenumbers(u_hat.device, u_hat.real.dtype, y_dim)
        ikx, ikz = 1j * kx, 1j * kz
        u, v, w = u_hat.unbind(-4)
        c, ddy = self.faces_to_centres, self.ddy_centres
        rows = [
            [ikx * u, ddy.apply(u, y_dim), ikz * u],
            [
                c.apply(ikx * v, y_dim),
                self.ddy_faces_to_centres.apply(v, y_dim),
                c.apply(ikz * v, y_dim),
            ],
            [ikx * w, ddy.apply(w, y_dim), ikz * w],
        ]
        return torch.stack([torch.stack(r, dim=-4) for r in rows], dim=-5)


def interpolate_y(
    values: torch.Tensor, y_from: Any, y_to: Any, dim: int = -2, walls: bool = True
) -> torch.Tensor:
    """Values at the wall-normal points ``y_from`` (n,) to the points ``y_to`` (m,) along the
    y axis ``dim`` of ``values``, both strictly increasing inside [−1, 1]; float64 weights,
    the result in ``values``' dtype.

    Piecewise cubic Lagrange: each target takes the parabola-plus-cubic through the four
    nodes nearest its interval (exact for cubics, so a Poiseuille parabola 1 − y² comes
    through to rounding). With ``walls`` the walls y = ±1 join the nodes with the no-slip
    value 0 (unless ``y_from`` already holds them), so nothing is extrapolated and the
    result goes to the wall value where the solver's first centre sits. The operator is one
    linear map in y, the same for every component and every (x, z) column, so it commutes
    with ∂/∂x and ∂/∂z; the divergence of the result is that of the input up to the
    interpolation error of ∂v/∂y (O(h³) for smooth fields), and an x–z mean that vanishes at
    every input point (v of a divergence-free field between walls) vanishes at every target.
    """
    nodes = torch.as_tensor(y_from, dtype=F64).flatten()
    targets = torch.as_tensor(y_to, dtype=F64).flatten()
    lower = upper = False
    if walls:
        lower, upper = bool(nodes[0] > -1 + 1e-12), bool(nodes[-1] < 1 - 1e-12)
        nodes = torch.cat(
            [nodes.new_tensor([-1.0])[:lower], nodes, nodes.new_tensor([1.0])[:upper]]
        )
    n = nodes.numel()
    if n < 2 or not bool((nodes[1:] > nodes[:-1]).all()):
        raise ValueError("interpolate_y needs at least 2 strictly increasing points.")
    if bool((targets < nodes[0] - 1e-12).any() or (targets > nodes[-1] + 1e-12).any()):
        raise ValueError("interpolate_y does not extrapolate beyond the first and last points.")
    width = min(4, n)
    cell = (torch.searchsorted(nodes, targets, right=True) - 1).clamp(0, n - 2)
    start = (cell - (width // 2 - 1)).clamp(0, n - width)
    index = start[:, None] + torch.arange(width)  # (m, width) node indices
    xs = nodes[index]
    weights = torch.ones_like(xs)
    for i in range(width):
        for k in range(width):
            if k != i:
                weights[:, i] *= (targets - xs[:, k]) / (xs[:, i] - xs[:, k])
    matrix = torch.zeros(targets.numel(), n, dtype=F64)
    matrix.scatter_add_(1, index, weights)
    if lower:
        matrix = matrix[:, 1:]  # the wall node's value is 0
    if upper:
        matrix = matrix[:, :-1]
    moved = values.movedim(dim, -1)
    out = moved.to(F64) @ matrix.to(values.device).T
    return out.to(values.dtype).movedim(-1, dim)
