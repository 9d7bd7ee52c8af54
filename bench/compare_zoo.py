"""A comparison of trained models on ns2d-forced through the real ``compare`` job: the
models ``bench/zoo_budget.py`` saved, from one held-out trajectory's first frame, 200 steps
beside the reference solver. Prints the job's summary rows as JSON lines (error at chosen
times, decorrelation time, band errors, measured ms per step and speedup against the solver).

    python bench/compare_zoo.py DATASET.h5 MODELS_DIR [--steps 200] [--data-dir DIR]

The models are registered in a fresh Eddyscope data directory (SQLite, artifacts) and the job
runs inline (``eddyscope compare --inline``), on this machine's CPU or GPU.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import select

from app.artifacts import ArtifactStore
from app.db.session import get_database
from app.db.tables import Job, Model, new_id
from app.services.initial_conditions import store_initial_condition
from app.settings import Settings
from models.windows import split_trajectories
from workers.runners.train import load_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("models", type=Path, help="directory of saved models, one per arch")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=Path("compare-zoo-data"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    shutil.rmtree(args.data_dir, ignore_errors=True)
    settings = Settings(data_dir=args.data_dir)
    db = get_database(settings.resolved_database_url)
    artifacts = ArtifactStore(settings.resolved_artifact_root)

    # The first frame of the first held-out trajectory (the split a train job makes).
    data, attrs = load_trajectories(args.dataset)
    _, val = split_trajectories(
        data.shape[0], args.val_fraction, torch.Generator().manual_seed(args.seed)
    )
    buffer = io.BytesIO()
    np.save(buffer, data[val[0], 0, 0].numpy())
    ic = store_initial_condition(db, artifacts, "ns2d-forced", "held_out.npy", buffer.getvalue())

    entries = []
    for directory in sorted(p for p in args.models.iterdir() if (p / "config.json").exists()):
        info = json.loads((directory / "config.json").read_text())
        model_id = new_id()
        shutil.copytree(directory, artifacts.resolve(artifacts.model_dir(model_id)))
        with db.session() as session:
            session.add(
                Model(
                    id=model_id,
                    name=f"{info['arch']} (zoo budget)",
                    arch=info["arch"],
                    flow="ns2d-forced",
                    config=info["config"],
                    metrics={"val_rel_l2": info["metadata"].get("val_rel_l2")},
                    parameter_count=info["parameter_count"],
                    resolution=int(data.shape[-1]),
                    interval=float(attrs["interval"]),
                    dataset_id=None,
                    path=artifacts.model_dir(model_id),
                )
            )
            session.commit()
        entries.append({"model_id": model_id, "precision": "float32"})
        if info["arch"] == "fno2d":
            entries.append({"model_id": model_id, "precision": "int8"})

    env = {
        **os.environ,
        "EDDYSCOPE_DATA_DIR": str(args.data_dir),
        "EDDYSCOPE_TORCH_THREADS": str(args.threads),
    }
    command = [sys.executable, "-m", "app.cli", "compare", "--inline"]
    command += ["--initial-condition-id", ic.id, "--models", json.dumps(entries)]
    command += ["--steps", str(args.steps)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)

    with db.session() as session:
        job = session.scalars(select(Job).where(Job.kind == "compare")).one()
        if job.status != "succeeded":
            raise SystemExit(f"the compare job {job.status}: {job.error}")
        for row in job.result["summary"]["rows"]:
            print(json.dumps({**row, "bench": "compare_zoo", "steps": args.steps}))


if __name__ == "__main__":
    main()
