"""Categorical dimensions, each with its own number of categories: the :class:`Categorical` family."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Distribution

from .base import Family, below_total, cached_on, is_count, register_family

__all__ = ["Categorical"]


@register_family("categorical")
class Categorical(Family):
    r"""Categorical dimensions, each with its own number of categories ``K_d``.

    Data: category indices ``0 .. K_d - 1`` (as floats, like every ``x``). The
    network sees each dimension one-hot encoded (``K_d`` inputs) and gives ``K_d``
    logits per dimension. Public params: ``[N, D, max K]`` logits, padded with
    ``-inf`` where a column has fewer categories (probability zero there).
    """

    column_type = "categorical"
    column_options = {"categories": None}

    def __init__(self, num_inputs: int, categories: int | Sequence[int]) -> None:
        super().__init__(num_inputs)
        counts = list(categories) if isinstance(categories, Iterable) else [categories] * num_inputs
        if len(counts) != num_inputs:
            raise ValueError(f"categories has {len(counts)} entries, expected one per dimension ({num_inputs})")
        if not all(is_count(k) for k in counts):
            raise ValueError(f"every dimension needs a positive integer number of categories, got {counts!r:.80}")
        self.categories = [int(k) for k in counts]
        self.max_categories = max(self.categories)
        self._counts = torch.tensor(self.categories)
        self._offsets = (
            torch.cumsum(self._counts, 0) - self._counts
        )  # first network input (and output) of each dimension
        self._cache: dict = {}

    @classmethod
    def for_columns(cls, columns: Sequence[dict], min_scale: float) -> Categorical:
        return cls(len(columns), [c["categories"] for c in columns])

    @functools.cached_property
    def _valid_slots(self) -> Tensor:
        """Where each dimension's logits sit in the padded ``[D * max K]`` layout."""
        slots = torch.arange(self.max_categories)
        return (torch.arange(self.num_inputs)[:, None] * self.max_categories + slots)[slots < self._counts[:, None]]

    def _on(self, name: str, device: torch.device) -> Tensor:
        return cached_on(self._cache, getattr(self, name), device)

    @property
    def inputs_per_dim(self) -> list[int]:
        return list(self.categories)

    @property
    def params_per_dim(self) -> list[int]:
        return list(self.categories)

    @property
    def columns(self) -> list[dict]:
        return [{"type": "categorical", "categories": k} for k in self.categories]

    def encode(self, x: Tensor) -> Tensor:
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        hot = torch.zeros(x.shape[0], sum(self.categories), dtype=dtype, device=x.device)
        return hot.scatter_(1, x.long() + self._on("_offsets", x.device), 1.0)

    def shape_params(self, flat: Tensor) -> Tensor:
        n = flat.shape[0]
        if len(set(self.categories)) == 1:
            return flat.reshape(n, self.num_inputs, self.max_categories)
        padded = flat.new_full((n, self.num_inputs * self.max_categories), -math.inf)
        return padded.index_copy(1, self._on("_valid_slots", flat.device), flat).view(
            n, self.num_inputs, self.max_categories
        )

    def distribution(self, params: Tensor) -> Distribution:
        return TorchCategorical(logits=params, validate_args=False)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return self.distribution(params).log_prob(x.long())

    def sample(self, params: Tensor, uniform: Tensor) -> Tensor:
        # Inverse CDF: the category is the number of cumulative probabilities <= u.
        cdf = torch.softmax(params, dim=-1).cumsum(-1)
        return (cdf <= below_total(uniform, cdf)).sum(-1).to(params.dtype)

    def outside_support(self, x: Tensor) -> Tensor:
        return (x != x.round()) | (x < 0) | (x >= self._on("_counts", x.device))

    def support_text(self, dim: int) -> str:
        return f"a category in 0..{self.categories[dim] - 1}"

    def config(self) -> dict:
        return {"name": self.name, "categories": list(self.categories)}
