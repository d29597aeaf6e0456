"""Real dimensions: the :class:`Gaussian` and :class:`MixtureOfGaussians` families.

Scales go through ``softplus`` plus a floor, never a clamp; ``log_prob`` is never
NaN for a number; ``sample`` is an inverse CDF of one uniform per dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Distribution, MixtureSameFamily, Normal

from .base import DEFAULT_COMPONENTS, DEFAULT_MIN_SCALE, Family, below_total, is_count, is_number, register_family

__all__ = ["Gaussian", "MixtureOfGaussians"]


class _RealFamily(Family):
    """Shared by the real-valued families: a smooth, floored map to positive scales, and the
    ``real`` column of a mixed family (``components`` Gaussians, 1 unless it says)."""

    column_type = "real"
    column_options = {"components": 1}

    def __init__(self, num_inputs: int, min_scale: float = DEFAULT_MIN_SCALE) -> None:
        super().__init__(num_inputs)
        if not (is_number(min_scale) and math.isfinite(min_scale) and min_scale > 0):
            raise ValueError(f"min_scale must be a positive number, got {min_scale!r}")
        self.min_scale = float(min_scale)

    def scale(self, raw: Tensor) -> Tensor:
        """``softplus(raw) + min_scale``: smooth, never below the floor, no clamp to stall gradients."""
        return F.softplus(raw) + self.min_scale

    def outside_support(self, x: Tensor) -> Tensor:
        return ~torch.isfinite(x)

    def support_text(self, dim: int) -> str:
        return "a finite real number"

    def config(self) -> dict:
        return {"name": self.name, "min_scale": self.min_scale}


def _never_nan(log_prob: Tensor, x: Tensor) -> Tensor:
    """``-inf`` where a real density came out NaN for a number ``x``: a value so far out (1e30) that the
    network's parameters overflowed has, as far as the model can say, probability zero."""
    return torch.where(torch.isnan(log_prob) & ~torch.isnan(x), torch.full_like(log_prob, -math.inf), log_prob)


class _Normal(Normal):
    """``Normal`` whose ``log_prob`` is never NaN for a number (see :func:`_never_nan`)."""

    def log_prob(self, value: Tensor) -> Tensor:
        return _never_nan(super().log_prob(value), value)


class _Mixture(MixtureSameFamily):
    """``MixtureSameFamily`` whose ``log_prob`` is never NaN for a number (see :func:`_never_nan`)."""

    def log_prob(self, value: Tensor) -> Tensor:
        return _never_nan(super().log_prob(value), value)


def _open_unit(u: Tensor) -> Tensor:
    """``u`` kept in ``[tiny, 1 - eps]`` so the normal quantile stays finite (u = 0 has probability ~0)."""
    info = torch.finfo(u.dtype)
    return u.clamp(info.tiny, 1 - info.eps)


@register_family("gaussian")
class Gaussian(_RealFamily):
    r"""Real dimensions with Gaussian conditionals ``N(mean, scale^2)``; models the real
    columns of one component.

    Public params ``[N, D, 2]``: ``[..., 0]`` the mean, ``[..., 1]`` the raw scale;
    the scale is ``softplus(raw) + min_scale``.
    """

    @classmethod
    def models(cls, column: dict) -> bool:
        return column["components"] == 1

    @classmethod
    def for_columns(cls, columns: Sequence[dict], min_scale: float) -> Gaussian:
        return cls(len(columns), min_scale)

    @property
    def params_per_dim(self) -> list[int]:
        return [2] * self.num_inputs

    @property
    def columns(self) -> list[dict]:
        return [{"type": "real", "components": 1} for _ in range(self.num_inputs)]

    def shape_params(self, flat: Tensor) -> Tensor:
        return flat.reshape(flat.shape[0], self.num_inputs, 2)

    def distribution(self, params: Tensor) -> Distribution:
        return _Normal(params[..., 0], self.scale(params[..., 1]), validate_args=False)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return self.distribution(params).log_prob(x)

    def sample(self, params: Tensor, uniform: Tensor) -> Tensor:
        u = _open_unit(uniform.to(params.dtype))
        return params[..., 0] + self.scale(params[..., 1]) * torch.special.ndtri(u)


@register_family("mog")
class MixtureOfGaussians(_RealFamily):
    r"""Real dimensions whose conditionals are mixtures of ``C`` Gaussians; models the real
    columns of more than one component, one family per component count.

    Public params ``[N, D, 3, C]``: ``[..., 0, :]`` the mixture logits, ``[..., 1, :]``
    the means, ``[..., 2, :]`` the raw scales (``softplus(raw) + min_scale``).
    """

    group_options = ("components",)

    def __init__(
        self, num_inputs: int, components: int = DEFAULT_COMPONENTS, min_scale: float = DEFAULT_MIN_SCALE
    ) -> None:
        super().__init__(num_inputs, min_scale)
        if not is_count(components):
            raise ValueError(f"components must be a positive integer, got {components!r}")
        self.components = components

    @classmethod
    def models(cls, column: dict) -> bool:
        return column["components"] > 1

    @classmethod
    def for_columns(cls, columns: Sequence[dict], min_scale: float) -> MixtureOfGaussians:
        return cls(len(columns), columns[0]["components"], min_scale)

    @property
    def params_per_dim(self) -> list[int]:
        return [3 * self.components] * self.num_inputs

    @property
    def columns(self) -> list[dict]:
        return [{"type": "real", "components": self.components} for _ in range(self.num_inputs)]

    def shape_params(self, flat: Tensor) -> Tensor:
        return flat.reshape(flat.shape[0], self.num_inputs, 3, self.components)

    def distribution(self, params: Tensor) -> Distribution:
        logits, means, raw = params.unbind(-2)
        return _Mixture(
            TorchCategorical(logits=logits, validate_args=False),
            Normal(means, self.scale(raw), validate_args=False),
            validate_args=False,
        )

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return self.distribution(params).log_prob(x)

    def sample(self, params: Tensor, uniform: Tensor) -> Tensor:
        # One uniform per dimension, used twice: it picks component k by the
        # cumulative weights, and the rescaled residual (u - c_{k-1}) / w_k is again
        # uniform on [0, 1) and independent of k, so it drives component k's quantile.
        logits, means, raw = params.unbind(-2)
        weights = torch.softmax(logits, dim=-1)
        cdf = weights.cumsum(-1)
        u = below_total(uniform, cdf)
        k = (cdf <= u).sum(-1, keepdim=True)
        w_k = weights.gather(-1, k)
        residual = (u - (cdf.gather(-1, k) - w_k)) / w_k
        z = torch.special.ndtri(_open_unit(residual.squeeze(-1)))
        return means.gather(-1, k).squeeze(-1) + self.scale(raw.gather(-1, k).squeeze(-1)) * z

    def config(self) -> dict:
        return {**super().config(), "components": self.components}
