"""train / finetune: a model from a dataset's one-step pairs, registered when done."""

from __future__ import annotations

import shutil
from typing import Any

import torch

from app.db.tables import Dataset, Model, new_id
from models.checkpoint import load_model, save_model
from models.registry import build_model, parameter_count
from models.training import TrainConfig, TrainingStopped, train_one_step
from physics.io import read_dataset
from workers.context import JobCancelled, JobContext, JobError


def run_train(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    with ctx.db.session() as session:
        dataset = session.get(Dataset, p["dataset_id"])
        base = session.get(Model, p["model_id"]) if ctx.kind == "finetune" else None
    if dataset is None:
        raise JobError(f"dataset {p['dataset_id']} no longer exists")
    if ctx.kind == "finetune" and base is None:
        raise JobError(f"model {p['model_id']} no longer exists")

    data, attrs = read_dataset(ctx.artifacts.resolve(dataset.path))
    if data.shape[1] < 2:
        raise JobError("the dataset needs at least two snapshots per trajectory to make pairs")
    trajectories = torch.from_numpy(data).unsqueeze(2)  # (traj, time, 1, n, n)

    if base is not None:
        model, info = load_model(ctx.artifacts.resolve(base.path))
        arch, config = info["arch"], info["config"]
        if abs(base.interval - float(attrs["interval"])) > 1e-9:
            raise JobError(
                f"the model steps by {base.interval} but the dataset's snapshots are "
                f"{attrs['interval']} apart; fine-tune on data with the same interval"
            )
    else:
        arch, config = p["arch"], p["config"]
        try:
            model = build_model(arch, config)
        except ValueError as exc:
            raise JobError(str(exc)) from exc
        config = model.config.to_dict() if hasattr(model, "config") else config

    train_config = TrainConfig(
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        lr=p["lr"],
        weight_decay=p["weight_decay"],
        val_fraction=p["val_fraction"],
        seed=p["seed"],
    )

    def on_event(event: dict[str, Any]) -> None:
        progress = None
        if event.get("total_steps"):
            progress = event["step"] / event["total_steps"]
        elif "epoch" in event:
            progress = event["epoch"] / p["epochs"]  # epochs count from 1
        ctx.report(event.get("type", "train"), event, progress=progress)

    try:
        result = train_one_step(
            model,
            trajectories,
            train_config,
            on_event=on_event,
            should_stop=ctx.should_stop,
            device=ctx.device,
        )
    except TrainingStopped as exc:
        raise JobCancelled(ctx.job_id) from exc

    model_id = new_id()
    relative = ctx.artifacts.model_dir(model_id)
    directory = ctx.artifacts.resolve(relative)
    metrics = {
        "val_rel_l2": result.val_rel_l2,
        "persistence_rel_l2": result.persistence_rel_l2,
        "epochs": p["epochs"],
        "history": result.history,
    }
    metadata = {
        "flow": dataset.flow,
        "dataset_id": dataset.id,
        "interval": float(attrs["interval"]),
        "resolution": int(data.shape[-1]),
        "train_trajectories": result.train_trajectories,
        "val_trajectories": result.val_trajectories,
        "finetuned_from": base.id if base else None,
    }
    try:
        save_model(directory, arch, config, result.model.cpu(), metadata)
        with ctx.db.session() as session:
            session.add(
                Model(
                    id=model_id,
                    name=p.get("name") or f"{arch} on {dataset.name}",
                    arch=arch,
                    flow=dataset.flow,
                    config=config,
                    metrics=metrics,
                    parameter_count=parameter_count(result.model),
                    resolution=int(data.shape[-1]),
                    interval=float(attrs["interval"]),
                    dataset_id=dataset.id,
                    path=relative,
                    job_id=ctx.job_id,
                )
            )
            session.commit()
    except Exception:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return {
        "model_id": model_id,
        "val_rel_l2": result.val_rel_l2,
        "persistence_rel_l2": result.persistence_rel_l2,
    }
