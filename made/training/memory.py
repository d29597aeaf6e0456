"""How much memory training a model needs, and how much this process may still allocate."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.formats import available_memory
from ..io.checkpoint import count_weights
from ..model.config import MADEConfig
from ..model.settings import defaults


def check_memory(settings: dict, dtype: torch.dtype) -> None:
    """Refuse a model whose weights, gradients, optimizer state and copies would not fit in memory."""
    need, have = count_weights(settings) * dtype.itemsize * 6, _memory_limit()
    if need > have:
        raise ValueError(
            f"a model with {settings['num_inputs']:,} inputs and hidden layers "
            f"{settings.get('hidden_sizes', defaults(MADEConfig)['hidden_sizes'])} needs about "
            f"{need / 2**30:.1f} GiB to train, more than the {have / 2**30:.1f} GiB available"
        )


def _memory_limit() -> int:
    """Bytes this process may still allocate: the least of the machine's free memory, what its
    address-space and data limits leave (``ulimit -v``, ``-d``) and what its cgroup's limit leaves."""
    limits = [available_memory()]
    try:
        import resource
    except ImportError:  # not a Unix
        return limits[0]
    used = _process_sizes()
    for which, field in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(which)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft - used.get(field, 0))
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        cap = _read_number(limit)
        if cap is not None:
            limits.append(cap - (_read_number(usage) or 0))
    return max(0, min(limits))


def _process_sizes() -> dict[str, int]:
    """This process's ``VmSize`` and ``VmData`` in bytes (Linux ``/proc/self/status``; empty elsewhere)."""
    sizes = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name in ("VmSize", "VmData"):
                    sizes[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return sizes


def _read_number(path: str) -> int | None:
    """The integer a cgroup file holds; None when it is missing or says "max" (no limit)."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
