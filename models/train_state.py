"""Resumable training state: weights, optimiser, scheduler, random streams and progress,
written atomically once per epoch. Never pickle.

Layout of a checkpoint directory (one per job)::

    epoch-0003/state.safetensors   every tensor: model.*, optim.<param>.<key>, rng.*
    epoch-0003/state.json          everything else (epoch, step, history, param groups,
                                   scheduler state) and the SHA-256 of the tensor file
    latest.json                    {"directory": "epoch-0003"}

A new epoch's files are written into a temporary directory that is renamed into place, and
only then does ``latest.json`` (replaced atomically) point at it; the older directory is
removed last. A process killed at any instant therefore leaves ``latest.json`` naming a
complete checkpoint (or no ``latest.json`` at all, before the first one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from models.checkpoint import CheckpointError, _write_atomic

LATEST = "latest.json"
TENSORS = "state.safetensors"
META = "state.json"


@dataclass
class TrainingState:
    """Where training stands after ``epoch`` full epochs (``step`` optimiser steps)."""

    epoch: int
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _pack(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in optim["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = _cpu(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"param_groups": optim["param_groups"], "optim_scalars": scalars}
    return tensors, meta


def save_training_state(
    directory: str | os.PathLike,
    state: TrainingState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
) -> Path:
    """Writes a checkpoint of ``state`` into ``directory`` (see the module docstring);
    returns the new epoch directory."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    tensors, meta = _pack(model, optimizer, generator)
    blob = save_safetensors(tensors)
    meta.update(
        epoch=state.epoch,
        step=state.step,
        history=state.history,
        extra=state.extra,
        scheduler=scheduler.state_dict() if scheduler is not None else None,
        tensors_sha256=hashlib.sha256(blob).hexdigest(),
    )
    meta_bytes = json.dumps(meta).encode()  # fails before anything is written if not JSON

    name = f"epoch-{state.epoch:04d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".tmp"))
    try:
        _write_atomic(tmp / TENSORS, blob)
        _write_atomic(tmp / META, meta_bytes)
        final = root / name
        if final.exists():  # a resumed run re-reaching an epoch it had reached before
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    previous = latest_directory(root)
    _write_atomic(root / LATEST, json.dumps({"directory": name}).encode())
    if previous is not None and previous.name != name:
        shutil.rmtree(previous, ignore_errors=True)
    return final


def latest_directory(directory: str | os.PathLike) -> Path | None:
    """The epoch directory ``latest.json`` names, or None when there is no checkpoint."""
    root = Path(directory)
    try:
        name = json.loads((root / LATEST).read_text())["directory"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{root / LATEST} is unreadable: {exc}") from None
    return root / name


def load_training_state(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
) -> TrainingState | None:
    """Restores the latest checkpoint in ``directory`` into the given objects (which must be
    built as they were when it was saved); returns its state, or None if there is none."""
    found = latest_directory(directory)
    if found is None:
        return None
    try:
        blob = (found / TENSORS).read_bytes()
        meta = json.loads((found / META).read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"incomplete training checkpoint: {exc.filename} missing") from None
    if hashlib.sha256(blob).hexdigest() != meta["tensors_sha256"]:
        raise CheckpointError(f"{found / TENSORS} does not match {META}")
    tensors = load_safetensors(blob)

    model.load_state_dict(
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    )
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            # Optimizer.load_state_dict moves each entry to its parameter's device.
            optim_state.setdefault(int(index), {})[name] = value
    for index, entries in meta["optim_scalars"].items():
        optim_state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": optim_state, "param_groups": meta["param_groups"]})
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(meta["scheduler"])
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    return TrainingState(
        epoch=meta["epoch"], step=meta["step"], history=meta["history"], extra=meta["extra"]
    )
