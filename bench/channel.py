"""Channel flow at Re_τ = 180: coarse LES with each closure against the DNS of Moser, Kim &
Mansour (1999).

For each closure (and for no model, a coarse DNS) on the same coarse grid (32 × 49 × 32 in
a 4π × 2 × 4π/3 box by default) the run starts from a turbulent-like mean profile with
divergence-free perturbations (``ChannelSolver.initial_condition``), spins up for
``--spinup`` time units (h/u_τ), then samples a snapshot every ``--sample`` time units for
``--average`` time units into ``physics.channel.stats.ChannelStatistics`` (x, z, time and
both halves averaged; wall units from the measured friction velocity).

One JSON object per line per run:

    name, closure, drive, grid, dtype, device, threads,
    re_tau, centreline_u_plus, bulk_u_plus, peak_u_rms_plus, peak_u_rms_yplus,
    stress_balance_error (max |τ⁺_total − (1 − y)|, 0 for a converged steady state),
    re_tau_first_half, re_tau_second_half (drift: the two halves of the average),
    ref_* (MKM 1999 at Re_τ = 180) and err_* (relative errors against them),
    ms_per_step (ours_ms), s_per_flow_through (Lx/U_b of time), dt_mean, steps,
    peer / peer_ms / ratio: the no-model step on the same state, timed in the same process
        (the closure's cost relative to coarse DNS; 1 for the no-model row).

    python bench/channel.py --quick                       # smoke run, a few hundred steps
    python bench/channel.py                               # all closures, 30 + 70 time units
    python bench/channel.py --closure wale --drive flow_rate --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time

import numpy as np
import torch

from physics.channel.les import get_closure
from physics.channel.solver import ChannelConfig, ChannelSolver
from physics.channel.stats import MKM_RE180, ChannelStatistics

CLOSURES = ("none", "smagorinsky", "wale", "dynamic")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 0.5 + 1 time units")
    p.add_argument("--closure", nargs="+", choices=CLOSURES, default=list(CLOSURES))
    p.add_argument("--spinup", type=float, default=30.0, help="time units before averaging")
    p.add_argument("--average", type=float, default=70.0, help="time units of averaging")
    p.add_argument("--sample", type=float, default=0.5, help="time units between snapshots")
    p.add_argument("--steps", type=int, default=40, help="steps of the interleaved step timing")
    p.add_argument("--drive", choices=("pressure", "flow_rate"), default="pressure")
    p.add_argument("--grid", default="32x49x32", help="nx x ny x nz (ny: cells in y)")
    p.add_argument("--stretching", type=float, default=2.0)
    p.add_argument("--cfl", type=float, default=0.5, help="Courant number (RK3 bound ≈ 0.8)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.spinup, args.average, args.sample, args.steps = 0.5, 1.0, 0.25, 10
    return args


def timed_steps(solver: ChannelSolver, u: torch.Tensor, dt: float, steps: int) -> float:
    """Median ms of one ``solver.step`` from u (3 repeats of ``steps`` steps, synchronised)."""
    times = []
    for _ in range(3):
        _sync(u)
        start = time.perf_counter()
        v = u
        for _ in range(steps):
            v = solver.step(v, dt)
        _sync(u)
        times.append((time.perf_counter() - start) / steps * 1e3)
    return sorted(times)[1]


def _sync(u: torch.Tensor) -> None:
    if u.is_cuda:
        torch.cuda.synchronize(u.device)


def mean_sgs_shear_stress(model, u: torch.Tensor, grid, nu: float) -> torch.Tensor:
    """⟨τ_xy⟩(y) = ⟨2 ν_t S_xy⟩ over x, z and the batch at the cell centres, (ny,) float64: the
    modelled (subgrid) shear stress, the part of −⟨u'v'⟩ the LES does not resolve."""
    gradient = grid.velocity_gradient(u)
    nu_t = model.eddy_viscosity(u, grid, nu, gradient=gradient)
    s_xy = 0.5 * (gradient[:, 0, 1] + gradient[:, 1, 0])
    return (2 * nu_t * s_xy).mean(dim=(0, 1, 3)).to(torch.float64).cpu()


def fold_antisymmetric(profile: torch.Tensor) -> np.ndarray:
    """A profile odd about the centreline (a shear stress) folded onto the lower half, wall to
    centre, as ``ChannelStatistics`` folds: ½(f(y_j) − f(−y_j)) for the ⌈ny/2⌉ points."""
    f = profile.numpy()
    half = (len(f) + 1) // 2
    return 0.5 * (f[:half] - f[::-1][:half])


def run(closure: str, args: argparse.Namespace) -> dict:
    nx, ny, nz = (int(n) for n in args.grid.lower().split("x"))
    config = ChannelConfig(
        nx=nx, ny=ny, nz=nz, stretching=args.stretching, drive=args.drive, cfl=args.cfl,
        les=None if closure == "none" else closure, dtype=DTYPES[args.dtype],
    )  # fmt: skip
    solver = ChannelSolver(config)
    peer = ChannelSolver(dataclasses.replace(config, les=None))
    g = solver.grid
    device = torch.device(args.device)
    u = solver.initial_condition(batch=1, seed=args.seed, device=device)

    stepping_time, steps, simulated = 0.0, 0, 0.0

    def advance(u: torch.Tensor, duration: float) -> torch.Tensor:
        nonlocal stepping_time, steps, simulated
        _sync(u)
        start = time.perf_counter()
        u = solver.advance(u, duration)
        _sync(u)
        stepping_time += time.perf_counter() - start
        steps += solver.steps_taken
        simulated += duration
        return u

    t, chunk = 0.0, max(args.sample, min(5.0, args.spinup / 10 or 1.0))
    while t < args.spinup - 1e-9:
        h = min(chunk, args.spinup - t)
        u = advance(u, h)
        t += h
        tau, _ = solver.wall_shear(u)
        print(f"[{closure}] spin-up t={t:.1f} tau_w={tau.item():.3f} "
              f"U_b={solver.bulk_velocity(u).item():.2f}", file=sys.stderr, flush=True)  # fmt: skip

    y = g.y_centres
    stats = [ChannelStatistics(y, solver.nu, g.lx, g.lz) for _ in range(3)]  # all, halves
    samples = max(1, round(args.average / args.sample))
    model = get_closure(config.les)
    sgs_sum = torch.zeros(g.ny, dtype=torch.float64)
    for k in range(samples):
        u = advance(u, args.sample)
        snapshot = g.to_centres(u).to(torch.float64)
        stats[0].update(snapshot)
        stats[1 if k < samples / 2 else 2].update(snapshot)
        if model is not None:
            sgs_sum += mean_sgs_shear_stress(model, u, g, solver.nu)
    result = stats[0].result()
    # In an LES the modelled stress carries part of the momentum flux: the total stress that
    # must be linear in y is viscous + resolved Reynolds + SGS.
    sgs_plus = fold_antisymmetric(sgs_sum / samples) / result.u_tau**2
    total = result.total_stress_plus + sgs_plus
    stress_balance_error = float(np.abs(total - result.total_stress_linear).max())

    dt_mean = simulated / steps
    ms_per_step = stepping_time / steps * 1e3
    # The same step with and without the closure, from the final state, in turn.
    dt = solver.cfl_dt(u)
    ours_ms = timed_steps(solver, u, dt, args.steps)
    peer_ms = timed_steps(peer, u, dt, args.steps)
    ours_ms = min(ours_ms, timed_steps(solver, u, dt, args.steps))

    u_bulk = result.bulk_u_plus * result.u_tau
    flow_through = g.lx / u_bulk
    peak = int(result.u_rms_plus.argmax())
    row = {
        "name": f"channel_re180_{closure}",
        "closure": closure,
        "drive": args.drive,
        "grid": f"{nx}x{ny}x{nz}",
        "dtype": args.dtype,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "re_tau": result.re_tau,
        "centreline_u_plus": result.centreline_u_plus,
        "bulk_u_plus": result.bulk_u_plus,
        "peak_u_rms_plus": float(result.u_rms_plus[peak]),
        "peak_u_rms_yplus": float(result.yplus[peak]),
        "stress_balance_error": stress_balance_error,
        "stress_balance_error_resolved_only": result.stress_balance_error,
        "peak_sgs_stress_plus": float(np.abs(sgs_plus).max()),
        "re_tau_first_half": stats[1].result().re_tau if stats[1].count else math.nan,
        "re_tau_second_half": stats[2].result().re_tau if stats[2].count else math.nan,
        "ref": MKM_RE180.name,
        "ref_re_tau": MKM_RE180.re_tau,
        "ref_centreline_u_plus": MKM_RE180.centreline_u_plus,
        "ref_bulk_u_plus": MKM_RE180.bulk_u_plus,
        "ref_peak_u_rms_plus": MKM_RE180.peak_u_rms_plus,
        "ref_peak_u_rms_yplus": MKM_RE180.peak_u_rms_yplus,
        "spinup": args.spinup,
        "average": args.average,
        "snapshots": result.n_snapshots,
        "steps": steps,
        "dt_mean": dt_mean,
        "ms_per_step": ms_per_step,
        "s_per_flow_through": ms_per_step / 1e3 * flow_through / dt_mean,
        "ours_ms": ours_ms,
        "peer": "no-model step (coarse DNS), same grid and state",
        "peer_ms": peer_ms,
        "ratio": ours_ms / peer_ms,
    }
    for key in ("re_tau", "centreline_u_plus", "bulk_u_plus", "peak_u_rms_plus"):
        row[f"err_{key}"] = row[key] / row[f"ref_{key}"] - 1
    return row


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    for closure in args.closure:
        print(json.dumps(run(closure, args)), flush=True)


if __name__ == "__main__":
    main()
