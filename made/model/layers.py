r"""Masked linear layers, the only building block MADE adds to a plain MLP, and the hidden activations.

Fast paths (all exact; ``fast_path("off")`` gives the plain ``F.linear(x, W * M)``):

- The mask is kept as a float copy of the weight's dtype for the product ``W * M``
  (a bool mask makes that product a slow mixed-type pass on the CPU).
- In CPU training, ``W * M`` is written into a buffer reused from step to step
  (a fresh weight-sized tensor per step costs page faults) and the gradient is
  masked in place. A buffer still needed by a pending backward is never reused;
  a second backward through a graph kept with ``retain_graph=True`` after another
  forward of the same layer raises PyTorch's in-place modification error (use
  ``fast_path("off")`` for that pattern).
- Without autograd (``torch.no_grad``, evaluation, sampling), the effective weight
  ``W * M`` and bias are computed once and reused until a weight, bias or mask
  changes: every in-place change (``load_state_dict``, ``set_mask``, edits under
  ``torch.no_grad``) bumps the tensor's version counter, and every step of a
  ``torch.optim`` optimizer (fused ones skip the counter) bumps a step count; both
  are part of the cache key. Writes through ``.data`` bypass both; call
  :meth:`MaskedLinear.clear_cache` after them.
- Large layers on the CPU compute as block-triangular products over
  degree-sorted units (:mod:`made.fast.blocks`), skipping most of the masked-out half
  of the multiply-adds: reused weights in evaluation, and in training the
  forward pass and both gradients once a mask serves a second step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..fast.blocks import BlockTriangular, Staircase, StaircaseProduct, TrainingPlan, find_staircase
from ..fast.dispatch import (
    BLOCKS_MIN_WEIGHTS,
    BLOCKS_NEW_MASK_ROWS,
    BLOCKS_NOW_INPUTS,
    count_optimizer_steps,
    get_fast_path,
    optimizer_steps,
    tensor_key,
    traced,
)
from ..fast.frozen import FrozenWeights, ReuseBuffer, ReusedProduct

__all__ = ["MaskedLinear", "ACTIVATIONS", "install"]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "tanh": torch.tanh, "softplus": F.softplus}

_CACHES = ("_float_mask", "_frozen", "_staircase", "_plan", "_plan_seen", "_product")


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b``, with the mask ``M`` kept as a buffer.

    The mask is a persistent buffer, so ``state_dict``, ``.to(device)`` and
    checkpoints carry it. With ``conditioning=True`` the layer also adds
    ``(U * M) 1``, the paper's conditioning weights (eq. 14): a learned bias that
    depends on the current connectivity, useful when masks are resampled.
    """

    # Registered in __init__ (a buffer, and a parameter that may be None): declared for type checkers.
    mask: Tensor
    conditioning: nn.Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        conditioning: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        count_optimizer_steps()
        self.register_buffer("mask", torch.ones(out_features, in_features, dtype=torch.bool, device=device))
        if conditioning:
            bound = 1.0 / math.sqrt(max(in_features, 1))
            init = torch.empty(out_features, in_features, device=device, dtype=dtype).uniform_(-bound, bound)
            self.conditioning = nn.Parameter(init)
        else:
            self.register_parameter("conditioning", None)
        self.clear_cache()

    @torch.no_grad()
    def reset_orthogonal(self) -> None:
        """Re-initialize as the authors' code does: semi-orthogonal weights, zero biases.

        The weight (and the conditioning weights) become a block of a random
        orthogonal matrix, so its rows or its columns are orthonormal; the
        authors take that block from the SVD of a uniform square matrix, we
        draw it by QR (``torch.nn.init.orthogonal_``), which costs far less at
        8000 units and gives the same kind of matrix.
        """
        nn.init.orthogonal_(self.weight)
        if self.conditioning is not None:
            nn.init.orthogonal_(self.conditioning)
        if self.bias is not None:
            self.bias.zero_()

    def set_mask(self, mask: Tensor) -> None:
        """Copy a new ``[out, in]`` boolean mask in place (the layer's own mask, used when none is given)."""
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != layer shape {tuple(self.mask.shape)}")
        self.mask.copy_(mask)

    def masked_weight(self) -> Tensor:
        """The effective weight ``W * M``."""
        return self.weight * self.mask

    def clear_cache(self) -> None:
        """Drop the reused mask copy, effective weights and staircases (they are rebuilt on demand)."""
        # Each entry: (key, cached value, the mask it was made from).
        self._float_mask: tuple[tuple, Tensor, Tensor] | None = None
        self._frozen: FrozenWeights | None = None
        self._staircase: tuple[tuple, Staircase | None, Tensor] | None = None
        self._plan: tuple[tuple, TrainingPlan | None, Tensor] | None = None
        self._plan_seen: tuple | None = None
        self._product = ReuseBuffer()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x (W * M)^T + b`` under the layer's own mask, or under ``mask`` (a value: the layer is unchanged)."""
        mask = self.mask if mask is None else mask
        training = torch.is_grad_enabled()
        # GPU training takes the plain path unless block products are forced: the caching allocator
        # makes buffer reuse moot, and at small batches every extra kernel launch or Python step
        # costs more than it saves.
        gpu_plain = training and not x.is_cpu and get_fast_path() != "blocks"
        if gpu_plain or not self._fast_paths_apply():
            return self._plain(x, mask)
        if not training:
            return self._frozen_product(x.numel(), x.device, mask)(x)
        if torch.is_autocast_enabled("cpu"):
            return self._plain(x, mask)
        plan = self._training_plan(x, mask)
        mask = self._mask_like_weight(mask)
        if plan is not None:
            out = StaircaseProduct.apply(x, self.weight, self.bias, plan, self._product)
        else:
            out = ReusedProduct.apply(x, self.weight, self.bias, mask, self._product)
        if self.conditioning is not None:
            out = out + (self.conditioning * mask).sum(dim=1)
        return out

    def _plain(self, x: Tensor, mask: Tensor) -> Tensor:
        out = F.linear(x, self.weight * mask, self.bias)
        if self.conditioning is not None:
            out = out + (self.conditioning * mask).sum(dim=1)
        return out

    def _mask_like_weight(self, mask: Tensor) -> Tensor:
        """The mask as 0/1 in the weight's dtype (``W * 1.0`` and ``W * 0.0`` equal the bool product).

        Every cache entry keeps the mask it was made from, so its memory (whose address is
        part of the key) cannot be taken by another mask while the entry lives.
        """
        key = tensor_key(mask) + (self.weight.dtype, self.weight.device)
        cached = self._float_mask
        if cached is None or cached[0] != key:
            cached = self._float_mask = (key, mask.to(self.weight.dtype), mask)
        return cached[1]

    def frozen(self, inputs: int, mask: Tensor | None = None) -> Callable[[Tensor], Tensor]:
        """This layer as a function of ``x`` with its current effective weight fixed.

        For many calls without autograd (evaluation over batches): the cache is checked
        once here rather than at every call; ``inputs``, the number of input values the
        calls read in all, decides whether block products pay at once. The function is
        valid until a weight, bias or mask changes. Where the reused weights do not apply
        (grad mode, ``fast_path("off")``, tracing) it is the module's own forward.
        """
        if torch.is_grad_enabled() or not self._fast_paths_apply():
            return self.forward if mask is None else partial(self.forward, mask=mask)
        return self._frozen_product(inputs, self.weight.device, self.mask if mask is None else mask)

    def _fast_paths_apply(self) -> bool:
        """Not turned off, not traced (torch.compile, torch.func) and not inference tensors,
        whose in-place changes no version counter tracks."""
        return get_fast_path() != "off" and not traced() and not self.weight.is_inference()

    def _frozen_product(self, inputs: int, device: torch.device, mask: Tensor) -> Callable[[Tensor], Tensor]:
        """The cached effective weight of ``mask`` as a function; one entry, replaced when the key changes.

        Concurrent callers with other masks replace the entry but never change one in use:
        each reads the entry once into locals.
        """
        key = tensor_key(self.weight, self.bias, self.conditioning, mask) + (
            torch.is_inference_mode_enabled(),
            optimizer_steps(),
        )
        frozen = self._frozen
        if frozen is None or frozen.key != key:
            frozen = self._frozen = FrozenWeights(key, mask, *self.effective(mask))
        frozen.uses += 1
        frozen.rows += inputs // max(self.in_features, 1)
        blocks = frozen.blocks
        if blocks is None and self._blocks_pay(device) and self._blocks_now(frozen, inputs, mask):
            staircase = self._find_staircase(mask)
            weight, bias = frozen.dense or self.effective(mask)
            if staircase is not None:
                blocks = frozen.blocks = BlockTriangular(weight, bias, staircase)
                frozen.dense = None  # the sorted copy replaces it
        if blocks is not None:
            return blocks
        weight, bias = frozen.dense or self.effective(mask)
        return partial(F.linear, weight=weight, bias=bias)

    def effective(self, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``W * M`` and the bias, with the conditioning term ``(U * M) 1`` folded into it."""
        mask = self._mask_like_weight(self.mask if mask is None else mask)
        bias: Tensor | None = self.bias
        if self.conditioning is not None:
            connectivity = (self.conditioning * mask).sum(dim=1)
            bias = connectivity if bias is None else bias + connectivity
        return self.weight * mask, bias

    def _blocks_pay(self, device: torch.device) -> bool:
        if get_fast_path() == "blocks":
            return not torch.is_autocast_enabled(device.type)
        return (
            get_fast_path() == "auto"
            and device.type == "cpu"
            and self.weight.numel() >= BLOCKS_MIN_WEIGHTS
            and not torch.is_autocast_enabled("cpu")
        )

    def _blocks_now(self, frozen: FrozenWeights, inputs: int, mask: Tensor) -> bool:
        """Whether to sort the reused weights into block products now."""
        if get_fast_path() == "blocks":
            return True
        staircase = self._staircase
        if staircase is None or staircase[0] != tensor_key(mask):
            return frozen.rows >= BLOCKS_NEW_MASK_ROWS
        return frozen.uses > 1 or inputs >= BLOCKS_NOW_INPUTS

    def _training_plan(self, x: Tensor, mask: Tensor) -> TrainingPlan | None:
        """The staircase for a training step, once the same mask serves a second step.

        Finding and sorting a staircase costs more than one step saves, so a mask
        that changes every step (a resampling pool) keeps the dense product.
        """
        if not self._blocks_pay(x.device):
            return None
        key = tensor_key(mask) + (self.weight.dtype, self.weight.device)
        cached = self._plan
        if cached is not None and cached[0] == key:
            return cached[1]
        if self._plan_seen != key and get_fast_path() != "blocks":
            self._plan_seen = key
            return None
        staircase = self._find_staircase(mask)
        plan = None if staircase is None else TrainingPlan(staircase, self._mask_like_weight(mask))
        self._plan = (key, plan, mask)
        return plan

    def _find_staircase(self, mask: Tensor) -> Staircase | None:
        key = tensor_key(mask)
        cached = self._staircase
        if cached is None or cached[0] != key:
            cached = self._staircase = (key, find_staircase(mask), mask)
        return cached[1]

    def __getstate__(self) -> dict:
        """Pickle (``torch.save(module)``, deepcopy) without the caches: they are rebuilt on demand."""
        return {k: v for k, v in self.__dict__.items() if k not in _CACHES}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.clear_cache()

    def train(self, mode: bool = True) -> MaskedLinear:
        if mode:
            self._frozen = None  # training changes the weights: free the reused ones
        return super().train(mode)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> MaskedLinear:
        self.clear_cache()
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", conditioning={self.conditioning is not None}"


def install(root: nn.Module, path: str, module: nn.Module) -> None:
    """Register ``module`` under the dotted ``path`` (``hidden.0``, ``blocks.1.0``, ``output``),
    making numbered containers (``nn.ModuleList``) on the way, so state_dict keys read as the path."""
    *parents, last = path.split(".")
    for name in parents:
        child = getattr(root, name, None)
        if child is None:
            child = nn.ModuleList()
            setattr(root, name, child)
        root = child
    if isinstance(root, nn.ModuleList):
        assert int(last) == len(root), f"{path}: layers are installed in order"
        root.append(module)
    else:
        setattr(root, last, module)
