r"""Reused effective weights: a training buffer for ``W * M`` whose gradient is masked in place, and the
fixed weights of a layer evaluated without autograd (valid while their key holds)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .blocks import BlockTriangular

__all__ = ["ReuseBuffer", "ReusedProduct", "FrozenWeights"]


class ReuseBuffer:
    """A weight-sized tensor reused across training steps, never while a backward still needs it."""

    def __init__(self) -> None:
        self.tensor: Tensor | None = None
        self.busy = False

    def claim(self, like: Tensor) -> Tensor:
        t = self.tensor
        if self.busy or t is None or t.shape != like.shape or t.dtype != like.dtype or t.device != like.device:
            t = self.tensor = torch.empty_like(like, memory_format=torch.contiguous_format)
        self.busy = True
        return t

    def release(self, tensor: Tensor) -> None:
        if self.tensor is not None and tensor.data_ptr() == self.tensor.data_ptr():
            self.busy = False


class ReusedProduct(torch.autograd.Function):
    """``x (W * M)^T + b`` with ``W * M`` in a reused buffer; the weight gradient is masked in place."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor, buffer: ReuseBuffer) -> Tensor:
        product = torch.mul(weight, mask, out=buffer.claim(weight))
        ctx.save_for_backward(x, product, mask)
        ctx.buffer, ctx.has_bias = buffer, bias is not None
        return F.linear(x, product, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, product, mask = ctx.saved_tensors
        grad_x = grad @ product if ctx.needs_input_grad[0] else None
        flat_grad = grad.reshape(-1, grad.shape[-1])
        grad_w = flat_grad.T.mm(x.reshape(-1, x.shape[-1])).mul_(mask) if ctx.needs_input_grad[1] else None
        grad_b = flat_grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        ctx.buffer.release(product)
        return grad_x, grad_w, grad_b, None, None


class FrozenWeights:
    """The effective weight and bias of a layer, for as long as its key holds."""

    def __init__(self, key: tuple, mask: Tensor, weight: Tensor, bias: Tensor | None) -> None:
        self.key = key
        self.mask = mask  # keeps the keyed mask's memory from being reused by another mask
        self.dense: tuple[Tensor, Tensor | None] | None = (weight, bias)
        self.uses = 0
        self.rows = 0
        self.blocks: BlockTriangular | None = None
        self.single_use = False  # built while an update could go unseen: serves its own call only
