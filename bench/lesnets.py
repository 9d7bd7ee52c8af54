"""LESnets in miniature (Zhao et al.'s physics-informed neural operators for LES of decaying
isotropic turbulence): neural operators trained with labels, and trained on the LES
equations alone, against Smagorinsky and dynamic-Smagorinsky LES on the same coarse grid,
all judged against filtered DNS.

Budget (full run, this 2-core CPU machine, one thread, shared with other work): about ten
minutes of wall time (measured 559 s): ~5 for the data (283 s measured, the 48³ DNS), 4 ×
``--budget-s`` (75 s) for training, seconds for the rollouts. ``--quick`` is a smoke run of
about a minute (32³ → 16³, tiny models).

1. Data. Decaying HIT in [0, 2π)³ (``physics.hit3d``): ``--n-traj`` (14) random fields with
   E(k) ∝ k⁴exp(−2(k/k_p)²), k_p = 3, u_rms = 1, one seed each, run by the pseudo-spectral
   DNS (``HITSolver``, RK4–CN, 2/3 rule) on ``--fine``³ (48³, ν = 0.02: k_max η ≥ 0.88, Re_λ
   32 at the start, 16 at the last frame), spun up ``--spinup`` (0.3) time units, then a frame every
   ``--interval`` (0.1) for ``--frames`` (11) frames, each cut to the modes |κᵢ| < n/3 of the
   ``--coarse``³ grid (16³; ``physics.hit3d.filters.filter_to``, "spectral": exactly the modes
   a coarse LES keeps). Cached in the work folder (``np.save``, no pickle); ``--skip-data``
   reuses it. ``--held-out`` (2) trajectories are held out: the ones ``models.training.train``'s
   split holds out for the seed. The DNS's ms per interval is per field, the 14 run as one
   batch.
2. Training (``models.training.train``, the product's loop), each for the same wall-clock
   budget (epochs sized from a timed warm-up, stopped at the deadline otherwise), one input
   frame, one interval per call:
   ``fno3d-data`` / ``ifno3d-data``: relative L² against the next filtered-DNS frame;
   ``fno3d-physics`` / ``ifno3d-physics``: label-free, data weight 0 and physics weight 1,
   the loss of ``models.pde_loss_hit3d`` (the Crank–Nicolson residual of the 16³ LES
   equations with the Smagorinsky closure, plus the divergence term): the targets never enter
   the objective, only the input frames do. FNO3d and IFNO3d on the periodic cube: no wall
   padding (``pad_y`` 0), no coordinate channels, so they commute with periodic shifts.
3. Rollouts from the first frame of each held-out trajectory for ``frames − 1`` intervals:
   each model autoregressively; each closure (``smagorinsky``, ``dynamic``, ``none``: coarse
   DNS) with ``HITSolver`` on the coarse grid, ν the DNS's; ``persistence`` (the first frame
   kept, a floor for the errors). Against the filtered DNS at the same times:
   ``err_t<t>``: relative L² velocity error at t = 0.1, 0.2, 0.5, 1.0 (those the horizon
   reaches; mean over the held-out trajectories); ``spec_low/mid/high``: Σ_band |E(k) −
   E_ref(k)| / Σ_band E_ref(k) over the shells 1–2, 3–4, ≥ 5 (``physics.hit3d.diagnostics.
   energy_spectrum``), averaged over the horizon's frames; ``energy_end``: E(T)/E_ref(T);
   ``decay_rate``: the mean energy decay rate (E(0) − E(T))/T over the reference's (the total
   dissipation, resolved and subgrid, the column implies); ``eps_end``: the resolved
   dissipation 2ν⟨S_ijS_ij⟩ at T over the reference's; ``div_rms``: rms ∇·u over rms |∇u| at
   T (zero for the solvers by construction); ``ms``: median ms of one interval (a model call,
   or the LES's CFL-limited sub-steps), batch 1.
4. Output, one JSON line per column (stdout; progress on stderr): the numbers above and the
   house fields ``ours_ms``, ``peer`` (dynamic Smagorinsky LES on the same coarse grid),
   ``peer_ms``, ``ratio`` = ours_ms / peer_ms, ``speedup`` = peer_ms / ours_ms. Model rows add
   ``parameters``, ``config``, ``epochs``, ``train_s``, ``val_rel_l2`` and
   ``persistence_rel_l2`` (one call, held-out trajectories) and, for the physics-only models,
   ``val_pde_residual``. A reference row gives the DNS's ms per interval and its statistics.

    python bench/lesnets.py --quick                      # smoke run, ~2 minutes
    python bench/lesnets.py > /tmp/lesnets.jsonl
    python bench/lesnets.py --skip-data                  # reuse the cached frames
    python bench/lesnets.py --table /tmp/lesnets.jsonl   # markdown table
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.pde_loss_hit3d import make_hit3d_pde_loss
from models.registry import build_model, parameter_count
from models.rollout import autoregressive_rollout
from models.training import TrainConfig, TrainingStopped, evaluate, train
from models.windows import Windows, split_trajectories
from physics.hit3d import diagnostics
from physics.hit3d.filters import filter_to
from physics.hit3d.grid import Grid3D
from physics.hit3d.initial import random_velocity
from physics.hit3d.solver import HITSolver

CLOSURES = ("smagorinsky", "dynamic", "none")
PEER = "dynamic"
PEER_LABEL = "dynamic Smagorinsky LES on the same coarse grid"
BANDS = {"low": (1, 2), "mid": (3, 4), "high": (5, 10**6)}
REPORT_TIMES = (0.1, 0.2, 0.5, 1.0)
# The physics-only models' closure: what the loss's equations model below the coarse grid.
PHYSICS_CLOSURE = "smagorinsky"

CUBE = {"pad_y": 0, "add_grid": False}
MODELS = {
    "fno3d": {"width": 10, "modes_x": 6, "modes_y": 6, "modes_z": 6, "n_layers": 2, **CUBE},
    "ifno3d": {"width": 12, "modes_x": 6, "modes_y": 6, "modes_z": 6, "n_iterations": 4, **CUBE},
}  # fmt: skip
QUICK_MODELS = {
    "fno3d": {"width": 8, "modes_x": 4, "modes_y": 4, "modes_z": 4, "n_layers": 2, **CUBE},
    "ifno3d": {"width": 8, "modes_x": 4, "modes_y": 4, "modes_z": 4, "n_iterations": 2, **CUBE},
}  # fmt: skip
TRAININGS = ("data", "physics")


def log(*parts) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run, ~2 minutes")
    p.add_argument("--work", type=Path, default=Path("/tmp/lesnets"))
    p.add_argument("--skip-data", action="store_true", help="reuse the cached frames")
    p.add_argument("--fine", type=int, default=48, help="DNS grid side")
    p.add_argument("--coarse", type=int, default=16, help="LES (training) grid side")
    p.add_argument("--nu", type=float, default=0.02)
    p.add_argument("--k-peak", type=float, default=3.0)
    p.add_argument("--u-rms", type=float, default=1.0)
    p.add_argument("--n-traj", type=int, default=14)
    p.add_argument("--held-out", type=int, default=2)
    p.add_argument("--spinup", type=float, default=0.3, help="time units discarded")
    p.add_argument("--interval", type=float, default=0.1, help="time units between frames")
    p.add_argument("--frames", type=int, default=11, help="frames per trajectory")
    p.add_argument("--budget-s", type=float, default=75.0, help="training wall time per model")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    p.add_argument("--trainings", nargs="+", choices=TRAININGS, default=list(TRAININGS))
    # One thread: two OpenMP threads on this shared 2-core machine were measured many times
    # slower per step than one (bench/channel_surrogate.py).
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", type=Path, help="print the markdown table of a run's JSON lines")
    args = p.parse_args(argv)
    args.model_configs = MODELS
    if args.quick:
        args.fine, args.nu, args.n_traj, args.frames = 32, 0.04, 6, 6
        args.budget_s, args.spinup = 10.0, 0.1
        args.model_configs = QUICK_MODELS
        args.work = args.work.with_name(args.work.name + "_quick")
    return args


# --- 1. data --------------------------------------------------------------------------------


def data_key(args: argparse.Namespace) -> dict:
    keys = ("fine", "coarse", "nu", "k_peak", "u_rms", "n_traj", "spinup", "interval", "frames",
            "seed")  # fmt: skip
    return {k: getattr(args, k) for k in keys}


def make_data(args: argparse.Namespace) -> tuple[np.ndarray, dict]:
    """Filtered DNS frames (n_traj, frames, 3, n, n, n), float32, and what they are."""
    grid = Grid3D(args.fine)
    solver = HITSolver(grid, args.nu)
    start = time.perf_counter()
    u = random_velocity(grid, args.n_traj, args.k_peak, args.u_rms, seed=args.seed,
                        dtype=torch.float32)  # fmt: skip
    initial = diagnostics.taylor_reynolds(u.double(), args.nu)
    if args.spinup > 0:
        u = solver.advance(u, args.spinup)
    frames, interval_ms, kmax_eta = [], [], []
    for k in range(args.frames):
        if k:
            tick = time.perf_counter()
            u = solver.advance(u, args.interval)
            interval_ms.append((time.perf_counter() - tick) * 1e3 / args.n_traj)
        if not bool(torch.isfinite(u).all()):
            raise FloatingPointError(f"the DNS blew up at frame {k}")
        eps = diagnostics.dissipation(u.double(), args.nu)
        kmax_eta.append(float(((args.nu**3 / eps) ** 0.25).min()) * args.fine / 3)
        frames.append(filter_to(u, args.coarse, "spectral").velocity.numpy())
        log(f"data: frame {k + 1}/{args.frames}, min k_max·η {kmax_eta[-1]:.2f}")
    meta = {
        **data_key(args),
        "re_lambda_initial": float(initial.mean()),
        "re_lambda_final": float(diagnostics.taylor_reynolds(u.double(), args.nu).mean()),
        "min_kmax_eta": min(kmax_eta),
        "dns_ms_per_interval": statistics.median(interval_ms),
        "data_s": time.perf_counter() - start,
    }
    return np.stack(frames, axis=1).astype(np.float32), meta


def load_or_make_data(args: argparse.Namespace) -> tuple[torch.Tensor, dict]:
    args.work.mkdir(parents=True, exist_ok=True)
    frames_path, meta_path = args.work / "frames.npy", args.work / "meta.json"
    if args.skip_data and frames_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in data_key(args)} != data_key(args):
            raise SystemExit(f"--skip-data: {args.work} holds data made with other settings")
        log(f"data: reusing {frames_path}")
        return torch.from_numpy(np.load(frames_path, allow_pickle=False)), meta
    frames, meta = make_data(args)
    np.save(frames_path, frames, allow_pickle=False)
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"data: {frames.shape} in {meta['data_s']:.0f} s, cached in {args.work}")
    return torch.from_numpy(frames), meta


# --- 2. training ----------------------------------------------------------------------------


def physics_params(args: argparse.Namespace) -> dict:
    """What a hit3d dataset of this data would record (the physics loss reads it)."""
    return {"nu": args.nu, "closure": "none", "filter": "spectral", "forcing": "none",
            "pde_closure": PHYSICS_CLOSURE}  # fmt: skip


def time_step(model_fn, data: torch.Tensor, batch: int, loss_fn, steps: int = 4) -> float:
    """Median seconds per optimiser step on a throwaway model (one warm-up step)."""
    model = model_fn()
    x = data[:1, :1].expand(batch, -1, *data.shape[2:]).contiguous()
    y = data[:1, 1:2].expand(batch, -1, *data.shape[2:]).contiguous()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        pred = model(x)
        loss = loss_fn(x, pred) if loss_fn is not None else (pred - y).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def train_model(arch: str, how: str, args, data: torch.Tensor, val_idx: list[int]):
    name = f"{arch}-{how}"
    config = dict(args.model_configs[arch])
    pde_loss = None
    if how == "physics":
        pde_loss = make_hit3d_pde_loss(physics_params(args), args.interval, 2 * math.pi)

    def fresh():
        torch.manual_seed(args.seed)
        return build_model(arch, copy.deepcopy(config))

    model = fresh()
    windows = (data.shape[0] - len(val_idx)) * (data.shape[1] - 1)
    steps_per_epoch = math.ceil(windows / args.batch_size)
    step_s = time_step(fresh, data, args.batch_size, pde_loss)
    epochs = max(1, int(0.85 * args.budget_s / (step_s * steps_per_epoch)))
    log(f"{name}: {parameter_count(model):,} parameters, {step_s:.2f} s/step, {epochs} epochs")
    train_config = TrainConfig(
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_fraction=args.held_out / data.shape[0],
        events_every=10**6,
        length=2 * math.pi,
        data_weight=1.0 if how == "data" else 0.0,
        pde_weight=0.0 if how == "data" else 1.0,
    )
    started = time.perf_counter()
    deadline = started + args.budget_s

    def progress(event):
        every = max(1, epochs // 5)
        if event["type"] == "epoch" and (event["epoch"] % every == 0 or event["epoch"] == epochs):
            extra = (
                f" residual {event['val_pde_residual']:.3f}" if "val_pde_residual" in event else ""
            )
            log(
                f"{name}: epoch {event['epoch']}/{epochs} loss {event['train_loss']:.4f} "
                f"val {event['val_rel_l2']:.4f} (persistence {event['persistence_rel_l2']:.4f})"
                + extra
            )

    stopped, done_epochs, residual = False, epochs, None
    try:
        result = train(
            model,
            data,
            train_config,
            on_event=progress,
            should_stop=lambda: time.perf_counter() > deadline,
            pde_loss=pde_loss,
        )
        if result.val_trajectories != val_idx:
            raise RuntimeError(f"validated on {result.val_trajectories}, not {val_idx}")
        val, persistence = result.val_rel_l2, result.persistence_rel_l2
        residual = result.val_pde_residual
    except TrainingStopped as stop:
        stopped, done_epochs = True, stop.epoch - 1
        val, persistence = evaluate(
            model, Windows(data, val_idx, 1, 1), args.batch_size, torch.device("cpu")
        )
    train_s = time.perf_counter() - started
    log(f"{name}: trained {train_s:.0f} s, val {val:.4f} vs persistence {persistence:.4f}")
    info = {
        "arch": arch,
        "training": how,
        "config": config,
        "parameters": parameter_count(model),
        "epochs": done_epochs,
        "epochs_planned": epochs,
        "stopped_at_budget": stopped,
        "train_s": round(train_s, 1),
        "budget_s": args.budget_s,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "val_rel_l2": val,
        "persistence_rel_l2": persistence,
    }
    if how == "physics":
        info |= {"pde_closure": PHYSICS_CLOSURE, "val_pde_residual": residual}
    return model.eval(), info


# --- 3. rollouts and their scores -----------------------------------------------------------


def band_sums(u: torch.Tensor) -> dict[str, torch.Tensor]:
    """Σ_band E(k) of fields (B, 3, n, n, n) per band, and the spectra (B, K)."""
    k, spectrum = diagnostics.energy_spectrum(u.double())
    return {band: spectrum[:, (k >= lo) & (k <= hi)] for band, (lo, hi) in BANDS.items()}


class Scores:
    """One column's errors against the reference over one held-out trajectory."""

    def __init__(self, reference: torch.Tensor, nu: float):
        self.reference = reference.double()  # (frames, 3, n, n, n)
        self.nu = nu
        self.rel_l2: list[float] = []
        self.spec = {band: [] for band in BANDS}
        self.last: torch.Tensor | None = None

    def record(self, step: int, u: torch.Tensor) -> None:
        u = u.double()
        ref = self.reference[step][None]
        self.rel_l2.append(float((u - ref).norm() / ref.norm()))
        mine, theirs = band_sums(u), band_sums(ref)
        for band in BANDS:
            error = (mine[band] - theirs[band]).abs().sum() / theirs[band].sum()
            self.spec[band].append(float(error))
        self.last = u

    def result(self, interval: float) -> dict:
        steps = len(self.rel_l2)
        out = {}
        for t in REPORT_TIMES:
            k = round(t / interval)
            if 1 <= k <= steps:
                out[f"err_t{t:g}"] = self.rel_l2[k - 1]
        for band in BANDS:
            out[f"spec_{band}"] = statistics.fmean(self.spec[band])
        ref0, ref_end = self.reference[0][None], self.reference[steps][None]
        energy = diagnostics.kinetic_energy
        e0, e_ref, e_mine = energy(ref0), energy(ref_end), energy(self.last)
        out["energy_end"] = float(e_mine / e_ref)
        out["decay_rate"] = float((e0 - e_mine) / (e0 - e_ref))
        eps = diagnostics.dissipation
        out["eps_end"] = float(eps(self.last, self.nu) / eps(ref_end, self.nu))
        gradient = diagnostics.velocity_gradient(self.last).pow(2).sum(dim=(1, 2)).mean().sqrt()
        out["div_rms"] = float(diagnostics.divergence(self.last).pow(2).mean().sqrt() / gradient)
        return out


def mean_rows(rows: list[dict]) -> dict:
    return {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}


def model_column(model, data: torch.Tensor, val_idx: list[int], args) -> tuple[dict, float]:
    results, ms = [], []
    for i in val_idx:
        scores = Scores(data[i], args.nu)
        frames = autoregressive_rollout(model, data[i, :1][None], data.shape[1] - 1)
        for step in range(1, data.shape[1]):
            tick = time.perf_counter()
            u = next(frames)
            ms.append((time.perf_counter() - tick) * 1e3)
            scores.record(step, u)
        results.append(scores.result(args.interval))
    return mean_rows(results), statistics.median(ms)


def closure_column(closure: str, data, val_idx, args) -> tuple[dict, float]:
    solver = HITSolver(Grid3D(args.coarse), args.nu, closure=None if closure == "none" else closure)
    results, ms = [], []
    for i in val_idx:
        scores = Scores(data[i], args.nu)
        u = solver.advance(data[i, :1].float(), 0.0)  # projected and dealiased, as it runs
        for step in range(1, data.shape[1]):
            tick = time.perf_counter()
            u = solver.advance(u, args.interval)
            ms.append((time.perf_counter() - tick) * 1e3)
            scores.record(step, u)
        results.append(scores.result(args.interval))
    return mean_rows(results), statistics.median(ms)


def persistence_column(data, val_idx, args) -> tuple[dict, float]:
    results = []
    for i in val_idx:
        scores = Scores(data[i], args.nu)
        for step in range(1, data.shape[1]):
            scores.record(step, data[i, :1])
        results.append(scores.result(args.interval))
    return mean_rows(results), 0.0


# --- 4. output ------------------------------------------------------------------------------


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    columns = [r for r in rows if r["kind"] != "reference"]
    times = [f"err_t{t:g}" for t in REPORT_TIMES if any(f"err_t{t:g}" in r for r in columns)]
    head = ["column", "kind", *(f"L² t={k[5:]}" for k in times), "E(k) low", "mid", "high",
            "E(T)/ref", "decay rate/ref", "ε(T)/ref", "div", "ms / interval",
            "speedup vs dynamic"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in columns:
        cells = [r["column"], r["kind"], *(_cell(r.get(k), 2) for k in times)]
        cells += [_cell(r.get(f"spec_{b}"), 2) for b in BANDS]
        cells += [_cell(r.get(k), 3) for k in ("energy_end", "decay_rate", "eps_end")]
        cells += [_cell(r.get("div_rms"), 2), _cell(r.get("ms"), 3), _cell(r.get("speedup"), 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.table is not None:
        print(markdown_table(args.table))
        return
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    data, meta = load_or_make_data(args)
    generator = torch.Generator().manual_seed(args.seed)
    _, val_idx = split_trajectories(data.shape[0], args.held_out / data.shape[0], generator)
    log(f"data: {tuple(data.shape)}, held out {val_idx}")

    columns: list[tuple[str, str, dict, float, dict]] = []
    for arch in args.models:
        for how in args.trainings:
            model, info = train_model(arch, how, args, data, val_idx)
            scores, ms = model_column(model, data, val_idx, args)
            columns.append((f"{arch}-{how}", "model", scores, ms, info))
    for closure in CLOSURES:
        log(f"{closure}: coarse LES")
        scores, ms = closure_column(closure, data, val_idx, args)
        columns.append((closure, "les", scores, ms, {}))
    scores, _ = persistence_column(data, val_idx, args)
    columns.append(("persistence", "persistence", scores, 0.0, {}))

    peer_ms = next(ms for name, _, _, ms, _ in columns if name == PEER)
    for name, kind, scores, ms, info in columns:
        row = {"name": f"lesnets_{name}", "column": name, "kind": kind, **scores, "ms": ms}
        if kind != "persistence":
            row |= {"ours_ms": ms, "peer": PEER_LABEL, "peer_ms": peer_ms,
                    "ratio": ms / peer_ms, "speedup": peer_ms / ms}  # fmt: skip
        row |= info
        row["threads"] = args.threads
        print(json.dumps(row), flush=True)
    dns_ms = meta["dns_ms_per_interval"]
    reference = {
        "name": "lesnets_reference",
        "column": "filtered DNS",
        "kind": "reference",
        "description": (
            f"DNS {args.fine}³ (ν {args.nu:g}, k_p {args.k_peak:g}, u_rms {args.u_rms:g}) "
            f"cut to the modes |κ_i| < {args.coarse}/3 of the {args.coarse}³ grid"
        ),
        **{k: meta.get(k) for k in ("re_lambda_initial", "re_lambda_final", "min_kmax_eta")},
        "held_out": val_idx,
        "trajectories": int(data.shape[0]),
        "ms": dns_ms,
        "ours_ms": dns_ms,
        "peer": PEER_LABEL,
        "peer_ms": peer_ms,
        "ratio": dns_ms / peer_ms,
        "speedup": peer_ms / dns_ms,
        "data_s": meta["data_s"],
        "threads": args.threads,
    }
    print(json.dumps(reference), flush=True)
    log(f"done in {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
