"""How the shipped demo model was made (rerun to reproduce it on the same torch build, on
the CPU, one thread): data from the ns2d-forced reference solver that covers what a user
rolls out first, a small FNO trained on it with the same loop a train job runs
(``models.training.train``), its rollout skill measured, and the weights, config and card
written.

    python static/demo_model/make_demo_model.py --out static/demo_model --epochs 12

Data (64², Δt = 1, all from the 64² solver unless said):
* ``--n-grf`` trajectories from fresh Gaussian random fields (the flow's default family,
  what a rollout without an initial condition starts from), each scaled by an amplitude
  drawn log-uniformly in [1/2, 2], snapshots t = 0 … ``--snapshots``−1;
* ``--n-developed`` trajectories from developed states: a GRF on 128² advanced 1–8 time
  units on 128², truncated to 64² (as the shipped example was made on 256²), scaled by an
  amplitude in [1/2, 2], then the same snapshots on 64².
Trajectory i draws its field with seed ``seed·1000 + i`` (GRF) or ``seed·1000 + 500 + i``
(developed) and its amplitude and warm-up from a generator seeded with ``seed`` — the
skill checks use seeds outside these (the test: 90210; validation here: 31337).

``--budget-s`` instead of ``--epochs`` times a few steps first and picks the epochs that
fit; the card records the epochs used, so ``--epochs`` reproduces the run.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import save_model
from models.input_stats import training_statistics
from models.registry import build_model, parameter_count
from models.rollout_skill import reference_trajectory, rollout_skill
from models.training import TrainConfig, train, unrolled_predictions
from models.windows import Windows
from physics.flows import get_flow
from physics.resample import spectral_truncate

FLOW = "ns2d-forced"
N = 64
INTERVAL = 1.0
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "example_ns2d_forced_64.npy"
VALIDATION_SEED = 31337


def make_data(args) -> tuple[torch.Tensor, list[dict]]:
    flow = get_flow(FLOW)
    rng = np.random.default_rng(args.seed)
    solver = flow.make_solver(N, dtype=torch.float32)
    fine = flow.make_solver(2 * N, dtype=torch.float32)
    starts, described = [], []
    for i in range(args.n_grf):
        amp = float(2.0 ** rng.uniform(-1, 1))
        w = flow.random_initial_condition(N, seed=args.seed * 1000 + i) * amp
        starts.append(w)
        described.append({"kind": "grf", "seed": args.seed * 1000 + i, "amplitude": amp})
    for i in range(args.n_developed):
        amp = float(2.0 ** rng.uniform(-1, 1))
        warmup = float(rng.choice([1.0, 2.0, 4.0, 8.0]))
        seed = args.seed * 1000 + 500 + i
        w = fine.advance(flow.random_initial_condition(2 * N, seed=seed), warmup)
        starts.append(spectral_truncate(w, N) * amp)
        described.append({"kind": "developed", "seed": seed, "amplitude": amp, "warmup": warmup})
    data = _evolve(solver, torch.cat(starts), args.snapshots)  # (traj, time, 1, n, n)
    chunk = args.chunk or args.snapshots
    grf = data[: args.n_grf, :chunk]  # the transient from a fresh field: its first chunk
    developed = data[args.n_grf :]
    # Developed runs cut into pieces of `chunk` snapshots (one frame shared between pieces).
    pieces = [developed[:, s : s + chunk] for s in range(0, args.snapshots - chunk + 1, chunk - 1)]
    expanded = [d for d in described if d["kind"] == "grf"]
    for s in range(0, args.snapshots - chunk + 1, chunk - 1):
        expanded += [{**d, "from_t": s} for d in described if d["kind"] == "developed"]
    return torch.cat([grf, *pieces]), expanded


def _evolve(solver, w: torch.Tensor, snapshots: int) -> torch.Tensor:
    frames = [w]
    for _ in range(snapshots - 1):
        w = solver.advance(w, INTERVAL)
        frames.append(w)
    data = torch.stack(frames, dim=1)
    if not torch.isfinite(data).all():
        raise FloatingPointError("the solver diverged while making the data")
    return data


def seconds_per_step(model, data, config: TrainConfig) -> float:
    """Wall time of one optimiser step at this batch size and unroll (a throwaway copy)."""
    probe = build_model("fno2d", model.config.to_dict())
    probe.load_state_dict(model.state_dict())
    windows = Windows(data, list(range(data.shape[0])), 1, config.unroll)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    x, y = windows.batch(torch.arange(config.batch_size), torch.device("cpu"))
    times = []
    for _ in range(4):
        start = time.perf_counter()
        optimizer.zero_grad()
        pred = unrolled_predictions(probe, x, config.unroll, config.push_forward)
        loss = (pred - y[:, -pred.shape[1] :]).pow(2).mean()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def skill_from(model, w0: torch.Tensor, steps: int) -> dict:
    solver = get_flow(FLOW).make_solver(N, dtype=torch.float64)
    frames = reference_trajectory(solver, w0.double(), steps, INTERVAL).float()
    return rollout_skill(model, frames, horizons=range(1, steps + 1), interval=INTERVAL)


def summary(skill: dict) -> dict:
    keep = [h for h in (1, 2, 5, 10, 20, 40, 60) if h in skill["horizons"]]
    at = {h: skill["horizons"].index(h) for h in keep}
    return {
        "beats_persistence_at_every_step": skill["beats_persistence"],
        "worst_ratio": max(skill["ratio"]) if skill["ratio"] else None,
        "rel_l2": {str(h): round(skill["rel_l2"][i], 4) for h, i in at.items()},
        "persistence_rel_l2": {
            str(h): round(skill["persistence_rel_l2"][i], 4) for h, i in at.items()
        },
        "stopped_at": skill["stopped_at"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--n-grf", type=int, default=96)
    parser.add_argument("--n-developed", type=int, default=48)
    parser.add_argument("--snapshots", type=int, default=41)
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--modes", type=int, default=12)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--unroll", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--budget-s", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if (args.epochs is None) == (args.budget_s is None):
        parser.error("give --epochs or --budget-s")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    data, described = make_data(args)
    data_s = time.perf_counter() - started
    print(json.dumps({"data": list(data.shape), "seconds": round(data_s, 1)}), flush=True)

    config = {"channels": 1, "width": args.width, "modes": args.modes, "n_layers": args.layers}
    torch.manual_seed(args.seed)
    model = build_model("fno2d", config)
    push_forward = args.unroll > 1
    base = dict(
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_fraction=0.15,
        unroll=args.unroll,
        push_forward=push_forward,
        events_every=50,
    )
    epochs = args.epochs
    if epochs is None:
        step_s = seconds_per_step(model, data, TrainConfig(epochs=1, **base))
        n_train = data.shape[0] - round(0.15 * data.shape[0])
        per_epoch = math.ceil(n_train * (data.shape[1] - args.unroll) / args.batch_size)
        epochs = max(1, int(args.budget_s / (step_s * per_epoch * 1.08)))
        print(json.dumps({"step_s": round(step_s, 3), "per_epoch": per_epoch, "epochs": epochs}))

    def on_event(event: dict) -> None:
        if event["type"] == "epoch":
            shown = {k: event.get(k) for k in ("epoch", "train_loss", "val_rel_l2", "lr")}
            print(json.dumps({**shown, "s": round(time.perf_counter() - started)}), flush=True)

    outcome = train(model, data, TrainConfig(epochs=epochs, **base), on_event=on_event)
    model = outcome.model.eval()
    train_s = time.perf_counter() - started - data_s

    flow = get_flow(FLOW)
    held = data[outcome.val_trajectories]
    skills = {
        "held_out": rollout_skill(model, held, interval=INTERVAL),
        "validation_grf": summary(
            skill_from(model, flow.random_initial_condition(N, seed=VALIDATION_SEED), 20)
        ),
        "test_grf_seed_90210": summary(
            skill_from(model, flow.random_initial_condition(N, seed=90210), 20)
        ),
        "example": summary(skill_from(model, torch.from_numpy(np.load(EXAMPLE))[None, None], 60)),
    }
    for scale in (0.5, 2.0):
        w0 = flow.random_initial_condition(N, seed=VALIDATION_SEED + 1) * scale
        skills[f"validation_grf_x{scale:g}"] = summary(skill_from(model, w0, 20))
    print(json.dumps(skills), flush=True)

    inputs = data[outcome.train_trajectories, :-1]
    stats = training_statistics(inputs, flow.length)
    metadata = {
        "flow": FLOW,
        "dataset_id": None,
        "interval": INTERVAL,
        "resolution": N,
        "train_trajectories": outcome.train_trajectories,
        "val_trajectories": outcome.val_trajectories,
        "finetuned_from": None,
        "input_stats": stats,
        "rollout_skill": skills["held_out"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(args.out, "fno2d", config, model, metadata)
    total_s = time.perf_counter() - started
    command = (
        f"python static/demo_model/make_demo_model.py --out static/demo_model --seed {args.seed}"
        f" --n-grf {args.n_grf} --n-developed {args.n_developed} --snapshots {args.snapshots}"
        + (f" --chunk {args.chunk}" if args.chunk else "")
        + f" --width {args.width} --modes {args.modes} --layers {args.layers}"
        f" --unroll {args.unroll} --lr {args.lr:g} --batch-size {args.batch_size}"
        f" --epochs {epochs} --threads {args.threads}"
    )
    beats = [
        skills[k]["beats_persistence_at_every_step"] for k in ("test_grf_seed_90210", "example")
    ]
    claim = (
        " From a fresh GRF field (seed 90210) and from the shipped example it is below "
        "persistence's relative L2 at every step checked (t ≤ 20 and t ≤ 60)."
        if all(beats)
        else ""
    )
    card = {
        "name": "demo FNO (ns2d-forced, 64², Δt=1, GRF and developed)",
        "description": (
            f"FNO2d (width {args.width}, {args.modes} modes, {args.layers} layers, "
            f"{parameter_count(model):,} parameters) trained for {epochs} epochs on "
            f"{data.shape[0]} ns2d-forced trajectories × {data.shape[1]} snapshots (t = 0…"
            f"{data.shape[1] - 1}, Δt = 1, 64²): {args.n_grf} from fresh Gaussian random "
            f"fields and {args.n_developed} from developed states, amplitudes ½–2×; "
            f"{args.unroll}-step push-forward training." + claim
        ),
        "made_with": [command],
        "data": {
            "flow": FLOW,
            "resolution": N,
            "solver_resolution": N,
            "interval": INTERVAL,
            "n_trajectories": int(data.shape[0]),
            "n_snapshots": int(data.shape[1]),
            "run_snapshots": args.snapshots,
            "chunk": args.chunk,
            "seed": args.seed,
            "trajectories": described,
        },
        "training": {
            "epochs": epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "scheduler": "onecycle",
            "loss": "rel_l2",
            "unroll": args.unroll,
            "push_forward": push_forward,
            "val_fraction": 0.15,
            "seed": args.seed,
            "threads": args.threads,
            "device": "cpu",
            "torch": torch.__version__,
            "data_seconds": round(data_s, 1),
            "train_seconds": round(train_s, 1),
            "wall_seconds": round(total_s, 1),
        },
        "metrics": {
            "val_rel_l2": outcome.val_rel_l2,
            "persistence_rel_l2": outcome.persistence_rel_l2,
            "epochs": epochs,
            "input_stats": stats,
            "rollout_skill": skills["held_out"],
        },
        "skill_against_the_solver": {k: v for k, v in skills.items() if k != "held_out"},
    }
    (args.out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"wall_s": round(total_s, 1), "epochs": epochs}), flush=True)


if __name__ == "__main__":
    main()
