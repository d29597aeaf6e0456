r"""Output families: how MADE's outputs become the conditionals p(x_d | x_<d).

A family says how many network inputs each dimension takes (its encoding), how
many output parameters each dimension needs, and how those parameters give a
per-dimension log-likelihood and samples. The model stays family-agnostic.

Families: :class:`Bernoulli` (binary), :class:`Categorical` (K_d categories per
dimension), :class:`Gaussian` and :class:`MixtureOfGaussians` (real values), and
:class:`Mixed` (a different kind per column). Each is one class, filed by name with
:func:`register_family`; :func:`make_family` and the columns of :class:`Mixed` look
families up in that registry. Each builds on ``torch.distributions``; scales go
through ``softplus`` plus a floor, never a clamp. ``sample`` is an inverse CDF of
exactly one uniform per dimension, so samplers can be compared draw for draw.

A new family is one class: subclass :class:`Family` and decorate it with
``@register_family("name")``. Giving it a ``column_type`` (with ``column_options``,
``group_options``, :meth:`Family.models` and :meth:`Family.for_columns`) makes it
model the columns of that type in a :class:`Mixed` family too.
"""

from .base import DEFAULT_COMPONENTS, DEFAULT_MIN_SCALE, FAMILIES, Family, make_family, register_family
from .bernoulli import Bernoulli
from .categorical import Categorical
from .gaussian import Gaussian, MixtureOfGaussians
from .mixed import ColumnGroups, Mixed, family_for_columns

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
    "register_family",
    "family_for_columns",
    "DEFAULT_MIN_SCALE",
    "DEFAULT_COMPONENTS",
]
