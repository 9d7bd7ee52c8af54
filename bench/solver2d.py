"""The 2D vorticity solver against torch-cfd's spectral Navier–Stokes solver, step for step.

ours: ``physics.ns2d.VorticitySolver2D`` for the ``ns2d-forced`` flow, ``step(w_hat, dt)``
      in a loop, RK4–CN and CN–Heun (``Flow.make_solver(..., scheme="cnheun")``; in a
      checkout without that option the CN–Heun rows carry an "error" and no numbers).
peer: torch-cfd 0.2.6 ``NavierStokes2DSpectral`` with ``RK4CrankNicolsonStepper`` (against
      our RK4–CN) or its default ``IMEXStepper(order=2)`` (against our CN–Heun), advanced by
      its own ``forward(w_hat, dt, steps=K)``.

Both solve the same problem: [0, 1]², ν = 1e-3, no drag, vorticity forcing
0.1(sin 2π(x+y) + cos 2π(x+y)) (torch-cfd's ``SinCosForcing``), 2/3-rule dealiasing, the
same n×n grid, batch, dtype, Δt and number of steps, the state held as rfft2 coefficients
by both. torch-cfd puts x on the first axis and we put it on the last; the forcing is
symmetric in x and y, so the peer is given the transposed field, which is the same flow
(``agreement`` checks this before any timing). It builds its wavenumbers and forcing in
torch's default dtype, so each configuration runs with the default dtype set to its own.

floor_ms is the FFT floor of one of our steps: the 2D real FFTs a step makes (fft_count),
counted by intercepting torch's FFT ops while it runs (in units of one transform of a
(batch, n, n) real field; see _FFTCounter), times the time of one torch.fft.rfft2 or
irfft2 of that shape and dtype. It is measured as that many calls back to back, timed in
turn with the two solvers so that all three see the same load; rfft2_ms and irfft2_ms are
the medians of single calls, for reference.

    python bench/solver2d.py [--quick] [--device cpu|cuda] [--threads N] [--repeats R]

One JSON object per line per (grid, batch, dtype, scheme); ratio = ours_ms / peer_ms
(below 1: ours is faster), floor_ratio = ours_ms / floor_ms.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import inspect
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterator

import torch
from _timing import median_ms, ms_range, time_alternating
from torch.utils._python_dispatch import TorchDispatchMode

from physics.flows import Flow, get_flow
from physics.grid import Grid2D
from physics.ns2d.solver import VorticitySolver2D

PEER = "torch-cfd"
PEER_VERSION = "0.2.6"  # the version the issue names; the installed one is reported
FLOW = "ns2d-forced"
CONFIGS = ((64, 16), (256, 1), (256, 8), (512, 1))  # (n, batch)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
DT = 1e-4  # the FNO benchmark's step; far below the CFL step (~1e-2) of these fields
CHECK_STEPS = 10
# Relative L2 difference allowed between ours and the peer after CHECK_STEPS steps: a few
# hundred ulps of accumulated FFT round-off.
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
SCHEMES = {
    "rk4cn": "RK4CrankNicolsonStepper",
    "cnheun": "IMEXStepper(order=2)",
}


def _fft_kind(func) -> str | None:
    """'rfft', 'irfft' or 'cfft' for an aten FFT op (fft_rfft2 or, where the composite is
    decomposed before it reaches the mode, _fft_r2c), None for any other op."""
    name = func.__name__.split(".")[0]
    if name in ("_fft_r2c", "fft_rfft", "fft_rfft2", "fft_rfftn"):
        return "rfft"
    if name in ("_fft_c2r", "fft_irfft", "fft_irfft2", "fft_irfftn"):
        return "irfft"
    if name in ("_fft_c2c", "fft_fft", "fft_fft2", "fft_fftn", "fft_ifft", "fft_ifft2"):
        return "cfft"
    if name.startswith(("fft_", "_fft")) and "freq" not in name and "shift" not in name:
        raise RuntimeError(f"Unexpected FFT op {name}; teach _fft_kind about it.")
    return None


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# --- the two solvers -------------------------------------------------------------------------


def peer_version() -> str:
    try:
        return importlib.metadata.version(PEER)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            f"The peer is not installed: pip install --no-deps {PEER}=={PEER_VERSION} einops "
            "(--no-deps keeps pip from replacing torch; einops is the one dependency the "
            "modules used here import)."
        ) from None


def has_scheme_option() -> bool:
    """Whether this checkout's solver takes a time-stepping scheme (CN-Heun besides RK4-CN)."""
    return "scheme" in inspect.signature(Flow.make_solver).parameters


def make_ours(n: int, device: torch.device, dtype: torch.dtype, scheme: str) -> VorticitySolver2D:
    flow = get_flow(FLOW)
    if scheme == "rk4cn":
        return flow.make_solver(n, device, dtype)
    return flow.make_solver(n, device, dtype, scheme=scheme)


def make_peer(n: int, device: torch.device, scheme: str) -> torch.nn.Module:
    """torch-cfd's solver for the same problem; call inside ``default_dtype`` of the run."""
    from torch_cfd.forcings import SinCosForcing
    from torch_cfd.grids import Grid
    from torch_cfd.spectral import IMEXStepper, NavierStokes2DSpectral, RK4CrankNicolsonStepper

    flow = get_flow(FLOW)
    grid = Grid((n, n), domain=((0.0, flow.length), (0.0, flow.length)), device=device)
    forcing = SinCosForcing(grid=grid, scale=0.1, diam=flow.length, wave_number=1, vorticity=True)
    stepper = RK4CrankNicolsonStepper() if scheme == "rk4cn" else IMEXStepper(order=2)
    peer = NavierStokes2DSpectral(
        viscosity=flow.nu,
        grid=grid,
        drag=flow.drag,
        smooth=True,
        forcing_fn=forcing,
        step_fn=stepper,
    )
    return peer.to(device)


def initial_field(n: int, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A (batch, n, n) FNO-benchmark vorticity field, 2/3-rule truncated so that neither
    solver's dealiasing (ours truncates ω̂ before the product, torch-cfd only the product)
    changes it."""
    flow = get_flow(FLOW)
    w = flow.random_initial_condition(n, batch, seed=0, device=device, dtype=dtype)[:, 0]
    mask = Grid2D(n, flow.length).dealias_mask(device)
    return torch.fft.irfft2(torch.fft.rfft2(w) * mask, s=(n, n))


def run_ours(solver: VorticitySolver2D, w_hat: torch.Tensor, steps: int) -> torch.Tensor:
    for _ in range(steps):
        w_hat = solver.step(w_hat, DT)
    return w_hat


def run_peer(peer: torch.nn.Module, w_hat: torch.Tensor, steps: int) -> torch.Tensor:
    return peer(w_hat, DT, steps=steps)[0]


def agreement(ours, peer, n: int, w0: torch.Tensor) -> float:
    """Relative L2 difference of the two solvers' fields after CHECK_STEPS steps from w0."""
    mine = torch.fft.irfft2(run_ours(ours, torch.fft.rfft2(w0), CHECK_STEPS), s=(n, n))
    w0_t = w0.transpose(-1, -2).contiguous()
    theirs = torch.fft.irfft2(run_peer(peer, torch.fft.rfft2(w0_t), CHECK_STEPS), s=(n, n))
    theirs = theirs.transpose(-1, -2)
    return float(torch.linalg.vector_norm(mine - theirs) / torch.linalg.vector_norm(mine))


def check_agreement(ours, peer, n: int, w0: torch.Tensor) -> dict:
    """``agreement`` as row fields. Where torch-cfd's 2/3 filter differs from our mask (at
    512²: its brick_wall_filter_2d keeps the row ky = -floor(2n/3)/2 rounded down, one
    more than |ky| < n/3), the check is repeated with our mask in its filter, to show that
    this is the whole difference; the timed peer keeps its own filter."""
    dtype = w0.dtype
    rel_diff = agreement(ours, peer, n, w0)
    row = {
        "rel_diff_vs_peer": float(f"{rel_diff:.3g}"),
        "agrees": rel_diff <= TOLERANCE[dtype],
        "check_steps": CHECK_STEPS,
        "tolerance": TOLERANCE[dtype],
    }
    ours_mask = ours.grid.dealias_mask(peer.filter.device).to(peer.filter.dtype)
    if not torch.equal(peer.filter, ours_mask):
        extra = int((peer.filter > ours_mask).sum())
        missing = int((peer.filter < ours_mask).sum())
        shipped = peer.filter.clone()
        peer.filter.copy_(ours_mask)
        same_mask = agreement(ours, peer, n, w0)
        peer.filter.copy_(shipped)
        row.update(
            rel_diff_vs_peer_with_our_mask=float(f"{same_mask:.3g}"),
            agrees_with_our_mask=same_mask <= TOLERANCE[dtype],
            note=(
                f"torch-cfd's 2/3 filter keeps {extra} modes our mask drops and drops "
                f"{missing} it keeps; rel_diff_vs_peer_with_our_mask repeats the check "
                "with our mask in its filter"
            ),
        )
    return row


# --- the FFT floor ---------------------------------------------------------------------------


class _FFTCounter(TorchDispatchMode):
    """Counts FFT ops while it is active. The mode sees each op once, at the outermost
    level that reaches it (the op runs with the mode disabled).

    ``units['rfft']`` and ``units['irfft']`` count real-to-complex and complex-to-real
    transforms in units of one (batch, n, n) real field. A 2D real transform has exactly one
    such pass, whether it is one rfft2/irfft2 call or a 1D rfft/irfft along x with a complex
    FFT along y, so their sum is the number of 2D real FFTs. ``units['cfft']`` counts the
    complex-to-complex passes (in complex points per batch·n²), for information.
    """

    def __init__(self, points: int) -> None:
        super().__init__()
        self.points = points
        self.units = {"rfft": 0.0, "irfft": 0.0, "cfft": 0.0}
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kind = _fft_kind(func)
        if kind is not None:
            real_side = args[0] if kind == "rfft" else out
            self.units[kind] += real_side.numel() / self.points
            self.calls += 1
        return out


def count_ffts(step: Callable[[], object], points: int) -> _FFTCounter:
    counter = _FFTCounter(points)
    with counter:
        step()
    return counter


def fft_times(
    n: int, batch: int, device: torch.device, dtype: torch.dtype, quick: bool
) -> tuple[float, float]:
    """Median ms of one rfft2 and one irfft2 of a (batch, n, n) field."""
    w = torch.randn(batch, n, n, device=device, dtype=dtype)
    w_hat = torch.fft.rfft2(w)
    calls, seconds = (20, 0.1) if quick else (50, 0.3)
    rfft = median_ms(lambda: torch.fft.rfft2(w), device, calls, seconds)
    irfft = median_ms(lambda: torch.fft.irfft2(w_hat, s=(n, n)), device, calls, seconds)
    return rfft, irfft


# --- timing ----------------------------------------------------------------------------------


def fft_floor_run(
    counter: _FFTCounter, n: int, batch: int, device: torch.device, dtype: torch.dtype
) -> Callable[[int], object]:
    """A run whose "step" is the counted FFTs of one of our steps and nothing else: as many
    rfft2 and irfft2 calls of a (batch, n, n) field, back to back."""
    rffts, irffts = round(counter.units["rfft"]), round(counter.units["irfft"])
    w = torch.randn(batch, n, n, device=device, dtype=dtype)
    w_hat = torch.fft.rfft2(w)

    def run(steps: int) -> None:
        for _ in range(steps):
            for _ in range(irffts):
                torch.fft.irfft2(w_hat, s=(n, n))
            for _ in range(rffts):
                torch.fft.rfft2(w)

    return run


def benchmark(
    n: int,
    batch: int,
    dtype_name: str,
    scheme: str,
    device: torch.device,
    args: argparse.Namespace,
) -> dict:
    dtype = DTYPES[dtype_name]
    name = f"ns2d_{scheme}_{n}x{n}_b{batch}_{dtype_name}"
    peer_label = f"{PEER} {peer_version()} NavierStokes2DSpectral + {SCHEMES[scheme]}"
    row: dict = {"name": name, "peer": peer_label}
    if scheme != "rk4cn" and not has_scheme_option():
        row.update(ours_ms=None, peer_ms=None, ratio=None)
        row["error"] = (
            f"not measured: Flow.make_solver has no scheme={scheme!r} option in this "
            "checkout (only RK4-CN); no number is given rather than a stand-in"
        )
        return row
    with default_dtype(dtype), torch.inference_mode():
        ours = make_ours(n, device, dtype, scheme)
        peer = make_peer(n, device, scheme)
        check = check_agreement(ours, peer, n, initial_field(n, min(batch, 2), device, dtype))

        w0 = initial_field(n, batch, device, dtype)
        ours_state = torch.fft.rfft2(w0)
        peer_state = torch.fft.rfft2(w0.transpose(-1, -2).contiguous())
        points = batch * n * n
        ours_fft = count_ffts(lambda: ours.step(ours_state, DT), points)
        peer_fft = count_ffts(lambda: run_peer(peer, peer_state, 1), points)
        rfft_ms, irfft_ms = fft_times(n, batch, device, dtype, args.quick)
        times = time_alternating(
            {
                "ours": lambda k: run_ours(ours, ours_state, k),
                "peer": lambda k: run_peer(peer, peer_state, k),
                "floor": fft_floor_run(ours_fft, n, batch, device, dtype),
            },
            device,
            args.repeats,
            args.repeat_s,
            warmup=2,
            min_steps=2,
        )
    ours_runs, peer_runs = times["ours"], times["peer"]
    ours_ms = statistics.median(ours_runs)
    peer_ms = statistics.median(peer_runs)
    floor_ms = statistics.median(times["floor"])
    fft_count = ours_fft.units["rfft"] + ours_fft.units["irfft"]
    row.update(
        ours_ms=round(ours_ms, 3),
        peer_ms=round(peer_ms, 3),
        ratio=round(ours_ms / peer_ms, 3),
        floor_ms=round(floor_ms, 3),
        floor_ratio=round(ours_ms / floor_ms, 3),
        fft_count=round(fft_count, 3),
        fft_calls=ours_fft.calls,
        c2c_pass_units=round(ours_fft.units["cfft"], 3),
        rfft2_ms=round(rfft_ms, 4),
        irfft2_ms=round(irfft_ms, 4),
        peer_fft_count=round(peer_fft.units["rfft"] + peer_fft.units["irfft"], 3),
        ours_points_steps_per_s=round(points / (ours_ms * 1e-3)),
        peer_points_steps_per_s=round(points / (peer_ms * 1e-3)),
        floor_ms_range=ms_range(times["floor"]),
        ours_ms_range=ms_range(ours_runs),
        peer_ms_range=ms_range(peer_runs),
        repeats=len(ours_runs),
        **check,
        n=n,
        batch=batch,
        dtype=dtype_name,
        dt=DT,
        device=str(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="torch CPU threads (default: half the cores, as the workers use; %(default)s here)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per solver")
    parser.add_argument("--repeat-s", type=float, default=None, help="seconds per repeat")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    parser.add_argument(
        "--configs",
        nargs="+",
        default=[f"{n}x{batch}" for n, batch in CONFIGS],
        help="grid and batch as NxB (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.repeat_s is None:
        args.repeat_s = 0.1 if args.quick else 0.3
    version = peer_version()
    if version != PEER_VERSION:
        print(
            f"warning: {PEER} {version} is installed; the issue names {PEER_VERSION}.",
            file=sys.stderr,
        )
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here.")
    for scheme in args.schemes:
        for config in args.configs:
            n, batch = (int(part) for part in config.split("x"))
            for dtype_name in args.dtypes:
                row = benchmark(n, batch, dtype_name, scheme, device, args)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
