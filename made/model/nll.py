r"""``-log p(x)`` of a whole data set under a MADE, in batches: what :meth:`MADE.per_example_nll
<made.MADE.per_example_nll>` and the ensemble scores of evaluation compute."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..fast.dispatch import replay_pays
from ..fast.replay import GraphedBatches
from .distribution import as_count

if TYPE_CHECKING:
    from .made import MADE

__all__ = ["batched_nll"]


@torch.no_grad()
def batched_nll(
    model: MADE,
    data: Tensor,
    batch_size: int = 1000,
    ensemble: int | None = None,
    context: Tensor | None = None,
) -> Tensor:
    """``-log p(x)`` under ``model`` for every row of ``data``, in float64, evaluated in batches.

    ``ensemble=k`` averages p(x) (not logits) over k masks of the model's pool.
    The data's values are checked once, in one pass; results are written into one
    float64 tensor on the model's device and moved at the end, so no batch waits
    for the host (on a GPU that wait costs more than a small model's forward). An
    ensemble runs mask by mask over all batches, so each mask is built once and its
    layers' reused weights serve every batch. On a GPU, from a few full batches on, the
    full batches replay the first one's kernels from a CUDA graph (:mod:`made.fast.replay`).
    The model is not changed (its mask, training flag and ``validate_args`` stay as they
    are): evaluation is without dropout, and concurrent callers see nothing of it.
    """
    batch_size = as_count(batch_size, "batch_size")
    masks = [None] if ensemble is None else [model.masks(seed) for seed in model.pool.ensemble_seeds(ensemble)]
    if model.validate_args:
        model.check_values(data)  # the shape, then the values
    else:
        model.check_shape(data)
    if isinstance(context, Tensor) and context.shape[0] != data.shape[0]:
        raise ValueError(f"context has {context.shape[0]} rows but data has {data.shape[0]}")
    device, dtype = model.output.weight.device, model.output.weight.dtype
    starts = range(0, data.shape[0], batch_size)
    batches: Iterable[tuple[Tensor, Tensor | None]] = (
        (
            data[s : s + batch_size].to(device=device, dtype=dtype),
            None if context is None else context[s : s + batch_size].to(device=device, dtype=dtype),
        )
        for s in starts
    )
    if len(masks) > 1:
        batches = list(batches)  # read once per mask
    total = torch.empty(data.shape[0], dtype=torch.float64, device=device)
    replay = replay_pays(device, data.shape[0] // batch_size)
    for i, mask in enumerate(masks):
        joint = total if i == 0 else torch.empty_like(total)
        log_prob = model.frozen_log_prob(data.shape[0], mask)
        graphed = None
        for start, (x, c) in zip(starts, batches):
            if start == 0:
                model.check_input(x, c, values=False)  # shapes, dtype and device: the same for every batch
                if replay:  # every full batch replays the first one's kernels
                    graphed = GraphedBatches.or_none(log_prob, x, c)
            full = x.shape[0] == batch_size
            joint[start : start + x.shape[0]] = graphed(x, c) if graphed is not None and full else log_prob(x, c)
        if i > 0:
            torch.logaddexp(total, joint, out=total)
    if len(masks) > 1:
        total.sub_(math.log(len(masks)))
    return total.neg_().cpu()
