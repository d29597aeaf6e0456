r"""Masked linear layers, the only building block MADE adds to a plain MLP, and the hidden activations.

:meth:`MaskedLinear.forward` is the masked product of the paper. Which kernel computes it (reused
effective weights, block-triangular products, a reused training buffer: all exact) is decided by
the layer's :class:`~made.fast.dispatch.LayerKernels`, which also owns every cache; ``with
made.fast.dispatch.fast_path("off"):`` runs the plain product below for every call in the block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..fast.dispatch import LayerKernels

__all__ = ["MaskedLinear", "ACTIVATIONS", "install"]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "tanh": torch.tanh, "softplus": F.softplus}


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
        self.kernels = LayerKernels()
        self.register_buffer("mask", torch.ones(out_features, in_features, dtype=torch.bool, device=device))
        if conditioning:
            bound = 1.0 / math.sqrt(max(in_features, 1))
            init = torch.empty(out_features, in_features, device=device, dtype=dtype).uniform_(-bound, bound)
            self.conditioning = nn.Parameter(init)
        else:
            self.register_parameter("conditioning", None)

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

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x (W * M)^T + b``, plus ``(U * M) 1`` with conditioning weights (eq. 14), under the layer's
        own mask or under ``mask`` (a value: the layer is unchanged)."""
        mask = self.mask if mask is None else mask
        kernel = self.kernels.pick(self, x, mask)  # the same product, computed faster; None: as written here
        if kernel is not None:
            return kernel(x)
        out = F.linear(x, self.weight * mask, self.bias)
        if self.conditioning is not None:
            out = out + (self.conditioning * mask).sum(dim=1)
        return out

    def frozen(self, inputs: int, mask: Tensor | None = None) -> Callable[[Tensor], Tensor]:
        """This layer as a function of ``x`` with its current effective weight fixed.

        For many calls without autograd (evaluation over batches): the caches are checked
        once here rather than at every call; ``inputs``, the number of input values the
        calls read in all, decides whether block products pay at once. The function is
        valid until a weight, bias or mask changes. Where reused weights do not apply
        (grad mode, ``fast_path("off")``, tracing) it is the module's own forward.
        """
        if torch.is_grad_enabled() or not self.kernels.applies(self, self.mask if mask is None else mask):
            return self.forward if mask is None else partial(self.forward, mask=mask)
        return self.kernels.reused(self, inputs, self.mask if mask is None else mask)

    def effective(self, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``W * M`` and the bias, with the conditioning term ``(U * M) 1`` folded into it."""
        return self.kernels.effective(self, self.mask if mask is None else mask)

    def clear_cache(self) -> None:
        """Drop the kernels' caches: needed only after writes through ``.data``, which no version counter sees."""
        self.kernels.clear()

    def train(self, mode: bool = True) -> MaskedLinear:
        if mode:
            self.kernels.forget_weights()
        return super().train(mode)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> MaskedLinear:
        self.kernels.clear()
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
