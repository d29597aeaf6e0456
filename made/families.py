r"""Output families: how MADE's outputs become the conditionals p(x_d | x_<d).

A family says how many network inputs each dimension takes (its encoding), how
many output parameters each dimension needs, and how those parameters give a
per-dimension log-likelihood and samples. The model stays family-agnostic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import Distribution

__all__ = ["Family", "Bernoulli", "make_family"]


class Family(ABC):
    """Interface of an output family over ``num_inputs`` dimensions."""

    name: str

    def __init__(self, num_inputs: int) -> None:
        self.num_inputs = num_inputs

    @property
    @abstractmethod
    def params_per_dim(self) -> list[int]:
        """Number of network outputs for each dimension, in dimension order."""

    @property
    def inputs_per_dim(self) -> list[int]:
        """Number of network inputs that encode each dimension (1 unless one-hot)."""
        return [1] * self.num_inputs

    def encode(self, x: Tensor) -> Tensor:
        """Network input for data ``x`` of shape ``[N, D]``."""
        return x

    @abstractmethod
    def shape_params(self, flat: Tensor) -> Tensor:
        """Turn the network's flat output ``[N, sum(params_per_dim)]`` into the public layout."""

    @abstractmethod
    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """Per-dimension conditional log-likelihoods ``[N, D]`` in nats."""

    @abstractmethod
    def sample(self, params: Tensor, uniform: Tensor) -> Tensor:
        """Draw ``x`` given its parameters and uniform noise of the shape of ``x``.

        Taking the noise as an argument makes samplers reproducible and lets two
        samplers be compared draw for draw.
        """

    def sample_dim(self, params: Tensor, uniform: Tensor, dim: int) -> Tensor:
        """Draw dimension ``dim`` alone: ``params`` is its slice ``[N, P]`` of the flat output,
        ``uniform`` its noise ``[N]``; returns ``[N]``, the value :meth:`sample` gives it.

        Fast samplers call this once per dimension. This default pads the slice into
        a full flat output and calls :meth:`sample` (O(D) per call); families with a
        cheap per-dimension rule override it.
        """
        widths = self.params_per_dim
        start = sum(widths[:dim])
        flat = params.new_zeros(params.shape[0], sum(widths))
        flat[:, start : start + widths[dim]] = params
        noise = uniform.new_full((uniform.shape[0], self.num_inputs), 0.5)
        noise[:, dim] = uniform
        return self.sample(self.shape_params(flat), noise)[:, dim]

    @abstractmethod
    def distribution(self, params: Tensor) -> Distribution:
        """The conditionals as a ``torch.distributions`` object of batch shape ``[N, D]``."""

    @abstractmethod
    def check_support(self, x: Tensor) -> None:
        """Raise ``ValueError`` if ``x`` has values outside the family's support."""

    def config(self) -> dict:
        """JSON-ready description from which :func:`make_family` rebuilds this family."""
        return {"name": self.name}


class Bernoulli(Family):
    """Binary dimensions; one logit per dimension, params shaped ``[N, D]``."""

    name = "bernoulli"

    @property
    def params_per_dim(self) -> list[int]:
        return [1] * self.num_inputs

    def shape_params(self, flat: Tensor) -> Tensor:
        return flat

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        # log sigmoid(l) for x = 1 and log sigmoid(-l) for x = 0, computed stably.
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none")

    def sample(self, params: Tensor, uniform: Tensor) -> Tensor:
        return (uniform < torch.sigmoid(params)).to(params.dtype)

    def sample_dim(self, params: Tensor, uniform: Tensor, dim: int) -> Tensor:
        return self.sample(params[:, 0], uniform)

    def distribution(self, params: Tensor) -> Distribution:
        return TorchBernoulli(logits=params)

    def check_support(self, x: Tensor) -> None:
        # x (x - 1) vanishes exactly at 0 and 1 (NaN and infinities give NaN or inf): one product
        # and a count, about half the time of comparing with 0 and with 1.
        if x.is_floating_point():
            binary = int(torch.count_nonzero(x.sub(1).mul_(x))) == 0
        else:
            binary = bool(((x == 0) | (x == 1)).all())
        if not binary:
            bad = x[(x != 0) & (x != 1)][0].item()
            raise ValueError(f"a Bernoulli model needs binary data (0 or 1), found {bad}")


def make_family(num_inputs: int, family: str | dict | Family = "bernoulli") -> Family:
    """Build a family from its name, its :meth:`Family.config` dict, or return it as is."""
    if isinstance(family, Family):
        return family
    spec = {"name": family} if isinstance(family, str) else dict(family)
    name = spec.pop("name", None)
    if name == "bernoulli":
        return Bernoulli(num_inputs, **spec)
    raise ValueError(f"unknown family {name!r}; known: 'bernoulli'")
