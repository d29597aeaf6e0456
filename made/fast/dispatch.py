r"""Which kernel computes a masked layer's product ``x (W * M)^T + b (+ (U * M) 1)``, decided here alone.

Every kernel is exact: it returns the plain ``F.linear(x, W * M, b)`` up to the order of float
additions. :class:`LayerKernels` (one per masked layer, owning that layer's caches) picks:

- without autograd (evaluation, sampling): ``W * M`` and the bias computed once and reused while
  the weights, bias and mask are unchanged (:class:`~made.fast.frozen.FrozenWeights`); on the CPU,
  large layers as block-triangular products over degree-sorted units (:mod:`made.fast.blocks`);
- in CPU training: ``W * M`` written into a buffer reused from step to step, with the weight
  gradient masked in place (:class:`~made.fast.frozen.ReusedProduct`), or, once a mask serves a
  second step on a large layer, forward and both gradients on its staircase;
- otherwise (GPU training, autocast, torch.compile, torch.func, inference tensors): the plain product.

The caller may scope a choice with ``with fast_path(mode):`` (per thread and task, a
:class:`~contextvars.ContextVar`). Reused weights are keyed on the tensors' identity and version
counters and on a count of backward passes into the layer's parameters (fused optimizers update
weights without bumping version counters, and every such update follows a backward). Weights built
while that count cannot tell (gradients pending, so a step may follow; or a parameter that does not
require gradients, so no backward into it is counted) serve the call that built them only.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Literal, Protocol

import torch
import torch.autograd.forward_ad as forward_ad
import torch.nn.functional as F
from torch import Tensor

from .blocks import BlockTriangular, Staircase, StaircaseProduct, TrainingPlan, find_staircase
from .frozen import FrozenWeights, ReuseBuffer, ReusedProduct

__all__ = [
    "FastPath",
    "FAST_PATHS",
    "fast_path",
    "get_fast_path",
    "MaskedWeights",
    "LayerKernels",
    "ParameterWatch",
    "tensor_key",
    "cache_key",
    "traced",
    "replay_pays",
    "BLOCKS_MIN_WEIGHTS",
    "BLOCKS_NOW_INPUTS",
    "BLOCKS_NEW_MASK_ROWS",
    "GRAPH_MIN_BATCHES",
]

Kernel = Callable[[Tensor], Tensor]
FastPath = Literal["auto", "dense", "blocks", "off"]
FAST_PATHS = ("auto", "dense", "blocks", "off")
_mode: ContextVar[FastPath] = ContextVar("made_fast_path", default="auto")

# Block-triangular products pay on the CPU once a layer has this many weights;
# on a GPU the extra kernel launches cost more than the skipped FLOPs at usual sizes.
BLOCKS_MIN_WEIGHTS = 1 << 16
# Sorting the weights costs a few passes over them: at once for a batch of this many input
# values or more, else from the second call with unchanged weights.
BLOCKS_NOW_INPUTS = 1 << 14
# Finding the staircase of a mask not seen before costs a scan and sorts of the whole mask
# besides: that pays once the mask serves this many rows, so a mask drawn for an ensemble
# over a small validation set keeps the dense product.
BLOCKS_NEW_MASK_ROWS = 1 << 11
# Recording a batch's kernels as a CUDA graph costs about three batches (two warm-ups and the
# recording); it pays from this many equal batches.
GRAPH_MIN_BATCHES = 4


def get_fast_path() -> FastPath:
    """The fast-path mode in force in this thread or task (see :func:`fast_path`)."""
    return _mode.get()


@contextmanager
def fast_path(mode: FastPath) -> Iterator[None]:
    """Choose how masked layers compute inside a ``with`` block (this thread or task only).

    ``"auto"`` (the default): reuse ``W * M`` without autograd, and block-triangular
    products where they pay; ``"dense"``: reuse ``W * M`` only; ``"blocks"``: use
    block-triangular products for every layer whose mask allows it (for tests
    and measurements); ``"off"``: the plain ``F.linear(x, W * M)`` every call.
    """
    if mode not in FAST_PATHS:
        raise ValueError(f"fast path must be one of {list(FAST_PATHS)}, got {mode!r}")
    token = _mode.set(mode)
    try:
        yield
    finally:
        _mode.reset(token)


def tensor_key(*tensors: Tensor | None) -> tuple:
    """Identity and version of tensors: changes whenever one is replaced or edited in place."""
    return tuple(None if t is None else (t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


def cache_key(*tensors: Tensor | None) -> tuple:
    """:func:`tensor_key`, and whether inference mode is on: a cache entry made under
    ``torch.inference_mode()`` holds inference tensors, which autograd refuses outside it."""
    return tensor_key(*tensors) + (torch.is_inference_mode_enabled(),)


def traced() -> bool:
    """Whether torch.compile, torch.func or forward-mode AD is tracing: these get the plain path."""
    return (
        torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0
    )


def replay_pays(device: torch.device, batches: int) -> bool:
    """Whether ``batches`` equal batches on ``device`` are evaluated by replaying a CUDA graph
    (:class:`made.fast.replay.GraphedBatches`): on CUDA, unless turned off or traced."""
    return device.type == "cuda" and not traced() and get_fast_path() != "off" and batches >= GRAPH_MIN_BATCHES


class ParameterWatch:
    """Tells whether parameters may have changed: their version counters, and the backward passes
    that accumulated into them (counted by hooks on those tensors alone), which every update of a
    fused optimizer follows."""

    def __init__(self) -> None:
        self.backwards = 0
        self.hooked: list[weakref.ref[Tensor]] = []

    def _count(self, _: Tensor) -> None:
        self.backwards += 1

    def key(self, *params: Tensor | None) -> tuple:
        """A key that changes with every in-place edit, replacement or backward pass of ``params``."""
        for p in params:
            if p is not None and p.requires_grad and p.is_leaf and not any(r() is p for r in self.hooked):
                p.register_post_accumulate_grad_hook(self._count)
                self.hooked = [r for r in self.hooked if r() is not None] + [weakref.ref(p)]
        return tensor_key(*params) + (self.backwards,)

    def sees_updates(self, *params: Tensor | None) -> bool:
        """Whether :meth:`key` will change with any update of ``params``: each is watched (it requires
        gradients) and none has a gradient that an optimizer step may still apply."""
        return all(p is None or (p.requires_grad and p.is_leaf and p.grad is None) for p in params)


class MaskedWeights(Protocol):
    """What a masked layer shows its kernels: ``W``, ``b``, the conditioning weights ``U``."""

    # Read-only members: a layer's nn.Parameter attributes match them (writable members would be invariant).
    @property
    def weight(self) -> Tensor: ...

    @property
    def bias(self) -> Tensor | None: ...

    @property
    def conditioning(self) -> Tensor | None: ...


class LayerKernels:
    """The kernels of one masked layer and every cache they keep (rebuilt on demand, never saved).

    :meth:`pick` returns the kernel that computes ``layer(x, mask)`` faster, or None when the
    plain product is the one to run. Each cache entry keeps the mask it was made from, so its
    memory (whose address is part of the key) cannot be taken by another mask while the entry lives.
    """

    def __init__(self) -> None:
        self.watch = ParameterWatch()
        self.clear()

    def clear(self) -> None:
        """Drop every cache (after writes through ``.data``, which no version counter sees)."""
        self.float_mask: tuple[tuple, Tensor, Tensor] | None = None
        self.frozen: FrozenWeights | None = None
        self.staircase: tuple[tuple, Staircase | None, Tensor] | None = None
        self.plan: tuple[tuple, TrainingPlan | None, Tensor] | None = None
        self.plan_seen: tuple | None = None
        self.product = ReuseBuffer()

    def forget_weights(self) -> None:
        """Free the reused effective weights (training is about to change them)."""
        self.frozen = None

    def pick(self, layer: MaskedWeights, x: Tensor, mask: Tensor) -> Kernel | None:
        """The kernel for ``layer(x, mask)``, or None for the plain ``F.linear(x, W * M, b)``."""
        if not self.applies(layer, mask):
            return None
        if not torch.is_grad_enabled():
            return self.reused(layer, x.numel(), mask)
        # GPU training stays plain unless block products are forced: the caching allocator makes
        # buffer reuse moot, and at small batches every extra kernel launch costs more than it saves.
        if (not x.is_cpu and get_fast_path() != "blocks") or torch.is_autocast_enabled(x.device.type):
            return None
        return partial(self.train_product, layer, mask=mask)

    def applies(self, layer: MaskedWeights, mask: Tensor) -> bool:
        """Not traced (torch.compile, torch.func; checked first: dynamo cannot read the mode), not turned
        off, and no inference tensors (made under ``torch.inference_mode()``): no version counter tracks them."""
        return not traced() and get_fast_path() != "off" and not layer.weight.is_inference() and not mask.is_inference()

    def mask_like_weight(self, layer: MaskedWeights, mask: Tensor) -> Tensor:
        """The mask as 0/1 in the weight's dtype (``W * 1.0`` and ``W * 0.0`` equal the bool product)."""
        if not self.applies(layer, mask):
            return mask.to(layer.weight.dtype)
        key = cache_key(mask) + (layer.weight.dtype, layer.weight.device)
        cached = self.float_mask
        if cached is None or cached[0] != key:
            cached = self.float_mask = (key, mask.to(layer.weight.dtype), mask)
        return cached[1]

    def effective(self, layer: MaskedWeights, mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """``W * M`` and the bias, with the conditioning term ``(U * M) 1`` folded into it."""
        mask = self.mask_like_weight(layer, mask)
        bias = layer.bias
        if layer.conditioning is not None:
            connectivity = (layer.conditioning * mask).sum(dim=1)
            bias = connectivity if bias is None else bias + connectivity
        return layer.weight * mask, bias

    def train_product(self, layer: MaskedWeights, x: Tensor, mask: Tensor) -> Tensor:
        """A training step's product: on the staircase once the mask serves a second step, else
        ``W * M`` in the reused buffer; both mask the weight gradient exactly."""
        plan = self.training_plan(layer, x, mask)
        float_mask = self.mask_like_weight(layer, mask)
        if plan is not None:
            out = StaircaseProduct.apply(x, layer.weight, layer.bias, plan, self.product)
        else:
            out = ReusedProduct.apply(x, layer.weight, layer.bias, float_mask, self.product)
        if layer.conditioning is not None:
            out = out + (layer.conditioning * float_mask).sum(dim=1)
        return out

    def reused(self, layer: MaskedWeights, inputs: int, mask: Tensor) -> Kernel:
        """The reused effective weight of ``mask`` as a function of ``x``, for calls that read
        ``inputs`` values in all; one entry, replaced when its key changes.

        Concurrent callers with other masks replace the entry but never change one in use:
        each reads the entry once into locals.
        """
        params = (layer.weight, layer.bias, layer.conditioning)
        key = self.watch.key(*params) + cache_key(mask)
        frozen = self.frozen
        if frozen is None or frozen.key != key or frozen.single_use:
            frozen = self.frozen = FrozenWeights(key, mask, *self.effective(layer, mask))
            frozen.single_use = not self.watch.sees_updates(*params)
        frozen.uses += 1
        frozen.rows += inputs // max(layer.weight.shape[1], 1)
        blocks, dense = frozen.blocks, frozen.dense
        if blocks is not None:
            return blocks
        assert dense is not None, "an entry keeps its dense weights until block products replace them"
        if self.blocks_pay(layer, layer.weight.device) and self.blocks_now(frozen, inputs, mask):
            staircase = self.find_staircase(mask)
            if staircase is not None:
                blocks = frozen.blocks = BlockTriangular(*dense, staircase)
                frozen.dense = None  # the sorted copy replaces it
                return blocks
        weight, bias = dense
        return partial(F.linear, weight=weight, bias=bias)

    def blocks_pay(self, layer: MaskedWeights, device: torch.device) -> bool:
        if get_fast_path() == "blocks":
            return not torch.is_autocast_enabled(device.type)
        return (
            get_fast_path() == "auto"
            and device.type == "cpu"
            and layer.weight.numel() >= BLOCKS_MIN_WEIGHTS
            and not torch.is_autocast_enabled("cpu")
        )

    def blocks_now(self, frozen: FrozenWeights, inputs: int, mask: Tensor) -> bool:
        """Whether to sort the reused weights into block products now."""
        if get_fast_path() == "blocks":
            return True
        staircase = self.staircase
        if staircase is None or staircase[0] != cache_key(mask):
            return frozen.rows >= BLOCKS_NEW_MASK_ROWS
        return frozen.uses > 1 or inputs >= BLOCKS_NOW_INPUTS

    def training_plan(self, layer: MaskedWeights, x: Tensor, mask: Tensor) -> TrainingPlan | None:
        """The staircase for a training step, once the same mask serves a second step.

        Finding and sorting a staircase costs more than one step saves, so a mask
        that changes every step (a resampling pool) keeps the dense product.
        """
        if not self.blocks_pay(layer, x.device):
            return None
        key = cache_key(mask) + (layer.weight.dtype, layer.weight.device)
        cached = self.plan
        if cached is not None and cached[0] == key:
            return cached[1]
        if self.plan_seen != key and get_fast_path() != "blocks":
            self.plan_seen = key
            return None
        staircase = self.find_staircase(mask)
        plan = None if staircase is None else TrainingPlan(staircase, self.mask_like_weight(layer, mask))
        self.plan = (key, plan, mask)
        return plan

    def find_staircase(self, mask: Tensor) -> Staircase | None:
        key = cache_key(mask)
        cached = self.staircase
        if cached is None or cached[0] != key:
            cached = self.staircase = (key, find_staircase(mask), mask)
        return cached[1]

    def __getstate__(self) -> dict:
        return {"caches": None}  # pickles and deep copies start empty (parameters carry no hook)

    def __setstate__(self, state: dict) -> None:
        LayerKernels.__init__(self)
