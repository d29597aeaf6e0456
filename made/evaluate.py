r"""Dataset-level metrics: mean NLL in nats with its standard error, and bits per dimension."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .model import MADE

__all__ = ["NLLResult", "per_example_nll", "per_dimension_nll", "evaluate_nll"]


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


@torch.no_grad()
def _in_batches(
    model: MADE, data: Tensor, batch_size: int, context: Tensor | None, compute: Callable[[Tensor, Tensor | None], Tensor]
) -> Tensor:
    """``compute(x, c)`` over ``data`` in batches, in eval mode, gathered in float64 on the CPU."""
    was_training = model.training
    model.eval()
    try:
        device = model.output.weight.device
        dtype = model.output.weight.dtype
        parts = []
        for start in range(0, data.shape[0], batch_size):
            x = data[start : start + batch_size].to(device=device, dtype=dtype)
            c = None if context is None else context[start : start + batch_size].to(device=device, dtype=dtype)
            parts.append(compute(x, c).double().cpu())
        return torch.cat(parts)
    finally:
        model.train(was_training)


def per_example_nll(
    model: MADE,
    data: Tensor,
    batch_size: int = 1000,
    ensemble: int | None = None,
    context: Tensor | None = None,
) -> Tensor:
    """``-log p(x)`` for every row of ``data``, in float64, evaluated in batches.

    ``ensemble=k`` averages p(x) (not logits) over k masks of the model's pool.
    """
    return _in_batches(model, data, batch_size, context, lambda x, c: -model.log_prob(x, c, ensemble=ensemble))


def per_dimension_nll(model: MADE, data: Tensor, batch_size: int = 1000, context: Tensor | None = None) -> Tensor:
    """``-log p(x_d | x_<d)`` for every row and dimension, ``[N, D]`` in float64, under the
    current mask: the terms of the NLL, to see which dimensions make an example unlikely."""
    return _in_batches(model, data, batch_size, context, lambda x, c: -model.conditional_log_probs(x, c))


def evaluate_nll(
    model: MADE,
    data: Tensor,
    batch_size: int = 1000,
    ensemble: int | None = None,
    context: Tensor | None = None,
) -> NLLResult:
    """Mean NLL over all of ``data`` with ``std / sqrt(N)`` as its standard error."""
    nll = per_example_nll(model, data, batch_size, ensemble, context)
    n = nll.numel()
    stderr = float(nll.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    mean = float(nll.mean())
    return NLLResult(mean, stderr, mean / (model.num_inputs * math.log(2)), n, ensemble)

