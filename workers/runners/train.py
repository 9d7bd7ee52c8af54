"""train / finetune: any model of the zoo from a dataset's trajectories, checkpointed every
epoch, resumed after a redelivery, registered when done.

A job's training state lives under ``checkpoints/<job id>``: when a worker dies mid-training
(kill -9, out of memory) the broker redelivers the message, the next worker takes the job
over and :func:`models.training.train` continues from the last finished epoch. A cancel stops
within one optimiser step and leaves the checkpoint in place. ``gpus > 1`` runs the same loop
in that many data-parallel processes (one per GPU, or gloo on the CPU).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from app import jobs
from app.db.session import get_database
from app.db.tables import Dataset, Model, new_id
from app.jobkinds.limits import worker_ranks_error
from app.settings import get_settings
from models import distributed
from models.channel_skill import data_statistics, long_horizon_skill
from models.checkpoint import load_model, save_model
from models.input_stats import training_statistics
from models.pde_loss import make_pde_loss
from models.registry import build_model, get_spec, parameter_count
from models.rollout_skill import rollout_skill
from models.training import TrainConfig, TrainingStopped, train
from physics.diagnostics import kinetic_energy
from physics.flows import UnknownFlowError, get_flow
from workers.context import JobCancelled, JobContext, JobError
from workers.runners import finetune_gain, finetune_refine

FINAL_DIR = "final"
# The longest skill rollout a channel model gets when the job does not say.
LONG_HORIZON_DEFAULT_MAX = 400
# A 2D model's rollout skill is averaged over at most this many held-out trajectories.
SKILL_TRAJECTORIES = 4
# A 2D model's input statistics are measured on at most this many training frames.
INPUT_STATS_FRAMES = 2000
RESULT_FILE = "ddp_result.json"


def load_trajectories(path: Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """A dataset's trajectories as ``(n_traj, n_time, C, *space)`` float32, and its attributes.

    2D flows store vorticity ``(traj, time, n, n)`` (one channel); 3D flows store velocity
    with its components last, as The Well lays out vector fields, ``(traj, time, *space, 3)``.
    """
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        scalars = f.get("t0_fields", {})
        vectors = f.get("t1_fields", {})
        if "vorticity" in scalars:
            data = torch.from_numpy(np.asarray(scalars["vorticity"][...], dtype=np.float32))
            return data.unsqueeze(2), attrs
        if "velocity" in vectors:
            data = torch.from_numpy(np.asarray(vectors["velocity"][...], dtype=np.float32))
            return data.movedim(-1, 2).contiguous(), attrs
    raise JobError(f"{path.name} holds neither vorticity nor velocity fields")


def _domain_length(flow_name: str) -> float:
    try:
        return float(get_flow(flow_name).length)
    except UnknownFlowError:
        return 1.0


def pde_loss_for(flow_name: str, attrs: dict[str, Any], config: TrainConfig):
    """The physics loss a job weights (``pde_weight > 0``, else None), from the dataset's
    flow, its parameters (the file's attributes: ν, drag, …) and its snapshot spacing."""
    if config.pde_weight <= 0:
        return None
    params = {
        k: v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v
        for k, v in attrs.items()
    }
    try:
        return make_pde_loss(flow_name, params, float(attrs["interval"]), config.length)
    except (KeyError, ValueError) as exc:
        raise JobError(f"the physics loss cannot be built for this dataset: {exc}") from None


def _build(ctx: JobContext, base: Model | None, trajectories: torch.Tensor):
    """(arch, config dict, model) for a new model or for the fine-tuned base."""
    p = ctx.params
    if base is not None:
        model, info = load_model(ctx.artifacts.resolve(base.path))
        arch = info["arch"]
        if p.get("output_modes"):
            refine = getattr(model, "refine_output_modes", None)
            if refine is None:
                raise JobError(
                    f"output_modes applies to the spatiotemporal FNO only; {base.name} is "
                    f"a {get_spec(arch).label}"
                )
            try:
                refine(p["output_modes"], p.get("output_modes_t"))
            except ValueError as exc:
                raise JobError(str(exc)) from None
        return arch, model.config.to_dict(), model
    arch, config = p["arch"], dict(p["config"])
    config.setdefault("channels", int(trajectories.shape[2]))
    torch.manual_seed(p["seed"])  # the same initial weights for the same seed
    try:
        model = build_model(arch, config)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    return arch, model.config.to_dict(), model


def _check_fit(model, trajectories: torch.Tensor, params: dict[str, Any]) -> None:
    contract = model.contract
    space = tuple(trajectories.shape[3:])
    if len(space) != contract.dims or trajectories.shape[2] != contract.channels:
        raise JobError(
            f"the model takes {contract.dims}D fields with {contract.channels} channel(s); the "
            f"dataset has {len(space)}D fields with {trajectories.shape[2]} channel(s)"
        )
    try:
        model.config.check_grid(space)
    except ValueError as exc:
        raise JobError(f"the dataset's grid does not fit the model: {exc}") from None
    needed = contract.history + params["unroll"] * contract.out_steps
    if trajectories.shape[1] < needed:
        raise JobError(
            f"each sample needs {needed} consecutive snapshots ({contract.history} in, "
            f"{params['unroll']} × {contract.out_steps} out); the dataset's trajectories have "
            f"{trajectories.shape[1]}"
        )


def _progress(event: dict[str, Any], epochs: int) -> float | None:
    if event.get("total_steps"):
        return event["step"] / event["total_steps"]
    if "epoch" in event:
        return event["epoch"] / epochs
    return None


def run_train(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    if p.get("online"):  # trains on windows streamed by producer jobs, no dataset read
        from workers.runners.train_online import run_train_online

        return run_train_online(ctx)
    # Before anything is loaded or spawned: one process per GPU (per CPU core without CUDA).
    refused = worker_ranks_error(p.get("gpus", 1), ctx.device.type == "cuda")
    if refused:
        raise JobError(refused)
    with ctx.db.session() as session:
        dataset = session.get(Dataset, p["dataset_id"])
        base = session.get(Model, p["model_id"]) if ctx.kind == "finetune" else None
    if dataset is None:
        raise JobError(f"dataset {p['dataset_id']} no longer exists")
    if ctx.kind == "finetune" and base is None:
        raise JobError(f"model {p['model_id']} no longer exists")

    trajectories, attrs = load_trajectories(ctx.artifacts.resolve(dataset.path))
    if trajectories.shape[1] < 2:
        raise JobError("the dataset needs at least two snapshots per trajectory to make pairs")
    if base is not None and abs(base.interval - float(attrs["interval"])) > 1e-9:
        raise JobError(
            f"the model steps by {base.interval} but the dataset's snapshots are "
            f"{attrs['interval']} apart; fine-tune on data with the same interval"
        )
    arch, config, model = _build(ctx, base, trajectories)
    _check_fit(model, trajectories, p)

    try:
        train_config = TrainConfig.from_params(p, length=_domain_length(dataset.flow))
    except ValueError as exc:
        raise JobError(str(exc)) from None
    pde_loss = pde_loss_for(dataset.flow, attrs, train_config)
    # A fine-tune's base, scored before training on what the fine-tune will hold out.
    baseline = finetune_gain.baseline(ctx, base, dataset, trajectories, train_config)
    checkpoints = ctx.artifacts.resolve(ctx.artifacts.training_checkpoints(ctx.job_id))
    started = time.perf_counter()

    if p.get("gpus", 1) > 1:
        result = _train_data_parallel(ctx, arch, config, model, dataset, train_config, checkpoints)
        trained = result.pop("model")
    else:

        def on_event(event: dict[str, Any]) -> None:
            ctx.report(event["type"], event, progress=_progress(event, p["epochs"]))

        try:
            outcome = train(
                model,
                trajectories,
                train_config,
                on_event=on_event,
                should_stop=ctx.should_stop,
                device=ctx.device,
                checkpoint_dir=checkpoints,
                pde_loss=pde_loss,
            )
        except TrainingStopped as exc:
            raise JobCancelled(ctx.job_id) from exc
        trained = outcome.model
        result = {
            "history": outcome.history,
            "val_rel_l2": outcome.val_rel_l2,
            "persistence_rel_l2": outcome.persistence_rel_l2,
            "train_trajectories": outcome.train_trajectories,
            "val_trajectories": outcome.val_trajectories,
            "resumed_from_epoch": outcome.resumed_from_epoch,
            "val_pde_residual": outcome.val_pde_residual,
        }
    if ctx.kind == "finetune" and p.get("refine_iterations"):
        result["refine"] = finetune_refine.refine(ctx, trained, trajectories, result, train_config)
    seconds = time.perf_counter() - started
    if _is_channel(dataset.flow) and trained.contract.dims == 3:
        result["long_horizon"] = _long_horizon(ctx, trained, trajectories, dataset, attrs, result)
    elif trained.contract.dims == 2:
        length = _domain_length(dataset.flow)
        result["input_stats"] = _input_stats(trajectories, result, length)
        result["rollout_skill"] = _rollout_skill(ctx, trained, trajectories, result, length, attrs)
    if baseline is not None:
        result["finetune_report"] = finetune_gain.report(
            ctx, baseline, trained, trajectories, result, train_config, float(attrs["interval"])
        )
    return _register(ctx, arch, config, trained, dataset, base, attrs, result, seconds)


def _is_channel(flow_name: str) -> bool:
    try:
        return get_flow(flow_name).geometry == "channel"
    except UnknownFlowError:
        return False


def long_horizon_steps(p: dict[str, Any], n_time: int) -> int:
    """The skill rollout's length: ``long_horizon_steps`` when given, else ten times the
    trajectories' length in steps (what the model never saw in one piece), at most
    ``LONG_HORIZON_DEFAULT_MAX``."""
    if p.get("long_horizon_steps") is not None:
        return int(p["long_horizon_steps"])
    return min(LONG_HORIZON_DEFAULT_MAX, 10 * max(1, n_time - 1))


def _long_horizon(ctx, model, trajectories, dataset, attrs, result) -> dict[str, Any] | None:
    """A channel model's long-horizon skill (``models.channel_skill``), from the first
    frames of its first held-out trajectory (of a training one when nothing was held out),
    against the statistics of every stored frame; reported as a ``long_horizon`` event."""
    steps = long_horizon_steps(ctx.params, trajectories.shape[1])
    if steps == 0:
        return None
    held = result.get("val_trajectories") or result.get("train_trajectories") or [0]
    history = model.contract.history
    window = trajectories[int(held[0]), :history][None]
    with h5py.File(ctx.artifacts.resolve(dataset.path), "r") as f:
        y = np.asarray(f["dimensions/y"][...], dtype=np.float64)
    nu, lx, lz = (float(attrs[k]) for k in ("nu", "lx", "lz"))
    ctx.report("progress", {"stage": "long_horizon", "steps": steps}, message="long-horizon skill")
    model = model.to(ctx.device)
    reference = data_statistics(trajectories, y, nu, lx, lz)
    try:
        skill = long_horizon_skill(
            model,
            window.to(ctx.device),
            reference,
            y,
            nu,
            lx,
            lz,
            steps,
            should_stop=ctx.should_stop,
        )
    except ValueError as exc:  # the data's own statistics cannot be formed
        skill = {"steps": steps, "error": str(exc)}
    ctx.report("long_horizon", skill)
    return skill


def _input_stats(trajectories, result, length: float) -> dict[str, Any] | None:
    """The statistics of a 2D model's training inputs (``models.input_stats``): every frame
    of its training trajectories but the last, which is only ever a target."""
    train_idx = torch.tensor(result.get("train_trajectories") or range(trajectories.shape[0]))
    n_time = trajectories.shape[1] - 1
    if trajectories.shape[2] != 1 or n_time < 1 or len(train_idx) == 0:
        return None  # input statistics are of one vorticity channel
    # At most INPUT_STATS_FRAMES frames, evenly spread, gathered without copying the rest.
    total = len(train_idx) * n_time
    pick = torch.linspace(0, total - 1, min(total, INPUT_STATS_FRAMES)).long()
    frames = trajectories[train_idx[pick // n_time], pick % n_time]
    try:
        return training_statistics(frames, length)
    except ValueError:
        return None


def _rollout_skill(ctx, model, trajectories, result, length: float, attrs) -> dict[str, Any]:
    """A 2D model's rollout skill (``models.rollout_skill``): rolled out from the first
    frame(s) of up to ``SKILL_TRAJECTORIES`` held-out trajectories (training ones when none
    was held out) along all their frames, its relative L2 against persistence's at several
    horizons and the step a divergence guard (energy > 10× the start's, or NaN) stops it;
    reported as a ``rollout_skill`` event."""
    held = result.get("val_trajectories") or result.get("train_trajectories") or [0]
    chosen = trajectories[[int(i) for i in held[:SKILL_TRAJECTORIES]]]
    ctx.report("progress", {"stage": "rollout_skill"}, message="rollout skill")
    try:
        skill = rollout_skill(
            model.to(ctx.device),
            chosen,
            energy=lambda w: kinetic_energy(w.double(), length),
            interval=float(attrs["interval"]),
            should_stop=ctx.should_stop,
        )
    except ValueError as exc:  # trajectories too short for any horizon
        skill = {"error": str(exc)}
    ctx.report("rollout_skill", skill)
    return skill


def _resolution(shape: list[int] | None, attrs: dict[str, Any]) -> int:
    """The one grid size a model row keeps: n of a 2D (traj, time, n, n) dataset; nx of a
    channel dataset (traj, time, nx, ny, nz, component), whose full grid the pages read
    from the dataset's shape."""
    if shape and len(shape) == 6:
        return int(shape[2])
    return int(shape[-1]) if shape else int(attrs.get("resolution", 0))


def _register(ctx, arch, config, model, dataset, base, attrs, result, seconds) -> dict[str, Any]:
    p = ctx.params
    contract = model.contract
    model_id = new_id()
    relative = ctx.artifacts.model_dir(model_id)
    directory = ctx.artifacts.resolve(relative)
    training = {
        k: p[k]
        for k in (
            "epochs",
            "batch_size",
            "lr",
            "weight_decay",
            "scheduler",
            "loss",
            "unroll",
            "push_forward",
            "gpus",
            "seed",
            "data_weight",
            "pde_weight",
        )
        if k in p
    }
    metrics = {
        "val_rel_l2": result["val_rel_l2"],
        "persistence_rel_l2": result["persistence_rel_l2"],
        "epochs": p["epochs"],
        "history": result["history"],
        "train_seconds": seconds,
        "resumed_from_epoch": result["resumed_from_epoch"],
        "training": training,
    }
    if result.get("val_pde_residual") is not None:
        metrics["val_pde_residual"] = result["val_pde_residual"]
    floor = (result["history"][-1] if result["history"] else {}).get("data_pde_residual")
    if floor is not None:  # the data's own residual: what the model's is to be read against
        metrics["data_pde_residual"] = floor
    for key in ("long_horizon", "rollout_skill", "input_stats", "finetune_report", "refine"):
        if result.get(key) is not None:
            metrics[key] = result[key]
    resolution = _resolution(dataset.shape, attrs)
    metadata = {
        "flow": dataset.flow,
        "dataset_id": dataset.id,
        "interval": float(attrs["interval"]),
        "resolution": resolution,
        "contract": contract.to_dict(),
        "train_trajectories": result["train_trajectories"],
        "val_trajectories": result["val_trajectories"],
        "finetuned_from": base.id if base else None,
        "training": training,
    }
    if result.get("input_stats") is not None:
        metadata["input_stats"] = result["input_stats"]
    try:
        save_model(directory, arch, config, model.cpu(), metadata)
        with ctx.db.session() as session:
            session.add(
                Model(
                    id=model_id,
                    name=p.get("name") or f"{get_spec(arch).label} on {dataset.name}",
                    arch=arch,
                    flow=dataset.flow,
                    config=config,
                    metrics=metrics,
                    parameter_count=parameter_count(model),
                    resolution=resolution,
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
    # The model is registered: the per-epoch training state has served its purpose.
    shutil.rmtree(ctx.artifacts.resolve(ctx.artifacts.training_checkpoints(ctx.job_id)), True)
    return {
        "model_id": model_id,
        "val_rel_l2": result["val_rel_l2"],
        "persistence_rel_l2": result["persistence_rel_l2"],
        "resumed_from_epoch": result["resumed_from_epoch"],
    } | ({"finetune_report": result["finetune_report"]} if "finetune_report" in result else {})


# --- data parallel ------------------------------------------------------------------------


def _train_data_parallel(ctx, arch, config, model, dataset, train_config, checkpoints):
    """Runs ``gpus`` ranks of :func:`models.training.train`; rank 0 reports and saves."""
    world = ctx.params["gpus"]
    initial = checkpoints / "initial"
    save_model(initial, arch, config, model.cpu(), {})  # every rank starts from these weights
    payload = {
        "job_id": ctx.job_id,
        "dataset": str(ctx.artifacts.resolve(dataset.path)),
        "initial": str(initial),
        "checkpoints": str(checkpoints),
        "config": train_config.__dict__,
        "flow": dataset.flow,
        "epochs": ctx.params["epochs"],
        "cuda": ctx.device.type == "cuda",
    }
    try:
        distributed.launch("workers.runners.train:rank_main", world, payload)
    except Exception as exc:
        if jobs.status_of(ctx.db, ctx.job_id) == "cancelled":
            raise JobCancelled(ctx.job_id) from exc
        raise JobError(f"data-parallel training failed: {exc}") from exc
    summary = json.loads((checkpoints / RESULT_FILE).read_text())
    if summary.get("stopped"):
        raise JobCancelled(ctx.job_id)
    trained, _ = load_model(checkpoints / FINAL_DIR)
    summary["model"] = trained
    return summary


def rank_main(rank: int, world_size: int, payload: dict[str, Any]) -> None:
    """One rank of a data-parallel train job (started by :func:`models.distributed.launch`)."""
    settings = get_settings()
    torch.set_num_threads(
        max(1, settings.torch_threads // world_size) if settings.torch_threads else 1
    )
    device = torch.device(f"cuda:{rank}") if payload["cuda"] else torch.device("cpu")
    trajectories, attrs = load_trajectories(Path(payload["dataset"]))
    config = TrainConfig(**payload["config"])
    pde_loss = pde_loss_for(payload["flow"], attrs, config)
    model, _ = load_model(payload["initial"], device=device)
    db = get_database(settings.resolved_database_url) if rank == 0 else None
    job_id = payload["job_id"]
    last_poll = [0.0]

    def on_event(event: dict[str, Any]) -> None:
        event = {**event, "ranks": world_size}
        jobs.report(db, job_id, event["type"], event, _progress(event, payload["epochs"]))

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last_poll[0] < 0.5:
            return False
        last_poll[0] = now
        return jobs.status_of(db, job_id) == "cancelled"

    checkpoints = Path(payload["checkpoints"])
    try:
        outcome = train(
            model,
            trajectories,
            config,
            on_event=on_event if rank == 0 else None,
            should_stop=should_stop if rank == 0 else None,
            device=device,
            checkpoint_dir=checkpoints,
            pde_loss=pde_loss,
        )
    except TrainingStopped:
        if rank == 0:
            (checkpoints / RESULT_FILE).write_text(json.dumps({"stopped": True}))
        return
    if rank == 0:
        info = json.loads((Path(payload["initial"]) / "config.json").read_text())
        save_model(checkpoints / FINAL_DIR, info["arch"], info["config"], model.cpu(), {})
        summary = {
            "history": outcome.history,
            "val_rel_l2": outcome.val_rel_l2,
            "persistence_rel_l2": outcome.persistence_rel_l2,
            "train_trajectories": outcome.train_trajectories,
            "val_trajectories": outcome.val_trajectories,
            "resumed_from_epoch": outcome.resumed_from_epoch,
            "val_pde_residual": outcome.val_pde_residual,
            "ranks": world_size,
        }
        (checkpoints / RESULT_FILE).write_text(json.dumps(summary))
