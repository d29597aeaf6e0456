r"""Dataset-level metrics: mean NLL in nats with its standard error, and bits per dimension."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..model.made import MADE
from ..model.mixture import Mixture

__all__ = ["NLLResult", "per_example_nll", "per_dimension_nll", "summarize_nll", "evaluate_nll"]


@dataclass(frozen=True)
class NLLResult:
    """Mean negative log-likelihood (nats per example), its standard error and bits per dimension."""

    nll: float
    stderr: float
    bits_per_dim: float
    num_examples: int
    ensemble: int | None = None


def per_example_nll(
    model: MADE | Mixture,
    data: Tensor,
    batch_size: int = 1000,
    ensemble: int | None = None,
    context: Tensor | None = None,
) -> Tensor:
    """``-log p(x)`` for every row of ``data``, in float64, evaluated in batches: what
    :meth:`MADE.per_example_nll <made.MADE.per_example_nll>` (:func:`made.model.nll.batched_nll`) or
    :meth:`Mixture.per_example_nll <made.model.mixture.Mixture.per_example_nll>` gives.

    ``ensemble=k`` averages p(x) (not logits) over k masks of the model's pool.
    """
    if not isinstance(data, Tensor):
        raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
    return model.per_example_nll(data, batch_size, ensemble, context)


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
