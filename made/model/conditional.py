r"""Conditional inference: p(x_missing | x_observed) under orderings that put the observed dimensions first.

An autoregressive model gives the marginal of a *prefix* of its ordering for free,
so conditionals are exact when the observed dimensions come first. For an
observed set O this module replaces each mask c of the mixture (the current mask
when ``ensemble`` is None, else the first K of :meth:`MaskPool.ensemble_seeds`) by the
mask c^O: the hidden degrees drawn from c's seed, with c's ordering stably
re-sorted so that O comes first (each group keeps its order under c). The
distribution used is the uniform mixture of the reordered masks,

    q_O(x) = (1/K) sum_c p_{c^O}(x),

and everything returned is exact for it:

* sampling draws c with probability w_c = p_{c^O}(x_O) / sum_j p_{j^O}(x_O),
  then x_missing ancestrally from mask c^O given x_O, which is a draw from
  q_O(x_missing | x_O) = sum_c w_c p_{c^O}(x_missing | x_O);
* the score is log q_O(x_missing | x_O) = logsumexp_c log p_{c^O}(x) - logsumexp_c log p_{c^O}(x_O).

When O is already a prefix of every mask's ordering, c^O = c and q_O is the
model's own distribution (the mask, or the ensemble ``log_prob(x, ensemble=K)``
scores), so any model may be conditioned on a prefix of its ordering. Otherwise
q_O is the mixture of other orderings of the same weights; that is a model of the
data only if training taught the weights every ordering, i.e. the model resampled
orderings (``num_masks != 1`` and ``resample`` "full" or "ordering"). For any other
model a non-prefix O raises ``ValueError``. Neither function tracks gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .distribution import as_count
from .sampling import sample_incremental

if TYPE_CHECKING:
    from .made import MADE

__all__ = [
    "observed_first",
    "mixture_seeds",
    "conditional_orderings",
    "observed_patterns",
    "reordered_log_probs",
    "conditional_log_prob",
    "impute",
]


def observed_first(ordering: Tensor, observed: Tensor) -> Tensor:
    """``ordering`` with the ``observed`` dimensions (bool ``[D]``) moved to the front, each group in its order."""
    seen = observed[ordering]
    return torch.cat([ordering[seen], ordering[~seen]])


def mixture_seeds(model: MADE, ensemble: int | None) -> list[int]:
    """Mask seeds of the mixture: the current mask, or the k masks ``log_prob(x, ensemble=k)`` averages."""
    return [int(model.mask_seed)] if ensemble is None else model.pool.ensemble_seeds(ensemble)


def conditional_orderings(model: MADE, seeds: list[int], observed: Tensor) -> list[Tensor]:
    """Each seed's ordering with the ``observed`` dimensions first; ``ValueError`` where the model cannot use it."""
    observed = observed.cpu()
    orderings = []
    for seed in seeds:
        ordering, _ = model.pool.connectivity(seed)
        reordered = observed_first(ordering, observed)
        if not model.pool.reorders and not torch.equal(reordered, ordering):
            raise ValueError(
                "the observed dimensions are not the first ones of the model's ordering "
                f"({ordering[: int(observed.sum())].tolist()}), and the model was not trained with "
                "resampled orderings (num_masks > 1 with resample 'full' or 'ordering'), so "
                "p(x_missing | x_observed) is not available from it"
            )
        orderings.append(reordered)
    return orderings


def _check(model: MADE, x: Tensor, observed: Tensor, context: Tensor | None, whole: bool) -> Tensor:
    """Validate the arguments; return ``x`` with its missing entries set to 0 (unless ``whole``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not isinstance(observed, Tensor) or observed.dtype != torch.bool:
        raise ValueError("observed must be a bool tensor (True where a value is observed)")
    if x.dim() != 2 or observed.shape != x.shape:
        raise ValueError(
            f"x and observed must both have shape [N, {model.num_inputs}], "
            f"got {list(x.shape)} and {list(observed.shape)}"
        )
    observed = observed.to(x.device)
    filled = x if whole else torch.where(observed, x, torch.zeros_like(x))
    model.check_input(filled, context)
    return filled


def observed_patterns(observed: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``(pattern, rows)`` for every distinct row of ``observed``."""
    patterns, inverse = torch.unique(observed, dim=0, return_inverse=True)
    return [(pattern, (inverse == g).nonzero().squeeze(1)) for g, pattern in enumerate(patterns)]


def reordered_log_probs(
    model: MADE, x: Tensor, pattern: Tensor, seeds: list[int], orderings: list[Tensor], context: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``log p_{c^O}(x_O)`` and ``log p_{c^O}(x)`` for each mask c, both ``[K, n]``."""
    observed, joint = [], []
    for seed, ordering in zip(seeds, orderings):
        per_dim = model.conditional_log_probs(x, context, model.masks(seed, ordering))
        observed.append(per_dim[:, pattern].sum(dim=1))
        joint.append(per_dim.sum(dim=1))
    return torch.stack(observed), torch.stack(joint)


@torch.no_grad()
def conditional_log_prob(
    model: MADE,
    x: Tensor,
    observed: Tensor,
    context: Tensor | None = None,
    ensemble: int | None = None,
) -> Tensor:
    """``log q_O(x_missing | x_observed)`` in nats for each row, ``[N]`` (0 where nothing is missing)."""
    _check(model, x, observed, context, whole=True)
    observed = observed.to(x.device)
    seeds = mixture_seeds(model, ensemble)
    result = x.new_zeros(x.shape[0])
    for pattern, rows in observed_patterns(observed):
        if bool(pattern.all()):
            continue
        orderings = conditional_orderings(model, seeds, pattern)
        ctx = None if context is None else context[rows]
        log_observed, log_joint = reordered_log_probs(model, x[rows], pattern, seeds, orderings, ctx)
        result[rows] = torch.logsumexp(log_joint, dim=0) - torch.logsumexp(log_observed, dim=0)
    return result


@torch.no_grad()
def impute(
    model: MADE,
    x: Tensor,
    observed: Tensor,
    num_samples: int | None = None,
    context: Tensor | None = None,
    ensemble: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill the unobserved entries of ``x`` with exact draws from ``q_O(x_missing | x_observed)``.

    Returns ``[N, D]`` when ``num_samples`` is None, else ``[num_samples, N, D]``;
    observed entries are copied, missing ones (any value, NaN included) are drawn.
    Rows are grouped by their observed pattern: each distinct pattern builds its
    own reordered masks, so the cost grows with the number of patterns.
    """
    num_samples = None if num_samples is None else as_count(num_samples, "num_samples")
    filled = _check(model, x, observed, context, whole=False)
    observed = observed.to(x.device)
    seeds = mixture_seeds(model, ensemble)
    draws, (n, d) = num_samples or 1, filled.shape
    dtype = model.output.weight.dtype
    # One uniform per dimension and one more to pick the mask, per draw and row.
    noise = torch.rand(draws, n, d + 1, generator=generator, device=filled.device, dtype=dtype)
    out = filled.to(dtype).expand(draws, n, d).clone()
    for pattern, rows in observed_patterns(observed):
        if bool(pattern.all()):
            continue
        orderings = conditional_orderings(model, seeds, pattern)
        ctx = None if context is None else context[rows]
        if len(seeds) > 1 and bool(pattern.any()):
            weights = torch.softmax(reordered_log_probs(model, out[0, rows], pattern, seeds, orderings, ctx)[0], dim=0)
        else:
            weights = out.new_full((len(seeds), len(rows)), 1.0 / len(seeds))
        cdf = weights.cumsum(dim=0)
        choice = (noise[:, rows, d][None] > cdf[:, None, :]).sum(dim=0).clamp(max=len(seeds) - 1)
        for c, (seed, ordering) in enumerate(zip(seeds, orderings)):
            draw, local = (choice == c).nonzero(as_tuple=True)
            if draw.numel() == 0:
                continue
            picked = rows[local]
            out[draw, picked] = sample_incremental(
                model,
                noise[draw, picked, :d],
                None if context is None else context[picked],
                out[draw, picked],
                num_given=int(pattern.sum()),
                masks=model.masks(seed, ordering),
            )
    return out[0] if num_samples is None else out
