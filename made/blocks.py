r"""Degree-sorted block-triangular products: a masked layer without its masked-out half.

A MADE mask is a threshold of degrees (``m_out >= m_in``, or ``>`` for outputs),
so the sets of inputs its rows may read are nested. Sorting the rows by how many
inputs they read and the inputs by how many rows read them turns the mask into a
staircase: every row reads a prefix of the sorted inputs. Cutting the sorted rows
into a few groups, each group is one dense product with the prefix of its last
row, which skips most of the zeros of ``W * M`` (about half of all entries for
random degrees). The result is the same sum of the same nonzero terms, only
added in another order, so it is exact up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Staircase", "find_staircase", "BlockTriangular"]

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
    over sorted rows.
    """

    row_order: Tensor | None
    col_order: Tensor | None
    row_inverse: Tensor | None
    groups: tuple[tuple[int, int, int], ...]
    shape: tuple[int, int]

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
    rows = _order_or_none(row_order)
    return Staircase(
        row_order=rows,
        col_order=_order_or_none(col_order),
        row_inverse=None if rows is None else torch.argsort(rows),
        groups=groups,
        shape=(out, inp),
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
        weight = masked_weight
        if staircase.row_order is not None:
            weight = weight.index_select(0, staircase.row_order.to(device))
        if self.col_order is not None:
            weight = weight.index_select(1, self.col_order)
        self.weight = weight.contiguous()
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
                torch.addmm(self.bias[start:stop], xs[:, :prefix], self.weight[start:stop, :prefix].T,
                            out=y[:, start:stop])
        if self.row_inverse is not None:
            y = y.index_select(1, self.row_inverse)
        return y.reshape(*lead, out)
