r"""Dataset-level metrics: mean NLL in nats with its standard error, and bits per dimension."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..fast.dispatch import replay_pays
from ..fast.replay import GraphedBatches

if TYPE_CHECKING:
    from ..model.made import MADE
    from ..model.mixture import Mixture

__all__ = ["NLLResult", "per_example_nll", "batched_nll", "per_dimension_nll", "summarize_nll", "evaluate_nll"]


@dataclass(frozen=True)
class NLLResult:
    """Mean negative log-likelihood (nats per example), its standard error and bits per dimension."""

    nll: float
    stderr: float
    bits_per_dim: float
    num_examples: int
    ensemble: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def per_example_nll(
    model: MADE | Mixture,
    data: Tensor,
    batch_size: int = 1000,
    ensemble: int | None = None,
    context: Tensor | None = None,
) -> Tensor:
    """``-log p(x)`` for every row of ``data``, in float64, evaluated in batches: what
    :meth:`MADE.per_example_nll <made.MADE.per_example_nll>` (:func:`batched_nll`) or
    :meth:`Mixture.per_example_nll <made.model.mixture.Mixture.per_example_nll>` gives.

    ``ensemble=k`` averages p(x) (not logits) over k masks of the model's pool.
    """
    if not isinstance(data, Tensor):
        raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
    return model.per_example_nll(data, batch_size, ensemble, context)


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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    masks = [None] if ensemble is None else [model.masks(seed) for seed in model.ensemble_seeds(ensemble)]
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
        graphed: GraphedBatches | None = None
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


@torch.no_grad()
def per_dimension_nll(
    model: MADE | Mixture, data: Tensor, batch_size: int = 1000, context: Tensor | None = None
) -> Tensor:
    """``-log p(x_d | x_<d)`` for every row and dimension, ``[N, D]`` in float64, under the
    current mask: the terms of the NLL, to see which dimensions make an example unlikely."""
    was_training = model.training
    model.eval()
    try:
        device, dtype = model.output.weight.device, model.output.weight.dtype
        parts = []
        for start in range(0, data.shape[0], batch_size):
            x = data[start : start + batch_size].to(device=device, dtype=dtype)
            c = None if context is None else context[start : start + batch_size].to(device=device, dtype=dtype)
            parts.append(-model.conditional_log_probs(x, c).double().cpu())
        return torch.cat(parts)
    finally:
        model.train(was_training)


def evaluate_nll(
    model: MADE | Mixture,
    data: Tensor,
    batch_size: int = 1000,
    ensemble: int | None = None,
    context: Tensor | None = None,
) -> NLLResult:
    """Mean NLL over all of ``data`` with ``std / sqrt(N)`` as its standard error."""
    return summarize_nll(per_example_nll(model, data, batch_size, ensemble, context), model.num_inputs, ensemble)


def summarize_nll(nll: Tensor, num_inputs: int, ensemble: int | None = None) -> NLLResult:
    """The mean of per-example NLLs ``nll`` (``[N]``) with ``std / sqrt(N)`` as its standard error."""
    n = nll.numel()
    stderr = float(nll.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    mean = float(nll.mean())
    return NLLResult(mean, stderr, mean / (num_inputs * math.log(2)), n, ensemble)
