"""A reference rollout through the job machinery against the bare solver loop.

ours: the `rollout` runner (reference solver only): solver steps plus, per step, the
      diagnostics (energy, enstrophy, spectrum), one SWMR HDF5 frame and one event row.
peer: the same solver advancing the same field by the same steps with nothing else.
ratio = ours_ms / peer_ms is the cost of watching a run live.

    python bench/rollout_reference.py [--n 64] [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from app import jobs
from app.artifacts import ArtifactStore
from app.db.session import Database
from app.settings import Settings
from physics.flows import get_flow
from workers.context import JobContext
from workers.runners.rollout import DEFAULT_INTERVAL, run_rollout


class _NoQueue:
    def send(self, job) -> None:
        pass

    def revoke(self, job) -> None:
        pass


def time_job(n: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        db = Database(settings.resolved_database_url)
        db.migrate()
        params = {
            "initial_condition_id": None,
            "model_id": None,
            "flow": "ns2d-forced",
            "resolution": n,
            "steps": steps,
            "interval": None,
            "seed": 0,
        }
        job = jobs.submit(db, _NoQueue(), "rollout", params, "cpu")
        jobs.claim(db, job.id, "bench", False)
        ctx = JobContext(
            job.id,
            "rollout",
            params,
            settings,
            db,
            ArtifactStore(settings.resolved_artifact_root),
            torch.device("cpu"),
        )
        start = time.perf_counter()
        run_rollout(ctx)
        elapsed = time.perf_counter() - start
        db.engine.dispose()
        return elapsed * 1e3


def time_solver(n: int, steps: int) -> float:
    flow = get_flow("ns2d-forced")
    solver = flow.make_solver(n)
    w = flow.random_initial_condition(n, seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        w = solver.advance(w, DEFAULT_INTERVAL)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    time_solver(args.n, 2)  # warm up FFT plans and imports
    ours = min(time_job(args.n, args.steps) for _ in range(args.repeats))
    peer = min(time_solver(args.n, args.steps) for _ in range(args.repeats))
    print(
        json.dumps(
            {
                "name": f"reference_rollout_{args.n}x{args.n}_{args.steps}_steps",
                "ours_ms": round(ours, 1),
                "peer": "bare VorticitySolver2D.advance loop, same steps",
                "peer_ms": round(peer, 1),
                "ratio": round(ours / peer, 3),
                "torch_threads": torch.get_num_threads(),
                "numpy": np.__version__,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
