"""Data-parallel training across processes with torch.distributed (torchrun-style).

``launch(fn, world_size, *args)`` starts ``world_size`` fresh processes (spawn, so CUDA is
safe), sets up the process group (NCCL when each rank has a GPU, else gloo) on a free local
port, and calls ``fn(rank, world_size, *args)`` in each. Training code asks
:func:`current` for its rank and world size; with no process group it is rank 0 of 1, so
the same loop runs in one process and in many.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def current() -> Rank:
    """This process's place in the process group (rank 0 of 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return Rank(dist.get_rank(), dist.get_world_size())
    return Rank()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_for(world_size: int) -> str:
    """NCCL when there is a GPU for every rank, gloo otherwise (CPU training, tests)."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def _entry(rank: int, fn: Callable, world_size: int, port: int, backend: str, args) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ["RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    os.environ["LOCAL_RANK"] = str(rank)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], world_size: int, *args: Any, backend: str | None = None):
    """Runs ``fn(rank, world_size, *args)`` in ``world_size`` new processes and waits.

    ``fn`` and ``args`` must be picklable by reference (module-level functions, plain data):
    the spawn start method imports them in each child. An exception in any rank is
    re-raised here (``torch.multiprocessing.ProcessRaisedException``).
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    backend = backend or backend_for(world_size)
    mp.start_processes(
        _entry,
        args=(fn, world_size, _free_port(), backend, args),
        nprocs=world_size,
        start_method="spawn",
        join=True,
    )


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on any rank (an agreed stop signal)."""
    if not current().distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
