r"""Multi-process training with ``torchrun``: the process group, each process's shard, sums across processes.

Under ``torchrun --nproc_per_node N`` every process builds the same model from
the same seed and walks the same minibatch order; each takes its own slice of
every minibatch and DistributedDataParallel sums the gradients, so the step is
the one a single process takes on the whole minibatch. Masks are buffers that
every process sets from the step number, so they are never broadcast.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "DistributedError",
    "ProcessInfo",
    "process_info",
    "init_from_env",
    "shutdown",
    "shard",
    "all_sum",
    "wrap",
    "DEFAULT_TIMEOUT",
]

DEFAULT_TIMEOUT = 300.0  # seconds to wait for the other processes (MADE_DIST_TIMEOUT); torch's own is 30 minutes


class DistributedError(ValueError):
    """A process group that cannot be joined: bad torchrun variables, or peers that never came."""


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints: rank 0."""
        return self.rank == 0


def process_info() -> ProcessInfo:
    """The current process group's view, or a single process when there is none."""
    if dist.is_available() and dist.is_initialized():
        return ProcessInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return ProcessInfo()


def init_from_env(device: torch.device) -> tuple[ProcessInfo, torch.device]:
    """Join the process group ``torchrun`` describes in the environment (gloo on CPU, NCCL on
    GPU) and return this process's info and device (its own GPU, by local rank).

    Says on stderr that it waits for the other processes, and gives up after
    ``MADE_DIST_TIMEOUT`` seconds (default 300) instead of torch's half hour.
    """
    world = _env_int("WORLD_SIZE", 1, 1)
    if world <= 1 or dist.is_initialized():
        return process_info(), device
    rank, local_rank, timeout = _env_int("RANK", 0, 0), _env_int("LOCAL_RANK", 0, 0), _timeout()
    if rank >= world:
        raise DistributedError(f"RANK={rank} must be below WORLD_SIZE={world}")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    print(
        f"made: process {rank} of {world} waiting up to {timeout:g} s for the others at {where} (MADE_DIST_TIMEOUT)",
        file=sys.stderr,
        flush=True,
    )
    try:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout))
    except (RuntimeError, ValueError) as err:  # torch's DistNetworkError and DistStoreError are RuntimeErrors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DistributedError(
            f"could not join the {world} training processes at {where} within {timeout:g} s "
            f"(MADE_DIST_TIMEOUT): {reason}"
        ) from None
    return process_info(), device


def _env_int(name: str, default: int, low: int) -> int:
    """An integer torchrun variable, refused in one line naming it."""
    text = os.environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise DistributedError(f"{name}={text!r:.40}: expected an integer of at least {low}")
    return value


def _timeout() -> float:
    """Seconds to wait for the other processes: ``MADE_DIST_TIMEOUT``, else :data:`DEFAULT_TIMEOUT`."""
    text = os.environ.get("MADE_DIST_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DistributedError(f"MADE_DIST_TIMEOUT={text!r:.40}: expected a positive number of seconds")
    return value


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(rows: Tensor, info: ProcessInfo) -> Tensor:
    """This process's contiguous slice of ``rows`` (sizes differ by at most one; may be empty)."""
    return rows.tensor_split(info.world_size)[info.rank] if info.world_size > 1 else rows


def all_sum(values: list[float], info: ProcessInfo, device: torch.device) -> list[float]:
    """Sum ``values`` over all processes (float64); every process gets the same result."""
    if info.world_size == 1:
        return values
    on = device if dist.get_backend() == "nccl" else torch.device("cpu")
    total = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(total)
    return total.tolist()


def wrap(module: nn.Module, info: ProcessInfo, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes, else as is."""
    if info.world_size == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # Masks are set from the step number in every process: no need to send them each forward.
    no_sync = (
        "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters else "broadcast_buffers"
    )
    options: dict[str, Any] = {no_sync: False}
    return ddp(module, device_ids=ids, **options)
