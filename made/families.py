r"""Output families: how MADE's outputs become the conditionals p(x_d | x_<d).

A family says how many network inputs each dimension takes (its encoding), how
many output parameters each dimension needs, and how those parameters give a
per-dimension log-likelihood and samples. The model stays family-agnostic.

Families: :class:`Bernoulli` (binary), :class:`Categorical` (K_d categories per
dimension), :class:`Gaussian` and :class:`MixtureOfGaussians` (real values), and
:class:`Mixed` (a different kind per column). Each builds on ``torch.distributions``;
scales go through ``softplus`` plus a floor, never a clamp. ``sample`` is an inverse
CDF of exactly one uniform per dimension, so samplers can be compared draw for draw.
"""

from __future__ import annotations

import functools
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Distribution, MixtureSameFamily, Normal

__all__ = [
    "Family",
    "Bernoulli",
    "Categorical",
    "Gaussian",
    "MixtureOfGaussians",
    "Mixed",
    "ColumnGroups",
    "make_family",
    "FAMILIES",
]

DEFAULT_MIN_SCALE = 1e-3  # floor of every scale, in the units of x (standardized data: 1e-3 std)
DEFAULT_COMPONENTS = 5  # mixture components when a "mog" family does not say


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

    @property
    @abstractmethod
    def columns(self) -> list[dict]:
        """What each dimension is, in the column dicts of :class:`Mixed` (``{"type": "binary"}``,
        ``{"type": "categorical", "categories": K}``, ``{"type": "real", "components": C}``)."""

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
    def outside_support(self, x: Tensor) -> Tensor:
        """Boolean ``[N, D]``: where ``x`` is outside the family's support."""

    def in_support(self, x: Tensor) -> Tensor:
        """A 0-dim bool tensor, on ``x``'s device: whether every value of ``x`` is in the
        support, which never holds NaN or infinity. No host synchronization."""
        return ~(self.outside_support(x) | ~torch.isfinite(x)).any()

    @abstractmethod
    def support_text(self, dim: int) -> str:
        """What dimension ``dim`` accepts, for error messages (e.g. ``"binary (0 or 1)"``)."""

    def check_support(self, x: Tensor) -> None:
        """Raise ``ValueError`` naming the first value of ``x`` outside the support."""
        bad = self.outside_support(x)
        if bool(bad.any()):
            row, col = bad.nonzero()[0].tolist()
            raise ValueError(f"dimension {col} must be {self.support_text(col)}, found {x[row, col].item():g} in row {row}")

    def config(self) -> dict:
        """JSON-ready description from which :func:`make_family` rebuilds this family."""
        return {"name": self.name}


class Bernoulli(Family):
    """Binary dimensions; one logit per dimension, params shaped ``[N, D]``."""

    name = "bernoulli"

    @property
    def params_per_dim(self) -> list[int]:
        return [1] * self.num_inputs

    @property
    def columns(self) -> list[dict]:
        return [{"type": "binary"} for _ in range(self.num_inputs)]

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

    def outside_support(self, x: Tensor) -> Tensor:
        return (x != 0) & (x != 1)

    def in_support(self, x: Tensor) -> Tensor:
        # Within [0, 1] only 0 and 1 round to themselves, and NaN fails every comparison: two
        # reductions and one rounding, several times faster on the CPU than [N, D] comparisons.
        if x.numel() == 0:
            return torch.ones((), dtype=torch.bool, device=x.device)
        low, high = torch.aminmax(x)
        rounded = x.round()
        whole = torch.tensor(torch.equal(x, rounded)) if x.is_cpu else (x == rounded).all()
        return (low >= 0) & (high <= 1) & whole

    def support_text(self, dim: int) -> str:
        return "binary (0 or 1)"


def _is_count(value: object) -> bool:
    """A positive integer (``True`` is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _cached_on(cache: dict, tensor: Tensor, device: torch.device) -> Tensor:
    """``tensor`` (a fixed index of a family) on ``device``, copied once per device."""
    key = (id(tensor), device)
    if key not in cache:
        cache[key] = tensor.to(device)
    return cache[key]


def _below_total(uniform: Tensor, cdf: Tensor) -> Tensor:
    """``u * total`` as ``[..., 1]``, strictly below the total mass ``cdf[..., -1]``.

    Rounding can leave the cumulative sum a hair off 1; scaling ``u`` by it and
    keeping it under the total means the inverse CDF always lands on a category
    of positive probability (never a padded or empty slot, never past the end).
    """
    total = cdf[..., -1:]
    scaled = uniform.to(cdf.dtype)[..., None] * total
    return torch.minimum(scaled, torch.nextafter(total, torch.zeros_like(total)))


class Categorical(Family):
    r"""Categorical dimensions, each with its own number of categories ``K_d``.

    Data: category indices ``0 .. K_d - 1`` (as floats, like every ``x``). The
    network sees each dimension one-hot encoded (``K_d`` inputs) and gives ``K_d``
    logits per dimension. Public params: ``[N, D, max K]`` logits, padded with
    ``-inf`` where a column has fewer categories (probability zero there).
    """

    name = "categorical"

    def __init__(self, num_inputs: int, categories: int | Sequence[int]) -> None:
        super().__init__(num_inputs)
        counts = [categories] * num_inputs if _is_count(categories) else list(categories)
        if len(counts) != num_inputs:
            raise ValueError(f"categories has {len(counts)} entries, expected one per dimension ({num_inputs})")
        if not all(_is_count(k) for k in counts):
            raise ValueError(f"every dimension needs a positive integer number of categories, got {counts!r:.80}")
        self.categories = [int(k) for k in counts]
        self.max_categories = max(self.categories)
        self._counts = torch.tensor(self.categories)
        self._offsets = torch.cumsum(self._counts, 0) - self._counts  # first network input (and output) of each dimension
        self._cache: dict = {}

    @functools.cached_property
    def _valid_slots(self) -> Tensor:
        """Where each dimension's logits sit in the padded ``[D * max K]`` layout."""
        slots = torch.arange(self.max_categories)
        return (torch.arange(self.num_inputs)[:, None] * self.max_categories + slots)[slots < self._counts[:, None]]

    def _on(self, name: str, device: torch.device) -> Tensor:
        return _cached_on(self._cache, getattr(self, name), device)

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
        return (cdf <= _below_total(uniform, cdf)).sum(-1).to(params.dtype)

    def outside_support(self, x: Tensor) -> Tensor:
        return (x != x.round()) | (x < 0) | (x >= self._on("_counts", x.device))

    def support_text(self, dim: int) -> str:
        return f"a category in 0..{self.categories[dim] - 1}"

    def config(self) -> dict:
        return {"name": self.name, "categories": list(self.categories)}


class _RealFamily(Family):
    """Shared by the real-valued families: a smooth, floored map to positive scales."""

    def __init__(self, num_inputs: int, min_scale: float = DEFAULT_MIN_SCALE) -> None:
        super().__init__(num_inputs)
        if not (_is_number(min_scale) and math.isfinite(min_scale) and min_scale > 0):
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


class Gaussian(_RealFamily):
    r"""Real dimensions with Gaussian conditionals ``N(mean, scale^2)``.

    Public params ``[N, D, 2]``: ``[..., 0]`` the mean, ``[..., 1]`` the raw scale;
    the scale is ``softplus(raw) + min_scale``.
    """

    name = "gaussian"

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


class MixtureOfGaussians(_RealFamily):
    r"""Real dimensions whose conditionals are mixtures of ``C`` Gaussians.

    Public params ``[N, D, 3, C]``: ``[..., 0, :]`` the mixture logits, ``[..., 1, :]``
    the means, ``[..., 2, :]`` the raw scales (``softplus(raw) + min_scale``).
    """

    name = "mog"

    def __init__(self, num_inputs: int, components: int = DEFAULT_COMPONENTS, min_scale: float = DEFAULT_MIN_SCALE) -> None:
        super().__init__(num_inputs, min_scale)
        if not _is_count(components):
            raise ValueError(f"components must be a positive integer, got {components!r}")
        self.components = components

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
        u = _below_total(uniform, cdf)
        k = (cdf <= u).sum(-1, keepdim=True)
        w_k = weights.gather(-1, k)
        residual = (u - (cdf.gather(-1, k) - w_k)) / w_k
        z = torch.special.ndtri(_open_unit(residual.squeeze(-1)))
        return means.gather(-1, k).squeeze(-1) + self.scale(raw.gather(-1, k).squeeze(-1)) * z

    def config(self) -> dict:
        return {**super().config(), "components": self.components}


class Mixed(Family):
    r"""Columns of different kinds in one model: binary, categorical and real.

    ``columns`` has one JSON-able dict per dimension: ``{"type": "binary"}``,
    ``{"type": "categorical", "categories": K}`` or ``{"type": "real"}`` (a
    Gaussian; ``"components": C`` for a mixture of C Gaussians). Columns of one
    kind share one family (one per component count), so the cost does not grow
    with the number of kinds. Public params: the flat network output
    ``[N, sum(params_per_dim)]`` in dimension order (column d's parameters follow
    those of columns 0..d-1, in the layout of its kind's family).
    """

    name = "mixed"

    def __init__(self, num_inputs: int, columns: Sequence[dict], min_scale: float = DEFAULT_MIN_SCALE) -> None:
        super().__init__(num_inputs)
        if len(columns) != num_inputs:
            raise ValueError(f"columns has {len(columns)} entries, expected one per dimension ({num_inputs})")
        self._columns = [_column_spec(c, i) for i, c in enumerate(columns)]
        self.min_scale = float(min_scale)
        members: dict[tuple, list[int]] = {}
        for d, column in enumerate(self._columns):
            key = (column["type"], column.get("components", 0))
            members.setdefault(key, []).append(d)
        self.groups: list[tuple[Family, Tensor]] = []
        for (kind, components), cols in members.items():
            if kind == "binary":
                family: Family = Bernoulli(len(cols))
            elif kind == "categorical":
                family = Categorical(len(cols), [self._columns[d]["categories"] for d in cols])
            elif components == 1:
                family = Gaussian(len(cols), min_scale)
            else:
                family = MixtureOfGaussians(len(cols), components, min_scale)
            self.groups.append((family, torch.tensor(cols)))
        # Each column's family and its index inside that family.
        self._local = {d: (family, i) for family, cols in self.groups for i, d in enumerate(cols.tolist())}
        self._inputs = [self._local[d][0].inputs_per_dim[self._local[d][1]] for d in range(num_inputs)]
        self._params = [self._local[d][0].params_per_dim[self._local[d][1]] for d in range(num_inputs)]
        # Where each group's inputs, parameters and columns sit in dimension order.
        self._input_slots = self._slots(self._inputs)
        self._param_slots = self._slots(self._params)
        self._input_inverse = torch.argsort(torch.cat(self._input_slots))
        self._column_inverse = torch.argsort(torch.cat([cols for _, cols in self.groups]))
        self._cache: dict = {}

    def _slots(self, widths: list[int]) -> list[Tensor]:
        offsets = [0]
        for w in widths:
            offsets.append(offsets[-1] + w)
        return [
            torch.tensor([i for d in cols.tolist() for i in range(offsets[d], offsets[d + 1])], dtype=torch.long)
            for _, cols in self.groups
        ]

    def _on(self, tensor: Tensor, device: torch.device) -> Tensor:
        return _cached_on(self._cache, tensor, device)

    @property
    def inputs_per_dim(self) -> list[int]:
        return list(self._inputs)

    @property
    def columns(self) -> list[dict]:
        return [dict(c) for c in self._columns]

    @property
    def params_per_dim(self) -> list[int]:
        return list(self._params)

    def _by_group(self, x: Tensor) -> list[Tensor]:
        return [x[:, self._on(cols, x.device)] for _, cols in self.groups]

    def _group_params(self, params: Tensor) -> list[Tensor]:
        return [
            family.shape_params(params[:, self._on(slots, params.device)])
            for (family, _), slots in zip(self.groups, self._param_slots)
        ]

    def _in_column_order(self, parts: list[Tensor]) -> Tensor:
        joined = torch.cat(parts, dim=1)
        return joined[:, self._on(self._column_inverse, joined.device)]

    def encode(self, x: Tensor) -> Tensor:
        parts = [family.encode(xg) for (family, _), xg in zip(self.groups, self._by_group(x))]
        joined = torch.cat(parts, dim=1)
        return joined[:, self._on(self._input_inverse, joined.device)]

    def shape_params(self, flat: Tensor) -> Tensor:
        return flat

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        parts = [
            family.log_prob(p, xg)
            for (family, _), p, xg in zip(self.groups, self._group_params(params), self._by_group(x))
        ]
        return self._in_column_order(parts)

    def sample(self, params: Tensor, uniform: Tensor) -> Tensor:
        parts = [
            family.sample(p, ug).to(params.dtype)
            for (family, _), p, ug in zip(self.groups, self._group_params(params), self._by_group(uniform))
        ]
        return self._in_column_order(parts)

    def distribution(self, params: Tensor) -> Distribution:
        parts = [family.distribution(p) for (family, _), p in zip(self.groups, self._group_params(params))]
        columns = [self._on(cols, params.device) for _, cols in self.groups]
        return ColumnGroups(parts, columns, self._on(self._column_inverse, params.device))

    def outside_support(self, x: Tensor) -> Tensor:
        parts = [family.outside_support(xg) for (family, _), xg in zip(self.groups, self._by_group(x))]
        return self._in_column_order(parts)

    def support_text(self, dim: int) -> str:
        family, index = self._local[dim]
        return family.support_text(index)

    def config(self) -> dict:
        return {"name": self.name, "columns": self.columns, "min_scale": self.min_scale}


class ColumnGroups(Distribution):
    """The conditionals of a :class:`Mixed` family: one distribution per group of columns.

    Batch shape ``[N, D]``; ``log_prob`` and ``sample`` put every group's columns
    back in dimension order.
    """

    arg_constraints: dict = {}

    def __init__(self, parts: Sequence[Distribution], columns: Sequence[Tensor], inverse: Tensor) -> None:
        self.parts, self.columns, self.inverse = list(parts), list(columns), inverse
        n = parts[0].batch_shape[0]
        super().__init__(torch.Size([n, len(inverse)]), validate_args=False)

    def _in_order(self, parts: list[Tensor]) -> Tensor:
        return torch.cat(parts, dim=-1)[..., self.inverse]

    def log_prob(self, value: Tensor) -> Tensor:
        return self._in_order([d.log_prob(value[..., cols]) for d, cols in zip(self.parts, self.columns)])

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return self._in_order([d.sample(sample_shape).to(torch.get_default_dtype()) for d in self.parts])


FAMILIES = {
    "bernoulli": Bernoulli,
    "categorical": Categorical,
    "gaussian": Gaussian,
    "mog": MixtureOfGaussians,
    "mixed": Mixed,
}


def _column_spec(column: dict, index: int) -> dict:
    """Check one column of a :class:`Mixed` family and fill its defaults."""
    if not isinstance(column, dict) or column.get("type") not in ("binary", "categorical", "real"):
        raise ValueError(f"column {index}: expected a dict with type binary, categorical or real, got {column!r}")
    allowed = {"binary": {"type"}, "categorical": {"type", "categories"}, "real": {"type", "components"}}
    unknown = set(column) - allowed[column["type"]]
    if unknown:
        raise ValueError(f"column {index}: unknown keys {sorted(unknown)} for a {column['type']} column")
    if column["type"] == "categorical":
        k = column.get("categories")
        if not _is_count(k):
            raise ValueError(f"column {index}: categories must be a positive integer, got {k!r}")
        return {"type": "categorical", "categories": k}
    if column["type"] == "real":
        c = column.get("components", 1)
        if not _is_count(c):
            raise ValueError(f"column {index}: components must be a positive integer, got {c!r}")
        return {"type": "real", "components": c}
    return {"type": "binary"}


def make_family(
    num_inputs: int,
    family: str | dict | Sequence[dict] | Family = "bernoulli",
    categories: int | Sequence[int] | None = None,
    components: int | None = None,
) -> Family:
    """Build a family from its name, its :meth:`Family.config` dict, a list of column
    dicts (a :class:`Mixed` family), or return it as is.

    ``categories`` and ``components`` are the options of ``"categorical"`` and
    ``"mog"`` given as keywords (``MADE(..., family="categorical", categories=[2, 3])``).
    """
    options = {k: v for k, v in (("categories", categories), ("components", components)) if v is not None}
    if isinstance(family, Family):
        if options:
            raise ValueError(f"{sorted(options)} cannot be combined with a ready-made family object")
        return family
    if isinstance(family, str):
        spec = {"name": family}
    elif isinstance(family, dict):
        spec = dict(family)
    else:
        spec = {"name": "mixed", "columns": list(family)}
    for key, value in options.items():
        value = list(value) if isinstance(value, (list, tuple)) else value
        if key in spec and spec[key] != value:
            raise ValueError(f"{key}={value!r} conflicts with the family's own {key}={spec[key]!r}")
        spec[key] = value
    name = spec.pop("name", None)
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(map(repr, FAMILIES))}")
    try:
        return FAMILIES[name](num_inputs, **spec)
    except TypeError as err:
        raise ValueError(f"invalid options {sorted(spec)} for the {name!r} family ({err})") from None
