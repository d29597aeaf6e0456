"""Columns of different kinds in one model: the :class:`Mixed` family.

Each column dict names a column type (``binary``, ``categorical``, ``real``);
the registered family whose ``column_type`` it is, and which :meth:`~Family.models`
it, models the column. A new column type is therefore one registered family.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from .base import DEFAULT_MIN_SCALE, FAMILIES, Family, cached_on, is_count, register_family

__all__ = ["Mixed", "ColumnGroups", "check_columns", "group_columns", "family_for_columns"]


def _column_options() -> dict[str, dict[str, int | None]]:
    """Each column type of the registry with its options (the first family of a type says)."""
    options: dict[str, dict[str, int | None]] = {}
    for cls in FAMILIES.values():
        if cls.column_type is not None:
            options.setdefault(cls.column_type, cls.column_options)
    return options


def check_columns(columns: Sequence[object]) -> list[dict]:
    """The columns of a :class:`Mixed` family, checked, with their defaults filled in."""
    known = _column_options()
    return [_check_column(column, index, known) for index, column in enumerate(columns)]


def _check_column(column: object, index: int, known: dict[str, dict[str, int | None]]) -> dict:
    """Column ``index``, checked against the ``known`` column types and their options."""
    if not isinstance(column, dict) or column.get("type") not in known:
        names = list(known)
        either = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        raise ValueError(f"column {index}: expected a dict with type {either}, got {column!r}")
    options = known[column["type"]]
    unknown = set(column) - {"type", *options}
    if unknown:
        raise ValueError(f"column {index}: unknown keys {sorted(unknown)} for a {column['type']} column")
    spec = {"type": column["type"]}
    for key, default in options.items():
        value = column.get(key, default)
        if not is_count(value):
            raise ValueError(f"column {index}: {key} must be a positive integer, got {value!r}")
        spec[key] = value
    return spec


def _family_class(column: dict) -> type[Family]:
    """The registered family that models a checked column."""
    return next(cls for cls in FAMILIES.values() if cls.column_type == column["type"] and cls.models(column))


def group_columns(columns: Sequence[dict], min_scale: float = DEFAULT_MIN_SCALE) -> list[tuple[Family, Tensor]]:
    """Checked ``columns`` in groups, each modelled by one family: ``(family, column indices)``
    in order of first appearance. Columns of one family and one set of group options share a group."""
    groups: dict[tuple, tuple] = {}  # each distinct column's group, looked up once (a million binary columns: once)
    members: dict[tuple, list[int]] = {}
    for d, column in enumerate(columns):
        spec = tuple(column.items())
        if spec not in groups:
            cls = _family_class(column)
            groups[spec] = (cls, *(column[k] for k in cls.group_options))
        members.setdefault(groups[spec], []).append(d)
    return [
        (key[0].for_columns([columns[d] for d in cols], min_scale), torch.tensor(cols)) for key, cols in members.items()
    ]


def family_for_columns(columns: Sequence[dict], min_scale: float = DEFAULT_MIN_SCALE) -> Family:
    """The family of ``columns``: the one family that models them all, else a :class:`Mixed` one."""
    groups = group_columns(check_columns(columns), min_scale)
    return groups[0][0] if len(groups) == 1 else Mixed(len(columns), columns, min_scale)


@register_family("mixed")
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

    def __init__(self, num_inputs: int, columns: Sequence[dict], min_scale: float = DEFAULT_MIN_SCALE) -> None:
        super().__init__(num_inputs)
        if len(columns) != num_inputs:
            raise ValueError(f"columns has {len(columns)} entries, expected one per dimension ({num_inputs})")
        self._columns = check_columns(columns)
        self.min_scale = float(min_scale)
        self.groups = group_columns(self._columns, min_scale)
        # Each column's family and its index inside that family, and its input and parameter widths.
        self._local: dict[int, tuple[Family, int]] = {}
        self._inputs, self._params = [0] * num_inputs, [0] * num_inputs
        for family, cols in self.groups:
            for i, (d, inputs, params) in enumerate(zip(cols.tolist(), family.inputs_per_dim, family.params_per_dim)):
                self._local[d] = (family, i)
                self._inputs[d], self._params[d] = inputs, params
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
        return cached_on(self._cache, tensor, device)

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

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> Tensor:
        return self._in_order([d.sample(sample_shape).to(torch.get_default_dtype()) for d in self.parts])
