"""The :class:`Family` interface, the registry of families by name, and :func:`make_family`."""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = [
    "Family",
    "FAMILIES",
    "register_family",
    "make_family",
    "DEFAULT_MIN_SCALE",
    "DEFAULT_COMPONENTS",
    "is_count",
    "is_number",
    "cached_on",
    "below_total",
]

DEFAULT_MIN_SCALE = 1e-3  # floor of every scale, in the units of x (standardized data: 1e-3 std)
DEFAULT_COMPONENTS = 5  # mixture components when a "mog" family does not say

FAMILIES: dict[str, type[Family]] = {}  # every family by name, in the order of registration

FamilyClass = TypeVar("FamilyClass", bound="type[Family]")


def register_family(name: str) -> Callable[[FamilyClass], FamilyClass]:
    """Class decorator: file the family under ``name`` for :func:`make_family` and, when it
    has a ``column_type``, for the columns of :class:`~made.families.Mixed`."""

    def register(cls: FamilyClass) -> FamilyClass:
        if name in FAMILIES:
            raise ValueError(f"a family named {name!r} is already registered")
        cls.name = name
        FAMILIES[name] = cls
        return cls

    return register


class Family(ABC):
    """Interface of an output family over ``num_inputs`` dimensions.

    A family that models one type of :class:`~made.families.Mixed` column says so with
    ``column_type``, ``column_options``, ``group_options``, :meth:`models` and
    :meth:`for_columns`; registering it is then all a mixed model needs.
    """

    name: ClassVar[str]
    column_type: ClassVar[str | None] = None  # the Mixed column type it models ("binary", ...), if any
    column_options: ClassVar[dict[str, int | None]] = {}  # that column's count keys and defaults (None: required)
    group_options: ClassVar[tuple[str, ...]] = ()  # options the columns of one instance share

    def __init__(self, num_inputs: int) -> None:
        self.num_inputs = num_inputs

    @classmethod
    def models(cls, column: dict) -> bool:
        """Whether this family models ``column``, a checked column of its ``column_type``
        (two families may share a type and split it by option, as Gaussians by components)."""
        return True

    @classmethod
    def for_columns(cls, columns: Sequence[dict], min_scale: float) -> Family:
        """The family over ``columns``: checked columns it models that share its ``group_options``."""
        raise NotImplementedError(f"the {cls.name!r} family models no column of a mixed family")

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
            raise ValueError(
                f"dimension {col} must be {self.support_text(col)}, found {x[row, col].item():g} in row {row}"
            )

    def config(self) -> dict:
        """JSON-ready description from which :func:`make_family` rebuilds this family."""
        return {"name": self.name}


def is_count(value: object) -> bool:
    """A positive integer (``True`` is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


def is_number(value: object) -> bool:
    """A real number (``True`` is not a number)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def cached_on(cache: dict, tensor: Tensor, device: torch.device) -> Tensor:
    """``tensor`` (a fixed index of a family) on ``device``, copied once per device."""
    key = (id(tensor), device)
    if key not in cache:
        cache[key] = tensor.to(device)
    return cache[key]


def below_total(uniform: Tensor, cdf: Tensor) -> Tensor:
    """``u * total`` as ``[..., 1]``, strictly below the total mass ``cdf[..., -1]``.

    Rounding can leave the cumulative sum a hair off 1; scaling ``u`` by it and
    keeping it under the total means the inverse CDF always lands on a category
    of positive probability (never a padded or empty slot, never past the end).
    """
    total = cdf[..., -1:]
    scaled = uniform.to(cdf.dtype)[..., None] * total
    return torch.minimum(scaled, torch.nextafter(total, torch.zeros_like(total)))


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
    spec: dict[str, Any]
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
