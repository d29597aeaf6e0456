r"""Ancestral sampling from MADE.

``sample_naive`` is the reference sampler: D full forward passes, each fixing the
next dimension of the ordering. Faster samplers must return exactly what it
returns for the same uniform noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import MADE

__all__ = ["sample_naive"]


@torch.no_grad()
def sample_naive(model: MADE, uniform: Tensor, context: Tensor | None = None) -> Tensor:
    """Draw ``x`` dimension by dimension in the model's ordering, one forward pass each.

    ``uniform`` (``[N, D]``, on the model's device) is the noise of each draw, so
    the result is a deterministic function of it.
    """
    x = torch.zeros_like(uniform)
    for d in model.ordering.tolist():
        params = model(x, context)
        x[:, d] = model.family.sample(params, uniform)[:, d]
    return x
