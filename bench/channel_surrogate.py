"""The IFactFormer-m paper's channel experiment in miniature: learned surrogates against the
LES closures on the same coarse grid, judged by wall-unit statistics over a long rollout.

Budget (full run, this 2-core CPU machine, one thread, shared with other work): about 25
minutes of wall time: ~8–10 for the data, 3 × ``--budget-s`` (180 s) for training, ~5 for
the long-horizon columns. ``--quick`` is a smoke run of a minute or two on tiny grids.

1. Data. Re_τ = 180, ``physics.channel.solver.ChannelSolver`` on a "fine" grid 32 × 49 × 32
   (4π × 2 × 4π/3) with the Smagorinsky closure: a fine LES, not a DNS (a DNS at Re_τ 180,
   ~128 × 129 × 128 at this box, is out of reach on two CPU cores). The product's
   configuration (``app.channel_params.channel_config``) except the Courant number, 0.7
   instead of 0.5 (``--cfl``; RK3's bound here is about 0.83). Spun up ``--spinup`` (10)
   time units h/u_τ (discarded), then a snapshot every ``--interval`` (0.5) for
   ``--sample`` (30) units, each filtered onto the coarse training grid 16 × 25 × 16 by the
   product's filter (``app.channel_params.channel_filter``: x–z sharp spectral cut, y
   top-hat over the coarse cells). The long trajectory is cut into segments of ``--segment``
   (10) frames; the last ``--held-out`` (2) segments are held out (the split of
   ``models.training.train`` is made to pick exactly them, so its validation numbers are on
   them). The frames, the spun-up state and what they are are cached in the work folder
   (``np.save``, ``allow_pickle=False``; JSON); ``--skip-data`` reuses the frames.
2. Training. IFactFormer-m 3D (``ifactformer3d``), FNO3d (``fno3d``) and the implicit FNO3d
   (``ifno3d``: one Fourier layer shared over the iterations), one input frame,
   one interval per call, each for the same wall-clock budget with the product's loop
   (``models.training.train``): epochs sized from a timed warm-up (85 % of the budget, as
   ``bench/zoo_budget.py``), stopped at the deadline otherwise. Both are miniatures (the
   paper-size IFactFormer-m, 1.16 M parameters, takes seconds per step on this machine).
3. Long horizon. From the first frame of the first held-out segment: each model rolls out
   ``--horizon`` intervals (≥ 10 × the segment, far beyond the one-interval training
   window); each closure (none, smagorinsky, wale, dynamic) runs the channel solver on the
   coarse grid (``physics.channel.columns.CoarseLES``) from the same filtered frame for the
   same intervals; "frozen" keeps the start frame (statistics of one snapshot, a floor).
   Statistics in wall units (``physics.channel.skill.WindowedStatistics``) over every
   frame of each column, and over its last quarter. The reference is the statistics of the
   filtered fine data over all stored frames (not a fine run over the same horizon).
   Guard (``physics.channel.skill.Guard`` against the start frame): non-finite, kinetic
   energy above 10 × the start's, or a bulk velocity 50 % off the start's stops a column
   and records the step (``diverged_at``).
4. Output, one JSON line per column (stdout; progress on stderr): ``name``, ``kind``
   (model / closure / frozen / reference), ``err_u_mean``, ``err_u_rms``, ``err_v_rms``,
   ``err_w_rms``, ``err_uv`` (relative L2 of the dimensional U, u′rms, v′rms, w′rms and
   −u′v′ profiles against the reference, quadrature-weighted over the half channel:
   ``physics.channel.skill.profile_errors``), ``last_*`` the same over the last quarter,
   ``re_tau``, ``centreline_u_plus``, ``diverged_at``, ``steps``, ``ms`` (median ms of one
   interval) and the house fields ``ours_ms``, ``peer`` (dynamic Smagorinsky on the same
   coarse grid), ``peer_ms``, ``ratio`` = ours_ms / peer_ms, ``speedup`` = peer_ms /
   ours_ms. Model rows add ``parameters``, ``config``, ``epochs``, ``train_s``,
   ``val_rel_l2`` and ``persistence_rel_l2`` (one call, held-out segments). The reference row
   gives the filtered data's and the fine grid's own Re_τ and centreline U⁺ beside MKM 1999.

    python bench/channel_surrogate.py --quick                  # smoke run, ~2 minutes
    python bench/channel_surrogate.py > /tmp/channel_surrogate.jsonl
    python bench/channel_surrogate.py --skip-data              # reuse the cached frames
    python bench/channel_surrogate.py --table /tmp/channel_surrogate.jsonl   # markdown table
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from app.channel_params import channel_config, channel_filter, filter_attrs, stored_y_grid
from models.checkpoint import save_model
from models.registry import build_model, parameter_count
from models.rollout import autoregressive_rollout
from models.training import TrainConfig, TrainingStopped, evaluate, train
from models.windows import Windows, split_trajectories
from physics.channel.columns import CoarseLES
from physics.channel.skill import (
    PROFILES,
    Guard,
    WindowedStatistics,
    bulk_weights,
    dimensional_profiles,
    profile_errors,
)
from physics.channel.solver import ChannelSolver
from physics.channel.stats import MKM_RE180, ChannelStatistics, quadrature_weights

CLOSURES = ("none", "smagorinsky", "wale", "dynamic")
PEER = "dynamic"
PEER_LABEL = "dynamic Smagorinsky on the same coarse grid"

MODELS = {
    # A miniature IFactFormer-m: the paper's form (one parallel block shared over the
    # iterations), narrower and with fewer iterations than its dim 96, 5 × 96 heads, 10.
    "ifactformer3d": {"dim": 48, "heads": 4, "head_dim": 32, "kernel_multiplier": 2,
                      "n_iterations": 4},
    "fno3d": {"width": 16, "modes_x": 6, "modes_y": 8, "modes_z": 6, "n_layers": 4},
    # The implicit FNO of LESnets: FNO3d's modes, one layer iterated.
    "ifno3d": {"width": 16, "modes_x": 6, "modes_y": 8, "modes_z": 6, "n_iterations": 4},
}  # fmt: skip
QUICK_MODELS = {
    "ifactformer3d": {"dim": 24, "heads": 2, "head_dim": 16, "kernel_multiplier": 2,
                      "n_iterations": 2},
    "fno3d": {"width": 8, "modes_x": 3, "modes_y": 4, "modes_z": 3, "n_layers": 2},
    "ifno3d": {"width": 8, "modes_x": 3, "modes_y": 4, "modes_z": 3, "n_iterations": 2},
}  # fmt: skip


def log(*parts) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run on tiny grids, ~2 minutes")
    p.add_argument("--work", type=Path, default=Path("/tmp/channel_surrogate"))
    p.add_argument("--skip-data", action="store_true", help="reuse the cached frames")
    p.add_argument("--fine", default="32x49x32", help="solver grid nx x ny x nz")
    p.add_argument("--coarse", default="16x25x16", help="stored (training) grid")
    p.add_argument("--closure", default="smagorinsky", help="the fine run's closure")
    p.add_argument("--spinup", type=float, default=10.0, help="time units discarded")
    p.add_argument("--sample", type=float, default=30.0, help="time units of snapshots")
    p.add_argument("--cfl", type=float, default=0.7, help="the fine run's Courant number")
    p.add_argument("--interval", type=float, default=0.5, help="time units between frames")
    p.add_argument("--segment", type=int, default=10, help="frames per segment")
    p.add_argument("--held-out", type=int, default=2, help="last segments held out")
    p.add_argument("--budget-s", type=float, default=180.0, help="training wall time per model")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    p.add_argument("--horizon", type=int, default=100, help="intervals of the long rollout")
    # One thread: on this 2-core machine shared with other work, two OpenMP threads were
    # measured 10–15 times slower per solver step than one (a thread that loses its core
    # holds up the other at every parallel region).
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", type=Path, help="print the markdown tables of a run's JSON lines")
    args = p.parse_args(argv)
    args.model_configs = MODELS
    if args.quick:
        args.fine, args.coarse = "16x25x16", "8x13x8"
        args.spinup, args.sample, args.segment, args.held_out = 1.0, 5.0, 3, 1
        args.budget_s, args.horizon = 15.0, 12
        args.model_configs = QUICK_MODELS
        args.work = args.work.with_name(args.work.name + "_quick")
    return args


def grid_of(text: str) -> list[int]:
    return [int(n) for n in text.lower().split("x")]


def job_params(args: argparse.Namespace) -> dict:
    """The generate job's parameters this data corresponds to (what channel_config and
    channel_filter read)."""
    return {
        "flow": "channel3d",
        "channel_grid": grid_of(args.fine),
        "output_grid": grid_of(args.coarse),
        "filter": "spectral",
        "closure": args.closure,
        "interval": args.interval,
        "warmup": args.spinup,
        "seed": args.seed,
    }


# --- 1. data --------------------------------------------------------------------------------


def make_data(args: argparse.Namespace, params: dict) -> tuple[np.ndarray, dict]:
    config = dataclasses.replace(channel_config(params), cfl=args.cfl)
    solver = ChannelSolver(config)
    grid = solver.grid
    to_coarse = channel_filter(params, config)
    start = time.perf_counter()
    # The spun-up state is cached too, so a run stopped while sampling restarts there.
    spun_path, spun_meta = args.work / "spinup.npy", args.work / "spinup.json"
    key = {"params": params, "cfl": args.cfl, "spinup": args.spinup}
    if spun_path.exists() and spun_meta.exists() and json.loads(spun_meta.read_text()) == key:
        u = torch.from_numpy(np.load(spun_path, allow_pickle=False))
        log(f"data: reusing the spun-up state {spun_path}")
    else:
        u = solver.initial_condition(batch=1, seed=args.seed)
        t, chunk = 0.0, min(2.5, args.spinup)
        while t < args.spinup - 1e-9:
            h = min(chunk, args.spinup - t)
            u = solver.advance(u, h)
            t += h
            tau, _ = solver.wall_shear(u)
            bulk = solver.bulk_velocity(u).item()
            log(f"data: spin-up t={t:.1f} tau_w={tau.item():.3f} U_b={bulk:.2f}")
        np.save(spun_path, u.numpy(), allow_pickle=False)
        spun_meta.write_text(json.dumps(key))
    spinup_s = time.perf_counter() - start
    fine_stats = ChannelStatistics(grid.y_centres, config.nu, config.lx, config.lz)
    n = round(args.sample / args.interval) + 1
    frames, interval_ms, steps = [], [], 0
    for k in range(n):
        if k:
            tick = time.perf_counter()
            u = solver.advance(u, args.interval)
            steps += solver.steps_taken
        else:
            tick = None
        centred = grid.to_centres(u)
        if not bool(torch.isfinite(centred).all()):
            raise FloatingPointError(f"the fine run blew up at frame {k}")
        coarse = to_coarse(centred)
        if tick is not None:
            interval_ms.append((time.perf_counter() - tick) * 1e3)
        fine_stats.update(centred.to(torch.float64))
        frames.append(coarse[0].numpy().astype(np.float32))
        if k % 10 == 0 or k == n - 1:
            log(f"data: frame {k + 1}/{n} U_b={solver.bulk_velocity(u).item():.2f}")
    fine = fine_stats.result()
    meta = {
        "params": params,
        "sample": args.sample,
        "cfl": args.cfl,
        "frames": n,
        "fine_grid": [config.nx, config.ny, config.nz],
        "fine_re_tau": fine.re_tau,
        "fine_centreline_u_plus": fine.centreline_u_plus,
        "fine_bulk_u_plus": fine.bulk_u_plus,
        "fine_ms_per_interval": statistics.median(interval_ms),
        "fine_ms_per_step": sum(interval_ms) / max(steps, 1),
        "fine_dt_mean": args.interval * (n - 1) / max(steps, 1),
        "spinup_s": spinup_s,
        "data_s": time.perf_counter() - start,
        **filter_attrs(params, config),
    }
    return np.stack(frames), meta


def load_or_make_data(args: argparse.Namespace, params: dict) -> tuple[np.ndarray, dict]:
    args.work.mkdir(parents=True, exist_ok=True)
    frames_path, meta_path = args.work / "frames.npy", args.work / "meta.json"
    if args.skip_data and frames_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        settings = (meta.get("params"), meta.get("sample"), meta.get("cfl"))
        if settings != (params, args.sample, args.cfl):
            raise SystemExit(
                f"--skip-data: the cache in {args.work} was made with other settings "
                f"({meta.get('params')}, sample {meta.get('sample')}); rerun without it"
            )
        log(f"data: reusing {frames_path}")
        return np.load(frames_path, allow_pickle=False), meta
    frames, meta = make_data(args, params)
    np.save(frames_path, frames, allow_pickle=False)
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"data: {frames.shape} frames in {meta['data_s']:.0f} s, cached in {args.work}")
    return frames, meta


def segments(frames: np.ndarray, args: argparse.Namespace) -> tuple[torch.Tensor, list[int]]:
    """(n_seg, segment, 3, ox, oy, oz) with the held-out (last) segments at the positions
    ``train``'s split will hold out, and those positions (in time order)."""
    n_seg = frames.shape[0] // args.segment
    if n_seg - args.held_out < 1 or args.held_out < 1:
        raise SystemExit(f"{frames.shape[0]} frames make {n_seg} segments: too few")
    cut = frames[: n_seg * args.segment].reshape(n_seg, args.segment, *frames.shape[1:])
    fraction = args.held_out / n_seg
    generator = torch.Generator().manual_seed(args.seed)
    train_pos, val_pos = split_trajectories(n_seg, fraction, generator)
    if len(val_pos) != args.held_out:
        raise SystemExit(f"the split holds out {len(val_pos)} segments, not {args.held_out}")
    order = np.empty(n_seg, dtype=np.int64)
    order[train_pos] = np.arange(n_seg - args.held_out)  # earlier segments, in time order
    order[val_pos] = np.arange(n_seg - args.held_out, n_seg)  # the last ones
    return torch.from_numpy(cut[order]), val_pos


# --- 2. training ----------------------------------------------------------------------------


def time_step(arch: str, config: dict, data: torch.Tensor, batch: int, steps: int = 5) -> float:
    """Seconds per optimiser step (median of ``steps`` after one warm-up step), on a
    throwaway model: the median, since other work on the machine makes single steps swing."""
    model = build_model(arch, copy.deepcopy(config))
    x = data[:1, :2].expand(batch, -1, *data.shape[2:]).contiguous()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = (model(x[:, :1]) - x[:, 1:]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def train_model(arch: str, args: argparse.Namespace, data: torch.Tensor, val_pos: list[int]):
    config = dict(args.model_configs[arch])
    torch.manual_seed(args.seed)
    model = build_model(arch, copy.deepcopy(config))
    windows = (data.shape[0] - args.held_out) * (data.shape[1] - 1)
    steps_per_epoch = math.ceil(windows / args.batch_size)
    step_s = time_step(arch, config, data, args.batch_size)
    epochs = max(1, int(0.85 * args.budget_s / (step_s * steps_per_epoch)))
    log(f"{arch}: {parameter_count(model):,} parameters, {step_s:.2f} s/step, {epochs} epochs")
    train_config = TrainConfig(
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_fraction=args.held_out / data.shape[0],
        events_every=10**6,
    )
    started = time.perf_counter()
    deadline = started + args.budget_s

    def progress(event):
        every = max(1, epochs // 10)
        if event["type"] == "epoch" and (event["epoch"] % every == 0 or event["epoch"] == epochs):
            log(
                f"{arch}: epoch {event['epoch']}/{epochs} loss {event['train_loss']:.4f} "
                f"val {event['val_rel_l2']:.4f} (persistence {event['persistence_rel_l2']:.4f})"
            )

    stopped, done_epochs = False, epochs
    try:
        result = train(
            model,
            data,
            train_config,
            on_event=progress,
            should_stop=lambda: time.perf_counter() > deadline,
        )
        if result.val_trajectories != val_pos:
            raise RuntimeError(f"validated on {result.val_trajectories}, not {val_pos}")
        val, persistence = result.val_rel_l2, result.persistence_rel_l2
    except TrainingStopped as stop:
        stopped, done_epochs = True, stop.epoch - 1
        windows = Windows(data, val_pos, 1, 1)
        val, persistence = evaluate(model, windows, args.batch_size, torch.device("cpu"))
    train_s = time.perf_counter() - started
    save_model(args.work / arch, arch, config, model, {"val_rel_l2": val, "train_s": train_s})
    log(f"{arch}: trained {train_s:.0f} s, val {val:.4f} vs persistence {persistence:.4f}")
    return model, {
        "arch": arch,
        "config": config,
        "parameters": parameter_count(model),
        "epochs": done_epochs,
        "epochs_planned": epochs,
        "stopped_at_budget": stopped,
        "train_s": round(train_s, 1),
        "budget_s": args.budget_s,
        "step_s_estimate": round(step_s, 3),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "val_rel_l2": val,
        "persistence_rel_l2": persistence,
        "val_over_persistence": val / persistence,
    }


# --- 3. long horizon ------------------------------------------------------------------------


class Column:
    """One column's statistics, guard and timing over the horizon."""

    def __init__(self, name: str, kind: str, start: torch.Tensor, ctx: dict):
        self.name, self.kind = name, kind
        self.start = start
        self.ctx = ctx
        self.stats = WindowedStatistics(
            ctx["y"], ctx["nu"], ctx["lx"], ctx["lz"], window=max(1, ctx["horizon"] // 4)
        )
        # Plain dimensional moments beside the wall-unit statistics: a column whose mean
        # profile has no positive wall shear has no wall units (``running()`` is None), but its
        # U, rms and −u′v′ profiles still compare with the reference's.
        ny = len(ctx["y"])
        self.first = np.zeros((3, ny))
        self.second = np.zeros((3, 3, ny))
        self.ms: list[float] = []
        self.diverged_at: int | None = None
        self.reason: str | None = None
        self.steps = 0

    def record(self, step: int, u: torch.Tensor | None, ms: float, reason: str | None = None):
        """Frame ``step`` (1…H) of the column; False once the guard stopped it."""
        self.ms.append(ms)
        if reason is None:
            reason = Guard().check(u, self.start, self.ctx["weights"])
        if reason is not None:
            self.diverged_at, self.reason = step, reason
            log(f"{self.name}: stopped at step {step}: {reason}")
            return False
        u = u.to(torch.float64)
        self.stats.update(u)
        self.first += u[0].mean(dim=(1, 3)).numpy()
        self.second += torch.einsum("ixyz,jxyz->ijy", u[0], u[0]).numpy() / (
            u.shape[2] * u.shape[4]
        )
        self.steps = step
        return True

    def moment_errors(self, reference) -> dict[str, float]:
        """``profile_errors``' numbers from the plain moments (no wall units needed): the
        profiles folded as ``ChannelStatistics`` folds them (even; −u′v′ odd)."""
        n = max(self.steps, 1)
        mean = self.first / n
        cov = self.second / n - np.einsum("iy,jy->ijy", mean, mean)
        half = (mean.shape[1] + 1) // 2
        lower, upper = np.arange(half), mean.shape[1] - 1 - np.arange(half)
        even = lambda a: 0.5 * (a[lower] + a[upper])  # noqa: E731
        mine = {
            "u_mean": even(mean[0]),
            "u_rms": np.sqrt(np.maximum(even(cov[0, 0]), 0)),
            "v_rms": np.sqrt(np.maximum(even(cov[1, 1]), 0)),
            "w_rms": np.sqrt(np.maximum(even(cov[2, 2]), 0)),
            "uv": -0.5 * (cov[0, 1][lower] - cov[0, 1][upper]),
        }
        ref = dimensional_profiles(reference)
        q = quadrature_weights(np.asarray(reference.y))
        return {
            k: math.sqrt(float(q @ (mine[k] - ref[k]) ** 2) / float(q @ ref[k] ** 2))
            for k in PROFILES
        }

    def row(self, reference) -> dict:
        out = {"name": f"channel_surrogate_{self.name}", "column": self.name, "kind": self.kind}
        for label, result in (("err", self.stats.running()), ("last", self.stats.windowed())):
            errors = profile_errors(result, reference) if result is not None else {}
            for key in ("u_mean", "u_rms", "v_rms", "w_rms", "uv"):
                value = errors.get(key)
                out[f"{label}_{key}"] = (
                    value if value is not None and math.isfinite(value) else None
                )
        running = self.stats.running()
        out["wall_units"] = running is not None
        if running is None and self.steps:
            for key, value in self.moment_errors(reference).items():
                out[f"err_{key}"] = value
        out["u_first_cell"] = float(self.first[0, 0] / max(self.steps, 1))  # U, first cell centre
        out["re_tau"] = running.re_tau if running is not None else None
        out["centreline_u_plus"] = running.centreline_u_plus if running is not None else None
        out["diverged_at"] = self.diverged_at
        out["diverged_reason"] = self.reason
        out["steps"] = self.steps
        out["horizon"] = self.ctx["horizon"]
        out["ms"] = statistics.median(self.ms) if self.ms else None
        return out


def model_column(name, model, start: torch.Tensor, ctx: dict) -> Column:
    column = Column(name, "model", start, ctx)
    frames = autoregressive_rollout(model, start[:, None], ctx["horizon"])
    for step in range(1, ctx["horizon"] + 1):
        tick = time.perf_counter()
        u = next(frames)
        if not column.record(step, u, (time.perf_counter() - tick) * 1e3):
            break
        if step % 25 == 0:
            log(f"{name}: step {step}/{ctx['horizon']}")
    return column


def closure_column(closure: str, config, start: torch.Tensor, ctx: dict) -> Column:
    les = CoarseLES(config, ctx["grid"], closure)
    column = Column(closure, "closure", start, ctx)
    les.start(start)
    for step in range(1, ctx["horizon"] + 1):
        tick = time.perf_counter()
        try:
            u, reason = les.advance(ctx["interval"]), None
        except FloatingPointError as exc:
            u, reason = None, f"the solver stopped: {exc}"
        if not column.record(step, u, (time.perf_counter() - tick) * 1e3, reason):
            break
        if step % 25 == 0:
            log(f"{closure}: step {step}/{ctx['horizon']}")
    return column


def frozen_column(start: torch.Tensor, ctx: dict) -> Column:
    column = Column("frozen", "frozen", start, ctx)
    for step in range(1, ctx["horizon"] + 1):
        column.record(step, start, 0.0)
    return column


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def markdown_tables(path: Path) -> str:
    """The columns' statistics errors and costs, and the models' training, as markdown."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    head = (
        "| column | kind | U | u′rms | v′rms | w′rms | −u′v′ | u′rms, last ¼ | −u′v′, last ¼ "
        "| Re_τ | diverged at | ms / interval | speedup vs dynamic |"
    )
    lines = [head, "|" + " --- |" * 13]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    r["column"],
                    r["kind"],
                    *(_cell(r.get(f"err_{k}"), 2) for k in ("u_mean", "u_rms", "v_rms")),
                    *(_cell(r.get(f"err_{k}"), 2) for k in ("w_rms", "uv")),
                    _cell(r.get("last_u_rms"), 2),
                    _cell(r.get("last_uv"), 2),
                    _cell(r.get("re_tau"), 4),
                    _cell(r.get("diverged_at")) if r["kind"] != "reference" else "",
                    _cell(r.get("ms"), 3) if r["kind"] != "frozen" else "",
                    _cell(r.get("speedup"), 3) if r["kind"] != "frozen" else "",
                ]
            )
            + " |"
        )
    models = [r for r in rows if r["kind"] == "model"]
    if models:
        lines += [
            "",
            "| model | parameters | epochs | train s | val rel L2 | persistence | ratio |",
            "|" + " --- |" * 7,
        ]
        for r in models:
            cells = [r["column"], f"{r['parameters']:,}", _cell(r["epochs"]), _cell(r["train_s"])]
            cells += [_cell(r[k], 3) for k in ("val_rel_l2", "persistence_rel_l2")]
            cells.append(_cell(r["val_over_persistence"], 3))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.table is not None:
        print(markdown_tables(args.table))
        return
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    params = job_params(args)
    config = channel_config(params)
    frames, meta = load_or_make_data(args, params)
    coarse = stored_y_grid(params, config)
    data, val_pos = segments(frames, args)
    log(f"data: {data.shape[0]} segments of {data.shape[1]} frames, held out at {val_pos}")

    y = coarse.y_centres.to(torch.float64)
    ref_stats = ChannelStatistics(y, config.nu, config.lx, config.lz)
    ref_stats.update(torch.from_numpy(frames).to(torch.float64))
    reference = ref_stats.result()
    log(
        f"reference (filtered data, {frames.shape[0]} frames): Re_τ {reference.re_tau:.1f}, "
        f"centreline U⁺ {reference.centreline_u_plus:.2f}; fine grid: Re_τ "
        f"{meta['fine_re_tau']:.1f}, U⁺_c {meta['fine_centreline_u_plus']:.2f}; MKM 1999: "
        f"{MKM_RE180.re_tau}, {MKM_RE180.centreline_u_plus}"
    )

    trained = {arch: train_model(arch, args, data, val_pos) for arch in args.models}

    ox, oy, oz = grid_of(args.coarse)
    ctx = {
        "y": y,
        "nu": config.nu,
        "lx": config.lx,
        "lz": config.lz,
        "horizon": args.horizon,
        "interval": args.interval,
        "grid": (ox, oy, oz),
        "weights": bulk_weights(y),
    }
    start = data[val_pos[0], 0][None].float()  # the first frame of the first held-out segment
    columns = []
    for arch, (model, _) in trained.items():
        log(f"{arch}: rolling out {args.horizon} intervals")
        columns.append(model_column(arch, model, start, ctx))
    for closure in CLOSURES:
        log(f"{closure}: coarse solver for {args.horizon} intervals")
        columns.append(closure_column(closure, dataclasses.replace(config), start, ctx))
    columns.append(frozen_column(start, ctx))

    peer_ms = next(c for c in columns if c.name == PEER).row(reference)["ms"]
    rows = []
    for column in columns:
        row = column.row(reference)
        if column.kind == "model":
            row.update(trained[column.name][1])
        if column.kind != "frozen":
            row.update(
                ours_ms=row["ms"],
                peer=PEER_LABEL,
                peer_ms=peer_ms,
                ratio=row["ms"] / peer_ms,
                speedup=peer_ms / row["ms"],
            )
        rows.append(row)
    fine_ms = meta["fine_ms_per_interval"]
    rows.append(
        {
            "name": "channel_surrogate_reference",
            "column": "reference",
            "kind": "reference",
            "description": (
                f"statistics of the filtered fine LES ({args.closure}, "
                f"{'×'.join(map(str, meta['fine_grid']))}) over all {frames.shape[0]} stored "
                f"frames on {ox}×{oy}×{oz}; {meta['filter_description']}"
            ),
            "re_tau": reference.re_tau,
            "centreline_u_plus": reference.centreline_u_plus,
            "bulk_u_plus": reference.bulk_u_plus,
            "fine_re_tau": meta["fine_re_tau"],
            "fine_centreline_u_plus": meta["fine_centreline_u_plus"],
            "fine_bulk_u_plus": meta["fine_bulk_u_plus"],
            "ref": MKM_RE180.name,
            "ref_re_tau": MKM_RE180.re_tau,
            "ref_centreline_u_plus": MKM_RE180.centreline_u_plus,
            "err_re_tau": reference.re_tau / MKM_RE180.re_tau - 1,
            "err_centreline_u_plus": reference.centreline_u_plus / MKM_RE180.centreline_u_plus - 1,
            "fine_err_re_tau": meta["fine_re_tau"] / MKM_RE180.re_tau - 1,
            "fine_err_centreline_u_plus": meta["fine_centreline_u_plus"]
            / MKM_RE180.centreline_u_plus
            - 1,
            "frames": int(frames.shape[0]),
            "spinup": args.spinup,
            "sample": args.sample,
            "interval": args.interval,
            "fine_dt_mean": meta["fine_dt_mean"],
            "fine_ms_per_step": meta["fine_ms_per_step"],
            "ms": fine_ms,
            "ours_ms": fine_ms,
            "peer": PEER_LABEL,
            "peer_ms": peer_ms,
            "ratio": fine_ms / peer_ms,
            "speedup": peer_ms / fine_ms,
            "data_s": meta["data_s"],
        }
    )
    for row in rows:
        row["threads"] = args.threads
        print(json.dumps(row), flush=True)
    log(f"done in {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
