r"""Degree-sorted block-triangular products: a masked layer without its masked-out half.

A MADE mask is a threshold of degrees (``m_out >= m_in``, or ``>`` for outputs),
so the sets of inputs its rows may read are nested. Sorting the rows by how many
inputs they read and the inputs by how many rows read them turns the mask into a
staircase: every row reads a prefix of the sorted inputs. Cutting the sorted rows
into a few groups, each group is one dense product with the prefix of its last
row, which skips most of the zeros of ``W * M`` (about half of all entries for
random degrees). The result is the same sum of the same nonzero terms, only
added in another order, so it is exact up to float rounding.

The same staircase serves training (:class:`StaircaseProduct`): the forward pass
runs over row groups, the input gradient over column groups (each sorted column
is read by a suffix of the sorted rows) and the weight gradient over the row
groups again, so all three products of a training step skip the masked-out half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

if TYPE_CHECKING:
    from .frozen import ReuseBuffer

__all__ = ["Staircase", "find_staircase", "BlockTriangular", "StaircaseProduct", "TrainingPlan"]

# Group boundaries and prefixes are rounded up to this many units: aligned GEMM
# shapes run faster than the few zeros they add cost.
ALIGN = 16
# Fewer, larger groups keep each product efficient; more groups skip more zeros.
MIN_GROUP_ROWS = 64
MAX_GROUPS = 16


@dataclass(frozen=True)
class Staircase:
    """How to sort a nested ``[out, in]`` mask into row groups that read input prefixes.

    ``row_order[i]`` is the original row at sorted position i (``None``: already
    sorted), likewise ``col_order``; ``groups`` holds ``(start, stop, prefix)``
    over sorted rows; ``col_groups`` holds ``(first_row, start, stop)`` over sorted
    columns: only sorted rows from ``first_row`` on read columns ``start:stop``.
    """

    row_order: Tensor | None
    col_order: Tensor | None
    row_inverse: Tensor | None
    groups: tuple[tuple[int, int, int], ...]
    shape: tuple[int, int]
    col_groups: tuple[tuple[int, int, int], ...]

    @property
    def fraction(self) -> float:
        """Share of the dense product's multiply-adds the groups still do."""
        out, inp = self.shape
        return sum((stop - start) * prefix for start, stop, prefix in self.groups) / max(out * inp, 1)


def _order_or_none(order: Tensor) -> Tensor | None:
    return None if torch.equal(order, torch.arange(order.numel(), device=order.device)) else order


def _round_up(value: int, limit: int) -> int:
    return min(-(-value // ALIGN) * ALIGN, limit)


def find_staircase(mask: Tensor) -> Staircase | None:
    """The staircase of a boolean ``[out, in]`` mask, or ``None`` when its rows are not nested."""
    mask = mask.cpu()
    out, inp = mask.shape
    reads = mask.sum(dim=1)
    row_order = torch.argsort(reads, stable=True)
    col_order = torch.argsort(mask.sum(dim=0), descending=True, stable=True)
    sorted_reads = reads[row_order]
    staircase = torch.arange(inp)[None, :] < sorted_reads[:, None]
    if not torch.equal(mask[row_order][:, col_order], staircase):
        return None
    count = max(1, min(MAX_GROUPS, out // MIN_GROUP_ROWS))
    edges = sorted({0, out, *(_round_up(round(i * out / count), out) for i in range(1, count))})
    groups = tuple(
        (start, stop, _round_up(int(sorted_reads[stop - 1]), inp)) for start, stop in zip(edges[:-1], edges[1:])
    )
    col_edges = sorted({0, inp, *(prefix for _, _, prefix in groups)})
    col_groups = tuple(
        (int(torch.searchsorted(sorted_reads, start, right=True)), start, stop)
        for start, stop in zip(col_edges[:-1], col_edges[1:])
    )
    rows = _order_or_none(row_order)
    return Staircase(
        row_order=rows,
        col_order=_order_or_none(col_order),
        row_inverse=None if rows is None else torch.argsort(rows),
        groups=groups,
        shape=(out, inp),
        col_groups=col_groups,
    )


class BlockTriangular:
    """A frozen masked layer ``x (W * M)^T + b`` evaluated group by group on its staircase.

    Built once from the effective (already masked) weight and bias; holds the
    weight with rows and columns sorted, so the groups are views of it.
    """

    def __init__(self, masked_weight: Tensor, bias: Tensor | None, staircase: Staircase) -> None:
        device = masked_weight.device
        self.staircase = staircase
        self.row_inverse = None if staircase.row_inverse is None else staircase.row_inverse.to(device)
        self.col_order = None if staircase.col_order is None else staircase.col_order.to(device)
        rows = None if staircase.row_order is None else staircase.row_order.to(device)
        self.weight = _permute(masked_weight, rows, self.col_order).contiguous()
        out = masked_weight.shape[0]
        if bias is None:
            bias = torch.zeros(out, dtype=masked_weight.dtype, device=device)
        elif staircase.row_order is not None:
            bias = bias.index_select(0, staircase.row_order.to(device))
        self.bias = bias

    def __call__(self, x: Tensor) -> Tensor:
        out, inp = self.staircase.shape
        lead = x.shape[:-1]
        xs = x.reshape(-1, inp)
        if self.col_order is not None:
            xs = xs.index_select(1, self.col_order)
        y = torch.empty(xs.shape[0], out, dtype=self.weight.dtype, device=self.weight.device)
        for start, stop, prefix in self.staircase.groups:
            # each group writes its own columns of y (a strided block BLAS writes in place)
            if prefix == 0:
                y[:, start:stop] = self.bias[start:stop]
            else:
                torch.addmm(
                    self.bias[start:stop], xs[:, :prefix], self.weight[start:stop, :prefix].T, out=y[:, start:stop]
                )
        if self.row_inverse is not None:
            y = y.index_select(1, self.row_inverse)
        return y.reshape(*lead, out)


class TrainingPlan:
    """A staircase moved to the mask's device, with the mask sorted onto it.

    ``mask`` is the layer's 0/1 mask in the weight's dtype; with no row or column
    order to apply (sorted degrees) the plan shares it rather than copying it.
    """

    def __init__(self, staircase: Staircase, mask: Tensor) -> None:
        device = mask.device
        self.staircase = staircase

        def on_device(order: Tensor | None) -> Tensor | None:
            return None if order is None else order.to(device)

        self.row_order, self.row_inverse = on_device(staircase.row_order), on_device(staircase.row_inverse)
        self.col_order = on_device(staircase.col_order)
        self.col_inverse = None if staircase.col_order is None else on_device(torch.argsort(staircase.col_order))
        self.mask = self.sort_weight(mask)

    def sort_weight(self, weight: Tensor) -> Tensor:
        return _permute(weight, self.row_order, self.col_order)

    def unsort_weight(self, weight: Tensor) -> Tensor:
        return _permute(weight, self.row_inverse, self.col_inverse)


def _permute(weight: Tensor, rows: Tensor | None, cols: Tensor | None) -> Tensor:
    """``weight[rows][:, cols]``, skipping an identity (``None``) order."""
    if rows is not None:
        weight = weight.index_select(0, rows)
    if cols is not None:
        weight = weight.index_select(1, cols)
    return weight


def _select(t: Tensor, order: Tensor | None) -> Tensor:
    return t if order is None else t.index_select(1, order)


class StaircaseProduct(torch.autograd.Function):
    """``x (W * M)^T + b`` for training, with forward and both gradients over the staircase.

    The masked weight is built once per call in sorted order (rows and columns
    gathered only when the degrees are not sorted already); the weight gradient is
    exactly zero outside the mask, as the plain product's is.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, plan: TrainingPlan, buffer: ReuseBuffer | None = None
    ) -> Tensor:
        """``buffer`` (``claim(like)`` and ``release(tensor)``), if given, holds the masked
        weight from the forward pass to the backward pass and is reused across steps."""
        rows, inp = plan.staircase.shape
        lead = x.shape[:-1]
        xs = _select(x.reshape(-1, inp), plan.col_order)
        masked = torch.mul(plan.sort_weight(weight), plan.mask, out=None if buffer is None else buffer.claim(weight))
        sorted_bias = bias
        if bias is not None and plan.row_order is not None:
            sorted_bias = bias.index_select(0, plan.row_order)
        y = torch.empty(xs.shape[0], rows, dtype=masked.dtype, device=masked.device)
        for start, stop, prefix in plan.staircase.groups:
            block = y[:, start:stop]
            if prefix == 0 and sorted_bias is None:
                block.zero_()
            elif prefix == 0 and sorted_bias is not None:
                block.copy_(sorted_bias[start:stop].expand_as(block))
            elif sorted_bias is None:
                torch.mm(xs[:, :prefix], masked[start:stop, :prefix].T, out=block)
            else:
                torch.addmm(sorted_bias[start:stop], xs[:, :prefix], masked[start:stop, :prefix].T, out=block)
        ctx.save_for_backward(xs, masked)
        ctx.plan, ctx.lead, ctx.has_bias, ctx.buffer = plan, lead, bias is not None, buffer
        return _select(y, plan.row_inverse).reshape(*lead, rows)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        xs, masked = ctx.saved_tensors
        plan: TrainingPlan = ctx.plan
        out, inp = plan.staircase.shape
        flat = grad.reshape(-1, out)
        g = _select(flat, plan.row_order)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            gx = torch.empty_like(xs)
            for first, start, stop in plan.staircase.col_groups:
                if first >= out:
                    gx[:, start:stop].zero_()
                else:
                    torch.mm(g[:, first:], masked[first:, start:stop], out=gx[:, start:stop])
            grad_x = _select(gx, plan.col_inverse).reshape(*ctx.lead, inp)
        if ctx.needs_input_grad[1]:
            gw = torch.zeros_like(masked)
            for start, stop, prefix in plan.staircase.groups:
                if prefix:
                    block = gw[start:stop, :prefix]
                    torch.mm(g[:, start:stop].T, xs[:, :prefix], out=block)
                    block.mul_(plan.mask[start:stop, :prefix])
            grad_w = plan.unsort_weight(gw)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = flat.sum(0)
        if ctx.buffer is not None:
            ctx.buffer.release(masked)
        return grad_x, grad_w, grad_b, None, None
