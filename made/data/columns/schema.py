r"""Schema-wide operations: infer, read, fit, encode and decode a list of column entries.

Each entry is handled by its registered :class:`~made.data.columns.kinds.ColumnKind`;
this module walks the entries and the data-file columns they read, in order.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from ...families import DEFAULT_MIN_SCALE, Family, family_for_columns
from ..fields import SchemaError, check_fields
from ..splits import SPLITS, DataError, Splits, check_exact
from .kinds import COLUMN_KINDS, Where, kind_of

__all__ = [
    "DEFAULT_MAX_CATEGORIES",
    "infer_schema",
    "onehot_widths",
    "read_schema",
    "resolve_schema",
    "fit_schema",
    "encode",
    "encode_observed",
    "decode",
    "encode_splits",
    "model_columns",
    "family_config",
    "check_fitted_schema",
    "log_scales",
    "in_original_units",
    "dimension_names",
    "num_columns",
]

DEFAULT_MAX_CATEGORIES = 20  # integer columns with at most this many values are categorical


# ---------------------------------------------------------------- inference
def onehot_widths(bits: np.ndarray) -> list[int]:
    """Split 0/1 columns into contiguous groups in which no row has two ones.

    Greedy, left to right: a column joins the current group unless some training
    row already has a one in that group. This recovers one-hot codes (exactly one
    one, as in Mushrooms) and at-most-one codes (DNA's three bits per base, whose
    fourth value is all zeros), because the next attribute's columns always meet a
    one of the current attribute in some row.
    """
    widths: list[int] = []
    used = np.zeros(bits.shape[0], dtype=bool)
    for column in bits.T.astype(bool):
        if widths and not (used & column).any():
            widths[-1] += 1
            used |= column
        else:
            widths.append(1)
            used = column.copy()
    return widths


def _inferred_kind(column: np.ndarray, max_categories: int) -> str:
    """The first registered kind that claims a data column by its distinct values."""
    values = np.unique(column)
    return next(kind.name for kind in COLUMN_KINDS.values() if kind.claims(values, max_categories))


def infer_schema(train: np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES, onehot: bool = False) -> list[dict]:
    """Short-form schema of ``train``, one rule per column:

    values in {0, 1} -> binary; integers with at most ``max_categories`` distinct
    values -> categorical; anything else -> real. With ``onehot=True``, runs of
    binary columns are cut by :func:`onehot_widths` and every group of two or more
    columns becomes one categorical dimension.
    """
    kinds = [_inferred_kind(column, max_categories) for column in train.T]
    schema: list[dict] = []
    start = 0
    while start < len(kinds):
        if kinds[start] != "binary" or not onehot:
            schema.append({"type": kinds[start]})
            start += 1
            continue
        stop = start
        while stop < len(kinds) and kinds[stop] == "binary":
            stop += 1
        for width in onehot_widths(train[:, start:stop]):
            schema.append({"type": "onehot", "width": width} if width > 1 else {"type": "binary"})
        start = stop
    return schema


def read_schema(path: str | Path) -> list[dict]:
    """A schema from a JSON file: a list of column dicts, or ``{"columns": [...]}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such schema file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    columns = data.get("columns") if isinstance(data, dict) else data
    if not isinstance(columns, list) or not columns:
        raise DataError(f'{path}: expected a non-empty list of column dicts (or {{"columns": [...]}})')
    return columns


def resolve_schema(
    choice: str | Path, train: np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES, components: int = 1
) -> list[dict]:
    """The fitted schema for a command-line choice: ``binary``, ``auto``, ``onehot`` or a JSON file."""
    if choice == "binary":
        schema: list[dict] = [{"type": "binary"}] * train.shape[1]
    elif choice in ("auto", "onehot"):
        schema = infer_schema(train, max_categories, onehot=choice == "onehot")
    else:
        schema = read_schema(choice)  # its own errors name the file
        try:
            return fit_schema(schema, train, components)
        except DataError as err:
            raise DataError(f"{Path(choice)}: {err}") from None
    return fit_schema(schema, train, components)


# ------------------------------------------------------------------ fitting
def num_columns(schema: Sequence[dict]) -> int:
    """Number of data-file columns the schema reads."""
    return sum(kind_of(c).width(c) for c in schema)


def _check_column(column: object, index: int) -> dict:
    """A user-written entry: a known type, its keys, and the values its kind checks."""
    if not isinstance(column, dict) or column.get("type") not in COLUMN_KINDS:
        raise DataError(f"schema[{index}]: expected an object with type {', '.join(COLUMN_KINDS)}, got {column!r:.80}")
    kind = kind_of(column)
    unknown = set(column) - kind.keys
    if unknown:
        raise DataError(f"schema[{index}]: unknown keys {sorted(unknown)} for type {column['type']}")
    kind.check(column, index)
    return dict(column)


def fit_schema(schema: Sequence[dict], train: np.ndarray, components: int = 1) -> list[dict]:
    """The schema with every value list, statistic and code list filled in from ``train``;
    real columns that do not say get ``components`` Gaussians."""
    columns = [_check_column(c, i) for i, c in enumerate(schema)]
    if num_columns(columns) != train.shape[1]:
        raise DataError(f"the schema describes {num_columns(columns)} data columns, the data has {train.shape[1]}")
    check_exact(train, "the training split", _row_number)  # a value float64 changes would be fitted changed
    fitted, start = [], 0
    for index, column in enumerate(columns):
        kind = kind_of(column)
        width = kind.width(column)
        fitted.append(kind.fit(column, train[:, start : start + width], index, start, components))
        start += width
    try:
        _check_fitted_columns(fitted, "schema")  # what a user wrote: values, statistics, codes
    except SchemaError as err:
        raise DataError(str(err)) from None
    return fitted


# ----------------------------------------------------------------- encoding
def _row_number(row: int) -> str:
    return f"row {row + 1}"


def encode(
    schema: Sequence[dict],
    data: np.ndarray,
    source: str = "data",
    where: Where = _row_number,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray:
    """Data-file rows ``[N, columns]`` -> model inputs ``[N, D]`` in ``dtype``.

    Values are compared and standardized at float64 (or the data's own integer
    precision) and only the result is rounded to ``dtype``; ``where`` names a row
    in errors as the file shows it.
    """
    if data.shape[1] != num_columns(schema):
        raise DataError(f"{source}: has {data.shape[1]} columns, the schema describes {num_columns(schema)}")
    check_exact(data, source, where)
    out = np.empty((data.shape[0], len(schema)), dtype=dtype)
    start = 0
    for d, column in enumerate(schema):
        kind = kind_of(column)
        width = kind.width(column)
        out[:, d] = kind.encode(column, data[:, start : start + width], source, start, where)
        start += width
    return out


def encode_observed(
    schema: Sequence[dict], data: np.ndarray, hidden: np.ndarray, source: str = "data", where: Where = _row_number
) -> tuple[np.ndarray, np.ndarray]:
    """Rows with hidden cells -> model inputs ``[N, D]`` (float64) and which dimensions are observed.

    ``hidden`` (bool, the data's shape) marks the cells to impute; NaN cells must be
    among them and are encoded as a stand-in value. A one-hot group is observed when
    all its columns are and hidden when all are; a group hidden in part is refused.
    """
    check_exact(data, source, where)  # an observed value float64 changes would come back changed
    observed = np.empty((data.shape[0], len(schema)), dtype=bool)
    filled = data.astype(np.float64)
    start = 0
    for d, column in enumerate(schema):
        kind = kind_of(column)
        width = kind.width(column)
        block = hidden[:, start : start + width]
        partial = block.any(1) & ~block.all(1)
        if partial.any():
            row = int(np.argmax(partial))
            raise DataError(
                f"{source}: {where(row)}, columns {start + 1}-{start + width}: a one-hot group is "
                "missing in part; give all its columns or none"
            )
        observed[:, d] = ~block[:, 0]
        gap = np.isnan(filled[:, start : start + width]).any(1)
        filled[gap, start : start + width] = kind.placeholder(column)
        start += width
    return encode(schema, filled, source, where), observed


def decode(schema: Sequence[dict], values: np.ndarray) -> np.ndarray:
    """Model values ``[N, D]`` (samples, say) -> data-file rows ``[N, columns]`` (float64)."""
    out = np.empty((values.shape[0], num_columns(schema)))
    start = 0
    for d, column in enumerate(schema):
        kind = kind_of(column)
        width = kind.width(column)
        # real columns un-standardized at full precision
        out[:, start : start + width] = kind.decode(column, values[:, d].astype(np.float64))
        start += width
    return out


def encode_splits(schema: Sequence[dict], splits: Splits, dtype: np.dtype | type = np.float32) -> Splits:
    """The three splits in model space, in the model's ``dtype`` (same name, image shape and labels).
    Errors name the file's line of a row where the splits know it."""
    source = splits.source or splits.name
    train, valid, test = (encode(schema, splits.split(s), source, splits.where(s), dtype) for s in SPLITS)
    return dataclasses.replace(splits, train=train, valid=valid, test=test)


# ------------------------------------------------------------------ meaning
def model_columns(schema: Sequence[dict]) -> list[dict]:
    """The model's view of each dimension, as :class:`~made.families.Mixed` takes it:
    binary, categorical with its number of categories, or real with its components."""
    return [kind_of(column).model_column(column) for column in schema]


def family_config(schema: Sequence[dict], min_scale: float = DEFAULT_MIN_SCALE) -> str | dict:
    """The MADE family for a fitted schema: one family when one family models every column,
    else ``mixed``; a family without options is written by its name alone (``"bernoulli"``)."""
    config = family_for_columns(model_columns(schema), min_scale).config()
    return config["name"] if len(config) == 1 else config


def _check_fitted_columns(schema: object, where: str) -> list[dict]:
    """Every fitted column's fields, with their types and values (raises :class:`SchemaError`); the
    columns back, typed as checked."""
    if not isinstance(schema, list):
        raise SchemaError(f"{where} must be a list of column objects")
    for i, column in enumerate(schema):
        kind = column.get("type") if isinstance(column, dict) else None
        if kind not in COLUMN_KINDS:
            raise SchemaError(f"{where}[{i}] must be an object with type {', '.join(COLUMN_KINDS)}")
        check_fields(column, COLUMN_KINDS[kind].hints, f"{where}[{i}]", COLUMN_KINDS[kind].optional)
        if not COLUMN_KINDS[kind].fitted_ok(column):
            raise SchemaError(f"{where}[{i}] has values outside their allowed range: {column!r:.80}")
    return schema


def check_fitted_schema(schema: object, model_family: Family, where: str) -> None:
    """Check a fitted schema read from a run's config: every field's type and value, and
    that it describes the dimensions of the run's model (raises :class:`SchemaError`)."""
    if model_columns(_check_fitted_columns(schema, where)) != model_family.columns:
        raise SchemaError(f"{where} does not describe the dimensions of the run's model")


def log_scales(schema: Sequence[dict]) -> np.ndarray:
    """``log std`` of each real dimension, 0 elsewhere: what turns a standardized density into one in data units."""
    return np.array([kind_of(c).log_scale(c) for c in schema])


class NLLSummary(Protocol):
    """A dataclass with a mean NLL and its bits per dimension, such as :class:`made.inference.evaluate.NLLResult`."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def nll(self) -> float: ...

    @property
    def bits_per_dim(self) -> float: ...


Summary = TypeVar("Summary", bound=NLLSummary)


def in_original_units(result: Summary, schema: Sequence[dict]) -> Summary:
    """An NLL computed on standardized data, moved to the data's own units.

    ``-log p(x) = -log p(z) + sum_d log std_d`` for ``z = (x - mean) / std``; the
    standard error does not change. Bits per dimension count the data file's columns.
    """
    nll = result.nll + float(log_scales(schema).sum())
    return dataclasses.replace(result, nll=nll, bits_per_dim=nll / (num_columns(schema) * math.log(2)))


def dimension_names(schema: Sequence[dict]) -> list[str]:
    """A name per model dimension: its data-file column (1-based), or ``a-b`` for a one-hot group."""
    names, start = [], 1
    for column in schema:
        width = kind_of(column).width(column)
        names.append(str(start) if width == 1 else f"{start}-{start + width - 1}")
        start += width
    return names
