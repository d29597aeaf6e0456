r"""The one switch of the speed paths of masked layers, and what their caches key on.

Every fast path is exact (``fast_path("off")`` gives the plain ``F.linear(x, W * M)``); see
:mod:`made.model.layers` for where each applies. Importing this module changes nothing: the
optimizer-step hook is registered when the first masked layer is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.autograd.forward_ad as forward_ad
from torch import Tensor
from torch.optim.optimizer import register_optimizer_step_post_hook

__all__ = [
    "FastPath",
    "FAST_PATHS",
    "fast_path",
    "get_fast_path",
    "count_optimizer_steps",
    "optimizer_steps",
    "tensor_key",
    "traced",
    "replay_pays",
    "BLOCKS_MIN_WEIGHTS",
    "BLOCKS_NOW_INPUTS",
    "BLOCKS_NEW_MASK_ROWS",
    "GRAPH_MIN_BATCHES",
]

FastPath = Literal["auto", "dense", "blocks", "off"]
FAST_PATHS = ("auto", "dense", "blocks", "off")
_fast_path: FastPath = "auto"

# Block-triangular products pay on the CPU once a layer has this many weights;
# on a GPU the extra kernel launches cost more than the skipped FLOPs at usual sizes.
BLOCKS_MIN_WEIGHTS = 1 << 16
# Sorting the weights costs a few passes over them: at once for a batch of this many input
# values or more, else from the second call with unchanged weights.
BLOCKS_NOW_INPUTS = 1 << 14
# Finding the staircase of a mask not seen before costs a scan and sorts of the whole mask
# besides: that pays once the mask serves this many rows (measured break-even: ~1,000-1,500
# rows for MNIST-sized layers, more for small ones), so a mask drawn for an ensemble over a
# small validation set keeps the dense product.
BLOCKS_NEW_MASK_ROWS = 1 << 11
# On a GPU a small model's batch costs its kernel launches more than its arithmetic. Recording
# a batch's kernels as a CUDA graph costs about three batches (two warm-ups and the recording);
# it pays from this many equal batches, each then a copy in, one replay and a copy out.
GRAPH_MIN_BATCHES = 4


def get_fast_path() -> FastPath:
    """The fast-path mode in force (see :func:`fast_path`)."""
    return _fast_path


@contextmanager
def fast_path(mode: FastPath) -> Iterator[None]:
    """Choose how masked layers compute, inside a ``with`` block.

    ``"auto"`` (the default): reuse ``W * M`` without autograd, and block-triangular
    products where they pay; ``"dense"``: reuse ``W * M`` only; ``"blocks"``: use
    block-triangular products for every reused layer whose mask allows it (for tests
    and measurements); ``"off"``: the plain ``F.linear(x, W * M)`` every call.
    """
    global _fast_path
    if mode not in FAST_PATHS:
        raise ValueError(f"fast path must be one of {list(FAST_PATHS)}, got {mode!r}")
    previous, _fast_path = _fast_path, mode
    try:
        yield
    finally:
        _fast_path = previous


_optimizer_steps = 0
_step_hook = None


def _count_step(*_: object) -> None:
    global _optimizer_steps
    _optimizer_steps += 1


def count_optimizer_steps() -> None:
    """Count every optimizer step from now on (once per process, when the first masked layer is built).

    Fused optimizers update parameters without bumping their version counters, so every
    optimizer step also invalidates the reused weights. Importing ``made`` changes nothing.
    """
    global _step_hook
    if _step_hook is None:
        _step_hook = register_optimizer_step_post_hook(_count_step)


def optimizer_steps() -> int:
    """Optimizer steps taken in this process since the first masked layer was built (a cache key part)."""
    return _optimizer_steps


def tensor_key(*tensors: Tensor | None) -> tuple:
    """Identity and version of tensors: changes whenever one is replaced or edited in place."""
    return tuple(None if t is None else (t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


def traced() -> bool:
    """Whether torch.compile, torch.func or forward-mode AD is tracing: these get the plain path."""
    return (
        torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0
    )


def replay_pays(device: torch.device, batches: int) -> bool:
    """Whether ``batches`` equal batches on ``device`` are evaluated by replaying a CUDA graph
    (:class:`made.fast.cuda_graphs.GraphedBatches`): on CUDA, unless turned off or traced."""
    return device.type == "cuda" and _fast_path != "off" and not traced() and batches >= GRAPH_MIN_BATCHES
