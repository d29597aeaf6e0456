r"""MADE as a ``torch.distributions.Distribution``, and the shape rules its methods share.

:class:`MADEDistribution` wraps a trained :class:`~made.MADE` (or the mixture of k of
its masks) so that code written for torch distributions can score and sample it:
``event_shape`` is ``[D]``, ``log_prob`` takes any batch shape ``[..., D]`` and
``sample(sample_shape)`` returns ``[*sample_shape, *batch_shape, D]``.

The helpers :func:`as_sample_shape`, :func:`flatten_batch` and :func:`flatten_context`
give ``MADE.log_prob`` and ``MADE.sample`` the same torch-style shapes: the model works
on rows ``[N, D]``, so batch dimensions are flattened on the way in and restored on
the way out.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

if TYPE_CHECKING:
    from ..families import Family
    from .made import MADE

__all__ = ["MADEDistribution", "as_sample_shape", "flatten_batch", "flatten_context", "family_support"]


# ------------------------------------------------------------------ shapes
def as_sample_shape(size: int | Sequence[int] | torch.Size, name: str) -> torch.Size:
    """``size`` (an int, or a tuple/list/``torch.Size`` of ints) as a ``torch.Size``.

    Bools and non-integers raise ``TypeError``, negative sizes ``ValueError``; the
    one-line message names the argument ``name`` as the caller wrote it.
    """
    dims: list[object] = list(size) if isinstance(size, (tuple, list, torch.Size)) else [size]
    checked = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{name} must be a non-negative integer or a tuple of them, got {size!r}")
        if d < 0:
            raise ValueError(f"{name} must not be negative, got {size!r}")
        checked.append(int(d))
    return torch.Size(checked)


def flatten_context(context: Tensor | None, batch: torch.Size, context_size: int) -> Tensor | None:
    """A context of shape ``[*batch, C]`` as rows ``[prod(batch), C]``.

    Anything the model checks itself (no context, a model without one, a non-tensor)
    is returned unchanged so that its own message applies.
    """
    if not isinstance(context, Tensor) or not context_size:
        return context
    if context.shape != (*batch, context_size):
        raise ValueError(f"context must have shape {[*batch, context_size]}, got {list(context.shape)}")
    return context.reshape(-1, context_size)


def flatten_batch(
    x: Tensor, context: Tensor | None, num_inputs: int, context_size: int
) -> tuple[torch.Size, Tensor, Tensor | None]:
    """``(batch_shape, x as [N, D], context as [N, C])`` for ``x`` of shape ``[..., D]``.

    The context must have x's batch shape: ``[..., C]``. A non-tensor ``x`` is
    returned unchanged (the model's type check names it).
    """
    if not isinstance(x, Tensor):
        return torch.Size(), x, context
    if x.dim() == 0 or x.shape[-1] != num_inputs:
        raise ValueError(f"x must have shape [..., {num_inputs}], got {list(x.shape)}")
    batch = x.shape[:-1]
    return batch, x.reshape(-1, num_inputs), flatten_context(context, batch, context_size)


# ----------------------------------------------------------------- support
class _FamilySupport(constraints.Constraint):
    """The family's own rule (:meth:`Family.outside_support`, finite values only), per row of ``[..., D]``:
    for families whose columns mix kinds and for registered families, whose rule only they know."""

    event_dim = 1

    def __init__(self, family: Family) -> None:
        self.family = family
        super().__init__()

    def check(self, value: Tensor) -> Tensor:
        rows = value.reshape(-1, value.shape[-1])
        bad = self.family.outside_support(rows) | ~torch.isfinite(rows)
        return ~bad.any(dim=-1).reshape(value.shape[:-1])


def family_support(family: Family, device: torch.device | str | None = None) -> constraints.Constraint:
    """The support of the joint ``p(x)`` over ``[D]``: boolean for Bernoulli, real for Gaussians and
    mixtures of them, integers ``0..K_d-1`` per dimension for categorical; otherwise (columns of mixed
    kinds, a registered family) the family's own rule."""
    kinds = {c["type"] for c in family.columns}
    if kinds == {"binary"}:
        return constraints.independent(constraints.boolean, 1)
    if kinds == {"real"}:
        return constraints.independent(constraints.real, 1)
    if kinds == {"categorical"}:
        high = torch.tensor([c["categories"] - 1.0 for c in family.columns], device=device)
        return constraints.independent(constraints.integer_interval(0, high), 1)
    return _FamilySupport(family)


# ------------------------------------------------------------ distribution
class MADEDistribution(Distribution):
    r"""The joint density of a MADE as a ``torch.distributions.Distribution``.

    .. math:: p(x \mid c) = \prod_d p(x_d \mid x_{<d}, c)

    and with ``ensemble=k`` the mixture :math:`\frac{1}{k} \sum_m p_m(x \mid c)` over the
    first k masks of the model's pool, the density ``model.log_prob(x, ensemble=k)`` scores.

    Arguments:
        model: a :class:`~made.MADE`; read, never modified (its mask is restored after an ensemble).
        ensemble: number of masks in the mixture; ``None`` uses the model's current mask.
        context: ``[*batch_shape, C]`` side information for a model with ``context_size=C``;
            its leading dimensions become the ``batch_shape`` (``[N]`` for N rows).
        validate_args: torch's switch (``None``: torch's default). When on, ``log_prob``
            refuses values outside :attr:`support`; when off nothing is checked.

    Example:
        >>> dist = MADEDistribution(MADE(num_inputs=5, hidden_sizes=[16]))
        >>> dist.sample((2, 3)).shape, dist.log_prob(torch.zeros(4, 5)).shape
        (torch.Size([2, 3, 5]), torch.Size([4]))
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(
        self,
        model: MADE,
        ensemble: int | None = None,
        context: Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if ensemble is not None:
            model.ensemble_seeds(ensemble)  # refuses a bad size now, in one line
        size = model.context_size
        if size and (not isinstance(context, Tensor) or context.dim() == 0 or context.shape[-1] != size):
            got = None if not isinstance(context, Tensor) else list(context.shape)
            raise ValueError(f"context must have shape [..., {size}] for this model, got {got}")
        if not size and context is not None:
            raise ValueError("this model has no context input (context_size=0)")
        self.model, self.ensemble, self.context = model, ensemble, context
        batch_shape = torch.Size() if context is None else context.shape[:-1]
        super().__init__(batch_shape, torch.Size([model.num_inputs]), validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        return family_support(self.model.family, self.model.output.weight.device)

    def expand(self, batch_shape: Sequence[int], _instance: MADEDistribution | None = None) -> MADEDistribution:
        """The same density repeated over ``batch_shape`` (the context is broadcast, not copied)."""
        new = self._get_checked_instance(MADEDistribution, _instance)
        batch_shape = torch.Size(batch_shape)
        new.model, new.ensemble = self.model, self.ensemble
        new.context = None if self.context is None else self.context.expand(*batch_shape, self.model.context_size)
        super(MADEDistribution, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _context(self, shape: torch.Size) -> Tensor | None:
        """The context broadcast to ``[*shape, C]`` (shape ends with the batch shape)."""
        return None if self.context is None else self.context.expand(*shape, self.model.context_size)

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact ``log p(value)`` in nats, ``[...]`` for ``value`` of shape ``[..., D]`` (broadcast
        against the batch shape)."""
        if self._validate_args:
            self._validate_sample(value)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        value = value.expand(*shape, self.model.num_inputs)
        validate = self.model.validate_args and bool(self._validate_args)
        return self.model.log_prob(value, self._context(shape), self.ensemble, validate_args=validate)

    def sample(self, sample_shape: Sequence[int] | torch.Size = torch.Size()) -> Tensor:
        """Exact draws ``[*sample_shape, *batch_shape, D]`` (torch's global generator)."""
        shape = as_sample_shape(sample_shape, "sample_shape") + self.batch_shape
        return self.model.sample(shape, self._context(shape), ensemble=self.ensemble)

    def __repr__(self) -> str:
        family = self.model.family.name
        mixture = "" if self.ensemble is None else f", ensemble={self.ensemble}"
        shape = list(self.batch_shape)
        return f"MADEDistribution(D={self.model.num_inputs}, family={family}{mixture}, batch_shape={shape})"
