"""Checkpoints: safetensors weights plus a JSON description. Never pickle.

A checkpoint is a directory holding

* ``weights.safetensors``: the model's state dict, normalisation buffers included;
* ``config.json``: ``{"arch", "config", "metadata", "parameter_count", "weights_sha256"}``.

Loading never unpickles anything: the architecture is rebuilt from the registry and the
tensors come from safetensors, so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from models.registry import build_model, get_spec, parameter_count

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A checkpoint directory is incomplete or inconsistent."""


def _write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; workers and the app may run as other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    directory: str | os.PathLike,
    arch: str,
    config: dict[str, Any],
    model: nn.Module,
    metadata: dict[str, Any],
) -> None:
    """Saves ``model`` (built as ``build_model(arch, config)``) into ``directory``.

    ``config`` is stored completed with defaults, so the checkpoint does not change meaning
    if a default changes later. ``metadata`` must be JSON-serialisable (dataset id, epochs,
    validation error, …). The weights are written before ``config.json`` and the config
    records their SHA-256, so a reader never pairs a config with weights it was not written
    with: a torn overwrite is detected by :func:`load_model` instead of loading silently.
    """
    spec = get_spec(arch)
    full_config = spec.config_cls.from_dict(config).to_dict()
    model_config = getattr(model, "config", None)
    if model_config is not None and model_config.to_dict() != full_config:
        raise ValueError(
            f"config {full_config} does not describe the model (built with "
            f"{model_config.to_dict()})"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    # safetensors wants contiguous CPU tensors that do not share memory.
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    weights = save_safetensors(state, metadata={"arch": arch})
    info = {
        "arch": arch,
        "config": full_config,
        "metadata": metadata,
        "parameter_count": parameter_count(model),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    # Serialise before touching the disk so a bad metadata value leaves no half checkpoint.
    config_bytes = (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()

    _write_atomic(directory / WEIGHTS_FILE, weights)
    _write_atomic(directory / CONFIG_FILE, config_bytes)


def load_model(
    directory: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Loads a checkpoint written by :func:`save_model`.

    Returns ``(model, info)``: the model on ``device`` in eval mode, and the parsed
    ``config.json``. Raises :class:`CheckpointError` for a missing file or a mismatch
    between weights and config, and ``UnknownModelError`` for an unregistered arch.
    """
    directory = Path(directory)
    try:
        info = json.loads((directory / CONFIG_FILE).read_text())
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointError(
            f"incomplete checkpoint in {directory}: {exc.filename} missing"
        ) from None
    expected = info.get("weights_sha256")
    if expected is not None and hashlib.sha256(weights).hexdigest() != expected:
        raise CheckpointError(f"{directory / WEIGHTS_FILE} does not match {CONFIG_FILE}")

    model = build_model(info["arch"], info["config"])
    state = load_safetensors(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {directory} do not fit the model: {exc}") from None
    model.to(device)
    model.eval()
    return model, info
