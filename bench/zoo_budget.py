"""Every model of the zoo trained on the same dataset under the same wall-clock budget.

For each architecture: build it, time a few optimiser steps to size the run, choose the
number of epochs that fits the budget (one-cycle schedule over exactly those epochs), train
with :func:`models.training.train`, and print one JSON line: the one-call validation
relative L2 error on held-out trajectories against persistence (the named peer: predicting
no change), the wall time used, the parameter count.

    python bench/zoo_budget.py DATASET.h5 --budget-s 1200 --threads 2 [--models fno2d,unet2d]

DATASET is an Eddyscope dataset (``eddyscope generate``); its trajectories are split by
trajectory, 20 % held out, exactly as a train job does. Each trained model is saved
(safetensors + JSON) under ``--save-dir``, ready to be compared (``bench/compare_zoo.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch

from models.checkpoint import save_model
from models.registry import build_model, parameter_count
from models.training import TrainConfig, TrainingStopped, evaluate, train
from models.windows import Windows, split_trajectories
from workers.runners.train import load_trajectories

# Configurations sized for a 64² grid and a CPU budget of minutes. Same data, same budget.
ZOO = {
    "fno2d": {"width": 32, "modes": 12, "n_layers": 4},
    "ifno": {"width": 32, "modes": 12, "n_iterations": 4},
    "unet2d": {"width": 16, "levels": 3},
    "factformer2d": {"dim": 64, "heads": 4, "head_dim": 16, "n_layers": 3},
    "ifactformer2d": {"dim": 64, "heads": 4, "head_dim": 16, "n_iterations": 4},
    "sfno": {
        "history": 4,
        "out_steps": 1,
        "width": 16,
        "modes": 12,
        "modes_t": 2,
        "n_layers": 4,
        "latent_steps": 4,
    },
}


def time_steps(arch: str, config: dict, data: torch.Tensor, batch: int, steps: int = 4) -> float:
    """Seconds per optimiser step (after one warm-up step), on a throwaway model."""
    model = build_model(arch, config)
    contract = model.contract
    span = contract.history + contract.out_steps
    x = data[:batch, :span]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        loss = (model(x[:, : contract.history]) - x[:, contract.history :]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--budget-s", type=float, default=1200.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--models", default=",".join(ZOO))
    parser.add_argument("--config", type=json.loads, default={}, help="JSON overrides per arch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save-dir",
        type=Path,
        default=None,
        help="where each trained model is saved (models.checkpoint); default: zoo_models/ "
        "next to the dataset file",
    )
    args = parser.parse_args()
    save_dir = args.save_dir or args.dataset.parent / "zoo_models"
    torch.set_num_threads(args.threads)

    data, attrs = load_trajectories(args.dataset)
    for arch in args.models.split(","):
        config = {**ZOO[arch], **args.config.get(arch, {})}
        torch.manual_seed(args.seed)
        model = build_model(arch, copy.deepcopy(config))
        contract = model.contract
        n_train = round(0.8 * data.shape[0])
        windows = n_train * (data.shape[1] - contract.history - contract.out_steps + 1)
        steps_per_epoch = math.ceil(windows / args.batch_size)
        step_s = time_steps(arch, config, data, args.batch_size)
        # 15 % of the budget is kept for validation passes and the slower steps of a long run.
        epochs = max(1, int(0.85 * args.budget_s / (step_s * steps_per_epoch)))
        config_train = TrainConfig(
            epochs=epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            events_every=50,
        )
        started = time.perf_counter()

        def progress(event, arch=arch):
            if event["type"] == "epoch":
                print(json.dumps({"arch": arch, **event}), flush=True)

        deadline = started + args.budget_s

        def out_of_time(deadline=deadline) -> bool:
            return time.perf_counter() > deadline

        stopped_early = False
        try:
            result = train(model, data, config_train, on_event=progress, should_stop=out_of_time)
            val_rel_l2, persistence_rel_l2 = result.val_rel_l2, result.persistence_rel_l2
        except TrainingStopped:
            # The machine was slower than the warm-up said: the budget is a hard limit, so
            # the model is evaluated as it stands.
            stopped_early = True
            generator = torch.Generator().manual_seed(args.seed)
            _, val_idx = split_trajectories(data.shape[0], config_train.val_fraction, generator)
            windows = Windows(data, val_idx, contract.history, contract.out_steps)
            val_rel_l2, persistence_rel_l2 = evaluate(model, windows, args.batch_size, "cpu")
        seconds = time.perf_counter() - started
        save_model(
            save_dir / arch,
            arch,
            config,
            model,
            {
                "flow": attrs.get("flow"),
                "interval": float(attrs.get("interval", 0)),
                "resolution": int(data.shape[-1]),
                "val_rel_l2": val_rel_l2,
                "persistence_rel_l2": persistence_rel_l2,
                "train_s": seconds,
                "dataset": str(args.dataset),
            },
        )
        print(
            json.dumps(
                {
                    "name": f"zoo_budget_{arch}",
                    "arch": arch,
                    "config": config,
                    "parameters": parameter_count(model),
                    "dataset": str(args.dataset.name),
                    "flow": attrs.get("flow"),
                    "interval": float(attrs.get("interval", 0)),
                    "grid": list(data.shape[3:]),
                    "trajectories": int(data.shape[0]),
                    "snapshots": int(data.shape[1]),
                    "budget_s": args.budget_s,
                    "train_s": round(seconds, 1),
                    "epochs": epochs,
                    "ms_per_step_estimate": round(1000 * step_s, 1),
                    "stopped_at_budget": stopped_early,
                    "val_rel_l2": val_rel_l2,
                    "peer": "persistence",
                    "persistence_rel_l2": persistence_rel_l2,
                    "ratio": val_rel_l2 / persistence_rel_l2,
                    "threads": args.threads,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
