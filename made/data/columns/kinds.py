r"""Column kinds: what one entry of a schema means, each kind one registered class.

A :class:`ColumnKind` says which keys its schema entry takes, how the training
split fills in the fitted form, how the data's own values become the model's value
of the dimension and back, and which column of a :class:`~made.families.Mixed`
family models it. :func:`register_column_kind` files a kind under its ``type``
name; every schema function of :mod:`made.data.columns` dispatches through that registry.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..precision import in_dtype
from ..splits import DataError, format_value

__all__ = [
    "ColumnKind",
    "COLUMN_KINDS",
    "register_column_kind",
    "kind_of",
    "is_json_count",
    "Where",
    "SHOWN_VALUES",
    "BinaryColumn",
    "CategoricalColumn",
    "RealColumn",
    "OneHotColumn",
]

SHOWN_VALUES = 8  # known values listed in an error before the rest are counted
INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")  # a real column's dtype
Where = Callable[[int], str]  # row index -> where the row is in the file ("line 7")

KindClass = TypeVar("KindClass", bound="type[ColumnKind]")


class ColumnKind(ABC):
    """One kind of schema entry (``{"type": name, ...}``) over ``width`` data-file columns.

    The methods take the column's dict: a checked short form (:meth:`check`, :meth:`fit`)
    or a fitted one (everything else). ``block`` is the data-file columns it reads.
    """

    name: ClassVar[str]
    keys: ClassVar[frozenset[str]]  # the keys a user may write, short or fitted form
    hints: ClassVar[dict[str, Any]]  # the fitted form: every key and its JSON type
    optional: ClassVar[frozenset[str]] = frozenset()  # keys of hints a fitted form may lack

    def width(self, column: dict) -> int:
        """Number of data-file columns the entry reads."""
        return 1

    def claims(self, values: np.ndarray, max_categories: int) -> bool:
        """Whether :func:`~made.data.columns.infer_schema` gives this kind to a column with these
        distinct ``values`` (the first registered kind that claims a column gets it)."""
        return False

    def check(self, column: dict, index: int) -> None:  # noqa: B027 (optional: most kinds take any value)
        """Raise :class:`DataError` for a user-written value this kind cannot take."""

    @abstractmethod
    def fit(self, column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
        """The fitted form of ``column`` (entry ``index``, data column ``start``) from the training split."""

    def fitted_ok(self, column: dict) -> bool:
        """Whether a fitted column's values make sense (their types already checked)."""
        return True

    @abstractmethod
    def encode(self, column: dict, block: np.ndarray, source: str, start: int, where: Where) -> np.ndarray:
        """The model's values ``[N]`` of the data's ``block``, or a :class:`DataError` naming the row."""

    @abstractmethod
    def decode(self, column: dict, values: np.ndarray) -> np.ndarray:
        """The data's values ``[N, width]`` of the model's ``values`` (float64) ``[N]``."""

    @abstractmethod
    def placeholder(self, column: dict) -> list[float]:
        """Data-file values the entry accepts, standing in for missing ones so a row encodes."""

    @abstractmethod
    def model_column(self, column: dict) -> dict:
        """The model's view of the dimension: a column dict of :class:`~made.families.Mixed`."""

    def log_scale(self, column: dict) -> float:
        """``log`` of the factor from the model's units to the data's (0 unless standardized)."""
        return 0.0


COLUMN_KINDS: dict[str, ColumnKind] = {}  # every kind by its type name, in the order of registration


def register_column_kind(name: str) -> Callable[[KindClass], KindClass]:
    """Class decorator: file the kind under the schema type ``name``."""

    def register(cls: KindClass) -> KindClass:
        if name in COLUMN_KINDS:
            raise ValueError(f"a column kind named {name!r} is already registered")
        cls.name = name
        COLUMN_KINDS[name] = cls()
        return cls

    return register


def kind_of(column: dict) -> ColumnKind:
    """The kind of a checked schema entry."""
    return COLUMN_KINDS[column["type"]]


def is_json_count(value: object) -> bool:
    """A positive integer as JSON writes one (not ``true``, ``"3"`` or ``3.5``)."""
    return type(value) is int and value >= 1


def _show(entry: np.ndarray) -> str:
    """A value (``7``) or a code (``[1, 0, 0]``) as written in the data."""
    text = ", ".join(format_value(v) for v in entry)
    return text if len(entry) == 1 else f"[{text}]"


def _lookup(table: np.ndarray, keys: np.ndarray, what: str, source: str, start: int, where: Where) -> np.ndarray:
    """Row index of each key in ``table`` (``[K, w]``, keys ``[N, w]``), or a DataError."""
    match = (keys[:, None, :] == table[None, :, :]).all(-1)
    found = match.any(1)
    if not found.all():
        row = int(np.argmin(found))
        known = ", ".join(_show(entry) for entry in table[:SHOWN_VALUES])
        more = f", ... ({len(table)} in all)" if len(table) > SHOWN_VALUES else ""
        raise DataError(
            f"{source}: {where(row)}, column {start + 1}: {what} {_show(keys[row])} was not seen in the "
            f"training split (known: {known}{more})"
        )
    return match.argmax(1)


@register_column_kind("binary")
class BinaryColumn(ColumnKind):
    """One 0/1 column, modelled as it is (a Bernoulli conditional)."""

    keys = frozenset({"type"})
    hints = {"type": str}

    def claims(self, values: np.ndarray, max_categories: int) -> bool:
        return bool(np.isin(values, (0.0, 1.0)).all())

    def fit(self, column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
        return column

    def encode(self, column: dict, block: np.ndarray, source: str, start: int, where: Where) -> np.ndarray:
        bad = (block[:, 0] != 0) & (block[:, 0] != 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{source}: {where(row)}, column {start + 1}: {format_value(block[row, 0])} is not binary")
        return block[:, 0]

    def decode(self, column: dict, values: np.ndarray) -> np.ndarray:
        return values[:, None]

    def placeholder(self, column: dict) -> list[float]:
        return [0.0]

    def model_column(self, column: dict) -> dict:
        return {"type": "binary"}


@register_column_kind("categorical")
class CategoricalColumn(ColumnKind):
    """One column of numbers; category k is the value ``values[k]`` (short form: the training
    split's distinct values, or ``"categories": K`` for the values 0..K-1)."""

    keys = frozenset({"type", "values", "categories"})
    hints = {"type": str, "values": list[float]}

    def claims(self, values: np.ndarray, max_categories: int) -> bool:
        return bool((values == np.round(values)).all()) and len(values) <= max_categories

    def check(self, column: dict, index: int) -> None:
        if "categories" in column and not is_json_count(column["categories"]):
            raise DataError(
                f"schema[{index}]: categories must be a positive integer (a count), got {column['categories']!r:.40}"
            )

    def fit(self, column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
        if "values" not in column:
            k = column.pop("categories", None)
            values = np.arange(k) if k is not None else np.unique(block[:, 0])
            column["values"] = [float(v) for v in values]
        column.pop("categories", None)
        if not self.fitted_ok(column):
            raise DataError(f"schema[{index}]: categorical values must be distinct and non-empty")
        return column

    def fitted_ok(self, column: dict) -> bool:
        return bool(column["values"]) and len(set(column["values"])) == len(column["values"])

    def encode(self, column: dict, block: np.ndarray, source: str, start: int, where: Where) -> np.ndarray:
        table = np.asarray(column["values"], dtype=np.float64)[:, None]
        return _lookup(table, block.astype(np.float64), "value", source, start, where)

    def decode(self, column: dict, values: np.ndarray) -> np.ndarray:
        return np.asarray(column["values"])[values.astype(int)][:, None]

    def placeholder(self, column: dict) -> list[float]:
        return [column["values"][0]]

    def model_column(self, column: dict) -> dict:
        return {"type": "categorical", "categories": len(column["values"])}


@register_column_kind("real")
class RealColumn(ColumnKind):
    """One column of real numbers, modelled standardized, ``(x - mean) / std``, by ``components``
    Gaussians; ``mean`` and ``std`` are the training split's unless the entry gives them. A column of an
    integer array (``.npy``, ``.npz``) keeps its ``dtype``: its draws are rounded and clipped to the range
    that dtype holds, so a uint8 column never gives 255.6 or -3."""

    keys = frozenset({"type", "mean", "std", "components", "dtype"})
    hints = {"type": str, "mean": float, "std": float, "components": int, "dtype": str}
    optional = frozenset({"dtype"})  # only for a column of integers: draws are rounded and kept in its range

    def claims(self, values: np.ndarray, max_categories: int) -> bool:
        return True

    def check(self, column: dict, index: int) -> None:
        if "dtype" in column and column["dtype"] not in INTEGER_DTYPES:
            raise DataError(
                f"schema[{index}]: dtype must be one of {', '.join(INTEGER_DTYPES)}, got {column['dtype']!r:.40}"
            )

    def fit(self, column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
        column.setdefault("components", components)
        if block.dtype.name in INTEGER_DTYPES:
            column.setdefault("dtype", block.dtype.name)
        values = block[:, 0].astype(np.float64)  # the statistics at full precision, whatever the file's dtype
        given = {key: column[key] for key in ("mean", "std") if key in column}
        with np.errstate(over="ignore", invalid="ignore"):
            column.setdefault("mean", float(values.mean()))
            column.setdefault("std", float(values.std()))
        if any(not math.isfinite(column[key]) for key in ("mean", "std") if key not in given):
            raise DataError(
                f"data column {start + 1}: its values (up to {format_value(float(np.abs(values).max()))} in size) "
                "are too large to standardize (their mean or standard deviation overflows float64); scale the "
                "column down"
            )
        if "std" not in given and not column["std"] > 0:
            raise DataError(
                f"data column {start + 1} is constant ({format_value(block[0, 0])}) in the training split "
                "and cannot be standardized; declare it categorical in a schema file"
            )
        return column

    def fitted_ok(self, column: dict) -> bool:
        return (
            column["std"] > 0
            and math.isfinite(column["std"])
            and math.isfinite(column["mean"])
            and (column["components"] >= 1)
            and column.get("dtype", "int64") in INTEGER_DTYPES
        )

    def encode(self, column: dict, block: np.ndarray, source: str, start: int, where: Where) -> np.ndarray:
        return (block[:, 0].astype(np.float64) - column["mean"]) / column["std"]

    def decode(self, column: dict, values: np.ndarray) -> np.ndarray:
        decoded = values * column["std"] + column["mean"]
        if "dtype" in column:
            decoded = in_dtype(decoded, np.dtype(column["dtype"])).astype(np.float64)
        return decoded[:, None]

    def placeholder(self, column: dict) -> list[float]:
        return [column["mean"]]

    def model_column(self, column: dict) -> dict:
        return {"type": "real", "components": column["components"]}

    def log_scale(self, column: dict) -> float:
        return math.log(column["std"])


@register_column_kind("onehot")
class OneHotColumn(ColumnKind):
    """``width`` 0/1 columns that hold one categorical value; category k is the bit pattern
    ``codes[k]``: the ``width`` one-hot patterns, then every other pattern seen in training."""

    keys = frozenset({"type", "width", "codes"})
    hints = {"type": str, "width": int, "codes": list[list[int]]}

    def width(self, column: dict) -> int:
        return int(column.get("width", 1))

    def check(self, column: dict, index: int) -> None:
        if not is_json_count(column.get("width")):
            raise DataError(f"schema[{index}]: a onehot column needs a positive integer width")

    def fit(self, column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
        if "codes" not in column:
            width = column["width"]
            onehots = [tuple(int(i == j) for j in range(width)) for i in range(width)]
            seen = sorted(set(map(tuple, block.astype(int).tolist())) - set(onehots))
            column["codes"] = [list(c) for c in onehots + seen]
        return column

    def fitted_ok(self, column: dict) -> bool:
        codes = column["codes"]
        return (
            bool(codes)
            and all(len(c) == column["width"] and set(c) <= {0, 1} for c in codes)
            and len(set(map(tuple, codes))) == len(codes)
        )

    def encode(self, column: dict, block: np.ndarray, source: str, start: int, where: Where) -> np.ndarray:
        return _lookup(np.asarray(column["codes"]), block, "code", source, start, where)

    def decode(self, column: dict, values: np.ndarray) -> np.ndarray:
        return np.asarray(column["codes"])[values.astype(int)]

    def placeholder(self, column: dict) -> list[float]:
        return list(column["codes"][0])

    def model_column(self, column: dict) -> dict:
        return {"type": "categorical", "categories": len(column["codes"])}
